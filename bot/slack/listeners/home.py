"""The App Home tab: published on `app_home_opened`, its buttons open the rules' forms.

https://api.slack.com/events/app_home_opened, https://api.slack.com/methods/views.publish
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.domain import Balance, Requester, Workspace
from bot.errors import AdminCheckFailed, BotError
from bot.rules import DEFAULT_DIGEST_TIME, Frequency
from bot.slack import home_blocks, key_blocks, notices
from bot.slack.auth import slack_error
from bot.slack.blocks import wording
from bot.slack.commands import AlertArgs, DigestArgs, parse
from bot.slack.home_blocks import submitted
from bot.slack.ids import ActionId, BlockId, CallbackId
from bot.slack.listeners.trend import trend_lines
from bot.slack.parts import Parts
from bot.slack.requests import workspace_of

log = logging.getLogger(__name__)

Answer = dict[str, Any] | None


def register(app: AsyncApp, parts: Parts) -> None:
    """Listen for the Home tab being opened, its buttons, and the forms they open."""

    async def on_home_opened(body: dict[str, Any], event: dict[str, Any]) -> None:
        user = str(event.get("user") or "")
        if event.get("tab", "home") == "home" and user:
            parts.tasks.spawn(publish(workspace_of(body), user, parts), name=f"home-{user}")

    async def on_button(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        parts.tasks.spawn(_open_form(body, str(action.get("action_id")), parts), name="home-form")

    async def on_form(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        answer = await _save_form(body, view, parts)
        await (ack(**answer) if answer else ack())

    app.event("app_home_opened")(on_home_opened)
    for action in (ActionId.HOME_SET_KEY, ActionId.HOME_ALERT, ActionId.HOME_NOTIFY, ActionId.HOME_DIGEST):
        app.action(action)(on_button)

    async def on_refresh(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        user = str((body.get("user") or {}).get("id") or "")
        parts.tasks.spawn(publish(workspace_of(body), user, parts), name=f"home-{user}")

    app.action(ActionId.HOME_REFRESH)(on_refresh)
    for callback in (CallbackId.ALERT, CallbackId.NOTIFY, CallbackId.DIGEST):
        app.view_submission(callback)(on_form)


async def publish(workspace: Workspace, user: str, parts: Parts) -> None:
    """Build and publish one person's Home tab; the balance comes through the shared cache."""
    balance: Balance | None = None
    problem: BotError | None = None
    try:
        balance = (
            await parts.balances.balance_for(Requester(workspace.team_id, workspace.enterprise_id, user))
        ).balance
    except BotError as exc:
        problem = exc
    try:
        admin = await parts.admins.is_admin(workspace, user)
    except AdminCheckFailed:
        admin = False
    try:
        trend = await trend_lines(workspace, parts)
        record = await parts.keys.current(workspace) if admin else None
        watch = await parts.watch.watch(workspace) if admin else None
    except BotError as exc:
        log.warning("home of %s in %s: %s", user, workspace, exc)
        trend, record, watch = [], None, None
    view = home_blocks.home_view(balance, problem, trend, admin=admin, record=record, watch=watch)
    token = await parts.tokens.bot_token(workspace)
    if token is None:
        log.info("home of %s not published: no bot token for %s", user, workspace)
        return
    try:
        await parts.slack.views_publish(token=token, user_id=user, view=view)
    except SlackApiError as exc:
        log.warning("views.publish for %s in %s failed: %s", user, workspace, slack_error(exc))
    except (SlackClientError, OSError, TimeoutError) as exc:
        log.warning("views.publish for %s in %s failed: %s", user, workspace, type(exc).__name__)


async def republish(workspace: Workspace, user: str, parts: Parts) -> None:
    """After a key or rule change, show the admin who made it the new state at once."""
    parts.tasks.spawn(publish(workspace, user, parts), name=f"home-{user}")


