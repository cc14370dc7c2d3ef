"""Settings: names, defaults, and one clear message per missing or malformed value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings, load_settings
from bot.errors import ConfigError
from bot.hints import HINTS

ALL_VARIABLES = (
    "SLACK_SIGNING_SECRET",
    "SLACK_BOT_TOKEN",
    "BREEZE_API_KEY",
    "BREEZE_BASE_URL",
    "SLACK_API_URL",
    "DATABASE_URL",
    "HOST",
    "PORT",
    "LOG_LEVEL",
    "BREEZE_TIMEOUT_SECONDS",
    "WEB_CONCURRENCY",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for name in ALL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "abc123")

    settings = load_settings()

    assert settings.breeze_url == "https://api.breeze.blue"
    assert settings.slack_api_base == "https://slack.com/api/"
    assert settings.database_url.startswith("sqlite:///")
    assert settings.port == 3000
    assert settings.host == "0.0.0.0"
    assert settings.log_level == "INFO"
    assert settings.slack_bot_token is None
    assert settings.breeze_api_key is None


def test_reads_every_variable_and_keeps_secrets_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "SLACK_SIGNING_SECRET": "s3cr3t",
        "SLACK_BOT_TOKEN": "xoxb-1-2-abc",
        "BREEZE_API_KEY": "brz_abc",
        "BREEZE_BASE_URL": "http://127.0.0.1:9/",
        "SLACK_API_URL": "http://127.0.0.1:8/api",
        "DATABASE_URL": "postgres://u@h/db",
        "BREEZE_ENCRYPTION_KEYS": "vTG5F6bfB0uC0jQa3mV4p0nJm3yUe4o4bL9dQp0VQ1o=",
        "BREEZE_ADMIN_USER_IDS": "U012AB3CD, W045EF6GH",
        "PORT": "8080",
        "LOG_LEVEL": "debug",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)

    settings = load_settings()

    assert settings.breeze_url == "http://127.0.0.1:9"
    assert settings.slack_api_base == "http://127.0.0.1:8/api/"
    assert settings.port == 8080
    assert settings.log_level == "DEBUG"
    assert settings.breeze_api_key is not None
    assert settings.breeze_api_key.get_secret_value() == "brz_abc"
    assert settings.admin_user_ids == {"U012AB3CD", "W045EF6GH"}
    assert settings.encryption_keys == ["vTG5F6bfB0uC0jQa3mV4p0nJm3yUe4o4bL9dQp0VQ1o="]
    for secret in ("s3cr3t", "xoxb-1-2-abc", "brz_abc", "vTG5F6bfB0uC0jQa3mV4p0nJm3yUe4o4bL9dQp0VQ1o="):
        assert secret not in repr(settings)
        assert secret not in str(settings.model_dump())


def test_reads_a_dotenv_file(tmp_path: Any) -> None:
    (tmp_path / ".env").write_text("SLACK_SIGNING_SECRET=from-file\nPORT=4000\nBREEZE_API_KEY=\n")

    settings = load_settings()

    assert settings.slack_signing_secret.get_secret_value() == "from-file"
    assert settings.port == 4000
    assert settings.breeze_api_key is None  # empty means unset


def test_missing_signing_secret_names_it_and_where_to_get_it() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings()

    message = str(caught.value)
    assert "SLACK_SIGNING_SECRET is not set" in message
    assert "Signing Secret" in message
    assert "api.slack.com/apps" in message


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("PORT", "eighty", "PORT is invalid"),
        ("PORT", "70000", "PORT is invalid"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL is invalid"),
        (
            "SLACK_BOT_TOKEN",
            "xapp-1-abc",
            "SLACK_BOT_TOKEN is invalid: must be a bot token starting with xoxb-",
        ),
        ("BREEZE_API_KEY", "brz key with spaces", "BREEZE_API_KEY is invalid"),
        (
            "BREEZE_BASE_URL",
            "api.breeze.blue",
            "BREEZE_BASE_URL is invalid: must be an http:// or https:// URL",
        ),
        ("SLACK_API_URL", "ftp://slack.com/api", "SLACK_API_URL is invalid"),
        ("BREEZE_TIMEOUT_SECONDS", "120", "BREEZE_TIMEOUT_SECONDS is invalid"),
    ],
)
def test_malformed_values_are_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "abc123")
    monkeypatch.setenv(name, value)

    with pytest.raises(ConfigError) as caught:
        load_settings()

    assert expected in str(caught.value)
    if name in ("SLACK_BOT_TOKEN", "BREEZE_API_KEY"):
        assert value not in str(caught.value), "a rejected secret must not be echoed"


def test_every_problem_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "nope")

    with pytest.raises(ConfigError) as caught:
        load_settings()

    lines = str(caught.value).splitlines()
    assert any(line.startswith("SLACK_SIGNING_SECRET") for line in lines)
    assert any(line.startswith("PORT") for line in lines)


def test_overrides_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "from-env")

    settings = Settings(slack_signing_secret="given")  # type: ignore[arg-type]

    assert settings.slack_signing_secret.get_secret_value() == "given"


def test_every_setting_is_documented_in_the_readme_and_env_example() -> None:
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    example = (root / ".env.example").read_text()
    for name in Settings.model_fields:
        variable = name.upper()
        assert f"`{variable}`" in readme, f"{variable} is missing from the README's table"
        assert f"{variable}=" in example, f"{variable} is missing from .env.example"
        assert variable in HINTS, f"{variable} has no hint for error messages"


def test_postgres_needs_encryption_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="BREEZE_ENCRYPTION_KEYS is not set; it is required") as caught:
        load_settings(slack_signing_secret="x1", database_url="postgres://u@db.internal:5432/app")
    assert "new-encryption-key" in str(caught.value)
    settings = load_settings(slack_signing_secret="x1", database_url="sqlite:///local.db")
    assert settings.encryption_keys == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"slack_client_id": "1.2"}, "SLACK_CLIENT_SECRET is not set"),
        ({"slack_client_secret": "s3cret-value"}, "SLACK_CLIENT_ID is not set"),
        (
            {"slack_client_id": "1.2", "slack_client_secret": "s3cret-value", "slack_bot_token": "xoxb-1-2"},
            "choose one mode",
        ),
        ({"breeze_encryption_keys": "not-a-key"}, "BREEZE_ENCRYPTION_KEYS is invalid: key number 1"),
        ({"breeze_admin_user_ids": "U123, alice"}, "BREEZE_ADMIN_USER_IDS is invalid"),
    ],
)
def test_mode_and_key_settings_are_checked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, overrides: dict[str, str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(slack_signing_secret="x1", **overrides)
    assert "s3cret-value" not in str(caught.value)
    assert "not-a-key" not in str(caught.value)


def test_metering_is_read_hourly_unless_told_otherwise_within_a_minute_and_a_day(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "abc123")
    assert load_settings().usage_refresh_seconds == 3600
    assert load_settings(usage_refresh_seconds="60").usage_refresh_seconds == 60
    assert load_settings(usage_refresh_seconds="86400").usage_refresh_seconds == 86_400
    for wrong in ("59", "86401", "hourly"):
        with pytest.raises(ConfigError, match="USAGE_REFRESH_SECONDS is invalid") as caught:
            load_settings(usage_refresh_seconds=wrong)
        assert "60 to 86400" in str(caught.value)
