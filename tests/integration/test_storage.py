"""The storage layer against real databases: DATABASE_URL, migrations, KeyStore, encryption at rest.

Every database test takes `any_database`, so it runs on a fresh SQLite file and, when
TEST_DATABASE_URL is set, on PostgreSQL too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.adapters import db
from bot.adapters.crypto import Cipher, new_key
from bot.adapters.key_store import KeyStore, installed_workspaces
from bot.domain.balances import Workspace
from bot.errors import ConfigError, StorageError, StoredKeyUnreadable
from bot.slack.installations import EncryptedInstallationStore
from tests.conftest import ENCRYPTION_KEY, OLD_ENCRYPTION_KEY, postgres_url, reset_postgres

T = TypeVar("T")

CLIENT_ID = "1111.2222"
ALPHA = Workspace(None, "T0ALPHA01")
BETA = Workspace(None, "T0BETA001")
ORG = Workspace("E1", "T1", is_enterprise_install=True)
ALPHA_KEY = "brz_live_AlphaStorageKey_K3Y1"
BETA_KEY = "brz_live_BetaStorageKey_K3Y2"
BOT_TOKEN = "xoxb-4242-1717-storagebottokenvalue"
BOT_REFRESH_TOKEN = "xoxe-1-storagerefreshtokenvalue"
USER_TOKEN = "xoxp-4242-1717-storageusertokenvalue"
APP_TABLES = {"breeze_keys", "slack_installations", "slack_bots", "slack_oauth_states", "alembic_version"}
PASSWORD = "s3cr3tPassw0rd"


def on_database(database_url: str, work: Callable[[AsyncEngine], Awaitable[T]], *, migrate: bool = True) -> T:
    """Open an engine on the database (migrated unless told), run `work`, and dispose of the engine."""

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
    """Every row of `table` exactly as stored, read with plain SQL."""
    async with engine.connect() as conn:
        result = await conn.execute(sa.text(f"SELECT * FROM {table}"))  # noqa: S608 - our own table names
        return [dict(row) for row in result.mappings()]


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names()))


def as_text(row: dict[str, Any]) -> str:
    """All of a row's values as one string, to search for a secret in."""
    return " ".join(str(value) for value in row.values())


def slack_installation(team_id: str = "T0ALPHA01") -> Installation:
    return Installation(
        app_id="A0STORAGE",
        enterprise_id=None,
        team_id=team_id,
        bot_token=BOT_TOKEN,
        bot_id="B0STORAGE",
        bot_user_id="U0BOT0001",
        bot_scopes="commands,users:read",
        bot_refresh_token=BOT_REFRESH_TOKEN,
        bot_token_expires_in=43200,
        user_id="U0ADMIN01",
        user_token=USER_TOKEN,
        user_scopes="identify",
        is_enterprise_install=False,
    )


def installation_store(engine: AsyncEngine, cipher: Cipher) -> EncryptedInstallationStore:
    return EncryptedInstallationStore(AsyncSQLAlchemyInstallationStore(CLIENT_ID, engine), cipher)


# --- DATABASE_URL (pure: no database needed) -------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "driver", "host", "port", "database"),
    [
        (f"postgres://u:{PASSWORD}@h:5432/db", "postgresql+asyncpg", "h", 5432, "db"),
        (f"postgresql://u:{PASSWORD}@db.internal/app", "postgresql+asyncpg", "db.internal", None, "app"),
        (f"postgresql+psycopg2://u:{PASSWORD}@h:6543/db", "postgresql+asyncpg", "h", 6543, "db"),
    ],
)
def test_postgres_urls_get_asyncpg_and_keep_their_parts(
    given: str, driver: str, host: str, port: int | None, database: str
) -> None:
    parsed = db.parse_database_url(given)

    assert parsed.url.drivername == driver
    assert (parsed.url.username, parsed.url.password) == ("u", PASSWORD)
    assert (parsed.url.host, parsed.url.port, parsed.url.database) == (host, port, database)
    assert not parsed.is_sqlite
    assert parsed.sqlite_file is None
    assert dict(parsed.connect_args) == {}