async def _open_form(body: dict[str, Any], action: str, parts: Parts) -> None:
    workspace = workspace_of(body)
    user = str((body.get("user") or {}).get("id") or "")
    try:
        if not await parts.admins.is_admin(workspace, user):
            log.warning("home form %s refused: %s is not an admin of %s", action, user, workspace)
            return
        if action == ActionId.HOME_SET_KEY:
            replacing = await parts.keys.current(workspace)
            view = key_blocks.set_key_modal(json.dumps({"from": "home"}), replacing=replacing)
        else:
            watch = await parts.watch.watch(workspace)
            builders = {
                ActionId.HOME_ALERT: home_blocks.alert_modal,
                ActionId.HOME_NOTIFY: home_blocks.notify_modal,
                ActionId.HOME_DIGEST: home_blocks.digest_modal,
            }
            view = builders[ActionId(action)](watch)
        token = await parts.tokens.bot_token(workspace)
        await parts.slack.views_open(token=token, trigger_id=str(body.get("trigger_id") or ""), view=view)
    except BotError as exc:
        log.warning("home form %s for %s failed: %s", action, user, exc)
    except SlackApiError as exc:
        log.warning("views.open from home failed: %s", slack_error(exc))
    except (SlackClientError, OSError, TimeoutError) as exc:
        log.warning("views.open from home failed: %s", type(exc).__name__)


async def _save_form(body: dict[str, Any], view: dict[str, Any], parts: Parts) -> Answer:
    """Check and save one rules form; errors keep it open with the reason under the input."""
    workspace = workspace_of(body)
    user = str((body.get("user") or {}).get("id") or "")
    try:
        if not await parts.admins.is_admin(workspace, user):
            return home_blocks.form_errors(
                {BlockId.CHANNEL: "Only workspace admins and owners can change this."}
            )
        answer = await _apply(view, workspace, user, parts)
    except BotError as exc:
        log.warning("home form of %s in %s failed: %s", user, workspace, exc)
        return home_blocks.form_errors({BlockId.CHANNEL: f"Not saved: {wording(exc).title}"})
    if answer is None:
        await republish(workspace, user, parts)
    return answer


async def _apply(view: dict[str, Any], workspace: Workspace, user: str, parts: Parts) -> Answer:
    callback = view.get("callback_id")
    channel = submitted(view, BlockId.CHANNEL, ActionId.CHANNEL)
    if callback == CallbackId.ALERT:
        threshold = submitted(view, BlockId.THRESHOLD, ActionId.THRESHOLD)
        if threshold is None:
            await parts.watch.clear_alert(workspace)
            return None
        command = parse(f"alert {threshold}")
        if not isinstance(command.args, AlertArgs) or command.args.threshold is None:
            return home_blocks.form_errors(
                {BlockId.THRESHOLD: (command.usage or "Not a number.").split(" Usage:")[0]}
            )
        if (problem := await _channel_problem(workspace, channel, parts)) is not None:
            return problem
        assert channel is not None
        await parts.watch.set_alert(workspace, command.args.threshold, channel, user)
        return None
    on = (
        submitted(view, BlockId.SWITCH, ActionId.SWITCH) == "on"
        if callback == CallbackId.NOTIFY
        else (submitted(view, BlockId.FREQUENCY, ActionId.FREQUENCY) or "off") != "off"
    )
    if not on:
        await (
            parts.watch.clear_topups(workspace)
            if callback == CallbackId.NOTIFY
            else parts.watch.clear_digest(workspace)
        )
        return None
    if (problem := await _channel_problem(workspace, channel, parts)) is not None:
        return problem
    assert channel is not None
    if callback == CallbackId.NOTIFY:
        await parts.watch.set_topups(workspace, channel, user)
        return None
    frequency = Frequency(submitted(view, BlockId.FREQUENCY, ActionId.FREQUENCY) or Frequency.DAILY)
    command = parse(f"digest {frequency.value} {submitted(view, BlockId.TIME, ActionId.TIME) or '09:00'}")
    at = command.args.at if isinstance(command.args, DigestArgs) else None
    tz = await parts.admins.time_zone(workspace, user)
    await parts.watch.set_digest(workspace, frequency, at or DEFAULT_DIGEST_TIME, tz or "UTC", channel, user)
    return None


async def _channel_problem(workspace: Workspace, channel: str | None, parts: Parts) -> Answer:
    if channel is None:
        return home_blocks.form_errors({BlockId.CHANNEL: "Pick the channel to post in."})
    problem = notices.channel_problem_message(await parts.poster.check_channel(workspace, channel), channel)
    return home_blocks.form_errors({BlockId.CHANNEL: problem.text}) if problem is not None else None
