"""What Breeze's metering adds under a balance: the runway from the last complete week's spend, and what
the key's own budget has left. Pure: sentences (lowercase, no final stop) built from a `Metering`."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation

from bot.domain.runway import BURNING, FLAT, Runway
from bot.domain.spend import MeteredRunway, Metering
from bot.domain.usage import WEEK_DAYS, KeyBudget, utc_day
from bot.slack.blocks import text as t

ESTIMATE = f"an estimate from the last {WEEK_DAYS} complete days of Breeze's metering"


def lines_under_balance(
    balance: Decimal | None,
    now: datetime,
    metering: Metering | None,
    samples: Runway | None,
    sparkline: str = "",
    *,
    plain: bool = False,
) -> list[str]:
    """The lines under a balance: its runway (Breeze's metered one when there is one, else the one from
    the app's own `samples`, if any), what the key's own budget has left, and the week's sparkline;
    as mrkdwn, or `plain` text for a terminal."""
    metered = metering.runway(balance, now) if metering is not None and balance is not None else None
    runway = runway_text(metered, now) if metered is not None else runway_line(samples)
    budget = budget_text(metering.budget if metering is not None else None)
    lines = []
    if runway:
        lines.append(f"Runway: {runway}" if plain else f":hourglass: {sentence(runway)}")
    if budget:
        lines.append(sentence(budget) if plain else f":key: {sentence(budget)}")
    if sparkline:
        lines.append(f"Last 7 days: {sparkline}" if plain else f"Last 7 days: `{sparkline}`")
    return lines


def sentence(words: str) -> str:
    """Words as a sentence: capitalised, with a final stop."""
    return f"{words[0].upper()}{words[1:]}{'' if words.endswith('.') else '.'}"


def runway_text(runway: MeteredRunway, now: datetime) -> str:
    """ "about 12 days left, until around Thu Dec 17, at 140 credits a day (an estimate …)", saying when
    the key's own budget runs out first; or that the week spent nothing."""
    if runway.days_left is None:
        return f"no spend in the last {WEEK_DAYS} complete days by Breeze's metering: no runway to estimate"
    until = f", until around {t.around(runway.until, utc_day(now))}" if runway.until is not None else ""
    binds = ": this key's own budget runs out before the account does" if runway.by_key_limit else ""
    return f"{t.days_left(runway.days_left)} left{until}, at {t.per_day(runway.per_day)}{binds} ({ESTIMATE})"


def budget_text(budget: KeyBudget | None) -> str | None:
    """ "this key's own budget: 1,249.5 of 5,000 credits left", when the key has one."""
    if budget is None or budget.limit is None or budget.remaining is None:
        return None
    return f"this key's own budget: {t.number(budget.remaining)} of {t.credits(budget.limit)} left"


def facts_runway(facts: Mapping[str, str], prefix: str) -> str | None:
    """`runway_text` of the metered runway a post's facts state (see `bot.domain.spend_rules.runway_facts`,
    names after `prefix`), as it was when the post was queued; None when they state none."""
    with suppress(ValueError, InvalidOperation):
        on = date.fromisoformat(facts[f"{prefix}on"]) if f"{prefix}on" in facts else None
        per_day = Decimal(facts.get(f"{prefix}per_day", "0"))
        left = facts.get(f"{prefix}days_left")
        until = facts.get(f"{prefix}until")
        if on is None or not per_day.is_finite():
            return None
        runway = MeteredRunway(
            per_day,
            Decimal(left) if left is not None else None,
            date.fromisoformat(until) if until is not None else None,
            facts.get(f"{prefix}by_key_limit") == "true",
        )
        return runway_text(runway, datetime.combine(on, time(), UTC))
    return None


def samples_text(status: str | None, days_left: Decimal | None, burn_per_day: Decimal | None) -> str | None:
    """ "about 12 days left at 140 credits a day" from the app's own samples, or that the balance is
    flat; None while unknown."""
    if status == FLAT:
        return "The balance is flat or rising over the last week, so it is not running out."
    if status != BURNING or days_left is None or burn_per_day is None:
        return None
    return f"{t.days_left(days_left)} left at {t.per_day(burn_per_day)}"


def runway_line(runway: Runway | None) -> str | None:
    """The samples' runway sentence for a `Runway`, if there is one to say."""
    if runway is None:
        return None
    return samples_text(runway.status, runway.days_left, runway.burn_per_day)