def test_sslmode_becomes_asyncpgs_ssl_connect_argument() -> None:
    parsed = db.parse_database_url(f"postgres://u:{PASSWORD}@h:5432/db?sslmode=require")

    assert dict(parsed.connect_args) == {"ssl": "require"}
    assert dict(parsed.url.query) == {}
    assert "sslmode" not in parsed.display


@pytest.mark.parametrize(
    ("given", "file"),
    [
        ("sqlite:///relative.db", Path("relative.db")),
        ("sqlite:////absolute/path.db", Path("/absolute/path.db")),
        ("sqlite+pysqlite:///x.db", Path("x.db")),
    ],
)
def test_sqlite_urls_get_aiosqlite_and_name_their_file(given: str, file: Path) -> None:
    parsed = db.parse_database_url(given)

    assert parsed.url.drivername == "sqlite+aiosqlite"
    assert parsed.is_sqlite
    assert parsed.sqlite_file == file
    assert parsed.sqlite_file.is_absolute() == given.startswith("sqlite:////")


def test_in_memory_sqlite_has_no_file() -> None:
    assert db.parse_database_url("sqlite://").sqlite_file is None
    assert db.parse_database_url("sqlite:///:memory:").sqlite_file is None


@pytest.mark.parametrize(
    "given",
    [
        "mysql://u:pw@h:3306/db",
        "mysql+pymysql://u:pw@h/db",
        "not a url",
        "",
        "://",
        "postgres://u@h:notaport/db",  # a port that is not a number
    ],
)
def test_other_databases_and_garbage_are_refused_naming_database_url(given: str) -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL") as raised:
        db.parse_database_url(given)

    assert "pw" not in str(raised.value)


@pytest.mark.parametrize(
    "given",
    [
        f"postgres://u:{PASSWORD}@h:5432/db",
        f"postgres://u:{PASSWORD}@h:5432/db?sslmode=require",
        # libpq also takes the user and password as options; those are hidden too.
        f"postgresql://h/db?user=u&password={PASSWORD}",
    ],
)
def test_display_hides_the_password(given: str) -> None:
    parsed = db.parse_database_url(given)

    assert PASSWORD not in parsed.display
    assert "***" in parsed.display
    assert parsed.url.password == PASSWORD  # still there to connect with


def test_libpq_options_are_translated_for_asyncpg() -> None:
    parsed = db.parse_database_url(
        "postgres://u@h/db?application_name=breeze&connect_timeout=7&target_session_attrs=read-write"
        "&channel_binding=prefer"
    )

    assert dict(parsed.connect_args) == {"server_settings": {"application_name": "breeze"}, "timeout": 7.0}
    assert dict(parsed.url.query) == {"target_session_attrs": "read-write"}


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ("postgres://u@h/db?sslmode=sometimes", "sslmode"),
        ("postgres://u@h/db?connect_timeout=soon", "connect_timeout"),
        ("postgres://u@h/db?sslrootcert=/etc/ca.pem", "PGSSLROOTCERT"),
        ("postgres://u@h/db?channel_binding=require", "channel_binding"),
        ("postgres://u@h/db?options=-csearch_path%3Dx", "'options'"),
    ],
)
def test_postgres_options_asyncpg_cannot_take_are_refused_by_name(given: str, named: str) -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL is invalid") as raised:
        db.parse_database_url(given)

    assert named in str(raised.value)


def test_translated_options_reach_a_real_postgresql() -> None:
    url = postgres_url()
    separator = "&" if "?" in url else "?"
    parsed = db.parse_database_url(f"{url}{separator}application_name=breeze-storage-test&connect_timeout=5")

    async def go() -> str:
        engine = db.create_engine(parsed)
        try:
            async with engine.connect() as conn:
                return str(await conn.scalar(sa.text("SELECT current_setting('application_name')")))
        finally:
            await engine.dispose()

    assert asyncio.run(go()) == "breeze-storage-test"


# --- migrations ------------------------------------------------------------------------------------


