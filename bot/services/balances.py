"""Use cases, free of Slack and HTTP types: what the app does for a workspace."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from pydantic import SecretStr

from bot.domain.balances import Balance, KeyRecord, Requester, Workspace, last_four
from bot.errors import BotError, BreezeTimeout, NoApiKey
from bot.services.caches import BalanceCache, BalanceReader, RefreshLimiter, WorkspaceKeys


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
    """Encrypted per-workspace key storage (`bot.adapters.key_store.KeyStore`)."""

    async def get(self, workspace: Workspace) -> StoredKeyLike | None: ...

    async def record(self, workspace: Workspace) -> KeyRecord | None: ...

    async def put(
        self, workspace: Workspace, key: SecretStr, *, set_by: str, key_id: str | None
    ) -> KeyRecord: ...

    async def delete(self, workspace: Workspace) -> bool: ...

    async def delete_all(self, workspace: Workspace) -> int: ...


@dataclass(frozen=True, slots=True)
class BalanceAnswer:
    """A balance, how old it is when it came from the cache, and whether a refresh was refused."""

    balance: Balance
    age_seconds: float | None = None
    refresh_in_seconds: float | None = None


class BalanceService:
    """Finds the workspace's key and asks Breeze for its balance, through the cache."""

    def __init__(self, keys: KeyProvider, cache: BalanceCache, refreshes: RefreshLimiter) -> None:
        self._keys = keys
        self._cache = cache
        self._refreshes = refreshes

    async def balance_for(
        self, requester: Requester, *, refresh: bool = False, key: SecretStr | None = None
    ) -> BalanceAnswer:
        """The balance of the requester's workspace, with its `key` when the caller has just read it;
        raises `NoApiKey` or a `BreezeError`."""
        key = key if key is not None else await self.key_of(requester.workspace)
        wait = await self._refreshes.take(requester) if refresh else None
        balance, age = await self._cache.get(requester.workspace, key, fresh=refresh and wait is None)
        return BalanceAnswer(balance, age, wait)

    async def current(
        self, workspace: Workspace, *, fresh: bool, key: SecretStr | None = None
    ) -> tuple[SecretStr, Balance]:
        """The key and balance of a workspace (with its `key` when the caller has just read it); `fresh`
        skips the cached answer (not a call in flight)."""
        key = key if key is not None else await self.key_of(workspace)
        balance, _ = await self._cache.get(workspace, key, fresh=fresh)
        return key, balance

    async def key_of(self, workspace: Workspace) -> SecretStr:
        """The key that answers for the workspace; raises `NoApiKey` without one."""
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
        cache: BalanceCache | None = None,
        on_saved: Callable[[Workspace, SecretStr], None] | None = None,
    ) -> None:
        self._store = store
        self._reader = reader
        self._fallback = fallback
        self._keys = keys
        self._cache = cache
        self._on_saved = on_saved

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
        await self._forget(workspace)
        if self._cache is not None:
            # Breeze just answered for this key: the next reply (and the Home tab) needs no call.
            await self._cache.prime(workspace, key, balance)
        if self._on_saved is not None:
            self._on_saved(workspace, key)  # the metering prefetch: the first command then finds it
        return record

    async def current(self, workspace: Workspace) -> KeyRecord | None:
        """What may be shown about the workspace's stored key."""
        return await self._store.record(workspace)

    async def remove(self, workspace: Workspace) -> bool:
        """Forget the workspace's stored key; True if there was one."""
        removed = await self._store.delete(workspace)
        await self._forget(workspace)
        return removed

    async def forget(self, workspace: Workspace) -> int:
        """Forget every key of an uninstalled workspace or org."""
        removed = await self._store.delete_all(workspace)
        await self._forget(workspace)
        return removed

    async def _forget(self, workspace: Workspace) -> None:
        if self._keys is not None:
            await self._keys.changed(workspace)

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
