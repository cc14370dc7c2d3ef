"""The worker's tables: rules and their state, balance samples, seen top-ups, and the outbox.

Work is claimed with a lease (`lease_until`), taken under `FOR UPDATE SKIP LOCKED` on
PostgreSQL, so any number of workers split the workspaces. A check's new state, its sample
and the posts it calls for are written in one transaction, under the row lock, from the state
read in that transaction: two checks of one workspace can never both post the same alert. A
post's `dedupe` key is unique per workspace besides. Posts are then delivered from the outbox,
each claimed the same way.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.adapters.key_store import storage_errors
from bot.domain.balances import Workspace
from bot.domain.rules import (
    AlertRule,
    DigestRule,
    Frequency,
    Outcome,
    Post,
    PostKind,
    Rules,
    TopupRule,
    Watch,
    WatchState,
)
from bot.domain.runway import Sample

_metadata = sa.MetaData()


def _workspace_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("enterprise_id", sa.String(32), primary_key=True),
        sa.Column("team_id", sa.String(32), primary_key=True),
    ]


rules_table = sa.Table(
    "watch_rules",
    _metadata,
    *_workspace_columns(),
    sa.Column("is_enterprise_install", sa.Boolean),
    sa.Column("alert_threshold", sa.String(64)),
    sa.Column("alert_channel", sa.String(32)),
    sa.Column("alert_set_by", sa.String(32)),
    sa.Column("alert_armed", sa.Boolean),
    sa.Column("alert_crossings", sa.Integer),
    sa.Column("topups_channel", sa.String(32)),
    sa.Column("topups_set_by", sa.String(32)),
    sa.Column("topups_baselined", sa.Boolean),
    sa.Column("digest_frequency", sa.String(8)),
    sa.Column("digest_time", sa.String(5)),
    sa.Column("digest_tz", sa.String(64)),
    sa.Column("digest_channel", sa.String(32)),
    sa.Column("digest_set_by", sa.String(32)),
    sa.Column("digest_next_at", sa.DateTime(timezone=True)),
    sa.Column("digest_last_at", sa.DateTime(timezone=True)),
    sa.Column("digest_last_balance", sa.String(64)),
    sa.Column("last_balance", sa.String(64)),
    sa.Column("last_checked_at", sa.DateTime(timezone=True)),
    sa.Column("next_check_at", sa.DateTime(timezone=True)),
    sa.Column("lease_until", sa.DateTime(timezone=True)),
    sa.Column("failures", sa.Integer),
    sa.Column("fault", sa.String(64)),
    sa.Column("fault_notified", sa.String(64)),
    sa.Column("post_faults", sa.Text),
    sa.Column("posts_hold_until", sa.DateTime(timezone=True)),
)

samples_table = sa.Table(
    "watch_samples",
    _metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("enterprise_id", sa.String(32)),
    sa.Column("team_id", sa.String(32)),
    sa.Column("at", sa.DateTime(timezone=True)),
    sa.Column("credits", sa.String(64)),
    sa.Column("topup_credits", sa.String(64)),
    sa.Column("key_fp", sa.String(32)),
)

topups_table = sa.Table(
    "watch_topups",
    _metadata,
    *_workspace_columns(),
    sa.Column("topup_key", sa.String(250), primary_key=True),
    sa.Column("seen_at", sa.DateTime(timezone=True)),
)

posts_table = sa.Table(
    "watch_posts",
    _metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("enterprise_id", sa.String(32)),
    sa.Column("team_id", sa.String(32)),
    sa.Column("is_enterprise_install", sa.Boolean),
    sa.Column("kind", sa.String(16)),
    sa.Column("channel", sa.String(32)),
    sa.Column("dedupe", sa.String(300)),
    sa.Column("facts", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True)),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
    sa.Column("attempts", sa.Integer),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.Column("gave_up", sa.Boolean),
    sa.Column("last_error", sa.String(100)),
)


@dataclass(frozen=True, slots=True)
class PendingPost:
    """A post in the outbox, claimed for delivery."""

    id: int
    workspace: Workspace
    kind: PostKind
    channel: str
    facts: dict[str, str]
    created_at: datetime
    attempts: int


@dataclass(frozen=True, slots=True)
class Checked:
    """What a check records: the outcome of the rules, and the sample it took."""

    outcome: Outcome
    sample: Sample
    next_check_at: datetime
    digest_next_at: datetime | None = None
    extra_posts: list[Post] = field(default_factory=list)


# Given the state read under the row lock and the top-ups already seen, what the check records.
Decide = Callable[[Watch, frozenset[str]], Checked | None]


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _scope(workspace: Workspace) -> sa.ColumnElement[bool]:
    return _scope_of(rules_table, workspace)


def _scope_of(table: sa.Table, workspace: Workspace) -> sa.ColumnElement[bool]:
    enterprise, team = workspace.scope
    return (table.c.enterprise_id == enterprise) & (table.c.team_id == team)


def _watch(row: sa.Row[Any]) -> Watch:
    m = row._mapping
    workspace = Workspace(m["enterprise_id"] or None, m["team_id"] or None, bool(m["is_enterprise_install"]))
    alert = topups = digest = None
    if m["alert_threshold"] is not None:
        alert = AlertRule(Decimal(m["alert_threshold"]), m["alert_channel"], m["alert_set_by"] or "")
    if m["topups_channel"] is not None:
        topups = TopupRule(m["topups_channel"], m["topups_set_by"] or "")
    if m["digest_frequency"] is not None:
        hours, minutes = (int(part) for part in m["digest_time"].split(":"))
        digest = DigestRule(
            Frequency(m["digest_frequency"]),
            time(hours, minutes),
            m["digest_tz"] or "UTC",
            m["digest_channel"],
            m["digest_set_by"] or "",
            _utc(m["digest_next_at"]) or datetime.now(UTC),
        )
    state = WatchState(
        armed=bool(m["alert_armed"]),
        crossings=int(m["alert_crossings"] or 0),
        last_balance=_decimal(m["last_balance"]),
        digest_last_at=_utc(m["digest_last_at"]),
        digest_last_balance=_decimal(m["digest_last_balance"]),
        topups_baselined=bool(m["topups_baselined"]),
    )
    return Watch(
        workspace=workspace,
        rules=Rules(alert, topups, digest),
        state=state,
        next_check_at=_utc(m["next_check_at"]) or datetime.now(UTC),
        last_checked_at=_utc(m["last_checked_at"]),
        failures=int(m["failures"] or 0),
        fault=m["fault"],
        fault_notified=m["fault_notified"],
        post_faults=json.loads(m["post_faults"]) if m["post_faults"] else {},
        posts_hold_until=_utc(m["posts_hold_until"]),
    )


def _rule_columns(rules: Rules) -> dict[str, Any]:
    alert, topups, digest = rules.alert, rules.topups, rules.digest
    return {
        "alert_threshold": str(alert.threshold) if alert else None,
        "alert_channel": alert.channel if alert else None,
        "alert_set_by": alert.set_by if alert else None,
        "topups_channel": topups.channel if topups else None,
        "topups_set_by": topups.set_by if topups else None,
        "digest_frequency": digest.frequency.value if digest else None,
        "digest_time": digest.at.strftime("%H:%M") if digest else None,
        "digest_tz": digest.tz if digest else None,
        "digest_channel": digest.channel if digest else None,
        "digest_set_by": digest.set_by if digest else None,
        "digest_next_at": digest.next_at if digest else None,
    }


@asynccontextmanager
async def write_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction that will write: on SQLite it takes the write lock first, so it never fails midway."""
    async with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            await conn.rollback()
            raise
        await conn.commit()


