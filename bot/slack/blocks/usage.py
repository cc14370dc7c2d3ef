"""Block Kit for `usage`: a window's spend in exact credits, its biggest spenders by key and by model,
and a bar a day. Pure: the report and today's UTC date are passed in.

The words for the window, the split's basis and the trend are shared with the CLI's text, so the
terminal and Slack say the same thing.
"""

from __future__ import annotations

from datetime import date

from bot.domain.spend import WeekSpend
from bot.domain.usage import (
    WEEK_DAYS,
    Spender,
    Split,
    UsageReport,
    Window,
    complete_week,
    credits_of,
    split_by_key,
    split_by_model,
)
from bot.domain.usage_view import average_per_day, busiest_day, spend_trend
from bot.slack.blocks import text as t
from bot.slack.blocks.balance import Block, Message, context, header, message, section
from bot.slack.ids import BlockId

NO_SPLIT = "No requests were read, so there is no split by key or model."


# --- words shared with the CLI -------------------------------------------------------------------


def day_name(day: date, *, weekday: bool = False) -> str:
    """`Dec 8`, or `Tue Dec 8` with the weekday."""
    return f"{day:%a %b} {day.day}" if weekday else f"{day:%b} {day.day}"


def window_dates(window: Window) -> str:
    """`Tue Dec 8, 2026`, `Dec 2 – Dec 8, 2026`, `Dec 30, 2025 – Jan 5, 2026`."""
    end = f"{day_name(window.end, weekday=window.days == 1)}, {window.end.year}"
    if window.days == 1:
        return end
    start = day_name(window.start)
    if window.start.year != window.end.year:
        start += f", {window.start.year}"
    return f"{start} – {end}"


def window_title(window: Window, today: date) -> str:
    """`today`, `the last 7 days`, or the dates of a window that ends before today."""
    if window.end != today:
        return window_dates(window)
    return "today" if window.days == 1 else f"the last {window.days} days"


def during(window: Window, today: date) -> str:
    """`in the last 7 days (Dec 2 – Dec 8, 2026, UTC)`, `today so far (Tue Dec 8, 2026, UTC)`, or
    `in Dec 1 – Dec 7, 2026 (UTC)` for a window that ends before today."""
    if window.end != today:
        return f"{'on' if window.days == 1 else 'in'} {window_dates(window)} (UTC)"
    dates = f"({window_dates(window)}, UTC)"
    return f"today so far {dates}" if window.days == 1 else f"in {window_title(window, today)} {dates}"


def split_basis(split: Split) -> str | None:
    """`of the newest 1,000 of 52,340 requests` when the split was read from fewer than all."""
    if not split.sampled:
        return None
    return f"of the newest {split.read:,} of {t.plural(split.total, 'request')}"


def trend_span(report: UsageReport) -> str:
    """`Dec 2 → Dec 8 · busiest Mon Dec 7: 400 credits`: what the bars cover."""
    span = f"{day_name(report.window.start)} → {day_name(report.window.end)}"
    busiest = busiest_day(report)
    if busiest is None:
        return span
    spent = t.credits(credits_of(busiest.millicredits))
    return f"{span} · busiest {day_name(busiest.day, weekday=True)}: {spent}"


def nothing_spent(report: UsageReport, today: date) -> str:
    """`Breeze spend in the last 7 days (…, UTC): nothing was spent (2 requests, 20 characters).`"""
    counts = _counts(report)
    said = f" ({', '.join(counts)})" if counts else ""
    return f"Breeze spend {during(report.window, today)}: nothing was spent{said}."


# --- the message ---------------------------------------------------------------------------------


