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

With metering, a low-balance alert and a digest that `evaluate` queued also state the metered runway
(`runway_facts`, names starting `metered_`), and a digest the spend of the whole UTC days it covers
and who spent most of it, so a post delivered later says the numbers of its check.

Their posts' dedupe keys (`days:<crossing>`, `days-recovery:<crossing>`, `spike:<UTC date>`) and the
state they change are stored with the other rules' under the workspace's row lock, so each is
posted once however many workers check at once.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import ROUND_DOWN, Decimal, localcontext

from bot.domain.rules import DaysRule, Frequency, Outcome, Post, PostKind, Rules, SpikeRule, WatchState
from bot.domain.spend import MeteredRunway, Metering, WeekSpend
from bot.domain.usage import credits_of, utc_day

MIN_DAYS, MAX_DAYS = 1, 90
MIN_MULTIPLE, MAX_MULTIPLE = Decimal("1.5"), Decimal(100)
DEFAULT_MULTIPLE = Decimal(3)
# Less than this spent today is never a spike, however quiet the week was.
SPIKE_MIN_CREDITS = Decimal(10)
# Days of the week that must have spent something for their average to be a baseline.
BASELINE_DAYS = 3

# The names of the metered runway's facts in a low-balance alert or a digest start with this.
METERED = "metered_"

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
    state = outcome.state
    posts = [_with_metering(post, metering, credits, now) for post in outcome.posts]
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
    return {
        "days": str(rule.days),
        "balance": _plain(credits),
        **runway_facts(runway, now),
        **_top("top_key", week.week_top_key),
        **_top("top_model", week.week_top_model),
    }


def runway_facts(runway: MeteredRunway, now: datetime, prefix: str = "") -> dict[str, str]:
    """The metered runway as a post's facts (each name after `prefix`), to say the same numbers later."""
    found = {"on": utc_day(now).isoformat(), "per_day": _plain(runway.per_day.quantize(_MILLICREDIT))}
    if runway.days_left is not None:
        found["days_left"] = _plain(runway.days_left)
    if runway.until is not None:
        found["until"] = runway.until.isoformat()
    if runway.by_key_limit:
        found["by_key_limit"] = "true"
        if runway.key_remaining is not None:
            found["key_remaining"] = _plain(runway.key_remaining)
    return {f"{prefix}{name}": value for name, value in found.items()}


def _with_metering(post: Post, metering: Metering, credits: Decimal, now: datetime) -> Post:
    """A low-balance alert or a digest with the metered runway; a digest with the spend it covers too."""
    runway = metering.runway(credits, now)
    if post.kind not in (PostKind.ALERT, PostKind.DIGEST) or runway is None or metering.week is None:
        return post
    facts = {**post.facts, **runway_facts(runway, now, METERED)}
    if post.kind is PostKind.DIGEST:
        facts.update(_spend_facts(metering.week, weekly=post.facts.get("frequency") == Frequency.WEEKLY))
    return replace(post, facts=facts)


def _spend_facts(week: WeekSpend, *, weekly: bool) -> dict[str, str]:
    """What a digest covers: the last 7 complete UTC days (weekly) or the last one (daily), exactly."""
    days = week.daily() if weekly else week.daily()[-1:]
    top_key, top_model = (
        (week.week_top_key, week.week_top_model)
        if weekly
        else (week.last_day_top_key, week.last_day_top_model)
    )
    return {
        "spent": _plain(credits_of(sum(day.millicredits for day in days))),
        "spent_from": days[0].day.isoformat(),
        "spent_to": days[-1].day.isoformat(),
        **_top("top_key", top_key),
        **_top("top_model", top_model),
    }


def _top(name: str, label: str | None) -> dict[str, str]:
    return {name: label} if label else {}


def _plain(value: Decimal) -> str:
    """`4.5`, `100`, `0.001`: no exponent, no trailing zeros."""
    return format(value.normalize(), "f")
