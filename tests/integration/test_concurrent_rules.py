"""Rules written by two requests for one workspace at once, on real databases.

What admins do when they set a workspace up: `set-key` (which reschedules the workspace's checks
as soon as the key is saved) and, a few milliseconds later, `alert 100`; or two admins setting two
rules at the same moment. Each test does that for hundreds of new workspaces through the real
`WatchService` and `WatchStore` on the app's own engine and pool, several workspaces at once and
both writes of a workspace started together, then reads every workspace's rules back. It runs on
SQLite always and on PostgreSQL when TEST_DATABASE_URL is set (the skip says how).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import time
from decimal import Decimal

from bot.adapters.watch.store import WatchStore
from bot.deps import open_deps
from bot.domain.balances import Workspace
from bot.domain.rules import AlertRule, Frequency, PendingPost, Rules, Watch
from bot.errors import SlackPostError
from bot.services.watching import Outbox, WatchService
from tests.conftest import make_settings
from tests.fakes import FakeServer

WORKSPACES = 500
AT_ONCE = 8  # workspaces raced at the same time: more writers than the pool keeps connections
THRESHOLD = Decimal(100)
ALERTS = "C0ALERTS01"
DIGESTS = "C0DIGEST1"
ADMIN = "U0ADMIN"
ALERT = AlertRule(THRESHOLD, ALERTS, ADMIN)
POSTS = 100
ABOVE_BALANCE = Decimal(2_000_000)  # the fake Breeze has 1,234,567 credits: each check queues an alert
MOVED = "C0MOVED001"
TOPUPS = "C0TOPUPS1"

# The two writes raced for one workspace.
Race = Callable[[WatchService, Workspace], tuple[Awaitable[object], Awaitable[object]]]


async def after(steps: int, write: Awaitable[object]) -> object:
    """`write`, once the other write has had `steps` turns of the event loop to get ahead."""
    for _ in range(steps):
        await asyncio.sleep(0)
    return await write


def race_everywhere(
    breeze: FakeServer, slack_api: FakeServer, database_url: str, race: Race, kept: Callable[[Rules], bool]
) -> dict[str, list[str]]:
    """Race the two writes in every workspace; returns what went wrong, by workspace.

    A write that failed is wrong, and so are rules afterwards that are missing or not `kept`.
    """
    settings = make_settings(breeze, slack_api, database_url=database_url)
    workspaces = [Workspace(None, f"T0RACE{number:05d}") for number in range(WORKSPACES)]
    wrong: dict[str, list[str]] = {}

    async def go() -> None:
        async with open_deps(settings) as deps:
            gate = asyncio.Semaphore(AT_ONCE)

            async def one(workspace: Workspace, number: int) -> None:
                first, second = race(deps.watch, workspace)
                async with gate:
                    # Which write gets ahead, and by how much, varies from workspace to workspace.
                    results = await asyncio.gather(first, after(number % 4, second), return_exceptions=True)
                failed = [repr(r) for r in results if isinstance(r, BaseException)]
                if failed:
                    wrong.setdefault(str(workspace), []).extend(failed)

            await asyncio.gather(*(one(workspace, n) for n, workspace in enumerate(workspaces)))
            for workspace in workspaces:
                found = await deps.watch.watch(workspace)
                if found is None:
                    wrong.setdefault(str(workspace), []).append("no rules row")
                elif not kept(found.rules):
                    wrong.setdefault(str(workspace), []).append(str(found.rules))

    asyncio.run(go())
    return wrong


def test_a_key_change_racing_a_new_alert_never_loses_the_alert(
    breeze: FakeServer, slack_api: FakeServer, any_database: str
) -> None:
    def race(watch: WatchService, workspace: Workspace) -> tuple[Awaitable[object], Awaitable[object]]:
        return watch.key_changed(workspace), watch.set_alert(workspace, THRESHOLD, ALERTS, ADMIN)

    def kept(rules: Rules) -> bool:
        return rules == Rules(alert=ALERT)

    wrong = race_everywhere(breeze, slack_api, any_database, race, kept)

    assert not wrong, f"{len(wrong)} of {WORKSPACES} workspaces lost their alert: {list(wrong.items())[:3]}"


def test_two_admins_setting_a_new_workspaces_first_rules_at_once_keep_both(
    breeze: FakeServer, slack_api: FakeServer, any_database: str
) -> None:
    def race(watch: WatchService, workspace: Workspace) -> tuple[Awaitable[object], Awaitable[object]]:
        digest = watch.set_digest(workspace, Frequency.DAILY, time(9), "UTC", DIGESTS, ADMIN)
        return watch.set_alert(workspace, THRESHOLD, ALERTS, ADMIN), digest

    def kept(rules: Rules) -> bool:
        return rules.alert == ALERT and rules.digest is not None and rules.digest.channel == DIGESTS

    wrong = race_everywhere(breeze, slack_api, any_database, race, kept)

    assert not wrong, (
        f"{len(wrong)} of {WORKSPACES} workspaces lost a rule or an answer: {list(wrong.items())[:3]}"
    )


def test_alerts_delivered_or_refused_while_admins_move_them_are_recorded_and_the_moves_saved(
    breeze: FakeServer, slack_api: FakeServer, any_database: str
) -> None:
    """The worker records a post (and a refusing channel's fault) while an admin changes its rule."""
    settings = make_settings(breeze, slack_api, database_url=any_database)
    workspaces = [Workspace(None, f"T0POST{number:05d}") for number in range(POSTS)]
    wrong: dict[str, list[str]] = {}

    async def go() -> None:
        async with open_deps(settings) as deps:
            for workspace in workspaces:
                await deps.watch.set_alert(workspace, ABOVE_BALANCE, ALERTS, ADMIN)
            for watch in await deps.watch.claim(POSTS):
                await deps.watch.check(watch)
            store = WatchStore(deps.engine)
            outbox = Outbox(store.outbox, now=deps.watch.now)
            claimed = await outbox.claim(POSTS)
            assert len(claimed) == POSTS
            gate = asyncio.Semaphore(AT_ONCE)

            async def one(post: PendingPost, number: int) -> None:
                refused = SlackPostError("not_in_channel", fixable=True)
                recorded = outbox.failed(post, refused) if number % 2 else outbox.delivered(post)
                moved = deps.watch.set_alert(post.workspace, ABOVE_BALANCE, MOVED, ADMIN)
                async with gate:
                    results = await asyncio.gather(
                        recorded, after(number // 2 % 4, moved), return_exceptions=True
                    )
                failed = [repr(r) for r in results if isinstance(r, BaseException)]
                if failed:
                    wrong.setdefault(str(post.workspace), []).extend(failed)

            await asyncio.gather(*(one(post, n) for n, post in enumerate(claimed)))
            for number, post in enumerate(claimed):
                found = await deps.watch.watch(post.workspace)
                if found is None or found.rules.alert is None or found.rules.alert.channel != MOVED:
                    wrong.setdefault(str(post.workspace), []).append("alert not moved")
                rows = [row for row in await store.outbox.posts(post.workspace) if row["id"] == post.id]
                if rows[0]["sent_at"] is None if number % 2 == 0 else rows[0]["sent_at"] is not None:
                    wrong.setdefault(str(post.workspace), []).append(f"alert recorded wrong: {rows[0]}")

    asyncio.run(go())

    assert not wrong, f"{len(wrong)} of {POSTS} workspaces went wrong: {list(wrong.items())[:3]}"


def test_top_up_notices_turned_on_during_a_check_are_saved(
    breeze: FakeServer, slack_api: FakeServer, any_database: str
) -> None:
    """Both record the top-ups they saw (the check, and the notices' baseline) while the other runs."""
    settings = make_settings(breeze, slack_api, database_url=any_database)
    workspaces = [Workspace(None, f"T0SEEN{number:05d}") for number in range(POSTS)]
    wrong: dict[str, list[str]] = {}

    async def go() -> None:
        async with open_deps(settings) as deps:
            for workspace in workspaces:
                await deps.watch.set_alert(workspace, THRESHOLD, ALERTS, ADMIN)
            gate = asyncio.Semaphore(AT_ONCE)

            async def one(watch: Watch, number: int) -> None:
                notices = deps.watch.set_topups(watch.workspace, TOPUPS, ADMIN)
                async with gate:
                    results = await asyncio.gather(
                        deps.watch.check(watch), after(number % 4, notices), return_exceptions=True
                    )
                failed = [repr(r) for r in results if isinstance(r, BaseException)]
                if failed:
                    wrong.setdefault(str(watch.workspace), []).extend(failed)

            claimed = await deps.watch.claim(POSTS)
            assert len(claimed) == POSTS
            await asyncio.gather(*(one(watch, n) for n, watch in enumerate(claimed)))
            for workspace in workspaces:
                found = await deps.watch.watch(workspace)
                if found is None or found.rules.topups is None or found.rules.alert != ALERT:
                    wrong.setdefault(str(workspace), []).append(f"rules: {found}")

    asyncio.run(go())

    assert not wrong, f"{len(wrong)} of {POSTS} workspaces went wrong: {list(wrong.items())[:3]}"
