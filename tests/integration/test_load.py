"""A bounded load test: hundreds of signed commands at once, from several workspaces, slow Breeze."""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections import Counter

import httpx
from pydantic import SecretStr

from bot.adapters import db
from bot.adapters.crypto import Cipher
from bot.adapters.key_store import KeyStore
from bot.domain.balances import Workspace
from tests.conftest import ENCRYPTION_KEY, SIGNING_SECRET, AppFactory
from tests.fakes import FakeServer, Recorded, Reply, slack_signature

WORKSPACES = {f"TLOAD{n:04d}": (f"brz_live_LoadKey_{n:04d}", 1000 + n) for n in range(6)}
COMMANDS_PER_WORKSPACE = 50
CONCURRENCY = 120


def store_keys(database_url: str) -> None:
    """Each workspace's own key, stored as an admin would have set it."""

    async def go() -> None:
        engine = db.create_engine(db.parse_database_url(database_url))
        try:
            await db.migrate(engine)
            store = KeyStore(engine, Cipher([ENCRYPTION_KEY]))
            for team, (key, _) in WORKSPACES.items():
                await store.put(Workspace(None, team), SecretStr(key), set_by="UADMIN", key_id=None)
        finally:
            await engine.dispose()

    asyncio.run(go())


def breeze_by_key(recorded: Recorded) -> Reply:
    for key, balance in WORKSPACES.values():
        if recorded.headers.get("xi-api-key") == key:
            return Reply(200, {"balance": balance, "topups": []}, delay=0.3)
    return Reply(401, {"code": "AUTH_INVALID_SESSION", "error": "x"})


async def send_all(app_url: str, hooks_url: str) -> list[tuple[str, str, int]]:
    """Fire every command with at most CONCURRENCY in flight; (team, response_url, status) each."""
    jobs = [
        (team, f"{hooks_url}/commands/{team}/{n}")
        for n in range(COMMANDS_PER_WORKSPACE)
        for team in WORKSPACES
    ]
    limit = asyncio.Semaphore(CONCURRENCY)
    # Idle connections are dropped long before the server's 5 s keep-alive timeout: a busy machine
    # must not make the client reuse a connection the server is closing.
    limits = httpx.Limits(
        max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY, keepalive_expiry=1.0
    )
    async with httpx.AsyncClient(base_url=app_url, timeout=30, limits=limits) as client:

        async def one(team: str, url: str) -> tuple[str, str, int]:
            body = urllib.parse.urlencode(
                {
                    "team_id": team,
                    "user_id": "U0LOAD",
                    "command": "/breeze-balance",
                    "text": "",
                    "response_url": url,
                }
            )
            timestamp = str(int(time.time()))
            headers = {
                "content-type": "application/x-www-form-urlencoded",
                "x-slack-request-timestamp": timestamp,
                "x-slack-signature": slack_signature(SIGNING_SECRET, timestamp, body),
            }
            async with limit:
                response = await client.post("/slack/events", content=body, headers=headers)
            return team, url, response.status_code

        return await asyncio.gather(*(one(team, url) for team, url in jobs))


def test_hundreds_of_commands_at_once_are_all_acked_answered_and_spare_breeze(
    start_app: AppFactory, breeze: FakeServer, hooks: FakeServer, database_url: str
) -> None:
    store_keys(database_url)
    breeze.route("GET", "/v1/balance", breeze_by_key)
    # A window longer than the whole test, so a slow machine still sees one call per workspace.
    app, _ = start_app(breeze_api_key=None, breeze_cache_seconds=120)
    total = len(WORKSPACES) * COMMANDS_PER_WORKSPACE

    sent = asyncio.run(send_all(app.url, hooks.url))

    assert [status for _, _, status in sent] == [200] * total
    hooks.wait_for(total, timeout=60)
    replies: dict[str, list[Recorded]] = {}
    for recorded in hooks.received():
        replies.setdefault(recorded.path, []).append(recorded)
    for team, url, _ in sent:
        got = replies[url.removeprefix(hooks.url)]
        assert len(got) == 1, f"{url} got {len(got)} replies"
        assert got[0].json()["text"] == f"Breeze balance: {WORKSPACES[team][1]:,} credits"
    calls = Counter(r.headers["xi-api-key"] for r in breeze.received())
    assert set(calls) == {key for key, _ in WORKSPACES.values()}
    assert max(calls.values()) == 1  # one Breeze call per workspace for the whole burst
