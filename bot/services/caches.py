"""What spares Breeze and the database: the balance cache with its coalescing, the refresh limit
and the decrypted-key cache (`bot.services.metering` keeps Breeze's metering alike). Each works
in-process, and with a `Shared` store (Redis) across every process and dyno; when the shared store
fails they carry on in-process, never waiting on it.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Callable
from typing import Protocol

from pydantic import SecretStr

from bot.domain.balances import Balance, Requester, Workspace
from bot.domain.spend import Metering
from bot.domain.usage import UsageReport
from bot.errors import MeteringUnavailable

# Caches are cleared rather than grown past this many entries (a deployment serves far fewer).
MAX_CACHED_WORKSPACES = 10_000
# While another process asks Breeze for the same balance, look for its answer this often.
SHARED_POLL_SECONDS = 0.05

Slot = tuple[str, str, str]


class Shared(Protocol):
    """State shared by every process (`bot.adapters.redis_shared.RedisShared`). Never holds a key or a token.

    Every method answers None (or False) at once when the store is unavailable.
    """

    @property
    def available(self) -> bool: ...

    async def get_balance(self, slot: str) -> tuple[Balance, float] | None: ...

    async def put_balance(self, slot: str, balance: Balance, seconds: float) -> None: ...

    async def get_metering(self, name: str) -> Metering | None: ...

    async def put_metering(self, name: str, metering: Metering, seconds: float) -> None: ...

    async def get_usage(self, name: str) -> UsageReport | MeteringUnavailable | None: ...

    async def put_usage(
        self, name: str, found: UsageReport | MeteringUnavailable, seconds: float
    ) -> None: ...

    async def claim(self, name: str, seconds: float, holder: str = "1") -> bool | None: ...

    async def holder(self, name: str) -> str | None: ...

    async def release(self, name: str) -> None: ...

    async def wait_left(self, name: str) -> float | None: ...

    async def version(self, name: str) -> int | None: ...

    async def bump(self, name: str) -> None: ...


class BalanceReader(Protocol):
    """Anything that can read a balance with a key (the Breeze adapter, or a fake)."""

    async def get_balance(self, api_key: SecretStr) -> Balance: ...


class StoredKeyLike(Protocol):
    """A decrypted stored key and what may be shown about it."""

    @property
    def key(self) -> SecretStr: ...


class KeyReader(Protocol):
    """Where the workspace's stored key is read from (`bot.adapters.key_store.KeyStore`)."""

    async def get(self, workspace: Workspace) -> StoredKeyLike | None: ...


def key_slot(workspace: Workspace, key: SecretStr) -> Slot:
    """Where what is read for a workspace with this key (its balance, its metering) is kept: a new key
    (set-key) is a new slot, so its first answer is never stale. The key itself is never part of it,
    only its SHA-256."""
    return (*workspace.scope, hashlib.sha256(key.get_secret_value().encode()).hexdigest())


def shared_name(*parts: str) -> str:
    """A name in the shared store: `balance:E:T:<sha-256>`, an empty part as `-`."""
    return ":".join(part or "-" for part in parts)


class WorkspaceKeys:
    """The workspace's stored key, cached briefly; in single-workspace mode `BREEZE_API_KEY` as a fallback.

    With `shared`, a key set or removed in any process is used by every other one at once (a
    version number is read with each cached key); without it, within `cache_seconds`.
    """

    def __init__(
        self,
        store: KeyReader,
        fallback: SecretStr | None,
        cache_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        shared: Shared | None = None,
    ) -> None:
        self._store = store
        self._fallback = fallback
        self._seconds = cache_seconds
        self._clock = clock
        self._shared = shared
        self._cache: dict[tuple[str, str], tuple[SecretStr | None, float, int | None]] = {}

    async def key_of(self, workspace: Workspace) -> SecretStr | None:
        """The stored key of the workspace, else the fallback (if any)."""
        scope = workspace.scope
        version = await self._shared.version(shared_name("key", *scope)) if self._shared is not None else None
        cached = self._cache.get(scope)
        if cached is not None and self._clock() - cached[1] < self._seconds and cached[2] == version:
            return cached[0]
        stored = await self._store.get(workspace)
        key = stored.key if stored is not None else self._fallback
        if self._seconds > 0:
            if len(self._cache) >= MAX_CACHED_WORKSPACES:
                self._cache.clear()
            self._cache[scope] = (key, self._clock(), version)
        return key

    async def changed(self, workspace: Workspace) -> None:
        """The workspace's key was just set or removed: forget it here, and in every process."""
        self._cache.pop(workspace.scope, None)
        if self._shared is not None:
            await self._shared.bump(shared_name("key", *workspace.scope))


