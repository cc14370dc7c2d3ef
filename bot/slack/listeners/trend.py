"""The runway and sparkline lines shown under a balance (replies, the Home tab)."""

from __future__ import annotations

import logging

from bot.domain.balances import Workspace
from bot.errors import BotError
from bot.slack.blocks import notices
from bot.slack.parts import Parts

log = logging.getLogger(__name__)


async def trend_lines(workspace: Workspace, parts: Parts) -> list[str]:
    """Runway and sparkline lines, when the worker has watched this workspace long enough."""
    try:
        trend = await parts.watch.trend(workspace)
    except BotError as exc:
        log.info("no trend for %s (%s)", workspace, exc)
        return []
    if trend is None:
        return []
    lines = []
    runway = notices.runway_line(trend.runway)
    if runway:
        lines.append(f":hourglass: {runway[0].upper()}{runway[1:]}.")
    if trend.sparkline:
        lines.append(f"Last 7 days: `{trend.sparkline}`")
    return lines
