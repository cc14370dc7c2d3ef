"""Workspace Breeze keys in the database, encrypted; and re-encryption of every stored secret."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.adapters.crypto import Cipher
from bot.adapters.watch.tables import write_transaction
from bot.domain.balances import KeyRecord, Workspace, last_four
from bot.errors import StorageError, StoredKeyUnreadable

log = logging.getLogger(__name__)

_metadata = sa.MetaData()

breeze_keys = sa.Table(
    "breeze_keys",
    _metadata,
    sa.Column("enterprise_id", sa.String(32), primary_key=True),
    sa.Column("team_id", sa.String(32), primary_key=True),
    sa.Column("api_key_encrypted", sa.Text, nullable=False),
    sa.Column("key_id", sa.String(200)),
    sa.Column("last4", sa.String(8), nullable=False),
    sa.Column("set_by", sa.String(32), nullable=False),
    sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
)

# The encrypted columns of slack_sdk's installation tables (see the 0001 migration).
_slack_secrets = {
    "slack_installations": ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token"),
    "slack_bots": ("bot_token", "bot_refresh_token"),
}
_slack_bots = sa.Table(
    "slack_bots",
    sa.MetaData(),
    sa.Column("client_id", sa.String(32)),
    sa.Column("enterprise_id", sa.String(32)),
    sa.Column("team_id", sa.String(32)),
    sa.Column("is_enterprise_install", sa.Boolean),
)

_slack_tables = {
    name: sa.Table(
        name, _metadata, sa.Column("id", sa.Integer, primary_key=True), *(sa.Column(c, sa.Text) for c in cols)
    )
    for name, cols in _slack_secrets.items()
}


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A workspace's Breeze key, decrypted, with what may be shown about it."""

    key: SecretStr
    record: KeyRecord


@dataclass(frozen=True, slots=True)
class RotationReport:
    """What `rotate` did: secrets re-encrypted, and those no configured key could open."""

    rotated: int
    unreadable: tuple[str, ...]


