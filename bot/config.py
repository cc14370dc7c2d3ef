"""Settings: one validated object, read from the environment and an optional `.env` file."""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.database_url import parse_database_url
from bot.errors import ConfigError
from bot.hints import DEFAULT_BREEZE_BASE_URL, DEFAULT_DATABASE_URL, DEFAULT_SLACK_API_URL, HINTS
from bot.needs import CHECK, NEEDS, SERVE, SOCKET

_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")


def is_key(text: str) -> bool:
    """True if `text` is a usable encryption key: 32 bytes in URL-safe base64, as Fernet takes them."""
    try:
        return len(base64.urlsafe_b64decode(text.encode("ascii"))) == 32
    except (binascii.Error, ValueError, UnicodeError):
        return False


LogFormat = Literal["text", "json"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

MULTI_WORKSPACE = "multi-workspace"
SINGLE_WORKSPACE = "single-workspace"


class StorageSettings(BaseSettings):
    """What the database commands (`migrate`, `rotate-keys`) need, and nothing about Slack."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        case_sensitive=False,
        hide_input_in_errors=True,
    )

    database_url: str = DEFAULT_DATABASE_URL
    breeze_encryption_keys: SecretStr | None = None
    auto_migrate: bool = False
    public_url: str | None = None

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        url = value.strip().rstrip("/")
        if not url.startswith(("https://", "http://")) or "://" not in url or not url.split("://", 1)[1]:
            raise ValueError("must be the app's public base URL, like https://breeze-balance.acme.dev")
        return url

    @field_validator("breeze_encryption_keys")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        keys = [k.strip() for k in value.get_secret_value().split(",") if k.strip()]
        for number, key in enumerate(keys, start=1):
            if not is_key(key):
                raise ValueError(
                    f"key number {number} is not a Fernet key (44 characters of url-safe base64)"
                )
        return SecretStr(",".join(keys)) if keys else None

    @property
    def encryption_keys(self) -> list[str]:
        """BREEZE_ENCRYPTION_KEYS as a list, the key that encrypts first."""
        if self.breeze_encryption_keys is None:
            return []
        return self.breeze_encryption_keys.get_secret_value().split(",")


class Settings(StorageSettings):
    """Everything the app can be configured with; secrets stay `SecretStr` until used."""

    slack_signing_secret: SecretStr | None = None  # what needs it: `bot.needs`
    slack_bot_token: SecretStr | None = None
    breeze_api_key: SecretStr | None = None
    breeze_base_url: str = DEFAULT_BREEZE_BASE_URL
    slack_api_url: str = DEFAULT_SLACK_API_URL
    host: str = "0.0.0.0"  # noqa: S104 - a PaaS routes to the container's public interface
    port: int = Field(default=3000, ge=1, le=65535)
    log_level: LogLevel = "INFO"
    breeze_timeout_seconds: float = Field(default=8.0, ge=1, le=20)
    web_concurrency: int = Field(default=1, ge=1, le=64)
    breeze_cache_seconds: float = Field(default=10.0, ge=0, le=3600)
    log_format: LogFormat = "text"
    slack_client_id: str | None = None
    slack_client_secret: SecretStr | None = None
    breeze_admin_user_ids: str = ""
    alert_interval_seconds: float = Field(default=300.0, ge=1, le=86_400)
    usage_refresh_seconds: float = Field(default=3600.0, ge=60, le=86_400)
    run_worker: bool = False
    slack_app_token: SecretStr | None = None
    redis_url: SecretStr | None = None
    http_stack: Literal["aiohttp", "httpcore"] = "aiohttp"

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        url = value.get_secret_value().strip()
        if not url.startswith(("redis://", "rediss://")):
            raise ValueError("must be a redis:// or rediss:// URL")
        return SecretStr(url)

    @field_validator("slack_app_token")
    @classmethod
    def _app_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        token = value.get_secret_value().strip()
        if not token.startswith("xapp-"):
            raise ValueError("must be an app-level token starting with xapp-")
        return SecretStr(token)

    @field_validator("slack_signing_secret")
    @classmethod
    def _signing_secret_is_one_word(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        secret = value.get_secret_value().strip()
        if not secret or any(ch.isspace() for ch in secret):
            raise ValueError("must be a single word with no spaces")
        return SecretStr(secret)

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        token = value.get_secret_value().strip()
        if not token.startswith(("xoxb-", "xoxe.xoxb-")):
            raise ValueError("must be a bot token starting with xoxb-")
        return SecretStr(token)

    @field_validator("breeze_api_key")
    @classmethod
    def _api_key_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        key = value.get_secret_value().strip()
        if not key.isascii() or not key.isprintable() or " " in key:
            raise ValueError("must contain only visible ASCII characters, without spaces")
        return SecretStr(key)

    @field_validator("breeze_admin_user_ids")
    @classmethod
    def _user_ids(cls, value: str) -> str:
        ids = [i.strip() for i in value.split(",") if i.strip()]
        for user_id in ids:
            if not _USER_ID.fullmatch(user_id):
                raise ValueError(f"{user_id!r} is not a Slack user id like U012AB3CD")
        return ",".join(ids)

    @field_validator("slack_client_id")
    @classmethod
    def _client_id(cls, value: str | None) -> str | None:
        return value.strip() if value else None

    @field_validator("breeze_base_url", "slack_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        url = value.strip()
        if not url.startswith(("http://", "https://")) or len(url.split("://", 1)[1].strip("/")) == 0:
            raise ValueError("must be an http:// or https:// URL")
        return url

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("log_format", "http_stack", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @property
    def breeze_url(self) -> str:
        """Breeze base URL without a trailing slash."""
        return self.breeze_base_url.rstrip("/")

    @property
    def slack_api_base(self) -> str:
        """Slack Web API base URL with the trailing slash slack_sdk expects."""
        return self.slack_api_url.rstrip("/") + "/"

    @property
    def mode(self) -> str:
        """`multi-workspace` when the OAuth install flow is configured, else `single-workspace`."""
        return MULTI_WORKSPACE if self.slack_client_id else SINGLE_WORKSPACE

    @property
    def admin_user_ids(self) -> frozenset[str]:
        """Users who may manage the key whatever their Slack role."""
        return frozenset(filter(None, self.breeze_admin_user_ids.split(",")))

    def secret_values(self) -> tuple[str, ...]:
        """Every configured secret, for the log redactor."""
        secrets = (
            self.slack_signing_secret,
            self.slack_bot_token,
            self.breeze_api_key,
            self.slack_client_secret,
            self.slack_app_token,
            self.redis_url,
        )
        values = [s.get_secret_value() for s in secrets if s is not None]
        return (*values, *self.encryption_keys)

    @property
    def log_level_number(self) -> int:
        """The `logging` level number."""
        return int(logging.getLevelName(self.log_level))


@dataclass(frozen=True, slots=True)
class Problem:
    """A setting that stops an entry point: the settings concerned, what is wrong, how to fix it."""

    settings: tuple[str, ...]
    problem: str
    fix: str = ""

    def __str__(self) -> str:
        return f"{self.problem}; {self.fix}." if self.fix else f"{self.problem}."


class SettingsError(ConfigError):
    """Every problem with the settings at once; `settings` when their values could all be read."""

    def __init__(self, problems: Sequence[Problem], settings: Settings | None = None) -> None:
        self.problems = list(dict.fromkeys(problems))
        self.settings = settings
        super().__init__("\n".join(str(p) for p in self.problems))

    @property
    def names(self) -> list[str]:
        """The settings to set or correct, each once: what the log, /healthz and the page name."""
        return list(dict.fromkeys(name for p in self.problems for name in p.settings))


def load_storage_settings(**overrides: Any) -> StorageSettings:
    """Read and validate the database settings only."""
    try:
        return StorageSettings(**overrides)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def load_settings(entry: str = SERVE, /, **overrides: Any) -> Settings:
    """Read and validate what `entry` needs; raise `SettingsError` naming every problem at once."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        found = _describe(exc)
        # Read the rest without the malformed values, so what is missing is named as well.
        malformed = {str(e["loc"][0]) for e in exc.errors() if e["loc"]} & set(Settings.model_fields)
        defaults = {name: Settings.model_fields[name].default for name in malformed}
        try:
            rest = Settings(**{**overrides, **defaults})
        except ValidationError:
            raise SettingsError(found) from None
        named = {name for p in found for name in p.settings}
        found += [p for p in problems(rest, entry) if not named & set(p.settings)]
        raise SettingsError(found) from None
    found = problems(settings, entry)
    if found:
        raise SettingsError(found, settings)
    return settings


def problems(settings: Settings, entry: str = SERVE) -> list[Problem]:
    """What stops `entry` from running with these settings (empty: nothing)."""
    if entry == CHECK:
        entry = SOCKET if settings.slack_app_token is not None else SERVE
    found = [
        Problem((name,), f"{name} is not set; {why}", HINTS[name])
        for name, why in NEEDS.get(entry, ())
        if getattr(settings, name.lower()) is None
        and not (name == "SLACK_BOT_TOKEN" and settings.mode == MULTI_WORKSPACE)
    ]
    return found + _database(settings) + _mode(settings) + _encryption(settings)


def _database(settings: StorageSettings) -> list[Problem]:
    """DATABASE_URL must be one the app can use (PostgreSQL or SQLite, options it understands)."""
    try:
        parse_database_url(settings.database_url)
    except ConfigError as exc:
        return [Problem(("DATABASE_URL",), str(exc).rstrip("."), HINTS["DATABASE_URL"])]
    return []


def _encryption(settings: StorageSettings) -> list[Problem]:
    """Only a local SQLite file may do without BREEZE_ENCRYPTION_KEYS (a key file is made for it)."""
    if settings.encryption_keys or settings.database_url.strip().lower().startswith("sqlite"):
        return []
    name = "BREEZE_ENCRYPTION_KEYS"
    problem = f"{name} is not set; it is required with a PostgreSQL DATABASE_URL"
    return [Problem((name,), problem, HINTS[name])]


def _mode(settings: Settings) -> list[Problem]:
    """One of two modes: a bot token (one workspace) or OAuth client credentials (many)."""
    if bool(settings.slack_client_id) != (settings.slack_client_secret is not None):
        missing = "SLACK_CLIENT_SECRET" if settings.slack_client_id else "SLACK_CLIENT_ID"
        together = "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET go together (multi-workspace mode)"
        return [Problem((missing,), f"{missing} is not set; {together}", HINTS[missing])]
    if settings.slack_client_id and settings.slack_bot_token is not None:
        return [
            Problem(
                ("SLACK_BOT_TOKEN", "SLACK_CLIENT_ID"),
                "SLACK_BOT_TOKEN and SLACK_CLIENT_ID are both set",
                "choose one mode: SLACK_BOT_TOKEN for one workspace, or SLACK_CLIENT_ID and "
                "SLACK_CLIENT_SECRET to let many workspaces install the app (each installation then "
                "brings its own token)",
            )
        ]
    return []


def _describe(exc: ValidationError) -> list[Problem]:
    found = []
    for error in exc.errors():
        name = str(error["loc"][0]).upper() if error["loc"] else "settings"
        if error["type"] == "missing":
            problem = f"{name} is not set"
        else:
            problem = f"{name} is invalid: {_reason(error['msg'])}"
        found.append(Problem((name,), problem, HINTS.get(name, "")))
    return found


def _reason(message: str) -> str:
    return message.removeprefix("Value error, ").rstrip(".")
