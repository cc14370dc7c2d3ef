"""What the use cases need from storage, from Slack and from Breeze's metering, as protocols the outer
layers fulfil.

`bot.adapters.watch` implements storage on SQLite and PostgreSQL; the services never see SQL.
`bot.adapters.metering.MeteringClient` reads Breeze's metering; the services never see HTTP.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from pydantic import SecretStr

from bot.domain.balances import Workspace
from bot.domain.rules import Decide, PendingPost, Rules, RulesChange, Tell, Watch
from bot.domain.runway import Sample
from bot.domain.spend import Metering
from bot.domain.usage import KeyBudget, UsageReport, Window

T = TypeVar("T")


class WatchRepository(Protocol):
    """Rules and their state, samples and seen top-ups: one transaction per change."""

    async def get(self, workspace: Workspace) -> Watch | None: ...

    async def update_rules(
        self, workspace: Workspace, change: RulesChange, now: datetime, *, reset: Mapping[str, Any]
    ) -> Rules: ...

    async def mark_seen(self, workspace: Workspace, keys: Sequence[str], now: datetime) -> None: ...

    async def claim(
        self, now: datetime, lease: timedelta, limit: int, *, checked_before: datetime | None = None
    ) -> list[Watch]: ...

    async def count(self) -> int: ...

    async def samples(self, workspace: Workspace, since: datetime) -> list[Sample]: ...

    async def record_check(self, workspace: Workspace, decide: Decide, now: datetime) -> list[int]: ...

    async def record_fault(
        self, workspace: Workspace, fault: str, now: datetime, next_check_at: datetime, tell: Tell
    ) -> list[int]: ...

    async def release(self, workspace: Workspace, next_check_at: datetime) -> None: ...

    async def forget(self, workspace: Workspace) -> int: ...

    async def prune(self, before: datetime) -> int: ...


class OutboxRepository(Protocol):
    """Posts waiting for Slack, claimed with a lease."""

    async def claim_posts(
        self, now: datetime, lease: timedelta, limit: int, ids: Sequence[int] | None = None
    ) -> list[PendingPost]: ...

    async def sent(self, post: PendingPost, now: datetime) -> None: ...

    async def not_sent(
        self,
        post: PendingPost,
        error: str,
        retry_at: datetime | None,
        now: datetime,
        *,
        fault: str | None = None,
        tell: Tell | None = None,
    ) -> list[int]: ...

    async def hold(self, workspace: Workspace, until: datetime, uncounted: Sequence[int]) -> None: ...

    async def next_post_at(self) -> datetime | None: ...


@dataclass(slots=True)
class Delivered:
    """How a round of delivery went."""

    sent: int = 0
    failed: int = 0


class Delivery(Protocol):
    """Sends due posts from the outbox to Slack (`bot.slack.delivery` fulfils it)."""

    async def deliver(self, ids: Sequence[int] | None = None) -> Delivered: ...


class MeteringReader(Protocol):
    """Breeze's metering for a key (`bot.adapters.metering.MeteringClient`).

    Each method raises `MeteringUnavailable` when Breeze does not offer it to the key (the features
    that need it step aside), and the usual `BreezeError`s otherwise (`KeyRejected` for a bad key).
    """

    async def report(
        self, api_key: SecretStr, window: Window, *, per_day: bool = False, api_key_id: str | None = None
    ) -> UsageReport:
        """The window's exact totals and its newest requests (1,000 at most); with `per_day`, each
        date's spend; `api_key_id` keeps only the requests made with that key."""
        ...

    async def spend(self, api_key: SecretStr, window: Window, *, api_key_id: str | None = None) -> int:
        """What the window cost in millicredits, exactly (one call)."""
        ...

    async def current_key(self, api_key: SecretStr) -> KeyBudget:
        """The calling key and its own budget."""
        ...


class MeteringSource(Protocol):
    """Each workspace's metering by Breeze, read politely (`bot.services.metering.MeteringService`)."""

    async def beside(
        self,
        workspace: Workspace,
        work: Awaitable[T],
        *,
        key: SecretStr | None = None,
        extra_seconds: float | None = None,
    ) -> tuple[T, Metering | None]:
        """`work`'s answer, and the metering looked up alongside it (with the workspace's `key` when the
        caller has read it), waited for at most `extra_seconds` past `work` (None when there is none yet)."""
        ...
