"""Composition root: opens and closes the shared client, adapters and services."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot import __version__
from bot.breeze import BreezeClient
from bot.config import Settings
from bot.services import BalanceService, EnvironmentKey
from bot.slack.app import build_app
from bot.slack.auth import SingleWorkspaceAuthorizer
from bot.slack.replies import ReplyPoster
from bot.tasks import TaskTracker

log = logging.getLogger(__name__)

USER_AGENT = f"breeze-balance-slack/{__version__}"
SHUTDOWN_GRACE_SECONDS = 25.0


@dataclass(frozen=True, slots=True)
class Deps:
    """Everything a running process shares."""

    settings: Settings
    http: httpx.AsyncClient
    breeze: BreezeClient
    balances: BalanceService
    tasks: TaskTracker
    authorizer: SingleWorkspaceAuthorizer
    bolt: AsyncApp


def _http_client(settings: Settings) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.breeze_timeout_seconds, connect=3.0),
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=50, keepalive_expiry=60),
        headers={"user-agent": USER_AGENT},
        follow_redirects=False,
    )


@asynccontextmanager
async def open_deps(settings: Settings) -> AsyncIterator[Deps]:
    """Open everything; on exit, let replies in flight finish, then close connections."""
    async with _http_client(settings) as http:
        breeze = BreezeClient(http, settings.breeze_url, settings.breeze_timeout_seconds)
        balances = BalanceService(breeze, EnvironmentKey(settings.breeze_api_key))
        tasks = TaskTracker()
        slack = AsyncWebClient(base_url=settings.slack_api_base, timeout=10)
        authorizer = SingleWorkspaceAuthorizer(slack, settings.slack_bot_token)
        bolt = build_app(
            signing_secret=settings.slack_signing_secret,
            client=slack,
            authorize=authorizer.bolt_authorize(),
            balances=balances,
            replies=ReplyPoster(http),
            tasks=tasks,
        )
        if settings.breeze_api_key is None:
            log.warning("BREEZE_API_KEY is not set: /breeze-balance will say no key is configured")
        try:
            yield Deps(settings, http, breeze, balances, tasks, authorizer, bolt)
        finally:
            await tasks.drain(SHUTDOWN_GRACE_SECONDS)
