"""When the next balance digest is due, in a workspace's own time zone. Pure: time is passed in.

A wall-clock time that does not exist on a day (the spring-forward gap) is read with fold=0, the way
zoneinfo does: with the offset in force before the change, so 02:30 in New York on the March change day
becomes the instant shown as 03:30 EDT. An ambiguous time (fall back) is its first occurrence (fold=0).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAILY = "daily"
WEEKLY = "weekly"
FREQUENCIES = frozenset({DAILY, WEEKLY})
WEEKLY_WEEKDAY = 0  # Monday

_HHMM = re.compile(r"([0-9]{1,2}):([0-9]{2})")
# Candidate days looked at, from the day before `after` (local) on: enough for two Mondays.
_FIRST_OFFSET = -1
_LAST_OFFSET = 15


def zone(name: str | None) -> ZoneInfo:
    """The IANA time zone called `name`, or UTC when it is empty or unknown."""
    cleaned = (name or "").strip()
    if not cleaned:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(cleaned)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return ZoneInfo("UTC")


def parse_hhmm(text: str) -> time | None:
    """A 24-hour "H:MM" or "HH:MM" wall-clock time, or None when the text is not one."""
    match = _HHMM.fullmatch(text.strip())
    if match is None:
        return None
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def next_digest(frequency: str, at: time, tz: str, after: datetime) -> datetime:
    """The first local `at` in `tz` (a Monday if weekly) strictly after `after`, as an aware UTC datetime."""
    if frequency not in FREQUENCIES:
        raise ValueError(f"frequency must be 'daily' or 'weekly', got {frequency!r}")
    if after.utcoffset() is None:
        raise ValueError("after must be a timezone-aware datetime")
    place = zone(tz)
    wall = at.replace(tzinfo=None, fold=0)
    first_day = after.astimezone(place).date()
    due = [
        _occurrence(day, wall, place)
        for day in _days(first_day)
        if frequency == DAILY or day.weekday() == WEEKLY_WEEKDAY
    ]
    return min(moment for moment in due if moment > after)


def _days(around: date) -> list[date]:
    """The candidate local days, from the day before `around` to two weeks after it."""
    return [around + timedelta(days=offset) for offset in range(_FIRST_OFFSET, _LAST_OFFSET + 1)]


def _occurrence(day: date, wall: time, place: ZoneInfo) -> datetime:
    """The UTC instant of the wall-clock time `wall` on local `day` (fold=0 for gaps and overlaps)."""
    return datetime.combine(day, wall, tzinfo=place).astimezone(UTC)
