"""Who may manage the workspace's key: Slack admins and owners, or users listed in settings."""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.balances import Workspace
from bot.errors import AdminCheckFailed
from bot.slack.auth import slack_error

log = logging.getLogger(__name__)

ROLE_CACHE_SECONDS = 60.0


class BotTokens(Protocol):
    """Gives the bot token to call the Slack Web API for a workspace."""

    async def bot_token(self, workspace: Workspace) -> str | None: ...


class Admins:
    """Answers "may this user manage the key?" from `users.info`, cached for a minute."""

    def __init__(self, client: AsyncWebClient, tokens: BotTokens, listed: frozenset[str]) -> None:
        self._client = client
        self._tokens = tokens
        self.listed = listed
        self._users: dict[tuple[Workspace, str], tuple[dict[str, Any], float]] = {}

    async def is_admin(self, workspace: Workspace, user_id: str) -> bool:
        """True for workspace admins and owners and listed users; `AdminCheckFailed` if Slack fails."""
        if user_id in self.listed:
            return True
        user = await self._user(workspace, user_id)
        return any(bool(user.get(flag)) for flag in ("is_admin", "is_owner", "is_primary_owner"))

    async def time_zone(self, workspace: Workspace, user_id: str) -> str | None:
        """The user's IANA time zone from `users.info` (`tz`), or None when Slack does not say."""
        try:
            user = await self._user(workspace, user_id)
        except AdminCheckFailed as exc:
            log.info("no time zone for %s: %s", user_id, exc)
            return None
        tz = user.get("tz")
        return tz if isinstance(tz, str) and tz else None

    async def _user(self, workspace: Workspace, user_id: str) -> dict[str, Any]:
        cached = self._users.get((workspace, user_id))
        if cached is not None and time.monotonic() - cached[1] < ROLE_CACHE_SECONDS:
            return cached[0]
        token = await self._tokens.bot_token(workspace)
        if token is None:
            raise AdminCheckFailed("no bot token to call users.info with", no_token=True)
        try:
            response = await self._client.users_info(token=token, user=user_id)
        except SlackApiError as exc:
            raise AdminCheckFailed(f"users.info failed: {slack_error(exc)}") from None
        except (SlackClientError, OSError, TimeoutError) as exc:
            raise AdminCheckFailed(f"users.info failed: {type(exc).__name__}") from None
        user = response.get("user") or {}
        user = user if isinstance(user, dict) else {}
        self._users[(workspace, user_id)] = (user, time.monotonic())
        return user
