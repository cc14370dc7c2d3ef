"""`/breeze-balance`: acknowledge at once, then answer at the command's `response_url`."""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.errors import BotError
from bot.logs import fields
from bot.slack.blocks import balance as blocks
from bot.slack.commands import Command, parse
from bot.slack.ids import ADMIN_SUBCOMMANDS, COMMAND, Subcommand
from bot.slack.listeners import keys
from bot.slack.listeners.trend import trend_lines
from bot.slack.parts import Parts
from bot.slack.requests import CommandRequest

log = logging.getLogger(__name__)


def register(app: AsyncApp, parts: Parts) -> None:
    """Listen for `/breeze-balance`."""

    async def on_command(ack: AsyncAck, command: dict[str, Any]) -> None:
        await ack()
        request = CommandRequest.from_payload(command)
        parts.tasks.spawn(answer(request, parts), name=f"reply-{request.reference}")

    app.command(COMMAND)(on_command)


async def answer(request: CommandRequest, parts: Parts) -> None:
    """Build the reply for one command and deliver it; log one line about how it went."""
    if not request.response_url:
        log.error("command ref=%s has no response_url; nowhere to reply", request.reference)
        return
    started = time.perf_counter()
    command = parse(request.text)
    try:
        if command.subcommand in ADMIN_SUBCOMMANDS:
            message, outcome = await keys.reply_for(command, request, parts)
        else:
            message, outcome = await _reply_for(command, request, parts)
    except Exception as exc:
        # Any bug still gets a friendly reply; the reference ties it to this traceback.
        log.exception("command ref=%s crashed", request.reference)
        message, outcome = blocks.error_message(exc, request.reference), blocks.error_code(exc)
    answered = time.perf_counter()
    delivered = (
        await parts.replies.post(request.response_url, message, request.reference) if message else None
    )
    done = time.perf_counter()
    if not log.isEnabledFor(logging.INFO):
        return
    line = {
        "ref": request.reference,
        "workspace": str(request.requester.workspace),
        "user": request.requester.user_id,
        "subcommand": command.subcommand.value or "balance",
        "outcome": outcome,
        "delivered": delivered,
        "answer_ms": round((answered - started) * 1000, 1),
        "reply_ms": round((done - answered) * 1000, 1),
        "ms": round((done - started) * 1000, 1),
    }
    log.info("command %s", " ".join(f"{k}={v}" for k, v in line.items()), extra=fields(**line))


async def _reply_for(command: Command, request: CommandRequest, parts: Parts) -> tuple[blocks.Message, str]:
    if command.subcommand is Subcommand.HELP:
        return blocks.help_message(command.unknown), "help"
    shared_by = request.requester.user_id if command.subcommand is Subcommand.SHARE else None
    refresh = command.subcommand is Subcommand.REFRESH
    try:
        answer = await parts.balances.balance_for(request.requester, refresh=refresh)
    except BotError as exc:
        log.warning("command ref=%s failed: %s: %s", request.reference, blocks.error_code(exc), exc)
        return blocks.error_message(exc, request.reference), blocks.error_code(exc)
    message = blocks.balance_message(
        answer.balance,
        shared_by=shared_by,
        age_seconds=answer.age_seconds,
        refresh_in_seconds=answer.refresh_in_seconds,
        trend=await trend_lines(request.requester.workspace, parts),
    )
    return message, "ok" if answer.age_seconds is None else "ok_cached"