def test_migrations_run_up_from_empty_then_do_nothing(any_database: str) -> None:
    head = db.head_revision()

    async def work(engine: AsyncEngine) -> None:
        with pytest.raises(ConfigError, match="python -m bot migrate") as raised:
            await db.require_migrated(engine, "the test database")
        assert "the test database has no tables yet" in str(raised.value)
        assert await db.current_revision(engine) is None

        assert await db.migrate(engine) == (None, head)
        await db.require_migrated(engine, "the test database")
        assert await db.current_revision(engine) == head
        assert await db.migrate(engine) == (head, head)
        assert await db.migrate(engine) == (head, head)

        assert await table_names(engine) >= APP_TABLES
        assert await raw_rows(engine, "alembic_version") == [{"version_num": head}]

    on_database(any_database, work, migrate=False)


def test_a_database_at_another_schema_is_named_with_both_revisions(any_database: str) -> None:
    async def work(engine: AsyncEngine) -> None:
        async with engine.begin() as conn:
            await conn.execute(sa.text("UPDATE alembic_version SET version_num = '0000'"))

        with pytest.raises(ConfigError, match="python -m bot migrate") as raised:
            await db.require_migrated(engine, "the test database")
        assert f"is at schema 0000, this version needs {db.head_revision()}" in str(raised.value)

    on_database(any_database, work)


def test_a_failed_migration_leaves_nothing_half_done(any_database: str) -> None:
    """A migration is one transaction: after a failure, the fixed database migrates cleanly."""

    async def work(engine: AsyncEngine) -> None:
        async with engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE slack_bots (id INTEGER)"))  # in the way

        with pytest.raises(StorageError, match="migration failed"):
            await db.migrate(engine)
        assert await table_names(engine) == {"slack_bots"}
        assert await db.current_revision(engine) is None

        async with engine.begin() as conn:
            await conn.execute(sa.text("DROP TABLE slack_bots"))
        assert await db.migrate(engine) == (None, db.head_revision())
        assert await table_names(engine) >= APP_TABLES

    on_database(any_database, work, migrate=False)


def test_postgres_migrations_started_together_run_once() -> None:
    url = postgres_url()
    reset_postgres(url)

    async def go() -> list[tuple[str | None, str]]:
        engines = [db.create_engine(db.parse_database_url(url)) for _ in range(3)]
        try:
            return list(await asyncio.gather(*(db.migrate(engine) for engine in engines)))
        finally:
            for engine in engines:
                await engine.dispose()

    results = asyncio.run(go())

    head = db.head_revision()
    assert results.count((None, head)) == 1  # one migrated; the others waited, then found it done
    assert results.count((head, head)) == 2


# --- KeyStore --------------------------------------------------------------------------------------


def test_a_key_round_trips(any_database: str) -> None:
    async def work(engine: AsyncEngine) -> None:
        store = KeyStore(engine, Cipher([ENCRYPTION_KEY]))
        assert await store.get(ALPHA) is None
        assert await store.record(ALPHA) is None

        record = await store.put(ALPHA, SecretStr(ALPHA_KEY), set_by="U0ADMIN01", key_id="key_alpha")
        stored = await store.get(ALPHA)

        assert stored is not None
        assert stored.key.get_secret_value() == ALPHA_KEY
        assert stored.record == record
        assert (record.last4, record.set_by, record.key_id) == ("K3Y1", "U0ADMIN01", "key_alpha")
        assert ALPHA_KEY not in repr(stored)

    on_database(any_database, work)


def test_record_needs_no_decryption(any_database: str) -> None:
    async def work(engine: AsyncEngine) -> None:
        record = await KeyStore(engine, Cipher([ENCRYPTION_KEY])).put(
            ALPHA, SecretStr(ALPHA_KEY), set_by="U0ADMIN01", key_id=None
        )
        # A store whose cipher cannot open the key can still say what is stored.
        blind = KeyStore(engine, Cipher([new_key()]))

        assert await blind.record(ALPHA) == record
        assert await blind.record(BETA) is None

    on_database(any_database, work)


def test_putting_a_key_again_replaces_the_row(any_database: str) -> None:
    async def work(engine: AsyncEngine) -> None:
        store = KeyStore(engine, Cipher([ENCRYPTION_KEY]))
        await store.put(ALPHA, SecretStr(ALPHA_KEY), set_by="U0ADMIN01", key_id="key_1")
        second = await store.put(ALPHA, SecretStr(BETA_KEY), set_by="U0ADMIN02", key_id=None)

        rows = await raw_rows(engine, "breeze_keys")
        assert len(rows) == 1
        assert (rows[0]["last4"], rows[0]["set_by"], rows[0]["key_id"]) == ("K3Y2", "U0ADMIN02", None)
        stored = await store.get(ALPHA)
        assert stored is not None
        assert stored.key.get_secret_value() == BETA_KEY
        assert stored.record == second

    on_database(any_database, work)


