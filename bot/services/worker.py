"""The worker: checks every watched workspace each `ALERT_INTERVAL_SECONDS`, and delivers the outbox.

Any number of workers can share one PostgreSQL database: each claims workspaces and posts with
`FOR UPDATE SKIP LOCKED` leases, and every state change is stored with the posts it calls for
(`bot.adapters.watch`). On SQLite one worker runs at a time (a lock file beside the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bot.domain.rules import Watch
from bot.errors import BotError
from bot.services.ports import Delivery
from bot.services.watching import WatchService

log = logging.getLogger(__name__)

T = TypeVar("T")

PARALLEL_CHECKS = 8
# On SIGTERM: what is in hand gets this long to finish and be recorded; the rest is given back.
STOP_GRACE_SECONDS = 8.0
TICK_SECONDS = 5.0
PRUNE_EVERY_SECONDS = 3600.0
DATABASE_RETRY_SECONDS = 10.0


@dataclass(slots=True)
class PassReport:
    """What one pass did."""

    checked: int = 0
    failed: int = 0
    posted: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every workspace was checked."""
        return self.failed == 0


class Worker:
    """Runs passes: claim due workspaces, check them a few at a time, deliver what they queued."""

    def __init__(
        self,
        watch: WatchService,
        deliverer: Delivery,
        *,
        interval_seconds: float,
        check_timeout_seconds: float,
        parallel: int = PARALLEL_CHECKS,
    ) -> None:
        self._watch = watch
        self._deliverer = deliverer
        self._interval = interval_seconds
        self._timeout = check_timeout_seconds
        self._parallel = parallel
        self._pruned_at: float | None = None
        self.stopping = asyncio.Event()

    async def run_pass(self, *, everything: bool = False) -> PassReport:
        """Check due workspaces (with `everything`, each workspace once) and deliver due posts."""
        report = PassReport()
        gate = asyncio.Semaphore(self._parallel)
        tried: set[tuple[str, str]] = set()
        started = self._watch.now() if everything else None
        while not self.stopping.is_set():
            batch = await self._watch.claim(self._parallel * 2, checked_before=started)
            fresh = [w for w in batch if w.workspace.scope not in tried]
            for again in (w for w in batch if w.workspace.scope in tried):
                await self._watch.give_back(again)
            if not fresh:
                break
            tried.update(w.workspace.scope for w in fresh)
            await asyncio.gather(*(self._check(w, gate, report) for w in fresh))
        if not self.stopping.is_set():
            report.posted += (await self._deliverer.deliver()).sent
        await self._prune()
        return report

    async def run_forever(self) -> None:
        """Pass after pass until `stopping` is set; a database outage is waited out, not fatal."""
        log.info("worker started: checking every %.0f s", self._interval)
        while not self.stopping.is_set():
            wait = min(self._interval, TICK_SECONDS)
            try:
                report = await self.run_pass()
            except BotError as exc:
                log.warning("worker pass failed (%s); trying again in %.0f s", exc, DATABASE_RETRY_SECONDS)
                wait = DATABASE_RETRY_SECONDS
            else:
                if report.checked or report.failed or report.posted:
                    log.info(
                        "worker pass: %d checked, %d failed, %d posted",
                        report.checked,
                        report.failed,
                        report.posted,
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), wait)
        log.info("worker stopped")

    async def _check(self, watch: Watch, gate: asyncio.Semaphore, report: PassReport) -> None:
        async with gate:
            if self.stopping.is_set():
                await self._watch.give_back(watch)
                return
            try:
                async with asyncio.timeout(self._timeout):
                    result = await self._watch.check(watch)
            except TimeoutError:
                log.warning("check of %s took longer than %.0f s; given back", watch.workspace, self._timeout)
                report.failed += 1
                report.problems.append(f"{watch.workspace}: timed out")
                await self._watch.timed_out(watch)
                return
            except asyncio.CancelledError:
                with contextlib.suppress(BotError, TimeoutError):
                    async with asyncio.timeout(1):
                        await asyncio.shield(self._watch.give_back(watch))
                raise
            except BotError as exc:
                log.warning("check of %s failed: %s", watch.workspace, exc)
                report.failed += 1
                report.problems.append(f"{watch.workspace}: {exc}")
                return
            if result.ok:
                report.checked += 1
            else:
                report.failed += 1
                report.problems.append(f"{watch.workspace}: {result.problem}")
            if result.posts:
                report.posted += (await self._deliverer.deliver(result.posts)).sent

    async def _prune(self) -> None:
        now = time.monotonic()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY_SECONDS:
            return
        self._pruned_at = now
        removed = await self._watch.prune()
        if removed:
            log.info("pruned %d old sample(s) and post(s)", removed)


async def run_until_signalled(worker: Worker, work: Coroutine[Any, Any, T]) -> T | None:
    """Run `work` (passes of `worker`); on SIGTERM or SIGINT finish what is in hand (up to 8 s).

    Returns what `work` returned, or None when it had to be cut short.
    """
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, worker.stopping.set)
    task = asyncio.create_task(work, name="worker")
    stop = asyncio.create_task(worker.stopping.wait())
    await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    if not task.done():
        log.info("stopping: finishing the checks in hand (up to %.0f s)", STOP_GRACE_SECONDS)
        done, _ = await asyncio.wait({task}, timeout=STOP_GRACE_SECONDS)
        if not done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    stop.cancel()
    if task.cancelled():
        return None
    return task.result()
