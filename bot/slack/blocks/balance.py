"""Block Kit messages, built by pure functions; the one place errors become words.

Every message has a plain `text` fallback and stays inside Slack's Block Kit limits:
https://api.slack.com/reference/block-kit/blocks
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from bot import errors
from bot.domain.balances import Balance, Topup, TopupStatus
from bot.slack.blocks import text as t
from bot.slack.ids import COMMAND, BlockId

Block = dict[str, Any]
ResponseType = Literal["ephemeral", "in_channel"]

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_FALLBACK_TEXT = 3000
TOPUPS_SHOWN = 5

_MARKERS: dict[TopupStatus, str] = {
    TopupStatus.SUCCEEDED: ":white_check_mark:",
    TopupStatus.PENDING: ":hourglass_flowing_sand:",
    TopupStatus.FAILED: ":x:",
    TopupStatus.UNKNOWN: ":grey_question:",
}


@dataclass(frozen=True, slots=True)
class Message:
    """A reply: fallback text, blocks, and whether the channel sees it."""

    text: str
    blocks: list[Block] = field(default_factory=list)
    response_type: ResponseType = "ephemeral"
    replace_original: bool = False

    def payload(self) -> dict[str, Any]:
        """The JSON body for `response_url` or `chat.postMessage`."""
        body: dict[str, Any] = {"response_type": self.response_type, "text": self.text, "blocks": self.blocks}
        if self.replace_original:
            body["replace_original"] = True
        return body


def header(text: str, block_id: str) -> Block:
    """A header block (plain text, at most 150 characters)."""
    return {
        "type": "header",
        "block_id": block_id,
        "text": {"type": "plain_text", "text": t.truncate(text, MAX_HEADER_TEXT), "emoji": True},
    }


def section(mrkdwn: str, block_id: str) -> Block:
    """A section of mrkdwn, shortened to Slack's 3,000 characters."""
    return {
        "type": "section",
        "block_id": block_id,
        "text": {"type": "mrkdwn", "text": t.fit(mrkdwn, MAX_SECTION_TEXT)},
    }


def context(parts: list[str], block_id: str) -> Block:
    """A context line of up to ten mrkdwn elements."""
    elements = [{"type": "mrkdwn", "text": t.fit(p, MAX_SECTION_TEXT)} for p in parts[:MAX_CONTEXT_ELEMENTS]]
    return {"type": "context", "block_id": block_id, "elements": elements}


def message(text: str, blocks: list[Block], response_type: ResponseType = "ephemeral") -> Message:
    """A message with its fallback text and blocks cut to Slack's limits."""
    return Message(t.truncate(text, MAX_FALLBACK_TEXT), blocks[:MAX_BLOCKS], response_type)


# --- the balance ---------------------------------------------------------------------------------


def balance_message(
    balance: Balance,
    *,
    shared_by: str | None = None,
    age_seconds: float | None = None,
    refresh_in_seconds: float | None = None,
    trend: list[str] | None = None,
) -> Message:
    """The answer to `/breeze-balance`: the balance, recent top-ups, runway and trend, and their source."""
    amount = t.credits(balance.credits)
    blocks = [
        header("Breeze balance", BlockId.HEADER),
        section(_balance_line(balance), BlockId.BALANCE),
    ]
    if trend:
        blocks.append(section("\n".join(trend), BlockId.TREND))
    blocks.append(section(_topups_text(balance), BlockId.TOPUPS))
    footer = _footer(balance, shared_by) + _freshness(age_seconds, refresh_in_seconds)
    if footer:
        blocks.append(context(footer, BlockId.FOOTER))
    fallback = f"Breeze balance: {amount}"
    if shared_by:
        fallback += f" (requested by <@{t.identifier(shared_by)}>)"
    return message(fallback, blocks, "in_channel" if shared_by else "ephemeral")


def _balance_line(balance: Balance) -> str:
    line = f"*{t.credits(balance.credits)}*"
    if balance.credits < 0:
        return f":warning: {line}\nThe balance is *negative*: the account owes credits. Top up in Breeze."
    if balance.credits == 0:
        return f":warning: {line}\nThe account has *no credits left*. Top up in Breeze to keep using the API."
    return line


