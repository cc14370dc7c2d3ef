"""Sparing Breeze: one call in flight per workspace, a short cache, and `refresh`."""

from __future__ import annotations

import asyncio
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from pydantic import SecretStr

from bot.domain.balances import Balance, Requester, Workspace
from bot.errors import BreezeUnavailable
from bot.services.caches import BalanceCache, RefreshLimiter
from tests.conftest import AppFactory, ask, texts
from tests.fakes import FakeServer, Reply


def test_a_burst_from_one_workspace_makes_one_breeze_call(
    start_app: AppFactory, breeze: FakeServer, hooks: FakeServer
) -> None:
    gate = threading.Event()
    breeze.route("GET", "/v1/balance", Reply(200, {"balance": 5}, gate=gate))
    _, slack = start_app(breeze_cache_seconds=120)  # longer than the test, however slow the machine
    urls = [f"{hooks.url}/commands/burst/{n}" for n in range(30)]

    with ThreadPoolExecutor(10) as pool:
        acks = list(pool.map(lambda url: slack.command(url, user_id=f"U{len(url)}"), urls))
    assert [a.status_code for a in acks] == [200] * 30
    breeze.wait_for(1)
    gate.set()

    for url in urls:
        reply = hooks.wait_for(1, path=url.removeprefix(hooks.url))[0].json()
        assert reply["text"] == "Breeze balance: 5 credits"
    assert len(breeze.received()) == 1


def test_a_cached_answer_says_how_fresh_it_is(
    start_app: AppFactory, breeze: FakeServer, hooks: FakeServer, response_url: str
) -> None:
    _, slack = start_app()

    first = texts(ask(slack, hooks, response_url).json())
    second = texts(ask(slack, hooks, f"{response_url}-2").json())

    assert "As of" not in first
    assert re.search(r"As of (less than a second|\d+ seconds?) ago", second), second
    assert "`/breeze-balance refresh` for the latest" in second
    assert len(breeze.received()) == 1


def test_workspaces_do_not_share_cached_answers(
    start_app: AppFactory, breeze: FakeServer, hooks: FakeServer, response_url: str
) -> None:
    _, slack = start_app()

    ask(slack, hooks, response_url, team_id="T0001")
    ask(slack, hooks, f"{response_url}-2", team_id="T0002")

    assert len(breeze.received()) == 2


def test_refresh_asks_breeze_again_but_not_twice_in_a_row(
    start_app: AppFactory, breeze: FakeServer, hooks: FakeServer, response_url: str
) -> None:
    _, slack = start_app()
    ask(slack, hooks, response_url)
    breeze.route("GET", "/v1/balance", Reply(200, {"balance": 99}))

    refreshed = texts(ask(slack, hooks, f"{response_url}-2", "refresh").json())
    again = texts(ask(slack, hooks, f"{response_url}-3", "refresh").json())
    other_user = texts(ask(slack, hooks, f"{response_url}-4", "refresh", user_id="U0002").json())

    assert "*99 credits*" in refreshed
    assert "As of" not in refreshed
    assert "*99 credits*" in again
    assert "you can refresh again in" in again
    assert "As of" in again
    assert "you can refresh again" not in other_user
    assert len(breeze.received()) == 3  # first, the refresh, the other user's refresh


def test_with_the_cache_off_every_command_asks_breeze(
    start_app: AppFactory, breeze: FakeServer, hooks: FakeServer, response_url: str
) -> None:
    _, slack = start_app(breeze_cache_seconds=0)

    for n in range(3):
        assert "As of" not in texts(ask(slack, hooks, f"{response_url}-{n}").json())

    assert len(breeze.received()) == 3


def test_errors_are_not_cached(
    start_app: AppFactory, breeze: FakeServer, hooks: FakeServer, response_url: str
) -> None:
    breeze.route("GET", "/v1/balance", Reply(401, {"code": "AUTH_INVALID_SESSION", "error": "x"}))
    _, slack = start_app()
    assert "did not accept" in texts(ask(slack, hooks, response_url).json())

    breeze.route("GET", "/v1/balance", Reply(200, {"balance": 3}))
    later = texts(ask(slack, hooks, f"{response_url}-2").json())

    assert "*3 credits*" in later
    assert len(breeze.received()) == 2