class WatchStore:
    """Rules, state, samples and posts of every watched workspace."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @property
    def dialect(self) -> str:
        """`postgresql` or `sqlite`."""
        return self._engine.dialect.name

    # --- rules, from the slash command ---------------------------------------------------------

    async def get(self, workspace: Workspace) -> Watch | None:
        """The workspace's rules and state, or None when it has none."""
        async with storage_errors("read the alert rules"), self._engine.connect() as conn:
            row = (await conn.execute(sa.select(rules_table).where(_scope(workspace)))).first()
        return None if row is None else _watch(row)

    async def update_rules(
        self, workspace: Workspace, change: Callable[[Rules], Rules], now: datetime, *, reset: dict[str, Any]
    ) -> Rules:
        """Apply `change` to the workspace's rules (creating or deleting its row) and check it soon."""
        async with storage_errors("save the alert rules"), write_transaction(self._engine) as conn:
            current = await _locked(conn, workspace)
            before = current.rules if current is not None else Rules()
            after = change(before)
            await _retarget(conn, workspace, before, after)
            if after.empty:
                await conn.execute(rules_table.delete().where(_scope(workspace)))
                await _forget_crossings(conn, workspace)
                return after
            values = {
                **_rule_columns(after),
                **reset,
                "next_check_at": now,
                "lease_until": None,
                "failures": 0,
                "fault": None,
                "fault_notified": None,
                "post_faults": None,
            }
            if current is None:
                enterprise, team = workspace.scope
                first = {"alert_armed": True, "alert_crossings": 0, "topups_baselined": False, **values}
                await conn.execute(
                    rules_table.insert().values(
                        enterprise_id=enterprise,
                        team_id=team,
                        is_enterprise_install=workspace.is_enterprise_install,
                        **first,
                    )
                )
            else:
                await conn.execute(rules_table.update().where(_scope(workspace)).values(**values))
        return after

    async def mark_seen(self, workspace: Workspace, keys: Sequence[str], now: datetime) -> None:
        """Record top-ups as seen (not to be announced) and the notices' baseline as taken."""
        async with storage_errors("save top-ups"), write_transaction(self._engine) as conn:
            await self._insert_seen(conn, workspace, keys, now)
            await conn.execute(
                rules_table.update()
                .where(_scope(workspace) & rules_table.c.topups_channel.is_not(None))
                .values(topups_baselined=True)
            )

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
        return [_watch(row) for row in rows]

    async def count(self) -> int:
        """How many workspaces have rules."""
        async with storage_errors("count rules"), self._engine.connect() as conn:
            return int((await conn.execute(sa.select(sa.func.count()).select_from(rules_table))).scalar_one())

    async def samples(self, workspace: Workspace, since: datetime) -> list[Sample]:
        """The workspace's balance samples taken after `since`, oldest first."""
        s = samples_table.c
        query = (
            sa.select(s.at, s.credits, s.topup_credits, s.key_fp)
            .where(_scope_of(samples_table, workspace) & (s.at > since))
            .order_by(s.at)
        )
        async with storage_errors("read balance samples"), self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            Sample(_utc(r.at) or since, Decimal(r.credits), Decimal(r.topup_credits), r.key_fp) for r in rows
        ]

    async def record_check(self, workspace: Workspace, decide: Decide, now: datetime) -> list[int]:
        """Under the row lock: read the state, let `decide` apply the rules, store all it says at once.

        Returns the ids of the posts it queued (none when the rules were removed meanwhile).
        """
        async with storage_errors("record a check"), write_transaction(self._engine) as conn:
            watch = await _locked(conn, workspace)
            if watch is None:
                return []
            seen_query = sa.select(topups_table.c.topup_key).where(_scope_of(topups_table, workspace))
            seen = frozenset((await conn.execute(seen_query)).scalars().all())
            checked = decide(watch, seen)
            if checked is None:
                return []
            state = checked.outcome.state
            values: dict[str, Any] = {
                "alert_armed": state.armed,
                "alert_crossings": state.crossings,
                "topups_baselined": state.topups_baselined,
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
            await conn.execute(rules_table.update().where(_scope(workspace)).values(**values))
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
                await _drop_fault_dms(conn, workspace, "fault:breeze:%")
            posts = [*checked.outcome.posts, *checked.extra_posts]
            return await self._queue(conn, workspace, posts, now, watch.posts_hold_until)

    async def record_fault(
        self,
        workspace: Workspace,
        fault: str,
        now: datetime,
        next_check_at: datetime,
        tell: Callable[[Watch], list[Post]],
    ) -> list[int]:
        """A check that failed: count it, check again later, and tell the admins once per kind of fault."""
        async with storage_errors("record a failed check"), write_transaction(self._engine) as conn:
            watch = await _locked(conn, workspace)
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
            await conn.execute(rules_table.update().where(_scope(workspace)).values(**values))
            return await self._queue(conn, workspace, posts, now, watch.posts_hold_until)

    async def release(self, workspace: Workspace, next_check_at: datetime) -> None:
        """Give a claimed workspace back unchecked (shutdown, timeout), to be checked at `next_check_at`."""
        async with storage_errors("release a workspace"), write_transaction(self._engine) as conn:
            await conn.execute(
                rules_table.update()
                .where(_scope(workspace))
                .values(lease_until=None, next_check_at=next_check_at)
            )

    # --- the outbox ----------------------------------------------------------------------------

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
                created_at=_utc(r.created_at) or now,
                attempts=int(r.attempts),
            )
            for r in rows
        ]
        return sorted(found, key=lambda post: post.id)

    async def sent(self, post: PendingPost, now: datetime) -> None:
        """The post is in Slack: never send it again; its channel works (forget its fault)."""
        async with storage_errors("record a post"), write_transaction(self._engine) as conn:
            await conn.execute(
                posts_table.update().where(posts_table.c.id == post.id).values(sent_at=now, last_error=None)
            )
            if post.kind is PostKind.FAULT:
                return
            watch = await _locked(conn, post.workspace)
            if watch is None or post.channel not in watch.post_faults:
                return
            faults = {c: f for c, f in watch.post_faults.items() if c != post.channel}
            await conn.execute(
                rules_table.update()
                .where(_scope(post.workspace))
                .values(post_faults=json.dumps(faults) if faults else None)
            )
            await _drop_fault_dms(conn, post.workspace, f"fault:slack:%:{post.channel}:%")

    async def not_sent(
        self,
        post: PendingPost,
        error: str,
        retry_at: datetime | None,
        now: datetime,
        *,
        fault: str | None = None,
        tell: Callable[[Watch], list[Post]] | None = None,
    ) -> list[int]:
        """The post failed: retry at `retry_at` (None: give up); record its channel's fault, told once."""
        async with storage_errors("record a failed post"), write_transaction(self._engine) as conn:
            values: dict[str, Any] = {"last_error": error[:100]}
            if retry_at is None:
                values["gave_up"] = True
            else:
                values["next_attempt_at"] = retry_at
            await conn.execute(posts_table.update().where(posts_table.c.id == post.id).values(**values))
            if fault is None:
                return []
            watch = await _locked(conn, post.workspace)
            if watch is None or watch.post_faults.get(post.channel) == fault:
                return []
            posts = tell(watch) if tell is not None else []
            faults = {**watch.post_faults, post.channel: fault}
            await conn.execute(
                rules_table.update().where(_scope(post.workspace)).values(post_faults=json.dumps(faults))
            )
            return await self._queue(conn, post.workspace, posts, now, watch.posts_hold_until)

    async def hold(self, workspace: Workspace, until: datetime, uncounted: Sequence[int]) -> None:
        """Slack said `ratelimited`: no post to the workspace before `until`, those queued later too.

        `uncounted` posts were claimed but not (successfully) tried: their attempt does not count.
        """
        p = posts_table.c
        waiting = _scope_of(posts_table, workspace) & p.sent_at.is_(None) & p.gave_up.is_(False)
        async with storage_errors("hold posts"), write_transaction(self._engine) as conn:
            await conn.execute(rules_table.update().where(_scope(workspace)).values(posts_hold_until=until))
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
            return _utc((await conn.execute(query)).scalar_one_or_none())

    async def posts(self, workspace: Workspace) -> list[dict[str, Any]]:
        """Every post of a workspace, sent or not (for `status` and tests)."""
        query = sa.select(posts_table).where(_scope_of(posts_table, workspace)).order_by(posts_table.c.id)
        async with storage_errors("read the outbox"), self._engine.connect() as conn:
            return [dict(r._mapping) for r in (await conn.execute(query)).all()]

    # --- housekeeping --------------------------------------------------------------------------

    async def forget(self, workspace: Workspace) -> int:
        """Delete everything kept for a workspace (or, for an org-wide install, the whole org)."""
        removed = 0
        async with storage_errors("remove alert rules"), write_transaction(self._engine) as conn:
            for table in (rules_table, samples_table, topups_table, posts_table):
                if workspace.is_enterprise_install and workspace.enterprise_id:
                    where = table.c.enterprise_id == workspace.enterprise_id
                else:
                    where = _scope_of(table, workspace)
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

    # --- helpers -------------------------------------------------------------------------------

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
        await conn.execute(_insert_ignore(conn.dialect.name, topups_table, rows))

    async def _queue(
        self,
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
                _insert_ignore(conn.dialect.name, posts_table, [row]).returning(posts_table.c.id)
            )
            new = result.scalar_one_or_none()
            if new is not None:
                ids.append(int(new))
        return ids


