"""The App Home tab and the forms it opens for the rules. Pure.

The Home tab shows everyone the balance, recent top-ups, runway and trend; admins also see the
key and the rules, with buttons that open the same forms as the subcommands.
https://api.slack.com/surfaces/app-home
"""

from __future__ import annotations

import json
from typing import Any

from bot.domain.balances import Balance, KeyRecord
from bot.domain.rules import DEFAULT_DIGEST_TIME, Watch
from bot.domain.spend import WeekSpend
from bot.slack.blocks import balance as blocks
from bot.slack.blocks import notices
from bot.slack.blocks import text as t
from bot.slack.blocks.balance import Block, context, header, section, wording
from bot.slack.blocks.keys import describe_key
from bot.slack.blocks.usage import week_blocks
from bot.slack.ids import COMMAND, ActionId, BlockId, CallbackId

MAX_HOME_BLOCKS = 100  # https://api.slack.com/reference/block-kit/blocks: 100 in a view


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def _button(label: str, action: ActionId, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {"type": "button", "action_id": action, "text": _plain(label), "value": action}
    if style:
        button["style"] = style
    return button


def home_view(
    balance: Balance | None,
    problem: BaseException | None,
    trend: list[str],
    *,
    admin: bool,
    record: KeyRecord | None = None,
    watch: Watch | None = None,
    environment_key: bool = False,
    week: WeekSpend | None = None,
) -> dict[str, Any]:
    """The Home tab for one person: the balance and the week's spend (by Breeze's metering, when there
    is some) for all, the key and the rules for admins."""
    body: list[Block] = [header("Breeze balance", BlockId.HEADER)]
    if balance is not None:
        reply = blocks.balance_message(balance, trend=trend or None)
        body += [b for b in reply.blocks if b.get("block_id") != BlockId.HEADER]
    if week is not None:
        body += week_blocks(week)
    elif problem is not None:
        words = wording(problem)
        body.append(section(f":warning: *{words.title}*\n{words.next_step}", BlockId.ERROR))
    if admin:
        body += _admin_blocks(record, watch, environment_key)
    body.append(
        context([f"Type `{COMMAND}` anywhere for the same answer, or `{COMMAND} help`."], BlockId.FOOTER)
    )
    return {"type": "home", "blocks": body[:MAX_HOME_BLOCKS]}


def _admin_blocks(record: KeyRecord | None, watch: Watch | None, environment_key: bool) -> list[Block]:
    if record is not None:
        key = f"*Key:* {describe_key(record)}"
    elif environment_key:
        key = "*Key:* the one the app was deployed with (BREEZE_API_KEY); `Set the key` stores one for here."
    else:
        key = "*Key:* none yet. `Set the key` stores one, checked with Breeze."
    lines = [key, *notices.rules_lines(watch)]
    return [
        {"type": "divider"},
        header("For admins", BlockId.HOME_ADMIN),
        section("\n".join(lines), BlockId.RULES),
        {
            "type": "actions",
            "block_id": BlockId.HOME_ACTIONS,
            "elements": [
                _button("Set the key", ActionId.HOME_SET_KEY, "primary"),
                _button("Low-balance alert", ActionId.HOME_ALERT),
                _button("Top-up notices", ActionId.HOME_NOTIFY),
                _button("Digest", ActionId.HOME_DIGEST),
                _button("Refresh", ActionId.HOME_REFRESH),
            ],
        },
    ]


def _modal(callback: CallbackId, title: str, intro: str, inputs: list[Block]) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": callback,
        "title": _plain(title),
        "submit": _plain("Save"),
        "close": _plain("Cancel"),
        "private_metadata": json.dumps({"from": "home"}),
        "blocks": [section(intro, BlockId.KEY_INFO), *inputs],
    }


def _channel_input(initial: str | None, hint: str) -> Block:
    element: dict[str, Any] = {
        "type": "conversations_select",
        "action_id": ActionId.CHANNEL,
        "filter": {"include": ["public", "private"], "exclude_bot_users": True},
        "placeholder": _plain("Pick a channel"),
    }
    if initial:
        element["initial_conversation"] = initial
    return {
        "type": "input",
        "block_id": BlockId.CHANNEL,
        "optional": True,
        "label": _plain("Channel"),
        "hint": _plain(hint),
        "element": element,
    }


