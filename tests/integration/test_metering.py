"""Breeze's metering in the app: `check`'s line about it, and the runway `/breeze-balance` shows from it.

The fake Breeze answers `/v1/usage` and `/v1/api-keys/current` as Breeze publishes them, or 404s
(its default, as for any path it was not given).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import API_KEY
from tests.fakes import FakeServer, Reply
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