def test_first_keys_saved_at_the_same_moment_do_not_collide(any_database: str) -> None:
    """Two admins saving a workspace's first key at once: both succeed, one key remains."""
    keys = [f"brz_live_Concurrent_{n:04d}" for n in range(5)]

    async def work(engine: AsyncEngine) -> None:
        store = KeyStore(engine, Cipher([ENCRYPTION_KEY]))

        await asyncio.gather(
            *(store.put(ALPHA, SecretStr(key), set_by="U0ADMIN01", key_id=None) for key in keys)
        )

        rows = await raw_rows(engine, "breeze_keys")
        assert len(rows) == 1
        stored = await store.get(ALPHA)
        assert stored is not None
        assert stored.key.get_secret_value() in keys
        assert stored.record.last4 == stored.key.get_secret_value()[-4:]

    on_database(any_database, work)


def test_delete_says_whether_there_was_a_key(any_database: str) -> None:
    async def work(engine: AsyncEngine) -> None:
        store = KeyStore(engine, Cipher([ENCRYPTION_KEY]))
        await store.put(ALPHA, SecretStr(ALPHA_KEY), set_by="U0ADMIN01", key_id=None)

        assert await store.delete(ALPHA) is True
        assert await store.delete(ALPHA) is False
        assert await store.get(ALPHA) is None
        assert await raw_rows(engine, "breeze_keys") == []

    on_database(any_database, work)


def test_workspaces_keep_separate_keys(any_database: str) -> None:
    async def work(engine: AsyncEngine) -> None:
        store = KeyStore(engine, Cipher([ENCRYPTION_KEY]))
        await store.put(ALPHA, SecretStr(ALPHA_KEY), set_by="U0ADMIN01", key_id=None)
        await store.put(BETA, SecretStr(BETA_KEY), set_by="U0ADMIN02", key_id=None)

        alpha, beta = await store.get(ALPHA), await store.get(BETA)
        assert alpha is not None
        assert beta is not None
        assert (alpha.key.get_secret_value(), beta.key.get_secret_value()) == (ALPHA_KEY, BETA_KEY)

        assert await store.delete(ALPHA) is True
        assert await store.get(ALPHA) is None
        still = await store.get(BETA)
        assert still is not None
        assert still.key.get_secret_value() == BETA_KEY
        assert await store.delete_all(BETA) == 1
        assert await raw_rows(engine, "breeze_keys") == []

    on_database(any_database, work)


def test_an_org_wide_key_is_stored_under_the_enterprise_and_delete_all_clears_the_org(
    any_database: str,
) -> None:
    async def work(engine: AsyncEngine) -> None:
        store = KeyStore(engine, Cipher([ENCRYPTION_KEY]))
        await store.put(ORG, SecretStr(ALPHA_KEY), set_by="U0ADMIN01", key_id=None)
        # A workspace of the same org installed on its own, a workspace of another org, and a plain one.
        await store.put(Workspace("E1", "T3"), SecretStr(BETA_KEY), set_by="U0ADMIN01", key_id=None)
        await store.put(Workspace("E2", "T9"), SecretStr(BETA_KEY), set_by="U0ADMIN01", key_id=None)
        await store.put(ALPHA, SecretStr(BETA_KEY), set_by="U0ADMIN01", key_id=None)

        scopes = {(row["enterprise_id"], row["team_id"]) for row in await raw_rows(engine, "breeze_keys")}
        assert scopes == {("E1", ""), ("E1", "T3"), ("E2", "T9"), ("", "T0ALPHA01")}
        other_team_same_org = await store.get(Workspace("E1", "T2", is_enterprise_install=True))
        assert other_team_same_org is not None
        assert other_team_same_org.key.get_secret_value() == ALPHA_KEY

        assert await store.delete_all(ORG) == 2

        scopes = {(row["enterprise_id"], row["team_id"]) for row in await raw_rows(engine, "breeze_keys")}
        assert scopes == {("E2", "T9"), ("", "T0ALPHA01")}

    on_database(any_database, work)


