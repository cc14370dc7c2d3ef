"""Use cases of the watching bot: admins' rules, a check of one workspace, the outbox's policy.

No Slack types here: posts are queued as facts (`bot.domain.rules.Post`) and turned into Block Kit by
`bot.slack.blocks.notices` when they are delivered.
"""

from __future__ import annotations

import hashlib
import logging
import time as clock
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from pydantic import SecretStr

from bot import errors
from bot.domain.balances import Balance, TopupStatus, Workspace
from bot.domain.rules import (
    AlertRule,
    Checked,
    DaysRule,
    DigestRule,
    Frequency,
    PendingPost,
    Post,
    PostKind,
    Rules,
    RulesChange,
    SpikeRule,
    TopupRule,
    Watch,
    evaluate,
    topup_key,
)
from bot.domain.runway import WINDOW, Runway, Sample, prune_before, runway, sparkline
from bot.domain.schedule import next_digest
from bot.domain.spend import Metering
from bot.domain.spend_rules import evaluate_spend
from bot.services.balances import BalanceService
from bot.services.caches import MAX_CACHED_WORKSPACES
from bot.services.ports import MeteringSource, OutboxRepository, WatchRepository

log = logging.getLogger(__name__)

Now = Callable[[], datetime]

# How long a worker holds a workspace or a post it claimed; longer than any check or post takes.
LEASE = timedelta(seconds=60)
BACKOFF_CAP_SECONDS = 1800.0
# A post that Slack still refuses after this long is dropped (an alert a day late helps nobody).
GIVE_UP_AFTER = timedelta(hours=24)
FAULT_DM_ATTEMPTS = 3
# Why a post cut short at shutdown is not retried (its outbox row's last error).
CUT_SHORT = "cut short at shutdown: may have been posted, so not retried"
RUNWAY_CACHE_SECONDS = 60.0
# A check waits at most this long past the balance for Breeze's metering (a slower read is kept for
# the next check), so the other rules are never held up for long by it.
METERING_WAIT_SECONDS = 5.0

# Breeze faults an admin can fix, told once by direct message; others are retried quietly.
_ADMIN_FIXES = (errors.KeyRejected, errors.KeyForbidden, errors.NoApiKey, errors.StoredKeyUnreadable)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def fingerprint(key: SecretStr) -> str:
    """A short one-way fingerprint of a key: tells samples read with different keys apart."""
    return hashlib.sha256(key.get_secret_value().encode()).hexdigest()[:16]


def backoff(interval: float, failures: int) -> timedelta:
    """Seconds until the next try after `failures` failures in a row: doubling, capped."""
    cap = max(interval, BACKOFF_CAP_SECONDS)
    return timedelta(seconds=min(cap, interval * 2 ** min(failures, 20)))


