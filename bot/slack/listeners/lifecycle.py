"""The app leaves a workspace: forget its installation, its Breeze key, its rules, samples and posts.

https://api.slack.com/events/app_uninstalled and https://api.slack.com/events/tokens_revoked
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp

from bot.domain.balances import Workspace
from bot.slack.parts import Parts
from bot.slack.requests import workspace_of

log = logging.getLogger(__name__)


def register(app: AsyncApp, parts: Parts) -> None:
    """Listen for uninstalls and revoked bot tokens."""

    async def on_uninstalled(body: dict[str, Any]) -> None:
        await forget(workspace_of(body), parts, "app_uninstalled")

    async def on_tokens_revoked(body: dict[str, Any], event: dict[str, Any]) -> None:
        if (event.get("tokens") or {}).get("bot"):
            await forget(workspace_of(body), parts, "tokens_revoked")

    app.event("app_uninstalled")(on_uninstalled)
    app.event("tokens_revoked")(on_tokens_revoked)


async def forget(workspace: Workspace, parts: Parts, why: str) -> None:
    """Delete the workspace's installation and key. Runs before Slack gets its 200, so a
    failure makes Slack send the event again rather than leave the key behind."""
    if parts.installations is not None:
        await parts.installations.forget(workspace)
    removed = await parts.keys.forget(workspace)
    watched = await parts.watch.forget(workspace)
    log.info(
        "%s: forgot workspace %s (keys removed: %d, rules, samples and posts: %d)",
        why,
        workspace,
        removed,
        watched,
    )
