"""The database commands as an operator runs them: `python -m bot migrate|rotate-keys|new-encryption-key`.

These commands read only DATABASE_URL and BREEZE_ENCRYPTION_KEYS, so no SLACK_* variable is set
(`base_env` passes nothing of the app's settings along unless given).
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from cryptography.fernet import Fernet
from pydantic import SecretStr
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.adapters import db
from bot.adapters.crypto import Cipher, is_key, new_key
from bot.adapters.key_store import KeyStore
from bot.domain.balances import Workspace
from bot.slack.installations import EncryptedInstallationStore
from tests.conftest import ENCRYPTION_KEY, OLD_ENCRYPTION_KEY, SIGNING_SECRET, postgres_url, reset_postgres
from tests.integration.test_cli import base_env, run_bot

T = TypeVar("T")

HEAD = db.head_revision()
ALPHA = Workspace(None, "T0CLIALPH")
BETA = Workspace(None, "T0CLIBETA")
ALPHA_KEY = "brz_live_CliAlphaKey_Q1W2"
BETA_KEY = "brz_live_CliBetaKey_E3R4"
BOT_TOKEN = "xoxb-5150-6160-clibottokenvalue"
BOT_REFRESH_TOKEN = "xoxe-1-clirefreshtokenvalue"
DB_PASSWORD = "cliS3cretDbPassword"
SECRETS = (ALPHA_KEY, BETA_KEY, BOT_TOKEN, BOT_REFRESH_TOKEN, ENCRYPTION_KEY, OLD_ENCRYPTION_KEY, DB_PASSWORD)


def on_database(database_url: str, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Run `work` in-process on the database, closing the engine after."""

    async def go() -> T:
        engine = db.create_engine(db.parse_database_url(database_url))
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def assert_no_secret_in(result: subprocess.CompletedProcess[str]) -> None:
    shown = output(result)
    for secret in SECRETS:
        assert secret not in shown
    assert "Traceback" not in shown


def installation(cipher: Cipher, engine: AsyncEngine) -> Awaitable[None]:
    """Save a Slack installation (bot and refresh token) through the encrypting store."""
    store = EncryptedInstallationStore(AsyncSQLAlchemyInstallationStore("1111.2222", engine), cipher)
    return store.async_save(
        Installation(
            app_id="A0CLI0001",
            enterprise_id=None,
            team_id=ALPHA.team_id,
            bot_token=BOT_TOKEN,
            bot_id="B0CLI0001",
            bot_user_id="U0CLIBOT1",
            bot_refresh_token=BOT_REFRESH_TOKEN,
            bot_token_expires_in=43200,
            user_id="U0CLIADM1",
        )
    )


def stored_secrets(database_url: str, keys: list[str]) -> tuple[str | None, str | None]:
    """(ALPHA's Breeze key, ALPHA's bot token) as a cipher of `keys` alone reads them."""

    async def work(engine: AsyncEngine) -> tuple[str | None, str | None]:
        cipher = Cipher(keys)
        stored = await KeyStore(engine, cipher).get(ALPHA)
        store = EncryptedInstallationStore(AsyncSQLAlchemyInstallationStore("1111.2222", engine), cipher)
        bot = await store.async_find_bot(enterprise_id=None, team_id=ALPHA.team_id)
        return (stored.key.get_secret_value() if stored else None, bot.bot_token if bot else None)

    return on_database(database_url, work)


# --- migrate ---------------------------------------------------------------------------------------


def test_migrate_creates_the_default_sqlite_database_then_says_it_is_up_to_date(tmp_path: Path) -> None:
    first = run_bot("migrate", env=base_env(), cwd=tmp_path)
    second = run_bot("migrate", env=base_env(), cwd=tmp_path)

    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == (
        f"Migrated sqlite+aiosqlite:///breeze-balance.db from an empty database to schema {HEAD}."
    )
    assert (tmp_path / "breeze-balance.db").is_file()
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == f"sqlite+aiosqlite:///breeze-balance.db is up to date (schema {HEAD})."
    assert_no_secret_in(first)
    assert_no_secret_in(second)

    async def check(engine: AsyncEngine) -> str | None:
        return await db.current_revision(engine)

    assert on_database(f"sqlite:///{tmp_path / 'breeze-balance.db'}", check) == HEAD


def test_serve_refuses_an_unmigrated_database_and_names_the_command(tmp_path: Path) -> None:
    result = run_bot("serve", env=base_env(SLACK_SIGNING_SECRET=SIGNING_SECRET), cwd=tmp_path)

    assert result.returncode == 2
    assert "Breeze Balance cannot start" in result.stderr
    assert "has no tables yet" in result.stderr
    assert "python -m bot migrate" in result.stderr
    assert SIGNING_SECRET not in output(result)
    assert_no_secret_in(result)


