"""What a usage report shows beyond its own fields: the average day, each day's spend and its trend.
Pure, shared by the Slack reply and the CLI so both say the same numbers.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext

from bot.domain.runway import bars
from bot.domain.usage import DaySpend, UsageReport, spent_per_day

_MILLICREDIT = Decimal("0.001")
_PRECISION = 50


def average_per_day(report: UsageReport) -> Decimal:
    """Credits spent on an average day of the window, to the millicredit (half up)."""
    with localcontext() as context:
        context.prec = _PRECISION + len(str(abs(report.cost_millicredits)))  # exact however large
        return (report.credits / report.window.days).quantize(_MILLICREDIT, rounding=ROUND_HALF_UP)


def daily_spend(report: UsageReport) -> tuple[DaySpend, ...] | None:
    """Each date's spend, oldest first: Breeze's, else the requests' own when every one of them was read."""
    if report.daily is not None:
        return report.daily
    if report.complete:
        return spent_per_day(report.requests, report.window)
    return None


def spend_trend(report: UsageReport) -> str:
    """A bar a day, the cheapest "▁" and the dearest "█"; "" for one day or when the days are not known."""
    days = daily_spend(report)
    if report.window.days < 2 or days is None or len(days) < 2:
        return ""
    return "".join(bars([Decimal(day.millicredits) for day in days]))


def busiest_day(report: UsageReport) -> DaySpend | None:
    """The day that cost most (the earliest of equals), when the days are known and any spent."""
    days = daily_spend(report)
    if not days:
        return None
    busiest = max(days, key=lambda day: day.millicredits)
    return busiest if busiest.millicredits > 0 else None
