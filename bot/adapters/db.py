"""The database: `DATABASE_URL` as people hand it out, the async engine, and migrations."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from pathlib import Path
from typing import IO, Any

import sqlalchemy
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from bot.database_url import Database as Database
from bot.database_url import parse_database_url as parse_database_url
from bot.errors import ConfigError, StorageError

log = logging.getLogger(__name__)

MIGRATIONS = "bot:migrations"
SQLITE_BUSY_TIMEOUT_MS = 5000
# A constant so that every process running migrations waits for the same PostgreSQL lock.
_MIGRATION_LOCK_ID = 7_216_540_031


def create_engine(database: Database) -> AsyncEngine:
    """An async engine with sensible pooling for the database kind."""
    if database.is_sqlite:
        return _sqlite_engine(database)
    return create_async_engine(
        database.url,
        connect_args=dict(database.connect_args),
        pool_size=5,
        max_overflow=10,
        # Platforms close idle PostgreSQL connections; find out before using one.
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def _sqlite_engine(database: Database) -> AsyncEngine:
    path = database.sqlite_file
    if path is not None and not path.resolve().parent.is_dir():
        raise ConfigError(
            f"DATABASE_URL is invalid: the folder for the SQLite file {path} does not exist; create it first."
        )
    if path is None:
        # One in-memory database shared by every use of the engine.
        engine = create_async_engine(database.url, poolclass=StaticPool)
    else:
        engine = create_async_engine(database.url)

    @sqlalchemy.event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets readers (every worker process) carry on while one writes.
        if path is not None:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    return engine


class WorkerLock:
    """An exclusive lock on a file beside a SQLite database: one worker per database at a time.

    SQLite has no row locks for workers to share the work with; the operating system drops the
    lock when the process ends, however it ends.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self) -> bool:
        """Take the lock if it is free; False when another process holds it."""
        if self._file is not None:
            return True
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return True

    def holder(self) -> str:
        """The process id written by whoever holds the lock, or '?'."""
        try:
            return self.path.read_text(encoding="utf-8").strip() or "?"
        except OSError:
            return "?"

    def release(self) -> None:
        """Let another worker take over."""
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def worker_lock(database: Database) -> WorkerLock | None:
    """The lock a worker must hold on a SQLite file; None where workers share the work (PostgreSQL)."""
    path = database.sqlite_file
    return WorkerLock(path.with_name(path.name + ".worker.lock")) if path is not None else None


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    return config


def head_revision() -> str:
    """The newest schema revision this version of the app knows."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


async def current_revision(engine: AsyncEngine) -> str | None:
    """The schema revision the database is at, or None when it was never migrated."""

    def read(connection: sqlalchemy.Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    try:
        async with engine.connect() as connection:
            return await connection.run_sync(read)
    except (SQLAlchemyError, OSError) as exc:
        raise StorageError(f"could not read the database schema version: {_reason(exc)}") from None


async def migrate(engine: AsyncEngine) -> tuple[str | None, str]:
    """Bring the schema up to the newest revision; returns (before, after)."""
    config = _alembic_config()

    def upgrade(connection: sqlalchemy.Connection) -> str | None:
        if connection.dialect.name == "postgresql":
            # Two release phases (or workers) at once: the second waits, then finds nothing to do.
            connection.execute(sqlalchemy.text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_ID})"))
        elif connection.dialect.name == "sqlite":
            # The same for SQLite: take the write lock first, and make the whole upgrade one
            # transaction (the driver would otherwise commit each CREATE TABLE on its own).
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        before = MigrationContext.configure(connection).get_current_revision()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        return before

    try:
        async with engine.begin() as connection:
            before = await connection.run_sync(upgrade)
    except (SQLAlchemyError, OSError) as exc:
        raise StorageError(f"migration failed: {_reason(exc)}") from None
    return before, head_revision()


async def require_migrated(engine: AsyncEngine, display: str) -> None:
    """Raise `ConfigError` saying what to run unless the schema is at the newest revision."""
    try:
        current = await current_revision(engine)
    except StorageError as exc:
        raise ConfigError(f"DATABASE_URL ({display}): {exc}") from None
    head = head_revision()
    if current == head:
        return
    state = "has no tables yet" if current is None else f"is at schema {current}, this version needs {head}"
    raise ConfigError(
        f"The database {display} {state}. Run `python -m bot migrate` first "
        "(a PaaS runs it for you from the Procfile's release line), or set AUTO_MIGRATE=true."
    )


def run_migrations(database: Database) -> tuple[str | None, str]:
    """Synchronous wrapper for the command line: migrate and close the engine."""

    async def go() -> tuple[str | None, str]:
        engine = create_engine(database)
        try:
            return await migrate(engine)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _reason(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    return f"{type(original).__name__}: {original}".splitlines()[0]
