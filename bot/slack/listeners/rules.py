"""Admins set what the bot watches: `alert`, `notify topups`, `digest` (the router checks the admin)."""

from __future__ import annotations

import logging

from bot.domain.balances import Workspace
from bot.domain.rules import DEFAULT_DIGEST_TIME, Frequency
from bot.slack.blocks import notices, spend_alerts
from bot.slack.blocks.balance import Message
from bot.slack.blocks.text import credits
from bot.slack.commands import AlertArgs, Command, DigestArgs, NotifyArgs
from bot.slack.listeners import home
from bot.slack.parts import Parts
from bot.slack.requests import CommandRequest

log = logging.getLogger(__name__)


async def reply_for(command: Command, request: CommandRequest, parts: Parts) -> tuple[Message | None, str]:
    """Show or change one kind of rule; a channel the app cannot post in is refused before saving."""
    args = command.args
    if command.usage is not None or not isinstance(args, AlertArgs | NotifyArgs | DigestArgs):
        return notices.usage_message(command.usage or "I did not understand that."), "usage"
    workspace = request.requester.workspace
    if args.action == "show":
        return notices.rules_message(await parts.watch.watch(workspace)), "rules_shown"
    if args.action == "off":
        return await _off(args, workspace, request.requester.user_id, parts)
    channel = args.channel or request.requester.channel_id or ""
    problem = notices.channel_problem_message(await parts.poster.check_channel(workspace, channel), channel)
    if problem is not None:
        return problem, "channel_refused"
    user = request.requester.user_id
    where = f"<#{channel}>"
    match args:
        case AlertArgs(threshold=threshold) if threshold is not None:
            await parts.watch.set_alert(workspace, threshold, channel, user)
            note = (
                f":white_check_mark: I'll post in {where} once when the balance falls below "
                f"{credits(threshold)}, and again only after it has recovered."
            )
        case AlertArgs(rule="days", days=under) if under is not None:
            await parts.watch.set_days(workspace, under, channel, user)
            note = spend_alerts.days_note(where, under)
        case AlertArgs(rule="spike", multiple=multiple) if multiple is not None:
            await parts.watch.set_spike(workspace, multiple, channel, user)
            note = spend_alerts.spike_note(where, multiple)
        case NotifyArgs():
            await parts.watch.set_topups(workspace, channel, user)
            note = (
                f":white_check_mark: I'll post each new top-up in {where}; "
                "those already made are not announced."
            )
        case DigestArgs(frequency=frequency) if frequency is not None:
            at = args.at or DEFAULT_DIGEST_TIME
            tz = await parts.admins.time_zone(workspace, user)
            await parts.watch.set_digest(workspace, Frequency(frequency), at, tz or "UTC", channel, user)
            zone = tz or "UTC (Slack did not tell me your time zone)"
            days = "every Monday" if frequency == "weekly" else "every day"
            note = (
                f":white_check_mark: A digest in {where} {days} at {at.strftime('%H:%M')} {zone}, "
                "starting at the next one."
            )
        case _:
            return notices.usage_message("I did not understand that."), "usage"
    log.info("rules of %s changed by %s: %s", workspace, user, type(args).__name__)
    await home.republish(workspace, user, parts)
    return notices.rules_message(await parts.watch.watch(workspace), note), "rules_set"


async def _off(
    args: AlertArgs | NotifyArgs | DigestArgs, workspace: Workspace, user: str, parts: Parts
) -> tuple[Message, str]:
    match args:
        case AlertArgs(rule="days"):
            await parts.watch.clear_days(workspace)
            note = ":wastebasket: The runway alert is off."
        case AlertArgs(rule="spike"):
            await parts.watch.clear_spike(workspace)
            note = ":wastebasket: The spike alert is off."
        case AlertArgs():
            await parts.watch.clear_alert(workspace)
            note = ":wastebasket: The low-balance alert is off."
        case NotifyArgs():
            await parts.watch.clear_topups(workspace)
            note = ":wastebasket: Top-up notices are off."
        case _:
            await parts.watch.clear_digest(workspace)
            note = ":wastebasket: The digest is off."
    await home.republish(workspace, user, parts)
    return notices.rules_message(await parts.watch.watch(workspace), note), "rules_off"
