"""The runway and spike alerts through the worker's pass, on a clock the test moves by hand.

Breeze (its balance, and its metering of the requests each test gives it) and the Slack Web API are
the loopback fakes of `test_worker`. Metering is read at most once per USAGE_REFRESH_SECONDS, here a
minute, and each pass comes five minutes after the last, so every check reads what the fake meters
now. Nothing here waits on real time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest

from bot.domain.balances import Workspace
from bot.domain.rules import Frequency
from tests.conftest import texts
from tests.fakes import USAGE_PATH, FakeMetering, FakeServer, Metered
from tests.integration.test_worker import (
    ADMIN,
    ALERTS,
    DIGESTS,
    INTERVAL,
    PAST_ANY_BACKOFF,
    Account,
    Bot,
    World,
    assert_alert,
    assert_block_kit,
    make_world,
)

WS = Workspace(None, "T0001")
RUNWAY = "C0RUNWAY01"
SPIKES = "C0SPIKES01"
OTHER_ADMIN = "U0ADMIN2"
# A Tuesday morning, UTC: the last 7 complete days are Tue Dec 1 to Mon Dec 7.
START = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
TODAY = START.date()
WEEK = [TODAY - timedelta(days=n) for n in range(7, 0, -1)]


def credits(amount: float) -> int:
    """Credits as Breeze meters them, in millicredits."""
    return int(amount * 1000)


def spending(
    world: World, metering: FakeMetering, balance: int, per_day: float = 100, days: list[date] = WEEK
) -> Account:
    """An account with `balance` credits that spent `per_day` on each of `days` (by default the 7
    complete days before today), with the `prod` key on `bluebell-v1-en`."""
    metering.spent(*(Metered(day, credits(per_day)) for day in days))
    return world.breeze.account(balance)


def spend_today(metering: FakeMetering, amount: float, on: date = TODAY) -> None:
    """`amount` credits spent on `on` by the `batch` key on `bluebell-v2-multi`."""
    metering.spent(
        Metered(on, credits(amount), key_id="key_batch", key_name="batch", model="bluebell-v2-multi")
    )


@pytest.fixture
def world(breeze: FakeServer, slack_api: FakeServer, database_url: str) -> World:
    return make_world(breeze, slack_api, database_url, START, usage_refresh_seconds=60)


def kind(post: dict[str, Any]) -> str:
    """What a post is, from its text fallback."""
    for prefix, name in (
        ("Breeze runway is short", "days"),
        ("Breeze runway recovered", "days recovery"),
        ("Breeze spend spike", "spike"),
        ("Breeze balance is low", "alert"),
        ("Breeze balance alerts need your attention", "fault"),
    ):
        if post["text"].startswith(prefix):
            return name
    raise AssertionError(f"unexpected post: {post['text']!r}")


def kinds(posts: list[dict[str, Any]]) -> list[str]:
    return [kind(p) for p in posts]


# --- the runway alert ------------------------------------------------------------------------------


def test_the_runway_alert_posts_once_under_n_days_recovers_above_n_plus_ten_percent_and_rearms(
    world: World, metering: FakeMetering
) -> None:
    account = spending(world, metering, 2000)  # 100 credits a day: the runway is the balance / 100 days

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_days(WS, 5, RUNWAY, ADMIN)
        await bot.run_pass()  # 20 days
        account.set(510)  # 5.1 days: not under 5
        await bot.next_pass()
        assert world.slack.posts() == []

        account.set(450)  # 4.5 days
        await bot.next_pass()
        [alert] = world.slack.posts()
        assert kind(alert) == "days"
        assert alert["channel"] == RUNWAY
        assert alert["text"] == (
            "Breeze runway is short: about 4.5 days left, until around Sat Dec 12 (alert under 5 days). "
            "Top up in Breeze."
        )
        assert_block_kit(alert)
        said = texts(alert)
        assert "*About 4.5 days of credits left*, under the alert of 5 days" in said
        assert "at 100 credits a day, the balance of 450 credits runs out around *Sat Dec 12*" in said
        assert "Most of the last 7 days' spend: key *prod*, model *bluebell-v1-en*." in said
        assert "I'll say when the runway is back above 5.5 days" in said

        for balance in (400, 100, 520, 549):  # still under 5.5 days: quiet
            account.set(balance)
            await bot.next_pass()
        assert len(world.slack.posts()) == 1

        account.set(550)  # 5.5 days: N plus 10 %
        await bot.next_pass()
        posts = world.slack.posts(RUNWAY)
        assert kinds(posts) == ["days", "days recovery"]
        assert posts[1]["text"] == "Breeze runway recovered: about 5.5 days left (alert under 5 days)."
        assert "The runway alert is armed again." in texts(posts[1])

        account.set(700)  # armed, above: quiet
        await bot.next_pass()
        account.set(300)  # under again: the next crossing alerts again
        await bot.next_pass()
        await bot.next_pass()
        assert kinds(world.slack.posts()) == ["days", "days recovery", "days"]
        assert "about 3 days left" in world.slack.posts()[2]["text"]
        assert world.slack.posts(RUNWAY) == world.slack.posts()

    world.run(scenario)


def test_without_spend_in_the_week_there_is_no_runway_and_no_alert(
    world: World, metering: FakeMetering
) -> None:
    account = world.breeze.account(10)
    spend_today(metering, 50)  # today does not count: the week is the 7 complete days before it

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_days(WS, 5, RUNWAY, ADMIN)
        await bot.run_pass()
        account.set(1)
        await bot.next_pass()
        assert world.slack.posts() == []
        watch = await bot.watch.watch(WS)
        assert watch is not None
        assert (watch.state.days_armed, watch.state.days_crossings) == (True, 0)

    world.run(scenario)


def test_a_fired_runway_alert_does_not_recover_when_the_metering_goes_away(
    world: World, metering: FakeMetering
) -> None:
    account = spending(world, metering, 200)

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_days(WS, 5, RUNWAY, ADMIN)
        await bot.run_pass()
        assert kinds(world.slack.posts()) == ["days"]
        metering.unavailable(404)
        account.set(100_000)
        await bot.run_pass(after=3 * 3600)  # past any metering kept from before
        await bot.next_pass()
        assert kinds(world.slack.posts()) == ["days"]
        watch = await bot.watch.watch(WS)
        assert watch is not None
        assert (watch.state.days_armed, watch.state.days_crossings) == (False, 1)

    world.run(scenario)


def test_a_runway_alert_turned_off_and_on_again_alerts_again(world: World, metering: FakeMetering) -> None:
    spending(world, metering, 200)

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_days(WS, 5, RUNWAY, ADMIN)
        await bot.run_pass()
        await bot.watch.clear_days(WS)  # the workspace's only rule: `alert days off`
        await bot.next_pass()
        await bot.watch.set_days(WS, 5, RUNWAY, ADMIN)  # still under
        await bot.run_pass(after=60)
        assert kinds(world.slack.posts()) == ["days", "days"]

    world.run(scenario)


def test_a_runway_rule_set_while_already_under_alerts_at_once_and_again_when_set_again(
    world: World, metering: FakeMetering
) -> None:
    spending(world, metering, 150)  # 1.5 days

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_spike(WS, Decimal(3), SPIKES, ADMIN)  # another rule, which stays
        await bot.watch.set_days(WS, 3, RUNWAY, ADMIN)
        await bot.run_pass()
        [alert] = world.slack.posts()
        assert "about 1.5 days left, until around Wed Dec 9 (alert under 3 days)" in alert["text"]
        await bot.next_pass()
        assert len(world.slack.posts()) == 1

        await bot.watch.set_days(WS, 2, RUNWAY, ADMIN)  # changed: armed afresh, and still under
        await bot.run_pass(after=60)
        posts = world.slack.posts()
        assert kinds(posts) == ["days", "days"]
        assert "(alert under 2 days)" in posts[1]["text"]

    world.run(scenario)


def test_a_waiting_runway_alert_is_dropped_when_it_is_turned_off(
    world: World, metering: FakeMetering
) -> None:
    spending(world, metering, 200)
    world.slack.refusing[RUNWAY] = "not_in_channel"

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_spike(WS, Decimal(3), SPIKES, ADMIN)  # another rule stays
        await bot.watch.set_days(WS, 5, RUNWAY, OTHER_ADMIN)
        await bot.run_pass()
        [dm] = world.slack.posts()
        assert kind(dm) == "fault"
        assert dm["channel"] == OTHER_ADMIN  # the admin who set the runway alert
        assert f"<#{RUNWAY}>" in dm["text"]

        await bot.watch.clear_days(WS)  # `alert days off`, before the channel works again
        del world.slack.refusing[RUNWAY]
        for _ in range(2):
            await bot.run_pass(after=PAST_ANY_BACKOFF)
        assert (world.slack.attempts(RUNWAY), kinds(world.slack.posts())) == (1, ["fault"])

    world.run(scenario)


# --- the spike alert -------------------------------------------------------------------------------


def test_a_spike_posts_once_on_a_spiking_day_and_again_on_the_next(
    world: World, metering: FakeMetering
) -> None:
    spending(world, metering, 100_000)  # the usual day: 100 credits

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_spike(WS, Decimal(3), SPIKES, ADMIN)
        spend_today(metering, 250)
        await bot.run_pass()
        assert world.slack.posts() == []

        spend_today(metering, 175)  # 425 today: 4.25 times the usual day
        await bot.next_pass()
        [spike] = world.slack.posts(SPIKES)
        assert world.slack.posts() == [spike]
        assert spike["text"] == "Breeze spend spike: 425 credits today, 4.2x the usual day (alert over 3x)."
        assert_block_kit(spike)
        said = texts(spike)
        assert "*Breeze spend today is 4.2x the usual day*: 425 credits so far" in said
        assert (
            "425 credits so far, against 100 credits a day on average over the last 7 complete days" in said
        )
        assert "Most of today's spend: key *batch*, model *bluebell-v2-multi*." in said

        spend_today(metering, 2000)  # more the same day: no second post
        for _ in range(3):
            await bot.next_pass()
        await bot.run_pass(after=8 * 3600)
        assert len(world.slack.posts()) == 1

        tomorrow = TODAY + timedelta(days=1)
        bot.clock.set(datetime(2026, 12, 9, 0, 30, tzinfo=UTC))
        await bot.run_pass()  # the usual day is now (6 x 100 + 2425) / 7 = 432.14 credits
        spend_today(metering, 1200, on=tomorrow)  # 2.78 times
        await bot.next_pass()
        assert len(world.slack.posts()) == 1
        spend_today(metering, 300, on=tomorrow)  # 1,500: 3.47 times
        await bot.next_pass()
        posts = world.slack.posts()
        assert kinds(posts) == ["spike", "spike"]
        assert (
            posts[1]["text"] == "Breeze spend spike: 1,500 credits today, 3.4x the usual day (alert over 3x)."
        )
        await bot.next_pass()
        assert len(world.slack.posts()) == 2

    world.run(scenario)


def test_no_spike_without_three_days_of_history(world: World, metering: FakeMetering) -> None:
    spending(world, metering, 100_000, days=WEEK[-2:])  # only two of the 7 days spent anything

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_spike(WS, Decimal("1.5"), SPIKES, ADMIN)
        spend_today(metering, 5000)
        await bot.run_pass()
        await bot.next_pass()
        assert world.slack.posts() == []

        metering.spent(Metered(WEEK[0], credits(1)))  # a third day: the baseline is there
        await bot.next_pass()
        assert kinds(world.slack.posts()) == ["spike"]

    world.run(scenario)


def test_no_spike_under_ten_credits(world: World, metering: FakeMetering) -> None:
    spending(world, metering, 100_000, per_day=1)

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_spike(WS, Decimal(3), SPIKES, ADMIN)
        spend_today(metering, 9.999)  # almost ten times the usual day, but under 10 credits
        await bot.run_pass()
        assert world.slack.posts() == []
        spend_today(metering, 0.001)
        await bot.next_pass()
        assert kinds(world.slack.posts()) == ["spike"]

    world.run(scenario)


# --- without metering ------------------------------------------------------------------------------


def test_with_metering_answering_404_the_other_rules_work_as_before(world: World, breeze: FakeServer) -> None:
    account = world.breeze.account(2000)  # no `metering` fixture: both endpoints answer 404

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_alert(WS, Decimal("1500"), ALERTS, ADMIN)
        await bot.watch.set_days(WS, 90, RUNWAY, ADMIN)
        await bot.watch.set_spike(WS, Decimal("1.5"), SPIKES, ADMIN)
        await bot.run_pass()
        account.set(1400)
        report = await bot.next_pass()
        assert report.failed == 0
        [alert] = world.slack.posts()
        assert_alert(alert, "1,400", "1,500")
        account.set(1)
        await bot.next_pass()
        assert len(world.slack.posts()) == 1
        watch = await bot.watch.watch(WS)
        assert watch is not None
        assert (watch.failures, watch.fault) == (0, None)
        assert (watch.state.days_armed, watch.state.spike_last_day) == (True, None)
        assert breeze.received("GET", USAGE_PATH)  # it asked, and stepped aside

    world.run(scenario)


def test_metering_is_not_read_for_a_workspace_with_only_top_up_notices(
    world: World, metering: FakeMetering
) -> None:
    spending(world, metering, 1000)

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_topups(WS, ALERTS, ADMIN)
        await bot.run_pass()
        await bot.next_pass()
        assert metering.calls() == []

    world.run(scenario)


# --- the low-balance alert and the digest, from metering -------------------------------------------


def test_a_daily_digest_shows_the_metered_runway_with_its_date_and_yesterdays_spend_and_who_spent_it(
    world: World, metering: FakeMetering
) -> None:
    spending(world, metering, 2000)  # 100 credits a day by `prod`
    spend_today(metering, 300, on=WEEK[-1])  # and 300 more yesterday, by `batch`: 1,000 in the week

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_digest(WS, Frequency.DAILY, time(9, 30), "UTC", DIGESTS, ADMIN)
        await bot.run_pass()
        assert world.slack.posts() == []
        await bot.run_pass(after=31 * 60)  # 09:31 UTC
        [digest] = world.slack.posts()
        runway = (
            "about 14 days left, until around Tue Dec 22, at 143 credits a day "
            "(an estimate from the last 7 complete days of Breeze's metering)"
        )
        assert digest["text"] == f"Breeze daily digest: 2,000 credits; {runway}"
        assert_block_kit(digest)
        said = texts(digest)
        assert f"*Runway:* A{runway[1:]}" in said
        assert (
            "*Spent on Mon Dec 7, 2026 (UTC):* 400 credits, most by key *batch*, model *bluebell-v2-multi*"
        ) in said

    world.run(scenario)


def test_a_weekly_digest_shows_the_spend_of_the_last_seven_complete_days(
    world: World, metering: FakeMetering
) -> None:
    spending(world, metering, 2000)
    spend_today(metering, 300, on=WEEK[-1])
    world.clock.now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # Monday: the week is Nov 30 to Dec 6

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_digest(WS, Frequency.WEEKLY, time(9, 30), "UTC", DIGESTS, ADMIN)
        await bot.run_pass()
        await bot.run_pass(after=31 * 60)
        [digest] = world.slack.posts()
        said = texts(digest)
        assert (
            "*Spent in Nov 30 – Dec 6, 2026 (UTC):* 600 credits, most by key *prod*, model *bluebell-v1-en*"
            in said
        )
        assert "about 23.3 days left, until around Wed Dec 30, at 86 credits a day" in said

    world.run(scenario)


def test_a_low_balance_alert_shows_the_metered_runway_with_its_date(
    world: World, metering: FakeMetering
) -> None:
    spending(world, metering, 1400)  # 100 credits a day, and already under the alert when it is set

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_alert(WS, Decimal("1500"), ALERTS, ADMIN)
        await bot.run_pass(after=INTERVAL + 1)
        [alert] = world.slack.posts()
        assert_alert(alert, "1,400", "1,500")
        assert (
            ":hourglass: About 14 days left, until around Tue Dec 22, at 100 credits a day "
            "(an estimate from the last 7 complete days of Breeze's metering)."
        ) in texts(alert)
        assert "At the current rate" not in texts(alert)

    world.run(scenario)
