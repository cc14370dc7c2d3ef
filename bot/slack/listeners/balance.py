"""`/breeze-balance`: acknowledge at once, then answer at the command's `response_url`."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.domain import Requester, new_reference
from bot.errors import BotError
from bot.services import BalanceService
from bot.slack import blocks
from bot.slack.commands import Command, parse
from bot.slack.ids import COMMAND, Subcommand
from bot.slack.replies import ReplyPoster
from bot.tasks import TaskTracker

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CommandRequest:
    """The parts of a slash-command payload the answer needs."""

    reference: str
    requester: Requester
    text: str
    response_url: str

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> CommandRequest:
        """Read a slash-command payload (already signature-checked by Bolt)."""
        return cls(
            reference=new_reference(),
            requester=Requester(
                team_id=payload.get("team_id"),
                enterprise_id=payload.get("enterprise_id") or None,
                user_id=str(payload.get("user_id", "")),
                channel_id=payload.get("channel_id"),
            ),
            text=str(payload.get("text") or ""),
            response_url=str(payload.get("response_url") or ""),
        )


def register(app: AsyncApp, *, balances: BalanceService, replies: ReplyPoster, tasks: TaskTracker) -> None:
    """Listen for `/breeze-balance`."""

    async def on_command(ack: AsyncAck, command: dict[str, Any]) -> None:
        await ack()
        request = CommandRequest.from_payload(command)
        tasks.spawn(answer(request, balances, replies), name=f"reply-{request.reference}")

    app.command(COMMAND)(on_command)


async def answer(request: CommandRequest, balances: BalanceService, replies: ReplyPoster) -> None:
    """Build the reply for one command and deliver it; log one line about how it went."""
    if not request.response_url:
        log.error("command ref=%s has no response_url; nowhere to reply", request.reference)
        return
    started = time.perf_counter()
    command = parse(request.text)
    message, outcome = await _reply_for(command, request, balances)
    delivered = await replies.post(request.response_url, message, request.reference)
    log.info(
        "command ref=%s team=%s user=%s subcommand=%s outcome=%s delivered=%s ms=%.0f",
        request.reference,
        request.requester.team_id,
        request.requester.user_id,
        command.subcommand.value or "balance",
        outcome,
        delivered,
        (time.perf_counter() - started) * 1000,
    )


async def _reply_for(
    command: Command, request: CommandRequest, balances: BalanceService
) -> tuple[blocks.Message, str]:
    if command.subcommand is Subcommand.HELP:
        return blocks.help_message(command.unknown), "help"
    shared_by = request.requester.user_id if command.subcommand is Subcommand.SHARE else None
    try:
        balance = await balances.balance_for(request.requester)
    except BotError as exc:
        log.warning("command ref=%s failed: %s: %s", request.reference, blocks.error_code(exc), exc)
        return blocks.error_message(exc, request.reference), blocks.error_code(exc)
    except Exception as exc:
        # Any bug still gets a friendly reply; the reference ties it to this traceback.
        log.exception("command ref=%s crashed", request.reference)
        return blocks.error_message(exc, request.reference), blocks.error_code(exc)
    return blocks.balance_message(balance, shared_by=shared_by), "ok"
