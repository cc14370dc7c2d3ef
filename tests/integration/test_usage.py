"""`/breeze-balance usage` and `breeze-balance usage`: a window's spend from Breeze's metering, through
signed requests into the running app (and the CLI as a process) against the fake Breeze's `/v1/usage`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.redis_shared import PREFIX
from tests.conftest import API_KEY, AppFactory, texts
from tests.fakes import FakeMetering, FakeServer, Metered
from tests.integration.test_cli import run_bot
from tests.integration.test_operator_cli import fake_env
from tests.integration.test_shared import assert_nothing_secret, command, two_apps
from tests.redis_server import RedisServer

MODELS = ["bluebell-v1-en", "aster-v2", "iris-v1", "lotus-v3", "peony-v1", "tulip-v2", "violet-v1"]


def today() -> datetime:
    return datetime.now(UTC)


def usage_calls(metering: FakeMetering, days: int) -> list[Any]:
    """The first-page reads of the usage window of the last `days` days (not the runway's reads)."""
    end = today().date()
    start = (end - timedelta(days=days - 1)).isoformat()
    return [
        call
        for call in metering.calls()
        if call.query.get("from") == start
        and call.query.get("to") == end.isoformat()
        and call.query.get("page") == "1"
        and call.query.get("page_size") == "100"
    ]


def ask(start_app: AppFactory, hooks: FakeServer, text: str, tag: str, **extra: str) -> dict[str, Any]:
    _, slack = start_app()
    return command(slack, hooks, f"{hooks.url}/commands/{tag}/1", text, **extra)


def test_usage_shows_the_weeks_exact_spend_its_top_keys_and_models_and_a_trend(
    start_app: AppFactory, hooks: FakeServer, metering: FakeMetering
) -> None:
    now = today()
    # 7 models over 3 keys, spread over the last 7 days; one older request outside the window.
    for n, model in enumerate(MODELS):
        metering.spent(
            Metered(
                now - timedelta(days=n % 7),
                100_001 * (n + 1),
                key_id=f"key_{n % 3}",
                key_name=None,
                model=model,
            )
        )
    metering.spent(Metered(now - timedelta(days=8), 999_999_999))

    reply = ask(start_app, hooks, "usage", "week")
    said = texts(reply)

    total = sum(100_001 * (n + 1) for n in range(7))  # 2,800.028 credits
    assert total == 2_800_028
    assert reply["response_type"] == "ephemeral"
    expected = [
        "*2,800.028 credits* spent in the last 7 days",
        "7 requests",
        "400.004 credits a day on average",
        "*By key*",
        "*By model*",
        "`violet-v1`: *700.007 credits* (25%)",
        "other models:",  # 7 models: the top 5 and the rest
        "*Per day:*",
    ]
    assert [fragment for fragment in expected if fragment not in said] == []
    assert "999,999" not in said
    assert "newest" not in said  # every request was read: the split is not a sample


def test_a_window_longer_than_the_app_reads_says_what_the_split_is_based_on(
    start_app: AppFactory, hooks: FakeServer, metering: FakeMetering
) -> None:
    midnight = today().replace(hour=0, minute=0, second=0, microsecond=0)
    metering.spent(*(Metered(midnight + timedelta(seconds=n), 1_000 + n % 2) for n in range(1_050)))

    said = texts(ask(start_app, hooks, "usage today", "sampled"))

    assert "1,050 requests" in said
    assert "*1,050.525 credits* spent today so far" in said  # exact, from Breeze's summary
    assert (
        "The split by key and by model is of the newest 1,000 of 1,050 requests; the totals are exact."
        in said
    )


def test_usage_share_posts_in_the_channel_saying_who_asked(
    start_app: AppFactory, hooks: FakeServer, metering: FakeMetering
) -> None:
    metering.spent(Metered(today(), 12_000))

    reply = ask(start_app, hooks, "usage 30d share", "share", user_id="U0ASKER")

    assert reply["response_type"] == "in_channel"
    said = texts(reply)
    assert "Breeze spend: the last 30 days" in said
    assert "*12 credits* spent in the last 30 days" in said
    assert "<@U0ASKER> shared this." in said
    assert len(usage_calls(metering, 30)) == 1


@pytest.mark.parametrize("text", ["usage forever", "usage 7d 30d", "usage share share", "usage 12"])
def test_nonsense_after_usage_gets_a_usage_line_and_asks_breeze_nothing(
    start_app: AppFactory, hooks: FakeServer, metering: FakeMetering, text: str
) -> None:
    said = texts(ask(start_app, hooks, text, "nonsense"))

    assert "Usage: `/breeze-balance usage [today|7d|30d|90d] [share]`" in said
    assert metering.calls() == []


def test_a_key_breeze_does_not_meter_for_gets_a_plain_note_not_an_error(
    start_app: AppFactory, hooks: FakeServer, metering: FakeMetering
) -> None:
    metering.unavailable(404)

    said = texts(ask(start_app, hooks, "usage", "unavailable"))

    assert "Breeze does not offer usage reports for this workspace's API key" in said
    assert "error" not in said.lower()


def test_without_a_key_usage_says_how_to_set_one(
    start_app: AppFactory, hooks: FakeServer, metering: FakeMetering
) -> None:
    _, slack = start_app(breeze_api_key=None)

    said = texts(command(slack, hooks, f"{hooks.url}/commands/nokey/1", "usage"))

    assert "No Breeze API key is set up for this workspace yet." in said
    assert metering.calls() == []


def test_a_window_is_read_once_per_period_for_every_process_sharing_redis(
    redis: RedisServer, start_app: AppFactory, hooks: FakeServer, metering: FakeMetering
) -> None:
    metering.spent(Metered(today(), 5_000))
    (_, a), (_, b) = two_apps(start_app, redis_url=redis.url)

    said = [
        texts(command(client, hooks, f"{hooks.url}/commands/period/{n}", "usage 7d"))
        for n, client in enumerate((a, b, a, b))
    ]

    assert all("*5 credits* spent in the last 7 days" in text for text in said)
    assert len(usage_calls(metering, 7)) == 1
    stored = assert_nothing_secret(redis)
    assert any(name.startswith(f"{PREFIX}usage:") for name in stored)
    assert all(call.headers["xi-api-key"] == API_KEY for call in metering.calls())


def test_the_cli_prints_the_same_report_as_text_and_json(
    tmp_path: Path, breeze: FakeServer, slack_api: FakeServer, metering: FakeMetering
) -> None:
    now = today()
    metering.spent(
        Metered(now, 1_234_567, key_name="prod"), Metered(now - timedelta(days=1), 1, key_name="ci")
    )
    env = fake_env(breeze, slack_api)

    text = run_bot("usage", "--days", "7", env=env, cwd=tmp_path)
    as_json = run_bot("usage", "--json", env=env, cwd=tmp_path)
    wrong = run_bot("usage", "--days", "91", env=env, cwd=tmp_path)

    assert text.returncode == 0, text.stderr
    assert "1,234.568 credits" in text.stdout
    assert "prod" in text.stdout
    data = json.loads(as_json.stdout)
    assert data["ok"] is True
    assert json.dumps(data).count("1234568") >= 1  # the exact millicredits
    assert wrong.returncode == 2
    assert "outside 1 to 90 days" in wrong.stderr
    assert API_KEY not in text.stdout + text.stderr + as_json.stdout + as_json.stderr


def test_the_cli_says_plainly_when_breeze_does_not_meter_for_the_key(
    tmp_path: Path, breeze: FakeServer, slack_api: FakeServer, metering: FakeMetering
) -> None:
    metering.unavailable(404)

    result = run_bot("usage", env=fake_env(breeze, slack_api), cwd=tmp_path)

    assert result.returncode == 1
    assert "Breeze does not offer usage reports for this key (HTTP 404)" in result.stderr
    assert "Traceback" not in result.stderr
