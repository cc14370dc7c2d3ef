"""`DATABASE_URL` as people hand it out, read into the URL and options the async drivers take.

Pure parsing (no connection is made), so settings can validate it without the database layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from bot.errors import ConfigError

_POSTGRES_SCHEMES = ("postgres", "postgresql")
_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# Options asyncpg takes as they are written in the URL.
_POSTGRES_PASSED = ("host", "port", "target_session_attrs", "passfile", "prepared_statement_cache_size")
# asyncpg reads these from the environment (as libpq does) but not from a URL's options.
_POSTGRES_SSL_FILES = {
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
}


@dataclass(frozen=True, slots=True)
class Database:
    """Where the data lives, with the async driver chosen."""

    url: URL
    connect_args: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_sqlite(self) -> bool:
        """True for SQLite (a file, or memory)."""
        return self.url.get_backend_name() == "sqlite"

    @property
    def sqlite_file(self) -> Path | None:
        """The SQLite file, or None for PostgreSQL and in-memory SQLite."""
        name = self.url.database
        if not self.is_sqlite or not name or name == ":memory:" or name.startswith("file:"):
            return None
        return Path(name)

    @property
    def display(self) -> str:
        """The URL with any password hidden, for messages and logs."""
        return self.url.render_as_string(hide_password=True)


def parse_database_url(raw: str) -> Database:
    """Accept `postgres://`, `postgresql://`, `sqlite:///x.db` and driver-qualified URLs alike."""
    text = raw.strip()
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigError(
            "DATABASE_URL is invalid: expected something like postgres://user:password@host:5432/name "
            "or sqlite:///breeze-balance.db."
        ) from None
    backend = url.drivername.split("+", 1)[0]
    if backend in _POSTGRES_SCHEMES:
        return _postgres(url)
    if backend == "sqlite":
        return Database(url.set(drivername="sqlite+aiosqlite"))
    raise ConfigError(
        f"DATABASE_URL is invalid: the app stores data in PostgreSQL or SQLite, not {backend!r}."
    )


def _postgres(url: URL) -> Database:
    """libpq's URL options as asyncpg takes them; any other option would fail at the first connection."""
    connect_args: dict[str, Any] = {}
    changes: dict[str, Any] = {}
    query: dict[str, str | tuple[str, ...]] = {}
    for name, values in url.query.items():
        value = values if isinstance(values, str) else values[-1]
        if not value:
            continue  # as libpq: an empty option is an unset one
        if name == "sslmode":
            if value not in _SSL_MODES:
                raise ConfigError(f"DATABASE_URL is invalid: sslmode must be one of {', '.join(_SSL_MODES)}.")
            # asyncpg calls libpq's `sslmode` `ssl` and takes the same words.
            connect_args["ssl"] = value
        elif name == "application_name":
            connect_args["server_settings"] = {"application_name": value}
        elif name == "connect_timeout":
            try:
                seconds = float(value)
            except ValueError:
                raise ConfigError("DATABASE_URL is invalid: connect_timeout must be seconds.") from None
            if seconds > 0:  # libpq's 0 means wait forever; asyncpg's default wait is used then
                connect_args["timeout"] = seconds
        elif name in ("user", "password", "dbname"):
            changes[{"user": "username", "dbname": "database"}.get(name, name)] = value
        elif name == "channel_binding":
            if value == "require":
                raise ConfigError(
                    "DATABASE_URL is invalid: channel_binding=require is not supported by the "
                    "PostgreSQL driver; use sslmode=verify-full instead, or remove it."
                )
            # "prefer" without channel binding support is what libpq does: connect without it.
        elif name in _POSTGRES_PASSED:
            query[name] = values
        elif name in _POSTGRES_SSL_FILES:
            raise ConfigError(
                f"DATABASE_URL is invalid: give {name} as the environment variable "
                f"{_POSTGRES_SSL_FILES[name]} instead of in the URL."
            )
        else:
            raise ConfigError(
                f"DATABASE_URL is invalid: the PostgreSQL option {name!r} is not supported; remove it "
                f"(supported: sslmode, application_name, connect_timeout, {', '.join(_POSTGRES_PASSED)})."
            )
    return Database(url.set(drivername="postgresql+asyncpg", query=query, **changes), connect_args)
