"""Admins manage the workspace's Breeze key: `set-key` (a modal), `remove-key`, `status`.

The router checks that the asker is an admin before these handlers run."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from pydantic import SecretStr
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.domain.balances import Workspace, new_reference
from bot.errors import BotError
from bot.slack.auth import slack_error
from bot.slack.blocks import balance as blocks
from bot.slack.blocks import keys as key_blocks
from bot.slack.blocks import notices
from bot.slack.blocks.balance import Message
from bot.slack.commands import Command
from bot.slack.ids import ActionId, BlockId, CallbackId, Subcommand
from bot.slack.listeners import home
from bot.slack.parts import Parts
from bot.slack.requests import CommandRequest, workspace_of

log = logging.getLogger(__name__)

# Slack closes a modal's submission after 3 s; the admin and Breeze checks must fit well inside.
MODAL_DEADLINE_SECONDS = 2.5
MODAL_BREEZE_SECONDS = 2.0


async def remove_key(command: Command, request: CommandRequest, parts: Parts) -> tuple[Message | None, str]:
    """Ask to confirm removing the stored key, with buttons."""
    record = await parts.keys.current(request.requester.workspace)
    if record is None:
        return key_blocks.no_stored_key_message(parts.environment_key), "no_key"
    return key_blocks.remove_key_prompt(record), "confirm_asked"


async def status(command: Command, request: CommandRequest, parts: Parts) -> tuple[Message | None, str]:
    """Which key answers, where it comes from, and what the bot watches."""
    workspace = request.requester.workspace
    key_status = await parts.keys.status(workspace)
    watch = await parts.watch.watch(workspace)
    return key_blocks.status_message(
        key_status, parts.mode, notices.rules_lines(watch)
    ), f"status_{key_status.source.value}"


async def set_key(command: Command, request: CommandRequest, parts: Parts) -> tuple[Message | None, str]:
    """Open the modal where an admin pastes the key (never typed into the channel)."""
    workspace = request.requester.workspace
    replacing = await parts.keys.current(workspace)
    token = await parts.tokens.bot_token(workspace)
    # The confirmation goes back to where the command was typed, through its response_url.
    metadata = json.dumps({"response_url": request.response_url})
    try:
        await parts.slack.views_open(
            token=token,
            trigger_id=request.trigger_id,
            view=key_blocks.set_key_modal(metadata, replacing=replacing),
        )
    except SlackApiError as exc:
        error = slack_error(exc)
        log.warning("command ref=%s: views.open failed: %s", request.reference, error)
        text = (
            f"The form to set the key could not be opened (Slack said `{error}`). "
            "Please run the command again."
        )
        return Message(text, [blocks.section(f":warning: {text}", BlockId.ERROR)]), "modal_failed"
    except (SlackClientError, OSError, TimeoutError) as exc:
        log.warning("command ref=%s: views.open failed: %s", request.reference, type(exc).__name__)
        text = "Slack did not answer when opening the form to set the key. Please run the command again."
        return Message(text, [blocks.section(f":warning: {text}", BlockId.ERROR)]), "modal_failed"
    return key_blocks.modal_opened_message(command.ignored_text), "modal_opened"


def register(app: AsyncApp, parts: Parts) -> None:
    """Listen for the set-key modal's submission and the remove-key buttons."""

    async def on_submit(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        reference = new_reference()
        answer, confirmation = await _check_and_save(body, view, parts, reference)
        if answer is None:
            await ack()
        else:
            await ack(**answer)
        response_url = _response_url(view)
        if confirmation is not None and response_url:
            parts.tasks.spawn(
                parts.replies.post(response_url, confirmation, reference), name=f"reply-{reference}"
            )

    async def on_remove(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        parts.tasks.spawn(_remove(body, parts), name="remove-key")

    async def on_cancel(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        url = str(body.get("response_url") or "")
        if url:
            parts.tasks.spawn(
                parts.replies.post(url, key_blocks.removal_cancelled_message(), new_reference()),
                name="remove-key-cancel",
            )

    app.view_submission(CallbackId.SET_KEY)(on_submit)
    app.action(ActionId.REMOVE_CONFIRM)(on_remove)
    app.action(ActionId.REMOVE_CANCEL)(on_cancel)


async def _check_and_save(
    body: dict[str, Any], view: dict[str, Any], parts: Parts, reference: str
) -> tuple[dict[str, Any] | None, Message | None]:
    """Validate the submitted key within the modal's time limit; store it only if Breeze accepts it."""
    workspace = workspace_of(body)
    user_id = str((body.get("user") or {}).get("id") or "")
    raw = _submitted_key(view)
    if not raw:
        return key_blocks.key_error("Paste the API key here."), None
    if not raw.isascii() or not raw.isprintable() or any(ch.isspace() for ch in raw):
        return key_blocks.key_error(
            "That is not an API key: keys have no spaces or special characters."
        ), None
    try:
        async with asyncio.timeout(MODAL_DEADLINE_SECONDS):
            if not await parts.admins.is_admin(workspace, user_id):
                log.warning("set-key ref=%s refused: %s is not an admin of %s", reference, user_id, workspace)
                return key_blocks.key_error("Only workspace admins and owners can set the key."), None
            balance = await parts.keys.try_key(SecretStr(raw), MODAL_BREEZE_SECONDS)
    except TimeoutError:
        log.warning("set-key ref=%s workspace=%s not saved: the checks ran out of time", reference, workspace)
        return key_blocks.key_error(
            "Not saved: checking took too long (Slack or Breeze was slow). Try again."
        ), None
    except BotError as exc:
        log.warning("set-key ref=%s workspace=%s not saved: %s", reference, workspace, blocks.error_code(exc))
        return key_blocks.key_error(key_blocks.rejected_key_text(exc)), None
    try:
        record = await parts.keys.save(workspace, SecretStr(raw), set_by=user_id, balance=balance)
    except BotError as exc:
        log.error("set-key ref=%s workspace=%s not saved: %s", reference, workspace, exc)
        return key_blocks.key_error(key_blocks.rejected_key_text(exc)), None
    log.info(
        "set-key ref=%s workspace=%s by=%s key_id=%s saved", reference, workspace, user_id, record.key_id
    )
    parts.tasks.spawn(_key_changed(workspace, user_id, parts), name=f"key-changed-{reference}")
    return None, key_blocks.key_saved_message(record, balance)


def _submitted_key(view: dict[str, Any]) -> str:
    values = ((view.get("state") or {}).get("values") or {}).get(BlockId.KEY_INPUT) or {}
    return str((values.get(ActionId.KEY_INPUT) or {}).get("value") or "").strip()


def _response_url(view: dict[str, Any]) -> str:
    try:
        metadata = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return ""
    return str(metadata.get("response_url") or "") if isinstance(metadata, dict) else ""


async def _remove(body: dict[str, Any], parts: Parts) -> None:
    """The confirmed removal: check the clicker is still an admin, delete, replace the prompt."""
    reference = new_reference()
    workspace = workspace_of(body)
    user_id = str((body.get("user") or {}).get("id") or "")
    url = str(body.get("response_url") or "")
    try:
        if not await parts.admins.is_admin(workspace, user_id):
            message = key_blocks.not_admin_message(Subcommand.REMOVE_KEY, parts.admins.listed)
        else:
            removed = await parts.keys.remove(workspace)
            log.info(
                "remove-key ref=%s workspace=%s by=%s removed=%s", reference, workspace, user_id, removed
            )
            message = key_blocks.key_removed_message(removed, user_id)
            await _key_changed(workspace, user_id, parts)
    except BotError as exc:
        log.warning("remove-key ref=%s failed: %s", reference, blocks.error_code(exc))
        message = blocks.error_message(exc, reference)
    if url:
        await parts.replies.post(url, message, reference)


async def _key_changed(workspace: Workspace, user: str, parts: Parts) -> None:
    """Check the workspace's rules again at once with the new key (or none); show the admin's Home."""
    try:
        await parts.watch.key_changed(workspace)
    except BotError as exc:
        log.warning("could not reschedule the checks of %s after a key change: %s", workspace, exc)
    await home.republish(workspace, user, parts)
