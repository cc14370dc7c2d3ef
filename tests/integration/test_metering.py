"""Breeze's metering in the app: `check`'s line about it, and the runway `/breeze-balance` shows from it.

The fake Breeze answers `/v1/usage` and `/v1/api-keys/current` as Breeze publishes them, or 404s
(its default, as for any path it was not given).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from bot.adapters.breeze import BreezeClient
from bot.adapters.metering import MeteringClient
from bot.adapters.redis_shared import PREFIX
from bot.adapters.watch.tables import samples_table
from bot.domain.usage import UsageReport, complete_week
from bot.services import metering as metering_service
from bot.services.watching import fingerprint
from tests.conftest import API_KEY, TEAM_ID, AppFactory, texts
from tests.fakes import CURRENT_KEY_PATH, FakeMetering, FakeServer, Metered, Reply
from tests.integration.test_cli import run_bot
from tests.integration.test_operator_cli import builder_blocks, fake_env, live_checks
from tests.integration.test_shared import (
    FIRST_KEY,
    admin_slack,
    assert_nothing_secret,
    command,
    set_key,
    two_apps,
    wait_until,
)
from tests.redis_server import RedisServer

EMPTY_USAGE: dict[str, Any] = {
    "summary": {
        "request_count": 0,
        "total_text_characters": 0,
        "total_cost": 0,
        "total_cost_millicredits": 0,
    },
    "total": 0,
    "page": 1,
    "page_size": 1,
    "window_days": 1,
    "daily": [],
    "items": [],
}
BUDGET = {
    "api_key": {
        "id": "key_abc123",
        "name": "prod",
        "prefix": "brz_live",
        "status": "active",
        "credit_limit": 5000.0,
        "credit_used": 3750.5,
        "credit_reserved": 0.0,
        "credit_remaining": 1249.5,
    }
}


# --- check -----------------------------------------------------------------------------------------


def metering_line(stdout: str) -> str:
    lines = [line for line, _ in live_checks(stdout) if line[2:].startswith("Metering")]
    assert len(lines) == 1, stdout
    return lines[0]


def test_check_says_that_metering_answers_and_what_the_key_has_left(
    tmp_path: Path, breeze: FakeServer, slack_api: FakeServer
) -> None:
    breeze.route("GET", "/v1/usage", Reply(200, EMPTY_USAGE))
    breeze.route("GET", "/v1/api-keys/current", Reply(200, BUDGET))

    result = run_bot("check", env=fake_env(breeze, slack_api), cwd=tmp_path)

    line = metering_line(result.stdout)
    assert line.startswith("✓ Metering: Breeze answers"), line
    assert "this key's own budget: 1,249.5 of 5,000 credits left" in line
    assert "brz_live" not in result.stdout
    usage = breeze.received("GET", "/v1/usage")
    assert len(usage) == 1
    assert usage[0].headers["xi-api-key"] == API_KEY
    assert usage[0].query["page_size"] == "1"
    assert usage[0].query["from"] == usage[0].query["to"]


def test_check_notes_unavailable_metering_without_failing(
    tmp_path: Path, breeze: FakeServer, slack_api: FakeServer
) -> None:
    result = run_bot("check", env=fake_env(breeze, slack_api), cwd=tmp_path)
    as_json = run_bot("check", "--json", env=fake_env(breeze, slack_api), cwd=tmp_path)

    line = metering_line(result.stdout)
    assert line.startswith("! Metering: Breeze does not offer its metering to this key (HTTP 404)"), line
    assert "the runway comes from the app's own samples" in line
    assert "fix:" not in result.stdout.split(line, 1)[1].split("\n", 2)[1]
    checks = {c["name"]: c for c in json.loads(as_json.stdout)["checks"]}
    assert checks["metering"]["status"] == "note"
    assert checks["metering"]["fix"] is None
    assert checks["breeze"]["status"] == "ok"


def test_a_metering_outage_does_not_change_checks_exit_code(
    tmp_path: Path, breeze: FakeServer, slack_api: FakeServer
) -> None:
    assert run_bot("migrate", env=fake_env(breeze, slack_api), cwd=tmp_path).returncode == 0
    breeze.route("GET", "/v1/usage", Reply(503, {"code": "GENERATION_CAPACITY_EXCEEDED", "detail": "busy"}))
    breeze.route("GET", "/v1/api-keys/current", Reply(503, "<html>down</html>"))

    result = run_bot("check", env=fake_env(breeze, slack_api), cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    line = metering_line(result.stdout)
    assert line.startswith("! Metering: could not be read"), line
    assert "GENERATION_CAPACITY_EXCEEDED" in line


# --- the fake Breeze's metering, and the adapter against it ------------------------------------------

TODAY = date(2026, 12, 5)


def usage(breeze: FakeServer, **query: str | int) -> dict[str, Any]:
    answer = httpx.get(f"{breeze.url}/v1/usage", params=query, headers={"xi-api-key": API_KEY}, timeout=10)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_the_fake_answers_windows_filters_and_pages_as_breeze_publishes(
    breeze: FakeServer, metering: FakeMetering
) -> None:
    metering.today = TODAY
    metering.spent(
        Metered(TODAY, 1_000),
        Metered(TODAY - timedelta(days=1), 2_000, key_id="key_other", key_name=None, model="aster-v2"),
        Metered(TODAY - timedelta(days=6), 4_000),
        Metered(TODAY - timedelta(days=7), 8_000),
        Metered(datetime(2026, 12, 5, 9, 0, tzinfo=UTC), 16_000),
    )

    week = usage(breeze, days=7)
    assert (week["window_days"], week["total"], week["page"], week["page_size"]) == (7, 4, 1, 20)
    assert week["summary"]["total_cost_millicredits"] == 23_000
    assert week["summary"]["total_cost"] == 23
    assert week["daily"][-1] == {"date": "2026-12-05", "request_count": 2}
    assert [i["cost_millicredits"] for i in week["items"]] == [1_000, 16_000, 2_000, 4_000]  # newest first
    assert week["items"][1]["created_at"] == "2026-12-05T09:00:00Z"

    exact = usage(breeze, **{"from": "2026-11-28", "to": "2026-11-28"})
    assert (exact["total"], exact["summary"]["total_cost_millicredits"], exact["window_days"]) == (
        1,
        8_000,
        1,
    )
    assert usage(breeze)["window_days"] == 30

    other = usage(breeze, days=7, api_key_id="key_other")
    assert [(i["api_key_id"], i["api_key_name"], i["model"]) for i in other["items"]] == [
        ("key_other", None, "aster-v2")
    ]
    assert other["summary"]["total_cost_millicredits"] == 2_000

    second = usage(breeze, days=30, page=2, page_size=2)
    assert [i["cost_millicredits"] for i in second["items"]] == [2_000, 4_000]
    assert second["total"] == 5
    for wrong in ({"page_size": 101}, {"page": 0}, {"days": 91}, {"from": "2026-12-05", "to": "2026-12-01"}):
        assert httpx.get(f"{breeze.url}/v1/usage", params=wrong, timeout=10).status_code == 422


def test_the_fake_says_what_the_key_has_of_its_own_budget(breeze: FakeServer, metering: FakeMetering) -> None:
    def current() -> dict[str, Any]:
        return dict(httpx.get(f"{breeze.url}/v1/api-keys/current", timeout=10).json()["api_key"])

    assert (current()["credit_limit"], current()["credit_remaining"]) == (None, None)
    metering.budget(5000.0, 3750.5)
    assert (current()["credit_limit"], current()["credit_remaining"]) == (5000.0, 1249.5)
    metering.unavailable(404)
    assert httpx.get(f"{breeze.url}/v1/api-keys/current", timeout=10).status_code == 404
    assert httpx.get(f"{breeze.url}/v1/usage", timeout=10).status_code == 404


def test_the_adapter_reads_ten_pages_and_each_days_exact_spend_from_the_fake(
    breeze: FakeServer, metering: FakeMetering
) -> None:
    metering.today = TODAY
    week = complete_week(TODAY)
    for n in range(1_050):  # more than ten pages: the split is a sample, the totals stay exact
        day = week.dates()[n % 7]
        metering.spent(Metered(datetime(day.year, day.month, day.day, n % 24, tzinfo=UTC), 1_000 + n % 7))

    async def read() -> UsageReport:
        async with httpx.AsyncClient() as http:
            client = MeteringClient(BreezeClient(http, breeze.url, 5))
            return await client.report(SecretStr(API_KEY), week, per_day=True)

    report = asyncio.run(read())

    assert (report.total, report.read) == (1_050, 1_000)
    assert report.cost_millicredits == sum(1_000 + n % 7 for n in range(1_050))
    assert report.daily is not None
    assert [d.millicredits for d in report.daily] == [150 * (1_000 + n) for n in range(7)]
    pages = [r.query for r in metering.calls() if r.query["page_size"] == "100"]
    assert sorted(int(q["page"]) for q in pages) == list(range(1, 11))
    summaries = [r.query for r in metering.calls() if r.query["page_size"] == "1"]
    assert sorted(q["from"] for q in summaries) == [d.isoformat() for d in week.dates()]
    assert all(q["from"] == q["to"] for q in summaries)


# --- /breeze-balance: the runway from metering -------------------------------------------------------


def around(days: float) -> str:
    """The run-out date a reply names, `days` from now (UTC), as `Thu Dec 17`."""
    until = (datetime.now(UTC) + timedelta(days=days)).date()
    year = "" if until.year == datetime.now(UTC).year else f", {until.year}"
    return f"{until:%a %b} {until.day}{year}"


def balance_of(breeze: FakeServer, credits: int) -> None:
    body = {"balance": credits, "balance_millicredits": credits * 1000, "topups": []}
    breeze.route("GET", "/v1/balance", Reply(200, body, {"x-breeze-api-key-id": "key_abc123"}))


def a_week_of(
    metering: FakeMetering, credits_a_day: int, *, key_id: str = "key_abc123", model: str = "m1"
) -> None:
    """`credits_a_day` spent on each of the last 7 complete UTC days, in two requests a day."""
    today = datetime.now(UTC).date()
    for back in range(1, 8):
        day = today - timedelta(days=back)
        half = credits_a_day * 500
        metering.spent(Metered(day, half, key_id=key_id, model=model), Metered(day, half, key_id=key_id))


@pytest.fixture
def twelve_days(breeze: FakeServer, metering: FakeMetering) -> FakeMetering:
    """1,680 credits, and 140 spent on each of the last 7 complete days: about 12 days left."""
    balance_of(breeze, 1_680)
    a_week_of(metering, 140)
    return metering


@pytest.fixture
def patient(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replies wait for a metering read under way however slow the machine (1 s in production)."""
    monkeypatch.setattr(metering_service, "REPLY_WAIT_SECONDS", 30.0)


