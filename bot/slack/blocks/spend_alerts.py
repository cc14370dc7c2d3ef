"""Block Kit for the alerts on Breeze's metering (the runway under N days, its recovery, a day's spend
spike) and for their rules. Pure: each post is built from the facts queued with it in the outbox
(`bot.domain.spend_rules`); `notices` hands these kinds of post to `render` here.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from bot.domain.rules import DaysRule, PostKind, Rules, WatchState
from bot.domain.usage import WEEK_DAYS, Window
from bot.slack.blocks import text as t
from bot.slack.blocks.balance import Message, context, header, message, section
from bot.slack.blocks.usage import during
from bot.slack.commands import DAYS_USAGE, SPIKE_USAGE
from bot.slack.ids import COMMAND, BlockId

Facts = Mapping[str, str]

KINDS = frozenset({PostKind.DAYS_ALERT, PostKind.DAYS_RECOVERY, PostKind.SPIKE})
ESTIMATE = f"An estimate from the last {WEEK_DAYS} complete days of Breeze's metering."


def render(kind: PostKind, facts: Facts) -> Message:
    """The message for a queued post of one of `KINDS`."""
    if kind is PostKind.DAYS_ALERT:
        return days_alert_message(facts)
    if kind is PostKind.DAYS_RECOVERY:
        return days_recovery_message(facts)
    return spike_message(facts)


def days_alert_message(facts: Facts) -> Message:
    """The runway fell under N days: say so once, with the date, what drove the week, and what to do."""
    days, left, until = _runway(facts)
    per_day = _number(facts, "per_day")
    rate = f"at {t.per_day(per_day)}, " if per_day is not None else ""
    if facts.get("by_key_limit"):
        remaining = _number(facts, "key_remaining")
        budget = f" ({t.credits(remaining)} left)" if remaining is not None else ""
        runs_out = f"this key's own budget{budget} runs out before the account does"
    else:
        runs_out = f"the balance of {_credits(facts, 'balance')} runs out"
    when = f" around *{until}*" if until else ""
    lines = [
        f":hourglass_flowing_sand: *{_capital(left)} of credits left*, under the alert of {days} days: "
        f"{rate}{runs_out}{when}.",
    ]
    drivers = drivers_of(facts)
    if drivers:
        lines.append(f"Most of the last {WEEK_DAYS} days' spend: {drivers}.")
    lines.append("*Top up in Breeze* to keep the API answering.")
    rearm = t.number(DaysRule(int(days), "", "").rearm_at) if days.isdigit() else "the alert"
    blocks = [
        header("Breeze credits are running out", BlockId.HEADER),
        section("\n".join(lines), BlockId.NOTICE),
        context(
            [f"{ESTIMATE} One alert per drop: I'll say when the runway is back above {rearm} days."],
            BlockId.FOOTER,
        ),
    ]
    date_part = f", until around {until}" if until else ""
    fallback = f"Breeze runway is short: {left} left{date_part} (alert under {days} days). Top up in Breeze."
    return message(fallback, blocks, "in_channel")


def days_recovery_message(facts: Facts) -> Message:
    """The runway is back above N days plus 10 %: a short all-clear; the runway alert is armed again."""
    days, left, until = _runway(facts)
    date_part = f", until around {until}" if until else ""
    text = (
        f":white_check_mark: The Breeze runway is back to *{left}*{date_part}, above the alert of {days} days"
    )
    blocks = [
        section(f"{text}.", BlockId.NOTICE),
        context([f"The runway alert is armed again. {ESTIMATE}"], BlockId.FOOTER),
    ]
    return message(f"Breeze runway recovered: {left} left (alert under {days} days).", blocks, "in_channel")


def spike_message(facts: Facts) -> Message:
    """Today's spend is over the multiple of the usual day: by how much, and who spent it."""
    today = _credits(facts, "today")
    times, multiple = _times(facts, "times"), _times(facts, "multiple")
    usual = _number(facts, "usual")
    against = (
        f", against {t.per_day(usual)} on average over the last {WEEK_DAYS} complete days"
        if usual is not None
        else ""
    )
    lines = [
        f":chart_with_upwards_trend: *Breeze spend today is {times} the usual day*: {today} so far{against}."
    ]
    drivers = drivers_of(facts)
    if drivers:
        lines.append(f"Most of today's spend: {drivers}.")
    footer = (
        f"Alert over {multiple} the usual day, at most once a UTC day. `{COMMAND} alert spike off` stops it."
    )
    blocks = [
        header("Breeze spend spike", BlockId.HEADER),
        section("\n".join(lines), BlockId.NOTICE),
        context([footer], BlockId.FOOTER),
    ]
    fallback = f"Breeze spend spike: {today} today, {times} the usual day (alert over {multiple})."
    return message(fallback, blocks, "in_channel")


