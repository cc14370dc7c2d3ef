"""The App Home tab: published on `app_home_opened`, its buttons open the rules' forms.

https://api.slack.com/events/app_home_opened, https://api.slack.com/methods/views.publish
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.domain.balances import Balance, Requester, Workspace
from bot.domain.rules import DEFAULT_DIGEST_TIME, Frequency
from bot.domain.spend import Metering
from bot.errors import AdminCheckFailed, BotError
from bot.slack.auth import slack_error
from bot.slack.blocks import home as home_blocks
from bot.slack.blocks import keys as key_blocks
from bot.slack.blocks import notices
from bot.slack.blocks.balance import wording
from bot.slack.blocks.home import submitted
from bot.slack.commands import AlertArgs, DigestArgs, parse
from bot.slack.ids import ActionId, BlockId, CallbackId
from bot.slack.listeners.trend import trend_lines
from bot.slack.parts import Parts
from bot.slack.requests import workspace_of

log = logging.getLogger(__name__)

Answer = dict[str, Any] | None
# Slack closes a form's submission after 3 s: the checks must fit well inside.
FORM_DEADLINE_SECONDS = 2.5


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
    """Build and publish one person's Home tab; the balance comes through the shared cache, Breeze's
    metering beside it (waited for as long as the balance reply does)."""
    balance: Balance | None = None
    problem: BotError | None = None
    metering: Metering | None = None
    try:
        key = await parts.balances.key_of(workspace)
        requester = Requester(workspace.team_id, workspace.enterprise_id, user)
        answer, metering = await parts.metering.beside(
            workspace, parts.balances.balance_for(requester, key=key), key=key
        )
        balance = answer.balance
    except BotError as exc:
        problem = exc
    try:
        admin = await parts.admins.is_admin(workspace, user)
    except AdminCheckFailed:
        admin = False
    try:
        trend = await trend_lines(workspace, parts, balance, metering)
        record = await parts.keys.current(workspace) if admin else None
        watch = await parts.watch.watch(workspace) if admin else None
    except BotError as exc:
        log.warning("home of %s in %s: %s", user, workspace, exc)
        trend, record, watch = [], None, None
    view = home_blocks.home_view(
        balance,
        problem,
        trend,
        admin=admin,
        record=record,
        watch=watch,
        environment_key=parts.environment_key,
        week=metering.week if metering is not None else None,
    )
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
    """Check and save one rules form within Slack's 3 s; errors keep it open with the reason."""
    workspace = workspace_of(body)
    user = str((body.get("user") or {}).get("id") or "")
    try:
        async with asyncio.timeout(FORM_DEADLINE_SECONDS):
            if not await parts.admins.is_admin(workspace, user):
                return home_blocks.form_errors(
                    {BlockId.CHANNEL: "Only workspace admins and owners can change this."}
                )
            answer = await _apply(view, workspace, user, parts)
    except TimeoutError:
        return home_blocks.form_errors({BlockId.CHANNEL: "Not saved: Slack was slow to answer. Try again."})
    except BotError as exc:
        log.warning("home form of %s in %s failed: %s", user, workspace, exc)
        return home_blocks.form_errors({BlockId.CHANNEL: f"Not saved: {wording(exc).title}"})
    if answer is None:
        log.info("rules of %s changed from the Home tab by %s", workspace, user)
        await republish(workspace, user, parts)
    return answer


async def _apply(view: dict[str, Any], workspace: Workspace, user: str, parts: Parts) -> Answer:
    callback = view.get("callback_id")
    if callback == CallbackId.ALERT:
        return await _apply_alert(view, workspace, user, parts)
    if callback == CallbackId.NOTIFY:
        if submitted(view, BlockId.SWITCH, ActionId.SWITCH) != "on":
            await parts.watch.clear_topups(workspace)
            return None
        channel, problem = await _channel(view, workspace, parts)
        if channel is not None:
            await parts.watch.set_topups(workspace, channel, user)
        return problem
    frequency = submitted(view, BlockId.FREQUENCY, ActionId.FREQUENCY) or "off"
    if frequency == "off":
        await parts.watch.clear_digest(workspace)
        return None
    channel, problem = await _channel(view, workspace, parts)
    if channel is None:
        return problem
    command = parse(f"digest {frequency} {submitted(view, BlockId.TIME, ActionId.TIME) or '09:00'}")
    if not isinstance(command.args, DigestArgs) or command.args.frequency is None:
        return home_blocks.form_errors({BlockId.TIME: "Pick a time like 09:00."})
    tz = await parts.admins.time_zone(workspace, user)
    at = command.args.at or DEFAULT_DIGEST_TIME
    await parts.watch.set_digest(workspace, Frequency(command.args.frequency), at, tz or "UTC", channel, user)
    return None


async def _apply_alert(view: dict[str, Any], workspace: Workspace, user: str, parts: Parts) -> Answer:
    threshold = submitted(view, BlockId.THRESHOLD, ActionId.THRESHOLD)
    if threshold is None:
        await parts.watch.clear_alert(workspace)
        return None
    command = parse(f"alert {threshold}")
    args = command.args
    if not isinstance(args, AlertArgs) or args.threshold is None or args.channel is not None:
        why = (command.usage or "Type only the number of credits, like 1,500.").split(" Usage:")[0]
        return home_blocks.form_errors({BlockId.THRESHOLD: why})
    channel, problem = await _channel(view, workspace, parts)
    if channel is not None:
        await parts.watch.set_alert(workspace, args.threshold, channel, user)
    return problem


async def _channel(view: dict[str, Any], workspace: Workspace, parts: Parts) -> tuple[str | None, Answer]:
    """The channel picked in a form, or the error to show when there is none or the app can't post there."""
    channel = submitted(view, BlockId.CHANNEL, ActionId.CHANNEL)
    if channel is None:
        return None, home_blocks.form_errors({BlockId.CHANNEL: "Pick the channel to post in."})
    problem = notices.channel_problem_in_form(await parts.poster.check_channel(workspace, channel))
    if problem is not None:
        return None, home_blocks.form_errors({BlockId.CHANNEL: problem})
    return channel, None