def usage_message(report: UsageReport, *, today: date, shared_by: str | None = None) -> Message:
    """The answer to `usage`: ephemeral, or in the channel saying who shared it."""
    blocks = [header(f"Breeze spend: {window_title(report.window, today)}", BlockId.HEADER)]
    when, counts = during(report.window, today), _counts(report)
    notes: list[str] = []
    if report.cost_millicredits == 0:
        lines = [f"*Nothing was spent* {when}.", " · ".join(counts)]
        blocks.append(section("\n".join(line for line in lines if line), BlockId.USAGE))
        fallback = [nothing_spent(report, today)]
    else:
        spent = t.credits(report.credits)
        blocks.append(section(f"*{spent}* spent {when}.\n{' · '.join(counts)}", BlockId.USAGE))
        fallback = [f"Breeze spend {when}: {', '.join([spent, *counts])}."]
        by_key, by_model = split_by_key(report), split_by_model(report)
        if by_key.top:
            blocks.append(section(_split_text("key", by_key), BlockId.USAGE_KEYS))
            blocks.append(section(_split_text("model", by_model), BlockId.USAGE_MODELS))
            fallback.append(f"Top key: {_top(by_key, 'key')}. Top model: {_top(by_model, 'model')}.")
        trend = spend_trend(report)
        if trend:
            blocks.append(section(f"*Per day:* `{trend}` {trend_span(report)}", BlockId.USAGE_TREND))
        notes += _notes(by_key)
    if shared_by:
        notes.append(f"<@{t.identifier(shared_by)}> shared this.")
    if notes:
        blocks.append(context(notes, BlockId.FOOTER))
    return message(" ".join(fallback + notes), blocks, "in_channel" if shared_by else "ephemeral")


def _counts(report: UsageReport) -> list[str]:
    if report.cost_millicredits == 0 and report.request_count == 0:
        return []
    counts = [t.plural(report.request_count, "request"), t.plural(report.characters, "character")]
    if report.cost_millicredits and report.window.days > 1:
        counts.append(f"{t.credits(average_per_day(report))} a day on average")
    return counts


def _notes(split: Split) -> list[str]:
    if not split.top:
        return [NO_SPLIT]
    basis = split_basis(split)
    return [f"The split by key and by model is {basis}; the totals are exact."] if basis else []


def _split_text(noun: str, split: Split) -> str:
    rows = [f"*By {noun}*", *(f"• {_label(s, noun)}: {_spent(s)}" for s in split.top)]
    if split.other is not None:
        rows.append(f"• other {noun}s: {_spent(split.other)}")
    return "\n".join(rows)


def _top(split: Split, noun: str) -> str:
    top = split.top[0]
    return f"{_label(top, noun)}, {t.credits(top.credits)} ({_share(top)})"


def _label(spender: Spender, noun: str) -> str:
    label = " ".join((spender.label or "").split())
    return t.code(label) if label else f"_{noun} not given_"


def _spent(spender: Spender) -> str:
    return f"*{t.credits(spender.credits)}* ({_share(spender)})"


def _share(spender: Spender) -> str:
    """`40%`; the `<0.1%` and `>99.9%` of the edges escaped, since mrkdwn reads `<` as a link."""
    return t.escape(t.percent(spender.share))


def week_blocks(week: WeekSpend) -> list[Block]:
    """The Home tab's week: the last 7 complete days' exact spend, and its biggest keys and models."""
    window = complete_week(week.today)
    when = f"in the last {WEEK_DAYS} complete days ({window_dates(window)}, UTC)"
    if not week.total_millicredits:
        return [section(f"*Nothing was spent* {when}.", BlockId.USAGE)]
    lines = [f"*{t.credits(credits_of(week.total_millicredits))}* spent {when}."]
    blocks = []
    if week.by_key is not None and week.by_model is not None and week.by_key.top:
        lines += _notes(week.by_key)
        blocks = [
            section(_split_text("key", week.by_key), BlockId.USAGE_KEYS),
            section(_split_text("model", week.by_model), BlockId.USAGE_MODELS),
        ]
    return [section(" ".join(lines), BlockId.USAGE), *blocks]


def unavailable_message() -> Message:
    """Breeze does not meter for this workspace's key: say so, and what still works."""
    text = (
        "Breeze does not offer usage reports for this workspace's API key, so I cannot show where the "
        "credits go. The balance, its runway (from my own samples) and the alerts work as usual."
    )
    return message(text, [section(f":information_source: {text}", BlockId.USAGE)], "ephemeral")
