"""Posts to channels and direct messages with `chat.postMessage`; checks a channel can be posted in.

Slack's failures leave as `bot.errors.SlackPostError`:
https://api.slack.com/methods/chat.postMessage#errors
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.breeze import retry_after_seconds
from bot.domain.balances import Workspace
from bot.errors import SlackPostError
from bot.slack.admins import BotTokens
from bot.slack.auth import slack_error
from bot.slack.blocks.balance import Message
from bot.slack.channels import CHANNEL_ERRORS, TOKEN_ERRORS, ChannelCheck, ChannelState

log = logging.getLogger(__name__)

# Slack's `ratelimited` without a usable Retry-After: wait this long.
DEFAULT_RETRY_AFTER_SECONDS = 30.0


class ChannelPoster:
    """Posts Block Kit messages (with their text fallback) with each workspace's bot token."""

    def __init__(self, client: AsyncWebClient, tokens: BotTokens) -> None:
        self._client = client
        self._tokens = tokens

    async def post(self, workspace: Workspace, channel: str, message: Message) -> None:
        """Post `message` in `channel` (a user id posts a direct message); raise `SlackPostError`."""
        token = await self._tokens.bot_token(workspace)
        if token is None:
            raise SlackPostError("no_token", fixable=True)
        try:
            await self._send(token, channel, message.text, message.blocks)
        except SlackApiError as exc:
            if slack_error(exc) != "invalid_blocks" or not message.blocks:
                raise _post_error(exc) from None
            log.warning("Slack refused the blocks of a post to %s; sending its text only", channel)
            await self.post_text(token, channel, message.text)
        except (SlackClientError, OSError, TimeoutError) as exc:
            raise SlackPostError(type(exc).__name__) from None

    async def post_text(self, token: str, channel: str, text: str) -> None:
        """Post text only; raise `SlackPostError`."""
        try:
            await self._send(token, channel, text, [])
        except SlackApiError as exc:
            raise _post_error(exc) from None
        except (SlackClientError, OSError, TimeoutError) as exc:
            raise SlackPostError(type(exc).__name__) from None

    async def _send(self, token: str, channel: str, text: str, blocks: list[dict[str, Any]]) -> None:
        await self._client.chat_postMessage(
            token=token,
            channel=channel,
            text=text,
            blocks=blocks or None,
            unfurl_links=False,
            unfurl_media=False,
        )

    async def check_channel(self, workspace: Workspace, channel: str) -> ChannelCheck:
        """Ask `conversations.info` whether the app can post in `channel`; UNKNOWN when Slack won't say."""
        if channel.startswith("D"):
            return ChannelCheck(ChannelState.DIRECT)
        token = await self._tokens.bot_token(workspace)
        if token is None:
            return ChannelCheck(ChannelState.UNKNOWN)
        try:
            response = await self._client.conversations_info(token=token, channel=channel)
        except SlackApiError as exc:
            error = slack_error(exc)
            if error == "channel_not_found":
                return ChannelCheck(ChannelState.NOT_FOUND)
            log.info("conversations.info for %s failed (%s); assuming the channel works", channel, error)
            return ChannelCheck(ChannelState.UNKNOWN)
        except (SlackClientError, OSError, TimeoutError) as exc:
            log.info("conversations.info for %s failed (%s)", channel, type(exc).__name__)
            return ChannelCheck(ChannelState.UNKNOWN)
        info = response.get("channel") or {}
        name = info.get("name") if isinstance(info.get("name"), str) else None
        if info.get("is_im") or info.get("is_mpim"):
            return ChannelCheck(ChannelState.DIRECT, name)
        if info.get("is_archived"):
            return ChannelCheck(ChannelState.ARCHIVED, name)
        if info.get("is_private") and not info.get("is_member"):
            return ChannelCheck(ChannelState.PRIVATE_NOT_MEMBER, name)
        return ChannelCheck(ChannelState.OK, name)


def _post_error(exc: SlackApiError) -> SlackPostError:
    error = slack_error(exc)
    status = exc.response.status_code
    if error == "ratelimited" or status == 429:
        headers = {str(k).lower(): str(v) for k, v in (exc.response.headers or {}).items()}
        wait = retry_after_seconds(headers)
        if wait is None:
            wait = DEFAULT_RETRY_AFTER_SECONDS
        return SlackPostError("ratelimited", retry_after=wait)
    return SlackPostError(error, fixable=error in CHANNEL_ERRORS or error in TOKEN_ERRORS)