@pytest.mark.usefixtures("patient")
def test_the_very_first_command_shows_the_runway_from_metering(
    start_app: AppFactory, hooks: FakeServer, twelve_days: FakeMetering, all_logs: Any
) -> None:
    twelve_days.spent(Metered(datetime.now(UTC), 5_000))  # today's spend is not part of the rate
    _, slack = start_app()

    said = texts(command(slack, hooks, f"{hooks.url}/commands/first/1"))

    assert f":hourglass: About 12 days left, until around {around(12)}, at 140 credits a day" in said
    assert "an estimate from the last 7 complete days of Breeze's metering" in said
    assert "own budget" not in said  # this key has none
    assert len(twelve_days.calls(CURRENT_KEY_PATH)) == 1
    assert all(r.headers["xi-api-key"] == API_KEY for r in twelve_days.calls())
    assert API_KEY not in all_logs.text


@pytest.mark.usefixtures("patient")
def test_no_spend_in_the_week_says_so_instead_of_a_number(
    start_app: AppFactory, hooks: FakeServer, metering: FakeMetering
) -> None:
    metering.spent(Metered(datetime.now(UTC), 5_000))  # only today
    _, slack = start_app()

    said = texts(command(slack, hooks, f"{hooks.url}/commands/nospend/1"))

    assert (
        ":hourglass: No spend in the last 7 complete days by Breeze's metering: no runway to estimate."
        in said
    )
    assert "days left" not in said


