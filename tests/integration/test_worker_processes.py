"""The worker as a PaaS runs it: the Procfile's release, web and worker lines as real processes.

Breeze and the Slack Web API are the loopback fakes; rules are set with signed slash commands sent
to the web process (or written beforehand with `open_deps`), and what the bot says first is read
from the fake Slack's `chat.postMessage` requests. Nothing here measures time: every wait is a
bounded poll for something to arrive.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shlex
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from bot.deps import open_deps
from bot.domain.balances import Workspace
from bot.services.worker import PARALLEL_CHECKS
from tests.conftest import (
    API_KEY,
    BOT_TOKEN,
    ENCRYPTION_KEY,
    SIGNING_SECRET,
    TEAM_ID,
    ask,
    make_settings,
    postgres_url,
    reset_postgres,
    texts,
)
from tests.fakes import FakeServer, Recorded, Reply, SlackClient
from tests.integration.test_cli import base_env, free_port, procfile_command

ADMIN = "UADMIN001"
CHANNEL = "C0ALERTS01"
POST_PATH = "/api/chat.postMessage"
BALANCE_PATH = "/v1/balance"
WAIT = 30.0  # seconds to wait for anything to arrive
STOP_WAIT = 15.0  # seconds a stopping process gets (it should need at most 10)

_hook_ids = itertools.count(1)


# --- the fakes' scripts ----------------------------------------------------------------------------


class BreezeScript:
    """A Breeze whose balance and top-ups the test changes while the processes run."""

    def __init__(self, balance: int, topups: list[dict[str, Any]] | None = None) -> None:
        self.balance = balance
        self.topups = list(topups or [])
        self.status = 200
        self.delay = 0.0
        self.gate: threading.Event | None = None

    def __call__(self, _request: Recorded) -> Reply:
        if self.status != 200:
            body: dict[str, Any] = {"code": "AUTH_INVALID_SESSION", "detail": "invalid key", "error": "x"}
            return Reply(self.status, body)
        body = {"balance": self.balance, "topups": list(self.topups)}
        return Reply(200, body, {"x-breeze-api-key-id": "key_abc123"}, delay=self.delay, gate=self.gate)


def topup(topup_id: str, amount: int, created_at: str) -> dict[str, Any]:
    return {"topup_id": topup_id, "amount": amount, "status": "succeeded", "created_at": created_at}


def admin_users(recorded: Recorded) -> Reply:
    """users.info: ADMIN is an admin (in New York); anyone else a member."""
    user = recorded.query.get("user") or recorded.form().get("user", "")
    return Reply(200, {"ok": True, "user": {"id": user, "is_admin": user == ADMIN, "tz": "America/New_York"}})


def public_channel(recorded: Recorded) -> Reply:
    channel = recorded.query.get("channel") or recorded.form().get("channel", "")
    return Reply(200, {"ok": True, "channel": {"id": channel, "is_private": False, "is_member": False}})


def script_slack(slack_api: FakeServer) -> None:
    """An admin, public channels, and posts Slack accepts."""
    for method in ("GET", "POST"):
        slack_api.route(method, "/api/users.info", admin_users)
        slack_api.route(method, "/api/conversations.info", public_channel)
    slack_api.route("POST", POST_PATH, Reply(200, {"ok": True, "ts": "1.2"}))


def script_breeze(breeze: FakeServer, script: BreezeScript) -> BreezeScript:
    breeze.route("GET", BALANCE_PATH, script)
    return script


# --- what arrived at Slack -------------------------------------------------------------------------


def body_of(recorded: Recorded) -> dict[str, Any]:
    try:
        data = recorded.json()
    except ValueError:
        data = recorded.form()
    assert isinstance(data, dict)
    return data


def kind_of(post: dict[str, Any]) -> str:
    """What a post says, told by its text: alert, recovery, topup, fault, or other."""
    text = str(post.get("text", "")).lower()
    if "need your attention" in text:  # a direct message to an admin (it may name top-up notices)
        return "fault"
    if "top-up" in text:
        return "topup"
    if "recovered" in text or "back to" in text:
        return "recovery"
    if "is low" in text:
        return "alert"
    return "other"


def posts(slack_api: FakeServer) -> list[dict[str, Any]]:
    """Every chat.postMessage body so far."""
    return [body_of(r) for r in slack_api.received("POST", POST_PATH)]


def kinds(slack_api: FakeServer, channel: str | None = None) -> Counter[str]:
    return Counter(kind_of(p) for p in posts(slack_api) if channel is None or p.get("channel") == channel)


# --- processes -------------------------------------------------------------------------------------


def procfile_argv(kind: str) -> list[str]:
    """The Procfile line's command, with this interpreter for `python`."""
    argv = shlex.split(procfile_command(kind))
    assert argv[0] == "python", f"the Procfile's {kind}: line does not start with python: {argv}"
    return [sys.executable, *argv[1:]]