def test_delete_all_for_an_org_wide_install_without_an_org_removes_only_its_own_row(
    any_database: str,
) -> None:
    """Without an enterprise id there is no org: other workspaces' keys must survive."""

    async def work(engine: AsyncEngine) -> None:
        store = KeyStore(engine, Cipher([ENCRYPTION_KEY]))
        await store.put(ALPHA, SecretStr(ALPHA_KEY), set_by="U0ADMIN01", key_id=None)
        await store.put(BETA, SecretStr(BETA_KEY), set_by="U0ADMIN01", key_id=None)

        assert await store.delete_all(Workspace(None, "T0ALPHA01", is_enterprise_install=True)) == 0

        assert len(await raw_rows(engine, "breeze_keys")) == 2

    on_database(any_database, work)


def test_set_at_comes_back_timezone_aware_utc(any_database: str) -> None:
    async def work(engine: AsyncEngine) -> None:
        store = KeyStore(engine, Cipher([ENCRYPTION_KEY]))
        before = datetime.now(UTC)
        await store.put(ALPHA, SecretStr(ALPHA_KEY), set_by="U0ADMIN01", key_id=None)
        after = datetime.now(UTC)

        record, stored = await store.record(ALPHA), await store.get(ALPHA)
        assert record is not None
        assert stored is not None
        for set_at in (record.set_at, stored.record.set_at):
            assert set_at.tzinfo is not None
            assert set_at.utcoffset() == timedelta(0)
            assert before <= set_at <= after

    on_database(any_database, work)


# --- encryption at rest ----------------------------------------------------------------------------


def test_the_breeze_key_is_encrypted_at_rest_and_only_last4_shows(any_database: str) -> None:
    async def work(engine: AsyncEngine) -> None:
        cipher = Cipher([ENCRYPTION_KEY])
        await KeyStore(engine, cipher).put(ALPHA, SecretStr(ALPHA_KEY), set_by="U0ADMIN01", key_id="kid")

        [row] = await raw_rows(engine, "breeze_keys")
        assert ALPHA_KEY not in as_text(row)
        assert ALPHA_KEY[:-4] not in as_text(row)
        assert row["last4"] == ALPHA_KEY[-4:]
        assert cipher.decrypt(row["api_key_encrypted"]) == ALPHA_KEY

    on_database(any_database, work)


def test_slack_tokens_are_encrypted_at_rest_and_read_back_decrypted(any_database: str) -> None:
    async def work(engine: AsyncEngine) -> None:
        store = installation_store(engine, Cipher([ENCRYPTION_KEY]))
        await store.async_save(slack_installation())

        for table in ("slack_installations", "slack_bots"):
            [row] = await raw_rows(engine, table)
            for token in (BOT_TOKEN, BOT_REFRESH_TOKEN, USER_TOKEN):
                assert token not in as_text(row), f"{table} stores a token in the clear"
            assert row["bot_token"]
        bot = await store.async_find_bot(enterprise_id=None, team_id="T0ALPHA01")
        assert bot is not None
        assert (bot.bot_token, bot.bot_refresh_token) == (BOT_TOKEN, BOT_REFRESH_TOKEN)
        installation = await store.async_find_installation(enterprise_id=None, team_id="T0ALPHA01")
        assert installation is not None
        assert (installation.bot_token, installation.user_token) == (BOT_TOKEN, USER_TOKEN)

    on_database(any_database, work)


def test_a_key_stored_under_other_encryption_keys_is_unreadable(any_database: str) -> None:
    async def work(engine: AsyncEngine) -> None:
        await KeyStore(engine, Cipher([OLD_ENCRYPTION_KEY])).put(
            ALPHA, SecretStr(ALPHA_KEY), set_by="U0ADMIN01", key_id=None
        )
        others = KeyStore(engine, Cipher([ENCRYPTION_KEY, new_key()]))

        with pytest.raises(StoredKeyUnreadable) as raised:
            await others.get(ALPHA)
        assert ALPHA_KEY not in str(raised.value)
        assert OLD_ENCRYPTION_KEY not in str(raised.value)

    on_database(any_database, work)


# --- rotation --------------------------------------------------------------------------------------


