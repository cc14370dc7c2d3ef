"""Who the app is in Slack, resolved once and cached so that no request waits for it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from pydantic import SecretStr
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import ConfigError

log = logging.getLogger(__name__)

# Slack answers these when the token itself is bad; anything else may pass.
_BAD_TOKEN_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)
LAZY_AUTH_TEST_SECONDS = 2.0


class SingleWorkspaceAuthorizer:
    """Bolt's `authorize` for one workspace: the bot token's `auth.test`, cached.

    Commands from another workspace are refused, so one workspace's Breeze key is
    never used to answer another.
    """

    def __init__(self, client: AsyncWebClient, token: SecretStr | None) -> None:
        self._client = client
        self._token = token
        self._identity: AuthorizeResult | None = None
        self._lock = asyncio.Lock()

    @property
    def team_id(self) -> str | None:
        """The workspace the bot token belongs to, once known."""
        return self._identity.team_id if self._identity else None

    async def warm(self) -> None:
        """Call `auth.test` once at start-up; raise `ConfigError` if Slack refuses the token."""
        if self._token is None:
            log.warning(
                "SLACK_BOT_TOKEN is not set: commands are answered, but the app cannot check "
                "which workspace they come from"
            )
            return
        try:
            await self._identify()
        except SlackApiError as exc:
            error = str(exc.response.get("error", "unknown_error"))
            if error in _BAD_TOKEN_ERRORS:
                raise ConfigError(
                    f"SLACK_BOT_TOKEN was refused by Slack ({error}); copy the Bot User OAuth Token "
                    "again from https://api.slack.com/apps -> your app -> OAuth & Permissions."
                ) from None
            log.warning("Slack auth.test failed (%s); will try again on the first command", error)
        except (SlackClientError, OSError, TimeoutError) as exc:
            log.warning("could not reach Slack for auth.test (%s); will try again on the first command", exc)

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

    def bolt_authorize(self) -> Callable[..., Awaitable[AuthorizeResult | None]]:
        """A plain function for Bolt, which passes arguments by their names."""

        async def authorize(
            enterprise_id: str | None, team_id: str | None, user_id: str | None
        ) -> AuthorizeResult | None:
            return await self.authorize(enterprise_id, team_id, user_id)

        return authorize

    async def authorize(
        self, enterprise_id: str | None, team_id: str | None, user_id: str | None
    ) -> AuthorizeResult | None:
        """The cached identity, or None for a workspace this app does not serve."""
        identity = self._identity
        if identity is None and self._token is not None:
            try:
                identity = await asyncio.wait_for(self._identify(), LAZY_AUTH_TEST_SECONDS)
            except (SlackClientError, OSError, TimeoutError) as exc:
                log.warning("auth.test unavailable (%s); answering without a workspace check", exc)
        if identity is None:
            return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id)
        if team_id and identity.team_id and team_id != identity.team_id:
            log.warning("refused a request from workspace %s; this app serves %s", team_id, identity.team_id)
            return None
        return AuthorizeResult(
            enterprise_id=identity.enterprise_id,
            team_id=identity.team_id,
            bot_token=identity.bot_token,
            bot_id=identity.bot_id,
            bot_user_id=identity.bot_user_id,
            user_id=user_id,
        )