def _topups_text(balance: Balance) -> str:
    topups = balance.topups_newest_first()[:TOPUPS_SHOWN]
    if not topups:
        return "*Recent top-ups*\n_No top-ups to show._"
    return "\n".join(["*Recent top-ups*", *(_topup_line(topup) for topup in topups)])


def _topup_line(topup: Topup) -> str:
    amount = f"*{t.credits(topup.amount, signed=True)}*" if topup.amount is not None else "_amount unknown_"
    return f"{_MARKERS[topup.status]} {amount} · {_status_word(topup)} · {_when(topup)}"


def _status_word(topup: Topup) -> str:
    if topup.status is not TopupStatus.UNKNOWN:
        return topup.status.value
    return f"unknown ({t.outside(topup.raw_status, 30)})" if topup.raw_status else "unknown"


def _when(topup: Topup) -> str:
    if topup.created_at is not None:
        return t.slack_date(topup.created_at)
    return t.outside(topup.raw_created_at, 40) if topup.raw_created_at else "date unknown"


def _footer(balance: Balance, shared_by: str | None) -> list[str]:
    parts = []
    total = len(balance.topups) + balance.ignored_topups
    if total > TOPUPS_SHOWN:
        parts.append(f"Showing the {TOPUPS_SHOWN} newest of {t.plural(total, 'top-up')}.")
    if balance.key_id:
        parts.append(f"API key id: {t.outside(balance.key_id, 64)}")
    if shared_by:
        parts.append(f"Requested by <@{t.identifier(shared_by)}>")
    return parts


def _freshness(age_seconds: float | None, refresh_in_seconds: float | None) -> list[str]:
    parts = []
    if refresh_in_seconds is not None:
        parts.append(f"Refreshed moments ago; you can refresh again in {t.duration(refresh_in_seconds)}.")
    if age_seconds is not None:
        age = "less than a second" if age_seconds < 1 else t.plural(int(age_seconds), "second")
        parts.append(f"As of {age} ago · `{COMMAND} refresh` for the latest")
    return parts


# --- help ----------------------------------------------------------------------------------------

HELP_LINES = (
    f"`{COMMAND}` shows the Breeze credit balance and recent top-ups, only to you.",
    f"`{COMMAND} share` posts the same answer in this channel, saying you asked.",
    f"`{COMMAND} refresh` asks Breeze again instead of using a figure from the last few seconds.",
    f"`{COMMAND} usage [today|7d|30d|90d]` shows where the credits went (the last 7 days unless you "
    "say otherwise): the spend, the biggest keys and models, and a trend; add `share` to post it here.",
    f"`{COMMAND} help` shows this help.",
    f"Workspace admins: `{COMMAND} set-key`, `{COMMAND} remove-key` and `{COMMAND} status` "
    "manage the Breeze API key this workspace uses.",
    f"Workspace admins: `{COMMAND} alert 1,500 #channel` warns once when the balance falls below "
    f"1,500 credits, `{COMMAND} notify topups on #channel` posts each new top-up, and "
    f"`{COMMAND} digest daily 09:00 #channel` posts a summary (`weekly`: on Mondays); "
    "`off` stops each one.",
    f"Workspace admins, from Breeze's metering: `{COMMAND} alert days 5 #channel` warns once when "
    f"fewer than 5 days of credits are left at the last week's rate, and `{COMMAND} alert spike #channel` "
    "when a day's spend is over 3 times the usual day (`alert days off`, `alert spike off` stop them).",
)


def help_message(unknown: str | None = None) -> Message:
    """What the command can do; names the unknown text when that is why help is shown."""
    lines = list(HELP_LINES)
    if unknown:
        lines.insert(0, f"I don't know “{t.outside(unknown, 40)}”. Here is what I can do:")
    blocks = [header("Breeze balance: help", BlockId.HEADER), section("\n".join(lines), BlockId.HELP)]
    return message("\n".join(lines), blocks)


# --- errors --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Wording:
    """What went wrong and what to do next, in a person's words."""

    title: str
    next_step: str