@dataclass(frozen=True, slots=True)
class Trend:
    """The runway and the sparkline of a workspace, for replies and digests."""

    runway: Runway
    sparkline: str


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What one check did."""

    workspace: Workspace
    ok: bool
    posts: list[int]
    problem: str | None = None


class WatchService:
    """Rules set from Slack, checks of one workspace, and the trend shown in replies."""

    def __init__(
        self,
        store: WatchRepository,
        balances: BalanceService,
        interval_seconds: float,
        now: Now = utcnow,
        metering: MeteringSource | None = None,
    ) -> None:
        self._store = store
        self._balances = balances
        self._interval = interval_seconds
        self._now = now
        self._metering = metering
        self._trends: dict[tuple[str, str], tuple[Trend | None, float]] = {}

    def now(self) -> datetime:
        """The service's clock."""
        return self._now()

    @property
    def store(self) -> WatchRepository:
        """Where rules, samples and posts live (the outbox shares it)."""
        return self._store

    # --- rules ---------------------------------------------------------------------------------

    async def watch(self, workspace: Workspace) -> Watch | None:
        """The workspace's rules and their state, if it has any."""
        return await self._store.get(workspace)

    async def set_alert(self, workspace: Workspace, threshold: Decimal, channel: str, set_by: str) -> Rules:
        """Warn in `channel` below `threshold`; armed afresh, so a balance already below alerts once."""
        rule = AlertRule(threshold, channel, set_by)
        return await self._change(workspace, lambda r: replace(r, alert=rule), alert_armed=True)

    async def clear_alert(self, workspace: Workspace) -> Rules:
        """Stop the low-balance alert."""
        return await self._change(workspace, lambda r: replace(r, alert=None), alert_armed=True)

    async def set_topups(self, workspace: Workspace, channel: str, set_by: str) -> Rules:
        """Announce new top-ups in `channel`; those already there are not announced."""
        rule = TopupRule(channel, set_by)
        rules = await self._change(workspace, lambda r: replace(r, topups=rule), topups_baselined=False)
        try:
            _, balance = await self._balances.current(workspace, fresh=False)
        except errors.BotError as exc:
            # The first check takes the baseline instead.
            log.info("top-up notices for %s: baseline left to the worker (%s)", workspace, exc)
            return rules
        keys = [key for topup in balance.topups if (key := topup_key(topup))]
        await self._store.mark_seen(workspace, keys, self._now())
        return rules

    async def clear_topups(self, workspace: Workspace) -> Rules:
        """Stop top-up notices."""
        return await self._change(workspace, lambda r: replace(r, topups=None), topups_baselined=False)

    async def set_digest(
        self, workspace: Workspace, frequency: Frequency, at: time, tz: str, channel: str, set_by: str
    ) -> Rules:
        """A digest at the next occurrence of `at` in `tz` (never at once), then daily or weekly."""
        first = next_digest(frequency.value, at, tz, self._now())
        rule = DigestRule(frequency, at, tz, channel, set_by, first)
        return await self._change(workspace, lambda r: replace(r, digest=rule))

    async def clear_digest(self, workspace: Workspace) -> Rules:
        """Stop the digest."""
        return await self._change(workspace, lambda r: replace(r, digest=None))

    async def set_days(self, workspace: Workspace, days: int, channel: str, set_by: str) -> Rules:
        """Warn in `channel` when the metered runway falls under `days` days; armed afresh."""
        rule = DaysRule(days, channel, set_by)
        return await self._change(workspace, lambda r: replace(r, days=rule), days_armed=True)

    async def clear_days(self, workspace: Workspace) -> Rules:
        """Stop the runway alert."""
        return await self._change(workspace, lambda r: replace(r, days=None), days_armed=True)

    async def set_spike(self, workspace: Workspace, multiple: Decimal, channel: str, set_by: str) -> Rules:
        """Warn in `channel` at most once a UTC day when its spend is over `multiple` times the usual."""
        rule = SpikeRule(multiple, channel, set_by)
        return await self._change(workspace, lambda r: replace(r, spike=rule))

    async def clear_spike(self, workspace: Workspace) -> Rules:
        """Stop the spike alert."""
        return await self._change(workspace, lambda r: replace(r, spike=None))

    async def key_changed(self, workspace: Workspace) -> None:
        """A new or removed key: check again at once, and tell admins afresh about a new fault."""
        await self._change(workspace, lambda r: r)
        self._trends.pop(workspace.scope, None)

    async def forget(self, workspace: Workspace) -> int:
        """Delete the rules, samples and pending posts of an uninstalled workspace."""
        self._trends.pop(workspace.scope, None)
        return await self._store.forget(workspace)

    async def _change(self, workspace: Workspace, change: RulesChange, **reset: object) -> Rules:
        return await self._store.update_rules(workspace, change, self._now(), reset=dict(reset))

    # --- the trend -----------------------------------------------------------------------------

    async def trend(self, workspace: Workspace, balance: Decimal | None = None) -> Trend | None:
        """Runway and sparkline from the last week's samples (cached a minute); None without samples."""
        cached = self._trends.get(workspace.scope)
        if cached is not None and clock.monotonic() - cached[1] < RUNWAY_CACHE_SECONDS:
            return cached[0]
        now = self._now()
        samples = await self._store.samples(workspace, now - WINDOW)
        found = _trend(samples, now) if samples else None
        if len(self._trends) >= MAX_CACHED_WORKSPACES:
            self._trends.clear()
        self._trends[workspace.scope] = (found, clock.monotonic())
        return found

    # --- checks, for the worker ----------------------------------------------------------------

    async def claim(self, limit: int, *, checked_before: datetime | None = None) -> list[Watch]:
        """Workspaces due for a check (or, with `checked_before`, not checked since), leased to us."""
        return await self._store.claim(self._now(), LEASE, limit, checked_before=checked_before)

    async def check(self, watch: Watch) -> CheckReport:
        """Read the balance, apply the rules, and record state, sample and posts in one transaction."""
        workspace = watch.workspace
        now = self._now()
        try:
            (key, balance), metering = await self._balance_and_metering(watch)
        except errors.BotError as exc:
            return await self._failed(watch, exc, now)
        samples = await self._store.samples(workspace, now - WINDOW)

        def decide(locked: Watch, seen: frozenset[str]) -> Checked:
            sample = Sample(now, balance.credits, _new_topup_credits(balance, seen), fingerprint(key))
            trend = _trend([*samples, sample], now)
            outcome = evaluate(
                locked.rules,
                locked.state,
                balance,
                now,
                seen=seen,
                runway=trend.runway,
                sparkline=trend.sparkline,
                topped_up=sample.topup_credits,
            )
            outcome = evaluate_spend(locked.rules, outcome, balance.credits, now, metering)
            digest = locked.rules.digest
            digest_next = None
            if digest is not None and any(p.kind is PostKind.DIGEST for p in outcome.posts):
                digest_next = next_digest(digest.frequency.value, digest.at, digest.tz, now)
            return Checked(outcome, sample, now + timedelta(seconds=self._interval), digest_next)

        posts = await self._store.record_check(workspace, decide, now)
        self._trends.pop(workspace.scope, None)
        return CheckReport(workspace, True, posts)

    async def _balance_and_metering(self, watch: Watch) -> tuple[tuple[SecretStr, Balance], Metering | None]:
        """The balance, and Breeze's metering beside it when a rule of the workspace shows or needs it
        (all but top-up notices)."""
        rules, workspace = watch.rules, watch.workspace
        key = await self._balances.key_of(workspace)  # read once, for the balance and the metering
        reading = self._balances.current(workspace, fresh=True, key=key)
        if self._metering is None or all(
            r is None for r in (rules.alert, rules.digest, rules.days, rules.spike)
        ):
            return await reading, None
        return await self._metering.beside(workspace, reading, key=key, extra_seconds=METERING_WAIT_SECONDS)

    async def give_back(self, watch: Watch) -> None:
        """Release a workspace unchecked (the worker is stopping), keeping its schedule."""
        await self._store.release(watch.workspace, watch.next_check_at)

    async def timed_out(self, watch: Watch) -> None:
        """A check that took too long counts as failed: try again after a backoff."""
        now = self._now()
        wait = backoff(self._interval, watch.failures + 1)
        await self._store.record_fault(watch.workspace, "worker:TIMEOUT", now, now + wait, lambda _: [])

    async def prune(self) -> int:
        """Delete samples and finished posts older than 90 days."""
        return await self._store.prune(prune_before(self._now()))

    async def count(self) -> int:
        """How many workspaces have rules."""
        return await self._store.count()

    async def _failed(self, watch: Watch, exc: errors.BotError, now: datetime) -> CheckReport:
        code = fault_code(exc)
        wait = backoff(self._interval, watch.failures + 1)
        fixable = isinstance(exc, _ADMIN_FIXES)

        def tell(locked: Watch) -> list[Post]:
            if not fixable:
                return []
            return [_fault_post(admin, code, now) for admin in locked.rules.admins()]

        log.warning(
            "check of %s failed (%s); next try in %.0f s", watch.workspace, code, wait.total_seconds()
        )
        posts = await self._store.record_fault(watch.workspace, code, now, now + wait, tell)
        return CheckReport(watch.workspace, False, posts, code)


