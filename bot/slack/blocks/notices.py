"""Block Kit for what the bot says first (alerts, recoveries, top-ups, digests, admin DMs) and for
the rules themselves. Pure: each post is built from the facts queued with it in the outbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation

from bot.domain.balances import TopupStatus
from bot.domain.rules import AlertRule, PostKind, Rules, Watch
from bot.domain.runway import BURNING
from bot.domain.spend_rules import METERED
from bot.slack.blocks import metering, spend_alerts
from bot.slack.blocks import text as t
from bot.slack.blocks.balance import Block, Message, context, header, message, section
from bot.slack.channels import TOKEN_ERRORS, ChannelCheck, ChannelState
from bot.slack.commands import THRESHOLD_USAGE, USAGE
from bot.slack.ids import COMMAND, BlockId, Subcommand

Facts = Mapping[str, str]

_TOPUP_MARKERS = {
    TopupStatus.SUCCEEDED.value: ":moneybag:",
    TopupStatus.PENDING.value: ":hourglass_flowing_sand:",
    TopupStatus.FAILED.value: ":x:",
}


def _amount(facts: Facts, name: str) -> Decimal | None:
    raw = facts.get(name)
    if raw is None:
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _credits(facts: Facts, name: str) -> str:
    value = _amount(facts, name)
    return t.credits(value) if value is not None else "an unknown number of credits"


def _rearm(facts: Facts) -> str:
    threshold = _amount(facts, "threshold")
    if threshold is None:
        return "the threshold"
    return t.credits(AlertRule(threshold, "", "").rearm_at)


def _channel(channel_id: str) -> str:
    clean = t.identifier(channel_id, 24)
    return f"<@{clean}>" if clean.startswith(("U", "W")) else f"<#{clean}>"


def _facts_runway(facts: Facts) -> tuple[str | None, bool]:
    """The runway a post states, and whether it is Breeze's metered one (else the samples')."""
    metered = metering.facts_runway(facts, METERED)
    if metered is not None:
        return metered, True
    status = facts.get("runway") or (BURNING if "days_left" in facts else None)
    return metering.samples_text(status, _amount(facts, "days_left"), _amount(facts, "burn_per_day")), False


# --- posts from the outbox -----------------------------------------------------------------------


def render(kind: PostKind, facts: Facts) -> Message:
    """The message for a queued post."""
    if kind in spend_alerts.KINDS:
        return spend_alerts.render(kind, facts)
    match kind:
        case PostKind.ALERT:
            return alert_message(facts)
        case PostKind.RECOVERY:
            return recovery_message(facts)
        case PostKind.TOPUP:
            return topup_message(facts)
        case PostKind.DIGEST:
            return digest_message(facts)
    return fault_message(facts)


def alert_message(facts: Facts) -> Message:
    """The balance fell below the threshold: say so once, with the runway and what to do."""
    balance, threshold = _credits(facts, "balance"), _credits(facts, "threshold")
    lines = [f":warning: *The Breeze balance is {balance}*, below the alert threshold of {threshold}."]
    runway, metered = _facts_runway(facts)
    if runway and metered:
        lines.append(f":hourglass: {metering.sentence(runway)}")
    elif runway:
        lines.append(f"At the current rate: {runway}.")
    lines.append("*Top up in Breeze* to keep the API answering.")
    blocks = [
        header("Breeze balance is low", BlockId.HEADER),
        section("\n".join(lines), BlockId.NOTICE),
        context(
            [f"One alert per drop: I'll say when the balance is back above {_rearm(facts)}."], BlockId.FOOTER
        ),
    ]
    fallback = f"Breeze balance is low: {balance} (alert below {threshold}). Top up in Breeze."
    return message(fallback, blocks, "in_channel")


def recovery_message(facts: Facts) -> Message:
    """The balance is back above the threshold: a short all-clear; the alert is armed again."""
    balance, threshold = _credits(facts, "balance"), _credits(facts, "threshold")
    text = (
        f":white_check_mark: The Breeze balance is back to *{balance}*, "
        f"above the alert threshold of {threshold}."
    )
    blocks = [
        section(text, BlockId.NOTICE),
        context(["The low-balance alert is armed again."], BlockId.FOOTER),
    ]
    return message(f"Breeze balance recovered: {balance} (alert below {threshold}).", blocks, "in_channel")


def topup_message(facts: Facts) -> Message:
    """A new top-up, once."""
    amount = _amount(facts, "amount")
    shown = t.credits(amount, signed=True) if amount is not None else "A top-up of an unknown amount"
    status = facts.get("status", TopupStatus.UNKNOWN.value)
    word = (
        status
        if status != TopupStatus.UNKNOWN.value
        else f"status {t.outside(facts.get('raw_status') or 'unknown', 30)}"
    )
    marker = _TOPUP_MARKERS.get(status, ":grey_question:")
    line = f"{marker} *New Breeze top-up: {shown}* · {word}"
    when = _moment(facts.get("created_at"))
    if when is not None:
        line += f" · {t.slack_date(when)}"
    balance = _amount(facts, "balance")
    parts = [f"Balance now {t.credits(balance)}"] if balance is not None else []
    if facts.get("topup_id"):
        parts.append(f"Top-up id `{t.outside(facts['topup_id'], 64)}`")
    blocks: list[Block] = [section(line, BlockId.NOTICE)]
    if parts:
        blocks.append(context(parts, BlockId.FOOTER))
    fallback = f"New Breeze top-up: {shown} ({word})" + (
        f"; balance now {t.credits(balance)}" if balance is not None else ""
    )
    return message(fallback, blocks, "in_channel")


def digest_message(facts: Facts) -> Message:
    """The daily or weekly summary: balance, change, top-ups, runway, trend."""
    weekly = facts.get("frequency") == "weekly"
    title = "Breeze weekly digest" if weekly else "Breeze daily digest"
    balance = _credits(facts, "balance")
    lines = [f"*Balance:* {balance}"]
    change = _amount(facts, "change")
    period = "last week's digest" if weekly else "yesterday's digest"
    if change is not None:
        lines.append(f"*Change since {period}:* {t.credits(change, signed=True)}")
    count = int(_amount(facts, "topups") or 0)
    topped = _amount(facts, "topup_credits") or Decimal(0)
    lines.append(
        f"*Top-ups:* {t.plural(count, 'top-up')}" + (f" ({t.credits(topped, signed=True)})" if count else "")
    )
    runway, _ = _facts_runway(facts)
    lines.append(
        f"*Runway:* {runway[0].upper() + runway[1:]}"
        if runway
        else "*Runway:* not enough history yet (a day of checks is needed)."
    )
    spent = spend_alerts.spent_line(facts)
    if spent:
        lines.append(spent)
    if facts.get("sparkline"):
        lines.append(f"*Last 7 days:* `{t.outside(facts['sparkline'], 40)}`")
    blocks = [header(title, BlockId.HEADER), section("\n".join(lines), BlockId.NOTICE)]
    blocks.append(context([f"`{COMMAND} digest` to change or stop it"], BlockId.FOOTER))
    return message(f"{title}: {balance}" + (f"; {runway}" if runway else ""), blocks, "in_channel")


_FAULT_WORDS: dict[str, str] = {
    "breeze:KEY_REJECTED": "Breeze rejected this workspace's API key, so I cannot check the balance: "
    f"alerts, top-up notices and digests are paused. Set a new key with `{COMMAND} set-key`.",
    "breeze:KEY_FORBIDDEN": "This workspace's Breeze API key may not read the balance, so alerts, top-up "
    f"notices and digests are paused. Set a key with access to the balance with `{COMMAND} set-key`.",
    "breeze:NO_API_KEY": "This workspace has no Breeze API key any more, so alerts, top-up notices and "
    f"digests are paused. Set one with `{COMMAND} set-key`.",
    "breeze:KEY_UNREADABLE": "The stored Breeze API key cannot be decrypted (the app's encryption keys "
    f"changed), so alerts are paused. Set the key again with `{COMMAND} set-key`.",
}


def fault_message(facts: Facts) -> Message:
    """The one direct message to an admin about something only they can fix."""
    text = fault_text(facts)
    body = f":wrench: *Breeze balance alerts need your attention.*\n{text}"
    blocks = [
        section(body, BlockId.NOTICE),
        context(["I'll only tell you once about this problem."], BlockId.FOOTER),
    ]
    return message(f"Breeze balance alerts need your attention: {text}", blocks)


def fault_text(facts: Facts) -> str:
    """What is wrong and how to fix it, in a sentence or two."""
    fault = facts.get("fault", "")
    channel = _channel(facts["channel"]) if facts.get("channel") else "the channel"
    code = fault.removeprefix("slack:")
    if fault in _FAULT_WORDS:
        text = _FAULT_WORDS[fault]
    elif code == "not_in_channel":
        text = (
            f"I cannot post in {channel}: it is private and I am not a member. Invite me there "
            f"(`/invite @Breeze Balance`), or pick another channel, e.g. `{COMMAND} alert 1500 #channel`."
        )
    elif code == "channel_not_found":
        text = (
            f"I cannot find {channel}: it was deleted, or it is private and I am not in it. Invite me, "
            f"or pick another channel with `{COMMAND} alert`, `{COMMAND} notify` or `{COMMAND} digest`."
        )
    elif code == "is_archived":
        text = f"{channel} is archived, so my posts there fail. Pick another channel with `{COMMAND} alert`."
    elif code in TOKEN_ERRORS:
        text = (
            "Slack no longer accepts this app's token in this workspace: "
            "reinstall the app to get alerts again."
        )
    else:
        text = (
            f"My posts to {channel} fail (Slack said `{t.identifier(code)}`). "
            "Check the channel, then set the rule again."
        )
    return text


def _moment(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        return None


# --- rules, for admins ---------------------------------------------------------------------------


def rules_lines(watch: Watch | None) -> list[str]:
    """One line per rule: what it does, where, and what is wrong with it."""
    rules = watch.rules if watch is not None else Rules()
    lines = []
    if rules.alert is not None:
        state = "armed" if watch is None or watch.state.armed else "fired, waiting for the balance to recover"
        lines.append(
            f"*Alert:* below {t.credits(rules.alert.threshold)} in {_channel(rules.alert.channel)} ({state})"
        )
    else:
        lines.append(f"*Alert:* off. {THRESHOLD_USAGE}")
    lines += spend_alerts.rules_lines(rules, watch.state if watch is not None else None)
    if rules.topups is not None:
        lines.append(f"*Top-up notices:* on, in {_channel(rules.topups.channel)}")
    else:
        lines.append(f"*Top-up notices:* off. {USAGE[Subcommand.NOTIFY]}")
    if rules.digest is not None:
        d = rules.digest
        when = f"{d.at.strftime('%H:%M')} {t.outside(d.tz, 40)}" + (
            " on Mondays" if d.frequency.value == "weekly" else ""
        )
        lines.append(
            f"*Digest:* {d.frequency.value} at {when} in {_channel(d.channel)}; "
            f"next {t.slack_date(d.next_at)}"
        )
    else:
        lines.append(f"*Digest:* off. {USAGE[Subcommand.DIGEST]}")
    if watch is not None:
        problems = [{"fault": watch.fault}] if watch.fault else []
        problems += [{"fault": fault, "channel": channel} for channel, fault in watch.post_faults.items()]
        lines += [f":warning: *Problem:* {fault_text(facts)}" for facts in problems]
        if watch.last_checked_at is not None:
            lines.append(f"_Last checked {t.slack_date(watch.last_checked_at)}._")
    return lines


def rules_message(watch: Watch | None, note: str | None = None) -> Message:
    """The workspace's rules, after a change (`note` says what changed) or when asked."""
    lines = rules_lines(watch)
    body = "\n".join(([note] if note else []) + lines)
    blocks = [header("Breeze balance: alerts and notices", BlockId.HEADER), section(body, BlockId.RULES)]
    return message(body, blocks)


