"""Breeze's metering in the app: `check`'s line about it, and the runway `/breeze-balance` shows from it.

The fake Breeze answers `/v1/usage` and `/v1/api-keys/current` as Breeze publishes them, or 404s
(its default, as for any path it was not given).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from bot.adapters.breeze import BreezeClient
from bot.adapters.metering import MeteringClient
from bot.domain.usage import UsageReport, complete_week
from tests.conftest import API_KEY
from tests.fakes import FakeMetering, FakeServer, Metered, Reply
from tests.integration.test_cli import run_bot
from tests.integration.test_operator_cli import fake_env, live_checks

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