@pytest.mark.usefixtures("patient")
def test_the_keys_own_budget_binds_first_and_its_date_is_used(
    start_app: AppFactory, breeze: FakeServer, hooks: FakeServer, metering: FakeMetering
) -> None:
    balance_of(breeze, 10_000)  # 33.3 days at the account's 300 credits a day
    a_week_of(metering, 100)  # this key: 1,249.5 left at 100 a day is 12.4 days
    a_week_of(metering, 200, key_id="key_other")
    metering.budget(5000.0, 3750.5)
    _, slack = start_app()

    said = texts(command(slack, hooks, f"{hooks.url}/commands/budget/1"))

    assert f"About 12.4 days left, until around {around(12.4)}, at 100 credits a day" in said
    assert "this key's own budget runs out before the account does" in said
    assert ":key: This key's own budget: 1,249.5 of 5,000 credits left." in said
    assert "33.3" not in said
    filtered = [r.query for r in metering.calls() if r.query.get("api_key_id")]
    assert [q["api_key_id"] for q in filtered] == ["key_abc123"]


@pytest.mark.usefixtures("patient")
def test_a_budget_with_room_to_spare_is_shown_beside_the_accounts_runway(
    start_app: AppFactory, breeze: FakeServer, hooks: FakeServer, metering: FakeMetering
) -> None:
    balance_of(breeze, 1_400)
    a_week_of(metering, 140)
    metering.budget(50_000.0, 10_000.0)
    _, slack = start_app()

    said = texts(command(slack, hooks, f"{hooks.url}/commands/spare/1"))

    assert f"About 10 days left, until around {around(10)}, at 140 credits a day" in said
    assert "runs out before the account" not in said
    assert ":key: This key's own budget: 40,000 of 50,000 credits left." in said


