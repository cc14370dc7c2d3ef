"""What `breeze-balance usage` prints: a window's spend as plain text for a terminal, or JSON for a
script. Pure; the words are the Slack reply's (`bot.slack.blocks.usage`), without its mrkdwn.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from bot.domain.usage import Spender, Split, UsageReport, credits_of, split_by_key, split_by_model
from bot.domain.usage_view import average_per_day, daily_spend, spend_trend
from bot.slack.blocks import text
from bot.slack.blocks.usage import NO_SPLIT, during, nothing_spent, split_basis, trend_span

NAME_WIDTH = 40


def usage_lines(report: UsageReport, *, today: date) -> list[str]:
    """The spend, the top spenders by key and by model, and the trend, one line each."""
    if report.cost_millicredits == 0:
        return [nothing_spent(report, today)]
    lines = [
        f"Breeze spend {during(report.window, today)}",
        f"  spent        {text.credits(report.credits)}",
        f"  requests     {report.request_count:,}",
        f"  characters   {report.characters:,}",
    ]
    if report.window.days > 1:
        lines.append(f"  per day      {text.credits(average_per_day(report))} on average")
    by_key = split_by_key(report)
    if by_key.top:
        lines += _split_lines("key", by_key) + _split_lines("model", split_by_model(report))
    else:
        lines.append(NO_SPLIT)
    trend = spend_trend(report)
    if trend:
        lines.append(f"Per day: {trend} {trend_span(report)}")
    return lines


def usage_json(report: UsageReport) -> dict[str, Any]:
    """The same for a script: credits as exact strings beside their millicredits."""
    by_key, by_model = split_by_key(report), split_by_model(report)
    days = daily_spend(report)
    return {
        "from": report.window.start.isoformat(),
        "to": report.window.end.isoformat(),
        "days": report.window.days,
        "spent": _credits(report.cost_millicredits),
        "spent_millicredits": report.cost_millicredits,
        "requests": report.request_count,
        "characters": report.characters,
        "average_per_day": f"{average_per_day(report):.3f}",
        "split_read": by_key.read,
        "split_total": by_key.total,
        "split_sampled": by_key.sampled,
        "by_key": _split_json(by_key),
        "by_model": _split_json(by_model),
        "daily": None
        if days is None
        else [
            {
                "date": d.day.isoformat(),
                "spent": _credits(d.millicredits),
                "spent_millicredits": d.millicredits,
            }
            for d in days
        ],
        "trend": spend_trend(report),
    }


def _split_lines(noun: str, split: Split) -> list[str]:
    basis = split_basis(split)
    lines = [f"By {noun} ({basis}):" if basis else f"By {noun}:"]
    lines += [_row(_plain(s.label) or f"({noun} not given)", s) for s in split.top]
    if split.other is not None:
        lines.append(_row(f"(other {noun}s)", split.other))
    return lines


def _row(name: str, spender: Spender) -> str:
    return f"  {name:<{NAME_WIDTH}} {text.credits(spender.credits):>16} {text.percent(spender.share):>6}"


def _plain(label: str | None) -> str:
    """A name from Breeze, on one line, without control characters a terminal would obey."""
    clean = "".join(c if c.isprintable() else "?" for c in " ".join((label or "").split()))
    return text.truncate(clean, NAME_WIDTH)


def _split_json(split: Split) -> list[dict[str, Any]]:
    rows = [_spender_json(s, other=False) for s in split.top]
    if split.other is not None:
        rows.append(_spender_json(split.other, other=True))
    return rows


def _spender_json(spender: Spender, *, other: bool) -> dict[str, Any]:
    return {
        "name": spender.label,
        "other": other,
        "spent": _credits(spender.millicredits),
        "spent_millicredits": spender.millicredits,
        "requests": spender.requests,
        "share": f"{spender.share:.4f}",
    }


def _credits(millicredits: int) -> str:
    return f"{credits_of(millicredits):.3f}"
