"""A workspace's metering by Breeze, read politely: at most once per `USAGE_REFRESH_SECONDS`, shared by
every process through the `Shared` store when there is one, never on the ack path, and never holding a
reply up for more than `REPLY_WAIT_SECONDS` past its balance.

What one read asks Breeze: the last 7 complete UTC days with each day's spend, today so far, the key's
own budget and, when it has one, what the key itself spent in those days (`MeteringReader`). It is kept
as a `Metering` for the refresh period, and served while it is up to twice that old as a new read runs
behind it. A key Breeze does not meter for is kept the same way, as "unavailable" (said once in the
log); a read that fails otherwise is tried again after `FAILED_READ_RETRY_SECONDS`, not at once.

Shared names carry the key's SHA-256 (`key_slot`), never the key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import TypeVar

from pydantic import SecretStr

from bot import errors
from bot.domain.balances import Workspace
from bot.domain.spend import Metering, week_spend
from bot.domain.usage import KeyBudget, UsageReport, Window, complete_week, utc_day
from bot.services.balances import KeyProvider
from bot.services.caches import MAX_CACHED_WORKSPACES, Shared, Slot, key_slot, shared_name
from bot.services.ports import MeteringReader
from bot.services.tasks import TaskTracker
from bot.services.watching import Now, utcnow

log = logging.getLogger(__name__)

T = TypeVar("T")

# A reply waits at most this long past its balance for a read of the metering under way.
REPLY_WAIT_SECONDS = 1.0
# After a read that failed (Breeze slow, down, or refusing the key), the next one waits this long.
FAILED_READ_RETRY_SECONDS = 60.0
# What was read is served while a new read runs, up to this many refresh periods old.
STALE_PERIODS = 2


class MeteringService:
    """Each workspace's `Metering`, read with its key through `reader`, kept `refresh_seconds`."""

    def __init__(
        self,
        keys: KeyProvider,
        reader: MeteringReader,
        tasks: TaskTracker,
        refresh_seconds: float,
        *,
        shared: Shared | None = None,
        now: Now = utcnow,
    ) -> None:
        self._keys = keys
        self._reader = reader
        self._tasks = tasks
        self._period = timedelta(seconds=refresh_seconds)
        self._shared = shared
        self._now = now
        self._kept: dict[Slot, Metering] = {}
        self._next_read: dict[Slot, datetime] = {}
        self._reading: dict[Slot, asyncio.Task[Metering | None]] = {}
        self._said_unavailable = False

    def now(self) -> datetime:
        """The service's clock."""
        return self._now()

    async def current(self, workspace: Workspace, key: SecretStr | None = None) -> Metering | None:
        """What is known of the workspace's metering (read with `key` when the caller has just read it);
        read first when nothing recent is, waiting for it.

        None without a key, or when no read has succeeded yet (another process may be reading).
        """
        key = key if key is not None else await self._key(workspace)
        if key is None:
            return None
        slot = key_slot(workspace, key)
        known = await self._known(slot)
        if known is not None and self._now() - known.read_at < self._period:
            return known
        reading = await self._start(slot, key)
        if known is not None or reading is None:
            return known  # a stale one is served while the new read runs
        return await asyncio.shield(reading)

    async def beside(
        self,
        workspace: Workspace,
        work: Awaitable[T],
        *,
        key: SecretStr | None = None,
        extra_seconds: float | None = None,
    ) -> tuple[T, Metering | None]:
        """`work`'s answer (the balance) and the metering, looked up alongside it; the metering is waited
        for at most `extra_seconds` (`REPLY_WAIT_SECONDS`) past `work`, then left to finish for next time."""
        lookup = asyncio.ensure_future(self.current(workspace, key))
        try:
            result = await work
        except BaseException:
            lookup.cancel()
            raise
        wait = REPLY_WAIT_SECONDS if extra_seconds is None else extra_seconds
        done, _ = await asyncio.wait({lookup}, timeout=wait)
        if not done:
            lookup.cancel()  # the read itself goes on: it is shielded and tracked
            return result, None
        return result, lookup.result()

    def prefetch(self, workspace: Workspace, key: SecretStr) -> None:
        """Start reading the metering of a key just set, so the first command finds it."""
        self._tasks.spawn(self._start(key_slot(workspace, key), key), name="metering-prefetch")

    async def _key(self, workspace: Workspace) -> SecretStr | None:
        try:
            return await self._keys.key_of(workspace)
        except errors.BotError as exc:
            log.info("no metering for %s: its key could not be read (%s)", workspace, type(exc).__name__)
            return None

    async def _known(self, slot: Slot) -> Metering | None:
        """The newest metering kept here or in the shared store, unless it is too old to serve."""
        found = self._kept.get(slot)
        if (found is None or self._now() - found.read_at >= self._period) and self._shared is not None:
            shared = await self._shared.get_metering(shared_name("metering", *slot))
            if shared is not None and (found is None or shared.read_at > found.read_at):
                found = self._keep(slot, shared)
        if found is not None and self._now() - found.read_at >= self._period * STALE_PERIODS:
            return None
        return found

    async def _start(self, slot: Slot, key: SecretStr) -> asyncio.Task[Metering | None] | None:
        """The read under way here, or a new one when this process may read now (else None)."""
        reading = self._reading.get(slot)
        if reading is not None:
            return reading
        now = self._now()
        if now < self._next_read.get(slot, now):
            return None
        if self._shared is not None:
            # Taken for the whole period: whichever process takes it reads; the others use its answer.
            taken = await self._shared.claim(
                shared_name("metering-read", *slot), self._period.total_seconds()
            )
            if taken is False:
                return None
        self._remember_next(slot, now + self._period)
        reading = self._tasks.spawn(self._read(slot, key), name="metering-read")
        self._reading[slot] = reading
        reading.add_done_callback(lambda _: self._reading.pop(slot, None))
        return reading

    async def _read(self, slot: Slot, key: SecretStr) -> Metering | None:
        try:
            metering = await self._ask(key)
        except errors.BotError as exc:
            log.info("could not read Breeze's metering (%s); trying again later", type(exc).__name__)
            retry = self._now() + timedelta(seconds=FAILED_READ_RETRY_SECONDS)
            self._remember_next(slot, retry)
            if self._shared is not None:
                name = shared_name("metering-read", *slot)
                await self._shared.release(name)
                await self._shared.claim(name, FAILED_READ_RETRY_SECONDS)
            return None
        self._keep(slot, metering)
        if self._shared is not None:
            seconds = self._period.total_seconds() * STALE_PERIODS
            await self._shared.put_metering(shared_name("metering", *slot), metering, seconds)
        return metering

    async def _ask(self, key: SecretStr) -> Metering:
        """One read: the week (each day's spend), today, and the key's own budget, asked at once."""
        read_at = self._now()
        today = utc_day(read_at)
        week_window = complete_week(today)
        week, today_report, budget = await asyncio.gather(
            self._reader.report(key, week_window, per_day=True),
            self._reader.report(key, Window(today, today)),
            self._budget(key),
            return_exceptions=True,
        )
        for answer in (week, today_report, budget):
            if isinstance(answer, BaseException) and not isinstance(answer, errors.MeteringUnavailable):
                raise answer
        known_budget = budget if isinstance(budget, KeyBudget) else None
        if not isinstance(week, UsageReport) or not isinstance(today_report, UsageReport):
            self._say_unavailable(week if isinstance(week, BaseException) else today_report)
            return Metering(read_at, None, known_budget)
        key_week = None
        if known_budget is not None and known_budget.has_limit and known_budget.key_id:
            try:
                key_week = await self._reader.spend(key, week_window, api_key_id=known_budget.key_id)
            except errors.MeteringUnavailable:
                key_week = None
        return Metering(read_at, week_spend(today, week, today_report), known_budget, key_week)

    async def _budget(self, key: SecretStr) -> KeyBudget | None:
        try:
            return await self._reader.current_key(key)
        except errors.MeteringUnavailable:
            return None

    def _say_unavailable(self, reason: object) -> None:
        if self._said_unavailable:
            return
        self._said_unavailable = True
        why = reason.reason if isinstance(reason, errors.MeteringUnavailable) else "unavailable"
        log.info(
            "Breeze's metering is unavailable to a workspace's key (%s): its runway comes from the app's "
            "own samples (said once per process)",
            why,
        )

    def _keep(self, slot: Slot, metering: Metering) -> Metering:
        if len(self._kept) >= MAX_CACHED_WORKSPACES:
            self._kept.clear()
        self._kept[slot] = metering
        return metering

    def _remember_next(self, slot: Slot, when: datetime) -> None:
        if len(self._next_read) >= MAX_CACHED_WORKSPACES:
            now = self._now()
            self._next_read = {s: t for s, t in self._next_read.items() if t > now}
        self._next_read[slot] = when