def test_the_runway_comes_from_samples_when_breeze_does_not_meter_for_the_key(
    start_app: AppFactory, breeze: FakeServer, hooks: FakeServer, database_url: str, all_logs: Any
) -> None:
    balance_of(breeze, 1_600)
    _, slack = start_app()
    now = datetime.now(UTC)
    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        for hours_ago, credits in ((30, "2000"), (1, "1600")):
            connection.execute(
                samples_table.insert().values(
                    enterprise_id="",
                    team_id=TEAM_ID,
                    at=now - timedelta(hours=hours_ago),
                    credits=credits,
                    topup_credits="0",
                    key_fp=fingerprint(SecretStr(API_KEY)),
                )
            )
    engine.dispose()

    first = texts(command(slack, hooks, f"{hooks.url}/commands/samples/1"))
    second = texts(command(slack, hooks, f"{hooks.url}/commands/samples/2"))

    # 400 credits over 29 hours: 331 a day, 4.8 days for the newest sample's 1,600 credits.
    for said in (first, second):
        assert ":hourglass: About 4.8 days left at 331 credits a day." in said
        assert "until around" not in said
        assert "own budget" not in said
    unavailable = [r for r in all_logs.records if "metering is unavailable" in r.getMessage()]
    assert len(unavailable) == 1
    assert "HTTP 404" in unavailable[0].getMessage()
    assert len(breeze.received("GET", CURRENT_KEY_PATH)) == 1  # "unavailable" is remembered, not asked again
    assert API_KEY not in all_logs.text