def bot_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "bot", *args]


def app_env(breeze: FakeServer, slack_api: FakeServer, database_url: str, **extra: str) -> dict[str, str]:
    """Everything a process needs, pointing at the fakes; nothing inherited from a .env."""
    return base_env(
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        BREEZE_API_KEY=API_KEY,
        BREEZE_BASE_URL=breeze.url,
        SLACK_API_URL=slack_api.url + "/api/",
        DATABASE_URL=database_url,
        BREEZE_ENCRYPTION_KEYS=ENCRYPTION_KEY,
        ALERT_INTERVAL_SECONDS="1",
        BREEZE_CACHE_SECONDS="0",
        LOG_LEVEL="INFO",
        HOST="127.0.0.1",
        **extra,
    )


class Processes:
    """Started processes, their output in files, all killed at the end of the test."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started: dict[str, tuple[subprocess.Popen[bytes], IO[bytes], Path]] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
        path = self.folder / f"{name}.log"
        out = path.open("wb")
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        self.started[name] = (process, out, path)
        return process

    def process(self, name: str) -> subprocess.Popen[bytes]:
        return self.started[name][0]

    def log(self, name: str) -> str:
        return self.started[name][2].read_text(errors="replace")

    def logs(self) -> str:
        return "\n".join(f"----- {name} -----\n{self.log(name)}" for name in self.started)

    def alive(self) -> None:
        """Fail at once, with the output, if a process ended when it should be running."""
        for name, (process, _, _) in self.started.items():
            if process.poll() is not None:
                raise AssertionError(f"{name} exited with {process.returncode}:\n{self.logs()}")

    def stop(self, name: str) -> int:
        """SIGTERM, then the exit status (failing if it does not exit in time)."""
        process = self.process(name)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            return process.wait(STOP_WAIT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{name} did not exit after SIGTERM:\n{self.log(name)}") from None

    def kill_all(self) -> None:
        for process, out, _ in self.started.values():
            if process.poll() is None:
                process.kill()
                process.wait(10)
            out.close()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.kill_all()


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    """An empty working directory: no .env to read."""
    folder = tmp_path / "app"
    folder.mkdir()
    return folder


def wait_until(condition: Callable[[], Any], what: str, procs: Processes | None = None) -> Any:
    """Poll until `condition()` is truthy (up to WAIT seconds); fail saying what never happened."""
    deadline = time.monotonic() + WAIT
    while True:
        value = condition()
        if value:
            return value
        if procs is not None:
            procs.alive()
        if time.monotonic() > deadline:
            logs = f"\n{procs.logs()}" if procs is not None else ""
            raise AssertionError(f"gave up after {WAIT:.0f} s waiting for {what}{logs}")
        time.sleep(0.05)


def wait_checks(breeze: FakeServer, count: int, procs: Processes) -> None:
    """Let the workers ask Breeze `count` more times (about `count` intervals for one workspace)."""
    target = len(breeze.received("GET", BALANCE_PATH)) + count
    wait_until(lambda: len(breeze.received("GET", BALANCE_PATH)) >= target, f"{count} more checks", procs)


def release(env: dict[str, str], cwd: Path) -> None:
    """The Procfile's release line."""
    result = subprocess.run(procfile_argv("release"), env=env, cwd=cwd, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr.decode()


def run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def start_web(procs: Processes, argv: list[str], env: dict[str, str], cwd: Path, name: str = "web") -> str:
    """Start a web process on a free $PORT; its URL once /healthz answers."""
    port = free_port()
    procs.start(name, argv, {**env, "PORT": str(port)}, cwd)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(healthy, f"{name} to answer /healthz", procs)
    return url


def assert_clean_logs(procs: Processes) -> None:
    """No process crashed, and none logged a key, a token or the signing secret."""
    output = procs.logs()
    assert "Traceback" not in output
    for secret in (API_KEY, BOT_TOKEN, SIGNING_SECRET):
        assert secret not in output


def command(web_url: str, hooks: FakeServer, text: str, team_id: str = TEAM_ID) -> str:
    """A signed slash command from the admin; the text of the reply at its response_url."""
    slack = SlackClient(web_url, SIGNING_SECRET)
    try:
        hook = f"{hooks.url}/commands/worker/{next(_hook_ids)}"
        return texts(ask(slack, hooks, hook, text, user_id=ADMIN, team_id=team_id).json())
    finally:
        slack.close()


def set_alerts(
    breeze: FakeServer, slack_api: FakeServer, database_url: str, alerts: list[tuple[str, int, str]]
) -> None:
    """Write alert rules (team id, threshold, channel) as the slash command would, before workers start."""
    settings = make_settings(breeze, slack_api, database_url=database_url, auto_migrate=False)

    async def go() -> None:
        async with open_deps(settings) as deps:
            for team, threshold, channel in alerts:
                await deps.watch.set_alert(Workspace(None, team), Decimal(threshold), channel, ADMIN)

    asyncio.run(go())


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'app.db'}"


