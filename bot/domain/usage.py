"""Breeze's own metering of an account's spend: windows of UTC dates, metered requests, usage reports,
a key's own budget, and the biggest spenders. Pure: dates and times are passed in.

Choices worth knowing:

- Money is exact: a cost is an int of millicredits (1 credit = 1,000), turned into credits only by
  `credits_of`.
- Windows are UTC calendar dates, both ends included, as Breeze's `from` and `to` are.
- Splits by key and by model come from the requests read (the newest `MAX_REQUESTS_READ` at most);
  `Split.sampled` says when the window held more, while a report's totals stay exact.

`bot.domain.spend` builds the week's spend and the runway on these.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, localcontext
from typing import NamedTuple

WEEK_DAYS = 7
# Breeze pages its request log by 100 at most; the app reads 10 pages per question.
PAGE_SIZE = 100
MAX_PAGES = 10
MAX_REQUESTS_READ = PAGE_SIZE * MAX_PAGES
TOP_SPENDERS = 5

_PRECISION = 50


def credits_of(millicredits: int) -> Decimal:
    """Millicredits as exact credits (no rounding, however large)."""
    return Decimal(f"{millicredits}e-3") if millicredits else Decimal(0)


def utc_day(moment: datetime) -> date:
    """The UTC calendar date of an aware moment."""
    if moment.utcoffset() is None:
        raise ValueError("the moment must be timezone-aware")
    return moment.astimezone(UTC).date()


@dataclass(frozen=True, slots=True)
class Window:
    """UTC calendar dates from `start` to `end`, both included."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"the window ends before it starts: {self.start} to {self.end}")

    @classmethod
    def ending(cls, end: date, days: int) -> Window:
        """The `days` days up to and including `end`."""
        if days < 1:
            raise ValueError(f"a window has at least one day, not {days}")
        return cls(end - timedelta(days=days - 1), end)

    @property
    def days(self) -> int:
        """How many dates the window holds."""
        return (self.end - self.start).days + 1

    def dates(self) -> tuple[date, ...]:
        """Every date of the window, oldest first."""
        return tuple(self.start + timedelta(days=n) for n in range(self.days))

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end


def complete_week(today: date) -> Window:
    """The last `WEEK_DAYS` complete UTC days: the week up to yesterday."""
    return Window.ending(today - timedelta(days=1), WEEK_DAYS)


@dataclass(frozen=True, slots=True)
class MeteredRequest:
    """One request Breeze metered; every field but the cost may be unknown."""

    key_id: str | None
    key_name: str | None
    model: str | None
    cost_millicredits: int
    characters: int
    created_at: datetime | None

    @property
    def key_label(self) -> str | None:
        """How the key is named to people: its name, else its public id."""
        return self.key_name or self.key_id

    @property
    def day(self) -> date | None:
        """The UTC date it was made, when known."""
        return utc_day(self.created_at) if self.created_at is not None else None


class DaySpend(NamedTuple):
    """What one UTC day cost."""

    day: date
    millicredits: int


@dataclass(frozen=True, slots=True)
class UsageReport:
    """A window's metering: exact totals from Breeze's summary, the newest requests read, per-day spend."""

    window: Window
    cost_millicredits: int  # the whole window's, exact (`total_cost_millicredits`)
    request_count: int
    characters: int
    total: int  # requests in the window: `requests` holds the newest of them, at most MAX_REQUESTS_READ
    requests: tuple[MeteredRequest, ...] = ()
    daily: tuple[DaySpend, ...] | None = None  # each date's spend, oldest first, when known

    @property
    def credits(self) -> Decimal:
        """The window's spend in exact credits."""
        return credits_of(self.cost_millicredits)

    @property
    def read(self) -> int:
        """How many of its requests were read."""
        return len(self.requests)

    @property
    def complete(self) -> bool:
        """True when every request of the window was read."""
        return self.read >= self.total


def spent_per_day(requests: Iterable[MeteredRequest], window: Window) -> tuple[DaySpend, ...] | None:
    """Each date's spend from the requests' own costs, or None when one of them has no date in the window."""
    spent = dict.fromkeys(window.dates(), 0)
    for request in requests:
        day = request.day
        if day is None or day not in spent:
            return None
        spent[day] += request.cost_millicredits
    return tuple(DaySpend(day, cost) for day, cost in spent.items())


@dataclass(frozen=True, slots=True)
class KeyBudget:
    """The calling key and its own budget (`/v1/api-keys/current`) in credits; None where Breeze says none."""

    key_id: str | None
    name: str | None
    limit: Decimal | None
    remaining: Decimal | None
    used: Decimal | None = None
    reserved: Decimal | None = None  # held by requests in progress

    @property
    def has_limit(self) -> bool:
        """True when the key has its own budget, and what is left of it is known."""
        return self.limit is not None and self.remaining is not None


# --- the biggest spenders ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spender:
    """A key or a model (`label`, None when Breeze did not say), or the rest of them, and what it spent."""

    label: str | None
    millicredits: int
    requests: int
    share: Decimal  # of what the split's requests cost, 0 to 1

    @property
    def credits(self) -> Decimal:
        """What it spent, in exact credits."""
        return credits_of(self.millicredits)


@dataclass(frozen=True, slots=True)
class Split:
    """The top spenders, biggest first, and the rest (`other`), from `read` of the `total` requests."""

    top: tuple[Spender, ...]
    other: Spender | None
    read: int
    total: int

    @property
    def sampled(self) -> bool:
        """True when the split comes from the newest `read` of more requests ("of the newest 1,000 of …")."""
        return self.read < self.total


def split_by_key(report: UsageReport) -> Split:
    """The top spenders by key (its name, else its id) and the rest."""
    return _split(report, lambda request: request.key_label)


def split_by_model(report: UsageReport) -> Split:
    """The top spenders by model and the rest."""
    return _split(report, lambda request: request.model)


def _split(report: UsageReport, label: Callable[[MeteredRequest], str | None]) -> Split:
    spent: dict[str | None, list[int]] = {}
    for request in report.requests:
        totals = spent.setdefault(label(request), [0, 0])
        totals[0] += request.cost_millicredits
        totals[1] += 1
    whole = sum(cost for cost, _ in spent.values())
    ranked = sorted(
        spent.items(), key=lambda item: (-item[1][0], -item[1][1], item[0] is None, item[0] or "")
    )
    top = tuple(_spender(name, cost, count, whole) for name, (cost, count) in ranked[:TOP_SPENDERS])
    rest = ranked[TOP_SPENDERS:]
    other = None
    if rest:
        cost, count = sum(c for _, (c, _) in rest), sum(n for _, (_, n) in rest)
        other = _spender(None, cost, count, whole)
    return Split(top, other, report.read, max(report.total, report.read))


def _spender(label: str | None, millicredits: int, requests: int, whole: int) -> Spender:
    with localcontext() as context:
        context.prec = _PRECISION
        share = Decimal(millicredits) / Decimal(whole) if whole else Decimal(0)
    return Spender(label, millicredits, requests, share)
