"""The worker's pass in-process, on a clock the test moves by hand.

Breeze and the Slack Web API are the loopback fakes. Each test scripts what Breeze says (the
balance, its top-ups, a rejected key) and what Slack answers to `chat.postMessage`, sets rules
straight through `WatchService`, moves the clock and runs `Worker.run_pass()`; then it counts what
arrived in which channel. Nothing here waits on real time.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from bot.adapters.watch.tables import topups_table
from bot.config import Settings
from bot.deps import Deps, open_deps
from bot.domain.balances import Balance, Workspace
from bot.domain.rules import Frequency
from bot.domain.runway import BURNING, UNKNOWN
from bot.services.watching import LEASE
from bot.services.worker import PassReport, run_until_signalled
from tests.conftest import API_KEY, AppFactory, make_settings, texts
from tests.fakes import FakeServer, Recorded, Reply

WS = Workspace(None, "T0001")
ADMIN = "U0ADMIN"
ALERTS = "C0ALERTS01"
TOPUPS = "C0TOPUPS1"
DIGESTS = "C0DIGEST1"
INTERVAL = 300
NEW_YORK = "America/New_York"
POST_PATH = "/api/chat.postMessage"
# A Monday in January: New York is at UTC-5, so 09:00 there is 14:00 UTC.
MONDAY = datetime(2026, 1, 12, 13, 30, tzinfo=UTC)
# Longer than any backoff (checks and posts both cap at 30 minutes).
PAST_ANY_BACKOFF = 1801
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


# --- the clock and the fakes' scripts --------------------------------------------------------------


@dataclass
class Clock:
    """The one clock the watch service, the outbox and the worker read; moved only by the test."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def set(self, moment: datetime) -> None:
        assert moment >= self.now, "the clock only moves forward"
        self.now = moment


@dataclass
class Account:
    """What Breeze says for one API key: a balance and its top-ups, or that the key is rejected."""

    balance: Decimal
    topups: list[dict[str, Any]] = field(default_factory=list)
    rejected: bool = False

    def set(self, balance: int | str) -> None:
        self.balance = Decimal(balance)

    def top_up(self, topup_id: str, amount: int, at: datetime) -> None:
        """A new succeeded top-up that adds `amount` to the balance."""
        self.topups.insert(0, topup(topup_id, amount, at))
        self.balance += amount

    def reply(self) -> Reply:
        if self.rejected:
            body = {"ok": False, "code": "AUTH_INVALID_SESSION", "detail": "The API key is not valid."}
            return Reply(401, body)
        body = {
            "balance": float(self.balance),
            "balance_millicredits": int(self.balance * 1000),
            "topups": list(self.topups),
        }
        return Reply(200, body, {"x-breeze-api-key-id": "key_abc123"})


def topup(topup_id: str, amount: int, at: datetime, status: str = "succeeded") -> dict[str, Any]:
    return {"topup_id": topup_id, "amount": amount, "status": status, "created_at": at.isoformat()}