def prepared_postgres() -> str:
    url = postgres_url()
    reset_postgres(url)
    return url


# --- 1, 2: the done-when scenario ------------------------------------------------------------------


def done_when_scenario(
    procs: Processes,
    cwd: Path,
    breeze: FakeServer,
    slack_api: FakeServer,
    hooks: FakeServer,
    database_url: str,
    workers: int,
) -> None:
    """Procfile web + `workers` worker lines: alert once per drop, a top-up once, one recovery."""
    script_slack(slack_api)
    balance = script_breeze(breeze, BreezeScript(2000, [topup("tp_old", 1000, "2026-01-05T10:00:00Z")]))
    env = app_env(breeze, slack_api, database_url)
    release(env, cwd)
    web = start_web(procs, procfile_argv("web"), env, cwd)
    for n in range(workers):
        procs.start(f"worker{n + 1}", procfile_argv("worker"), env, cwd)

    reply = command(web, hooks, f"alert 1500 <#{CHANNEL}|alerts>")
    assert f"I'll post in <#{CHANNEL}> once when the balance falls below 1,500 credits" in reply, reply
    reply = command(web, hooks, f"notify topups on <#{CHANNEL}|alerts>")
    assert f"I'll post each new top-up in <#{CHANNEL}>" in reply, reply

    # 2000 is above 1500: checks, but nothing to say (and tp_old was there before notices were on).
    wait_checks(breeze, 4, procs)
    assert posts(slack_api) == []

    balance.balance = 1000
    wait_until(lambda: kinds(slack_api)["alert"] >= 1, "the low-balance alert", procs)
    wait_checks(breeze, 3, procs)
    assert kinds(slack_api) == {"alert": 1}, posts(slack_api)
    alert = posts(slack_api)[0]
    assert alert["channel"] == CHANNEL
    assert "1,000 credits" in alert["text"]
    assert "1,500 credits" in alert["text"]

    balance.topups.append(topup("tp_new", 4000, "2026-01-20T10:00:00Z"))
    balance.balance = 5000
    wait_until(
        lambda: kinds(slack_api)["topup"] >= 1 and kinds(slack_api)["recovery"] >= 1,
        "the top-up notice and the recovery post",
        procs,
    )
    wait_checks(breeze, 3, procs)
    assert kinds(slack_api) == {"alert": 1, "topup": 1, "recovery": 1}, posts(slack_api)
    notice = next(p for p in posts(slack_api) if kind_of(p) == "topup")
    assert "+4,000 credits" in notice["text"], notice["text"]
    assert "tp_old" not in json.dumps(posts(slack_api))

    balance.balance = 900
    wait_until(lambda: kinds(slack_api)["alert"] >= 2, "the second alert", procs)
    wait_checks(breeze, 3, procs)

    assert kinds(slack_api) == {"alert": 2, "topup": 1, "recovery": 1}, posts(slack_api)
    assert kinds(slack_api, CHANNEL) == kinds(slack_api)
    order = [kind_of(p) for p in posts(slack_api)]
    assert order[0] == "alert", order
    assert sorted(order[1:3]) == ["recovery", "topup"], order
    assert order[3] == "alert", order
    for p in posts(slack_api):
        assert p["blocks"], p  # Block Kit, with the text as the fallback

    for n in range(workers):
        assert procs.stop(f"worker{n + 1}") == 0, procs.log(f"worker{n + 1}")
    assert procs.stop("web") in (0, -signal.SIGTERM), procs.log("web")
    assert_clean_logs(procs)