class KeyStore:
    """One encrypted Breeze key per workspace (or org, for an org-wide install)."""

    def __init__(self, engine: AsyncEngine, cipher: Cipher) -> None:
        self._engine = engine
        self._cipher = cipher

    async def get(self, workspace: Workspace) -> StoredKey | None:
        """The workspace's key; `StoredKeyUnreadable` if it cannot be decrypted."""
        row = await self._row(workspace)
        if row is None:
            return None
        key = SecretStr(self._cipher.decrypt(row.api_key_encrypted))
        return StoredKey(key, _record(row))

    async def record(self, workspace: Workspace) -> KeyRecord | None:
        """What may be shown about the workspace's key, without decrypting it."""
        row = await self._row(workspace)
        return None if row is None else _record(row)

    async def put(
        self, workspace: Workspace, key: SecretStr, *, set_by: str, key_id: str | None
    ) -> KeyRecord:
        """Store (or replace) the workspace's key, encrypted."""
        secret = key.get_secret_value()
        record = KeyRecord(last4=last_four(secret), set_by=set_by, set_at=datetime.now(UTC), key_id=key_id)
        enterprise, team = workspace.scope
        values = {
            "api_key_encrypted": self._cipher.encrypt(secret),
            "key_id": key_id,
            "last4": record.last4,
            "set_by": set_by,
            "set_at": record.set_at,
        }
        async with storage_errors("save the key"), self._engine.begin() as conn:
            # One statement, so that two admins saving a first key at once cannot collide.
            row = {"enterprise_id": enterprise, "team_id": team, **values}
            await conn.execute(_upsert(conn.dialect.name, row, values))
        return record

    async def delete(self, workspace: Workspace) -> bool:
        """Forget the workspace's key; True if there was one."""
        enterprise, team = workspace.scope
        where = (breeze_keys.c.enterprise_id == enterprise) & (breeze_keys.c.team_id == team)
        async with storage_errors("remove the key"), self._engine.begin() as conn:
            result = await conn.execute(breeze_keys.delete().where(where))
        return bool(result.rowcount)

    async def delete_all(self, workspace: Workspace) -> int:
        """Forget every key stored under this workspace or org (on uninstall)."""
        enterprise, team = workspace.scope
        if workspace.is_enterprise_install and enterprise:
            where = breeze_keys.c.enterprise_id == enterprise
        else:
            where = (breeze_keys.c.enterprise_id == enterprise) & (breeze_keys.c.team_id == team)
        async with storage_errors("remove keys"), self._engine.begin() as conn:
            result = await conn.execute(breeze_keys.delete().where(where))
        return int(result.rowcount)

    async def rotate(self) -> RotationReport:
        """Re-encrypt every stored secret with the first encryption key, in one transaction.

        The app keeps running meanwhile: the rows are locked as they are read (the write lock is
        taken first on SQLite), so a key or token saved while they are re-encrypted waits, and is
        not replaced by the re-encrypted old one.
        """
        rotated = 0
        unreadable: list[str] = []
        async with storage_errors("re-encrypt"), write_transaction(self._engine) as conn:
            rows = await conn.execute(sa.select(breeze_keys).with_for_update())
            for row in rows.all():
                where = (breeze_keys.c.enterprise_id == row.enterprise_id) & (
                    breeze_keys.c.team_id == row.team_id
                )
                try:
                    token = self._cipher.rotate(row.api_key_encrypted)
                except StoredKeyUnreadable:
                    unreadable.append(f"Breeze key of {row.enterprise_id or '-'}/{row.team_id or '-'}")
                    continue
                await conn.execute(breeze_keys.update().where(where).values(api_key_encrypted=token))
                rotated += 1
            for name, table in _slack_tables.items():
                for row in (await conn.execute(sa.select(table).with_for_update())).all():
                    values: dict[str, str] = {}
                    for column in _slack_secrets[name]:
                        token = getattr(row, column)
                        if not token:
                            continue
                        try:
                            values[column] = self._cipher.rotate(token)
                        except StoredKeyUnreadable:
                            unreadable.append(f"{column} in {name} row {row.id}")
                    if values:
                        await conn.execute(table.update().where(table.c.id == row.id).values(**values))
                        rotated += len(values)
        return RotationReport(rotated, tuple(unreadable))

    async def _row(self, workspace: Workspace) -> sa.Row[tuple[object, ...]] | None:
        enterprise, team = workspace.scope
        query = sa.select(breeze_keys).where(
            (breeze_keys.c.enterprise_id == enterprise) & (breeze_keys.c.team_id == team)
        )
        async with storage_errors("read the key"), self._engine.connect() as conn:
            return (await conn.execute(query)).first()


async def installed_workspaces(engine: AsyncEngine, client_id: str) -> list[Workspace]:
    """Every workspace (or org) the app is installed in, to warm the installation cache."""
    c = _slack_bots.c
    query = (
        sa.select(c.enterprise_id, c.team_id, c.is_enterprise_install)
        .where(c.client_id == client_id)
        .distinct()
    )
    async with storage_errors("list installations"), engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [Workspace(row[0], row[1], bool(row[2])) for row in rows]


def _upsert(dialect: str, row: dict[str, Any], changes: dict[str, Any]) -> sa.Insert:
    """INSERT ... ON CONFLICT (workspace) DO UPDATE, as each database spells it."""
    keys = [breeze_keys.c.enterprise_id, breeze_keys.c.team_id]
    if dialect == "postgresql":
        return (
            postgresql.insert(breeze_keys)
            .values(row)
            .on_conflict_do_update(index_elements=keys, set_=changes)
        )
    return sqlite.insert(breeze_keys).values(row).on_conflict_do_update(index_elements=keys, set_=changes)


def _record(row: sa.Row[tuple[object, ...]]) -> KeyRecord:
    set_at = row.set_at
    if set_at.tzinfo is None:  # SQLite keeps no zone; we always write UTC
        set_at = set_at.replace(tzinfo=UTC)
    return KeyRecord(last4=row.last4, set_by=row.set_by, set_at=set_at, key_id=row.key_id)


class storage_errors:
    """Turn a database failure into `StorageError` naming what we were doing."""

    def __init__(self, doing: str) -> None:
        self._doing = doing

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if isinstance(exc, SQLAlchemyError | OSError):
            original = getattr(exc, "orig", None) or exc
            log.error("database error while trying to %s: %s", self._doing, type(original).__name__)
            raise StorageError(f"could not {self._doing}: {type(original).__name__}") from None
