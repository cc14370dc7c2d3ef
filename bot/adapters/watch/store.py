"""The rules' and checks' queries: rules set from Slack, checks claimed and recorded by the worker.

Every write keeps the rule explained in `bot.adapters.watch.tables`: one transaction, under the
workspace's row lock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.adapters.key_store import storage_errors
from bot.adapters.watch.outbox import OutboxStore, drop_fault_dms, queue_posts
from bot.adapters.watch.tables import (
    insert_ignore,
    locked,
    posts_table,
    rule_columns,
    rules_table,
    samples_table,
    scope,
    scope_of,
    topups_table,
    utc,
    watch_of,
    write_transaction,
)
from bot.domain.balances import Workspace
from bot.domain.rules import RULE_OF_KIND, Decide, Rules, RulesChange, Tell, Watch
from bot.domain.runway import Sample


class WatchStore:
    """Rules, state, samples and posts of every watched workspace."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.outbox = OutboxStore(engine)

    @property
    def dialect(self) -> str:
        """`postgresql` or `sqlite`."""
        return self._engine.dialect.name

    # --- rules, from the slash command ---------------------------------------------------------

    async def get(self, workspace: Workspace) -> Watch | None:
        """The workspace's rules and state, or None when it has none."""
        async with storage_errors("read the alert rules"), self._engine.connect() as conn:
            row = (await conn.execute(sa.select(rules_table).where(scope(workspace)))).first()
        return None if row is None else watch_of(row)

    async def update_rules(
        self, workspace: Workspace, change: RulesChange, now: datetime, *, reset: Mapping[str, Any]
    ) -> Rules:
        """Apply `change` to the workspace's rules (creating or deleting its row) and check it soon.

        A workspace without rules that `change` leaves without rules has nothing written. `change`
        is applied again to what a concurrent writer stored if it created the row first.
        """
        async with storage_errors("save the alert rules"), write_transaction(self._engine) as conn:
            while True:
                current = await locked(conn, workspace)
                before = current.rules if current is not None else Rules()
                after = change(before)
                values = _scheduled(after, reset, now)
                if current is not None:
                    break
                if after.empty or await _create(conn, workspace, values):
                    return after
                # Another transaction created the row since `locked` looked: lock that one instead.
            await _retarget(conn, workspace, before, after)
            if after.empty:
                await conn.execute(rules_table.delete().where(scope(workspace)))
                await _forget_crossings(conn, workspace)
            else:
                await conn.execute(rules_table.update().where(scope(workspace)).values(**values))
        return after

    async def mark_seen(self, workspace: Workspace, keys: Sequence[str], now: datetime) -> None:
        """Record top-ups as seen (not to be announced) and the notices' baseline as taken."""
        async with storage_errors("save top-ups"), write_transaction(self._engine) as conn:
            watch = await locked(conn, workspace)
            await self._insert_seen(conn, workspace, keys, now)
            if watch is not None and watch.rules.topups is not None:
                await conn.execute(rules_table.update().where(scope(workspace)).values(topups_baselined=True))

    # --- checks, from the worker ---------------------------------------------------------------

    async def claim(
        self, now: datetime, lease: timedelta, limit: int, *, checked_before: datetime | None = None
    ) -> list[Watch]:
        """Lease up to `limit` workspaces due for a check (with `checked_before`: not checked since).

        Other workers skip them until the lease ends.
        """
        c = rules_table.c
        free = c.lease_until.is_(None) | (c.lease_until < now)
        if checked_before is None:
            where = free & (c.next_check_at <= now)
        else:
            where = free & (c.last_checked_at.is_(None) | (c.last_checked_at < checked_before))
        pick = (
            sa.select(c.enterprise_id, c.team_id)
            .where(where)
            .order_by(c.next_check_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        claim = (
            rules_table.update()
            .where(sa.tuple_(c.enterprise_id, c.team_id).in_(pick))
            .values(lease_until=now + lease)
            .returning(*rules_table.c)
        )
        async with storage_errors("claim workspaces to check"), write_transaction(self._engine) as conn:
            rows = (await conn.execute(claim)).all()
        return [watch_of(row) for row in rows]

    async def count(self) -> int:
        """How many workspaces have rules."""
        async with storage_errors("count rules"), self._engine.connect() as conn:
            return int((await conn.execute(sa.select(sa.func.count()).select_from(rules_table))).scalar_one())

    async def samples(self, workspace: Workspace, since: datetime) -> list[Sample]:
        """The workspace's balance samples taken after `since`, oldest first."""
        s = samples_table.c
        query = (
            sa.select(s.at, s.credits, s.topup_credits, s.key_fp)
            .where(scope_of(samples_table, workspace) & (s.at > since))
            .order_by(s.at)
        )
        async with storage_errors("read balance samples"), self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            Sample(utc(r.at) or since, Decimal(r.credits), Decimal(r.topup_credits), r.key_fp) for r in rows
        ]

    async def record_check(self, workspace: Workspace, decide: Decide, now: datetime) -> list[int]:
        """Under the row lock: read the state, let `decide` apply the rules, store all it says at once.

        Returns the ids of the posts it queued (none when the rules were removed meanwhile).
        """
        async with storage_errors("record a check"), write_transaction(self._engine) as conn:
            watch = await locked(conn, workspace)
            if watch is None:
                return []
            seen_query = sa.select(topups_table.c.topup_key).where(scope_of(topups_table, workspace))
            seen = frozenset((await conn.execute(seen_query)).scalars().all())
            checked = decide(watch, seen)
            if checked is None:
                return []
            state = checked.outcome.state
            values: dict[str, Any] = {
                "alert_armed": state.armed,
                "alert_crossings": state.crossings,
                "topups_baselined": state.topups_baselined,
                "days_armed": state.days_armed,
                "days_crossings": state.days_crossings,
                "spike_last_day": state.spike_last_day,
                "digest_last_at": state.digest_last_at,
                "digest_last_balance": None
                if state.digest_last_balance is None
                else str(state.digest_last_balance),
                "last_balance": None if state.last_balance is None else str(state.last_balance),
                "last_checked_at": now,
                "next_check_at": checked.next_check_at,
                "lease_until": None,
                "failures": 0,
                "fault": None,
                "fault_notified": None,
            }
            if checked.digest_next_at is not None:
                values["digest_next_at"] = checked.digest_next_at
            await conn.execute(rules_table.update().where(scope(workspace)).values(**values))
            sample = checked.sample
            enterprise, team = workspace.scope
            await conn.execute(
                samples_table.insert().values(
                    enterprise_id=enterprise,
                    team_id=team,
                    at=sample.at,
                    credits=str(sample.credits),
                    topup_credits=str(sample.topup_credits),
                    key_fp=sample.key,
                )
            )
            await self._insert_seen(conn, workspace, checked.outcome.seen_topups, now)
            if watch.fault is not None:
                # Breeze answers again: a DM about the old fault still waiting would be wrong now.
                await drop_fault_dms(conn, workspace, "fault:breeze:%")
            posts = [*checked.outcome.posts, *checked.extra_posts]
            return await queue_posts(conn, workspace, posts, now, watch.posts_hold_until)

    async def record_fault(
        self, workspace: Workspace, fault: str, now: datetime, next_check_at: datetime, tell: Tell
    ) -> list[int]:
        """A check that failed: count it, check again later, and tell the admins once per kind of fault."""
        async with storage_errors("record a failed check"), write_transaction(self._engine) as conn:
            watch = await locked(conn, workspace)
            if watch is None:
                return []
            posts = tell(watch) if watch.fault_notified != fault else []
            values: dict[str, Any] = {
                "failures": watch.failures + 1,
                "fault": fault,
                "last_checked_at": now,
                "next_check_at": next_check_at,
                "lease_until": None,
            }
            if posts:
                values["fault_notified"] = fault
            await conn.execute(rules_table.update().where(scope(workspace)).values(**values))
            return await queue_posts(conn, workspace, posts, now, watch.posts_hold_until)

    async def release(self, workspace: Workspace, next_check_at: datetime) -> None:
        """Give a claimed workspace back unchecked (shutdown, timeout), to be checked at `next_check_at`."""
        async with storage_errors("release a workspace"), write_transaction(self._engine) as conn:
            await conn.execute(
                rules_table.update()
                .where(scope(workspace))
                .values(lease_until=None, next_check_at=next_check_at)
            )

    # --- housekeeping --------------------------------------------------------------------------

    async def forget(self, workspace: Workspace) -> int:
        """Delete everything kept for a workspace (or, for an org-wide install, the whole org)."""
        removed = 0
        async with storage_errors("remove alert rules"), write_transaction(self._engine) as conn:
            for table in (rules_table, samples_table, topups_table, posts_table):
                if workspace.is_enterprise_install and workspace.enterprise_id:
                    where = table.c.enterprise_id == workspace.enterprise_id
                else:
                    where = scope_of(table, workspace)
                result = await conn.execute(table.delete().where(where))
                removed += int(result.rowcount)
        return removed

    async def prune(self, before: datetime) -> int:
        """Delete samples, and delivered or abandoned posts, older than `before`."""
        p = posts_table.c
        async with storage_errors("prune old samples"), write_transaction(self._engine) as conn:
            samples = await conn.execute(samples_table.delete().where(samples_table.c.at < before))
            posts = await conn.execute(
                posts_table.delete().where((p.created_at < before) & (p.sent_at.is_not(None) | p.gave_up))
            )
        return int(samples.rowcount) + int(posts.rowcount)

    async def _insert_seen(
        self, conn: AsyncConnection, workspace: Workspace, keys: Sequence[str], now: datetime
    ) -> None:
        if not keys:
            return
        enterprise, team = workspace.scope
        rows = [
            {"enterprise_id": enterprise, "team_id": team, "topup_key": key[:250], "seen_at": now}
            for key in dict.fromkeys(keys)
        ]
        await conn.execute(insert_ignore(conn.dialect.name, topups_table, rows))


def _scheduled(rules: Rules, reset: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The columns of a workspace with these rules: checked at `now`, with its faults forgotten."""
    return {
        **rule_columns(rules),
        **reset,
        "next_check_at": now,
        "lease_until": None,
        "failures": 0,
        "fault": None,
        "fault_notified": None,
        "post_faults": None,
    }


async def _create(conn: AsyncConnection, workspace: Workspace, values: Mapping[str, Any]) -> bool:
    """Insert the workspace's row, locked by this transaction; False if it exists after all.

    A row another transaction inserted and has not committed yet makes PostgreSQL wait for it.
    """
    enterprise, team = workspace.scope
    row = {
        "enterprise_id": enterprise,
        "team_id": team,
        "is_enterprise_install": workspace.is_enterprise_install,
        "alert_armed": True,
        "alert_crossings": 0,
        "topups_baselined": False,
        "days_armed": True,
        "days_crossings": 0,
        **values,
    }
    insert = insert_ignore(conn.dialect.name, rules_table, [row]).returning(rules_table.c.team_id)
    return (await conn.execute(insert)).first() is not None


async def _forget_crossings(conn: AsyncConnection, workspace: Workspace) -> None:
    """With the row gone its crossing counts start again at 0: drop the finished posts they numbered."""
    p = posts_table.c
    kinds = [kind.value for name in _ARMED_AFRESH for kind in _KINDS_OF_RULE[name]]
    finished = p.sent_at.is_not(None) | p.gave_up
    await conn.execute(
        posts_table.delete().where(scope_of(posts_table, workspace) & p.kind.in_(kinds) & finished)
    )


_KINDS_OF_RULE = {
    name: tuple(kind for kind, rule in RULE_OF_KIND.items() if rule == name)
    for name in dict.fromkeys(RULE_OF_KIND.values())
}
# Rules that fire once per crossing: changed, they are armed afresh.
_ARMED_AFRESH = ("alert", "days")


async def _retarget(conn: AsyncConnection, workspace: Workspace, before: Rules, after: Rules) -> None:
    """Posts still waiting go to a rule's new channel; a removed rule's waiting posts are dropped.

    A changed alert (or runway alert) is armed afresh and says what it has to say itself, so its
    waiting posts go.
    """
    p = posts_table.c
    for name, kinds in _KINDS_OF_RULE.items():
        old, new = getattr(before, name), getattr(after, name)
        moved = new is not None and old is not None and new.channel != old.channel
        if old is None or old == new or (name not in _ARMED_AFRESH and not moved and new is not None):
            continue
        waiting = (
            scope_of(posts_table, workspace) & p.sent_at.is_(None) & p.kind.in_([k.value for k in kinds])
        )
        if new is None or name in _ARMED_AFRESH:
            change: dict[str, Any] = {"gave_up": True, "last_error": "rule changed"}
        else:
            change = {"channel": new.channel}
        await conn.execute(posts_table.update().where(waiting).values(**change))
