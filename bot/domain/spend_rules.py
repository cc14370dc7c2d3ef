"""The two rules on Breeze's metering, and how a check applies them after `bot.domain.rules.evaluate`.
Pure: the metering, the balance and the time are passed in.

- **Runway** (`DaysRule`): warn once when the metered runway (`Metering.runway`: the balance at the
  average day of the last 7 complete UTC days, or the key's own budget when that runs out first)
  falls under N days; say "recovered" when it is back at N plus 10 % or more, and arm again. No
  metering, or a week without spend, gives no runway: nothing fires, nothing recovers, and the state
  stays as it was.
- **Spike** (`SpikeRule`): warn at most once per UTC day when today's spend so far is over the
  rule's multiple of the average day of the previous 7 complete days (days without spend count),
  and at least `SPIKE_MIN_CREDITS`. With fewer than `BASELINE_DAYS` of those days spending anything
  there is no baseline yet, and no spike.

Their posts' dedupe keys (`days:<crossing>`, `days-recovery:<crossing>`, `spike:<UTC date>`) and the
state they change are stored with the other rules' under the workspace's row lock, so each is
posted once however many workers check at once.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import ROUND_DOWN, Decimal, localcontext

from bot.domain.rules import DaysRule, Outcome, Post, PostKind, Rules, SpikeRule, WatchState
from bot.domain.spend import MeteredRunway, Metering, WeekSpend
from bot.domain.usage import credits_of, utc_day

MIN_DAYS, MAX_DAYS = 1, 90
MIN_MULTIPLE, MAX_MULTIPLE = Decimal("1.5"), Decimal(100)
DEFAULT_MULTIPLE = Decimal(3)
# Less than this spent today is never a spike, however quiet the week was.
SPIKE_MIN_CREDITS = Decimal(10)
# Days of the week that must have spent something for their average to be a baseline.
BASELINE_DAYS = 3

_MILLICREDIT = Decimal("0.001")
_TENTH = Decimal("0.1")
_PRECISION = 50


def evaluate_spend(
    rules: Rules, outcome: Outcome, credits: Decimal, now: datetime, metering: Metering | None
) -> Outcome:
    """Add the runway and spike rules' state and posts to `outcome`, what `evaluate` decided."""
    week = metering.week if metering is not None else None
    if metering is None or week is None:
        return outcome  # no metering, no runway, no spike: nothing fires, nothing recovers
    state, posts = outcome.state, list(outcome.posts)
    if rules.days is not None:
        state, found = _days(rules.days, state, credits, now, metering.runway(credits, now), week)
        posts += found
    if rules.spike is not None:
        state, found = _spike(rules.spike, state, now, week)
        posts += found
    return replace(outcome, state=state, posts=posts)


def _days(
    rule: DaysRule,
    state: WatchState,
    credits: Decimal,
    now: datetime,
    runway: MeteredRunway | None,
    week: WeekSpend,
) -> tuple[WatchState, list[Post]]:
    if runway is None or runway.days_left is None:
        return state, []  # a week without spend: no rate to go by
    if state.days_armed and runway.days_left < rule.days:
        crossing = state.days_crossings + 1
        facts = _runway_facts(rule, runway, credits, now, week)
        post = Post(PostKind.DAYS_ALERT, rule.channel, f"days:{crossing}", facts)
        return replace(state, days_armed=False, days_crossings=crossing), [post]
    if not state.days_armed and runway.days_left >= rule.rearm_at:
        facts = _runway_facts(rule, runway, credits, now, week)
        post = Post(PostKind.DAYS_RECOVERY, rule.channel, f"days-recovery:{state.days_crossings}", facts)
        return replace(state, days_armed=True), [post]
    return state, []


def _spike(
    rule: SpikeRule, state: WatchState, now: datetime, week: WeekSpend
) -> tuple[WatchState, list[Post]]:
    # The metering must be of today (a read from before midnight speaks of yesterday), once a day.
    if week.today != utc_day(now) or state.spike_last_day == week.today:
        return state, []
    if week.days_with_spend < BASELINE_DAYS:
        return state, []
    today = credits_of(week.today_millicredits)
    with localcontext() as context:
        context.prec = _PRECISION
        usual = week.average_per_day
        if today < SPIKE_MIN_CREDITS or today <= rule.multiple * usual:
            return state, []
        times = (today / usual).quantize(_TENTH, rounding=ROUND_DOWN)
    facts = {
        "day": week.today.isoformat(),
        "today": _plain(today),
        "usual": _plain(usual.quantize(_MILLICREDIT)),
        "times": _plain(times),
        "multiple": _plain(rule.multiple),
        **_top("top_key", week.today_top_key),
        **_top("top_model", week.today_top_model),
    }
    post = Post(PostKind.SPIKE, rule.channel, f"spike:{week.today.isoformat()}", facts)
    return replace(state, spike_last_day=week.today), [post]


def _runway_facts(
    rule: DaysRule, runway: MeteredRunway, credits: Decimal, now: datetime, week: WeekSpend
) -> dict[str, str]:
    assert runway.days_left is not None
    facts = {
        "days": str(rule.days),
        "days_left": _plain(runway.days_left),
        "per_day": _plain(runway.per_day.quantize(_MILLICREDIT)),
        "balance": _plain(credits),
        "on": utc_day(now).isoformat(),
        **_top("top_key", week.week_top_key),
        **_top("top_model", week.week_top_model),
    }
    if runway.until is not None:
        facts["until"] = runway.until.isoformat()
    if runway.by_key_limit:
        facts["by_key_limit"] = "true"
        if runway.key_remaining is not None:
            facts["key_remaining"] = _plain(runway.key_remaining)
    return facts


def _top(name: str, label: str | None) -> dict[str, str]:
    return {name: label} if label else {}


def _plain(value: Decimal) -> str:
    """`4.5`, `100`, `0.001`: no exponent, no trailing zeros."""
    return format(value.normalize(), "f")