async def _locked(conn: AsyncConnection, workspace: Workspace) -> Watch | None:
    """The workspace's rules and state, its row locked until the transaction ends."""
    query = sa.select(rules_table).where(_scope(workspace)).with_for_update()
    row = (await conn.execute(query)).first()
    return None if row is None else _watch(row)


async def _forget_crossings(conn: AsyncConnection, workspace: Workspace) -> None:
    """With the row gone its crossing count starts again at 0: drop the finished posts it numbered."""
    p = posts_table.c
    kinds = [PostKind.ALERT.value, PostKind.RECOVERY.value]
    finished = p.sent_at.is_not(None) | p.gave_up
    await conn.execute(
        posts_table.delete().where(_scope_of(posts_table, workspace) & p.kind.in_(kinds) & finished)
    )


_KINDS_OF_RULE = {
    "alert": (PostKind.ALERT, PostKind.RECOVERY),
    "topups": (PostKind.TOPUP,),
    "digest": (PostKind.DIGEST,),
}


async def _retarget(conn: AsyncConnection, workspace: Workspace, before: Rules, after: Rules) -> None:
    """Posts still waiting go to a rule's new channel; a removed rule's waiting posts are dropped.

    A changed alert is armed afresh and says what it has to say itself, so its waiting posts go.
    """
    p = posts_table.c
    for name, kinds in _KINDS_OF_RULE.items():
        old, new = getattr(before, name), getattr(after, name)
        moved = new is not None and old is not None and new.channel != old.channel
        if old is None or old == new or (name != "alert" and not moved and new is not None):
            continue
        waiting = (
            _scope_of(posts_table, workspace) & p.sent_at.is_(None) & p.kind.in_([k.value for k in kinds])
        )
        if new is None or name == "alert":
            change: dict[str, Any] = {"gave_up": True, "last_error": "rule changed"}
        else:
            change = {"channel": new.channel}
        await conn.execute(posts_table.update().where(waiting).values(**change))


async def _drop_fault_dms(conn: AsyncConnection, workspace: Workspace, pattern: str) -> None:
    """Give up DMs still waiting about a fault that has cleared (their dedupe matches `pattern`)."""
    p = posts_table.c
    await conn.execute(
        posts_table.update()
        .where(
            _scope_of(posts_table, workspace)
            & (p.kind == PostKind.FAULT.value)
            & p.sent_at.is_(None)
            & p.dedupe.like(pattern)
        )
        .values(gave_up=True, last_error="fault cleared")
    )


def _insert_ignore(dialect: str, table: sa.Table, rows: list[dict[str, Any]]) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING, as each database spells it."""
    if dialect == "postgresql":
        return postgresql.insert(table).values(rows).on_conflict_do_nothing()
    return sqlite.insert(table).values(rows).on_conflict_do_nothing()
