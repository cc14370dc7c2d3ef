"""Use cases, free of Slack and HTTP types: what the app does for a workspace."""

from __future__ import annotations

from typing import Protocol

from pydantic import SecretStr

from bot.domain import Balance, Requester
from bot.errors import NoApiKey


class BalanceReader(Protocol):
    """Anything that can read a balance with a key (the Breeze adapter, or a fake)."""

    async def get_balance(self, api_key: SecretStr) -> Balance: ...


class KeyProvider(Protocol):
    """Where a workspace's Breeze key comes from."""

    async def key_for(self, requester: Requester) -> SecretStr | None: ...


class EnvironmentKey:
    """Single-workspace mode: every request uses the key from `BREEZE_API_KEY`."""

    def __init__(self, key: SecretStr | None) -> None:
        self._key = key

    async def key_for(self, requester: Requester) -> SecretStr | None:
        """The configured key, whoever asks."""
        return self._key


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
