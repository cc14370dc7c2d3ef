"""The runway, budget and sparkline lines shown under a balance (replies, the Home tab)."""

from __future__ import annotations

import logging

from bot.domain.balances import Balance, Workspace
from bot.domain.spend import Metering
from bot.errors import BotError
from bot.slack.blocks.metering import lines_under_balance
from bot.slack.parts import Parts

log = logging.getLogger(__name__)


async def trend_lines(
    workspace: Workspace, parts: Parts, balance: Balance | None = None, metering: Metering | None = None
) -> list[str]:
    """The runway (from Breeze's `metering` of the `balance` when there is some, else from the worker's
    samples once it has watched the workspace long enough), the key's own budget, and the sparkline."""
    try:
        trend = await parts.watch.trend(workspace)
    except BotError as exc:
        log.info("no trend for %s (%s)", workspace, exc)
        trend = None
    return lines_under_balance(
        balance.credits if balance is not None else None,
        parts.metering.now(),
        metering,
        trend.runway if trend is not None else None,
        trend.sparkline if trend is not None else "",
    )
