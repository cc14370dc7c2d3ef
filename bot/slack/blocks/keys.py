"""Block Kit for managing the workspace's key: the modal, confirmations, status. Pure.

Nothing here ever receives a key: only its last four characters, id, who set it and when.
"""

from __future__ import annotations

from typing import Any

from bot.domain.balances import Balance, KeyRecord
from bot.services.balances import KeySource, KeyStatus
from bot.slack.blocks import text as t
from bot.slack.blocks.balance import Block, Message, context, header, section, wording
from bot.slack.ids import COMMAND, ActionId, BlockId, CallbackId, Subcommand

MAX_KEY_LENGTH = 500
MODAL_TITLE = "Breeze API key"  # Slack allows 24 characters

_DOING: dict[Subcommand, str] = {
    Subcommand.SET_KEY: "set the Breeze API key",
    Subcommand.REMOVE_KEY: "remove the Breeze API key",
    Subcommand.STATUS: "see the Breeze API key's status",
    Subcommand.ALERT: "set the low-balance alert",
    Subcommand.NOTIFY: "turn top-up notices on or off",
    Subcommand.DIGEST: "set the balance digest",
}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def describe_key(record: KeyRecord) -> str:
    """`…abcd` (key id `k_1`), set by @user on <date>."""
    parts = [f"ending in `…{t.outside(record.last4, 8)}`"]
    if record.key_id:
        parts.append(f"(key id `{t.outside(record.key_id, 64)}`)")
    parts.append(f"set by <@{t.identifier(record.set_by)}> on {t.slack_date(record.set_at)}")
    return " ".join(parts)


def set_key_modal(metadata: str, *, replacing: KeyRecord | None) -> dict[str, Any]:
    """The modal an admin pastes the key into (Slack has no masked input; the key is never shown back)."""
    intro = (
        "Paste the Breeze API key this workspace should use. It is checked with Breeze, stored "
        "encrypted, and never shown again: only its last four characters are."
    )
    if replacing is not None:
        intro += f"\n\nIt replaces the key {describe_key(replacing)}."
    return {
        "type": "modal",
        "callback_id": CallbackId.SET_KEY,
        "title": _plain(MODAL_TITLE),
        "submit": _plain("Check and save"),
        "close": _plain("Cancel"),
        "private_metadata": metadata,
        "blocks": [
            section(intro, BlockId.KEY_INFO),
            {
                "type": "input",
                "block_id": BlockId.KEY_INPUT,
                "label": _plain("API key"),
                "hint": _plain("Find it in your Breeze dashboard under API keys. It starts with brz_."),
                "element": {
                    "type": "plain_text_input",
                    "action_id": ActionId.KEY_INPUT,
                    "placeholder": _plain("brz_…"),
                    "max_length": MAX_KEY_LENGTH,
                },
            },
        ],
    }


def key_error(message: str) -> dict[str, Any]:
    """The view_submission answer that shows `message` under the key field and keeps the modal open."""
    return {"response_action": "errors", "errors": {BlockId.KEY_INPUT: t.truncate(message, 150)}}


def rejected_key_text(error: BaseException) -> str:
    """Why a candidate key was not saved, short enough for an inline modal error."""
    return f"Not saved: {wording(error).title}"


def key_saved_message(record: KeyRecord, balance: Balance) -> Message:
    """The admin's confirmation, with the balance the new key reads."""
    line = f":white_check_mark: *Breeze API key saved.* The key {describe_key(record)}."
    amount = f"Breeze accepted it: the balance is *{t.credits(balance.credits)}*."
    blocks = [section(f"{line}\n{amount}", BlockId.KEY_INFO)]
    return Message(f"Breeze API key saved (ending in …{record.last4}). {amount}", blocks)


def not_admin_message(subcommand: Subcommand, listed: frozenset[str]) -> Message:
    """A polite refusal naming who can do it."""
    doing = _DOING.get(subcommand, "manage the Breeze API key")
    who = "workspace admins and owners"
    if listed:
        people = ", ".join(f"<@{t.identifier(user)}>" for user in sorted(listed))
        who += f", and {people}"
    text = f":lock: Sorry, only {who} can {doing}. Please ask one of them."
    return Message(text, [section(text, BlockId.ERROR)])


