"""Reading a workspace's metering: at most once per refresh period, "unavailable" remembered as long,
said once in the log, and never holding a reply up for more than its extra second.

A hand-written reader stands in for Breeze, a list holds the clock; no sockets.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import pytest
from pydantic import SecretStr

from bot import errors
from bot.domain.balances import Workspace
from bot.domain.spend import Metering
from bot.domain.usage import DaySpend, KeyBudget, UsageReport, Window, complete_week
from bot.services.metering import FAILED_READ_RETRY_SECONDS, MeteringService
from bot.services.tasks import TaskTracker

ACME = Workspace(None, "T0ACME001")
OTHER = Workspace(None, "T0OTHER01")
KEY = SecretStr("brz_live_MeteringServiceKey_1")
START = datetime(2026, 12, 5, 10, 30, tzinfo=UTC)
REFRESH = 3600.0
T = TypeVar("T")


class Keys:
    """Each workspace's key: ACME and OTHER have one."""

    def __init__(self) -> None:
        self.keys: dict[Workspace, SecretStr | None] = {ACME: KEY, OTHER: KEY}
        self.lookups = 0

    async def key_of(self, workspace: Workspace) -> SecretStr | None:
        self.lookups += 1
        return self.keys.get(workspace)


class Reader:
    """Breeze's metering, scripted: 140 credits a day, a budget or not, failures on demand."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.gate: asyncio.Event | None = None
        self.failure: Exception | None = None
        self.budget: KeyBudget | Exception = KeyBudget("key_prod", "prod", None, None)
        self.key_spend = 700_000

    async def _asked(self, what: str, detail: Any) -> None:
        self.calls.append((what, detail))
        if self.gate is not None:
            await self.gate.wait()
        if self.failure is not None:
            raise self.failure

    async def report(
        self, api_key: SecretStr, window: Window, *, per_day: bool = False, api_key_id: str | None = None
    ) -> UsageReport:
        await self._asked("report", (window, per_day, api_key_id))
        if window.days == 1:
            return UsageReport(window, 5_000, 1, 10, 1)
        daily = tuple(DaySpend(day, 140_000) for day in window.dates()) if per_day else None
        return UsageReport(window, 980_000, 7, 70, 7, (), daily)

    async def spend(self, api_key: SecretStr, window: Window, *, api_key_id: str | None = None) -> int:
        await self._asked("spend", (window, api_key_id))
        return self.key_spend

    async def current_key(self, api_key: SecretStr) -> KeyBudget:
        await self._asked("current_key", None)
        if isinstance(self.budget, Exception):
            raise self.budget
        return self.budget

    def reads(self) -> int:
        return sum(1 for what, _ in self.calls if what == "current_key")


class World:
    def __init__(self) -> None:
        self.now = START
        self.keys = Keys()
        self.reader = Reader()
        self.tasks = TaskTracker()
        self.service = MeteringService(self.keys, self.reader, self.tasks, REFRESH, now=lambda: self.now)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def run(test: Callable[[World], Awaitable[T]]) -> T:
    async def go() -> T:
        world = World()
        try:
            return await test(world)
        finally:
            await world.tasks.drain(5)

    return asyncio.run(go())


def test_the_first_read_gives_the_week_today_and_the_budget() -> None:
    async def test(world: World) -> Metering | None:
        return await world.service.current(ACME)

    metering = run(test)

    assert metering is not None
    assert metering.available
    assert metering.read_at == START
    assert metering.week is not None
    assert metering.week.days == (140_000,) * 7
    assert metering.week.today_millicredits == 5_000
    assert metering.budget == KeyBudget("key_prod", "prod", None, None)
    assert metering.key_week_millicredits is None  # no budget of its own: its own spend is not asked


def test_the_week_is_the_seven_complete_days_and_today_is_asked_apart() -> None:
    async def test(world: World) -> list[tuple[str, Any]]:
        await world.service.current(ACME)
        return world.reader.calls

    calls = run(test)

    today = date(2026, 12, 5)
    assert ("report", (complete_week(today), True, None)) in calls
    assert ("report", (Window(today, today), False, None)) in calls


def test_a_key_with_its_own_budget_has_its_own_week_asked_too() -> None:
    async def test(world: World) -> Metering | None:
        world.reader.budget = KeyBudget("key_prod", "prod", Decimal(5000), Decimal("1249.5"))
        metering = await world.service.current(ACME)
        assert ("spend", (complete_week(date(2026, 12, 5)), "key_prod")) in world.reader.calls
        return metering

    metering = run(test)

    assert metering is not None
    assert metering.key_week_millicredits == 700_000


def test_metering_is_read_at_most_once_per_refresh_period() -> None:
    async def test(world: World) -> list[int]:
        counts = []
        for _ in range(3):
            await world.service.current(ACME)
            counts.append(world.reader.reads())
        world.advance(REFRESH - 1)
        await world.service.current(ACME)
        counts.append(world.reader.reads())
        world.advance(2)
        stale = await world.service.current(ACME)  # a stale answer at once, a new read behind it
        assert stale is not None
        assert stale.read_at == START
        await world.tasks.drain(5)
        counts.append(world.reader.reads())
        fresh = await world.service.current(ACME)
        assert fresh is not None
        assert fresh.read_at == START + timedelta(seconds=REFRESH + 1)
        counts.append(world.reader.reads())
        return counts

    assert run(test) == [1, 1, 1, 1, 2, 2]


def test_concurrent_lookups_share_one_read() -> None:
    async def test(world: World) -> int:
        world.reader.gate = asyncio.Event()
        waiting = [asyncio.create_task(world.service.current(ACME)) for _ in range(20)]
        await asyncio.sleep(0.01)
        world.reader.gate.set()
        found = await asyncio.gather(*waiting)
        assert all(m is not None and m.available for m in found)
        return world.reader.reads()

    assert run(test) == 1


def test_each_workspace_has_its_own_read() -> None:
    async def test(world: World) -> int:
        await world.service.current(ACME)
        await world.service.current(OTHER)
        return world.reader.reads()

    assert run(test) == 2


def test_no_key_no_read() -> None:
    async def test(world: World) -> Metering | None:
        world.keys.keys[ACME] = None
        found = await world.service.current(ACME)
        assert world.reader.calls == []
        return found

    assert run(test) is None


def test_unavailable_metering_is_remembered_as_long_and_said_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.services.metering")

    async def test(world: World) -> list[Metering | None]:
        world.reader.failure = errors.MeteringUnavailable("no", "HTTP 404")
        found = [await world.service.current(ACME), await world.service.current(ACME)]
        found.append(await world.service.current(OTHER))
        world.advance(REFRESH + 1)
        await world.service.current(ACME)
        await world.tasks.drain(5)
        assert world.reader.reads() == 3  # ACME, OTHER, then ACME once its period was over
        return found

    found = run(test)

    assert all(m is not None and not m.available for m in found)
    said = [r for r in caplog.records if "metering" in r.getMessage().lower()]
    assert len(said) == 1
    assert "HTTP 404" in said[0].getMessage()
    assert KEY.get_secret_value() not in caplog.text


def test_a_key_budget_breeze_does_not_give_leaves_the_week() -> None:
    async def test(world: World) -> Metering | None:
        world.reader.budget = errors.MeteringUnavailable("no", "HTTP 404")
        return await world.service.current(ACME)

    metering = run(test)

    assert metering is not None
    assert metering.available
    assert metering.budget is None


def test_a_failed_read_is_tried_again_soon_not_at_once() -> None:
    async def test(world: World) -> list[Metering | None]:
        world.reader.failure = errors.BreezeTimeout("slow")
        found = [await world.service.current(ACME), await world.service.current(ACME)]
        assert world.reader.reads() == 1
        world.reader.failure = None
        world.advance(FAILED_READ_RETRY_SECONDS + 1)
        found.append(await world.service.current(ACME))
        assert world.reader.reads() == 2
        return found

    first, second, third = run(test)

    assert first is None
    assert second is None
    assert third is not None
    assert third.available


def test_beside_gives_the_work_and_the_metering() -> None:
    async def test(world: World) -> tuple[str, Metering | None]:
        async def balance() -> str:
            return "balance"

        return await world.service.beside(ACME, balance())

    result, metering = run(test)

    assert result == "balance"
    assert metering is not None
    assert metering.available


def test_beside_does_not_wait_for_slow_metering_and_lets_it_finish_for_next_time() -> None:
    async def test(world: World) -> tuple[Metering | None, Metering | None]:
        world.reader.gate = asyncio.Event()

        async def balance() -> str:
            return "balance"

        result, waited = await world.service.beside(ACME, balance(), extra_seconds=0.01)
        assert result == "balance"
        world.reader.gate.set()
        await world.tasks.drain(5)
        later = await world.service.current(ACME)
        assert world.reader.reads() == 1
        return waited, later

    waited, later = run(test)

    assert waited is None
    assert later is not None
    assert later.available


def test_beside_passes_the_works_error_on() -> None:
    async def test(world: World) -> None:
        async def balance() -> str:
            raise errors.KeyRejected(401)

        with pytest.raises(errors.KeyRejected):
            await world.service.beside(ACME, balance())

    run(test)


def test_prefetch_reads_in_the_background() -> None:
    async def test(world: World) -> int:
        world.service.prefetch(ACME, KEY)
        await world.tasks.drain(5)
        assert world.reader.reads() == 1
        await world.service.current(ACME)
        return world.reader.reads()

    assert run(test) == 1


def test_a_key_the_caller_has_read_is_not_read_again() -> None:
    async def test(world: World) -> int:
        async def balance() -> str:
            return "balance"

        _, metering = await world.service.beside(ACME, balance(), key=KEY)
        assert metering is not None
        return world.keys.lookups

    assert run(test) == 0
