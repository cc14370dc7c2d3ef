"""`python -m bot socket`: the same app over Socket Mode, against a fake Socket Mode server on loopback."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import API_KEY, BOT_TOKEN, ENCRYPTION_KEY, SIGNING_SECRET, texts
from tests.fake_socket import FakeSocketMode
from tests.fakes import FakeServer, Recorded, Reply, SlackClient
from tests.integration.test_cli import base_env, free_port, run_bot

APP_TOKEN = "xapp-1-A0001-123-abc"
CONNECTIONS_OPEN = "/api/apps.connections.open"
PUBLISH = "/api/views.publish"


@dataclass
class SocketProcess:
    """`python -m bot socket` running, with its $PORT and the file its output goes to."""

    process: subprocess.Popen[str]
    port: int
    log: Path

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, then wait; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(40)


@pytest.fixture
def socket_server() -> Iterator[FakeSocketMode]:
    server = FakeSocketMode().start()
    yield server
    server.stop()


def socket_env(
    tmp_path: Path, breeze: FakeServer, slack_api: FakeServer, port: int, **extra: str
) -> dict[str, str]:
    values = {
        "SLACK_APP_TOKEN": APP_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "BREEZE_API_KEY": API_KEY,
        "BREEZE_BASE_URL": breeze.url,
        "BREEZE_ENCRYPTION_KEYS": ENCRYPTION_KEY,
        "SLACK_API_URL": slack_api.url + "/api/",
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'socket.db'}",
        "LOG_LEVEL": "DEBUG",
        **extra,
    }
    return base_env(**{k: v for k, v in values.items() if v})


def launch(tmp_path: Path, env: dict[str, str], *args: str) -> SocketProcess:
    log = tmp_path / "socket.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "socket", "--migrate", *args],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    return SocketProcess(process, int(env["PORT"]), log)


@pytest.fixture
def connections_open(slack_api: FakeServer, socket_server: FakeSocketMode) -> FakeServer:
    """Slack's apps.connections.open, handing out the fake Socket Mode server's URL to the app token."""

    def answer(recorded: Recorded) -> Reply:
        if recorded.headers.get("authorization") != f"Bearer {APP_TOKEN}":
            return Reply(200, {"ok": False, "error": "not_allowed_token_type"})
        return Reply(200, {"ok": True, "url": socket_server.url})

    slack_api.route("POST", CONNECTIONS_OPEN, answer)
    slack_api.route("POST", PUBLISH, Reply(200, {"ok": True, "view": {"id": "VHOME"}}))
    for method in ("GET", "POST"):
        slack_api.route(method, "/api/users.info", Reply(200, {"ok": True, "user": {"is_admin": False}}))
    return slack_api


@pytest.fixture
def socket_app(
    tmp_path: Path,
    breeze: FakeServer,
    connections_open: FakeServer,
    socket_server: FakeSocketMode,
) -> Iterator[SocketProcess]:
    """`python -m bot socket --migrate`, connected to the fake Socket Mode server."""
    app = launch(tmp_path, socket_env(tmp_path, breeze, connections_open, free_port()))
    try:
        try:
            socket_server.wait_connected()
        except AssertionError:
            raise AssertionError(f"the app did not connect; it said:\n{app.output}") from None
        yield app
    finally:
        if app.process.poll() is None:
            app.process.kill()
            app.process.wait(10)


def slash_command(envelope_id: str, response_url: str, text: str = "") -> dict[str, Any]:
    """A slash command as Socket Mode delivers it: the form's fields as JSON in an envelope."""
    return {
        "envelope_id": envelope_id,
        "type": "slash_commands",
        "accepts_response_payload": True,
        "payload": {
            "token": "legacy-verification-token",
            "team_id": "T0001",
            "team_domain": "acme",
            "channel_id": "C0001",
            "channel_name": "general",
            "user_id": "U0001",
            "user_name": "ada",
            "command": "/breeze-balance",
            "text": text,
            "api_app_id": "A0001",
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": "1.2.3",
        },
    }