class BalanceCache:
    """Per workspace and key: one Breeze call in flight at a time, its answer kept `seconds`.

    With `shared`, the answer is kept for every process, and a process that finds another one
    already asking Breeze waits for that answer instead of asking again, even with the cache off
    (`seconds` 0): that call's answer is then handed to the processes that waited on it, under a
    name only they know, and kept for no one else.
    """

    def __init__(
        self,
        reader: BalanceReader,
        seconds: float,
        clock: Callable[[], float] = time.monotonic,
        shared: Shared | None = None,
        wait_seconds: float = 10.0,
    ) -> None:
        self._reader = reader
        self._seconds = seconds
        self._clock = clock
        self._shared = shared
        self._wait = wait_seconds
        self._answers: dict[Slot, tuple[Balance, float]] = {}
        self._in_flight: dict[Slot, asyncio.Task[Balance]] = {}

    async def get(self, workspace: Workspace, key: SecretStr, *, fresh: bool) -> tuple[Balance, float | None]:
        """The balance and, when served from the cache, its age in seconds."""
        slot = key_slot(workspace, key)
        if not fresh and self._seconds > 0:
            cached = self._answers.get(slot)
            if cached is not None and (age := self._clock() - cached[1]) < self._seconds:
                return cached[0], age
            shared = await self._from_shared(slot)
            if shared is not None:
                return shared
        task = self._in_flight.get(slot)
        if task is None:
            task = asyncio.create_task(self._fetch(slot, key, fresh), name="breeze-balance")
            self._in_flight[slot] = task
            task.add_done_callback(lambda done: self._settle(slot, done))
        # Shielded: one caller giving up does not cancel the call the others wait for.
        return await asyncio.shield(task), None

    async def prime(self, workspace: Workspace, key: SecretStr, balance: Balance) -> None:
        """Keep a balance Breeze has just given for this key (as when a key is checked and saved)."""
        if self._seconds <= 0:
            return
        slot = key_slot(workspace, key)
        self._remember(slot, balance, self._clock())
        if self._shared is not None:
            await self._shared.put_balance(shared_name("balance", *slot), balance, self._seconds)

    async def _from_shared(self, slot: Slot) -> tuple[Balance, float] | None:
        if self._shared is None:
            return None
        found = await self._shared.get_balance(shared_name("balance", *slot))
        if found is None:
            return None
        balance, fetched_at = found
        age = max(0.0, time.time() - fetched_at)
        if age >= self._seconds:
            return None
        self._remember(slot, balance, self._clock() - age)
        return balance, age

    async def _fetch(self, slot: Slot, key: SecretStr, fresh: bool) -> Balance:
        asking, flight = shared_name("asking", *slot), uuid.uuid4().hex
        claimed = None
        if self._shared is not None:
            claimed = await self._shared.claim(asking, self._wait, holder=flight)
            if claimed is False and not fresh:
                waited = await self._wait_for_other(slot, await self._shared.holder(asking))
                if waited is not None:
                    return waited
        try:
            balance = await self._reader.get_balance(key)
            if self._seconds > 0:
                self._remember(slot, balance, self._clock())
            if claimed and self._shared is not None:
                # Stored before the claim is released, so a process waiting on it finds the answer.
                if self._seconds > 0:
                    await self._shared.put_balance(shared_name("balance", *slot), balance, self._seconds)
                await self._shared.put_balance(shared_name("answer", *slot, flight), balance, self._wait)
        finally:
            if claimed and self._shared is not None:
                await self._shared.release(asking)
        return balance

    async def _wait_for_other(self, slot: Slot, flight: str | None) -> Balance | None:
        """Another process is asking Breeze (its call is `flight`): wait for the answer it hands over."""
        deadline = self._clock() + self._wait
        while self._clock() < deadline:
            await asyncio.sleep(SHARED_POLL_SECONDS)
            found = await self._handed_over(slot, flight)
            if found is not None:
                return found
            if self._shared is None or not self._shared.available:
                return None
            if await self._shared.wait_left(shared_name("asking", *slot)) is None:
                # Done: its answer was stored before the claim was released, unless it failed (an
                # error is never shared) and we ask ourselves.
                return await self._handed_over(slot, flight)
        return None

    async def _handed_over(self, slot: Slot, flight: str | None) -> Balance | None:
        """The answer of the call `flight`, else (with the cache on) the shared cache's."""
        if self._shared is not None and flight is not None:
            found = await self._shared.get_balance(shared_name("answer", *slot, flight))
            if found is not None:
                return found[0]
        if self._seconds > 0:
            cached = await self._from_shared(slot)
            return cached[0] if cached is not None else None
        return None

    def _remember(self, slot: Slot, balance: Balance, at: float) -> None:
        if len(self._answers) >= MAX_CACHED_WORKSPACES:
            self._answers.clear()
        self._answers[slot] = (balance, at)

    def _settle(self, slot: Slot, task: asyncio.Task[Balance]) -> None:
        if self._in_flight.get(slot) is task:
            del self._in_flight[slot]
        if not task.cancelled():
            task.exception()  # every waiter got it; mark it seen


class RefreshLimiter:
    """At most one `refresh` per user per `interval` seconds, to spare the Breeze API; with `shared`,
    counted across every process."""

    def __init__(
        self, interval: float, clock: Callable[[], float] = time.monotonic, shared: Shared | None = None
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._shared = shared
        self._last: dict[Slot, float] = {}

    async def take(self, requester: Requester) -> float | None:
        """None if the user may refresh now (and counts it), else the seconds left to wait."""
        if self._shared is not None:
            name = shared_name("refresh", *requester.workspace.scope, requester.user_id)
            claimed = await self._shared.claim(name, self._interval)
            if claimed is True:
                return None
            if claimed is False:
                left = await self._shared.wait_left(name)
                return left if left is not None else self._interval
        return self.wait_for(requester)

    def wait_for(self, requester: Requester) -> float | None:
        """In this process only: None if the user may refresh now (and counts it), else the wait."""
        user = (*requester.workspace.scope, requester.user_id)
        now = self._clock()
        last = self._last.get(user)
        if last is not None and now - last < self._interval:
            return self._interval - (now - last)
        if len(self._last) >= MAX_CACHED_WORKSPACES:
            self._last = {k: t for k, t in self._last.items() if now - t < self._interval}
        self._last[user] = now
        return None
