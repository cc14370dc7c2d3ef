"""The outbox's queries: posts queued with the state change that calls for them, then delivered.

Every write keeps the rule explained in `bot.adapters.watch.tables`: one transaction, with the
workspace's row locked first where the rules' state changes too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.adapters.key_store import storage_errors
from bot.adapters.watch.tables import (
    insert_ignore,
    locked,
    posts_table,
    rules_table,
    scope,
    scope_of,
    utc,
    write_transaction,
)
from bot.domain.balances import Workspace
from bot.domain.rules import PendingPost, Post, PostKind, Tell


class OutboxStore:
    """Posts waiting for Slack: claimed with a lease, then recorded as sent, retried or given up."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def claim_posts(
        self, now: datetime, lease: timedelta, limit: int, ids: Sequence[int] | None = None
    ) -> list[PendingPost]:
        """Lease up to `limit` due posts (or these `ids`, if due) for delivery, oldest first."""
        p = posts_table.c
        where = p.sent_at.is_(None) & p.gave_up.is_(False) & (p.next_attempt_at <= now)
        if ids is not None:
            where = where & p.id.in_(list(ids))
        pick = sa.select(p.id).where(where).order_by(p.id).limit(limit).with_for_update(skip_locked=True)
        claim = (
            posts_table.update()
            .where(p.id.in_(pick))
            .values(next_attempt_at=now + lease, attempts=p.attempts + 1)
            .returning(*posts_table.c)
        )
        async with storage_errors("claim posts"), write_transaction(self._engine) as conn:
            rows = (await conn.execute(claim)).all()
        found = [
            PendingPost(
                id=int(r.id),
                workspace=Workspace(
                    r.enterprise_id or None, r.team_id or None, bool(r.is_enterprise_install)
                ),
                kind=PostKind(r.kind),
                channel=r.channel,
                facts=json.loads(r.facts),
                created_at=utc(r.created_at) or now,
                attempts=int(r.attempts),
            )
            for r in rows
        ]
        return sorted(found, key=lambda post: post.id)

    async def sent(self, post: PendingPost, now: datetime) -> None:
        """The post is in Slack: never send it again; its channel works (forget its fault)."""
        async with storage_errors("record a post"), write_transaction(self._engine) as conn:
            watch = None if post.kind is PostKind.FAULT else await locked(conn, post.workspace)
            await conn.execute(
                posts_table.update().where(posts_table.c.id == post.id).values(sent_at=now, last_error=None)
            )
            if watch is None or post.channel not in watch.post_faults:
                return
            faults = {c: f for c, f in watch.post_faults.items() if c != post.channel}
            await conn.execute(
                rules_table.update()
                .where(scope(post.workspace))
                .values(post_faults=json.dumps(faults) if faults else None)
            )
            await drop_fault_dms(conn, post.workspace, f"fault:slack:%:{post.channel}:%")

    async def not_sent(
        self,
        post: PendingPost,
        error: str,
        retry_at: datetime | None,
        now: datetime,
        *,
        fault: str | None = None,
        tell: Tell | None = None,
    ) -> list[int]:
        """The post failed: retry at `retry_at` (None: give up); record its channel's fault, told once."""
        async with storage_errors("record a failed post"), write_transaction(self._engine) as conn:
            watch = None if fault is None else await locked(conn, post.workspace)
            values: dict[str, Any] = {"last_error": error[:100]}
            if retry_at is None:
                values["gave_up"] = True
            else:
                values["next_attempt_at"] = retry_at
            await conn.execute(posts_table.update().where(posts_table.c.id == post.id).values(**values))
            if watch is None or watch.post_faults.get(post.channel) == fault:
                return []
            posts = tell(watch) if tell is not None else []
            faults = {**watch.post_faults, post.channel: fault}
            await conn.execute(
                rules_table.update().where(scope(post.workspace)).values(post_faults=json.dumps(faults))
            )
            return await queue_posts(conn, post.workspace, posts, now, watch.posts_hold_until)

    async def hold(self, workspace: Workspace, until: datetime, uncounted: Sequence[int]) -> None:
        """Slack said `ratelimited`: no post to the workspace before `until`, those queued later too.

        `uncounted` posts were claimed but not (successfully) tried: their attempt does not count.
        """
        p = posts_table.c
        waiting = scope_of(posts_table, workspace) & p.sent_at.is_(None) & p.gave_up.is_(False)
        async with storage_errors("hold posts"), write_transaction(self._engine) as conn:
            await conn.execute(rules_table.update().where(scope(workspace)).values(posts_hold_until=until))
            await conn.execute(
                posts_table.update()
                .where(waiting & (p.next_attempt_at < until))
                .values(next_attempt_at=until)
            )
            if uncounted:
                await conn.execute(
                    posts_table.update()
                    .where(waiting & p.id.in_(list(uncounted)) & (p.attempts > 0))
                    .values(attempts=p.attempts - 1, next_attempt_at=until)
                )

    async def next_post_at(self) -> datetime | None:
        """When the next pending post is due, if any."""
        p = posts_table.c
        query = sa.select(sa.func.min(p.next_attempt_at)).where(p.sent_at.is_(None) & p.gave_up.is_(False))
        async with storage_errors("read the outbox"), self._engine.connect() as conn:
            return utc((await conn.execute(query)).scalar_one_or_none())

    async def posts(self, workspace: Workspace) -> list[dict[str, Any]]:
        """Every post of a workspace, sent or not (for `status` and tests)."""
        query = sa.select(posts_table).where(scope_of(posts_table, workspace)).order_by(posts_table.c.id)
        async with storage_errors("read the outbox"), self._engine.connect() as conn:
            return [dict(r._mapping) for r in (await conn.execute(query)).all()]


async def queue_posts(
    conn: AsyncConnection,
    workspace: Workspace,
    posts: Sequence[Post],
    now: datetime,
    hold_until: datetime | None = None,
) -> list[int]:
    ids: list[int] = []
    enterprise, team = workspace.scope
    due = max(now, hold_until) if hold_until is not None else now
    for post in posts:
        row = {
            "enterprise_id": enterprise,
            "team_id": team,
            "is_enterprise_install": workspace.is_enterprise_install,
            "kind": post.kind.value,
            "channel": post.channel,
            "dedupe": post.dedupe[:300],
            "facts": json.dumps(post.facts, sort_keys=True),
            "created_at": now,
            "next_attempt_at": due,
            "attempts": 0,
            "gave_up": False,
        }
        result = await conn.execute(
            insert_ignore(conn.dialect.name, posts_table, [row]).returning(posts_table.c.id)
        )
        new = result.scalar_one_or_none()
        if new is not None:
            ids.append(int(new))
    return ids


async def drop_fault_dms(conn: AsyncConnection, workspace: Workspace, pattern: str) -> None:
    """Give up DMs still waiting about a fault that has cleared (their dedupe matches `pattern`)."""
    p = posts_table.c
    await conn.execute(
        posts_table.update()
        .where(
            scope_of(posts_table, workspace)
            & (p.kind == PostKind.FAULT.value)
            & p.sent_at.is_(None)
            & p.dedupe.like(pattern)
        )
        .values(gave_up=True, last_error="fault cleared")
    )