def ignored_text_note() -> str:
    """Said when text followed `set-key`: it may have been the key itself."""
    return (
        "I ignored the text after `set-key`, and did not store or show it. If it was the key, "
        "enter it in the form instead; consider the pasted key exposed and replace it."
    )


def modal_opened_message(ignored_text: bool) -> Message | None:
    """A note beside the modal when the command carried text; else nothing to say."""
    if not ignored_text:
        return None
    text = f":information_source: {ignored_text_note()}"
    return Message(text, [section(text, BlockId.KEY_INFO)])


def no_stored_key_message(environment_fallback: bool) -> Message:
    """`remove-key` when this workspace has no stored key."""
    text = "This workspace has no stored Breeze API key, so there is nothing to remove."
    if environment_fallback:
        text += " Balances use the key the app was deployed with (BREEZE_API_KEY)."
    return Message(text, [section(text, BlockId.KEY_INFO)])


def remove_key_prompt(record: KeyRecord) -> Message:
    """Ask the admin to confirm removing the key."""
    question = (
        f"Remove the Breeze API key {describe_key(record)}?\n"
        f"`{COMMAND}` stops showing the balance here until an admin sets a new key."
    )
    confirm_dialog = {
        "title": _plain("Remove the key?"),
        "text": _plain("The key is deleted from this app. You can set a new one at any time."),
        "confirm": _plain("Remove"),
        "deny": _plain("Keep it"),
        "style": "danger",
    }
    blocks: list[Block] = [
        section(question, BlockId.KEY_INFO),
        {
            "type": "actions",
            "block_id": BlockId.KEY_ACTIONS,
            "elements": [
                {
                    "type": "button",
                    "action_id": ActionId.REMOVE_CONFIRM,
                    "text": _plain("Remove key"),
                    "style": "danger",
                    "value": "remove",
                    "confirm": confirm_dialog,
                },
                {
                    "type": "button",
                    "action_id": ActionId.REMOVE_CANCEL,
                    "text": _plain("Cancel"),
                    "value": "cancel",
                },
            ],
        },
    ]
    return Message(f"Remove the Breeze API key ending in …{record.last4}?", blocks)


def key_removed_message(removed: bool, by: str) -> Message:
    """The prompt, replaced once the admin answered."""
    if removed:
        text = f":wastebasket: <@{t.identifier(by)}> removed this workspace's Breeze API key."
    else:
        text = "There was no stored Breeze API key any more; nothing was removed."
    return Message(text, [section(text, BlockId.KEY_INFO)], replace_original=True)


def removal_cancelled_message() -> Message:
    """The prompt, replaced after Cancel."""
    text = "Kept the Breeze API key; nothing was removed."
    return Message(text, [section(text, BlockId.KEY_INFO)], replace_original=True)


def status_message(status: KeyStatus, mode: str, rules: list[str] | None = None) -> Message:
    """For admins: mode, where the key comes from, what is known of it, and whether Breeze accepts it."""
    lines = [f"*Mode:* {mode}"]
    if status.source is KeySource.NONE:
        lines.append(f"*Key:* none set. Run `{COMMAND} set-key` to set one.")
    elif status.source is KeySource.ENVIRONMENT:
        lines.append(f"*Key:* from the app's environment (BREEZE_API_KEY), ending in `…{status.last4}`")
    elif status.record is not None:
        lines.append(f"*Key:* stored for this workspace, {describe_key(status.record)}")
    if status.balance is not None:
        lines.append(f"*Breeze:* :white_check_mark: accepts it; balance {t.credits(status.balance.credits)}")
        if status.balance.key_id and (status.record is None or status.record.key_id != status.balance.key_id):
            lines.append(f"*Key id:* `{t.outside(status.balance.key_id, 64)}`")
    elif status.problem is not None:
        words = wording(status.problem)
        lines.append(f"*Breeze:* :warning: {words.title} {words.next_step}")
    text = "\n".join(lines)
    blocks = [header("Breeze balance: key status", BlockId.HEADER), section(text, BlockId.STATUS)]
    if rules:
        blocks.append(section("\n".join(rules), BlockId.RULES))
        text += "\n" + "\n".join(rules)
    blocks.append(context(["Only you can see this."], BlockId.FOOTER))
    return Message(text, blocks)
