"""The database commands as an operator runs them: migrate, rotate-keys, new-encryption-key, serve."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pydantic import SecretStr

from bot import db
from bot.crypto import Cipher, is_key
from bot.domain import Workspace
from bot.store import KeyStore
from tests.conftest import ENCRYPTION_KEY, OLD_ENCRYPTION_KEY, SIGNING_SECRET, postgres_url, reset_postgres
from tests.test_cli import base_env, run_bot

ACME = Workspace(None, "T0ACME001")
KEY = "brz_live_RotateMe_9KQ3"


def store_key(database_url: str, keys: list[str], workspace: Workspace = ACME, key: str = KEY) -> None:
    async def go() -> None:
        engine = db.create_engine(db.parse_database_url(database_url))
        try:
            await KeyStore(engine, Cipher(keys)).put(workspace, SecretStr(key), set_by="U1", key_id=None)
        finally:
            await engine.dispose()

    asyncio.run(go())


def read_key(database_url: str, keys: list[str], workspace: Workspace = ACME) -> str | None:
    async def go() -> str | None:
        engine = db.create_engine(db.parse_database_url(database_url))
        try:
            stored = await KeyStore(engine, Cipher(keys)).get(workspace)
        finally:
            await engine.dispose()
        return stored.key.get_secret_value() if stored else None

    return asyncio.run(go())


def test_migrate_creates_the_default_sqlite_database_then_has_nothing_to_do(tmp_path: Path) -> None:
    first = run_bot("migrate", env=base_env(), cwd=tmp_path)
    second = run_bot("migrate", env=base_env(), cwd=tmp_path)

    assert first.returncode == 0, first.stderr
    assert (
        "Migrated sqlite+aiosqlite:///breeze-balance.db from an empty database to schema 0001" in first.stdout
    )
    assert (tmp_path / "breeze-balance.db").exists()
    assert second.returncode == 0, second.stderr
    assert "is up to date (schema 0001)" in second.stdout
    assert "Traceback" not in first.stderr + second.stderr


def test_serve_refuses_an_unmigrated_database_and_says_what_to_run(tmp_path: Path) -> None:
    result = run_bot("serve", env=base_env(SLACK_SIGNING_SECRET=SIGNING_SECRET), cwd=tmp_path)

    assert result.returncode == 2
    assert "has no tables yet" in result.stderr
    assert "python -m bot migrate" in result.stderr
    assert "AUTO_MIGRATE=true" in result.stderr
    assert "Traceback" not in result.stderr


def test_migrate_takes_a_postgres_url_as_platforms_give_it(tmp_path: Path) -> None:
    url = postgres_url()
    reset_postgres(url)
    postgres_style = "postgres://" + url.split("://", 1)[1]

    result = run_bot("migrate", env=base_env(DATABASE_URL=postgres_style), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "to schema 0001" in result.stdout
    store_key(postgres_style, [ENCRYPTION_KEY])
    assert read_key(postgres_style, [ENCRYPTION_KEY]) == KEY


def test_rotate_keys_re_encrypts_with_the_first_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    assert run_bot("migrate", env=base_env(DATABASE_URL=url), cwd=tmp_path).returncode == 0
    store_key(url, [OLD_ENCRYPTION_KEY])

    result = run_bot(
        "rotate-keys",
        env=base_env(DATABASE_URL=url, BREEZE_ENCRYPTION_KEYS=f"{ENCRYPTION_KEY},{OLD_ENCRYPTION_KEY}"),
        cwd=tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert "Re-encrypted 1 stored secret(s)" in result.stdout
    assert read_key(url, [ENCRYPTION_KEY]) == KEY
    for secret in (KEY, ENCRYPTION_KEY, OLD_ENCRYPTION_KEY):
        assert secret not in result.stdout + result.stderr


def test_rotate_keys_names_what_it_cannot_open_and_fails(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    assert run_bot("migrate", env=base_env(DATABASE_URL=url), cwd=tmp_path).returncode == 0
    store_key(url, [OLD_ENCRYPTION_KEY])

    result = run_bot(
        "rotate-keys", env=base_env(DATABASE_URL=url, BREEZE_ENCRYPTION_KEYS=ENCRYPTION_KEY), cwd=tmp_path
    )

    assert result.returncode == 1
    assert "Breeze key of -/T0ACME001" in result.stderr
    assert read_key(url, [OLD_ENCRYPTION_KEY]) == KEY  # left as it was


def test_rotate_keys_without_keys_says_how_to_set_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    assert run_bot("migrate", env=base_env(DATABASE_URL=url), cwd=tmp_path).returncode == 0

    result = run_bot("rotate-keys", env=base_env(DATABASE_URL=url), cwd=tmp_path)

    assert result.returncode == 2
    assert "BREEZE_ENCRYPTION_KEYS is not set: put the new key first" in result.stderr
    assert "Traceback" not in result.stderr


def test_new_encryption_key_prints_a_fresh_fernet_key(tmp_path: Path) -> None:
    first = run_bot("new-encryption-key", env=base_env(), cwd=tmp_path)
    second = run_bot("new-encryption-key", env=base_env(), cwd=tmp_path)

    assert first.returncode == 0
    assert is_key(first.stdout.strip())
    assert first.stdout != second.stdout