def test_procfile_web_and_worker_on_sqlite_alert_once_per_drop(
    procs: Processes,
    cwd: Path,
    tmp_path: Path,
    breeze: FakeServer,
    slack_api: FakeServer,
    hooks: FakeServer,
) -> None:
    done_when_scenario(procs, cwd, breeze, slack_api, hooks, sqlite_url(tmp_path), workers=1)


def test_two_procfile_workers_on_postgresql_post_each_once(
    procs: Processes, cwd: Path, breeze: FakeServer, slack_api: FakeServer, hooks: FakeServer
) -> None:
    url = prepared_postgres()
    done_when_scenario(procs, cwd, breeze, slack_api, hooks, url, workers=2)


# --- 3: many workspaces, three workers, one database -----------------------------------------------


def test_three_workers_share_thirty_workspaces_and_alert_each_exactly_once(
    procs: Processes, cwd: Path, breeze: FakeServer, slack_api: FakeServer
) -> None:
    url = prepared_postgres()
    script_slack(slack_api)
    # Breeze holds its answers until two workers hold leases at once, so the work is shared.
    gate = threading.Event()
    balance = BreezeScript(1000)
    balance.gate = gate
    script_breeze(breeze, balance)
    env = app_env(breeze, slack_api, url, BREEZE_TIMEOUT_SECONDS="20")
    release(env, cwd)
    teams = [f"T{n:04d}" for n in range(1, 31)]
    channels = {team: f"C{team[1:]}ALRT" for team in teams}
    set_alerts(breeze, slack_api, url, [(team, 1500, channels[team]) for team in teams])

    names = [f"worker{n}" for n in range(1, 4)]
    for name in names:
        procs.start(name, bot_argv("worker"), env, cwd)
    try:
        # A worker has at most PARALLEL_CHECKS calls in flight: more means two workers hold leases.
        wait_until(
            lambda: len(breeze.received("GET", BALANCE_PATH)) > PARALLEL_CHECKS, "two workers checking", procs
        )
    finally:
        gate.set()
    wait_until(lambda: len(posts(slack_api)) >= len(teams), "30 alerts", procs)
    wait_checks(breeze, 3 * len(teams), procs)  # about three more intervals for every workspace
    statuses = [procs.stop(name) for name in names]

    assert statuses == [0, 0, 0], procs.logs()
    by_channel = Counter(p["channel"] for p in posts(slack_api))
    assert by_channel == Counter(channels.values()), by_channel
    assert {kind_of(p) for p in posts(slack_api)} == {"alert"}
    posted_by = {name: procs.log(name).count("posted alert to") for name in names}
    assert sum(posted_by.values()) == len(teams), posted_by
    assert sum(1 for count in posted_by.values() if count) > 1, posted_by
    assert "Traceback" not in procs.logs()


# --- 4: SQLite runs one worker ---------------------------------------------------------------------


def test_a_second_worker_on_sqlite_exits_saying_why(
    procs: Processes, cwd: Path, tmp_path: Path, breeze: FakeServer, slack_api: FakeServer
) -> None:
    script_slack(slack_api)
    script_breeze(breeze, BreezeScript(2000))
    env = app_env(breeze, slack_api, sqlite_url(tmp_path))
    release(env, cwd)
    first = procs.start("worker1", bot_argv("worker"), env, cwd)
    wait_until(lambda: "worker started" in procs.log("worker1"), "the first worker to start", procs)

    second = run(bot_argv("worker"), env, cwd)

    assert second.returncode != 0
    assert "Another worker" in second.stderr
    assert f"pid {first.pid}" in second.stderr
    assert "PostgreSQL" in second.stderr
    assert "Traceback" not in second.stderr
    assert first.poll() is None, procs.log("worker1")

    # Once the first one has stopped, the lock is free again.
    assert procs.stop("worker1") == 0, procs.log("worker1")
    again = run(bot_argv("worker", "--once"), env, cwd)
    assert again.returncode == 0, again.stderr


# --- 5: SIGTERM in the middle of a check -----------------------------------------------------------


