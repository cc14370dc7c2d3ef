"""Who the app is in Slack, resolved once and cached so that no request waits for it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from pydantic import SecretStr
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.domain.balances import Workspace
from bot.errors import ConfigError

log = logging.getLogger(__name__)

# Slack answers these when the token itself is bad; anything else may pass.
_BAD_TOKEN_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)
RETRY_AUTH_TEST_SECONDS = 60.0
STARTUP_AUTH_TEST_SECONDS = 5.0


def slack_error(exc: SlackApiError) -> str:
    """Slack's error word (`invalid_auth`), or the HTTP status when the answer was not JSON."""
    data = exc.response.data
    return str(data.get("error")) if isinstance(data, dict) else f"HTTP {exc.response.status_code}"


class SingleWorkspaceAuthorizer:
    """Bolt's `authorize` for one workspace: the bot token's `auth.test`, cached.

    Requests are not refused for their `team_id`: in one workspace that can still vary
    (Enterprise Grid org-wide installs, Slack Connect channels).
    """

    def __init__(self, client: AsyncWebClient, token: SecretStr | None) -> None:
        self._client = client
        self._token = token
        self._identity: AuthorizeResult | None = None
        self._lock = asyncio.Lock()
        self._next_attempt = 0.0
        self._retry: asyncio.Task[None] | None = None

    @property
    def team_id(self) -> str | None:
        """The workspace the bot token belongs to, once known."""
        return self._identity.team_id if self._identity else None

    @property
    def workspace(self) -> Workspace | None:
        """The bot token's workspace (on Enterprise Grid, with its org), once known."""
        identity = self._identity
        return Workspace(identity.enterprise_id, identity.team_id) if identity else None

    async def warm(self) -> None:
        """Call `auth.test` once at start-up; raise `ConfigError` if Slack refuses the token."""
        if self._token is None:
            log.warning(
                "SLACK_BOT_TOKEN is not set: /breeze-balance answers, but set-key, remove-key and status "
                "need it (they ask Slack who is an admin)"
            )
            return
        try:
            async with asyncio.timeout(STARTUP_AUTH_TEST_SECONDS):
                await self._identify()
        except SlackApiError as exc:
            error = slack_error(exc)
            if error in _BAD_TOKEN_ERRORS:
                raise ConfigError(
                    f"SLACK_BOT_TOKEN was refused by Slack ({error}); copy the Bot User OAuth Token "
                    "again from https://api.slack.com/apps -> your app -> OAuth & Permissions."
                ) from None
            log.warning("Slack auth.test failed (%s); will try again in the background", error)
        except (SlackClientError, OSError, TimeoutError) as exc:
            log.warning("could not reach Slack for auth.test (%s); will try again in the background", exc)
        self._next_attempt = time.monotonic() + RETRY_AUTH_TEST_SECONDS

    async def _identify(self) -> AuthorizeResult:
        async with self._lock:
            if self._identity is None:
                token = self._token.get_secret_value() if self._token else None
                response = await self._client.auth_test(token=token)
                self._identity = AuthorizeResult.from_auth_test_response(
                    auth_test_response=response, bot_token=token
                )
                log.info(
                    "connected to Slack workspace %s (%s) as bot user %s",
                    response.get("team"),
                    self._identity.team_id,
                    self._identity.bot_user_id,
                )
            return self._identity

    def bolt_authorize(self) -> Callable[..., Awaitable[AuthorizeResult]]:
        """A plain function for Bolt, which passes arguments by their names."""

        async def authorize(
            enterprise_id: str | None, team_id: str | None, user_id: str | None
        ) -> AuthorizeResult:
            return await self.authorize(enterprise_id, team_id, user_id)

        return authorize

    async def authorize(
        self, enterprise_id: str | None, team_id: str | None, user_id: str | None
    ) -> AuthorizeResult:
        """The cached identity of the bot token; never waits on Slack (that would delay the ack)."""
        identity = self._identity
        if identity is None:
            self._identify_later()
            token = self._token.get_secret_value() if self._token else None
            return AuthorizeResult(
                enterprise_id=enterprise_id, team_id=team_id, user_id=user_id, bot_token=token
            )
        return AuthorizeResult(
            enterprise_id=identity.enterprise_id,
            team_id=identity.team_id,
            bot_token=identity.bot_token,
            bot_id=identity.bot_id,
            bot_user_id=identity.bot_user_id,
            user_id=user_id,
        )

    async def bot_token(self, workspace: Workspace) -> str | None:
        """The one bot token, whichever workspace asks."""
        return self._token.get_secret_value() if self._token else None

    def _identify_later(self) -> None:
        """Retry `auth.test` in the background, at most once a minute, if start-up could not."""
        now = time.monotonic()
        if self._token is None or now < self._next_attempt:
            return
        self._next_attempt = now + RETRY_AUTH_TEST_SECONDS
        self._retry = asyncio.create_task(self._identify_quietly(), name="auth.test")

    async def _identify_quietly(self) -> None:
        try:
            await self._identify()
        except (SlackClientError, OSError, TimeoutError) as exc:
            log.warning("Slack auth.test still failing (%s); commands are answered meanwhile", exc)
