"""Slack installations at rest: tokens encrypted, found again, listed for the cache, deleted.

Runs on SQLite, and on PostgreSQL when TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import db
from bot.crypto import Cipher
from bot.domain import Workspace
from bot.slack.installations import EncryptedInstallationStore
from bot.store import installed_workspaces
from tests.conftest import ENCRYPTION_KEY, OLD_ENCRYPTION_KEY

T = TypeVar("T")
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
