"""Work that outlives the HTTP request it came from, tracked so shutdown can wait for it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

# At shutdown, what work cut short must still write (that a post was made, or may have been) gets
# this long once its task is cancelled.
RECORD_SECONDS = 1.0


class TaskTracker:
    """Starts background tasks, logs their failures, and waits for them on shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, work: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        """Run `work` in the background; it is awaited by `drain`."""
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def drain(self, grace_seconds: float) -> int:
        """Wait up to `grace_seconds` for running tasks; cancel the rest; return how many were cut."""
        pending = set(self._tasks)
        if not pending:
            return 0
        log.info("waiting up to %.0f s for %d reply(s) in flight", grace_seconds, len(pending))
        _, still_running = await asyncio.wait(pending, timeout=grace_seconds)
        for task in still_running:
            task.cancel()
        if still_running:
            await asyncio.wait(still_running, timeout=1)
            log.warning("cancelled %d reply(s) still running at shutdown", len(still_running))
        return len(still_running)


async def record(write: Coroutine[Any, Any, None], what: str) -> None:
    """Await `write`, which must not be lost halfway, even when this task is cancelled (shutdown).

    Cancelled before or during it, `write` still gets up to `RECORD_SECONDS` to finish (a failure
    then is logged), and the cancellation goes on.
    """
    task = asyncio.ensure_future(write)
    current = asyncio.current_task()
    if current is None or not current.cancelling():
        try:
            await asyncio.shield(task)
            return
        except asyncio.CancelledError:
            await _finish(task, what)
            raise
    await _finish(task, what)


async def _finish(task: asyncio.Future[None], what: str) -> None:
    try:
        async with asyncio.timeout(RECORD_SECONDS):
            await task
    except Exception as exc:
        log.error("could not record %s at shutdown: %s", what, type(exc).__name__)