def test_migrate_takes_a_postgres_url_as_platforms_hand_it_out(tmp_path: Path) -> None:
    url = make_url(postgres_url())
    if url.password is None:
        url = url.set(password=DB_PASSWORD)  # a trusting server ignores it; it must not be shown either
    reset_postgres(url.render_as_string(hide_password=False))
    given = "postgres://" + url.render_as_string(hide_password=False).split("://", 1)[1]

    result = run_bot("migrate", env=base_env(DATABASE_URL=given), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Migrated postgresql+asyncpg://")
    assert f"from an empty database to schema {HEAD}." in result.stdout
    assert "***" in result.stdout
    assert url.password is not None
    assert url.password not in output(result)
    assert_no_secret_in(result)

    async def check(engine: AsyncEngine) -> str | None:
        return await db.current_revision(engine)

    assert on_database(given, check) == HEAD


def test_migrate_with_a_malformed_database_url_says_so_without_a_traceback(tmp_path: Path) -> None:
    given = f"postgres://admin:{DB_PASSWORD}@db.internal:port/app"

    result = run_bot("migrate", env=base_env(DATABASE_URL=given), cwd=tmp_path)

    assert result.returncode == 2
    assert "cannot run `migrate`" in result.stderr
    assert "DATABASE_URL is invalid" in result.stderr
    assert_no_secret_in(result)


# --- rotate-keys -----------------------------------------------------------------------------------


def test_rotate_keys_re_encrypts_every_secret_with_the_first_key(database_url: str, tmp_path: Path) -> None:
    async def setup(engine: AsyncEngine) -> None:
        await db.migrate(engine)
        old = Cipher([OLD_ENCRYPTION_KEY])
        await KeyStore(engine, old).put(ALPHA, SecretStr(ALPHA_KEY), set_by="U0CLIADM1", key_id=None)
        await installation(old, engine)

    on_database(database_url, setup)
    assert stored_secrets(database_url, [OLD_ENCRYPTION_KEY]) == (ALPHA_KEY, BOT_TOKEN)

    result = run_bot(
        "rotate-keys",
        env=base_env(
            DATABASE_URL=database_url, BREEZE_ENCRYPTION_KEYS=f"{ENCRYPTION_KEY},{OLD_ENCRYPTION_KEY}"
        ),
        cwd=tmp_path,
    )

    assert result.returncode == 0, result.stderr
    # The Breeze key; bot and refresh token in both slack_installations and slack_bots.
    assert result.stdout.strip() == "Re-encrypted 5 stored secret(s) with the first encryption key."
    assert result.stderr == ""
    assert stored_secrets(database_url, [ENCRYPTION_KEY]) == (ALPHA_KEY, BOT_TOKEN)
    assert_no_secret_in(result)


def test_rotate_keys_names_rows_no_key_opens_and_exits_1(database_url: str, tmp_path: Path) -> None:
    lost = new_key()

    async def setup(engine: AsyncEngine) -> None:
        await db.migrate(engine)
        await KeyStore(engine, Cipher([OLD_ENCRYPTION_KEY])).put(
            ALPHA, SecretStr(ALPHA_KEY), set_by="U0CLIADM1", key_id=None
        )
        await KeyStore(engine, Cipher([lost])).put(BETA, SecretStr(BETA_KEY), set_by="U0CLIADM1", key_id=None)

    on_database(database_url, setup)

    result = run_bot(
        "rotate-keys",
        env=base_env(
            DATABASE_URL=database_url, BREEZE_ENCRYPTION_KEYS=f"{ENCRYPTION_KEY},{OLD_ENCRYPTION_KEY}"
        ),
        cwd=tmp_path,
    )

    assert result.returncode == 1
    assert "Re-encrypted 1 stored secret(s)" in result.stdout
    assert "could not be decrypted with any configured key" in result.stderr
    assert "  - Breeze key of -/T0CLIBETA" in result.stderr
    assert "T0CLIALPH" not in result.stderr
    assert lost not in output(result)
    assert_no_secret_in(result)

    async def read(engine: AsyncEngine) -> tuple[str | None, str | None]:
        alpha = await KeyStore(engine, Cipher([ENCRYPTION_KEY])).get(ALPHA)
        beta = await KeyStore(engine, Cipher([lost])).get(BETA)  # left as it was
        return (
            alpha.key.get_secret_value() if alpha else None,
            beta.key.get_secret_value() if beta else None,
        )

    assert on_database(database_url, read) == (ALPHA_KEY, BETA_KEY)


# --- new-encryption-key ----------------------------------------------------------------------------


def test_new_encryption_key_prints_one_fresh_fernet_key(tmp_path: Path) -> None:
    result = run_bot("new-encryption-key", env=base_env(), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    key = result.stdout.strip()
    assert result.stdout == key + "\n"
    assert is_key(key)
    assert key not in (ENCRYPTION_KEY, OLD_ENCRYPTION_KEY)
    fernet = Fernet(key.encode("ascii"))
    assert fernet.decrypt(fernet.encrypt(b"works")) == b"works"
    assert list(tmp_path.iterdir()) == []  # it touches no database
