"""Use cases, free of Slack and HTTP types: what the app does for a workspace."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from pydantic import SecretStr

from bot.domain import Balance, KeyRecord, Requester, Workspace, last_four
from bot.errors import BotError, BreezeTimeout, NoApiKey


class BalanceReader(Protocol):
    """Anything that can read a balance with a key (the Breeze adapter, or a fake)."""

    async def get_balance(self, api_key: SecretStr) -> Balance: ...


class KeyProvider(Protocol):
    """Where a workspace's Breeze key comes from."""

    async def key_for(self, requester: Requester) -> SecretStr | None: ...


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


class EnvironmentKey:
    """Every request uses the key from `BREEZE_API_KEY` (no database involved)."""

    def __init__(self, key: SecretStr | None) -> None:
        self._key = key

    async def key_for(self, requester: Requester) -> SecretStr | None:
        """The configured key, whoever asks."""
        return self._key


class WorkspaceKeys:
    """The workspace's stored key; in single-workspace mode, `BREEZE_API_KEY` as a fallback."""

    def __init__(self, store: KeyRepository, fallback: SecretStr | None) -> None:
        self._store = store
        self._fallback = fallback

    async def key_for(self, requester: Requester) -> SecretStr | None:
        """The stored key of the requester's workspace, else the fallback (if any)."""
        stored = await self._store.get(requester.workspace)
        return stored.key if stored is not None else self._fallback


class BalanceService:
    """Finds the workspace's key and asks Breeze for its balance."""

    def __init__(self, reader: BalanceReader, keys: KeyProvider) -> None:
        self._reader = reader
        self._keys = keys

    async def balance_for(self, requester: Requester) -> Balance:
        """The balance of the requester's workspace; raises `NoApiKey` or a `BreezeError`."""
        key = await self._keys.key_for(requester)
        if key is None:
            raise NoApiKey("no Breeze API key is configured for this workspace")
        return await self._reader.get_balance(key)


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

    def __init__(self, store: KeyRepository, reader: BalanceReader, fallback: SecretStr | None) -> None:
        self._store = store
        self._reader = reader
        self._fallback = fallback

    async def try_key(self, key: SecretStr, deadline_seconds: float) -> Balance:
        """Ask Breeze for the balance with a candidate key, within `deadline_seconds`."""
        try:
            async with asyncio.timeout(deadline_seconds):
                return await self._reader.get_balance(key)
        except TimeoutError:
            raise BreezeTimeout(f"Breeze did not answer within {deadline_seconds:g} s") from None

    async def save(self, workspace: Workspace, key: SecretStr, *, set_by: str, balance: Balance) -> KeyRecord:
        """Store a key Breeze has just accepted."""
        return await self._store.put(workspace, key, set_by=set_by, key_id=balance.key_id)

    async def current(self, workspace: Workspace) -> KeyRecord | None:
        """What may be shown about the workspace's stored key."""
        return await self._store.record(workspace)

    async def remove(self, workspace: Workspace) -> bool:
        """Forget the workspace's stored key; True if there was one."""
        return await self._store.delete(workspace)

    async def forget(self, workspace: Workspace) -> int:
        """Forget every key of an uninstalled workspace or org."""
        return await self._store.delete_all(workspace)

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
