"""Fixtures: fake Breeze, fake Slack Web API, a response_url catcher, and the app on loopback."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from tests.fakes import METERING_PATHS, AppServer, FakeMetering, FakeServer, Recorded, Reply, SlackClient

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-1111-2222-testtokenvalue"
API_KEY = "brz_live_Sup3rS3cretKeyValue42"
TEAM_ID = "T0001"
# Fixed test-only Fernet keys; production keys come from `python -m bot new-encryption-key`.
ENCRYPTION_KEY = "vTG5F6bfB0uC0jQa3mV4p0nJm3yUe4o4bL9dQp0VQ1o="
OLD_ENCRYPTION_KEY = "Yk3r6Xx0cF9hQ2sJtq1mB8wL5nR7uD4eA0zC6vP9gHs="
# Tables the migrations create, dropped between PostgreSQL tests.
APP_TABLES = (
    "breeze_keys",
    "slack_installations",
    "slack_bots",
    "slack_oauth_states",
    "watch_rules",
    "watch_samples",
    "watch_topups",
    "watch_posts",
    "alembic_version",
)
POSTGRES_SKIP = "PostgreSQL tests skipped: set TEST_DATABASE_URL=postgres://user@host:5432/db to run them"

BALANCE_BODY: dict[str, Any] = {
    "balance": 1234567.891,
    "balance_millicredits": 1234567891,
    "topups": [
        {"topup_id": "tp_1", "amount": 500, "status": "succeeded", "created_at": "2026-11-01T09:30:00Z"},
        {"topup_id": "tp_2", "amount": 250.5, "status": "pending", "created_at": "2026-11-20T16:05:00Z"},
        {"topup_id": "tp_3", "amount": 100, "status": "failed", "created_at": "2026-10-15T12:00:00+02:00"},
    ],
}


def auth_test_ok(team_id: str = TEAM_ID) -> Reply:
    """Slack's answer to auth.test for a bot token."""
    return Reply(
        200,
        {
            "ok": True,
            "url": "https://acme.slack.com/",
            "team": "Acme",
            "user": "breeze-balance",
            "team_id": team_id,
            "user_id": "UBOT0001",
            "bot_id": "BBOT0001",
            "is_enterprise_install": False,
        },
    )


@pytest.fixture(scope="session")
def breeze() -> Iterator[FakeServer]:
    server = FakeServer("fake-breeze", quiet=METERING_PATHS).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def slack_api() -> Iterator[FakeServer]:
    server = FakeServer("fake-slack-api").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def hooks() -> Iterator[FakeServer]:
    server = FakeServer("response-url-catcher").start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_fakes(breeze: FakeServer, slack_api: FakeServer, hooks: FakeServer) -> None:
    for server in (breeze, slack_api, hooks):
        server.reset()
    breeze.route("GET", "/v1/balance", Reply(200, BALANCE_BODY, {"x-breeze-api-key-id": "key_abc123"}))
    slack_api.route("POST", "/api/auth.test", auth_test_ok())
    hooks.route("POST", "*", Reply(200, "ok"))


@pytest.fixture
def metering(breeze: FakeServer, _fresh_fakes: None) -> FakeMetering:
    """Breeze's metering on the fake Breeze, answering from the requests a test gives it (without this
    fixture, both of its endpoints answer 404, as for a key Breeze does not meter for)."""
    return FakeMetering(breeze).serve()


def reset_postgres(url: str) -> None:
    """Drop the app's tables so that each test starts from an empty database."""
    import asyncpg

    async def drop() -> None:
        connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            await connection.execute(f"DROP TABLE IF EXISTS {', '.join(APP_TABLES)} CASCADE")
        finally:
            await connection.close()

    asyncio.run(drop())


def postgres_url() -> str:
    """The PostgreSQL to test against, or a skip saying how to enable those tests."""
    url = os.environ.get("TEST_DATABASE_URL", "").strip()
    if not url:
        pytest.skip(POSTGRES_SKIP)
    return url


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """A fresh SQLite file for one test."""
    return f"sqlite:///{tmp_path / 'app.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def any_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind: SQLite always, PostgreSQL when TEST_DATABASE_URL is set."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'app.db'}"
    url = postgres_url()
    reset_postgres(url)
    return url


def make_settings(breeze: FakeServer, slack_api: FakeServer, **overrides: Any) -> Settings:
    """Settings pointing at the fakes; `overrides` win."""
    values: dict[str, Any] = {
        "breeze_encryption_keys": ENCRYPTION_KEY,
        "auto_migrate": True,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_bot_token": BOT_TOKEN,
        "breeze_api_key": API_KEY,
        "breeze_base_url": breeze.url,
        "slack_api_url": slack_api.url + "/api/",
        "breeze_timeout_seconds": 3,
        "log_level": "DEBUG",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


AppFactory = Callable[..., tuple[AppServer, SlackClient]]


@pytest.fixture
def start_app(breeze: FakeServer, slack_api: FakeServer, database_url: str) -> Iterator[AppFactory]:
    """Start the real app (on a fresh SQLite file unless told) with settings overrides."""
    started: list[tuple[AppServer, SlackClient]] = []

    def start(**overrides: Any) -> tuple[AppServer, SlackClient]:
        settings = make_settings(breeze, slack_api, **{"database_url": database_url, **overrides})
        server = AppServer(settings).start()
        client = SlackClient(server.url, settings.slack_signing_secret.get_secret_value())
        started.append((server, client))
        return server, client

    yield start
    for server, client in started:
        client.close()
        server.stop()


@pytest.fixture
def running(start_app: AppFactory) -> tuple[AppServer, SlackClient]:
    """The app with default test settings."""
    return start_app()


@pytest.fixture
def slack(running: tuple[AppServer, SlackClient]) -> SlackClient:
    """A signed Slack client for the default app."""
    return running[1]


_hook_ids = itertools.count(1)


@pytest.fixture
def response_url(hooks: FakeServer) -> str:
    return f"{hooks.url}/commands/{TEAM_ID}/{next(_hook_ids)}/secret-hook"


def ask(slack: SlackClient, hooks: FakeServer, response_url: str, text: str = "", **extra: str) -> Recorded:
    """Run the command, check the ack, and return what arrived at its response_url."""
    ack = slack.command(response_url, text, **extra)
    assert ack.status_code == 200, ack.text
    path = response_url.removeprefix(hooks.url)
    return hooks.wait_for(1, path=path)[0]


def texts(payload: dict[str, Any]) -> str:
    """Every piece of text in a message, joined: what a reader could see."""
    found: list[str] = [payload.get("text", "")]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(payload.get("blocks", []))
    return "\n".join(found)


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog
