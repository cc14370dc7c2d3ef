"""The lines Breeze's metering adds under a balance, built from values: no I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from bot.domain.runway import BURNING, FLAT, Runway
from bot.domain.spend import MeteredRunway, Metering, WeekSpend
from bot.domain.usage import KeyBudget
from bot.slack.blocks.metering import budget_text, lines_under_balance, runway_text

NOW = datetime(2026, 12, 5, 10, 30, tzinfo=UTC)
WEEK = WeekSpend(date(2026, 12, 5), (140_000,) * 7, 5_000, "prod", "m1", "prod", "m1")
SAMPLES = Runway(BURNING, Decimal("331.034"), Decimal("4.8"), 29.0)


def test_the_runway_names_its_date_its_rate_and_that_it_is_an_estimate() -> None:
    runway = MeteredRunway(Decimal(140), Decimal(12), date(2026, 12, 17), False)

    assert runway_text(runway, NOW) == (
        "about 12 days left, until around Thu Dec 17, at 140 credits a day "
        "(an estimate from the last 7 complete days of Breeze's metering)"
    )


def test_a_runway_into_next_year_names_the_year_and_a_short_one_says_less_than_a_day() -> None:
    long = MeteredRunway(Decimal("2.5"), Decimal("400.2"), date(2028, 1, 9), False)
    short = MeteredRunway(Decimal(300), Decimal("0.3"), date(2026, 12, 5), False)

    assert runway_text(long, NOW).startswith(
        "about 400.2 days left, until around Sun Jan 9, 2028, at 2.5 credits a day"
    )
    assert runway_text(short, NOW).startswith(
        "less than a day left, until around Sat Dec 5, at 300 credits a day"
    )


def test_a_runway_past_the_calendar_has_no_date() -> None:
    far = MeteredRunway(Decimal("0.01"), Decimal(10**9), None, False)

    assert runway_text(far, NOW).startswith("about 1,000,000,000 days left, at 0.01 credits a day (")


def test_the_keys_own_budget_binding_first_is_said() -> None:
    runway = MeteredRunway(
        Decimal(100), Decimal("12.4"), date(2026, 12, 17), True, Decimal("1249.5"), Decimal(5000)
    )

    assert "at 100 credits a day: this key's own budget runs out before the account does (" in runway_text(
        runway, NOW
    )


def test_no_spend_is_said_instead_of_a_number() -> None:
    assert runway_text(MeteredRunway(Decimal(0), None, None, False), NOW) == (
        "no spend in the last 7 complete days by Breeze's metering: no runway to estimate"
    )


def test_a_budget_is_shown_only_when_the_key_has_one() -> None:
    assert budget_text(KeyBudget("key_p", "prod", Decimal(5000), Decimal("1249.5"))) == (
        "this key's own budget: 1,249.5 of 5,000 credits left"
    )
    assert budget_text(KeyBudget("key_p", "prod", None, None)) is None
    assert budget_text(None) is None


def test_the_lines_under_a_balance_prefer_metering_to_the_samples() -> None:
    budget = KeyBudget("key_p", "prod", Decimal(50_000), Decimal(40_000))
    metered = Metering(NOW, WEEK, budget)

    lines = lines_under_balance(Decimal(1680), NOW, metered, SAMPLES, "▁▂▃")
    plain = lines_under_balance(Decimal(1680), NOW, metered, SAMPLES, "▁▂▃", plain=True)

    assert lines[0].startswith(
        ":hourglass: About 12 days left, until around Thu Dec 17, at 140 credits a day ("
    )
    assert lines[0].endswith("metering).")
    assert lines[1:] == [":key: This key's own budget: 40,000 of 50,000 credits left.", "Last 7 days: `▁▂▃`"]
    assert plain[0].startswith("Runway: about 12 days left, until around Thu Dec 17")
    assert plain[1:] == ["This key's own budget: 40,000 of 50,000 credits left.", "Last 7 days: ▁▂▃"]


def test_without_metering_the_lines_are_the_samples() -> None:
    unavailable = Metering(NOW, None)

    for metering in (None, unavailable):
        assert lines_under_balance(Decimal(1600), NOW, metering, SAMPLES) == [
            ":hourglass: About 4.8 days left at 331 credits a day."
        ]
    assert lines_under_balance(Decimal(1600), NOW, None, None) == []
    flat = Runway(FLAT, Decimal("0.000"), None, 48.0)
    assert lines_under_balance(Decimal(1600), NOW, None, flat) == [
        ":hourglass: The balance is flat or rising over the last week, so it is not running out."
    ]
