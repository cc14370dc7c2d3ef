"""The runway and spike rules in the database: stored beside the other rules with their state, and a
migration that adds their columns and takes them away again. SQLite always, PostgreSQL when
TEST_DATABASE_URL is set."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.adapters import db
from bot.adapters.watch.store import WatchStore
from bot.domain.balances import Workspace
from bot.domain.rules import AlertRule, Checked, DaysRule, Outcome, Post, PostKind, Rules, SpikeRule, Watch
from bot.domain.runway import Sample
from tests.integration.test_storage import on_database, raw_rows

WS = Workspace(None, "T0SPEND01")
NOW = datetime(2026, 12, 8, 15, 0, tzinfo=UTC)
ALERT = AlertRule(Decimal(1500), "C0ALERTS01", "UADMIN001")
DAYS = DaysRule(5, "C0RUNWAY01", "UADMIN002")
SPIKE = SpikeRule(Decimal("2.5"), "C0SPIKES01", "UADMIN003")
SPEND_COLUMNS = {
    "days_under",
    "days_channel",
    "days_set_by",
    "days_armed",
    "days_crossings",
    "spike_multiple",
    "spike_channel",
    "spike_set_by",
    "spike_last_day",
}


def test_the_runway_and_spike_rules_and_their_state_are_stored_with_the_others(any_database: str) -> None:
    async def work(engine: AsyncEngine) -> tuple[Watch | None, Watch | None, list[int]]:
        store = WatchStore(engine)
        rules = await store.update_rules(
            WS, lambda r: replace(r, alert=ALERT, days=DAYS, spike=SPIKE), NOW, reset={}
        )
        assert rules == Rules(alert=ALERT, days=DAYS, spike=SPIKE)
        stored = await store.get(WS)

        def decide(watch: Watch, _seen: frozenset[str]) -> Checked:
            state = replace(watch.state, days_armed=False, days_crossings=3, spike_last_day=date(2026, 12, 8))
            posts = [
                Post(PostKind.DAYS_ALERT, DAYS.channel, "days:3", {"days_left": "4.5"}),
                Post(PostKind.SPIKE, SPIKE.channel, "spike:2026-12-08", {"times": "4.2"}),
            ]
            return Checked(Outcome(state, posts, []), Sample(NOW, Decimal(450), Decimal(0), "fp"), NOW)

        queued = await store.record_check(WS, decide, NOW)
        return stored, await store.get(WS), queued

    stored, checked, queued = on_database(any_database, work)

    assert stored is not None
    assert stored.rules == Rules(alert=ALERT, days=DAYS, spike=SPIKE)
    state = stored.state
    assert (state.days_armed, state.days_crossings, state.spike_last_day) == (True, 0, None)
    assert checked is not None
    assert checked.rules == stored.rules
    assert checked.state.days_armed is False
    assert checked.state.days_crossings == 3
    assert checked.state.spike_last_day == date(2026, 12, 8)
    assert len(queued) == 2


def test_the_migration_adds_the_columns_and_takes_them_away_again(any_database: str) -> None:
    def alembic(connection: sa.Connection, to: str) -> None:
        config = Config()
        config.set_main_option("script_location", db.MIGRATIONS)
        config.attributes["connection"] = connection
        if to == "head":
            command.upgrade(config, to)
        else:
            command.downgrade(config, to)

    async def columns(engine: AsyncEngine) -> set[str]:
        async with engine.connect() as conn:
            found = await conn.run_sync(lambda sync: sa.inspect(sync).get_columns("watch_rules"))
        return {column["name"] for column in found}

    async def work(engine: AsyncEngine) -> tuple[set[str], set[str], Watch | None]:
        store = WatchStore(engine)
        await store.update_rules(WS, lambda r: replace(r, alert=ALERT, days=DAYS, spike=SPIKE), NOW, reset={})
        migrated = await columns(engine)
        async with engine.begin() as conn:
            await conn.run_sync(alembic, "0002")
        down = await columns(engine)
        [row] = await raw_rows(engine, "watch_rules")
        assert row["alert_threshold"] == "1500"  # the other rules stay
        async with engine.begin() as conn:
            await conn.run_sync(alembic, "head")
        return migrated, down, await store.get(WS)

    migrated, down, again = on_database(any_database, work)

    assert migrated >= SPEND_COLUMNS
    assert not down & SPEND_COLUMNS
    assert again is not None
    assert again.rules == Rules(alert=ALERT)
    assert again.state.days_armed is True
    assert again.state.days_crossings == 0
