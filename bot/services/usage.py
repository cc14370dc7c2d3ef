"""`usage`: a window's spend for a workspace, read politely.

A report is read from Breeze at most once per `USAGE_REFRESH_SECONDS` for each workspace, key and
window, by whichever process claims the read in the shared store (the others wait briefly for its
answer, then read themselves rather than keep a person waiting); every process keeps what it read
or found for the same period. "Breeze does not meter for this key" is kept the same way, so a key
without metering costs one call a period, not one a command. Shared names carry the key's SHA-256,
never the key.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from pydantic import SecretStr

from bot import errors
from bot.domain.balances import Workspace
from bot.domain.usage import UsageReport, Window
from bot.services.caches import MAX_CACHED_WORKSPACES, Shared, key_slot, shared_name
from bot.services.ports import MeteringReader
from bot.services.watching import Now, utcnow

log = logging.getLogger(__name__)

# How long a process waits for the report another process claimed to read, before reading itself.
SHARED_WAIT_SECONDS = 5.0
_POLL_SECONDS = 0.1

Kept = tuple[datetime, UsageReport | errors.MeteringUnavailable]


class UsageService:
    """Usage reports of any window, each read at most once per refresh period."""

    def __init__(
        self,
        reader: MeteringReader,
        refresh_seconds: float,
        *,
        shared: Shared | None = None,
        now: Now = utcnow,
    ) -> None:
        self._reader = reader
        self._period = timedelta(seconds=refresh_seconds)
        self._shared = shared
        self._now = now
        self._kept: dict[str, Kept] = {}
        self._reading: dict[str, asyncio.Task[UsageReport]] = {}

    def now(self) -> datetime:
        """The service's clock."""
        return self._now()

    async def report(self, workspace: Workspace, key: SecretStr, window: Window) -> UsageReport:
        """The window's report (each day's spend too, when it is longer than a day).

        Raises `MeteringUnavailable` when Breeze does not meter for the key, and the usual
        `BreezeError`s when Breeze fails.
        """
        name = shared_name(
            "usage", *key_slot(workspace, key), window.start.isoformat(), window.end.isoformat()
        )
        reading = self._reading.get(name)
        if reading is None:
            reading = asyncio.ensure_future(self._report(name, key, window))
            self._reading[name] = reading
            reading.add_done_callback(lambda _: self._reading.pop(name, None))
        return await asyncio.shield(reading)

    async def _report(self, name: str, key: SecretStr, window: Window) -> UsageReport:
        found = await self._known(name)
        if found is None and self._shared is not None:
            taken = await self._shared.claim(f"{name}:read", self._period.total_seconds())
            if taken is False:
                found = await self._wait_for(name)
        if found is None:
            found = await self._read(name, key, window)
        if isinstance(found, errors.MeteringUnavailable):
            raise errors.MeteringUnavailable(str(found), found.reason)
        return found

    async def _known(self, name: str) -> UsageReport | errors.MeteringUnavailable | None:
        kept = self._kept.get(name)
        if kept is not None and self._now() - kept[0] < self._period:
            return kept[1]
        if self._shared is None:
            return None
        shared = await self._shared.get_usage(name)
        if shared is None:
            return None
        self._keep(name, shared)
        return shared

    async def _wait_for(self, name: str) -> UsageReport | errors.MeteringUnavailable | None:
        """The answer of the process that claimed the read, if it comes within `SHARED_WAIT_SECONDS`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SHARED_WAIT_SECONDS
        while loop.time() < deadline:
            await asyncio.sleep(_POLL_SECONDS)
            found = await self._known(name)
            if found is not None:
                return found
        return None

    async def _read(
        self, name: str, key: SecretStr, window: Window
    ) -> UsageReport | errors.MeteringUnavailable:
        try:
            found: UsageReport | errors.MeteringUnavailable = await self._reader.report(
                key, window, per_day=window.days > 1
            )
        except errors.MeteringUnavailable as exc:
            log.info("Breeze's usage report is unavailable to a workspace's key (%s)", exc.reason)
            found = exc
        except errors.BotError:
            if self._shared is not None:
                await self._shared.release(f"{name}:read")  # let the next command try again at once
            raise
        self._keep(name, found)
        if self._shared is not None:
            await self._shared.put_usage(name, found, self._period.total_seconds())
        return found

    def _keep(self, name: str, found: UsageReport | errors.MeteringUnavailable) -> None:
        if len(self._kept) >= MAX_CACHED_WORKSPACES:
            now = self._now()
            self._kept = {n: k for n, k in self._kept.items() if now - k[0] < self._period}
        self._kept[name] = (self._now(), found)