def wording(error: BaseException) -> Wording:
    """The one mapping from errors to words."""
    match error:
        case errors.NoApiKey():
            return Wording(
                "No Breeze API key is set up for this workspace yet.",
                f"A workspace admin can set one with `{COMMAND} set-key`.",
            )
        case errors.KeyRejected():
            return Wording(
                "Breeze did not accept the API key.",
                f"The key may be wrong, revoked or expired: a workspace admin can set a new one "
                f"with `{COMMAND} set-key`.",
            )
        case errors.KeyForbidden():
            return Wording(
                "This API key is not allowed to read the balance.",
                "A workspace admin can set a key with access to the account balance "
                f"with `{COMMAND} set-key`.",
            )
        case errors.StoredKeyUnreadable():
            return Wording(
                "The stored Breeze key cannot be decrypted.",
                "Whoever runs this app changed BREEZE_ENCRYPTION_KEYS without keeping the old key; "
                f"they can restore it, or an admin can set the key again with `{COMMAND} set-key`.",
            )
        case errors.StorageError():
            return Wording("The app's database is not answering.", "Please try again in a moment.")
        case errors.AdminCheckFailed(no_token=True):
            return Wording(
                "This app has no Slack bot token, so it cannot check who is a workspace admin.",
                "Whoever runs the app needs to set `SLACK_BOT_TOKEN` or list you in `BREEZE_ADMIN_USER_IDS`.",
            )
        case errors.AdminCheckFailed():
            return Wording(
                "Slack could not tell me whether you are a workspace admin.",
                "Please try again in a moment; if it keeps happening, the app may need to be "
                "reinstalled to get the `users:read` permission.",
            )
        case errors.RateLimited(retry_after=wait):
            when = f"in {t.duration(wait)}" if wait else "in a minute"
            return Wording("Breeze is getting too many requests right now.", f"Please try again {when}.")
        case errors.BreezeUnavailable():
            return Wording("Breeze is temporarily unavailable.", "Please try again in a few minutes.")
        case errors.BillingUpstreamError():
            return Wording(
                "Breeze's billing system is not responding right now.", "Please try again in a few minutes."
            )
        case errors.BreezeApiError(detail=detail, status=status):
            said = f": “{t.outside(detail, 150)}”" if detail else f" (HTTP {status})"
            return Wording(f"Breeze could not give the balance{said}", "Please try again later.")
        case errors.BreezeTimeout():
            return Wording("Breeze took too long to answer.", "Please try again in a moment.")
        case errors.BreezeUnreachable(reason="refused"):
            return Wording(
                "Could not reach Breeze.", "The connection was refused. Please try again in a moment."
            )
        case errors.BreezeUnreachable(reason="dropped"):
            return Wording(
                "Could not reach Breeze.", "The connection dropped before Breeze answered. Please try again."
            )
        case errors.BreezeUnreachable(reason="tls"):
            return Wording(
                "Could not reach Breeze.",
                "The secure (TLS) connection failed: whoever runs this app should check BREEZE_BASE_URL "
                "and the machine's certificates.",
            )
        case errors.BreezeUnreachable():
            return Wording("Could not reach Breeze.", "Please try again in a moment.")
        case errors.BadResponse():
            return Wording("Breeze sent an answer that could not be read.", "Please try again later.")
    return Wording(
        "Something went wrong on our side.",
        "Please try again; if it keeps happening, give the reference below to whoever runs this app.",
    )


def error_code(error: BaseException) -> str:
    """The short code shown beside a reference id (the API's own code when it sent one)."""
    if isinstance(error, errors.BreezeError):
        return t.identifier(error.code) or "BREEZE_ERROR"
    if isinstance(error, errors.NoApiKey):
        return "NO_API_KEY"
    if isinstance(error, errors.StoredKeyUnreadable | errors.StorageError | errors.AdminCheckFailed):
        return error.code
    return "INTERNAL_ERROR"


def error_message(error: BaseException, reference: str) -> Message:
    """A friendly error: what happened, the next step, and the code and reference in small print."""
    words = wording(error)
    code = error_code(error)
    ref = t.identifier(reference)
    blocks = [
        section(f":warning: *{words.title}*\n{words.next_step}", BlockId.ERROR),
        context([f"Error `{code}` · Reference `{ref}`"], BlockId.ERROR_CONTEXT),
    ]
    return message(f"{words.title} {words.next_step} (error {code}, reference {ref})", blocks)
