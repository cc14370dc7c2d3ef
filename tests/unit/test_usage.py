"""Breeze's metering as values: windows of UTC dates, reports, the biggest spenders, the week's spend
and the metered runway, all on a fixed clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.spend import Metering, WeekSpend, metered_runway, week_spend
from bot.domain.usage import (
    MAX_REQUESTS_READ,
    TOP_SPENDERS,
    WEEK_DAYS,
    DaySpend,
    KeyBudget,
    MeteredRequest,
    UsageReport,
    Window,
    complete_week,
    credits_of,
    spent_per_day,
    split_by_key,
    split_by_model,
)

NOW = datetime(2026, 12, 5, 10, 30, tzinfo=UTC)  # a Saturday
TODAY = NOW.date()


def request(
    cost: int,
    *,
    key: str | None = "key_a",
    name: str | None = None,
    model: str | None = "bluebell-v1-en",
    at: datetime = NOW,
    characters: int = 10,
) -> MeteredRequest:
    return MeteredRequest(key, name, model, cost, characters, at)


def report(
    requests: list[MeteredRequest], total: int | None = None, window: Window | None = None
) -> UsageReport:
    cost = sum(r.cost_millicredits for r in requests)
    count = len(requests) if total is None else total
    return UsageReport(
        window=window or Window(TODAY, TODAY),
        cost_millicredits=cost,
        request_count=count,
        characters=sum(r.characters for r in requests),
        total=count,
        requests=tuple(requests),
    )


def week(*days: int, today: int = 0, top_key: str | None = "prod") -> WeekSpend:
    return WeekSpend(TODAY, tuple(days), today, top_key, "bluebell-v1-en", top_key, "bluebell-v1-en")


# --- money and windows ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("millicredits", "credits"),
    [(0, Decimal(0)), (1, Decimal("0.001")), (140_000, Decimal(140)), (-12_500, Decimal("-12.5"))],
)
def test_credits_are_exact(millicredits: int, credits: Decimal) -> None:
    assert credits_of(millicredits) == credits


def test_credits_stay_exact_past_decimal_precision() -> None:
    assert credits_of(10**40 + 7) == Decimal("10000000000000000000000000000000000000.007")


def test_a_window_counts_its_dates_both_ends_included() -> None:
    window = Window(date(2026, 11, 28), date(2026, 12, 4))

    assert window.days == 7
    assert window.dates()[0] == date(2026, 11, 28)
    assert window.dates()[-1] == date(2026, 12, 4)
    assert date(2026, 12, 4) in window
    assert date(2026, 12, 5) not in window
    assert Window.ending(date(2026, 12, 4), 7) == window


def test_a_window_cannot_end_before_it_starts() -> None:
    with pytest.raises(ValueError, match="ends before it starts"):
        Window(date(2026, 12, 5), date(2026, 12, 4))
    with pytest.raises(ValueError, match="at least one day"):
        Window.ending(TODAY, 0)


def test_the_complete_week_is_the_seven_days_before_today() -> None:
    assert complete_week(TODAY) == Window(date(2026, 11, 28), date(2026, 12, 4))
    assert complete_week(TODAY).days == WEEK_DAYS


# --- requests and reports ------------------------------------------------------------------------


def test_a_request_is_named_by_its_key_name_else_its_id() -> None:
    assert request(1, key="key_a", name="prod").key_label == "prod"
    assert request(1, key="key_a", name=None).key_label == "key_a"
    assert request(1, key=None, name=None).key_label is None
    assert request(1, at=datetime(2026, 12, 4, 23, 30, tzinfo=UTC)).day == date(2026, 12, 4)


def test_a_report_keeps_the_exact_totals_and_says_when_it_read_only_some() -> None:
    read = [request(1000) for _ in range(3)]
    whole = report(read)
    part = report(read, total=52_340)

    assert whole.credits == Decimal(3)
    assert whole.complete
    assert not part.complete
    assert part.read == 3
    assert part.total == 52_340


def test_per_day_spend_from_the_requests_own_costs() -> None:
    window = Window(date(2026, 12, 3), date(2026, 12, 4))
    late = datetime(2026, 12, 4, 23, 59, tzinfo=UTC)
    early = datetime(2026, 12, 3, 0, 0, tzinfo=UTC)

    assert spent_per_day([request(5, at=late), request(7, at=late), request(1, at=early)], window) == (
        DaySpend(date(2026, 12, 3), 1),
        DaySpend(date(2026, 12, 4), 12),
    )
    assert spent_per_day([], window) == (DaySpend(date(2026, 12, 3), 0), DaySpend(date(2026, 12, 4), 0))
    undated = MeteredRequest("key_a", None, None, 5, 0, None)
    assert spent_per_day([undated], window) is None
    assert spent_per_day([request(5, at=NOW)], window) is None  # outside the window


# --- the biggest spenders ------------------------------------------------------------------------


def test_the_split_by_key_names_the_top_five_and_the_other() -> None:
    costs = {"a": 50_000, "b": 20_000, "c": 10_000, "d": 8_000, "e": 7_000, "f": 3_000, "g": 2_000}
    requests = [request(cost, key=f"key_{k}", name=k) for k, cost in costs.items()]

    split = split_by_key(report(requests))

    assert [(s.label, s.millicredits) for s in split.top] == [
        ("a", 50_000),
        ("b", 20_000),
        ("c", 10_000),
        ("d", 8_000),
        ("e", 7_000),
    ]
    assert split.top[0].share == Decimal("0.5")
    assert split.top[0].credits == Decimal(50)
    assert split.other is not None
    assert (split.other.millicredits, split.other.requests, split.other.share) == (5_000, 2, Decimal("0.05"))
    assert not split.sampled


def test_the_split_adds_up_requests_of_one_key_and_names_unknown_ones() -> None:
    requests = [
        request(1_000, key="key_a", name=None),
        request(2_000, key="key_a", name=None),
        request(500, key=None, name=None),
    ]

    split = split_by_key(report(requests))

    assert [(s.label, s.millicredits, s.requests) for s in split.top] == [("key_a", 3_000, 2), (None, 500, 1)]
    assert split.other is None


def test_the_split_by_model() -> None:
    requests = [request(1_000, model="bluebell-v1-en"), request(3_000, model="aster-v2")]

    split = split_by_model(report(requests))

    assert [s.label for s in split.top] == ["aster-v2", "bluebell-v1-en"]
    assert split.top[0].share == Decimal("0.75")


def test_a_split_of_the_newest_thousand_says_it_is_a_sample() -> None:
    requests = [request(1) for _ in range(MAX_REQUESTS_READ)]

    split = split_by_key(report(requests, total=52_340))

    assert split.sampled
    assert (split.read, split.total) == (1000, 52_340)


def test_free_requests_share_nothing() -> None:
    split = split_by_key(report([request(0), request(0, key="key_b")]))

    assert [s.share for s in split.top] == [Decimal(0), Decimal(0)]


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", "d", "e", "f", "g", "h", None]), st.integers(0, 10**9)),
        max_size=60,
    )
)
def test_a_split_accounts_for_every_millicredit_and_request(spent: list[tuple[str | None, int]]) -> None:
    requests = [request(cost, key=key, name=None) for key, cost in spent]

    split = split_by_key(report(requests))

    rows = [*split.top, *([split.other] if split.other else [])]
    assert sum(r.millicredits for r in rows) == sum(cost for _, cost in spent)
    assert sum(r.requests for r in rows) == len(spent)
    assert len(split.top) <= TOP_SPENDERS
    assert [r.millicredits for r in split.top] == sorted((r.millicredits for r in split.top), reverse=True)
    assert (split.other is None) == (len({key for key, _ in spent}) <= TOP_SPENDERS)
    if sum(cost for _, cost in spent):
        assert abs(sum(r.share for r in rows) - 1) < Decimal("1e-20")


# --- the week's spend ----------------------------------------------------------------------------


def test_the_week_from_its_reports() -> None:
    days = complete_week(TODAY).dates()
    spent = [request(140_000, key="key_p", name="prod", at=datetime.combine(d, NOW.timetz())) for d in days]
    week_report = UsageReport(
        complete_week(TODAY),
        980_000,
        7,
        70,
        7,
        tuple(reversed(spent)),
        tuple(DaySpend(d, 140_000) for d in days),
    )
    today = report([request(3_000, key="key_s", name="staging", model="aster-v2")])

    found = week_spend(TODAY, week_report, today)

    assert found.days == (140_000,) * 7
    assert found.total_millicredits == 980_000
    assert found.average_per_day == Decimal(140)
    assert found.days_with_spend == 7
    assert found.today_millicredits == 3_000
    assert (found.week_top_key, found.week_top_model) == ("prod", "bluebell-v1-en")
    assert (found.today_top_key, found.today_top_model) == ("staging", "aster-v2")
    assert found.daily()[0] == DaySpend(date(2026, 11, 28), 140_000)


def test_the_week_needs_its_per_day_spend_and_its_own_window() -> None:
    no_days = report([], window=complete_week(TODAY))
    with pytest.raises(ValueError, match="per-day"):
        week_spend(TODAY, no_days, report([]))
    with pytest.raises(ValueError, match="7 days"):
        WeekSpend(TODAY, (1, 2), 0, None, None, None, None)


def test_days_without_spend_count_in_the_average() -> None:
    found = week(0, 0, 0, 0, 0, 0, 7_000)

    assert found.average_per_day == Decimal(1)
    assert found.days_with_spend == 1


# --- the metered runway --------------------------------------------------------------------------


def test_the_runway_is_the_balance_over_the_average_day() -> None:
    runway = metered_runway(Decimal(1_680), week(*[140_000] * 7), NOW)

    assert runway.per_day == Decimal(140)
    assert runway.days_left == Decimal(12)
    assert runway.until == date(2026, 12, 17)
    assert not runway.by_key_limit
    assert not runway.no_spend


def test_the_runway_is_rounded_down_never_overstated() -> None:
    runway = metered_runway(Decimal(1_000), week(*[30_000] * 7), NOW)

    assert runway.days_left == Decimal("33.3")  # 33.33… days
    assert runway.until == date(2027, 1, 7)


def test_no_spend_in_the_week_says_so_instead_of_a_number() -> None:
    runway = metered_runway(Decimal(1_000), week(*[0] * 7, today=5_000), NOW)

    assert runway.no_spend
    assert runway.days_left is None
    assert runway.until is None
    assert runway.per_day == Decimal(0)


def test_a_spent_balance_has_no_days_left() -> None:
    assert metered_runway(Decimal(-5), week(*[1_000] * 7), NOW).days_left == Decimal(0)
    assert metered_runway(Decimal(0), week(*[1_000] * 7), NOW).until == TODAY


def test_a_runway_beyond_the_calendar_has_no_date() -> None:
    runway = metered_runway(Decimal(10**30), week(*[1] * 7), NOW)

    assert runway.days_left is not None
    assert runway.days_left > 10**6
    assert runway.until is None


def test_the_keys_own_limit_binds_first_at_the_keys_own_rate() -> None:
    budget = KeyBudget("key_p", "prod", Decimal(5_000), Decimal("1249.5"), Decimal("3750.5"), Decimal(0))

    runway = metered_runway(Decimal(10_000), week(*[300_000] * 7), NOW, budget, key_week_millicredits=700_000)

    assert runway.by_key_limit
    assert runway.per_day == Decimal(100)
    assert runway.days_left == Decimal("12.4")  # 1,249.5 / 100, rounded down
    assert runway.until == date(2026, 12, 17)
    assert (runway.key_remaining, runway.key_limit) == (Decimal("1249.5"), Decimal(5_000))


def test_the_account_binds_first_when_the_key_has_more_left() -> None:
    budget = KeyBudget("key_p", "prod", Decimal(50_000), Decimal(40_000))

    runway = metered_runway(Decimal(1_400), week(*[140_000] * 7), NOW, budget, key_week_millicredits=980_000)

    assert not runway.by_key_limit
    assert runway.days_left == Decimal(10)
    assert runway.key_remaining == Decimal(40_000)


def test_a_key_whose_own_spend_is_unknown_is_taken_to_spend_the_accounts() -> None:
    budget = KeyBudget(None, None, Decimal(5_000), Decimal(100))

    runway = metered_runway(Decimal(10_000), week(*[100_000] * 7), NOW, budget)

    assert runway.by_key_limit
    assert runway.days_left == Decimal(1)


def test_a_key_that_spent_nothing_never_binds() -> None:
    budget = KeyBudget("key_p", "prod", Decimal(5_000), Decimal(1))

    runway = metered_runway(Decimal(10_000), week(*[100_000] * 7), NOW, budget, key_week_millicredits=0)

    assert not runway.by_key_limit
    assert runway.days_left == Decimal(100)


def test_a_key_without_its_own_limit_is_not_a_budget() -> None:
    assert not KeyBudget("key_p", "prod", None, None).has_limit
    assert not KeyBudget("key_p", "prod", Decimal(5), None).has_limit
    assert KeyBudget("key_p", "prod", Decimal(5), Decimal(0)).has_limit


@given(
    balance=st.decimals(min_value=-1000, max_value=10**9, places=3, allow_nan=False),
    days=st.lists(st.integers(0, 10**9), min_size=7, max_size=7),
    remaining=st.none() | st.decimals(min_value=-10, max_value=10**9, places=3, allow_nan=False),
    key_share=st.integers(0, 100),
)
def test_the_runway_is_never_overstated_and_the_key_only_shortens_it(
    balance: Decimal, days: list[int], remaining: Decimal | None, key_share: int
) -> None:
    spend = week(*days)
    budget = KeyBudget("key_p", None, None if remaining is None else Decimal(10**9), remaining)
    key_week = sum(days) * key_share // 100

    account = metered_runway(balance, spend, NOW)
    keyed = metered_runway(balance, spend, NOW, budget, key_week_millicredits=key_week)

    if sum(days) == 0:
        assert account.no_spend
        assert keyed.no_spend
        return
    assert account.days_left is not None
    assert keyed.days_left is not None
    assert account.days_left * account.per_day <= max(balance, Decimal(0))
    assert (account.days_left + Decimal("0.1")) * account.per_day > balance
    assert keyed.days_left <= account.days_left
    if keyed.by_key_limit:
        assert remaining is not None
        assert keyed.days_left * keyed.per_day <= max(remaining, Decimal(0))


# --- what was read -------------------------------------------------------------------------------


def test_metering_read_gives_the_runway_and_unavailable_metering_none() -> None:
    read = Metering(NOW, week(*[140_000] * 7))
    unavailable = Metering(NOW, None, KeyBudget("key_p", "prod", Decimal(5), Decimal(1)))

    assert read.available
    runway = read.runway(Decimal(1_680), NOW + timedelta(hours=1))
    assert runway is not None
    assert runway.days_left == Decimal(12)
    assert not unavailable.available
    assert unavailable.runway(Decimal(1_680), NOW) is None
