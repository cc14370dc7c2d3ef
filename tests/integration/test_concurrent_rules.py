"""Two writes for one workspace at once, over hundreds of workspaces, on real databases.

What admins and the worker do at the same moment: `set-key` (which reschedules the workspace's
checks as soon as the key is saved) and, a few milliseconds later, `alert 100`; two admins setting
a new workspace's first rules; an admin moving an alert the worker is delivering; an admin turning
top-up notices on during a check. Each test runs both writes of a workspace through the real
`WatchService`, `Outbox` and `WatchStore` on the app's own engine and pool, started together,
several workspaces at once, then reads everything back. It runs on SQLite always and on PostgreSQL
when TEST_DATABASE_URL is set (the skip says how).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import time
from decimal import Decimal

from bot.adapters.watch.store import WatchStore
from bot.config import Settings
from bot.deps import Deps, open_deps
from bot.domain.balances import Workspace
from bot.domain.rules import AlertRule, Frequency, Rules, Watch
from bot.errors import SlackPostError
from bot.services.watching import Outbox, WatchService
from tests.conftest import make_settings
from tests.fakes import FakeServer

WORKSPACES = 500
POSTS = 100  # workspaces in the tests that first need a check each
AT_ONCE = 8  # workspaces raced at the same time: more writers than the pool keeps connections
THRESHOLD = Decimal(100)
ABOVE_BALANCE = Decimal(2_000_000)  # the fake Breeze has 1,234,567 credits: each check queues an alert
ALERTS = "C0ALERTS01"
MOVED = "C0MOVED001"
DIGESTS = "C0DIGEST1"
TOPUPS = "C0TOPUPS1"
ADMIN = "U0ADMIN"
ALERT = AlertRule(THRESHOLD, ALERTS, ADMIN)
MOVED_ALERT = AlertRule(ABOVE_BALANCE, MOVED, ADMIN)

# A workspace and its two writes, to be started together.
Pair = tuple[Workspace, Awaitable[object], Awaitable[object]]
# The two writes for a workspace.
Writes = Callable[[WatchService, Workspace], tuple[Awaitable[object], Awaitable[object]]]


class Wrong(dict[str, list[str]]):
    """What went wrong, by workspace."""

    def note(self, workspace: Workspace, what: str) -> None:
        self.setdefault(str(workspace), []).append(what)

    def summary(self, out_of: int) -> str:
        return f"{len(self)} of {out_of} workspaces went wrong: {list(self.items())[:3]}"


def new_workspaces(prefix: str, count: int) -> list[Workspace]:
    return [Workspace(None, f"{prefix}{number:05d}") for number in range(count)]


def run(settings: Settings, scenario: Callable[[Deps], Awaitable[None]]) -> None:
    async def go() -> None:
        async with open_deps(settings) as deps:
            await scenario(deps)

    asyncio.run(go())


async def after(steps: int, write: Awaitable[object]) -> object:
    """`write`, once the other write has had `steps` turns of the event loop to get ahead."""
    for _ in range(steps):
        await asyncio.sleep(0)
    return await write


async def race(pairs: list[Pair], wrong: Wrong) -> None:
    """Start both writes of each workspace together, AT_ONCE workspaces at a time; note failures.

    How far the first write gets ahead (0 to 3 turns of the event loop) varies by workspace.
    """
    gate = asyncio.Semaphore(AT_ONCE)

    async def one(
        number: int, workspace: Workspace, first: Awaitable[object], second: Awaitable[object]
    ) -> None:
        async with gate:
            results = await asyncio.gather(first, after(number % 4, second), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                wrong.note(workspace, repr(result))

    await asyncio.gather(*(one(number, *pair) for number, pair in enumerate(pairs)))


async def check_rules(
    deps: Deps, workspaces: list[Workspace], kept: Callable[[Rules], bool], wrong: Wrong
) -> None:
    for workspace in workspaces:
        found = await deps.watch.watch(workspace)
        if found is None:
            wrong.note(workspace, "no rules row")
        elif not kept(found.rules):
            wrong.note(workspace, str(found.rules))


async def alerted_and_due(deps: Deps, workspaces: list[Workspace], threshold: Decimal) -> list[Watch]:
    """Set an alert below `threshold` in each workspace; all of them, claimed for their first check."""
    for workspace in workspaces:
        await deps.watch.set_alert(workspace, threshold, ALERTS, ADMIN)
    due = await deps.watch.claim(len(workspaces))
    assert len(due) == len(workspaces)
    return due


def race_in(
    settings: Settings,
    workspaces: list[Workspace],
    pairs: Callable[[Deps], Awaitable[list[Pair]]],
    kept: Callable[[Rules], bool],
) -> Wrong:
    """Race the `pairs` of writes, then find the rules of each workspace `kept`."""
    wrong = Wrong()

    async def scenario(deps: Deps) -> None:
        await race(await pairs(deps), wrong)
        await check_rules(deps, workspaces, kept, wrong)

    run(settings, scenario)
    return wrong


def in_new_workspaces(workspaces: list[Workspace], writes: Writes) -> Callable[[Deps], Awaitable[list[Pair]]]:
    """The pairs: both `writes` in each of `workspaces`, none of which has rules yet."""

    async def pairs(deps: Deps) -> list[Pair]:
        return [(ws, *writes(deps.watch, ws)) for ws in workspaces]

    return pairs


def test_a_key_change_racing_a_new_alert_never_loses_the_alert(
    breeze: FakeServer, slack_api: FakeServer, any_database: str
) -> None:
    def writes(watch: WatchService, ws: Workspace) -> tuple[Awaitable[object], Awaitable[object]]:
        return watch.key_changed(ws), watch.set_alert(ws, THRESHOLD, ALERTS, ADMIN)

    workspaces = new_workspaces("T0RACE", WORKSPACES)
    settings = make_settings(breeze, slack_api, database_url=any_database)
    wrong = race_in(
        settings, workspaces, in_new_workspaces(workspaces, writes), lambda r: r == Rules(alert=ALERT)
    )

    assert not wrong, wrong.summary(WORKSPACES)


def test_two_admins_setting_a_new_workspaces_first_rules_at_once_keep_both(
    breeze: FakeServer, slack_api: FakeServer, any_database: str
) -> None:
    def writes(watch: WatchService, ws: Workspace) -> tuple[Awaitable[object], Awaitable[object]]:
        digest = watch.set_digest(ws, Frequency.DAILY, time(9), "UTC", DIGESTS, ADMIN)
        return watch.set_alert(ws, THRESHOLD, ALERTS, ADMIN), digest

    def kept(rules: Rules) -> bool:
        return rules.alert == ALERT and rules.digest is not None and rules.digest.channel == DIGESTS

    workspaces = new_workspaces("T0RACE", WORKSPACES)
    settings = make_settings(breeze, slack_api, database_url=any_database)
    wrong = race_in(settings, workspaces, in_new_workspaces(workspaces, writes), kept)

    assert not wrong, wrong.summary(WORKSPACES)


def test_alerts_delivered_or_refused_while_admins_move_them_are_recorded_and_the_moves_saved(
    breeze: FakeServer, slack_api: FakeServer, any_database: str
) -> None:
    """The worker records a post (or a refusing channel's fault) while an admin changes its rule."""
    workspaces = new_workspaces("T0POST", POSTS)
    wrong = Wrong()

    def delivered(number: int) -> bool:
        return number % 8 < 4  # half of them, each with every head start

    async def scenario(deps: Deps) -> None:
        watch = deps.watch
        for due in await alerted_and_due(deps, workspaces, ABOVE_BALANCE):
            await watch.check(due)
        store = WatchStore(deps.engine)
        outbox = Outbox(store.outbox, now=watch.now)
        posts = await outbox.claim(POSTS)
        assert len(posts) == POSTS
        refused = SlackPostError("not_in_channel", fixable=True)
        pairs: list[Pair] = [
            (
                post.workspace,
                outbox.delivered(post) if delivered(number) else outbox.failed(post, refused),
                watch.set_alert(post.workspace, ABOVE_BALANCE, MOVED, ADMIN),
            )
            for number, post in enumerate(posts)
        ]
        await race(pairs, wrong)
        await check_rules(deps, workspaces, lambda rules: rules.alert == MOVED_ALERT, wrong)
        for number, post in enumerate(posts):
            row = next(r for r in await store.outbox.posts(post.workspace) if r["id"] == post.id)
            if (row["sent_at"] is not None) != delivered(number):
                wrong.note(post.workspace, f"post recorded wrong: {row}")

    run(make_settings(breeze, slack_api, database_url=any_database), scenario)

    assert not wrong, wrong.summary(POSTS)


def test_top_up_notices_turned_on_during_a_check_are_saved(
    breeze: FakeServer, slack_api: FakeServer, any_database: str
) -> None:
    """Both record the top-ups they saw (the check, and the notices' baseline) while the other runs."""
    workspaces = new_workspaces("T0SEEN", POSTS)

    async def pairs(deps: Deps) -> list[Pair]:
        watch = deps.watch
        due = await alerted_and_due(deps, workspaces, THRESHOLD)
        return [(w.workspace, watch.check(w), watch.set_topups(w.workspace, TOPUPS, ADMIN)) for w in due]

    def kept(rules: Rules) -> bool:
        return rules.alert == ALERT and rules.topups is not None

    settings = make_settings(breeze, slack_api, database_url=any_database)
    wrong = race_in(settings, workspaces, pairs, kept)

    assert not wrong, wrong.summary(POSTS)