def home_opened(envelope_id: str, user: str) -> dict[str, Any]:
    return {
        "envelope_id": envelope_id,
        "type": "events_api",
        "accepts_response_payload": False,
        "retry_attempt": 0,
        "retry_reason": "",
        "payload": {
            "type": "event_callback",
            "team_id": "T0001",
            "api_app_id": "A0001",
            "event": {"type": "app_home_opened", "user": user, "channel": "D0001", "tab": "home"},
            "event_id": "Ev1",
            "event_time": 1,
        },
    }


def healthz(port: int) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)


def wait_healthy(app: SocketProcess, timeout: float = 30.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and app.process.poll() is None:
        try:
            answer = healthz(app.port)
            if answer.status_code == 200:
                return answer
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"/healthz never answered 200; the app said:\n{app.output}")


# --- a connected app -----------------------------------------------------------------------------


def test_a_slash_command_over_the_socket_is_acked_and_answered_at_its_response_url(
    socket_app: SocketProcess, socket_server: FakeSocketMode, connections_open: FakeServer, hooks: FakeServer
) -> None:
    opened = connections_open.received(path=CONNECTIONS_OPEN)
    assert opened  # once to check the token, once by the Socket Mode client to connect
    assert all(o.headers["authorization"] == f"Bearer {APP_TOKEN}" for o in opened)

    socket_server.push(slash_command("e1", f"{hooks.url}/commands/socket/1"))

    ack = socket_server.wait_for_ack("e1")
    assert ack["envelope_id"] == "e1"
    reply = hooks.wait_for(1, path="/commands/socket/1")[0].json()
    assert "1,234,567.891 credits" in texts(reply)
    assert reply["response_type"] == "ephemeral"
    health = wait_healthy(socket_app)
    assert health.json()["status"] == "ok"


def test_two_commands_get_their_own_acks_and_answers(
    socket_app: SocketProcess, socket_server: FakeSocketMode, hooks: FakeServer, breeze: FakeServer
) -> None:
    socket_server.push(slash_command("e1", f"{hooks.url}/commands/socket/a"))
    socket_server.push(slash_command("e2", f"{hooks.url}/commands/socket/b", "help"))

    assert socket_server.wait_for_ack("e1")["envelope_id"] == "e1"
    assert socket_server.wait_for_ack("e2")["envelope_id"] == "e2"
    assert "1,234,567.891 credits" in texts(hooks.wait_for(1, path="/commands/socket/a")[0].json())
    helped = json.dumps(hooks.wait_for(1, path="/commands/socket/b")[0].json())
    assert "1,234,567.891" not in helped
    assert "help" in helped.lower()


def test_the_home_tab_is_published_over_the_socket(
    socket_app: SocketProcess, socket_server: FakeSocketMode, connections_open: FakeServer
) -> None:
    socket_server.push(home_opened("e3", "U0ADA"))

    assert socket_server.wait_for_ack("e3")["envelope_id"] == "e3"
    request = connections_open.wait_for(1, path=PUBLISH)[0]
    body = request.json() if request.body.startswith(b"{") else request.form()
    view = json.loads(body["view"]) if isinstance(body["view"], str) else body["view"]
    assert body["user_id"] == "U0ADA"
    assert view["type"] == "home"
    assert "1,234,567.891 credits" in texts(view)
    assert request.headers["authorization"] == f"Bearer {BOT_TOKEN}"  # the bot token, not the app token


def test_sigterm_closes_the_socket_and_exits_cleanly(
    socket_app: SocketProcess, socket_server: FakeSocketMode
) -> None:
    wait_healthy(socket_app)

    status = socket_app.stop()

    # uvicorn re-raises the signal once it has shut down cleanly, as a process killed by it would.
    output = socket_app.output
    assert status in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert "Traceback" not in output
    socket_server.wait_disconnected()
    for secret in (APP_TOKEN, BOT_TOKEN, API_KEY, SIGNING_SECRET):
        assert secret not in output


