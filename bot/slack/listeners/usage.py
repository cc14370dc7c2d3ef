"""`usage`: where the credits went in a window, from Breeze's metering (anyone who may see the balance)."""

from __future__ import annotations

import logging

from bot.domain.usage import utc_day
from bot.errors import MeteringUnavailable
from bot.slack.blocks import notices
from bot.slack.blocks.balance import Message
from bot.slack.blocks.usage import unavailable_message, usage_message
from bot.slack.commands import Command, UsageArgs
from bot.slack.parts import Parts
from bot.slack.requests import CommandRequest

log = logging.getLogger(__name__)


async def usage(command: Command, request: CommandRequest, parts: Parts) -> tuple[Message | None, str]:
    """The window's spend, its biggest spenders and its trend; in the channel with `share`."""
    args = command.args
    if command.usage is not None or not isinstance(args, UsageArgs):
        return notices.usage_message(command.usage or "I did not understand that."), "usage"
    workspace = request.requester.workspace
    key = await parts.balances.key_of(workspace)
    today = utc_day(parts.usage.now())
    try:
        report = await parts.usage.report(workspace, key, args.window(today))
    except MeteringUnavailable as exc:
        log.info("command ref=%s: no usage report for %s (%s)", request.reference, workspace, exc.reason)
        return unavailable_message(), "usage_unavailable"
    shared_by = request.requester.user_id if args.share else None
    return usage_message(report, today=today, shared_by=shared_by), "usage_shown"