# --- the cache itself, with a fake reader and a fake clock -------------------------------------------


class SlowReader:
    """Counts calls; each waits until released."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.fail: Exception | None = None

    async def get_balance(self, api_key: SecretStr) -> Balance:
        self.calls += 1
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return Balance(Decimal(self.calls))


ACME = Workspace(None, "T0ACME001")
KEY = SecretStr("brz_live_CacheTestKey_1")


def test_concurrent_requests_share_one_call_even_with_the_cache_off() -> None:
    async def run() -> None:
        reader = SlowReader()
        cache = BalanceCache(reader, seconds=0)
        waiting = [asyncio.create_task(cache.get(ACME, KEY, fresh=False)) for _ in range(50)]
        await asyncio.sleep(0)
        reader.release.set()
        answers = await asyncio.gather(*waiting)
        assert reader.calls == 1
        assert {balance.credits for balance, _ in answers} == {Decimal(1)}
        assert all(age is None for _, age in answers)
        await cache.get(ACME, KEY, fresh=False)
        assert reader.calls == 2  # nothing kept with the cache off

    asyncio.run(run())


def test_answers_expire_and_keys_and_workspaces_do_not_mix() -> None:
    async def run() -> None:
        now = [100.0]
        reader = SlowReader()
        reader.release.set()
        cache = BalanceCache(reader, seconds=10, clock=lambda: now[0])
        await cache.get(ACME, KEY, fresh=False)
        now[0] += 9.5
        balance, age = await cache.get(ACME, KEY, fresh=False)
        assert (balance.credits, age) == (Decimal(1), 9.5)
        await cache.get(ACME, SecretStr("brz_live_AnotherKey_2"), fresh=False)
        await cache.get(Workspace(None, "T0OTHER01"), KEY, fresh=False)
        assert reader.calls == 3
        now[0] += 1
        balance, age = await cache.get(ACME, KEY, fresh=False)
        assert (balance.credits, age) == (Decimal(4), None)

    asyncio.run(run())


def test_a_failure_reaches_every_waiter_and_is_not_kept() -> None:
    async def run() -> None:
        reader = SlowReader()
        reader.fail = BreezeUnavailable(503)
        cache = BalanceCache(reader, seconds=10)
        waiting = [asyncio.create_task(cache.get(ACME, KEY, fresh=False)) for _ in range(5)]
        await asyncio.sleep(0)
        reader.release.set()
        results = await asyncio.gather(*waiting, return_exceptions=True)
        assert all(isinstance(r, BreezeUnavailable) for r in results)
        reader.fail = None
        balance, _ = await cache.get(ACME, KEY, fresh=False)
        assert balance.credits == Decimal(2)

    asyncio.run(run())


def test_one_waiter_giving_up_does_not_cancel_the_call_for_the_others() -> None:
    async def run() -> None:
        reader = SlowReader()
        cache = BalanceCache(reader, seconds=10)
        impatient = asyncio.create_task(cache.get(ACME, KEY, fresh=False))
        patient = asyncio.create_task(cache.get(ACME, KEY, fresh=False))
        await asyncio.sleep(0)
        impatient.cancel()
        reader.release.set()
        balance, _ = await patient
        assert balance.credits == Decimal(1)
        assert reader.calls == 1

    asyncio.run(run())


def test_refreshes_are_limited_per_user() -> None:
    now = [0.0]
    limiter = RefreshLimiter(30, clock=lambda: now[0])
    ada = Requester("T0001", None, "U0ADA")

    assert limiter.wait_for(ada) is None
    now[0] = 10
    assert limiter.wait_for(ada) == 20
    assert limiter.wait_for(Requester("T0001", None, "U0BOB")) is None
    now[0] = 30
    assert limiter.wait_for(ada) is None