class Outbox:
    """When to retry a post, when to give up, and whom to tell that a channel refuses posts."""

    def __init__(self, store: OutboxRepository, now: Now = utcnow) -> None:
        self._store = store
        self._now = now

    async def claim(self, limit: int, ids: list[int] | None = None) -> list[PendingPost]:
        """Posts due now (or these, if due), leased to this worker, oldest first."""
        return await self._store.claim_posts(self._now(), LEASE, limit, ids)

    async def next_due(self) -> datetime | None:
        """When the next pending post is due."""
        return await self._store.next_post_at()

    async def delivered(self, post: PendingPost) -> None:
        """Never send it again."""
        await self._store.sent(post, self._now())

    async def dropped(self, post: PendingPost, why: str) -> None:
        """Do not send it after all (what it says no longer holds)."""
        await self._store.not_sent(post, why, None, self._now())

    async def cut_short(self, post: PendingPost) -> None:
        """Shutdown cut the post short while Slack had it: it may be in the channel already, so it
        is never sent again (a post is never made twice), and kept as given up, saying why."""
        await self._store.not_sent(post, CUT_SHORT, None, self._now())

    async def failed(
        self, post: PendingPost, error: errors.SlackPostError, waiting: list[PendingPost] | None = None
    ) -> list[int]:
        """Retry later with backoff, or give up; a channel fault is told to the rule's admin once.

        After `ratelimited`, nothing more goes to the workspace before `Retry-After`: `waiting`
        are its posts claimed in the same round, handed back without counting an attempt.
        """
        now = self._now()
        if error.retry_after is not None:
            until = now + timedelta(seconds=error.retry_after)
            await self._store.hold(post.workspace, until, [post.id, *(p.id for p in waiting or [])])
            return []
        if post.kind is PostKind.FAULT:
            retry = None if post.attempts >= FAULT_DM_ATTEMPTS else now + backoff(30, post.attempts)
            await self._store.not_sent(post, error.code, retry, now)
            return []
        expired = now - post.created_at >= GIVE_UP_AFTER
        retry_at = None if expired else now + backoff(30, post.attempts)
        if expired:
            log.error("gave up on a %s post to %s after %d attempts", post.kind, post.channel, post.attempts)
        if not error.fixable:
            return await self._store.not_sent(post, error.code, retry_at, now)
        code = f"slack:{error.code}"

        def tell(watch: Watch) -> list[Post]:
            admin = watch.rules.setter(post.kind) or next(iter(watch.rules.admins()), None)
            if admin is None:
                return []
            return [_fault_post(admin, code, now, channel=post.channel)]

        return await self._store.not_sent(post, error.code, retry_at, now, fault=code, tell=tell)


