"""Storage on real databases: URLs, migrations, encrypted keys and tokens, rotation.

Each database test runs on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import db
from bot.crypto import Cipher
from bot.domain import Workspace
from bot.errors import ConfigError, StoredKeyUnreadable
from bot.slack.installations import EncryptedInstallationStore
from bot.store import KeyStore, installed_workspaces
from tests.conftest import ENCRYPTION_KEY, OLD_ENCRYPTION_KEY

T = TypeVar("T")
ACME = Workspace(None, "T0ACME001")
GLOBEX = Workspace(None, "T0GLOBEX1")
ORG = Workspace("E0ORG0001", "T0ORGWS01", is_enterprise_install=True)
KEY = "brz_live_AcmeSecretKey_7Q2W"
OTHER_KEY = "brz_live_GlobexSecretKey_5R8T"
BOT_TOKEN = "xoxb-9999-8888-installedbottoken"
REFRESH_TOKEN = "xoxe-1-refreshtokenvalue-abcdef"


def run(database_url: str, work: Callable[[AsyncEngine], Awaitable[T]], migrate: bool = True) -> T:
    """Open an engine on the database, optionally migrate, run `work`, close the engine."""

    async def go() -> T:
        engine = db.create_engine(db.parse_database_url(database_url))
        try:
            if migrate:
                await db.migrate(engine)
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(go())


async def raw_rows(engine: AsyncEngine, table: str) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        result = await conn.execute(sa.text(f"SELECT * FROM {table}"))  # noqa: S608 - fixed table names
        return [dict(row) for row in result.mappings()]


# --- DATABASE_URL as platforms and people hand it out ---------------------------------------------


@pytest.mark.parametrize(
    ("given", "driver", "database"),
    [
        ("postgres://u:pw@db.internal:5432/app", "postgresql+asyncpg", "app"),
        ("postgresql://u:pw@db.internal/app", "postgresql+asyncpg", "app"),
        ("postgresql+psycopg2://u:pw@db.internal/app", "postgresql+asyncpg", "app"),
        ("postgresql+asyncpg://u:pw@db.internal/app", "postgresql+asyncpg", "app"),
        ("sqlite:///relative.db", "sqlite+aiosqlite", "relative.db"),
        ("sqlite:////srv/data/absolute.db", "sqlite+aiosqlite", "/srv/data/absolute.db"),
        ("sqlite+pysqlite:///x.db", "sqlite+aiosqlite", "x.db"),
        ("  sqlite:///spaces.db  ", "sqlite+aiosqlite", "spaces.db"),
    ],
)
def test_database_urls_get_an_async_driver(given: str, driver: str, database: str) -> None:
    parsed = db.parse_database_url(given)

    assert parsed.url.drivername == driver
    assert parsed.url.database == database
    assert "pw" not in parsed.display


def test_sslmode_becomes_asyncpgs_ssl_argument() -> None:
    parsed = db.parse_database_url("postgres://u:pw@db.internal:5432/app?sslmode=require")

    assert dict(parsed.connect_args) == {"ssl": "require"}
    assert "sslmode" not in parsed.url.query


def test_sqlite_file_locations() -> None:
    assert str(db.parse_database_url("sqlite:///data/x.db").sqlite_file) == "data/x.db"
    assert db.parse_database_url("sqlite://").sqlite_file is None
    assert db.parse_database_url("postgres://u@h/db").sqlite_file is None


@pytest.mark.parametrize("given", ["mysql://u@h/db", "not a url", "redis://localhost:6379/0"])
def test_other_databases_are_refused_by_name(given: str) -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL is invalid"):
        db.parse_database_url(given)


def test_a_missing_sqlite_folder_is_named(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        db.create_engine(db.parse_database_url(f"sqlite:///{tmp_path}/no/such/folder/x.db"))


# --- migrations ------------------------------------------------------------------------------------


def test_migrations_run_up_from_empty_and_then_do_nothing(any_database: str) -> None:
    async def work(engine: AsyncEngine) -> None:
        with pytest.raises(ConfigError, match="python -m bot migrate"):
            await db.require_migrated(engine, "the database")
        assert await db.current_revision(engine) is None

        before, after = await db.migrate(engine)
        assert (before, after) == (None, db.head_revision())
        await db.require_migrated(engine, "the database")
        assert await db.migrate(engine) == (after, after)

        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
        assert {"breeze_keys", "slack_installations", "slack_bots", "slack_oauth_states"} <= tables

    run(any_database, work, migrate=False)


# --- keys ------------------------------------------------------------------------------------------


def test_keys_round_trip_per_workspace_and_stay_encrypted_at_rest(any_database: str) -> None:
    async def work(engine: AsyncEngine) -> None:
        store = KeyStore(engine, Cipher([ENCRYPTION_KEY]))
        assert await store.get(ACME) is None

        record = await store.put(ACME, SecretStr(KEY), set_by="UADMIN001", key_id="key_acme")
        await store.put(GLOBEX, SecretStr(OTHER_KEY), set_by="UADMIN002", key_id=None)

        acme = await store.get(ACME)
        assert acme is not None
        assert acme.key.get_secret_value() == KEY
        assert acme.record == record
        assert (record.last4, record.set_by, record.key_id) == ("7Q2W", "UADMIN001", "key_acme")
        assert acme.record.set_at.tzinfo is not None
        assert acme.record.set_at.utcoffset() == UTC.utcoffset(None)
        globex = await store.get(GLOBEX)
        assert globex is not None
        assert globex.key.get_secret_value() == OTHER_KEY
        assert await store.record(ACME) == record

        rows = await raw_rows(engine, "breeze_keys")
        assert len(rows) == 2
        for row in rows:
            text = " ".join(str(value) for value in row.values())
            assert KEY not in text
            assert OTHER_KEY not in text
        assert {row["last4"] for row in rows} == {"7Q2W", "5R8T"}

    run(any_database, work)


def test_setting_a_key_again_replaces_it(any_database: str) -> None:
    async def work(engine: AsyncEngine) -> None:
        store = KeyStore(engine, Cipher([ENCRYPTION_KEY]))
        await store.put(ACME, SecretStr(KEY), set_by="UADMIN001", key_id="key_1")
        await store.put(ACME, SecretStr(OTHER_KEY), set_by="UADMIN002", key_id="key_2")

        stored = await store.get(ACME)
        assert stored is not None
        assert stored.key.get_secret_value() == OTHER_KEY
        assert (stored.record.set_by, stored.record.key_id) == ("UADMIN002", "key_2")
        assert len(await raw_rows(engine, "breeze_keys")) == 1

        assert await store.delete(ACME) is True
        assert await store.delete(ACME) is False
        assert await store.get(ACME) is None

    run(any_database, work)


def test_an_org_wide_key_is_stored_under_the_enterprise_and_removed_with_it(any_database: str) -> None:
    async def work(engine: AsyncEngine) -> None:
        store = KeyStore(engine, Cipher([ENCRYPTION_KEY]))
        await store.put(ORG, SecretStr(KEY), set_by="UADMIN001", key_id=None)
        await store.put(ACME, SecretStr(OTHER_KEY), set_by="UADMIN001", key_id=None)

        same_org = Workspace("E0ORG0001", "T0ANOTHER", is_enterprise_install=True)
        found = await store.get(same_org)
        assert found is not None
        assert found.key.get_secret_value() == KEY
        keys = {(row["enterprise_id"], row["team_id"]) for row in await raw_rows(engine, "breeze_keys")}
        assert keys == {("E0ORG0001", ""), ("", "T0ACME001")}

        assert await store.delete_all(same_org) == 1
        assert await store.get(ACME) is not None

    run(any_database, work)


def test_a_key_under_a_lost_encryption_key_is_unreadable_not_wrong(any_database: str) -> None:
    async def work(engine: AsyncEngine) -> None:
        await KeyStore(engine, Cipher([OLD_ENCRYPTION_KEY])).put(
            ACME, SecretStr(KEY), set_by="U1", key_id=None
        )
        other = KeyStore(engine, Cipher([ENCRYPTION_KEY]))

        with pytest.raises(StoredKeyUnreadable):
            await other.get(ACME)
        record = await other.record(ACME)  # what can be shown needs no decryption
        assert record is not None
        assert record.last4 == KEY[-4:]

    run(any_database, work)


# --- Slack installations ---------------------------------------------------------------------------


def installation(team_id: str = "T0ACME001") -> Installation:
    return Installation(
        app_id="A0001",
        enterprise_id=None,
        team_id=team_id,
        bot_token=BOT_TOKEN,
        bot_id="B0001",
        bot_user_id="UBOT0001",
        bot_scopes="commands,users:read",
        bot_refresh_token=REFRESH_TOKEN,
        bot_token_expires_in=43200,
        user_id="UADMIN001",
        is_enterprise_install=False,
    )


def test_slack_tokens_are_stored_encrypted_and_read_back(any_database: str) -> None:
    async def work(engine: AsyncEngine) -> None:
        inner = AsyncSQLAlchemyInstallationStore("1111.2222", engine)
        store = EncryptedInstallationStore(inner, Cipher([ENCRYPTION_KEY]))
        await store.async_save(installation())

        for table in ("slack_installations", "slack_bots"):
            rows = await raw_rows(engine, table)
            assert len(rows) == 1
            text = " ".join(str(value) for value in rows[0].values())
            assert BOT_TOKEN not in text
            assert REFRESH_TOKEN not in text
        bot = await store.async_find_bot(enterprise_id=None, team_id="T0ACME001")
        assert bot is not None
        assert (bot.bot_token, bot.bot_refresh_token) == (BOT_TOKEN, REFRESH_TOKEN)
        found = await store.async_find_installation(enterprise_id=None, team_id="T0ACME001")
        assert found is not None
        assert found.bot_token == BOT_TOKEN
        assert await installed_workspaces(engine, "1111.2222") == [Workspace(None, "T0ACME001")]
        assert await installed_workspaces(engine, "another-app") == []

        unreadable = EncryptedInstallationStore(inner, Cipher([OLD_ENCRYPTION_KEY]))
        assert await unreadable.async_find_bot(enterprise_id=None, team_id="T0ACME001") is None

        await store.async_delete_all(enterprise_id=None, team_id="T0ACME001")
        assert await store.async_find_bot(enterprise_id=None, team_id="T0ACME001") is None
        assert await raw_rows(engine, "slack_installations") == []

    run(any_database, work)


# --- rotation --------------------------------------------------------------------------------------


def test_rotation_re_encrypts_every_secret_with_the_first_key(any_database: str) -> None:
    async def work(engine: AsyncEngine) -> None:
        old = Cipher([OLD_ENCRYPTION_KEY])
        await KeyStore(engine, old).put(ACME, SecretStr(KEY), set_by="U1", key_id=None)
        await KeyStore(engine, old).put(GLOBEX, SecretStr(OTHER_KEY), set_by="U1", key_id=None)
        inner = AsyncSQLAlchemyInstallationStore("1111.2222", engine)
        await EncryptedInstallationStore(inner, old).async_save(installation())
        before = await raw_rows(engine, "breeze_keys")

        report = await KeyStore(engine, Cipher([ENCRYPTION_KEY, OLD_ENCRYPTION_KEY])).rotate()

        # 2 Breeze keys; bot and refresh token in each of slack_installations and slack_bots.
        assert report.rotated == 6
        assert report.unreadable == ()
        new_only = Cipher([ENCRYPTION_KEY])
        acme = await KeyStore(engine, new_only).get(ACME)
        assert acme is not None
        assert acme.key.get_secret_value() == KEY
        bot = await EncryptedInstallationStore(inner, new_only).async_find_bot(
            enterprise_id=None, team_id="T0ACME001"
        )
        assert bot is not None
        assert bot.bot_token == BOT_TOKEN
        after = await raw_rows(engine, "breeze_keys")
        assert {r["api_key_encrypted"] for r in before}.isdisjoint({r["api_key_encrypted"] for r in after})
        with pytest.raises(StoredKeyUnreadable):
            await KeyStore(engine, old).get(ACME)

    run(any_database, work)


def test_rotation_names_what_no_key_opens_and_leaves_it_alone(any_database: str) -> None:
    async def work(engine: AsyncEngine) -> None:
        await KeyStore(engine, Cipher([OLD_ENCRYPTION_KEY])).put(
            ACME, SecretStr(KEY), set_by="U1", key_id=None
        )
        await KeyStore(engine, Cipher([ENCRYPTION_KEY])).put(
            GLOBEX, SecretStr(OTHER_KEY), set_by="U1", key_id=None
        )
        before = {r["team_id"]: r["api_key_encrypted"] for r in await raw_rows(engine, "breeze_keys")}

        report = await KeyStore(engine, Cipher([ENCRYPTION_KEY])).rotate()

        assert report.rotated == 1
        assert report.unreadable == ("Breeze key of -/T0ACME001",)
        after = {r["team_id"]: r["api_key_encrypted"] for r in await raw_rows(engine, "breeze_keys")}
        assert after["T0ACME001"] == before["T0ACME001"]

    run(any_database, work)
