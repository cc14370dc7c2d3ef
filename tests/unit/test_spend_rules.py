"""The rules on Breeze's metering, `bot.domain.spend_rules.evaluate_spend`: a runway alert once per
crossing with a recovery at N plus 10 %, and a spike alert at most once per UTC day."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from bot.domain.rules import AlertRule, DaysRule, Outcome, Post, PostKind, Rules, SpikeRule, WatchState
from bot.domain.spend import Metering, WeekSpend
from bot.domain.spend_rules import evaluate_spend
from bot.domain.usage import KeyBudget

D = Decimal
NOW = datetime(2026, 12, 8, 15, 0, tzinfo=UTC)  # a Tuesday
TODAY = NOW.date()
ALERTS = "C0ALERTS01"
ADMIN = "UADMIN001"
DAYS = DaysRule(5, ALERTS, ADMIN)
SPIKE = SpikeRule(D(3), ALERTS, "UADMIN002")
# 100 credits on each of the last 7 complete days: a runway of balance / 100 days.
STEADY = (100_000,) * 7
# What the posts of a runway of 450 credits, and of a day that spent 425.5 credits, say.
DAYS_FACTS = {
    "days": "5",
    "days_left": "4.5",
    "until": "2026-12-13",
    "per_day": "100",
    "balance": "450",
    "on": "2026-12-08",
    "top_key": "prod",
    "top_model": "bluebell-v1-en",
}
SPIKE_FACTS = {
    "day": "2026-12-08",
    "today": "425.5",
    "usual": "100",
    "times": "4.2",
    "multiple": "3",
    "top_key": "batch",
    "top_model": "bluebell-v2-multi",
}


def week(
    days: tuple[int, ...] = STEADY, today: int = 0, on: date = TODAY, *, top: str | None = "prod"
) -> WeekSpend:
    return WeekSpend(
        today=on,
        days=days,
        today_millicredits=today,
        week_top_key=top,
        week_top_model="bluebell-v1-en" if top else None,
        today_top_key="batch" if today else None,
        today_top_model="bluebell-v2-multi" if today else None,
    )


def metered(spend: WeekSpend | None = None, budget: KeyBudget | None = None) -> Metering:
    return Metering(NOW - timedelta(minutes=20), spend if spend is not None else week(), budget)


def run(
    rules: Rules,
    state: WatchState,
    credits: str | int,
    metering: Metering | None,
    *,
    now: datetime = NOW,
) -> Outcome:
    before = Outcome(state, [], [])
    return evaluate_spend(rules, before, D(credits), now, metering)


def kinds(outcome: Outcome) -> list[PostKind]:
    return [post.kind for post in outcome.posts]


# --- the runway alert ----------------------------------------------------------------------------


def test_an_armed_runway_alert_posts_once_when_the_runway_falls_under_n_days() -> None:
    outcome = run(Rules(days=DAYS), WatchState(days_crossings=2), 450, metered())

    assert outcome.posts == [Post(PostKind.DAYS_ALERT, ALERTS, "days:3", DAYS_FACTS)]
    assert outcome.state == WatchState(days_armed=False, days_crossings=3)


def test_a_runway_of_exactly_n_days_is_not_under_n() -> None:
    outcome = run(Rules(days=DAYS), WatchState(), 500, metered())

    assert outcome.posts == []
    assert outcome.state == WatchState()


def test_a_fired_runway_alert_stays_quiet_while_the_runway_stays_under() -> None:
    fired = WatchState(days_armed=False, days_crossings=1)
    for credits in (400, 100, 0, 499):
        outcome = run(Rules(days=DAYS), fired, credits, metered())
        assert outcome.posts == []
        assert outcome.state == fired


@pytest.mark.parametrize(("credits", "recovers"), [(500, False), (549, False), (550, True), (5000, True)])
def test_a_fired_runway_alert_recovers_at_n_days_plus_ten_percent(credits: int, recovers: bool) -> None:
    fired = WatchState(days_armed=False, days_crossings=4)

    outcome = run(Rules(days=DAYS), fired, credits, metered())

    if recovers:
        [post] = outcome.posts
        assert (post.kind, post.channel, post.dedupe) == (PostKind.DAYS_RECOVERY, ALERTS, "days-recovery:4")
        assert post.facts["days_left"] == str(D(credits) / 100)
        assert outcome.state == WatchState(days_armed=True, days_crossings=4)
    else:
        assert outcome.posts == []
        assert outcome.state == fired


def test_after_a_recovery_the_next_fall_alerts_again() -> None:
    rules = Rules(days=DAYS)
    first = run(rules, WatchState(), 300, metered())
    quiet = run(rules, first.state, 520, metered())
    recovered = run(rules, quiet.state, 600, metered())
    armed = run(rules, recovered.state, 510, metered())
    again = run(rules, armed.state, 200, metered())

    found = [kinds(o) for o in (first, quiet, recovered, armed, again)]
    assert found == [[PostKind.DAYS_ALERT], [], [PostKind.DAYS_RECOVERY], [], [PostKind.DAYS_ALERT]]
    assert [p.dedupe for o in (first, recovered, again) for p in o.posts] == [
        "days:1",
        "days-recovery:1",
        "days:2",
    ]


@pytest.mark.parametrize(
    "metering",
    [
        None,  # not read yet, or no key
        Metering(NOW, None),  # Breeze does not meter for the key
        metered(week((0,) * 7, today=50_000)),  # nothing spent in the week: no rate to go by
    ],
    ids=["none", "unavailable", "no-spend"],
)
def test_without_a_runway_nothing_fires_nothing_recovers_and_the_state_stays(
    metering: Metering | None,
) -> None:
    for state in (WatchState(), WatchState(days_armed=False, days_crossings=2)):
        outcome = run(Rules(days=DAYS), state, 1, metering)
        assert outcome.posts == []
        assert outcome.state == state


def test_a_key_budget_that_runs_out_first_is_the_runway_and_says_so() -> None:
    budget = KeyBudget("key_abc123", "prod", D(5000), D(200))

    outcome = run(Rules(days=DAYS), WatchState(), 100_000, metered(budget=budget))

    [post] = outcome.posts
    assert post.facts["days_left"] == "2"
    assert post.facts["by_key_limit"] == "true"
    assert post.facts["key_remaining"] == "200"


def test_a_week_without_a_known_top_spender_leaves_it_out() -> None:
    outcome = run(Rules(days=DAYS), WatchState(), 100, metered(week(top=None)))

    [post] = outcome.posts
    assert "top_key" not in post.facts
    assert "top_model" not in post.facts


def test_rearm_at_is_n_days_plus_ten_percent() -> None:
    assert DaysRule(5, ALERTS, ADMIN).rearm_at == D("5.5")
    assert DaysRule(1, ALERTS, ADMIN).rearm_at == D("1.1")
    assert DaysRule(90, ALERTS, ADMIN).rearm_at == D(99)


# --- the spike alert -----------------------------------------------------------------------------


def test_a_spike_posts_by_how_much_and_who_spent_it_today() -> None:
    outcome = run(Rules(spike=SPIKE), WatchState(), 9000, metered(week(today=425_500)))

    assert outcome.posts == [Post(PostKind.SPIKE, ALERTS, "spike:2026-12-08", SPIKE_FACTS)]
    assert outcome.state == WatchState(spike_last_day=TODAY)


def test_a_spike_posts_once_a_day_then_again_the_next_day() -> None:
    rules = Rules(spike=SPIKE)
    first = run(rules, WatchState(), 9000, metered(week(today=400_000)))
    later = run(rules, first.state, 9000, metered(week(today=900_000)), now=NOW + timedelta(hours=8))
    tomorrow = NOW + timedelta(days=1)
    next_day = Metering(tomorrow, week(today=350_000, on=tomorrow.date()))
    again = run(rules, later.state, 9000, next_day, now=tomorrow)

    assert [kinds(o) for o in (first, later, again)] == [[PostKind.SPIKE], [], [PostKind.SPIKE]]
    assert [p.dedupe for p in again.posts] == ["spike:2026-12-09"]
    assert again.state.spike_last_day == tomorrow.date()


@pytest.mark.parametrize(
    ("days", "today", "spikes"),
    [
        ((0, 0, 0, 0, 0, 100_000, 100_000), 900_000, False),  # 2 days of spend: no baseline yet
        ((0, 0, 0, 0, 70_000, 70_000, 70_000), 91_000, True),  # 3 days; the zero days count: 30 a day
        ((0, 0, 0, 0, 70_000, 70_000, 70_000), 90_000, False),  # exactly 3x is not over 3x
        ((1000,) * 7, 9_999, False),  # 9.999x the usual day, but under 10 credits
        ((1000,) * 7, 10_000, True),  # 10 credits: enough
        (STEADY, 300_000, False),
        (STEADY, 300_001, True),
    ],
)
def test_a_spike_needs_a_baseline_ten_credits_and_more_than_the_multiple(
    days: tuple[int, ...], today: int, spikes: bool
) -> None:
    outcome = run(Rules(spike=SPIKE), WatchState(), 9000, metered(week(days, today=today)))

    assert kinds(outcome) == ([PostKind.SPIKE] if spikes else [])
    assert outcome.state.spike_last_day == (TODAY if spikes else None)


def test_a_spike_rule_with_its_own_multiple() -> None:
    rule = SpikeRule(D("1.5"), ALERTS, ADMIN)
    outcome = run(Rules(spike=rule), WatchState(), 9000, metered(week(today=150_001)))

    [post] = outcome.posts
    assert (post.facts["times"], post.facts["multiple"]) == ("1.5", "1.5")


@pytest.mark.parametrize(
    "metering",
    [None, Metering(NOW, None), metered(week(today=900_000, on=TODAY - timedelta(days=1)))],
    ids=["none", "unavailable", "read-yesterday"],
)
def test_no_spike_without_todays_metering(metering: Metering | None) -> None:
    outcome = run(Rules(spike=SPIKE), WatchState(), 9000, metering)

    assert outcome.posts == []
    assert outcome.state == WatchState()


# --- beside the other rules ----------------------------------------------------------------------


def test_the_spend_rules_add_to_what_the_other_rules_decided() -> None:
    alert = Post(PostKind.ALERT, ALERTS, "alert:1", {"balance": "450"})
    before = Outcome(WatchState(armed=False, crossings=1, last_balance=D(450)), [alert], ["tp_1"])
    rules = Rules(alert=AlertRule(D(1000), ALERTS, ADMIN), days=DAYS, spike=SPIKE)

    outcome = evaluate_spend(rules, before, D(450), NOW, metered(week(today=500_000)))

    assert kinds(outcome) == [PostKind.ALERT, PostKind.DAYS_ALERT, PostKind.SPIKE]
    assert outcome.seen_topups == ["tp_1"]
    assert outcome.state == replace(before.state, days_armed=False, days_crossings=1, spike_last_day=TODAY)


def test_without_spend_rules_nothing_changes() -> None:
    before = Outcome(WatchState(last_balance=D(1)), [], [])

    assert evaluate_spend(Rules(), before, D(1), NOW, metered(week(today=900_000))) == before


def test_the_new_rules_count_as_rules_and_name_their_admins() -> None:
    assert Rules(days=DAYS).empty is False
    assert Rules(spike=SPIKE).empty is False
    assert Rules(days=DAYS, spike=SPIKE).admins() == [ADMIN, "UADMIN002"]