class FakeBreeze:
    """GET /v1/balance answered per `xi-api-key`; an unknown key is rejected."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.accounts: dict[str, Account] = {}
        server.route("GET", "/v1/balance", self._answer)

    def account(self, balance: int | str, key: str = API_KEY) -> Account:
        self.accounts[key] = Account(Decimal(balance))
        return self.accounts[key]

    def calls(self, key: str = API_KEY) -> int:
        """How many times Breeze was asked with `key`."""
        return sum(
            1 for r in self.server.received("GET", "/v1/balance") if r.headers.get("xi-api-key") == key
        )

    def _answer(self, request: Recorded) -> Reply:
        account = self.accounts.get(request.headers.get("xi-api-key", ""))
        return account.reply() if account is not None else Account(Decimal(0), rejected=True).reply()


class FakeSlack:
    """chat.postMessage: accepted posts are kept; a channel (or every channel) can refuse with an error."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.refusing: dict[str, str] = {}
        self.refuse_all: str | None = None
        self._accepted: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        server.route("POST", POST_PATH, self._answer)

    def _answer(self, request: Recorded) -> Reply:
        body = request.json()
        error = self.refuse_all or self.refusing.get(body["channel"])
        if error:
            return Reply(200, {"ok": False, "error": error})
        with self._lock:
            self._accepted.append(body)
        return Reply(200, {"ok": True, "channel": body["channel"], "ts": "1.2"})

    def ratelimit_next(self, retry_after: int) -> None:
        """The next chat.postMessage answers 429 with `Retry-After`."""
        self.server.queue(
            "POST",
            POST_PATH,
            Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)}),
        )

    def posts(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Posts Slack accepted (to `channel`), oldest first."""
        with self._lock:
            return [p for p in self._accepted if channel is None or p["channel"] == channel]

    def attempts(self, channel: str | None = None) -> int:
        """Every chat.postMessage call (to `channel`), accepted or not."""
        calls = [r.json() for r in self.server.received("POST", POST_PATH)]
        return sum(1 for body in calls if channel is None or body["channel"] == channel)


def kind(post: dict[str, Any]) -> str:
    """What a post is, from its text fallback."""
    text = post["text"]
    for prefix, name in (
        ("Breeze balance is low", "alert"),
        ("Breeze balance recovered", "recovery"),
        ("New Breeze top-up", "topup"),
        ("Breeze daily digest", "digest"),
        ("Breeze weekly digest", "weekly digest"),
        ("Breeze balance alerts need your attention", "fault"),
    ):
        if text.startswith(prefix):
            return name
    raise AssertionError(f"unexpected post: {text!r}")


def kinds(posts: list[dict[str, Any]]) -> list[str]:
    return [kind(p) for p in posts]


def assert_block_kit(post: dict[str, Any]) -> None:
    """Block Kit with a plain-text fallback that says the same thing."""
    assert isinstance(post["blocks"], list)
    assert post["blocks"], post
    assert all(isinstance(b, dict) and b.get("type") for b in post["blocks"])
    assert post["text"].strip()


def assert_alert(post: dict[str, Any], balance: str, threshold: str, channel: str = ALERTS) -> None:
    assert kind(post) == "alert"
    assert post["channel"] == channel
    assert f"{balance} credits" in post["text"]
    assert f"alert below {threshold} credits" in post["text"]
    assert_block_kit(post)
    assert f"{balance} credits" in texts(post)
    assert f"below the alert threshold of {threshold} credits" in texts(post)


def assert_recovery(post: dict[str, Any], balance: str, threshold: str, channel: str = ALERTS) -> None:
    assert kind(post) == "recovery"
    assert post["channel"] == channel
    assert f"recovered: {balance} credits (alert below {threshold} credits)" in post["text"]
    assert_block_kit(post)


# --- running the worker ----------------------------------------------------------------------------


class Bot:
    """The opened deps, and passes of the worker at the test's clock."""

    def __init__(self, deps: Deps, clock: Clock) -> None:
        self.deps = deps
        self.watch = deps.watch
        self.clock = clock

    async def run_pass(self, *, after: float = 0, everything: bool = False) -> PassReport:
        """Move the clock on by `after` seconds and run one pass."""
        self.clock.advance(after)
        return await self.deps.worker.run_pass(everything=everything)

    async def next_pass(self) -> PassReport:
        """The pass after the next check is due."""
        return await self.run_pass(after=INTERVAL + 1)


@dataclass
class World:
    breeze: FakeBreeze
    slack: FakeSlack
    clock: Clock
    settings: Settings

    def run(self, scenario: Callable[[Bot], Awaitable[None]]) -> None:
        async def go() -> None:
            async with open_deps(self.settings, now=self.clock) as deps:
                await scenario(Bot(deps, self.clock))

        asyncio.run(go())


def make_world(
    breeze: FakeServer, slack_api: FakeServer, database_url: str, start: datetime = MONDAY, **overrides: Any
) -> World:
    settings = make_settings(
        breeze,
        slack_api,
        database_url=database_url,
        alert_interval_seconds=INTERVAL,
        breeze_cache_seconds=0,
        **overrides,
    )
    return World(FakeBreeze(breeze), FakeSlack(slack_api), Clock(start), settings)


@pytest.fixture
def world(breeze: FakeServer, slack_api: FakeServer, database_url: str) -> World:
    return make_world(breeze, slack_api, database_url)


# --- 1. one alert per crossing ---------------------------------------------------------------------


def test_one_alert_per_crossing_then_a_recovery_then_an_alert_again(
    breeze: FakeServer, slack_api: FakeServer, any_database: str
) -> None:
    world = make_world(breeze, slack_api, any_database)
    account = world.breeze.account(2000)

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_alert(WS, Decimal("1500"), ALERTS, ADMIN)
        await bot.run_pass()
        assert world.slack.posts() == []

        account.set(1400)
        await bot.next_pass()
        [alert] = world.slack.posts()
        assert_alert(alert, "1,400", "1,500")

        for balance in (1300, 1200, 1250, 1100):  # still below, even when it rises a little
            account.set(balance)
            await bot.next_pass()
        assert len(world.slack.posts()) == 1

        account.set(1700)  # at least the threshold plus 10 %
        await bot.next_pass()
        assert kinds(world.slack.posts()) == ["alert", "recovery"]
        assert_recovery(world.slack.posts()[1], "1,700", "1,500")

        account.set(1600)  # still above: armed, silent
        await bot.next_pass()
        account.set(1450)
        await bot.next_pass()
        posts = world.slack.posts()
        assert kinds(posts) == ["alert", "recovery", "alert"]
        assert_alert(posts[2], "1,450", "1,500")
        await bot.next_pass()
        assert len(world.slack.posts()) == 3
        assert world.breeze.calls() == 10  # one check a pass, every pass
        assert world.slack.attempts() == 3

    world.run(scenario)


def test_a_rule_set_while_already_below_alerts_on_the_first_check(world: World) -> None:
    world.breeze.account(900)

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_alert(WS, Decimal("1500"), ALERTS, ADMIN)
        assert world.slack.posts() == []  # setting the rule posts nothing itself
        await bot.run_pass()
        [alert] = world.slack.posts()
        assert_alert(alert, "900", "1,500")
        await bot.next_pass()
        await bot.next_pass()
        assert len(world.slack.posts()) == 1

    world.run(scenario)


def test_a_rise_that_stays_below_the_threshold_does_not_recover(world: World) -> None:
    account = world.breeze.account(1400)

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_alert(WS, Decimal("1500"), ALERTS, ADMIN)
        await bot.run_pass()
        account.top_up("tp_small", 50, bot.clock.now)  # 1450: still below
        await bot.next_pass()
        assert kinds(world.slack.posts()) == ["alert"]
        watch = await bot.watch.watch(WS)
        assert watch is not None
        assert not watch.state.armed

    world.run(scenario)


def test_a_top_up_that_lifts_the_balance_above_the_threshold_recovers(world: World) -> None:
    account = world.breeze.account(1400)

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_alert(WS, Decimal("1500"), ALERTS, ADMIN)
        await bot.run_pass()
        account.top_up("tp_1", 200, bot.clock.now)  # 1600: above 1500, below 1650
        await bot.next_pass()
        posts = world.slack.posts()
        assert kinds(posts) == ["alert", "recovery"]
        assert_recovery(posts[1], "1,600", "1,500")
        account.set(1450)  # re-armed: the next drop alerts again
        await bot.next_pass()
        assert kinds(world.slack.posts()) == ["alert", "recovery", "alert"]

    world.run(scenario)


def test_a_balance_wobbling_around_the_threshold_without_top_ups_alerts_once(world: World) -> None:
    account = world.breeze.account(1490)

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_alert(WS, Decimal("1500"), ALERTS, ADMIN)
        await bot.run_pass()
        for balance in (1510, 1490, 1510, 1490):  # no top-up: usage and refunds, inside the band
            account.set(balance)
            await bot.next_pass()
        assert kinds(world.slack.posts()) == ["alert"]

    world.run(scenario)


def test_an_alert_turned_off_and_on_again_alerts_again(world: World) -> None:
    world.breeze.account(1000)

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_alert(WS, Decimal("1500"), ALERTS, ADMIN)
        await bot.run_pass()
        assert kinds(world.slack.posts()) == ["alert"]
        await bot.watch.clear_alert(WS)  # the workspace's only rule: `alert off`
        await bot.next_pass()
        await bot.watch.set_alert(WS, Decimal("1500"), ALERTS, ADMIN)  # `alert 1500` again, still below
        await bot.run_pass(after=60)
        assert kinds(world.slack.posts()) == ["alert", "alert"]

    world.run(scenario)


# --- 2. top-up notices -----------------------------------------------------------------------------


def test_each_new_top_up_is_announced_once_and_old_ones_never(world: World) -> None:
    account = world.breeze.account(2000)
    account.topups = [
        topup("tp_old2", 300, MONDAY - timedelta(days=2)),
        topup("tp_old1", 500, MONDAY - timedelta(days=9)),
    ]

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_topups(WS, TOPUPS, ADMIN)
        await bot.run_pass()
        await bot.next_pass()
        assert world.slack.posts() == []

        account.top_up("tp_new1", 250, bot.clock.now)
        await bot.next_pass()
        [notice] = world.slack.posts()
        assert kind(notice) == "topup"
        assert notice["channel"] == TOPUPS
        assert notice["text"] == "New Breeze top-up: +250 credits (succeeded); balance now 2,250 credits"
        assert_block_kit(notice)
        assert "tp_new1" in texts(notice)

        await bot.next_pass()
        await bot.next_pass()
        assert len(world.slack.posts()) == 1

        account.top_up("tp_new2", 1000, bot.clock.now)
        await bot.next_pass()
        await bot.next_pass()
        posts = world.slack.posts(TOPUPS)
        assert kinds(posts) == ["topup", "topup"]
        assert "+1,000 credits" in posts[1]["text"]
        assert "3,250 credits" in posts[1]["text"]
        assert world.slack.posts() == posts

    world.run(scenario)


def test_top_ups_there_when_breeze_failed_at_turn_on_are_not_announced(world: World) -> None:
    account = world.breeze.account(2000)
    account.topups = [topup("tp_old", 300, MONDAY - timedelta(days=2))]
    account.rejected = True

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_topups(WS, TOPUPS, ADMIN)  # cannot read Breeze: the worker takes the baseline
        account.rejected = False
        await bot.run_pass()
        assert world.slack.posts() == []
        account.top_up("tp_new", 100, bot.clock.now)
        await bot.next_pass()
        assert kinds(world.slack.posts(TOPUPS)) == ["topup"]
        assert "+100 credits" in world.slack.posts()[0]["text"]

    world.run(scenario)


# --- 3. digests ------------------------------------------------------------------------------------


def test_a_daily_digest_at_nine_in_new_york(world: World) -> None:
    account = world.breeze.account(5000)

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_digest(WS, Frequency.DAILY, time(9, 0), NEW_YORK, DIGESTS, ADMIN)
        await bot.run_pass()  # 13:30 UTC is 08:30 in New York
        assert world.slack.posts() == []

        bot.clock.set(datetime(2026, 1, 12, 14, 1, tzinfo=UTC))  # 09:01 in New York
        await bot.run_pass()
        [digest] = world.slack.posts()
        assert kind(digest) == "digest"
        assert digest["channel"] == DIGESTS
        assert digest["text"].startswith("Breeze daily digest: 5,000 credits")
        assert_block_kit(digest)
        assert "*Balance:* 5,000 credits" in texts(digest)
        assert "Change since" not in texts(digest)  # nothing to compare the first one with

        account.set(4200)
        for _ in range(3):  # the rest of the day
            await bot.run_pass(after=3 * 3600)
        assert len(world.slack.posts()) == 1

        bot.clock.set(datetime(2026, 1, 13, 14, 1, tzinfo=UTC))
        await bot.run_pass()
        await bot.run_pass(after=INTERVAL + 1)
        posts = world.slack.posts(DIGESTS)
        assert kinds(posts) == ["digest", "digest"]
        assert posts[1]["text"].startswith("Breeze daily digest: 4,200 credits")
        assert "*Change since yesterday's digest:* -800 credits" in texts(posts[1])
        assert world.slack.posts() == posts

    world.run(scenario)


def test_a_digest_set_just_after_its_time_waits_for_the_next_day(world: World) -> None:
    world.breeze.account(5000)
    start = datetime(2026, 1, 12, 14, 0, 30, tzinfo=UTC)  # 09:00:30 in New York

    async def scenario(bot: Bot) -> None:
        bot.clock.set(start)
        await bot.watch.set_digest(WS, Frequency.DAILY, time(9, 0), NEW_YORK, DIGESTS, ADMIN)
        await bot.run_pass()
        await bot.run_pass(after=23 * 3600)  # 13:00:30 UTC the next day: 08:00 in New York
        assert world.slack.posts() == []
        bot.clock.set(datetime(2026, 1, 13, 14, 0, 1, tzinfo=UTC))
        await bot.run_pass()
        assert kinds(world.slack.posts()) == ["digest"]

    world.run(scenario)


def test_a_weekly_digest_comes_only_on_mondays(world: World) -> None:
    account = world.breeze.account(9000)
    world.clock.now = datetime(2026, 1, 10, 14, 30, tzinfo=UTC)  # a Saturday

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_digest(WS, Frequency.WEEKLY, time(9, 0), NEW_YORK, DIGESTS, ADMIN)
        await bot.run_pass()
        bot.clock.set(datetime(2026, 1, 11, 14, 1, tzinfo=UTC))  # Sunday
        await bot.run_pass()
        assert world.slack.posts() == []

        bot.clock.set(datetime(2026, 1, 12, 14, 1, tzinfo=UTC))  # Monday, 09:01 in New York
        await bot.run_pass()
        [digest] = world.slack.posts()
        assert digest["text"].startswith("Breeze weekly digest: 9,000 credits")
        assert digest["channel"] == DIGESTS
        assert_block_kit(digest)

        account.set(7500)
        for day in range(13, 19):  # Tuesday to Sunday
            bot.clock.set(datetime(2026, 1, day, 14, 1, tzinfo=UTC))
            await bot.run_pass()
        assert len(world.slack.posts()) == 1

        bot.clock.set(datetime(2026, 1, 19, 14, 1, tzinfo=UTC))  # the next Monday
        await bot.run_pass()
        await bot.run_pass(after=INTERVAL + 1)
        posts = world.slack.posts()
        assert kinds(posts) == ["weekly digest", "weekly digest"]
        assert "*Change since last week's digest:* -1,500 credits" in texts(posts[1])

    world.run(scenario)


# --- 4. runway -------------------------------------------------------------------------------------


def test_a_day_of_checks_gives_the_runway_in_the_alert_and_the_digest(world: World) -> None:
    account = world.breeze.account(3000)
    six_hours = 6 * 3600

    async def scenario(bot: Bot) -> None:
        bot.clock.set(datetime(2026, 1, 12, 14, 30, tzinfo=UTC))  # just after Monday's 09:00 in New York
        await bot.watch.set_alert(WS, Decimal("2650"), ALERTS, ADMIN)
        await bot.watch.set_digest(WS, Frequency.DAILY, time(9, 0), NEW_YORK, DIGESTS, ADMIN)
        await bot.run_pass()
        for _ in range(3):  # 18 hours of checks, 100 credits used every 6 hours
            account.set(account.balance - 100)
            await bot.run_pass(after=six_hours)
        assert world.slack.posts() == []
        early = await bot.watch.trend(WS)
        assert early is not None
        assert early.runway.status == UNKNOWN  # under a day of history

        account.set(account.balance - 100)  # 2,600 after 24 h: below 2,650, and Tuesday's digest is due
        await bot.run_pass(after=six_hours)
        [alert] = world.slack.posts(ALERTS)
        assert_alert(alert, "2,600", "2,650")
        assert "At the current rate: about 6.5 days left at 400 credits a day." in texts(alert)

        [digest] = world.slack.posts(DIGESTS)
        assert (
            digest["text"] == "Breeze daily digest: 2,600 credits; about 6.5 days left at 400 credits a day"
        )
        assert "*Runway:* About 6.5 days left at 400 credits a day" in texts(digest)
        assert "*Last 7 days:*" in texts(digest)
        assert world.breeze.server.received("GET", "/v1/usage")  # asked Breeze's metering, which 404s

        trend = await bot.watch.trend(WS)
        assert trend is not None
        assert trend.runway.status == BURNING
        assert trend.runway.burn_per_day == Decimal("400.000")
        assert trend.runway.days_left == Decimal("6.5")
        assert trend.sparkline

    world.run(scenario)


# --- 5. a key Breeze rejects -----------------------------------------------------------------------


def test_a_rejected_key_is_told_once_by_dm_retried_and_the_alert_works_once_accepted(world: World) -> None:
    account = world.breeze.account(1000)
    account.rejected = True

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_alert(WS, Decimal("1500"), ALERTS, ADMIN)
        report = await bot.run_pass()
        assert report.failed == 1
        [dm] = world.slack.posts()
        assert kind(dm) == "fault"
        assert dm["channel"] == ADMIN
        assert "Breeze rejected this workspace's API key" in dm["text"]
        assert "set-key" in dm["text"]
        assert_block_kit(dm)
        watch = await bot.watch.watch(WS)
        assert watch is not None
        assert watch.fault == "breeze:KEY_REJECTED"

        await bot.run_pass(after=INTERVAL + 1)  # backing off: not checked again yet
        assert world.breeze.calls() == 1
        for _ in range(4):
            await bot.run_pass(after=PAST_ANY_BACKOFF)
        assert world.breeze.calls() == 5  # retried after each backoff
        assert world.slack.posts() == [dm]  # one DM, not one per failed check
        assert world.slack.attempts(ALERTS) == 0

        account.rejected = False
        await bot.run_pass(after=PAST_ANY_BACKOFF)
        posts = world.slack.posts()
        assert kinds(posts) == ["fault", "alert"]
        assert_alert(posts[1], "1,000", "1,500")
        await bot.next_pass()
        assert len(world.slack.posts()) == 2
        watch = await bot.watch.watch(WS)
        assert watch is not None
        assert watch.fault is None
        assert watch.failures == 0

    world.run(scenario)


# --- 6.-8. Slack refusing posts --------------------------------------------------------------------


def test_a_channel_that_refuses_is_told_once_and_the_alert_is_retried_until_it_arrives(world: World) -> None:
    world.breeze.account(1000)
    world.slack.refusing[ALERTS] = "not_in_channel"

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_alert(WS, Decimal("1500"), ALERTS, ADMIN)
        await bot.run_pass()
        [dm] = world.slack.posts()
        assert dm["channel"] == ADMIN
        assert kind(dm) == "fault"
        assert "/invite" in dm["text"]
        assert f"<#{ALERTS}>" in dm["text"]
        assert_block_kit(dm)
        assert world.slack.attempts(ALERTS) == 1

        await bot.run_pass(after=10)  # the retry is not due yet
        assert world.slack.attempts(ALERTS) == 1
        for attempt in range(2, 5):
            await bot.run_pass(after=PAST_ANY_BACKOFF)
            assert world.slack.attempts(ALERTS) == attempt
        assert world.slack.posts() == [dm]  # no second DM
        watch = await bot.watch.watch(WS)
        assert watch is not None
        assert watch.post_faults == {ALERTS: "slack:not_in_channel"}

        del world.slack.refusing[ALERTS]  # the admin invited the app
        await bot.run_pass(after=PAST_ANY_BACKOFF)
        await bot.run_pass(after=PAST_ANY_BACKOFF)
        posts = world.slack.posts()
        assert kinds(posts) == ["fault", "alert"]
        assert_alert(posts[1], "1,000", "1,500")
        assert world.slack.attempts(ALERTS) == 5
        watch = await bot.watch.watch(WS)
        assert watch is not None
        assert watch.post_faults == {}

    world.run(scenario)


def test_posts_that_work_elsewhere_do_not_repeat_the_dm_about_a_refusing_channel(world: World) -> None:
    account = world.breeze.account(1000)
    world.slack.refusing[ALERTS] = "not_in_channel"

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_topups(WS, TOPUPS, ADMIN)
        await bot.watch.set_alert(WS, Decimal("1500"), ALERTS, ADMIN)
        await bot.run_pass()
        for n in range(3):  # top-ups keep arriving in their (working) channel
            account.top_up(f"tp_{n}", 10, bot.clock.now)
            await bot.run_pass(after=PAST_ANY_BACKOFF)
        assert len(world.slack.posts(TOPUPS)) == 3
        assert world.slack.attempts(ALERTS) == 4
        assert len(world.slack.posts(ADMIN)) == 1

    world.run(scenario)


def test_two_refusing_channels_are_each_told_once(world: World) -> None:
    account = world.breeze.account(1000)
    world.slack.refusing[ALERTS] = "not_in_channel"
    world.slack.refusing[TOPUPS] = "is_archived"

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_topups(WS, TOPUPS, ADMIN)
        await bot.watch.set_alert(WS, Decimal("1500"), ALERTS, ADMIN)
        account.top_up("tp_1", 10, bot.clock.now)
        await bot.run_pass()
        for _ in range(3):
            await bot.run_pass(after=PAST_ANY_BACKOFF)
        assert world.slack.attempts(ALERTS) == 4
        assert world.slack.attempts(TOPUPS) == 4
        assert len(world.slack.posts(ADMIN)) <= 2  # once per problem at most

    world.run(scenario)


def test_a_waiting_alert_follows_its_rule_to_a_new_channel(world: World) -> None:
    world.breeze.account(1000)
    world.slack.refusing[ALERTS] = "not_in_channel"
    better = "C0BETTER01"

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_alert(WS, Decimal("1500"), ALERTS, ADMIN)
        await bot.run_pass()
        await bot.watch.set_alert(WS, Decimal("1500"), better, ADMIN)  # the fix the DM suggests
        await bot.run_pass(after=PAST_ANY_BACKOFF)
        await bot.run_pass(after=PAST_ANY_BACKOFF)
        [alert] = world.slack.posts(better)
        assert_alert(alert, "1,000", "1,500", channel=better)
        assert world.slack.attempts(ALERTS) == 1
        assert kinds(world.slack.posts()) == ["fault", "alert"]

    world.run(scenario)


def test_a_waiting_alert_is_dropped_when_the_alert_is_turned_off(world: World) -> None:
    world.breeze.account(1000)
    world.slack.refusing[ALERTS] = "not_in_channel"

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_topups(WS, TOPUPS, ADMIN)  # another rule stays
        await bot.watch.set_alert(WS, Decimal("1500"), ALERTS, ADMIN)
        await bot.run_pass()
        await bot.watch.clear_alert(WS)
        del world.slack.refusing[ALERTS]
        await bot.run_pass(after=PAST_ANY_BACKOFF)
        await bot.run_pass(after=PAST_ANY_BACKOFF)
        assert world.slack.attempts(ALERTS) == 1
        assert kinds(world.slack.posts()) == ["fault"]

    world.run(scenario)


def test_a_waiting_alert_is_dropped_when_its_rule_was_the_last_one(world: World) -> None:
    world.breeze.account(1000)
    world.slack.refusing[ALERTS] = "not_in_channel"

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_alert(WS, Decimal("1500"), ALERTS, ADMIN)
        await bot.run_pass()
        await bot.watch.clear_alert(WS)  # `alert off`: no rules left
        del world.slack.refusing[ALERTS]
        await bot.run_pass(after=PAST_ANY_BACKOFF)
        assert world.slack.attempts(ALERTS) == 1
        assert kinds(world.slack.posts()) == ["fault"]

    world.run(scenario)


def test_a_revoked_token_does_not_stop_the_pass_and_posts_are_retried(world: World) -> None:
    world.breeze.account(1000)
    world.slack.refuse_all = "token_revoked"

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_alert(WS, Decimal("1500"), ALERTS, ADMIN)
        report = await bot.run_pass()
        assert report.checked == 1
        assert report.posted == 0
        assert world.slack.attempts(ALERTS) == 1
        assert world.slack.attempts(ADMIN) == 1  # the DM is tried, and refused too
        for attempt in range(2, 4):
            await bot.run_pass(after=PAST_ANY_BACKOFF)
            assert world.slack.attempts(ALERTS) == attempt
        assert world.slack.posts() == []
        dm_attempts = world.slack.attempts(ADMIN)
        assert dm_attempts == 3  # the DM gives up after three tries

        world.slack.refuse_all = None  # reinstalled
        await bot.run_pass(after=PAST_ANY_BACKOFF)
        await bot.run_pass(after=PAST_ANY_BACKOFF)
        assert kinds(world.slack.posts()) == ["alert"]
        assert world.slack.attempts(ADMIN) == dm_attempts

    world.run(scenario)


def test_a_dm_about_a_revoked_token_is_not_sent_once_posting_works_again(world: World) -> None:
    world.breeze.account(1000)
    world.slack.refuse_all = "token_revoked"

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_alert(WS, Decimal("1500"), ALERTS, ADMIN)
        await bot.run_pass()
        world.slack.refuse_all = None  # reinstalled before the DM's retry
        await bot.run_pass(after=PAST_ANY_BACKOFF)
        assert kinds(world.slack.posts()) == ["alert"]

    world.run(scenario)


def test_ratelimited_posts_wait_for_retry_after(world: World) -> None:
    account = world.breeze.account(1000)

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_topups(WS, TOPUPS, ADMIN)
        await bot.watch.set_alert(WS, Decimal("1500"), ALERTS, ADMIN)
        account.top_up("tp_1", 100, bot.clock.now)  # 1,100: the check queues an alert and a notice
        world.slack.ratelimit_next(30)
        report = await bot.run_pass()
        assert report.checked == 1
        assert world.slack.attempts() == 1  # the rest of the workspace's posts wait
        assert world.slack.posts() == []

        await bot.run_pass(after=10)
        await bot.run_pass(after=19)  # 29 s after Slack said to wait 30
        assert world.slack.attempts() == 1

        await bot.run_pass(after=2)
        assert kinds(world.slack.posts(ALERTS)) == ["alert"]
        assert_alert(world.slack.posts(ALERTS)[0], "1,100", "1,500")
        await bot.run_pass(after=60)
        await bot.run_pass(after=PAST_ANY_BACKOFF)
        assert kinds(world.slack.posts()) == ["alert", "topup"]  # each exactly once
        assert world.slack.attempts() == 3
        assert world.slack.posts(ADMIN) == []  # a rate limit is not the admin's to fix

    world.run(scenario)


def test_a_post_queued_during_retry_after_also_waits(world: World) -> None:
    account = world.breeze.account(1000)

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_topups(WS, TOPUPS, ADMIN)
        await bot.watch.set_alert(WS, Decimal("1500"), ALERTS, ADMIN)
        world.slack.ratelimit_next(30)
        await bot.run_pass()
        assert world.slack.attempts() == 1
        account.top_up("tp_1", 100, bot.clock.now)
        await bot.run_pass(after=10, everything=True)  # `worker --once`: a check 10 s into the wait
        assert world.slack.attempts() == 1

    world.run(scenario)


# --- 9. every workspace, each once -----------------------------------------------------------------


def test_everything_checks_each_workspace_once_and_a_rejected_key_stops_no_other(world: World) -> None:
    balances = {"T0001": 1000, "T0002": 1200, "T0003": 2000, "T0004": 1499, "T0005": 800}
    bad = "T0005"
    spaces = {team: Workspace(None, team) for team in balances}
    keys = {team: f"brz_live_key_of_{team}" for team in balances}
    accounts = {team: world.breeze.account(balance, key=keys[team]) for team, balance in balances.items()}
    accounts[bad].rejected = True

    def channel(team: str) -> str:
        return f"C0{team}"

    def admin(team: str) -> str:
        return f"U0{team}"

    async def scenario(bot: Bot) -> None:
        for team, ws in spaces.items():
            await bot.deps.keys.save(
                ws, SecretStr(keys[team]), set_by=admin(team), balance=Balance(Decimal(0))
            )
            await bot.watch.set_alert(ws, Decimal("1500"), channel(team), admin(team))
        await bot.run_pass(after=10, everything=True)
        assert {team: world.breeze.calls(keys[team]) for team in spaces} == dict.fromkeys(spaces, 1)
        assert world.breeze.calls(API_KEY) == 0

        for team in ("T0001", "T0002", "T0004"):
            [alert] = world.slack.posts(channel(team))
            balance = f"{balances[team]:,}"
            assert_alert(alert, balance, "1,500", channel=channel(team))
        assert world.slack.posts(channel("T0003")) == []  # above its threshold
        assert world.slack.attempts(channel(bad)) == 0
        [dm] = world.slack.posts(admin(bad))
        assert kind(dm) == "fault"
        assert len(world.slack.posts()) == 4

        await bot.run_pass(after=10)  # nothing is due
        assert {team: world.breeze.calls(keys[team]) for team in spaces} == dict.fromkeys(spaces, 1)
        await bot.run_pass(after=10, everything=True)  # every workspace again, due or not, each once
        assert {team: world.breeze.calls(keys[team]) for team in spaces} == dict.fromkeys(spaces, 2)
        assert len(world.slack.posts()) == 4  # nothing new to say, and the DM is not repeated

    world.run(scenario)


# --- 10. uninstall ---------------------------------------------------------------------------------


async def seen_topups(bot: Bot, workspace: Workspace) -> set[str]:
    """The top-up ids kept as seen for a workspace."""
    enterprise, team = workspace.scope
    t = topups_table.c
    query = sa.select(t.topup_key).where((t.enterprise_id == enterprise) & (t.team_id == team))
    async with bot.deps.engine.connect() as conn:
        return set((await conn.execute(query)).scalars().all())


def test_forget_removes_rules_samples_top_ups_and_pending_posts(world: World) -> None:
    account = world.breeze.account(1000)
    account.topups = [topup("tp_old", 300, MONDAY - timedelta(days=2))]
    other, elsewhere = Workspace(None, "T0OTHER"), "C0OTHER01"
    world.slack.refusing[ALERTS] = "not_in_channel"  # so the alert stays pending

    async def scenario(bot: Bot) -> None:
        store = bot.watch.store
        await bot.watch.set_alert(WS, Decimal("1500"), ALERTS, ADMIN)
        await bot.watch.set_topups(WS, TOPUPS, ADMIN)
        await bot.watch.set_alert(other, Decimal("1500"), elsewhere, ADMIN)
        await bot.run_pass()
        await bot.next_pass()
        pending = [p for p in await store.outbox.posts(WS) if p["sent_at"] is None and not p["gave_up"]]
        assert [p["kind"] for p in pending] == ["alert"]
        assert len(await store.samples(WS, EPOCH)) == 2
        assert await seen_topups(bot, WS) == {"tp_old"}
        assert sorted(p["channel"] for p in world.slack.posts()) == sorted([ADMIN, elsewhere])

        tried = world.slack.attempts(ALERTS)
        removed = await bot.watch.forget(WS)
        assert removed > 0
        assert await bot.watch.watch(WS) is None
        assert await store.outbox.posts(WS) == []
        assert await store.samples(WS, EPOCH) == []
        assert await seen_topups(bot, WS) == set()
        assert await bot.watch.trend(WS) is None

        assert await bot.watch.watch(other) is not None  # another workspace keeps everything
        assert len(await store.samples(other, EPOCH)) == 2
        assert len(await store.outbox.posts(other)) == 1

        del world.slack.refusing[ALERTS]
        calls = world.breeze.calls()
        await bot.run_pass(after=PAST_ANY_BACKOFF)
        await bot.run_pass(after=PAST_ANY_BACKOFF)
        assert world.breeze.calls() == calls + 2  # only the other workspace is checked
        assert world.slack.attempts(ALERTS) == tried  # the forgotten alert is never retried
        assert sorted(p["channel"] for p in world.slack.posts()) == sorted([ADMIN, elsewhere])
        assert await store.count() == 1

    world.run(scenario)


# --- 11. SIGTERM while a post is in flight ---------------------------------------------------------


def test_a_post_in_flight_when_the_sigterm_grace_ends_is_never_posted_again(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slack may have the post that was cut short (it just had not answered): it is recorded as
    uncertain and never retried, so it cannot appear twice. A post not yet started is delivered
    later, as usual."""
    monkeypatch.setattr("bot.services.worker.STOP_GRACE_SECONDS", 0.5)
    account = world.breeze.account(2000)
    slack_answers = threading.Event()

    async def scenario(bot: Bot) -> None:
        await bot.watch.set_alert(WS, Decimal("1500"), ALERTS, ADMIN)
        await bot.watch.set_topups(WS, TOPUPS, ADMIN)
        await bot.run_pass()
        account.set(1000)
        account.top_up("tp_new", 100, bot.clock.now)  # 1,100: an alert and a top-up notice, in that order
        bot.clock.advance(INTERVAL + 1)
        # Slack takes the first post, but answers only after the worker's grace has run out.
        world.slack.server.queue("POST", POST_PATH, Reply(200, {"ok": True, "ts": "1.1"}, gate=slack_answers))
        worker = bot.deps.worker
        running = asyncio.create_task(run_until_signalled(worker, worker.run_pass()))
        [first] = await asyncio.to_thread(world.slack.server.wait_for, 1, POST_PATH)
        signal.raise_signal(signal.SIGTERM)
        assert await running is None  # cut short
        slack_answers.set()
        cut_short = first.json()["channel"]
        not_started = TOPUPS if cut_short == ALERTS else ALERTS

        worker.stopping.clear()  # the next worker, once every lease has run out
        await bot.run_pass(after=LEASE.total_seconds() + 1)
        await bot.run_pass(after=PAST_ANY_BACKOFF)

        assert world.slack.attempts(cut_short) == 1, "the post cut short was posted again"
        assert world.slack.attempts(not_started) == 1
        assert [p["channel"] for p in world.slack.posts()] == [not_started]
        rows = {p["channel"]: p for p in await bot.watch.store.outbox.posts(WS)}  # type: ignore[attr-defined]
        assert rows[cut_short]["sent_at"] is None
        assert rows[cut_short]["gave_up"]
        assert "may have been posted" in rows[cut_short]["last_error"]
        assert rows[not_started]["sent_at"] is not None

    world.run(scenario)


def test_a_post_in_flight_when_the_app_stops_its_worker_is_never_posted_again(
    breeze: FakeServer,
    slack_api: FakeServer,
    database_url: str,
    start_app: AppFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same when the web process runs the checks (`serve --worker`) and is stopped."""
    monkeypatch.setattr("bot.web.app.STOP_GRACE_SECONDS", 0.5)
    world = make_world(breeze, slack_api, database_url, start=datetime.now(UTC))  # the app's clock
    world.breeze.account(1000)

    async def alert(bot: Bot) -> None:
        await bot.watch.set_alert(WS, Decimal("1500"), ALERTS, ADMIN)

    world.run(alert)
    slack_answers = threading.Event()
    world.slack.server.queue("POST", POST_PATH, Reply(200, {"ok": True, "ts": "1.1"}, gate=slack_answers))
    app, _ = start_app(run_worker=True, alert_interval_seconds=1, breeze_cache_seconds=0)
    world.slack.server.wait_for(1, path=POST_PATH)  # the alert is in flight

    app.stop()
    slack_answers.set()

    async def next_worker(bot: Bot) -> None:
        await bot.run_pass(after=LEASE.total_seconds() + 1)  # once the stopped worker's lease is over
        assert world.slack.attempts(ALERTS) == 1, "the post cut short was posted again"
        [row] = await bot.watch.store.outbox.posts(WS)  # type: ignore[attr-defined]
        assert (row["channel"], row["sent_at"], row["gave_up"]) == (ALERTS, None, True)
        assert "may have been posted" in row["last_error"]

    world.run(next_worker)
