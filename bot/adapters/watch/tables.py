"""The worker's tables and their rows, and the one rule every write to them keeps.

**One transaction per change, under the workspace's row lock.** A check's new state, its sample and
the posts it calls for are written in one transaction, from the state read in that transaction with
the workspace's `watch_rules` row locked (`locked`; `FOR UPDATE` on PostgreSQL, the write lock that
`write_transaction` takes first on SQLite): two checks of one workspace can never both post the same
alert, and a rule change never interleaves with a check.

The lock lives in the row, so a transaction that finds no row holds no lock. It deletes a row only
after `locked` found it, and a change that finds no row and leaves no rules writes nothing (a
`DELETE` then could take away the row that a concurrent first rule has just committed). It creates
the row with `INSERT ... ON CONFLICT DO NOTHING` (`insert_ignore`), which holds the new row's lock;
when another transaction created it first, it locks and re-reads that row and applies its change
there, so two first rules of a workspace both stay and neither fails.

A transaction that writes a workspace's posts or top-ups besides its row locks the row first, before
any of theirs: in the other order two transactions can each hold what the other waits for, and
PostgreSQL aborts one of them.

A post's `dedupe` key is unique per workspace besides. Work is claimed with a lease (`lease_until`),
taken under `FOR UPDATE SKIP LOCKED` on PostgreSQL, so any number of workers split the workspaces;
posts are claimed the same way.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.domain.balances import Workspace
from bot.domain.rules import (
    AlertRule,
    DaysRule,
    DigestRule,
    Frequency,
    Rules,
    SpikeRule,
    TopupRule,
    Watch,
    WatchState,
)

_metadata = sa.MetaData()


def _workspace_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("enterprise_id", sa.String(32), primary_key=True),
        sa.Column("team_id", sa.String(32), primary_key=True),
    ]


def _rule(name: str, setting: sa.Column[Any]) -> list[sa.Column[Any]]:
    """A rule's own setting, then where it posts and who set it."""
    return [setting, sa.Column(f"{name}_channel", sa.String(32)), sa.Column(f"{name}_set_by", sa.String(32))]


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
    *_rule("days", sa.Column("days_under", sa.Integer)),
    sa.Column("days_armed", sa.Boolean),
    sa.Column("days_crossings", sa.Integer),
    *_rule("spike", sa.Column("spike_multiple", sa.String(16))),
    sa.Column("spike_last_day", sa.Date),
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


def utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def scope(workspace: Workspace) -> sa.ColumnElement[bool]:
    return scope_of(rules_table, workspace)


def scope_of(table: sa.Table, workspace: Workspace) -> sa.ColumnElement[bool]:
    enterprise, team = workspace.scope
    return (table.c.enterprise_id == enterprise) & (table.c.team_id == team)


def watch_of(row: sa.Row[Any]) -> Watch:
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
            utc(m["digest_next_at"]) or datetime.now(UTC),
        )
    days = spike = None
    if m["days_under"] is not None:
        days = DaysRule(int(m["days_under"]), m["days_channel"], m["days_set_by"] or "")
    if m["spike_multiple"] is not None:
        spike = SpikeRule(Decimal(m["spike_multiple"]), m["spike_channel"], m["spike_set_by"] or "")
    state = WatchState(
        armed=bool(m["alert_armed"]),
        crossings=int(m["alert_crossings"] or 0),
        last_balance=_decimal(m["last_balance"]),
        digest_last_at=utc(m["digest_last_at"]),
        digest_last_balance=_decimal(m["digest_last_balance"]),
        topups_baselined=bool(m["topups_baselined"]),
        days_armed=bool(m["days_armed"]),
        days_crossings=int(m["days_crossings"] or 0),
        spike_last_day=m["spike_last_day"],
    )
    return Watch(
        workspace=workspace,
        rules=Rules(alert, topups, digest, days, spike),
        state=state,
        next_check_at=utc(m["next_check_at"]) or datetime.now(UTC),
        last_checked_at=utc(m["last_checked_at"]),
        failures=int(m["failures"] or 0),
        fault=m["fault"],
        fault_notified=m["fault_notified"],
        post_faults=json.loads(m["post_faults"]) if m["post_faults"] else {},
        posts_hold_until=utc(m["posts_hold_until"]),
    )


def rule_columns(rules: Rules) -> dict[str, Any]:
    alert, topups, digest, days, spike = rules.alert, rules.topups, rules.digest, rules.days, rules.spike
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
        "days_under": days.days if days else None,
        "days_channel": days.channel if days else None,
        "days_set_by": days.set_by if days else None,
        "spike_multiple": str(spike.multiple) if spike else None,
        "spike_channel": spike.channel if spike else None,
        "spike_set_by": spike.set_by if spike else None,
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


async def locked(conn: AsyncConnection, workspace: Workspace) -> Watch | None:
    """The workspace's rules and state, its row locked until the transaction ends."""
    query = sa.select(rules_table).where(scope(workspace)).with_for_update()
    row = (await conn.execute(query)).first()
    return None if row is None else watch_of(row)


def insert_ignore(dialect: str, table: sa.Table, rows: list[dict[str, Any]]) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING, as each database spells it."""
    if dialect == "postgresql":
        return postgresql.insert(table).values(rows).on_conflict_do_nothing()
    return sqlite.insert(table).values(rows).on_conflict_do_nothing()
