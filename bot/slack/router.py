"""`/breeze-balance`: acknowledge at once, parse once, then route by subcommand to its feature's handler.

`ROUTES` is the one table from subcommand to handler; a new subcommand adds a row (and its handler in
the feature's listener module). The router also owns what every subcommand shares: the admin gate,
turning errors into friendly replies, posting the reply at the command's `response_url`, and the log
line. Handlers never call one another.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.errors import BotError
from bot.logs import fields
from bot.slack.blocks import balance as blocks
from bot.slack.blocks import keys as key_blocks
from bot.slack.blocks.balance import Message
from bot.slack.commands import Command, parse
from bot.slack.ids import COMMAND, Subcommand
from bot.slack.listeners import balance, keys, rules, usage
from bot.slack.parts import Parts
from bot.slack.requests import CommandRequest

log = logging.getLogger(__name__)

Handler = Callable[[Command, CommandRequest, Parts], Awaitable[tuple[Message | None, str]]]


@dataclass(frozen=True, slots=True)
class Route:
    """Who may run a subcommand, and which handler answers it."""

    handler: Handler
    admins_only: bool = False


ROUTES: dict[Subcommand, Route] = {
    Subcommand.BALANCE: Route(balance.balance),
    Subcommand.SHARE: Route(balance.balance),
    Subcommand.REFRESH: Route(balance.balance),
    Subcommand.HELP: Route(balance.help_reply),
    Subcommand.SET_KEY: Route(keys.set_key, admins_only=True),
    Subcommand.REMOVE_KEY: Route(keys.remove_key, admins_only=True),
    Subcommand.STATUS: Route(keys.status, admins_only=True),
    Subcommand.ALERT: Route(rules.reply_for, admins_only=True),
    Subcommand.NOTIFY: Route(rules.reply_for, admins_only=True),
    Subcommand.DIGEST: Route(rules.reply_for, admins_only=True),
    Subcommand.USAGE: Route(usage.usage),
}


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
    message, outcome = await reply_for(command, request, parts)
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


async def reply_for(command: Command, request: CommandRequest, parts: Parts) -> tuple[Message | None, str]:
    """The reply and its outcome code: the route's handler, behind the admin gate where it has one."""
    route = ROUTES[command.subcommand]
    try:
        if route.admins_only and not await parts.admins.is_admin(
            request.requester.workspace, request.requester.user_id
        ):
            return key_blocks.not_admin_message(command.subcommand, parts.admins.listed), "not_admin"
        return await route.handler(command, request, parts)
    except BotError as exc:
        log.warning("command ref=%s failed: %s: %s", request.reference, blocks.error_code(exc), exc)
        return blocks.error_message(exc, request.reference), blocks.error_code(exc)
    except Exception as exc:
        # Any bug still gets a friendly reply; the reference ties it to this traceback.
        log.exception("command ref=%s crashed", request.reference)
        return blocks.error_message(exc, request.reference), blocks.error_code(exc)
