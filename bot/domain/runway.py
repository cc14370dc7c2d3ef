"""Credit runway: how fast a balance is being used and how long it will last. Pure: time is passed in.

Choices worth knowing:

- Only finite, non-future samples inside the window and read with the newest sample's key count, and
  only the trailing run of them after the last sample read with a different key.
- `burn_per_day` is `None` while the status is "unknown" and `Decimal("0.000")` when it is "flat";
  a burn that rounds to 0.000 credits a day counts as flat. `days_left` is `None` unless "burning".
- `days_left` divides the latest balance by the unrounded burn, then rounds *down* to 0.1 day, so the
  runway is never overstated.
- The sparkline skips empty buckets (nothing is drawn for a stretch without readings), so it shows only
  what was read and may be shorter than `width`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, localcontext
from itertools import pairwise

WINDOW = timedelta(days=7)
MIN_SPAN = timedelta(hours=24)
RETENTION = timedelta(days=90)

UNKNOWN = "unknown"
BURNING = "burning"
FLAT = "flat"

BARS = "▁▂▃▄▅▆▇█"
FLAT_BAR = "▄"

_BURN_STEP = Decimal("0.001")
_DAYS_STEP = Decimal("0.1")
_MICROSECONDS_PER_DAY = Decimal(86_400_000_000)
_MICROSECOND = timedelta(microseconds=1)
_PRECISION = 50


@dataclass(frozen=True, slots=True)
class Sample:
    """One balance reading the worker recorded."""

    at: datetime  # aware
    credits: Decimal  # the balance at that moment
    topup_credits: Decimal = Decimal(0)  # added by top-ups since the previous sample; not consumption
    key: str = ""  # fingerprint of the API key that read it; a new key starts a new history


@dataclass(frozen=True, slots=True)
class Runway:
    """How fast credits are being used and how long they will last."""

    status: str  # "unknown" (under min_span of usable samples), "burning" or "flat" (flat or rising)
    burn_per_day: Decimal | None  # credits a day to 0.001; None when unknown, 0.000 when flat
    days_left: Decimal | None  # to 0.1 day, rounded down; only when burning; 0 once the balance is <= 0
    span_hours: float  # hours from the first to the last sample used


def prune_before(now: datetime) -> datetime:
    """The cut-off for stored samples: those older than `now - RETENTION` are deleted."""
    return now - RETENTION


def usable(samples: Sequence[Sample], now: datetime, *, window: timedelta = WINDOW) -> list[Sample]:
    """The samples runway and sparkline use, oldest first: in the window, not future, newest key's run."""
    _require_aware(now)
    start = now - window
    kept = sorted((s for s in samples if start <= s.at <= now and s.credits.is_finite()), key=_at)
    return _trailing_key_run(kept)


def runway(
    samples: Sequence[Sample],
    now: datetime,
    *,
    window: timedelta = WINDOW,
    min_span: timedelta = MIN_SPAN,
) -> Runway:
    """The burn rate and runway from the samples read within `window` before `now`."""
    used = usable(samples, now, window=window)
    if len(used) < 2:
        return Runway(status=UNKNOWN, burn_per_day=None, days_left=None, span_hours=0.0)
    span = used[-1].at - used[0].at
    span_hours = span.total_seconds() / 3600
    if span <= timedelta(0) or span < min_span:
        return Runway(status=UNKNOWN, burn_per_day=None, days_left=None, span_hours=span_hours)
    with localcontext() as context:
        context.prec = _PRECISION
        burn = consumption(used) / _days(span)
        rounded = burn.quantize(_BURN_STEP, rounding=ROUND_HALF_UP)
        if rounded.is_zero():
            return Runway(status=FLAT, burn_per_day=rounded, days_left=None, span_hours=span_hours)
        left = _days_left(used[-1].credits, burn)
    return Runway(status=BURNING, burn_per_day=rounded, days_left=left, span_hours=span_hours)


def consumption(samples: Sequence[Sample]) -> Decimal:
    """Credits used across consecutive samples (already in time order); top-ups and rises are not use."""
    total = Decimal(0)
    for previous, current in pairwise(samples):
        total += max(Decimal(0), previous.credits - current.credits + current.topup_credits)
    return total


def sparkline(
    samples: Sequence[Sample],
    now: datetime,
    *,
    window: timedelta = WINDOW,
    width: int = 14,
) -> str:
    """A text sparkline of the balance over the window, at most `width` characters; "" if too little data."""
    if width < 1:
        raise ValueError(f"width must be at least 1, got {width}")
    used = usable(samples, now, window=window)
    if len(used) < 2:
        return ""
    values = _bucket_last(used, max(used[0].at, now - window), now, width)
    if len(values) < 2:
        return ""
    return "".join(bars(values))


def _require_aware(moment: datetime) -> None:
    """Refuse a naive datetime, which cannot be compared with the aware sample times."""
    if moment.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")


def _at(sample: Sample) -> datetime:
    """The sort key: when the sample was read."""
    return sample.at


def _trailing_key_run(ordered: list[Sample]) -> list[Sample]:
    """The samples after the last one read with a key other than the newest sample's."""
    if not ordered:
        return []
    key = ordered[-1].key
    start = len(ordered)
    while start > 0 and ordered[start - 1].key == key:
        start -= 1
    return ordered[start:]


def _days(span: timedelta) -> Decimal:
    """A timedelta as an exact Decimal number of days."""
    return Decimal(span // _MICROSECOND) / _MICROSECONDS_PER_DAY


def _days_left(balance: Decimal, burn: Decimal) -> Decimal:
    """Days until a balance runs out at `burn` a day, rounded down to 0.1; 0 once it is spent."""
    if balance <= 0:
        return Decimal(0)
    return (balance / burn).quantize(_DAYS_STEP, rounding=ROUND_DOWN)


def _bucket_last(ordered: list[Sample], start: datetime, end: datetime, width: int) -> list[Decimal]:
    """The last balance in each of `width` equal buckets over [start, end]; empty buckets skipped."""
    length = end - start
    last: dict[int, Decimal] = {}
    for sample in ordered:
        index = 0 if length <= timedelta(0) else min(width - 1, (sample.at - start) * width // length)
        last[index] = sample.credits
    return [last[index] for index in sorted(last)]


def bars(values: Sequence[Decimal]) -> list[str]:
    """Each value as a bar, the lowest "▁" and the highest "█"; all "▄" when every value is the same."""
    low, high = min(values), max(values)
    if low == high:
        return [FLAT_BAR] * len(values)
    top = len(BARS) - 1
    with localcontext() as context:
        context.prec = _PRECISION
        steps = [((value - low) * top / (high - low)).to_integral_value(ROUND_HALF_UP) for value in values]
    return [BARS[int(step)] for step in steps]
