"""The balance itself: `/breeze-balance`, `share`, `refresh`, and `help`."""

from __future__ import annotations

from bot.slack.blocks import balance as blocks
from bot.slack.blocks.balance import Message
from bot.slack.commands import Command
from bot.slack.ids import Subcommand
from bot.slack.listeners.trend import trend_lines
from bot.slack.parts import Parts
from bot.slack.requests import CommandRequest


async def balance(command: Command, request: CommandRequest, parts: Parts) -> tuple[Message | None, str]:
    """The balance and recent top-ups; shared in the channel, or fresh from Breeze, when asked."""
    shared_by = request.requester.user_id if command.subcommand is Subcommand.SHARE else None
    refresh = command.subcommand is Subcommand.REFRESH
    workspace = request.requester.workspace
    key = await parts.balances.key_of(workspace)  # read once, for the balance and the metering
    # Breeze's metering is looked up beside the balance, and waited for a second at most past it.
    answer, metering = await parts.metering.beside(
        workspace, parts.balances.balance_for(request.requester, refresh=refresh, key=key), key=key
    )
    message = blocks.balance_message(
        answer.balance,
        shared_by=shared_by,
        age_seconds=answer.age_seconds,
        refresh_in_seconds=answer.refresh_in_seconds,
        trend=await trend_lines(workspace, parts, answer.balance, metering),
    )
    return message, "ok" if answer.age_seconds is None else "ok_cached"


async def help_reply(command: Command, request: CommandRequest, parts: Parts) -> tuple[Message | None, str]:
    """What the command can do, naming what was typed when it was not understood."""
    return blocks.help_message(command.unknown), "help"