def usage_message(usage: str) -> Message:
    """A subcommand's words were not understood: say what, and how to write it."""
    text = f":grey_question: {usage}"
    return message(usage, [section(text, BlockId.ERROR)])


def channel_problem_message(check: ChannelCheck, channel: str) -> Message | None:
    """Why a rule cannot post in the channel it names; None when it can (or Slack would not say)."""
    where = _channel(channel)
    match check.state:
        case ChannelState.PRIVATE_NOT_MEMBER | ChannelState.NOT_FOUND:
            text = (
                f"I cannot post in {where}: it is private and I am not in it (or it does not exist). "
                "Invite me first with `/invite @Breeze Balance` in that channel, then run the command again."
            )
        case ChannelState.ARCHIVED:
            text = f"{where} is archived. Pick another channel."
        case ChannelState.DIRECT:
            text = (
                "I cannot post alerts in a direct message. Run the command in a channel, or name one: "
                f"`{COMMAND} alert 1500 #channel`."
            )
        case _:
            return None
    return message(text, [section(f":no_entry: {text}", BlockId.ERROR)])


def channel_problem_in_form(check: ChannelCheck) -> str | None:
    """The same, short enough for a form's inline error (150 characters)."""
    match check.state:
        case ChannelState.PRIVATE_NOT_MEMBER | ChannelState.NOT_FOUND:
            return (
                "I'm not in that private channel: invite me there (/invite @Breeze Balance), then save again."
            )
        case ChannelState.ARCHIVED:
            return "That channel is archived. Pick another one."
        case ChannelState.DIRECT:
            return "Pick a channel: I cannot post alerts in a direct message."
    return None