def test_rotate_re_encrypts_every_secret_with_the_first_key(any_database: str) -> None:
    async def work(engine: AsyncEngine) -> None:
        old = Cipher([OLD_ENCRYPTION_KEY])
        await KeyStore(engine, old).put(ALPHA, SecretStr(ALPHA_KEY), set_by="U0ADMIN01", key_id=None)
        await KeyStore(engine, old).put(ORG, SecretStr(BETA_KEY), set_by="U0ADMIN01", key_id=None)
        await installation_store(engine, old).async_save(slack_installation())

        report = await KeyStore(engine, Cipher([ENCRYPTION_KEY, OLD_ENCRYPTION_KEY])).rotate()

        # 2 Breeze keys; bot, refresh and user token in slack_installations; bot and refresh in slack_bots.
        assert report.rotated == 7
        assert report.unreadable == ()
        new_only = Cipher([ENCRYPTION_KEY])
        alpha, org = await KeyStore(engine, new_only).get(ALPHA), await KeyStore(engine, new_only).get(ORG)
        assert alpha is not None
        assert org is not None
        assert (alpha.key.get_secret_value(), org.key.get_secret_value()) == (ALPHA_KEY, BETA_KEY)
        store = installation_store(engine, new_only)
        bot = await store.async_find_bot(enterprise_id=None, team_id="T0ALPHA01")
        assert bot is not None
        assert (bot.bot_token, bot.bot_refresh_token) == (BOT_TOKEN, BOT_REFRESH_TOKEN)
        installation = await store.async_find_installation(enterprise_id=None, team_id="T0ALPHA01")
        assert installation is not None
        assert installation.user_token == USER_TOKEN
        with pytest.raises(StoredKeyUnreadable):
            await KeyStore(engine, old).get(ALPHA)

    on_database(any_database, work)


def test_rotate_reports_what_no_key_opens_and_leaves_it_unchanged(any_database: str) -> None:
    stranger = Cipher([new_key()])

    async def work(engine: AsyncEngine) -> None:
        await KeyStore(engine, Cipher([OLD_ENCRYPTION_KEY])).put(
            ALPHA, SecretStr(ALPHA_KEY), set_by="U0ADMIN01", key_id=None
        )
        await KeyStore(engine, stranger).put(BETA, SecretStr(BETA_KEY), set_by="U0ADMIN01", key_id=None)
        await installation_store(engine, stranger).async_save(slack_installation())
        keys_before = {r["team_id"]: r["api_key_encrypted"] for r in await raw_rows(engine, "breeze_keys")}
        bots_before = await raw_rows(engine, "slack_bots")
        installations_before = await raw_rows(engine, "slack_installations")

        report = await KeyStore(engine, Cipher([ENCRYPTION_KEY, OLD_ENCRYPTION_KEY])).rotate()

        assert report.rotated == 1
        bot_row, installation_row = bots_before[0]["id"], installations_before[0]["id"]
        assert set(report.unreadable) == {
            "Breeze key of -/T0BETA001",
            f"bot_token in slack_installations row {installation_row}",
            f"bot_refresh_token in slack_installations row {installation_row}",
            f"user_token in slack_installations row {installation_row}",
            f"bot_token in slack_bots row {bot_row}",
            f"bot_refresh_token in slack_bots row {bot_row}",
        }
        keys_after = {r["team_id"]: r["api_key_encrypted"] for r in await raw_rows(engine, "breeze_keys")}
        assert keys_after["T0BETA001"] == keys_before["T0BETA001"]
        assert keys_after["T0ALPHA01"] != keys_before["T0ALPHA01"]
        assert await raw_rows(engine, "slack_bots") == bots_before
        assert await raw_rows(engine, "slack_installations") == installations_before
        still = await KeyStore(engine, stranger).get(BETA)
        assert still is not None
        assert still.key.get_secret_value() == BETA_KEY

    on_database(any_database, work)


