"""Small pure helpers that turn values into safe Slack mrkdwn."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

# https://api.slack.com/reference/surfaces/formatting#escaping
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_NOT_ID = re.compile(r"[^A-Za-z0-9_.-]")
ELLIPSIS = "…"
# A look-alike of the backtick, which would end an inline code span early.
_GRAVE = "ˋ"
_TENTH = Decimal("0.1")
_HUNDRED = Decimal(100)


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.translate(_ESCAPES)


def truncate(text: str, limit: int) -> str:
    """At most `limit` characters, ending in an ellipsis when cut."""
    if limit <= 0:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def outside(text: str, limit: int = 40) -> str:
    """A string from outside (API, user): single line, shortened, then escaped."""
    return escape(truncate(" ".join(text.split()), limit))


def code(text: str, limit: int = 40) -> str:
    """A string from outside as inline code: `outside`, with its backticks made harmless."""
    return f"`{outside(text, limit).replace('`', _GRAVE)}`"


def identifier(text: str, limit: int = 40) -> str:
    """Only the characters that ids and codes are made of; safe anywhere in mrkdwn."""
    return truncate(_NOT_ID.sub("", text), limit)


def fit(text: str, limit: int) -> str:
    """Shorten multi-line mrkdwn to `limit` characters, cutting at a line break when it can."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    newline = cut.rfind("\n")
    return (cut[:newline] if newline > 0 else cut) + ELLIPSIS


def number(value: Decimal) -> str:
    """A decimal with thousands separators and no trailing zeros: `1,234,567.891`."""
    if not value.is_finite():
        return "unknown"
    sign = "-" if value < 0 else ""
    digits = format(value.copy_abs(), "f")  # copy_abs is exact; abs() rounds to 28 digits
    whole, _, fraction = digits.partition(".")
    fraction = fraction.rstrip("0")
    grouped = f"{int(whole):,}" if len(whole) <= 4000 else whole
    return f"{sign}{grouped}.{fraction}" if fraction else f"{sign}{grouped}"


def credits(value: Decimal, *, signed: bool = False) -> str:
    """`1,234.5 credits`, `1 credit`; with `signed`, a `+` before positive amounts."""
    unit = "credit" if value.copy_abs() == 1 else "credits"
    plus = "+" if signed and value > 0 else ""
    return f"{plus}{number(value)} {unit}"


def percent(share: Decimal) -> str:
    """A share from 0 to 1 as `40%` or `12.3%`: a tenth at most, `<0.1%` and `>99.9%` for the edges."""
    shown = (share * _HUNDRED).quantize(_TENTH, rounding=ROUND_HALF_UP)
    if shown.is_zero() and share > 0:
        return "<0.1%"
    if shown == _HUNDRED and share < 1:
        return ">99.9%"
    return f"{number(shown)}%"


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    """`1 top-up`, `3 top-ups`."""
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{count:,} {word}"


def utc_fallback(moment: datetime) -> str:
    """`2024-03-01 14:05 UTC`: what readers see where Slack cannot localise a date."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def slack_date(moment: datetime) -> str:
    """Slack's date token, rendered in each reader's timezone, with a UTC fallback."""
    # https://api.slack.com/reference/surfaces/formatting#date-formatting
    fallback = utc_fallback(moment)
    seconds = math.floor(moment.timestamp())
    if seconds < 0:
        return fallback
    return f"<!date^{seconds}^{{date_short_pretty}} at {{time}}|{fallback}>"


def duration(seconds: float) -> str:
    """`30 seconds`, `2 minutes`, `1 hour`: rounded up, for telling people how long to wait."""
    whole = max(1, math.ceil(seconds))
    if whole < 180:
        return plural(whole, "second")
    minutes = math.ceil(whole / 60)
    if minutes < 90:
        return plural(minutes, "minute")
    return plural(math.ceil(minutes / 60), "hour")


def days_left(days: Decimal) -> str:
    """`about 12 days`, `about 1 day`, `less than a day`: how long credits last, never overstated."""
    if days < 1:
        return "less than a day"
    return f"about {number(days)} {'day' if days == 1 else 'days'}"


def per_day(credits_a_day: Decimal) -> str:
    """`140 credits a day`, `2.5 credits a day`: a rate, whole credits from 10 a day up."""
    step = Decimal(1) if credits_a_day >= 10 else Decimal("0.01")
    return f"{number(credits_a_day.quantize(step))} credits a day"


def around(day: date, today: date) -> str:
    """`Thu Dec 17` (with `, 2028` past this year): a date that is an estimate."""
    year = "" if day.year == today.year else f", {day.year}"
    return f"{day:%a %b} {day.day}{year}"