def test_sigterm_mid_check_finishes_and_records_the_workspace_in_hand(
    procs: Processes, cwd: Path, tmp_path: Path, breeze: FakeServer, slack_api: FakeServer
) -> None:
    script_slack(slack_api)
    slow = BreezeScript(1000)
    slow.delay = 2.0
    script_breeze(breeze, slow)
    database = tmp_path / "app.db"
    env = app_env(breeze, slack_api, sqlite_url(tmp_path))
    release(env, cwd)
    set_alerts(breeze, slack_api, sqlite_url(tmp_path), [(TEAM_ID, 1500, CHANNEL)])
    worker = procs.start("worker", bot_argv("worker"), env, cwd)
    breeze.wait_for(1, path=BALANCE_PATH, timeout=WAIT)

    worker.send_signal(signal.SIGTERM)  # Breeze is still answering
    try:
        status = worker.wait(STOP_WAIT)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the worker did not exit after SIGTERM:\n{procs.log('worker')}") from None

    assert status == 0, procs.log("worker")
    sent = posts(slack_api)
    assert [(kind_of(p), p["channel"]) for p in sent] == [("alert", CHANNEL)], sent
    with sqlite3.connect(database) as connection:
        samples = connection.execute("SELECT credits FROM watch_samples").fetchall()
        states = connection.execute("SELECT alert_armed, lease_until FROM watch_rules").fetchall()
    assert [Decimal(credits) for (credits,) in samples] == [Decimal(1000)]
    assert states == [(0, None)]  # fired and recorded, and the workspace is not left leased
    output = procs.log("worker")
    assert "stopping: finishing the checks in hand" in output
    assert "worker stopped" in output
    assert "Traceback" not in output


def test_sigterm_mid_check_of_worker_once_finishes_the_workspace_in_hand(
    procs: Processes, cwd: Path, tmp_path: Path, breeze: FakeServer, slack_api: FakeServer
) -> None:
    script_slack(slack_api)
    slow = BreezeScript(1000)
    slow.delay = 2.0
    script_breeze(breeze, slow)
    env = app_env(breeze, slack_api, sqlite_url(tmp_path))
    release(env, cwd)
    set_alerts(breeze, slack_api, sqlite_url(tmp_path), [(TEAM_ID, 1500, CHANNEL)])
    worker = procs.start("worker", bot_argv("worker", "--once"), env, cwd)
    breeze.wait_for(1, path=BALANCE_PATH, timeout=WAIT)

    worker.send_signal(signal.SIGTERM)  # a scheduler's timeout, while Breeze is still answering
    try:
        status = worker.wait(STOP_WAIT)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"worker --once did not exit after SIGTERM:\n{procs.log('worker')}") from None

    assert status == 0, procs.log("worker")
    assert [(kind_of(p), p["channel"]) for p in posts(slack_api)] == [("alert", CHANNEL)]
    with sqlite3.connect(tmp_path / "app.db") as connection:
        leases = connection.execute("SELECT lease_until FROM watch_rules").fetchall()
    assert leases == [(None,)]


def test_sigterm_mid_check_of_serve_worker_posts_the_check_in_hand(
    procs: Processes, cwd: Path, tmp_path: Path, breeze: FakeServer, slack_api: FakeServer
) -> None:
    script_slack(slack_api)
    slow = BreezeScript(1000)
    slow.delay = 2.0
    script_breeze(breeze, slow)
    env = app_env(breeze, slack_api, sqlite_url(tmp_path))
    release(env, cwd)
    set_alerts(breeze, slack_api, sqlite_url(tmp_path), [(TEAM_ID, 1500, CHANNEL)])
    start_web(procs, bot_argv("serve", "--worker"), env, cwd)
    breeze.wait_for(1, path=BALANCE_PATH, timeout=WAIT)

    status = procs.stop("web")  # while Breeze is still answering the embedded worker

    # uvicorn re-raises the signal once it has shut down cleanly.
    assert status in (0, -signal.SIGTERM), procs.log("web")
    assert [(kind_of(p), p["channel"]) for p in posts(slack_api)] == [("alert", CHANNEL)]
    output = procs.log("web")
    assert "worker stopped" in output
    assert "Application shutdown complete" in output
    assert "Traceback" not in output


# --- 6: worker --once ------------------------------------------------------------------------------


def test_worker_once_checks_every_workspace_then_exits_0(
    cwd: Path, tmp_path: Path, breeze: FakeServer, slack_api: FakeServer
) -> None:
    script_slack(slack_api)
    script_breeze(breeze, BreezeScript(1000))
    env = app_env(breeze, slack_api, sqlite_url(tmp_path))
    release(env, cwd)
    set_alerts(
        breeze, slack_api, sqlite_url(tmp_path), [(TEAM_ID, 1500, CHANNEL), ("T0002", 500, "C0OTHER001")]
    )

    result = run(bot_argv("worker", "--once"), env, cwd)

    assert result.returncode == 0, result.stderr
    assert "Checked 2 workspace(s), 0 failed; 1 post(s) sent." in result.stdout
    assert len(breeze.received("GET", BALANCE_PATH)) == 2
    sent = posts(slack_api)
    assert [(kind_of(p), p["channel"]) for p in sent] == [("alert", CHANNEL)], sent

    again = run(bot_argv("worker", "--once"), env, cwd)
    assert again.returncode == 0, again.stderr
    assert "Checked 2 workspace(s), 0 failed; 0 post(s) sent." in again.stdout
    assert len(posts(slack_api)) == 1