def _options(choices: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [{"text": _plain(label), "value": value} for value, label in choices]


def _select(
    block: BlockId, action: ActionId, label: str, choices: list[tuple[str, str]], value: str
) -> Block:
    options = _options(choices)
    initial = next((o for o in options if o["value"] == value), options[0])
    return {
        "type": "input",
        "block_id": block,
        "label": _plain(label),
        "element": {
            "type": "static_select",
            "action_id": action,
            "options": options,
            "initial_option": initial,
        },
    }


def alert_modal(watch: Watch | None) -> dict[str, Any]:
    """The form behind "Low-balance alert": the threshold (empty turns it off) and the channel."""
    rule = watch.rules.alert if watch is not None else None
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": ActionId.THRESHOLD,
        "placeholder": _plain("1,500"),
    }
    if rule is not None:
        element["initial_value"] = t.number(rule.threshold)
    threshold = {
        "type": "input",
        "block_id": BlockId.THRESHOLD,
        "optional": True,
        "label": _plain("Alert below (credits)"),
        "hint": _plain("Leave it empty to turn the alert off."),
        "element": element,
    }
    intro = (
        "I post once in the channel when the balance falls below the threshold, and once when it recovers."
    )
    channel = _channel_input(
        rule.channel if rule else None, "Public channels work at once; invite me to private ones."
    )
    return _modal(CallbackId.ALERT, "Low-balance alert", intro, [threshold, channel])


def notify_modal(watch: Watch | None) -> dict[str, Any]:
    """The form behind "Top-up notices": on or off, and the channel."""
    rule = watch.rules.topups if watch is not None else None
    switch = _select(
        BlockId.SWITCH,
        ActionId.SWITCH,
        "Top-up notices",
        [("on", "On"), ("off", "Off")],
        "on" if rule else "off",
    )
    intro = "I post each new top-up once. Top-ups made before notices are turned on are not announced."
    channel = _channel_input(rule.channel if rule else None, "Where the notices go.")
    return _modal(CallbackId.NOTIFY, "Top-up notices", intro, [switch, channel])


def digest_modal(watch: Watch | None) -> dict[str, Any]:
    """The form behind "Digest": off, daily or weekly (Mondays), the time, and the channel."""
    rule = watch.rules.digest if watch is not None else None
    frequency = _select(
        BlockId.FREQUENCY,
        ActionId.FREQUENCY,
        "Digest",
        [("off", "Off"), ("daily", "Every day"), ("weekly", "Every Monday")],
        rule.frequency.value if rule else "off",
    )
    at = (rule.at if rule else DEFAULT_DIGEST_TIME).strftime("%H:%M")
    time_input = {
        "type": "input",
        "block_id": BlockId.TIME,
        "label": _plain("At (your time zone)"),
        "element": {"type": "timepicker", "action_id": ActionId.TIME, "initial_time": at},
    }
    intro = "A summary of the balance, its change, the top-ups, the runway and the week's trend."
    channel = _channel_input(rule.channel if rule else None, "Where the digest goes.")
    return _modal(CallbackId.DIGEST, "Balance digest", intro, [frequency, time_input, channel])


def form_errors(errors: dict[BlockId, str]) -> dict[str, Any]:
    """A view_submission answer that keeps the form open with these messages under their inputs."""
    return {"response_action": "errors", "errors": {str(k): t.truncate(v, 150) for k, v in errors.items()}}


def submitted(view: dict[str, Any], block: BlockId, action: ActionId) -> str | None:
    """The value the person chose or typed in one input of a submitted form."""
    values = ((view.get("state") or {}).get("values") or {}).get(block) or {}
    value = values.get(action) or {}
    for key in ("value", "selected_conversation", "selected_time"):
        if isinstance(value.get(key), str) and value[key].strip():
            return str(value[key]).strip()
    option = value.get("selected_option") or {}
    return str(option["value"]) if isinstance(option, dict) and option.get("value") else None
