"""The real entry points, as an operator runs them: `python -m bot ...` and the Procfile's web line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from bot.adapters import db
from tests.conftest import API_KEY, BOT_TOKEN, SIGNING_SECRET
from tests.fakes import FakeServer, Reply, SlackClient

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(**extra: str) -> dict[str, str]:
    """A clean environment: nothing of the app's settings unless given."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT", "TMPDIR")}
    return {**keep, "PYTHONUNBUFFERED": "1", **extra}


def run_bot(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_missing_settings_stop_a_strict_start_up_with_one_clear_message(tmp_path: Path) -> None:
    result = run_bot("serve", "--strict", env=base_env(), cwd=tmp_path)

    assert result.returncode == 2
    assert "SLACK_SIGNING_SECRET is not set" in result.stderr
    assert "Signing Secret" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_malformed_setting_is_named(tmp_path: Path) -> None:
    result = run_bot("serve", env=base_env(SLACK_SIGNING_SECRET="x1", PORT="http"), cwd=tmp_path)

    assert result.returncode == 2
    assert "PORT is invalid" in result.stderr
    assert "Traceback" not in result.stderr


def check_env(breeze: FakeServer, slack_api: FakeServer) -> dict[str, str]:
    return base_env(
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        BREEZE_API_KEY=API_KEY,
        BREEZE_BASE_URL=breeze.url,
        SLACK_API_URL=slack_api.url + "/api/",
    )


def test_check_tries_slack_and_breeze_without_showing_secrets(
    tmp_path: Path, breeze: FakeServer, slack_api: FakeServer
) -> None:
    assert run_bot("migrate", env=check_env(breeze, slack_api), cwd=tmp_path).returncode == 0
    result = run_bot("check", env=check_env(breeze, slack_api), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "Configuration is valid" in result.stdout
    assert "mode                    single-workspace" in result.stdout
    assert (
        f"✓ Database sqlite+aiosqlite:///breeze-balance.db: schema {db.head_revision()}, up to date"
        in result.stdout
    )
    assert "✓ Slack: workspace Acme (T0001)" in result.stdout
    assert "✓ Breeze: key accepted with key id key_abc123; balance 1,234,567.891 credits" in result.stdout
    for secret in (SIGNING_SECRET, BOT_TOKEN, API_KEY):
        assert secret not in result.stdout + result.stderr
    assert breeze.received()[0].headers["xi-api-key"] == API_KEY
    assert slack_api.received()[0].headers["authorization"] == f"Bearer {BOT_TOKEN}"


def test_check_says_which_credential_fails(tmp_path: Path, breeze: FakeServer, slack_api: FakeServer) -> None:
    breeze.route(
        "GET", "/v1/balance", Reply(401, {"code": "AUTH_INVALID_SESSION", "detail": "no", "error": "x"})
    )
    slack_api.route("POST", "/api/auth.test", Reply(200, {"ok": False, "error": "invalid_auth"}))

    result = run_bot("check", env=check_env(breeze, slack_api), cwd=tmp_path)

    assert result.returncode == 1
    assert "✗ Database sqlite+aiosqlite:///breeze-balance.db has no tables: run `python -m bot migrate`" in (
        result.stdout
    )
    assert "✗ Slack refused SLACK_BOT_TOKEN (invalid_auth)" in result.stdout
    assert "✗ Breeze: Breeze did not accept the API key. (error AUTH_INVALID_SESSION)" in result.stdout
    assert result.stdout.count("fix: ") == 3  # each ✗ says how to fix it


def test_check_offline_calls_nothing(tmp_path: Path, breeze: FakeServer, slack_api: FakeServer) -> None:
    result = run_bot("check", "--offline", env=check_env(breeze, slack_api), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "Configuration is valid" in result.stdout
    assert breeze.received() == []
    assert slack_api.received() == []


def test_manifest_command_fills_in_the_public_url(tmp_path: Path) -> None:
    result = run_bot("manifest", "https://bot.acme.dev/", env=base_env(), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    manifest = yaml.safe_load(result.stdout)
    assert manifest["features"]["slash_commands"][0]["url"] == "https://bot.acme.dev/slack/events"
    assert "example.com" not in result.stdout

    refused = run_bot("manifest", "http://insecure.dev", env=base_env(), cwd=tmp_path)
    assert refused.returncode == 2
    assert "https://" in refused.stderr


def procfile_command(kind: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{kind}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {kind}: line in the Procfile")


def start_procfile_web(env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """Run the Procfile's release line, then its web line, as a platform would."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    release = subprocess.run(
        ["bash", "-c", procfile_command("release")],
        env={**env, "PATH": path},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert release.returncode == 0, release.stderr
    return subprocess.Popen(
        ["bash", "-c", f"exec {procfile_command('web')}"],
        env={**env, "PATH": path},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def launch_web(
    tmp_path: Path, breeze: FakeServer, slack_api: FakeServer, **extra: str
) -> tuple[subprocess.Popen[str], str]:
    """The Procfile's web line, run as a platform would, with $PORT set; waits until it is healthy."""
    port = free_port()
    env = base_env(
        PORT=str(port),
        HOST="127.0.0.1",
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        BREEZE_API_KEY=API_KEY,
        BREEZE_BASE_URL=breeze.url,
        SLACK_API_URL=slack_api.url + "/api/",
        LOG_LEVEL="DEBUG",
        **extra,
    )
    process = start_procfile_web(env, tmp_path)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
        if process.poll() is not None:
            break
    return process, url


@pytest.fixture
def web_process(
    tmp_path: Path, breeze: FakeServer, slack_api: FakeServer
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The Procfile's web line with the default test settings."""
    process, url = launch_web(tmp_path, breeze, slack_api)
    yield process, url
    if process.poll() is None:
        process.kill()
        process.wait(10)


def test_procfile_web_serves_healthz_and_commands_then_stops_on_sigterm(
    web_process: tuple[subprocess.Popen[str], str], hooks: FakeServer
) -> None:
    process, url = web_process
    assert process.poll() is None, process.stdout.read() if process.stdout else ""
    health = httpx.get(f"{url}/healthz", timeout=5)
    assert health.status_code == 200
    assert health.json()["status"] == "ok"

    slack = SlackClient(url, SIGNING_SECRET)
    ack = slack.command(f"{hooks.url}/commands/proc/1")
    slack.close()
    assert ack.status_code == 200
    reply = hooks.wait_for(1, path="/commands/proc/1")[0].json()
    assert "1,234,567.891 credits" in reply["text"]

    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=40)
    # uvicorn re-raises the signal once it has shut down cleanly, as a process killed by it would.
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert "Traceback" not in output
    assert API_KEY not in output
    assert BOT_TOKEN not in output
    assert "ref=" in output  # one log line per command


def test_a_token_slack_refuses_stops_start_up_clearly(tmp_path: Path, slack_api: FakeServer) -> None:
    slack_api.route("POST", "/api/auth.test", Reply(200, {"ok": False, "error": "invalid_auth"}))
    env = base_env(
        PORT=str(free_port()),
        HOST="127.0.0.1",
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_API_URL=slack_api.url + "/api/",
    )

    result = run_bot("serve", "--migrate", env=env, cwd=tmp_path)

    assert result.returncode != 0
    assert "SLACK_BOT_TOKEN was refused by Slack (invalid_auth)" in result.stderr
    assert BOT_TOKEN not in result.stderr


def test_sigterm_waits_for_replies_already_acknowledged(
    web_process: tuple[subprocess.Popen[str], str], hooks: FakeServer, breeze: FakeServer
) -> None:
    process, url = web_process
    breeze.route("GET", "/v1/balance", Reply(200, {"balance": 42}, delay=2))
    slack = SlackClient(url, SIGNING_SECRET)
    # Three workspaces, so three Breeze calls in flight (one workspace's would share one).
    acks = [slack.command(f"{hooks.url}/commands/shutdown/{n}", team_id=f"T000{n}") for n in range(3)]
    slack.close()
    assert [a.status_code for a in acks] == [200, 200, 200]
    breeze.wait_for(3)

    process.send_signal(signal.SIGTERM)  # while Breeze is still answering

    output, _ = process.communicate(timeout=40)
    for n in range(3):
        reply = hooks.wait_for(1, path=f"/commands/shutdown/{n}", timeout=1)[0].json()
        assert reply["text"] == "Breeze balance: 42 credits"
    assert "waiting up to 25 s for 3 reply(s) in flight" in output


def test_balance_command_prints_the_balance(tmp_path: Path, breeze: FakeServer) -> None:
    env = base_env(SLACK_SIGNING_SECRET="x1", BREEZE_API_KEY=API_KEY, BREEZE_BASE_URL=breeze.url)

    result = run_bot("balance", env=env, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "Balance: 1,234,567.891 credits" in result.stdout
    assert "API key id: key_abc123" in result.stdout
    assert breeze.received()[0].headers["xi-api-key"] == API_KEY


def test_balance_command_reports_a_refused_key(tmp_path: Path, breeze: FakeServer) -> None:
    breeze.route(
        "GET", "/v1/balance", Reply(401, {"code": "AUTH_INVALID_SESSION", "detail": "no", "error": "x"})
    )
    env = base_env(SLACK_SIGNING_SECRET="x1", BREEZE_API_KEY=API_KEY, BREEZE_BASE_URL=breeze.url)

    result = run_bot("balance", env=env, cwd=tmp_path)

    assert result.returncode == 1
    assert "Breeze did not accept the API key" in result.stderr
    assert API_KEY not in result.stderr + result.stdout


def test_procfile_web_honours_web_concurrency(tmp_path: Path) -> None:
    port = free_port()
    env = base_env(
        PORT=str(port),
        HOST="127.0.0.1",
        WEB_CONCURRENCY="2",
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
    )
    process = start_procfile_web(env, tmp_path)
    try:
        deadline = time.monotonic() + 30
        healthy = False
        while not healthy and time.monotonic() < deadline and process.poll() is None:
            try:
                healthy = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                time.sleep(0.1)
        assert healthy
        time.sleep(1)  # the first worker answered; give the second one time to finish starting
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=40)
    assert f"Uvicorn running on http://127.0.0.1:{port}" in output
    assert output.count("Application startup complete") == 2, output
