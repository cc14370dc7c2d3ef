"""Digest schedule: the next local delivery time, across time zones and DST changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.domain.schedule import next_digest, parse_hhmm, zone

NINE = time(9, 0)
NEW_YORK = "America/New_York"
BERLIN = "Europe/Berlin"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> datetime:
    """An aware UTC datetime."""
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


# --- parse_hhmm -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9:00", time(9, 0)),
        ("09:00", time(9, 0)),
        ("23:59", time(23, 59)),
        ("0:05", time(0, 5)),
        ("00:00", time(0, 0)),
        ("12:30", time(12, 30)),
        (" 7:15 ", time(7, 15)),
    ],
)
def test_parse_hhmm_accepts(text: str, expected: time) -> None:
    assert parse_hhmm(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "24:00",
        "9",
        "9:60",
        "09:00:00",
        "",
        "ab:cd",
        "9:5",
        "009:00",
        "-1:00",
        "9:00pm",
        "9.00",
        "٩:٠٠",
        ":30",
        "9:",
    ],
)
def test_parse_hhmm_rejects(text: str) -> None:
    assert parse_hhmm(text) is None


# --- zone -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", [None, "", "   ", "Mars/Olympus", "America", "../etc/passwd", "/etc/localtime"]
)
def test_unknown_zone_is_utc(name: str | None) -> None:
    assert zone(name) == ZoneInfo("UTC")


def test_known_zone() -> None:
    assert zone(" Europe/Berlin ") == ZoneInfo(BERLIN)
    assert zone("Asia/Tokyo") == ZoneInfo("Asia/Tokyo")


def test_unknown_zone_schedules_in_utc() -> None:
    assert next_digest("daily", NINE, "Not/AZone", utc(2024, 6, 10, 8, 0)) == utc(2024, 6, 10, 9, 0)
    assert next_digest("daily", NINE, "", utc(2024, 6, 10, 8, 0)) == utc(2024, 6, 10, 9, 0)


# --- daily ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (utc(2024, 6, 10, 8, 0), utc(2024, 6, 10, 9, 0)),
        (utc(2024, 6, 10, 8, 59, 59, 999999), utc(2024, 6, 10, 9, 0)),
        (utc(2024, 6, 10, 9, 0), utc(2024, 6, 11, 9, 0)),
        (utc(2024, 6, 10, 9, 0, 0, 1), utc(2024, 6, 11, 9, 0)),
        (utc(2024, 6, 10, 23, 59), utc(2024, 6, 11, 9, 0)),
        (utc(2024, 12, 31, 12, 0), utc(2025, 1, 1, 9, 0)),
        (utc(2024, 2, 28, 10, 0), utc(2024, 2, 29, 9, 0)),
    ],
)
def test_daily_utc(after: datetime, expected: datetime) -> None:
    assert next_digest("daily", NINE, "UTC", after) == expected


def test_result_is_utc_even_for_other_zones() -> None:
    after = datetime(2024, 6, 10, 8, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    result = next_digest("daily", NINE, "Asia/Tokyo", after)
    assert result == utc(2024, 6, 10, 0, 0)
    assert result.tzinfo is UTC


def test_tokyo_and_los_angeles_differ() -> None:
    after = utc(2024, 6, 9, 12, 0)
    # 21:00 in Tokyo (UTC+9): the next 09:00 is tomorrow's.
    assert next_digest("daily", NINE, "Asia/Tokyo", after) == utc(2024, 6, 10, 0, 0)
    # 05:00 in Los Angeles (UTC-7 in June): today's 09:00 is still ahead.
    assert next_digest("daily", NINE, "America/Los_Angeles", after) == utc(2024, 6, 9, 16, 0)


def test_exactly_at_in_another_zone_is_the_next_day() -> None:
    assert next_digest("daily", NINE, "Asia/Tokyo", utc(2024, 6, 10, 0, 0)) == utc(2024, 6, 11, 0, 0)


def test_local_date_differs_from_utc_date() -> None:
    # 23:30 on 9 June UTC is already 08:30 on 10 June in Tokyo.
    assert next_digest("daily", NINE, "Asia/Tokyo", utc(2024, 6, 9, 23, 30)) == utc(2024, 6, 10, 0, 0)
    # 02:00 on 10 June UTC is still 19:00 on 9 June in Los Angeles.
    assert next_digest("daily", time(20, 0), "America/Los_Angeles", utc(2024, 6, 10, 2, 0)) == utc(
        2024, 6, 10, 3, 0
    )


def test_seconds_in_the_time_are_kept() -> None:
    assert next_digest("daily", time(9, 0, 30), "UTC", utc(2024, 6, 10, 9, 0)) == utc(2024, 6, 10, 9, 0, 30)


# --- weekly ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (10, utc(2024, 6, 17, 9, 0)),  # Monday, after 09:00
        (11, utc(2024, 6, 17, 9, 0)),  # Tuesday
        (12, utc(2024, 6, 17, 9, 0)),  # Wednesday
        (13, utc(2024, 6, 17, 9, 0)),  # Thursday
        (14, utc(2024, 6, 17, 9, 0)),  # Friday
        (15, utc(2024, 6, 17, 9, 0)),  # Saturday
        (16, utc(2024, 6, 17, 9, 0)),  # Sunday
    ],
)
def test_weekly_from_each_weekday_at_noon(day: int, expected: datetime) -> None:
    assert next_digest("weekly", NINE, "UTC", utc(2024, 6, day, 12, 0)) == expected


@pytest.mark.parametrize("day", range(10, 17))
def test_weekly_from_each_weekday_at_dawn(day: int) -> None:
    expected = utc(2024, 6, 10, 9, 0) if day == 10 else utc(2024, 6, 17, 9, 0)
    assert next_digest("weekly", NINE, "UTC", utc(2024, 6, day, 6, 0)) == expected


def test_weekly_exactly_at_is_next_week() -> None:
    assert next_digest("weekly", NINE, "UTC", utc(2024, 6, 10, 9, 0)) == utc(2024, 6, 17, 9, 0)


def test_weekly_uses_the_local_monday() -> None:
    # Sunday 20:00 UTC is Monday 05:00 in Tokyo, so Monday 09:00 Tokyo is four hours on.
    assert next_digest("weekly", NINE, "Asia/Tokyo", utc(2024, 6, 9, 20, 0)) == utc(2024, 6, 10, 0, 0)
    # Monday 01:00 UTC is still Sunday in Los Angeles: Monday 09:00 PDT is 16:00 UTC.
    assert next_digest("weekly", NINE, "America/Los_Angeles", utc(2024, 6, 10, 1, 0)) == utc(
        2024, 6, 10, 16, 0
    )


# --- DST: America/New_York ------------------------------------------------------------------------


def test_new_york_march_daily_nine() -> None:
    # DST starts Sunday 10 March 2024: 09:00 EST is 14:00 UTC, 09:00 EDT is 13:00 UTC.
    assert next_digest("daily", NINE, NEW_YORK, utc(2024, 3, 9, 14, 0)) == utc(2024, 3, 10, 13, 0)
    assert next_digest("daily", NINE, NEW_YORK, utc(2024, 3, 10, 13, 0)) == utc(2024, 3, 11, 13, 0)


def test_new_york_spring_gap_moves_an_hour_later() -> None:
    # 02:30 does not exist on 10 March 2024; it is read as 02:30 EST, the instant shown as 03:30 EDT.
    gap_day = next_digest("daily", time(2, 30), NEW_YORK, utc(2024, 3, 10, 5, 0))
    assert gap_day == utc(2024, 3, 10, 7, 30)
    assert gap_day.astimezone(ZoneInfo(NEW_YORK)).time() == time(3, 30)
    following = next_digest("daily", time(2, 30), NEW_YORK, gap_day)
    assert following == utc(2024, 3, 11, 6, 30)
    assert following.astimezone(ZoneInfo(NEW_YORK)).time() == time(2, 30)


def test_new_york_spring_gap_after_the_moved_time_is_tomorrow() -> None:
    # 03:45 EDT on the gap day is past the moved 02:30 (03:30 EDT).
    assert next_digest("daily", time(2, 30), NEW_YORK, utc(2024, 3, 10, 7, 45)) == utc(2024, 3, 11, 6, 30)


def test_new_york_november_daily_nine() -> None:
    # DST ends Sunday 3 November 2024: 09:00 EDT is 13:00 UTC, 09:00 EST is 14:00 UTC.
    assert next_digest("daily", NINE, NEW_YORK, utc(2024, 11, 2, 13, 0)) == utc(2024, 11, 3, 14, 0)
    assert next_digest("daily", NINE, NEW_YORK, utc(2024, 11, 3, 14, 0)) == utc(2024, 11, 4, 14, 0)


def test_new_york_fall_back_ambiguous_is_the_first() -> None:
    # 01:30 happens twice on 3 November 2024: 05:30 UTC (EDT) and 06:30 UTC (EST). The first is used.
    first = next_digest("daily", time(1, 30), NEW_YORK, utc(2024, 11, 3, 4, 0))
    assert first == utc(2024, 11, 3, 5, 30)
    # And the repeat an hour later is not a second delivery: the next is the 4th.
    assert next_digest("daily", time(1, 30), NEW_YORK, first) == utc(2024, 11, 4, 6, 30)


def test_new_york_fall_back_between_the_two_is_tomorrow() -> None:
    assert next_digest("daily", time(1, 30), NEW_YORK, utc(2024, 11, 3, 6, 0)) == utc(2024, 11, 4, 6, 30)


def test_new_york_weekly_across_dst() -> None:
    # Mondays 4 March (EST) and 11 March (EDT) 2024.
    first = next_digest("weekly", NINE, NEW_YORK, utc(2024, 3, 1, 0, 0))
    assert first == utc(2024, 3, 4, 14, 0)
    assert next_digest("weekly", NINE, NEW_YORK, first) == utc(2024, 3, 11, 13, 0)


# --- DST: Europe/Berlin ---------------------------------------------------------------------------


def test_berlin_march() -> None:
    # DST starts Sunday 31 March 2024: 09:00 CET is 08:00 UTC, 09:00 CEST is 07:00 UTC.
    assert next_digest("daily", NINE, BERLIN, utc(2024, 3, 30, 8, 0)) == utc(2024, 3, 31, 7, 0)
    # 02:30 does not exist that day: read as 02:30 CET, 01:30 UTC, shown as 03:30 CEST.
    gap = next_digest("daily", time(2, 30), BERLIN, utc(2024, 3, 30, 23, 0))
    assert gap == utc(2024, 3, 31, 1, 30)
    assert next_digest("daily", time(2, 30), BERLIN, gap) == utc(2024, 4, 1, 0, 30)


def test_berlin_october() -> None:
    # DST ends Sunday 27 October 2024: 02:30 happens at 00:30 UTC (CEST) and 01:30 UTC (CET).
    first = next_digest("daily", time(2, 30), BERLIN, utc(2024, 10, 26, 23, 0))
    assert first == utc(2024, 10, 27, 0, 30)
    assert next_digest("daily", time(2, 30), BERLIN, first) == utc(2024, 10, 28, 1, 30)
    assert next_digest("daily", NINE, BERLIN, utc(2024, 10, 26, 7, 0)) == utc(2024, 10, 27, 8, 0)


def test_berlin_weekly_across_dst() -> None:
    # Mondays 25 March (CET) and 1 April (CEST) 2024.
    first = next_digest("weekly", NINE, BERLIN, utc(2024, 3, 20, 0, 0))
    assert first == utc(2024, 3, 25, 8, 0)
    assert next_digest("weekly", NINE, BERLIN, first) == utc(2024, 4, 1, 7, 0)


def test_gap_across_midnight_delivers_after_midnight() -> None:
    # Nuuk jumped from 23:00 (UTC-2) on 30 March 2024 to 00:00 (UTC-1) on the 31st: that day's 23:30
    # is read as 23:30 UTC-2, 01:30 UTC, shown as 00:30 on the 31st, and is not skipped.
    moved = next_digest("daily", time(23, 30), "America/Nuuk", utc(2024, 3, 31, 1, 10))
    assert moved == utc(2024, 3, 31, 1, 30)
    assert next_digest("daily", time(23, 30), "America/Nuuk", moved) == utc(2024, 4, 1, 0, 30)


def test_skipped_calendar_day() -> None:
    # Samoa skipped 30 December 2011 (UTC-10 to UTC+14): one delivery for 30/31 December, then 1 January.
    first = next_digest("daily", NINE, "Pacific/Apia", utc(2011, 12, 30, 6, 0))
    assert first == utc(2011, 12, 30, 19, 0)
    assert next_digest("daily", NINE, "Pacific/Apia", first) == utc(2011, 12, 31, 19, 0)


# --- chained calls over a whole year --------------------------------------------------------------


def wall_exists(day: date, at: time, place: ZoneInfo) -> bool:
    """Whether `at` is a real wall-clock time on `day` in `place` (false in a spring-forward gap)."""
    moment = datetime.combine(day, at, tzinfo=place)
    return moment.astimezone(UTC).astimezone(place).replace(tzinfo=None) == moment.replace(tzinfo=None)


@pytest.mark.parametrize("tz", [NEW_YORK, BERLIN, "Australia/Lord_Howe", "UTC"])
@pytest.mark.parametrize("at", [time(0, 0), time(1, 30), time(2, 0), time(2, 30), time(9, 0), time(23, 59)])
def test_daily_chain_advances_one_local_day(tz: str, at: time) -> None:
    place = ZoneInfo(tz)
    previous = next_digest("daily", at, tz, utc(2024, 1, 1, 0, 0))
    for _ in range(366):
        current = next_digest("daily", at, tz, previous)
        assert current > previous
        local = current.astimezone(place)
        assert local.date() - previous.astimezone(place).date() == timedelta(days=1)
        if wall_exists(local.date(), at, place):
            assert local.time() == at
        else:
            assert local.time() > at
        previous = current


@pytest.mark.parametrize("tz", [NEW_YORK, BERLIN])
def test_weekly_chain_advances_one_local_week(tz: str) -> None:
    place = ZoneInfo(tz)
    previous = next_digest("weekly", NINE, tz, utc(2024, 1, 1, 0, 0))
    for _ in range(60):
        current = next_digest("weekly", NINE, tz, previous)
        local = current.astimezone(place)
        assert local.weekday() == 0
        assert local.time() == NINE
        assert local.date() - previous.astimezone(place).date() == timedelta(days=7)
        previous = current


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("frequency", ["monthly", "", "Daily"])
def test_unknown_frequency_is_refused(frequency: str) -> None:
    with pytest.raises(ValueError, match="frequency"):
        next_digest(frequency, NINE, "UTC", utc(2024, 6, 10, 0, 0))


def test_naive_after_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_digest("daily", NINE, "UTC", datetime(2024, 6, 10, 0, 0))
