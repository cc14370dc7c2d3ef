"""Logs: one structured line per command, JSON on request, and no secret in any record."""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path

import pytest

from bot.logs import JsonFormatter, RedactingFormatter, add_secret, fields
from tests.conftest import API_KEY, BOT_TOKEN, SIGNING_SECRET
from tests.fakes import FakeServer, SlackClient
from tests.integration.test_cli import launch_web

SLACK_HOOK = "https://hooks.slack.com/commands/T0001/123/abcSecretHook"


def record(message: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise RuntimeError(f"failed with {BOT_TOKEN}")
        except RuntimeError:
            exc_info = sys.exc_info()
    made = logging.LogRecord("some.dependency", logging.WARNING, __file__, 1, message, args, exc_info)
    for name, value in extra.items():
        setattr(made, name, value)
    return made


@pytest.mark.parametrize("formatter", [JsonFormatter(), RedactingFormatter("%(message)s")])
def test_secrets_are_scrubbed_from_any_logger_message_and_traceback(formatter: logging.Formatter) -> None:
    add_secret("custom-shaped-secret-value")
    line = formatter.format(
        record(
            "token %s key %s hook %s custom %s",
            BOT_TOKEN,
            API_KEY,
            SLACK_HOOK,
            "custom-shaped-secret-value",
            exc=True,
        )
    )

    for secret in (BOT_TOKEN, API_KEY, "abcSecretHook", "custom-shaped-secret-value"):
        assert secret not in line
    assert "[redacted]" in line


def test_json_lines_carry_the_fields_of_the_record() -> None:
    line = JsonFormatter().format(record("command done", **fields(ref="R1", workspace="T1", ms=12.5)))

    entry = json.loads(line)
    assert entry["message"] == "command done"
    assert (entry["ref"], entry["workspace"], entry["ms"]) == ("R1", "T1", 12.5)
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "some.dependency"
    assert entry["time"].endswith("+00:00")


def test_log_format_json_makes_every_line_json_with_one_line_per_command(
    tmp_path: Path, breeze: FakeServer, slack_api: FakeServer, hooks: FakeServer
) -> None:
    process, url = launch_web(tmp_path, breeze, slack_api, LOG_FORMAT="json")
    slack = SlackClient(url, SIGNING_SECRET)
    assert slack.command(f"{hooks.url}/commands/json/1").status_code == 200
    hooks.wait_for(1, path="/commands/json/1")
    slack.close()
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=40)

    entries = [json.loads(line) for line in output.splitlines() if line.strip()]
    commands = [e for e in entries if e["message"].startswith("command ")]
    assert len(commands) == 1
    command = commands[0]
    assert command["outcome"] == "ok"
    assert command["workspace"] == "T0001"
    assert command["delivered"] is True
    assert len(command["ref"]) == 8
    assert command["ms"] >= command["answer_ms"] >= 0
    for secret in (API_KEY, BOT_TOKEN, SIGNING_SECRET):
        assert secret not in output


def test_response_urls_are_scrubbed_on_any_host() -> None:
    line = RedactingFormatter("%(message)s").format(
        record("posting to %s", "https://proxy.example/commands/T0001/1234567/SecretHookValue99")
    )

    assert "SecretHookValue99" not in line
    assert "posting to [redacted]" in line
