"""The week's spend by Breeze's metering, and the runway it gives. Pure: dates and times are passed in.

Choices worth knowing:

- The runway is an estimate, and says so where it is shown. It averages the last `WEEK_DAYS`
  *complete* UTC days, days without spend included (today is still under way and left out).
  Days left = balance / that rate, rounded *down* to 0.1 day, so it is never overstated; with no
  spend in those days there is no number, only `no_spend`.
- A key with its own budget (`credit_limit`) stops its requests when that runs out: when it would
  before the account runs dry, the runway is the key's, at the key's own rate.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal, localcontext

from bot.domain.usage import (
    WEEK_DAYS,
    DaySpend,
    KeyBudget,
    Split,
    UsageReport,
    complete_week,
    credits_of,
    split_by_key,
    split_by_model,
    utc_day,
)

_DAYS_STEP = Decimal("0.1")
_PRECISION = 50


# --- the week's spend ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WeekSpend:
    """The last 7 complete UTC days' spend day by day, today's so far, and who spent most of each."""

    today: date
    days: tuple[int, ...]  # millicredits of each day of `complete_week(today)`, oldest first
    today_millicredits: int
    week_top_key: str | None
    week_top_model: str | None
    today_top_key: str | None
    today_top_model: str | None
    # The week's biggest spenders, from the requests read (`Split.sampled` says when not all were).
    by_key: Split | None = None
    by_model: Split | None = None
    # Who spent most on the last day of the week (yesterday, for a read of today).
    last_day_top_key: str | None = None
    last_day_top_model: str | None = None

    def __post_init__(self) -> None:
        if len(self.days) != WEEK_DAYS:
            raise ValueError(f"a week's spend has {WEEK_DAYS} days, not {len(self.days)}")

    @property
    def total_millicredits(self) -> int:
        """The week's spend."""
        return sum(self.days)

    @property
    def average_per_day(self) -> Decimal:
        """Credits spent on an average day of the week, days without spend included."""
        with localcontext() as context:
            context.prec = _PRECISION
            return credits_of(self.total_millicredits) / WEEK_DAYS

    @property
    def days_with_spend(self) -> int:
        """How many of the 7 days spent anything."""
        return sum(1 for spent in self.days if spent > 0)

    def daily(self) -> tuple[DaySpend, ...]:
        """Each day's spend with its date, oldest first."""
        dates = complete_week(self.today).dates()
        return tuple(DaySpend(day, spent) for day, spent in zip(dates, self.days, strict=True))


def week_spend(today: date, week: UsageReport, today_report: UsageReport) -> WeekSpend:
    """The week's spend from the report of `complete_week(today)` (with its per-day spend) and today's."""
    if week.window != complete_week(today):
        raise ValueError(f"the week's report is for {week.window}, not the {WEEK_DAYS} days before {today}")
    if week.daily is None:
        raise ValueError("the week's report has no per-day spend")
    spent = {entry.day: entry.millicredits for entry in week.daily}
    last = week.window.end
    last_day = replace(week, requests=tuple(r for r in week.requests if r.day == last))
    by_key, by_model = split_by_key(week), split_by_model(week)
    return WeekSpend(
        today=today,
        days=tuple(spent.get(day, 0) for day in week.window.dates()),
        today_millicredits=today_report.cost_millicredits,
        week_top_key=_top_label(by_key),
        week_top_model=_top_label(by_model),
        today_top_key=_top_label(split_by_key(today_report)),
        today_top_model=_top_label(split_by_model(today_report)),
        by_key=by_key,
        by_model=by_model,
        last_day_top_key=_top_label(split_by_key(last_day)),
        last_day_top_model=_top_label(split_by_model(last_day)),
    )


# --- the runway ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MeteredRunway:
    """How long the credits last at the last complete week's rate: an estimate."""

    per_day: Decimal  # credits a day (the key's own when its limit binds); 0 when nothing was spent
    days_left: Decimal | None  # to 0.1 day, rounded down; None when nothing was spent
    until: date | None  # the UTC date they run out, around; None without spend or past the calendar
    by_key_limit: bool  # the key's own budget runs out before the account does
    key_remaining: Decimal | None = None  # what the key's own budget has left, when it has one
    key_limit: Decimal | None = None

    @property
    def no_spend(self) -> bool:
        """True when the week spent nothing, so there is no rate to go by."""
        return self.days_left is None


def metered_runway(
    balance: Decimal,
    week: WeekSpend,
    now: datetime,
    budget: KeyBudget | None = None,
    key_week_millicredits: int | None = None,
) -> MeteredRunway:
    """The runway of `balance` at the week's average rate; the key's own, when its budget binds first.

    `key_week_millicredits` is what the key itself spent in the same week; unknown, the key is taken
    to spend the whole account's rate (so its limit is never said to bind later than it does).
    """
    limit = budget.limit if budget is not None and budget.has_limit else None
    remaining = budget.remaining if budget is not None and budget.has_limit else None
    with localcontext() as context:
        context.prec = _PRECISION
        rate = week.average_per_day
        if not rate:
            return MeteredRunway(Decimal(0), None, None, False, remaining, limit)
        days = _days_left(balance, rate)
        by_key = False
        if remaining is not None:
            key_spent = week.total_millicredits if key_week_millicredits is None else key_week_millicredits
            key_rate = credits_of(key_spent) / WEEK_DAYS
            if key_rate > 0 and (key_days := _days_left(remaining, key_rate)) < days:
                rate, days, by_key = key_rate, key_days, True
    return MeteredRunway(rate, days, _until(now, days), by_key, remaining, limit)


def _days_left(credits: Decimal, rate: Decimal) -> Decimal:
    """Days until `credits` are spent at `rate` a day, rounded down to 0.1; 0 once none are left."""
    if credits <= 0:
        return Decimal(0)
    return (credits / rate).quantize(_DAYS_STEP, rounding=ROUND_DOWN)


def _until(now: datetime, days: Decimal) -> date | None:
    try:
        return utc_day(now + timedelta(days=float(days)))
    except OverflowError:
        return None


# --- what was read -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Metering:
    """What Breeze's metering said of a workspace's account and key at `read_at`.

    `week` is None when Breeze does not offer metering to the key (the runway then comes from the
    app's own samples); `budget` is None when it does not say what the key's own budget is.
    """

    read_at: datetime
    week: WeekSpend | None
    budget: KeyBudget | None = None
    key_week_millicredits: int | None = None  # the key's own spend in `week`, read when it has a budget

    @property
    def available(self) -> bool:
        """True when Breeze gave the week's spend."""
        return self.week is not None

    def runway(self, balance: Decimal, now: datetime) -> MeteredRunway | None:
        """The metered runway of `balance`, or None when metering is unavailable."""
        if self.week is None:
            return None
        return metered_runway(balance, self.week, now, self.budget, self.key_week_millicredits)


def _top_label(split: Split) -> str | None:
    return split.top[0].label if split.top and split.top[0].millicredits > 0 else None