def test_worker_once_exits_1_when_breeze_rejects_the_key(
    cwd: Path, tmp_path: Path, breeze: FakeServer, slack_api: FakeServer
) -> None:
    script_slack(slack_api)
    rejected = BreezeScript(1000)
    rejected.status = 401
    script_breeze(breeze, rejected)
    env = app_env(breeze, slack_api, sqlite_url(tmp_path))
    release(env, cwd)
    set_alerts(breeze, slack_api, sqlite_url(tmp_path), [(TEAM_ID, 1500, CHANNEL)])

    result = run(bot_argv("worker", "--once"), env, cwd)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "Checked 0 workspace(s), 1 failed" in result.stdout
    assert f"{TEAM_ID}: breeze:KEY_REJECTED" in result.stderr
    assert API_KEY not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    # The admin who set the rule is told by direct message; the channel hears nothing.
    sent = posts(slack_api)
    assert [(kind_of(p), p["channel"]) for p in sent] == [("fault", ADMIN)], sent


def test_worker_once_without_a_bot_token_exits_2(
    cwd: Path, tmp_path: Path, breeze: FakeServer, slack_api: FakeServer
) -> None:
    env = app_env(breeze, slack_api, sqlite_url(tmp_path))
    release(env, cwd)
    del env["SLACK_BOT_TOKEN"]

    result = run(bot_argv("worker", "--once"), env, cwd)

    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN is not set" in result.stderr
    assert "Traceback" not in result.stderr
    assert breeze.received() == []
    assert posts(slack_api) == []


def test_worker_once_on_an_unmigrated_database_exits_2(
    cwd: Path, tmp_path: Path, breeze: FakeServer, slack_api: FakeServer
) -> None:
    env = app_env(breeze, slack_api, sqlite_url(tmp_path))

    result = run(bot_argv("worker", "--once"), env, cwd)

    assert result.returncode == 2
    assert "has no tables yet" in result.stderr
    assert "python -m bot migrate" in result.stderr
    assert "Traceback" not in result.stderr
    assert breeze.received() == []


# --- 7: --help -------------------------------------------------------------------------------------


def test_worker_and_serve_help(cwd: Path) -> None:
    worker = run(bot_argv("worker", "--help"), base_env(), cwd)
    serve = run(bot_argv("serve", "--help"), base_env(), cwd)

    assert worker.returncode == 0, worker.stderr
    assert "--once" in worker.stdout
    assert serve.returncode == 0, serve.stderr
    assert "--worker" in serve.stdout
    assert "--migrate" in serve.stdout


# --- 8: make run -----------------------------------------------------------------------------------


def test_serve_migrate_worker_alone_posts_the_alert(
    procs: Processes, cwd: Path, tmp_path: Path, breeze: FakeServer, slack_api: FakeServer, hooks: FakeServer
) -> None:
    script_slack(slack_api)
    balance = script_breeze(breeze, BreezeScript(1000))
    env = app_env(breeze, slack_api, sqlite_url(tmp_path))  # not migrated: --migrate does it
    web = start_web(procs, bot_argv("serve", "--migrate", "--worker"), env, cwd)

    reply = command(web, hooks, f"alert 1500 <#{CHANNEL}|alerts>")
    assert f"<#{CHANNEL}>" in reply, reply

    wait_until(lambda: kinds(slack_api)["alert"] >= 1, "the alert from the web process's worker", procs)
    wait_checks(breeze, 3, procs)
    balance.balance = 2000
    wait_until(lambda: kinds(slack_api)["recovery"] >= 1, "the recovery post", procs)
    wait_checks(breeze, 3, procs)

    assert kinds(slack_api, CHANNEL) == {"alert": 1, "recovery": 1}, posts(slack_api)
    assert len(posts(slack_api)) == 2
    assert procs.stop("web") in (0, -signal.SIGTERM), procs.log("web")
    output = procs.log("web")
    assert "worker started" in output
    assert "Traceback" not in output
