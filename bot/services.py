"""Use cases, free of Slack and HTTP types: what the app does for a workspace."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from pydantic import SecretStr

from bot.domain import Balance, KeyRecord, Requester, Workspace, last_four
from bot.errors import BotError, BreezeTimeout, NoApiKey

# Caches are cleared rather than grown past this many entries (a deployment serves far fewer).
MAX_CACHED_WORKSPACES = 10_000


class BalanceReader(Protocol):
    """Anything that can read a balance with a key (the Breeze adapter, or a fake)."""

    async def get_balance(self, api_key: SecretStr) -> Balance: ...


class KeyProvider(Protocol):
    """Where a workspace's Breeze key comes from."""

    async def key_of(self, workspace: Workspace) -> SecretStr | None: ...


class StoredKeyLike(Protocol):
    """A decrypted stored key and what may be shown about it."""

    @property
    def key(self) -> SecretStr: ...

    @property
    def record(self) -> KeyRecord: ...


class KeyRepository(Protocol):
    """Encrypted per-workspace key storage (`bot.store.KeyStore`)."""

    async def get(self, workspace: Workspace) -> StoredKeyLike | None: ...

    async def record(self, workspace: Workspace) -> KeyRecord | None: ...

    async def put(
        self, workspace: Workspace, key: SecretStr, *, set_by: str, key_id: str | None
    ) -> KeyRecord: ...

    async def delete(self, workspace: Workspace) -> bool: ...

    async def delete_all(self, workspace: Workspace) -> int: ...


class WorkspaceKeys:
    """The workspace's stored key, cached briefly; in single-workspace mode `BREEZE_API_KEY` as a fallback.

    Other processes see a changed key within `cache_seconds`; this one at once (`forget`).
    """

    def __init__(
        self,
        store: KeyRepository,
        fallback: SecretStr | None,
        cache_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._fallback = fallback
        self._seconds = cache_seconds
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[SecretStr | None, float]] = {}

    async def key_of(self, workspace: Workspace) -> SecretStr | None:
        """The stored key of the workspace, else the fallback (if any)."""
        scope = workspace.scope
        cached = self._cache.get(scope)
        if cached is not None and self._clock() - cached[1] < self._seconds:
            return cached[0]
        stored = await self._store.get(workspace)
        key = stored.key if stored is not None else self._fallback
        if self._seconds > 0:
            if len(self._cache) >= MAX_CACHED_WORKSPACES:
                self._cache.clear()
            self._cache[scope] = (key, self._clock())
        return key

    def forget(self, workspace: Workspace) -> None:
        """Drop the cached key of a workspace whose key just changed here."""
        self._cache.pop(workspace.scope, None)


@dataclass(frozen=True, slots=True)
class BalanceAnswer:
    """A balance, how old it is when it came from the cache, and whether a refresh was refused."""

    balance: Balance
    age_seconds: float | None = None
    refresh_in_seconds: float | None = None


Slot = tuple[str, str, str]