def test_installations_are_listed_for_the_cache_and_unreadable_ones_are_treated_as_missing(
    any_database: str,
) -> None:
    async def work(engine: AsyncEngine) -> None:
        store = installation_store(engine, Cipher([ENCRYPTION_KEY]))
        await store.async_save(slack_installation())

        assert await installed_workspaces(engine, CLIENT_ID) == [Workspace(None, "T0ALPHA01")]
        assert await installed_workspaces(engine, "another-app") == []
        found = await store.async_find_installation(enterprise_id=None, team_id="T0ALPHA01")
        assert found is not None
        assert found.bot_token == BOT_TOKEN
        other_keys = installation_store(engine, Cipher([OLD_ENCRYPTION_KEY]))
        assert await other_keys.async_find_bot(enterprise_id=None, team_id="T0ALPHA01") is None

        await store.async_delete_all(enterprise_id=None, team_id="T0ALPHA01")
        assert await store.async_find_bot(enterprise_id=None, team_id="T0ALPHA01") is None
        assert await raw_rows(engine, "slack_installations") == []
        assert await raw_rows(engine, "slack_bots") == []

    on_database(any_database, work)


ROTATED = 400


def test_keys_saved_while_rotate_keys_runs_are_kept(any_database: str) -> None:
    """The README has `rotate-keys` run while the app serves: a key saved meanwhile must stay the new one."""
    workspaces = [Workspace(None, f"T0ROT{number:05d}") for number in range(ROTATED)]

    async def work(engine: AsyncEngine) -> None:
        old = KeyStore(engine, Cipher([OLD_ENCRYPTION_KEY]))
        for number, workspace in enumerate(workspaces):
            await old.put(workspace, SecretStr(f"brz_live_old_{number}"), set_by="U0ADMIN01", key_id=None)
        app = KeyStore(engine, Cipher([ENCRYPTION_KEY, OLD_ENCRYPTION_KEY]))

        async def admins_save_new_keys() -> None:
            await asyncio.sleep(0)  # rotate-keys starts first
            for number, workspace in reversed(list(enumerate(workspaces))):
                await app.put(workspace, SecretStr(f"brz_live_new_{number}"), set_by="U0ADMIN02", key_id=None)

        report, _ = await asyncio.gather(app.rotate(), admins_save_new_keys())

        assert report.unreadable == ()
        new_only = KeyStore(engine, Cipher([ENCRYPTION_KEY]))
        lost = []
        for number, workspace in enumerate(workspaces):
            stored = await new_only.get(workspace)
            assert stored is not None
            if stored.key.get_secret_value() != f"brz_live_new_{number}":
                lost.append(workspace)
        assert not lost, f"{len(lost)} of {ROTATED} new keys were replaced by the old ones"

    on_database(any_database, work)


def test_bot_tokens_refreshed_while_rotate_keys_runs_are_kept(any_database: str) -> None:
    """A rotating bot token refreshed meanwhile must stay the new one (Slack takes its refresh token once)."""
    teams = [f"T0ROT{number:05d}" for number in range(ROTATED // 4)]

    async def work(engine: AsyncEngine) -> None:
        for team in teams:
            await installation_store(engine, Cipher([OLD_ENCRYPTION_KEY])).async_save(
                slack_installation(team)
            )
        app = installation_store(engine, Cipher([ENCRYPTION_KEY, OLD_ENCRYPTION_KEY]))

        async def tokens_refreshed() -> None:
            await asyncio.sleep(0)  # rotate-keys starts first
            for team in reversed(teams):
                bot = await app.async_find_bot(enterprise_id=None, team_id=team)
                assert bot is not None
                fresh = Bot(**{**bot.to_dict_for_copying(), "bot_token": f"xoxb-new-{team}"})
                fresh.bot_refresh_token = f"xoxe-new-{team}"
                await app.async_save_bot(fresh)

        await asyncio.gather(
            KeyStore(engine, Cipher([ENCRYPTION_KEY, OLD_ENCRYPTION_KEY])).rotate(), tokens_refreshed()
        )

        new_only = installation_store(engine, Cipher([ENCRYPTION_KEY]))
        lost = []
        for team in teams:
            bot = await new_only.async_find_bot(enterprise_id=None, team_id=team)
            assert bot is not None
            if (bot.bot_token, bot.bot_refresh_token) != (f"xoxb-new-{team}", f"xoxe-new-{team}"):
                lost.append(team)
        assert not lost, f"{len(lost)} of {len(teams)} refreshed bot tokens were replaced by the old ones"

    on_database(any_database, work)