def test_sigterm_still_delivers_the_replies_already_acked(
    socket_app: SocketProcess, socket_server: FakeSocketMode, hooks: FakeServer, breeze: FakeServer
) -> None:
    breeze.route("GET", "/v1/balance", Reply(200, {"balance": 42}, delay=2))
    socket_server.push(slash_command("e9", f"{hooks.url}/commands/socket/late"))
    socket_server.wait_for_ack("e9")
    breeze.wait_for(1)

    status = socket_app.stop()  # while Breeze is still answering

    assert status in (0, -signal.SIGTERM), socket_app.output
    reply = hooks.wait_for(1, path="/commands/socket/late", timeout=1)[0].json()
    assert reply["text"] == "Breeze balance: 42 credits"


def test_socket_mode_needs_no_signing_secret_and_refuses_http_requests_without_one(
    tmp_path: Path,
    breeze: FakeServer,
    connections_open: FakeServer,
    socket_server: FakeSocketMode,
    hooks: FakeServer,
) -> None:
    app = launch(
        tmp_path, socket_env(tmp_path, breeze, connections_open, free_port(), SLACK_SIGNING_SECRET="")
    )
    try:
        try:
            socket_server.wait_connected()
        except AssertionError:
            raise AssertionError(f"the app did not connect; it said:\n{app.output}") from None
        socket_server.push(slash_command("e1", f"{hooks.url}/commands/socket/unsigned"))
        socket_server.wait_for_ack("e1")
        reply = hooks.wait_for(1, path="/commands/socket/unsigned")[0].json()
        wait_healthy(app)
        # Nothing is signed over HTTP in Socket Mode: a request signed with an empty secret is refused.
        forged = SlackClient(f"http://127.0.0.1:{app.port}", "")
        try:
            refused = forged.command(f"{hooks.url}/commands/socket/forged")
        finally:
            forged.close()
    finally:
        app.stop()

    assert "1,234,567.891 credits" in texts(reply)
    assert refused.status_code == 401
    assert hooks.received(path="/commands/socket/forged") == []
    assert "SLACK_SIGNING_SECRET" not in app.output


# --- start-up problems ---------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "shape"), [("SLACK_APP_TOKEN", "xapp-"), ("SLACK_BOT_TOKEN", "xoxb-")])
def test_without_its_tokens_socket_mode_names_the_missing_one_and_exits_2(
    tmp_path: Path, breeze: FakeServer, slack_api: FakeServer, name: str, shape: str
) -> None:
    env = socket_env(tmp_path, breeze, slack_api, free_port(), **{name: ""})

    result = run_bot("socket", env=env, cwd=tmp_path)

    assert result.returncode == 2
    assert f"{name} is not set" in result.stderr
    assert shape in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert slack_api.received(path=CONNECTIONS_OPEN) == []


def test_a_bot_token_in_place_of_the_app_token_is_refused_before_connecting(
    tmp_path: Path, breeze: FakeServer, slack_api: FakeServer
) -> None:
    env = socket_env(tmp_path, breeze, slack_api, free_port(), SLACK_APP_TOKEN=BOT_TOKEN)

    result = run_bot("socket", env=env, cwd=tmp_path)

    assert result.returncode == 2
    assert "SLACK_APP_TOKEN" in result.stderr
    assert "xapp-" in result.stderr
    assert BOT_TOKEN not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    assert slack_api.received(path=CONNECTIONS_OPEN) == []


def test_an_app_token_slack_refuses_stops_start_up_with_a_clear_message(
    tmp_path: Path, breeze: FakeServer, slack_api: FakeServer
) -> None:
    slack_api.route("POST", CONNECTIONS_OPEN, Reply(200, {"ok": False, "error": "invalid_auth"}))
    app = launch(tmp_path, socket_env(tmp_path, breeze, slack_api, free_port()))
    try:
        status = app.process.wait(30)
    except subprocess.TimeoutExpired:
        status = None
    finally:
        if app.process.poll() is None:
            app.process.kill()
            app.process.wait(10)
    output = app.output

    assert status is not None, f"still running after 30 s; it said:\n{output}"
    assert status != 0
    assert "SLACK_APP_TOKEN was refused by Slack (invalid_auth)" in output
    assert "Traceback" not in output
    assert APP_TOKEN not in output