def fault_code(error: errors.BotError) -> str:
    """`breeze:KEY_REJECTED`-style code for a failed check."""
    if isinstance(error, errors.KeyRejected):
        return "breeze:KEY_REJECTED"
    if isinstance(error, errors.KeyForbidden):
        return "breeze:KEY_FORBIDDEN"
    if isinstance(error, errors.NoApiKey):
        return "breeze:NO_API_KEY"
    code = getattr(error, "code", None)
    return f"breeze:{code}" if isinstance(code, str) else f"breeze:{type(error).__name__}"


def _trend(samples: list[Sample], now: datetime) -> Trend:
    return Trend(runway(samples, now), sparkline(samples, now))


def _new_topup_credits(balance: Balance, seen: frozenset[str]) -> Decimal:
    """Credits of succeeded top-ups first seen now: added to the account, not consumed."""
    total = Decimal(0)
    for topup in balance.topups:
        key = topup_key(topup)
        if key and key not in seen and topup.status is TopupStatus.SUCCEEDED and topup.amount is not None:
            total += topup.amount
    return total


def _fault_post(admin: str, code: str, now: datetime, channel: str | None = None) -> Post:
    facts = {"fault": code, "admin": admin}
    if channel:
        facts["channel"] = channel
    # The channel is in the key, so that a channel that works again can drop the DM about it.
    return Post(PostKind.FAULT, admin, f"fault:{code}:{channel or '-'}:{admin}:{now.isoformat()}", facts)