def test_the_reply_does_not_wait_for_slow_metering_and_the_next_one_has_it(
    start_app: AppFactory, hooks: FakeServer, twelve_days: FakeMetering
) -> None:
    twelve_days.hold = threading.Event()
    _, slack = start_app()

    first = texts(command(slack, hooks, f"{hooks.url}/commands/slow/1"))

    assert "*1,680 credits*" in first
    assert ":hourglass:" not in first  # no metering yet, and no samples
    twelve_days.hold.set()
    answers = iter(range(2, 100))

    def runway_shown() -> bool:
        return "until around" in texts(command(slack, hooks, f"{hooks.url}/commands/slow/{next(answers)}"))

    wait_until(runway_shown, "a reply with the runway from metering")
    assert len(twelve_days.calls(CURRENT_KEY_PATH)) == 1  # the first read, finished in the background


@pytest.mark.usefixtures("patient")
def test_metering_is_read_once_per_period_for_every_process_sharing_redis(
    redis: RedisServer,
    start_app: AppFactory,
    hooks: FakeServer,
    twelve_days: FakeMetering,
) -> None:
    (_, a), (_, b) = two_apps(start_app, redis_url=redis.url)

    said = [
        texts(command(client, hooks, f"{hooks.url}/commands/shared/{n}"))
        for n, client in enumerate((a, b, a, b))
    ]

    for text in said:
        assert f"About 12 days left, until around {around(12)}, at 140 credits a day" in text
    assert len(twelve_days.calls(CURRENT_KEY_PATH)) == 1
    stored = assert_nothing_secret(redis)
    named = [name for name in stored if name.startswith(f"{PREFIX}metering:")]
    assert named == [f"{PREFIX}metering:-:{TEAM_ID}:{hashlib.sha256(API_KEY.encode()).hexdigest()}"]


@pytest.mark.usefixtures("patient")
def test_the_first_command_after_a_key_is_set_shows_the_runway(
    start_app: AppFactory,
    slack_api: FakeServer,
    hooks: FakeServer,
    twelve_days: FakeMetering,
) -> None:
    admin_slack(slack_api)
    _, slack = start_app(breeze_api_key=None)
    set_key(slack, slack_api, hooks, f"{hooks.url}/commands/setkey/1", FIRST_KEY)

    said = texts(command(slack, hooks, f"{hooks.url}/commands/setkey/2"))

    assert f"About 12 days left, until around {around(12)}, at 140 credits a day" in said
    assert {r.headers["xi-api-key"] for r in twelve_days.calls()} == {FIRST_KEY}


def test_the_balance_and_preview_commands_give_the_same_runway_and_budget(
    tmp_path: Path, breeze: FakeServer, slack_api: FakeServer, twelve_days: FakeMetering
) -> None:
    twelve_days.budget(50_000.0, 10_000.0)
    env = fake_env(breeze, slack_api)
    assert run_bot("migrate", env=env, cwd=tmp_path).returncode == 0

    result = run_bot("balance", env=env, cwd=tmp_path)
    preview = run_bot("preview", "--json", env=env, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert f"Runway: about 12 days left, until around {around(12)}, at 140 credits a day (an estimate" in (
        result.stdout
    )
    assert "This key's own budget: 40,000 of 50,000 credits left" in result.stdout
    previewed = texts({"blocks": builder_blocks(json.loads(preview.stdout)["url"])})
    assert f":hourglass: About 12 days left, until around {around(12)}, at 140 credits a day" in previewed
    assert ":key: This key's own budget: 40,000 of 50,000 credits left." in previewed
    assert API_KEY not in result.stdout + result.stderr + preview.stdout + preview.stderr