# --- rules, for admins ---------------------------------------------------------------------------


def rules_lines(rules: Rules, state: WatchState | None) -> list[str]:
    """The runway and spike rules' lines among the others: what each does, where, and its state."""
    lines = []
    if rules.days is not None:
        days = rules.days
        fired = state is not None and not state.days_armed
        status = (
            f"fired, waiting for it to be back above {t.number(days.rearm_at)} days" if fired else "armed"
        )
        lines.append(f"*Runway alert:* under {days.days} days in {_where(days.channel)} ({status})")
    else:
        lines.append(f"*Runway alert:* off. {DAYS_USAGE}")
    if rules.spike is not None:
        spike = rules.spike
        lines.append(
            f"*Spike alert:* a day over {t.number(spike.multiple)}x the usual day, in {_where(spike.channel)}"
        )
    else:
        lines.append(f"*Spike alert:* off. {SPIKE_USAGE}")
    return lines


def days_note(where: str, days: int) -> str:
    """What `alert days <N>` set."""
    return (
        f":white_check_mark: I'll post in {where} once when the runway falls under {days} days at the last "
        f"{WEEK_DAYS} complete days' rate (Breeze's metering), and again only after it has recovered."
    )


def spike_note(where: str, multiple: Decimal) -> str:
    """What `alert spike [<multiple>]` set."""
    return (
        f":white_check_mark: I'll post in {where} when a day's spend is over {t.number(multiple)}x the "
        f"usual day (the average of the last {WEEK_DAYS} complete days), at most once a day."
    )


def spent_line(facts: Facts) -> str | None:
    """A digest's "*Spent on Mon Dec 7, 2026 (UTC):* 400 credits, most by key *batch*, model *m1*"."""
    spent = _number(facts, "spent")
    with suppress(ValueError, KeyError):
        window = Window(date.fromisoformat(facts["spent_from"]), date.fromisoformat(facts["spent_to"]))
        if spent is None:
            return None
        most = drivers_of(facts)
        by = f", most by {most}" if most and spent > 0 else ""
        return f"*Spent {during(window, window.end + timedelta(days=1))}:* {t.credits(spent)}{by}"
    return None


# --- the facts -----------------------------------------------------------------------------------


def _number(facts: Facts, name: str) -> Decimal | None:
    """A fact as a finite decimal; None when it is missing or not a number."""
    with suppress(InvalidOperation):
        value = Decimal(facts.get(name, "NaN"))
        return value if value.is_finite() else None
    return None


def _credits(facts: Facts, name: str) -> str:
    value = _number(facts, name)
    return t.credits(value) if value is not None else "an unknown number of credits"


def _times(facts: Facts, name: str) -> str:
    value = _number(facts, name)
    return f"{t.number(value)}x" if value is not None else "several times"


def _runway(facts: Facts) -> tuple[str, str, str | None]:
    """The rule's days, the days left ("about 4.5 days") and the date they run out, if known."""
    days = t.identifier(facts.get("days", "N"), 4)
    left = _number(facts, "days_left")
    shown = t.days_left(left) if left is not None else "an unknown number of days"
    return days, shown, _around(facts.get("until"), facts.get("on"))


def _around(until: str | None, on: str | None) -> str | None:
    with suppress(ValueError, TypeError):
        day = date.fromisoformat(until or "")
        return t.around(day, date.fromisoformat(on) if on else day)
    return None


def drivers_of(facts: Facts) -> str:
    """ "key *prod*, model *bluebell-v1-en*", from what is known."""
    found = [
        f"{what} *{t.outside(facts[what_key], 40)}*" for what, what_key in _DRIVERS if facts.get(what_key)
    ]
    return ", ".join(found)


_DRIVERS = (("key", "top_key"), ("model", "top_model"))


def _where(channel: str) -> str:
    return f"<#{t.identifier(channel, 24)}>"


def _capital(words: str) -> str:
    return words[:1].upper() + words[1:]
