"""Runway: burn rate, days left and the balance sparkline, all on a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bot.domain.runway import (
    MIN_SPAN,
    RETENTION,
    WINDOW,
    Runway,
    Sample,
    consumption,
    prune_before,
    runway,
    sparkline,
    usable,
)

NOW = datetime(2024, 6, 10, 12, 0, tzinfo=UTC)


def sample(hours_ago: float, credits: str | int, topup: str | int = 0, key: str = "k") -> Sample:
    """A sample read `hours_ago` hours before NOW."""
    return Sample(
        at=NOW - timedelta(hours=hours_ago),
        credits=Decimal(credits),
        topup_credits=Decimal(topup),
        key=key,
    )


def unknown(span_hours: float) -> Runway:
    return Runway(status="unknown", burn_per_day=None, days_left=None, span_hours=span_hours)


def test_constants() -> None:
    assert timedelta(days=7) == WINDOW
    assert timedelta(hours=24) == MIN_SPAN
    assert timedelta(days=90) == RETENTION


def test_prune_before_is_ninety_days_back() -> None:
    assert prune_before(NOW) == datetime(2024, 3, 12, 12, 0, tzinfo=UTC)


# --- not enough data -----------------------------------------------------------------------------


def test_no_samples_is_unknown() -> None:
    assert runway([], NOW) == unknown(0.0)


def test_one_sample_is_unknown() -> None:
    assert runway([sample(30, 1000)], NOW) == unknown(0.0)


def test_under_a_day_is_unknown() -> None:
    assert runway([sample(23, 2000), sample(0, 1000)], NOW) == unknown(23.0)


def test_just_under_a_day_is_unknown() -> None:
    first = Sample(at=NOW - timedelta(hours=24) + timedelta(microseconds=1), credits=Decimal(2000))
    result = runway([first, sample(0, 1000)], NOW)
    assert result.status == "unknown"
    assert result.burn_per_day is None


def test_samples_at_the_same_moment_are_unknown() -> None:
    assert runway([sample(0, 2000), sample(0, 1000)], NOW, min_span=timedelta(0)) == unknown(0.0)


# --- burning --------------------------------------------------------------------------------------


def test_exactly_a_day_is_enough() -> None:
    result = runway([sample(24, 1500), sample(0, 1000)], NOW)
    assert result == Runway(
        status="burning", burn_per_day=Decimal("500"), days_left=Decimal("2"), span_hours=24.0
    )
    assert str(result.burn_per_day) == "500.000"
    assert str(result.days_left) == "2.0"


def test_even_use_over_two_days() -> None:
    # 1,000 credits used evenly over two days, 1,680 left: 500 a day, 3.36 days rounded down to 3.3.
    result = runway([sample(48, 2680), sample(24, 2180), sample(0, 1680)], NOW)
    assert result.status == "burning"
    assert str(result.burn_per_day) == "500.000"
    assert str(result.days_left) == "3.3"
    assert result.span_hours == 48.0


def test_any_input_order() -> None:
    ordered = [sample(48, 2680), sample(24, 2180), sample(0, 1680)]
    shuffled = [ordered[1], ordered[2], ordered[0]]
    assert runway(shuffled, NOW) == runway(ordered, NOW)


def test_burn_rounds_to_thousandths() -> None:
    # 1,000 credits over three days is 333.333... a day; 1,001 left lasts 3.003 days.
    result = runway([sample(72, 2001), sample(0, 1001)], NOW)
    assert str(result.burn_per_day) == "333.333"
    assert str(result.days_left) == "3.0"


def test_burn_rounds_half_up() -> None:
    result = runway([sample(24, "1000.0005"), sample(0, 1000)], NOW)
    assert result.status == "burning"
    assert str(result.burn_per_day) == "0.001"
    # Days left use the unrounded burn: 1000 / 0.0005 = 2,000,000.
    assert str(result.days_left) == "2000000.0"


def test_days_left_rounds_down() -> None:
    # 300 a day over 1.5 days; 299 left is 0.9966... days: shown as 0.9, never 1.0.
    result = runway([sample(36, 749), sample(0, 299)], NOW)
    assert str(result.burn_per_day) == "300.000"
    assert str(result.days_left) == "0.9"


def test_fractional_span() -> None:
    result = runway([sample(36, 1300), sample(0, 1000)], NOW)
    assert result == Runway(
        status="burning", burn_per_day=Decimal(200), days_left=Decimal(5), span_hours=36.0
    )


def test_fractional_credits_stay_exact() -> None:
    result = runway([sample(24, "10.123"), sample(0, "0.1")], NOW)
    assert str(result.burn_per_day) == "10.023"
    assert str(result.days_left) == "0.0"


def test_gap_in_the_middle_counts() -> None:
    # Nothing read for four days: the 4,000 used across the gap still counts, over six days in all.
    samples = [sample(144, 7000), sample(120, 6000), sample(24, 2000), sample(0, 1000)]
    result = runway(samples, NOW)
    assert str(result.burn_per_day) == "1000.000"
    assert str(result.days_left) == "1.0"
    assert result.span_hours == 144.0


def test_sparse_data() -> None:
    result = runway([sample(120, 6000), sample(0, 1000)], NOW)
    assert result == Runway(
        status="burning", burn_per_day=Decimal(1000), days_left=Decimal(1), span_hours=120.0
    )


def test_many_hourly_samples() -> None:
    samples = [sample(hours, 1000 + 10 * hours) for hours in range(49)]
    result = runway(samples, NOW)
    assert str(result.burn_per_day) == "240.000"
    assert str(result.days_left) == "4.1"


# --- top-ups and rises ----------------------------------------------------------------------------


def test_topup_mid_window_is_not_consumption() -> None:
    # 1000 -> 1400 with a 500 top-up used 100; then 1400 -> 900 used 500: 600 over two days.
    result = runway([sample(48, 1000), sample(24, 1400, topup=500), sample(0, 900)], NOW)
    assert str(result.burn_per_day) == "300.000"
    assert str(result.days_left) == "3.0"


def test_topup_larger_than_the_rise() -> None:
    assert consumption([sample(24, 1000), sample(0, 1400, topup=500)]) == Decimal(100)


def test_topup_on_the_first_sample_is_ignored() -> None:
    # It happened before the history began, so it says nothing about use inside it.
    result = runway([sample(24, 1500, topup=10_000), sample(0, 1000)], NOW)
    assert str(result.burn_per_day) == "500.000"


def test_rise_without_topup_is_not_negative_consumption() -> None:
    # 1000 -> 1200 unexplained (ignored, not -200), then 1200 -> 1000 used 200: 100 a day.
    result = runway([sample(48, 1000), sample(24, 1200), sample(0, 1000)], NOW)
    assert str(result.burn_per_day) == "100.000"
    assert str(result.days_left) == "10.0"


def test_only_rising_is_flat() -> None:
    result = runway([sample(48, 1000), sample(24, 1200), sample(0, 1500, topup=100)], NOW)
    assert result == Runway(status="flat", burn_per_day=Decimal(0), days_left=None, span_hours=48.0)
    assert str(result.burn_per_day) == "0.000"


def test_flat_balance_is_flat() -> None:
    result = runway([sample(48, 1000), sample(24, 1000), sample(0, 1000)], NOW)
    assert result == Runway(status="flat", burn_per_day=Decimal(0), days_left=None, span_hours=48.0)


def test_topup_exactly_matching_the_rise_is_flat() -> None:
    result = runway([sample(24, 1000), sample(0, 1500, topup=500)], NOW)
    assert result.status == "flat"


def test_burn_rounding_to_zero_is_flat() -> None:
    result = runway([sample(24, "1000.0004"), sample(0, 1000)], NOW)
    assert result == Runway(status="flat", burn_per_day=Decimal(0), days_left=None, span_hours=24.0)


# --- zero and negative balances ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "burn"),
    [
        (500, 0, "500.000"),
        (100, -50, "150.000"),
        (-10, -40, "30.000"),
    ],
)
def test_spent_balance_has_no_days_left(before: int, after: int, burn: str) -> None:
    result = runway([sample(24, before), sample(0, after)], NOW)
    assert result.status == "burning"
    assert str(result.burn_per_day) == burn
    assert result.days_left == Decimal(0)


def test_recovering_from_negative_is_flat() -> None:
    assert runway([sample(24, -100), sample(0, 50)], NOW).status == "flat"


# --- key changes ----------------------------------------------------------------------------------


def test_key_change_resets_history() -> None:
    samples = [
        sample(72, 5000, key="A"),
        sample(48, 4000, key="A"),
        sample(24, 1000, key="B"),
        sample(0, 900, key="B"),
    ]
    result = runway(samples, NOW)
    assert result == Runway(
        status="burning", burn_per_day=Decimal(100), days_left=Decimal(9), span_hours=24.0
    )


def test_key_change_leaves_too_little_history() -> None:
    samples = [
        sample(72, 5000, key="A"),
        sample(48, 4000, key="A"),
        sample(12, 1000, key="B"),
        sample(0, 900, key="B"),
    ]
    assert runway(samples, NOW) == unknown(12.0)


def test_key_change_back_uses_only_the_last_run() -> None:
    # A B A: the earlier A readings are not joined to the later ones across B.
    samples = [
        sample(72, 3000, key="A"),
        sample(48, 9000, key="B"),
        sample(30, 2000, key="A"),
        sample(0, 1500, key="A"),
    ]
    result = runway(samples, NOW)
    # 500 over 1.25 days is 400 a day; 1,500 lasts 3.75 days, shown as 3.7.
    assert str(result.burn_per_day) == "400.000"
    assert str(result.days_left) == "3.7"
    assert result.span_hours == 30.0
    assert [s.at for s in usable(samples, NOW)] == [NOW - timedelta(hours=30), NOW]


def test_newest_key_is_chosen_after_sorting() -> None:
    samples = [sample(0, 900, key="B"), sample(48, 4000, key="A"), sample(24, 1000, key="B")]
    assert [s.key for s in usable(samples, NOW)] == ["B", "B"]


def test_future_sample_with_another_key_does_not_reset() -> None:
    samples = [sample(24, 1500, key="A"), sample(0, 1000, key="A"), sample(-1, 10, key="B")]
    assert runway(samples, NOW).status == "burning"


# --- window and clock -----------------------------------------------------------------------------


def test_samples_outside_the_window_are_ignored() -> None:
    samples = [sample(24 * 8, 1_000_000), sample(24, 1500), sample(0, 1000), sample(-2, 0)]
    result = runway(samples, NOW)
    assert result == Runway(
        status="burning", burn_per_day=Decimal(500), days_left=Decimal(2), span_hours=24.0
    )


def test_window_edges_are_included() -> None:
    samples = [sample(24 * 7, 8000), sample(0, 1000)]
    result = runway(samples, NOW)
    assert str(result.burn_per_day) == "1000.000"
    assert result.span_hours == 168.0


def test_just_outside_the_window_is_ignored() -> None:
    old = Sample(at=NOW - WINDOW - timedelta(microseconds=1), credits=Decimal(8000), key="k")
    assert runway([old, sample(12, 1100), sample(0, 1000)], NOW) == unknown(12.0)


def test_only_future_samples_is_unknown() -> None:
    assert runway([sample(-48, 2000), sample(-1, 1000)], NOW) == unknown(0.0)


def test_custom_window_and_min_span() -> None:
    samples = [sample(30, 9000), sample(2, 1200), sample(0, 1000)]
    result = runway(samples, NOW, window=timedelta(hours=3), min_span=timedelta(hours=1))
    assert str(result.burn_per_day) == "2400.000"
    assert str(result.days_left) == "0.4"
    assert result.span_hours == 2.0


def test_non_finite_credits_are_ignored() -> None:
    samples = [sample(24, 1500), sample(12, "NaN"), sample(6, "Infinity"), sample(0, 1000)]
    assert runway(samples, NOW) == runway([sample(24, 1500), sample(0, 1000)], NOW)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        runway([sample(24, 1500)], NOW.replace(tzinfo=None))


def test_inputs_are_not_changed() -> None:
    samples = [sample(0, 1000), sample(24, 1500)]
    copy = list(samples)
    runway(samples, NOW)
    sparkline(samples, NOW)
    assert samples == copy


# --- sparkline ------------------------------------------------------------------------------------


def test_sparkline_rising() -> None:
    samples = [sample(7 - step, 100 * step) for step in range(8)]
    assert sparkline(samples, NOW, width=8) == "▁▂▃▄▅▆▇█"


def test_sparkline_falling() -> None:
    samples = [sample(7 - step, 700 - 100 * step) for step in range(8)]
    assert sparkline(samples, NOW, width=8) == "█▇▆▅▄▃▂▁"


def test_sparkline_flat() -> None:
    samples = [sample(hours, 500) for hours in (72, 48, 24, 0)]
    assert sparkline(samples, NOW, width=4) == "▄▄▄▄"


def test_sparkline_two_samples() -> None:
    assert sparkline([sample(48, 1000), sample(0, 100)], NOW) == "█▁"
    assert sparkline([sample(48, 100), sample(0, 1000)], NOW) == "▁█"


def test_sparkline_scales_between_min_and_max() -> None:
    # 50 is halfway: 3.5 steps up, rounded half up to the fifth bar.
    assert sparkline([sample(2, 0), sample(1, 50), sample(0, 100)], NOW, width=3) == "▁▅█"


def test_sparkline_negative_values() -> None:
    assert sparkline([sample(2, 100), sample(1, 0), sample(0, -100)], NOW, width=3) == "█▅▁"


@pytest.mark.parametrize("width", [1, 5, 14, 30])
def test_sparkline_never_exceeds_width(width: int) -> None:
    samples = [sample(hours, 10_000 - hours) for hours in range(0, 24 * 7, 1)]
    line = sparkline(samples, NOW, width=width)
    assert len(line) == (0 if width == 1 else width)


def test_sparkline_default_width_is_fourteen() -> None:
    samples = [sample(hours, hours) for hours in range(24 * 7)]
    line = sparkline(samples, NOW)
    assert len(line) == 14
    assert line[0] == "█"
    assert line[-1] == "▁"


def test_sparkline_skips_empty_buckets_and_takes_the_last_sample() -> None:
    # Four 12-hour buckets over [-48 h, now]: 100 and 900 fall in the first (the later 900 is drawn),
    # nothing in the middle two, 500 in the last.
    samples = [sample(48, 100), sample(47, 900), sample(0, 500)]
    assert sparkline(samples, NOW, width=4) == "█▁"


def test_sparkline_buckets_start_at_the_first_sample() -> None:
    # Only 4 h of data: the 4 buckets cover those 4 h, not the whole week.
    samples = [sample(4, 400), sample(3, 300), sample(2, 200), sample(1, 100)]
    assert sparkline(samples, NOW, width=4) == "█▆▃▁"


@pytest.mark.parametrize(
    "samples",
    [
        [],
        [sample(0, 1000)],
        [sample(24 * 8, 5000), sample(0, 1000)],
        [sample(-1, 5000), sample(0, 1000)],
        [sample(24, 5000, key="A"), sample(0, 1000, key="B")],
        [sample(0, 5000), sample(0, 1000)],
    ],
)
def test_sparkline_needs_two_usable_samples(samples: list[Sample]) -> None:
    assert sparkline(samples, NOW) == ""


def test_sparkline_resets_on_key_change() -> None:
    samples = [
        sample(72, 100, key="A"),
        sample(48, 9000, key="A"),
        sample(24, 500, key="B"),
        sample(0, 400, key="B"),
    ]
    assert sparkline(samples, NOW, width=4) == "█▁"


def test_sparkline_ignores_samples_outside_the_window() -> None:
    samples = [sample(24 * 30, 0), sample(24, 100), sample(0, 200), sample(-5, 1_000_000)]
    assert sparkline(samples, NOW, width=2) == "▁█"


def test_sparkline_window_limits_the_buckets() -> None:
    samples = [sample(10, 900), sample(1, 100), sample(0, 200)]
    assert sparkline(samples, NOW, window=timedelta(hours=2), width=2) == "▁█"


@pytest.mark.parametrize("width", [0, -1])
def test_sparkline_refuses_a_width_under_one(width: int) -> None:
    with pytest.raises(ValueError, match="width"):
        sparkline([sample(1, 1), sample(0, 2)], NOW, width=width)