class BalanceCache:
    """Per workspace and key: one Breeze call in flight at a time, its answer kept `seconds`."""

    def __init__(
        self, reader: BalanceReader, seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._reader = reader
        self._seconds = seconds
        self._clock = clock
        self._answers: dict[Slot, tuple[Balance, float]] = {}
        self._in_flight: dict[Slot, asyncio.Task[Balance]] = {}

    async def get(self, workspace: Workspace, key: SecretStr, *, fresh: bool) -> tuple[Balance, float | None]:
        """The balance and, when served from the cache, its age in seconds."""
        # A different key (set-key) is a different slot, so its first answer is never stale.
        slot = (*workspace.scope, hashlib.sha256(key.get_secret_value().encode()).hexdigest())
        if not fresh and self._seconds > 0:
            cached = self._answers.get(slot)
            if cached is not None and (age := self._clock() - cached[1]) < self._seconds:
                return cached[0], age
        task = self._in_flight.get(slot)
        if task is None:
            task = asyncio.create_task(self._fetch(slot, key), name="breeze-balance")
            self._in_flight[slot] = task
            task.add_done_callback(lambda done: self._settle(slot, done))
        # Shielded: one caller giving up does not cancel the call the others wait for.
        return await asyncio.shield(task), None

    async def _fetch(self, slot: Slot, key: SecretStr) -> Balance:
        balance = await self._reader.get_balance(key)
        if self._seconds > 0:
            if len(self._answers) >= MAX_CACHED_WORKSPACES:
                self._answers.clear()
            self._answers[slot] = (balance, self._clock())
        return balance

    def _settle(self, slot: Slot, task: asyncio.Task[Balance]) -> None:
        if self._in_flight.get(slot) is task:
            del self._in_flight[slot]
        if not task.cancelled():
            task.exception()  # every waiter got it; mark it seen


class RefreshLimiter:
    """At most one `refresh` per user per `interval` seconds, to spare the Breeze API."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._last: dict[Slot, float] = {}

    def wait_for(self, requester: Requester) -> float | None:
        """None if the user may refresh now (and counts it), else the seconds left to wait."""
        user = (*requester.workspace.scope, requester.user_id)
        now = self._clock()
        last = self._last.get(user)
        if last is not None and now - last < self._interval:
            return self._interval - (now - last)
        if len(self._last) >= MAX_CACHED_WORKSPACES:
            self._last = {k: t for k, t in self._last.items() if now - t < self._interval}
        self._last[user] = now
        return None


class BalanceService:
    """Finds the workspace's key and asks Breeze for its balance, through the cache."""

    def __init__(self, keys: KeyProvider, cache: BalanceCache, refreshes: RefreshLimiter) -> None:
        self._keys = keys
        self._cache = cache
        self._refreshes = refreshes

    async def balance_for(self, requester: Requester, *, refresh: bool = False) -> BalanceAnswer:
        """The balance of the requester's workspace; raises `NoApiKey` or a `BreezeError`."""
        key = await self._key(requester.workspace)
        wait = self._refreshes.wait_for(requester) if refresh else None
        balance, age = await self._cache.get(requester.workspace, key, fresh=refresh and wait is None)
        return BalanceAnswer(balance, age, wait)

    async def current(self, workspace: Workspace, *, fresh: bool) -> tuple[SecretStr, Balance]:
        """The key and balance of a workspace; `fresh` skips the cached answer (not a call in flight)."""
        key = await self._key(workspace)
        balance, _ = await self._cache.get(workspace, key, fresh=fresh)
        return key, balance

    async def _key(self, workspace: Workspace) -> SecretStr:
        key = await self._keys.key_of(workspace)
        if key is None:
            raise NoApiKey("no Breeze API key is configured for this workspace")
        return key


class KeySource(StrEnum):
    """Where the key that answers a workspace comes from."""

    WORKSPACE = "workspace"
    ENVIRONMENT = "environment"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """What an admin sees: the key's source and record, and what Breeze said of it."""

    source: KeySource
    record: KeyRecord | None
    last4: str | None
    balance: Balance | None
    problem: BotError | None


class KeyService:
    """Set, check, remove and describe a workspace's Breeze key."""

    def __init__(
        self,
        store: KeyRepository,
        reader: BalanceReader,
        fallback: SecretStr | None,
        keys: WorkspaceKeys | None = None,
    ) -> None:
        self._store = store
        self._reader = reader
        self._fallback = fallback
        self._keys = keys

    async def try_key(self, key: SecretStr, deadline_seconds: float) -> Balance:
        """Ask Breeze for the balance with a candidate key, within `deadline_seconds`."""
        try:
            async with asyncio.timeout(deadline_seconds):
                return await self._reader.get_balance(key)
        except TimeoutError:
            raise BreezeTimeout(f"Breeze did not answer within {deadline_seconds:g} s") from None

    async def save(self, workspace: Workspace, key: SecretStr, *, set_by: str, balance: Balance) -> KeyRecord:
        """Store a key Breeze has just accepted."""
        record = await self._store.put(workspace, key, set_by=set_by, key_id=balance.key_id)
        self._forget(workspace)
        return record

    async def current(self, workspace: Workspace) -> KeyRecord | None:
        """What may be shown about the workspace's stored key."""
        return await self._store.record(workspace)

    async def remove(self, workspace: Workspace) -> bool:
        """Forget the workspace's stored key; True if there was one."""
        removed = await self._store.delete(workspace)
        self._forget(workspace)
        return removed

    async def forget(self, workspace: Workspace) -> int:
        """Forget every key of an uninstalled workspace or org."""
        removed = await self._store.delete_all(workspace)
        self._forget(workspace)
        return removed

    def _forget(self, workspace: Workspace) -> None:
        if self._keys is not None:
            self._keys.forget(workspace)

    async def status(self, workspace: Workspace) -> KeyStatus:
        """The key's source and record, and whether Breeze accepts it now."""
        try:
            stored = await self._store.get(workspace)
        except BotError as exc:
            record = await self._store.record(workspace)
            return KeyStatus(KeySource.WORKSPACE, record, record.last4 if record else None, None, exc)
        if stored is not None:
            source, key, record = KeySource.WORKSPACE, stored.key, stored.record
        elif self._fallback is not None:
            source, key, record = KeySource.ENVIRONMENT, self._fallback, None
        else:
            return KeyStatus(KeySource.NONE, None, None, None, None)
        last4 = last_four(key.get_secret_value())
        try:
            balance = await self._reader.get_balance(key)
        except BotError as exc:
            return KeyStatus(source, record, last4, None, exc)
        return KeyStatus(source, record, last4, balance, None)
