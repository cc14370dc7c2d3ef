"""The worker's whole policy, `bot.domain.rules.evaluate`: alerts once per crossing, new top-ups once, due digests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest

from bot.domain.balances import Balance, Topup
from bot.domain.rules import (
    AlertRule,
    DigestRule,
    Frequency,
    Outcome,
    Post,
    PostKind,
    Rules,
    TopupRule,
    WatchState,
    evaluate,
    topup_key,
)
from bot.domain.runway import BURNING, Runway

D = Decimal
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # a Monday
ALERTS = "C0ALERTS01"
TOPUPS = "C0TOPUPS01"
DIGESTS = "C0DIGEST01"
ADMIN = "UADMIN001"
ALERT = AlertRule(D(1000), ALERTS, ADMIN)
NOTICES = TopupRule(TOPUPS, "UADMIN002")


def digest_rule(next_at: datetime = NOW, frequency: Frequency = Frequency.DAILY) -> DigestRule:
    return DigestRule(frequency, time(9, 0), "UTC", DIGESTS, "UADMIN003", next_at)


def balance(credits: str | int, *topups: Topup) -> Balance:
    return Balance(D(credits), tuple(topups))


def topup(
    topup_id: str | None,
    amount: str | None,
    when: datetime | None,
    status: str = "succeeded",
    raw_created_at: str | None = None,
) -> Topup:
    raw = raw_created_at if raw_created_at is not None else (when.isoformat() if when else None)
    return Topup(topup_id, D(amount) if amount is not None else None, status, when, raw)


def run(
    rules: Rules,
    state: WatchState,
    credits: str | int | Balance,
    *,
    now: datetime = NOW,
    seen: frozenset[str] = frozenset(),
    runway: Runway | None = None,
    sparkline: str = "",
) -> Outcome:
    found = credits if isinstance(credits, Balance) else balance(credits)
    return evaluate(rules, state, found, now, seen=seen, runway=runway, sparkline=sparkline)


def kinds(outcome: Outcome) -> list[PostKind]:
    return [post.kind for post in outcome.posts]


# --- the low-balance alert -----------------------------------------------------------------------


def test_an_armed_rule_alerts_once_when_the_balance_falls_below() -> None:
    outcome = run(Rules(alert=ALERT), WatchState(armed=True, crossings=2, last_balance=D(1500)), 999)

    assert outcome.posts == [
        Post(PostKind.ALERT, ALERTS, "alert:3", {"balance": "999", "threshold": "1000"}),
    ]
    assert outcome.state.armed is False
    assert outcome.state.crossings == 3
    assert outcome.state.last_balance == D(999)


def test_a_new_rule_alerts_on_the_first_check_when_already_below() -> None:
    outcome = run(Rules(alert=ALERT), WatchState(), 10)

    assert kinds(outcome) == [PostKind.ALERT]
    assert outcome.posts[0].dedupe == "alert:1"


def test_the_alert_carries_the_runway_when_known() -> None:
    runway = Runway(BURNING, D("140.5"), D("6.4"), 72.0)

    outcome = run(Rules(alert=ALERT), WatchState(), 900, runway=runway)

    assert outcome.posts[0].facts == {
        "balance": "900",
        "threshold": "1000",
        "days_left": "6.4",
        "burn_per_day": "140.5",
    }


@pytest.mark.parametrize(
    ("credits", "topped_up", "expected"),
    [
        ("1000", "100", [PostKind.RECOVERY]),  # a top-up lifts it to the threshold: recovered
        ("1050", "500", [PostKind.RECOVERY]),
        ("999.999", "500", []),  # a top-up that leaves it below changes nothing
        ("1050", "0", []),  # no top-up: inside the band is not enough
    ],
)
def test_a_top_up_above_the_threshold_rearms_inside_the_band(
    credits: str, topped_up: str, expected: list[PostKind]
) -> None:
    state = WatchState(armed=False, crossings=1, last_balance=D("950"))

    outcome = evaluate(
        Rules(alert=ALERT), state, balance(credits), NOW, seen=frozenset(), topped_up=D(topped_up)
    )

    assert kinds(outcome) == expected
    assert outcome.state.armed is bool(expected)


@pytest.mark.parametrize(
    ("armed", "last", "credits", "expected", "armed_after"),
    [
        # armed: only strictly below the threshold alerts
        (True, "2000", "1000", [], True),
        (True, "2000", "1000.001", [], True),
        (True, "1000", "999.999", [PostKind.ALERT], False),
        # fired: silent while below, also when it rises a little but stays below
        (False, "900", "800", [], False),
        (False, "800", "800", [], False),
        (False, "800", "999.999", [], False),
        # fired: back at or above threshold + 10 % recovers, whatever the last balance
        (False, None, "1099.999", [], False),
        (False, None, "1100", [PostKind.RECOVERY], True),
        (False, "1200", "1100", [PostKind.RECOVERY], True),
        (False, "1300", "5000", [PostKind.RECOVERY], True),
        # fired: falling (or flat) between the threshold and rearm_at does not recover
        (False, "1090", "1050", [], False),
        (False, "1050", "1050", [], False),
        # fired: a rise without a top-up inside the band is drift: the hysteresis holds
        (False, "950", "1000", [], False),
        (False, "950", "1050", [], False),
    ],
)
def test_alert_table(
    armed: bool, last: str | None, credits: str, expected: list[PostKind], armed_after: bool
) -> None:
    state = WatchState(armed=armed, crossings=1, last_balance=D(last) if last is not None else None)

    outcome = run(Rules(alert=ALERT), state, credits)

    assert kinds(outcome) == expected
    assert outcome.state.armed is armed_after
    assert outcome.state.last_balance == D(credits)


def test_recovery_names_the_crossing_it_ends_and_keeps_the_count() -> None:
    outcome = run(Rules(alert=ALERT), WatchState(armed=False, crossings=4, last_balance=D(500)), 1200)

    assert outcome.posts == [
        Post(PostKind.RECOVERY, ALERTS, "recovery:4", {"balance": "1200", "threshold": "1000"}),
    ]
    assert outcome.state.crossings == 4


def test_rearm_at_is_the_threshold_plus_ten_percent() -> None:
    assert AlertRule(D(1000), ALERTS, ADMIN).rearm_at == D(1100)
    assert AlertRule(D("1500.5"), ALERTS, ADMIN).rearm_at == D("1650.55")
    assert AlertRule(D("0.001"), ALERTS, ADMIN).rearm_at == D("0.0011")


def test_a_drop_recover_drop_cycle_alerts_once_per_crossing() -> None:
    rules = Rules(alert=ALERT)
    state = WatchState()
    said: list[tuple[PostKind, str]] = []
    for credits in (1500, 990, 980, 970, 1050, 1040, 1200, 1300, 900, 850, 2000):
        outcome = run(rules, state, credits)
        said += [(post.kind, post.dedupe) for post in outcome.posts]
        state = outcome.state

    assert said == [
        (PostKind.ALERT, "alert:1"),
        (PostKind.RECOVERY, "recovery:1"),  # 970 -> 1050 rose above the threshold
        (PostKind.ALERT, "alert:2"),
        (PostKind.RECOVERY, "recovery:2"),
    ]
    assert state.armed is True
    assert state.crossings == 2


def test_without_an_alert_rule_nothing_is_said_about_the_balance() -> None:
    outcome = run(Rules(topups=NOTICES), WatchState(topups_baselined=True), 1)

    assert outcome.posts == []
    assert outcome.state.armed is True
    assert outcome.state.crossings == 0
    assert outcome.state.last_balance == D(1)


# --- top-up notices ------------------------------------------------------------------------------

OCT = datetime(2026, 10, 15, 10, 0, tzinfo=UTC)
NOV_1 = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, 16, 5, tzinfo=UTC)
TP_1 = topup("tp_1", "500", NOV_1)
TP_2 = topup("tp_2", "250.5", NOV_20, status="pending")
TP_3 = topup("tp_3", "100", OCT, status="failed")


def test_before_the_baseline_top_ups_are_seen_but_not_announced() -> None:
    outcome = run(Rules(topups=NOTICES), WatchState(), balance(5000, TP_1, TP_2, TP_3))

    assert outcome.posts == []
    assert sorted(outcome.seen_topups) == ["tp_1", "tp_2", "tp_3"]
    assert outcome.state.topups_baselined is True


def test_after_the_baseline_each_unseen_top_up_is_announced_once_oldest_first() -> None:
    outcome = run(
        Rules(topups=NOTICES),
        WatchState(topups_baselined=True),
        balance(5000, TP_2, TP_1, TP_3),
        seen=frozenset({"tp_3"}),
    )

    assert [(p.kind, p.channel, p.dedupe) for p in outcome.posts] == [
        (PostKind.TOPUP, TOPUPS, "topup:tp_1"),
        (PostKind.TOPUP, TOPUPS, "topup:tp_2"),
    ]
    assert outcome.posts[0].facts == {
        "balance": "5000",
        "status": "succeeded",
        "amount": "500",
        "created_at": NOV_1.isoformat(),
        "topup_id": "tp_1",
    }
    assert outcome.posts[1].facts["status"] == "pending"
    assert sorted(outcome.seen_topups) == ["tp_1", "tp_2"]
    assert outcome.state.topups_baselined is True


def test_seen_top_ups_are_not_announced_again() -> None:
    outcome = run(
        Rules(topups=NOTICES),
        WatchState(topups_baselined=True),
        balance(5000, TP_1, TP_2, TP_3),
        seen=frozenset({"tp_1", "tp_2", "tp_3"}),
    )

    assert outcome.posts == []
    assert outcome.seen_topups == []


def test_a_top_up_without_an_id_is_keyed_by_its_date_and_amount() -> None:
    raw = "2026-11-21T08:00:00Z"
    anonymous = topup(None, "75", datetime(2026, 11, 21, 8, tzinfo=UTC), raw_created_at=raw)

    assert topup_key(anonymous) == f"{raw}|75"
    outcome = run(Rules(topups=NOTICES), WatchState(topups_baselined=True), balance(100, anonymous))

    assert [p.dedupe for p in outcome.posts] == [f"topup:{raw}|75"]
    assert "topup_id" not in outcome.posts[0].facts
    assert outcome.seen_topups == [f"{raw}|75"]
    again = run(
        Rules(topups=NOTICES), outcome.state, balance(100, anonymous), seen=frozenset(outcome.seen_topups)
    )
    assert again.posts == []


@pytest.mark.parametrize(
    "nameless",
    [
        Topup(None, None, "succeeded", None, None),
        Topup(None, D(10), "succeeded", None, None),  # an amount but no date
        Topup(None, None, "succeeded", NOV_1, NOV_1.isoformat()),  # a date but no amount
    ],
)
def test_a_top_up_with_no_id_and_not_both_date_and_amount_is_ignored(nameless: Topup) -> None:
    assert topup_key(nameless) is None

    outcome = run(Rules(topups=NOTICES), WatchState(topups_baselined=True), balance(100, nameless, TP_1))

    assert [p.dedupe for p in outcome.posts] == ["topup:tp_1"]
    assert outcome.seen_topups == ["tp_1"]


def test_without_notices_top_ups_are_seen_and_the_baseline_is_not_taken() -> None:
    outcome = run(Rules(alert=ALERT), WatchState(), balance(5000, TP_1))

    assert outcome.posts == []
    assert outcome.seen_topups == ["tp_1"]
    assert outcome.state.topups_baselined is False


# --- digests -------------------------------------------------------------------------------------


def test_a_due_first_digest_states_the_balance_and_the_top_ups_of_one_period() -> None:
    yesterday = topup("tp_8", "500", NOW - timedelta(hours=20))
    outcome = run(
        Rules(digest=digest_rule(NOW)),
        WatchState(),
        balance("4321.5", TP_1, TP_2, TP_3, yesterday),
        sparkline="▁▂▃▄▅▆▇",
    )

    assert [(p.kind, p.channel, p.dedupe) for p in outcome.posts] == [
        (PostKind.DIGEST, DIGESTS, f"digest:{NOW.isoformat()}"),
    ]
    facts = outcome.posts[0].facts
    assert facts["balance"] == "4321.5"
    assert facts["frequency"] == "daily"
    assert "change" not in facts  # no previous digest to compare with
    assert facts["since"] == (NOW - timedelta(days=1)).isoformat()
    assert facts["topups"] == "1"  # only the succeeded one of the last day: not November's
    assert D(facts["topup_credits"]) == D(500)
    assert facts["sparkline"] == "▁▂▃▄▅▆▇"
    assert outcome.state.digest_last_at == NOW
    assert outcome.state.digest_last_balance == D("4321.5")


def test_a_later_digest_states_the_change_and_only_the_top_ups_since_the_last() -> None:
    last = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
    recent = topup("tp_9", "1000", datetime(2026, 11, 22, 12, tzinfo=UTC))
    state = WatchState(digest_last_at=last, digest_last_balance=D("5000"))
    runway = Runway(BURNING, D("120"), D("30.1"), 100.0)

    outcome = run(
        Rules(digest=digest_rule(NOW, Frequency.WEEKLY)),
        state,
        balance("3800.25", recent, TP_1, TP_2, TP_3),
        now=NOW + timedelta(minutes=3),
        runway=runway,
    )

    facts = outcome.posts[0].facts
    assert facts["frequency"] == "weekly"
    assert D(facts["change"]) == D("-1199.75")
    assert facts["since"] == last.isoformat()
    assert facts["topups"] == "1"  # tp_9; tp_1 was before the last digest, tp_2 is pending
    assert D(facts["topup_credits"]) == D(1000)
    assert facts["runway"] == BURNING
    assert facts["days_left"] == "30.1"
    assert facts["burn_per_day"] == "120"
    assert "sparkline" not in facts
    assert outcome.state.digest_last_at == NOW + timedelta(minutes=3)
    assert outcome.state.digest_last_balance == D("3800.25")


@pytest.mark.parametrize(
    ("now", "due"),
    [
        (NOW - timedelta(microseconds=1), False),
        (NOW - timedelta(hours=23), False),
        (NOW, True),
        (NOW + timedelta(hours=5), True),
    ],
)
def test_a_digest_is_posted_only_once_due(now: datetime, due: bool) -> None:
    state = WatchState(digest_last_at=NOW - timedelta(days=1), digest_last_balance=D(10))

    outcome = run(Rules(digest=digest_rule(NOW)), state, 20, now=now)

    assert kinds(outcome) == ([PostKind.DIGEST] if due else [])
    if not due:
        assert outcome.state.digest_last_at == NOW - timedelta(days=1)
        assert outcome.state.digest_last_balance == D(10)


def test_all_three_rules_in_one_check() -> None:
    rules = Rules(alert=ALERT, topups=NOTICES, digest=digest_rule(NOW))
    state = WatchState(topups_baselined=True, last_balance=D(2000))

    outcome = run(rules, state, balance(900, TP_1), seen=frozenset())

    assert [(p.kind, p.channel) for p in outcome.posts] == [
        (PostKind.ALERT, ALERTS),
        (PostKind.TOPUP, TOPUPS),
        (PostKind.DIGEST, DIGESTS),
    ]
    assert outcome.state == replace(
        state,
        armed=False,
        crossings=1,
        last_balance=D(900),
        digest_last_at=NOW,
        digest_last_balance=D(900),
    )


def test_evaluate_does_not_change_the_state_it_was_given() -> None:
    state = WatchState(last_balance=D(2000))

    run(Rules(alert=ALERT, topups=NOTICES), state, balance(1, TP_1))

    assert state == WatchState(last_balance=D(2000))


# --- Rules ---------------------------------------------------------------------------------------


def test_rules_empty() -> None:
    assert Rules().empty is True
    assert Rules(alert=ALERT).empty is False
    assert Rules(topups=NOTICES).empty is False
    assert Rules(digest=digest_rule()).empty is False


@pytest.mark.parametrize(
    ("rules", "admins"),
    [
        (Rules(), []),
        (Rules(alert=ALERT), [ADMIN]),
        (Rules(digest=digest_rule(), topups=NOTICES, alert=ALERT), [ADMIN, "UADMIN002", "UADMIN003"]),
        (Rules(digest=digest_rule(), topups=NOTICES), ["UADMIN002", "UADMIN003"]),
        (
            Rules(
                alert=AlertRule(D(1), ALERTS, "U2"),
                topups=TopupRule(TOPUPS, "U1"),
                digest=replace(digest_rule(), set_by="U2"),
            ),
            ["U2", "U1"],
        ),
        (
            Rules(alert=AlertRule(D(1), ALERTS, "U1"), topups=TopupRule(TOPUPS, "U1")),
            ["U1"],
        ),
    ],
)
def test_admins_are_the_setters_alert_first_without_repeats(rules: Rules, admins: list[str]) -> None:
    assert rules.admins() == admins


def test_admins_leave_out_unknown_setters() -> None:
    rules = Rules(alert=AlertRule(D(1), ALERTS, ""), topups=TopupRule(TOPUPS, "U1"))

    assert rules.admins() == ["U1"]
