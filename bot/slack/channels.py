"""What Slack's Web API says about a channel or a token, as plain values for builders and posters.

https://api.slack.com/methods/chat.postMessage#errors
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# An admin has to act on these: invite the app, pick another channel, reinstall the app.
CHANNEL_ERRORS = frozenset({"not_in_channel", "channel_not_found", "is_archived", "restricted_action"})
TOKEN_ERRORS = frozenset(
    {"token_revoked", "invalid_auth", "account_inactive", "not_authed", "token_expired", "no_token"}
)


class ChannelState(StrEnum):
    """Whether the app can post in a channel, as far as Slack tells."""

    OK = "ok"
    PRIVATE_NOT_MEMBER = "private_not_member"
    NOT_FOUND = "not_found"
    ARCHIVED = "archived"
    DIRECT = "direct"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class ChannelCheck:
    """A channel's state and its name when Slack gave it."""

    state: ChannelState
    name: str | None = None
