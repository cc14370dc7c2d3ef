"""The operator commands as an operator types them: `python -m bot ...` (and the installed
`breeze-balance`) as subprocesses with a clean environment, against the loopback fakes.

Exit codes are part of the interface: 0 ok, 1 a check failed (or Breeze refused), 2 bad usage or
bad configuration.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jsonschema
import pytest
import yaml
from pydantic import SecretStr

from bot import __version__
from bot.adapters import db
from bot.adapters.crypto import key_file_for, load_cipher
from bot.adapters.key_store import KeyStore
from bot.deps import open_deps
from bot.domain.balances import Workspace
from tests.conftest import (
    API_KEY,
    BALANCE_BODY,
    BOT_TOKEN,
    ENCRYPTION_KEY,
    SIGNING_SECRET,
    TEAM_ID,
    ask,
    make_settings,
    texts,
)
from tests.fakes import AppServer, FakeServer, Recorded, Reply, SlackClient
from tests.integration.test_cli import base_env, run_bot

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "slack-app-manifest.schema.json").read_text()
)
SUBCOMMANDS = (
    "serve",
    "socket",
    "worker",
    "migrate",
    "rotate-keys",
    "new-encryption-key",
    "check",
    "balance",
    "manifest",
    "preview",
    "usage",
)
BUILDER = "https://app.slack.com/block-kit-builder#"
CREATE_APP = "https://api.slack.com/apps?"
CREATE_LINE = "# Create the app with this manifest: "
REFUSED = Reply(401, {"code": "AUTH_INVALID_SESSION", "detail": "invalid key", "error": "x"})
TEAM_KEY = "brz_live_TeamOneStoredKey7781"
OTHER_TEAM_KEY = "brz_live_TeamTwoStoredKey9902"
CLOSED_POSTGRES = "postgres://postgres@127.0.0.1:1/test"  # nothing listens on port 1
SECRETS = (SIGNING_SECRET, BOT_TOKEN, API_KEY, ENCRYPTION_KEY, TEAM_KEY, OTHER_TEAM_KEY)


# --- helpers ---------------------------------------------------------------------------------------


def fake_env(breeze: FakeServer, slack_api: FakeServer, **extra: str) -> dict[str, str]:
    """One workspace, every URL pointing at the fakes; nothing inherited from the shell or a .env."""
    return base_env(
        **{
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "BREEZE_API_KEY": API_KEY,
            "BREEZE_BASE_URL": breeze.url,
            "SLACK_API_URL": slack_api.url + "/api/",
            "BREEZE_TIMEOUT_SECONDS": "3",
            **extra,
        }
    )


def without(env: dict[str, str], *names: str) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in names}


def no_secrets(*outputs: str) -> None:
    joined = "\n".join(outputs)
    for secret in SECRETS:
        assert secret not in joined


@pytest.fixture(scope="module")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file at the current schema, made once by `python -m bot migrate` (tests copy it)."""
    folder = tmp_path_factory.mktemp("migrated")
    result = run_bot("migrate", env=base_env(), cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder / "breeze-balance.db"


@pytest.fixture
def cwd(tmp_path: Path, migrated_db: Path) -> Path:
    """A working directory holding a migrated default database (sqlite:///breeze-balance.db)."""
    shutil.copy(migrated_db, tmp_path / "breeze-balance.db")
    return tmp_path


def live_checks(stdout: str) -> list[tuple[str, str | None]]:
    """The lines under `Live checks:` as (check line, its `fix:` line or None)."""
    assert "Live checks:" in stdout, stdout
    lines = [line.strip() for line in stdout.split("Live checks:", 1)[1].splitlines() if line.strip()]
    found: list[tuple[str, str | None]] = []
    for line in lines:
        if line.startswith("fix:"):
            assert found, f"a fix: line before any check: {stdout}"
            assert found[-1][1] is None, f"two fix: lines for one check: {stdout}"
            found[-1] = (found[-1][0], line)
        else:
            found.append((line, None))
    return found


# Each way a check can fail, and what its ✗ line must say.
def break_breeze(breeze: FakeServer, _slack: FakeServer, _env: dict[str, str]) -> None:
    breeze.route("GET", "/v1/balance", REFUSED)


def break_slack(_breeze: FakeServer, slack_api: FakeServer, _env: dict[str, str]) -> None:
    slack_api.route("POST", "/api/auth.test", Reply(200, {"ok": False, "error": "invalid_auth"}))


def break_database(_breeze: FakeServer, _slack: FakeServer, env: dict[str, str]) -> None:
    env["DATABASE_URL"] = CLOSED_POSTGRES
    env["BREEZE_ENCRYPTION_KEYS"] = ENCRYPTION_KEY


BREAKERS: dict[str, Callable[[FakeServer, FakeServer, dict[str, str]], None]] = {
    "database": break_database,
    "slack": break_slack,
    "breeze": break_breeze,
}
# The start of each check's line, and what its ✗ line must name.
LINE_STARTS = {"database": "Database", "slack": "Slack", "breeze": "Breeze"}
FAILURE_WORDS = {
    "database": "127.0.0.1:1",
    "slack": "invalid_auth",
    "breeze": "AUTH_INVALID_SESSION",
}
FAILURE_SETS = [(), ("database",), ("slack",), ("breeze",), ("database", "slack", "breeze")]


# --- check -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("broken", FAILURE_SETS, ids=lambda b: "+".join(b) or "all-ok")
def test_check_marks_each_live_check(
    cwd: Path, breeze: FakeServer, slack_api: FakeServer, broken: tuple[str, ...]
) -> None:
    env = fake_env(breeze, slack_api)
    for name in broken:
        BREAKERS[name](breeze, slack_api, env)

    result = run_bot("check", env=env, cwd=cwd)

    assert result.returncode == (1 if broken else 0), result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    found = live_checks(result.stdout)
    by_name: dict[str, tuple[str, str | None]] = {}
    others = []
    for line, fix in found:
        names = [n for n, start in LINE_STARTS.items() if line[2:].startswith(start)]
        if names:
            assert names[0] not in by_name, f"two {names[0]} lines: {result.stdout}"
            by_name[names[0]] = (line, fix)
        else:
            others.append((line, fix))
    assert set(by_name) == set(LINE_STARTS), result.stdout
    for name, (line, fix) in by_name.items():
        if name in broken:
            assert line.startswith("✗ "), line
            assert FAILURE_WORDS[name] in line, line
            assert fix is not None, f"no fix under {line!r}"
            assert len(fix) > len("fix: "), fix
        else:
            assert line.startswith("✓ "), line
            assert fix is None, fix
    # Any further check (one that does not apply, or a note about an extra) neither fails nor needs a fix.
    for line, fix in others:
        assert line.startswith(("✓ ", "– ", "! ")), line
        assert fix is None, fix
    no_secrets(result.stdout, result.stderr)
    # Slack and Breeze really were asked, with the configured credentials.
    assert breeze.received("GET", "/v1/balance")[0].headers["xi-api-key"] == API_KEY
    assert slack_api.received("POST", "/api/auth.test")[0].headers["authorization"] == f"Bearer {BOT_TOKEN}"


@pytest.mark.parametrize("broken", FAILURE_SETS, ids=lambda b: "+".join(b) or "all-ok")
def test_check_json_has_ok_and_one_object_per_check(
    cwd: Path, breeze: FakeServer, slack_api: FakeServer, broken: tuple[str, ...]
) -> None:
    env = fake_env(breeze, slack_api)
    for name in broken:
        BREAKERS[name](breeze, slack_api, env)

    result = run_bot("check", "--json", env=env, cwd=cwd)

    assert result.returncode == (1 if broken else 0), result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is (not broken)
    checks = {c["name"]: c for c in report["checks"]}
    assert set(checks) >= {"configuration", "database", "slack", "breeze"}
    for extra in set(checks) - {"configuration", *LINE_STARTS}:
        assert checks[extra]["status"] in ("ok", "skip", "note"), checks[extra]
    for check in report["checks"]:
        assert set(check) >= {"name", "status", "detail", "fix"}
        assert isinstance(check["detail"], str)
        assert check["detail"]
    assert checks["configuration"]["status"] == "ok"
    for name in LINE_STARTS:
        if name in broken:
            assert checks[name]["status"] == "fail"
            assert FAILURE_WORDS[name] in checks[name]["detail"]
            assert isinstance(checks[name]["fix"], str)
            assert checks[name]["fix"]
        else:
            assert checks[name]["status"] == "ok", checks[name]
            assert checks[name]["fix"] is None
    no_secrets(result.stdout, result.stderr)


class Listener:
    """A TCP port that counts the connections made to it (and closes each at once)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def test_check_offline_calls_nothing(
    tmp_path: Path, breeze: FakeServer, slack_api: FakeServer, listener: Listener
) -> None:
    env = fake_env(
        breeze,
        slack_api,
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{listener.port}/test",
        BREEZE_ENCRYPTION_KEYS=ENCRYPTION_KEY,
    )

    offline = run_bot("check", "--offline", env=env, cwd=tmp_path)
    offline_json = run_bot("check", "--offline", "--json", env=env, cwd=tmp_path)

    assert offline.returncode == 0, offline.stderr
    # Only the configuration is marked: no live check ran.
    assert marked_lines(offline.stdout) == ["✓ Configuration is valid (single-workspace)"]
    assert offline_json.returncode == 0, offline_json.stderr
    report = json.loads(offline_json.stdout)
    assert report["ok"] is True
    assert [c["name"] for c in report["checks"]] == ["configuration"]
    assert breeze.received() == []
    assert slack_api.received() == []
    assert listener.connections == 0
    no_secrets(offline.stdout, offline.stderr, offline_json.stdout)

    # The same settings online do reach all three (so the silence above means something).
    online = run_bot("check", "--json", env=env, cwd=tmp_path)
    assert online.returncode == 1
    assert listener.connections >= 1
    assert len(breeze.received()) >= 1
    assert len(slack_api.received()) >= 1


def marked_lines(stdout: str) -> list[str]:
    """Every ✓/✗/– line, in order, without its indent."""
    return [line.strip() for line in stdout.splitlines() if line.strip()[:2] in ("✓ ", "✗ ", "– ")]


def test_check_starts_with_a_line_for_the_configuration(
    cwd: Path, breeze: FakeServer, slack_api: FakeServer
) -> None:
    online = run_bot("check", env=fake_env(breeze, slack_api), cwd=cwd)
    offline = run_bot("check", "--offline", env=fake_env(breeze, slack_api), cwd=cwd)

    assert online.returncode == 0, online.stdout + online.stderr
    marked = marked_lines(online.stdout)
    assert marked[0] == "✓ Configuration is valid (single-workspace)", online.stdout
    assert [line.split()[1].rstrip(":") for line in marked[1:]] == ["Database", "Redis", "Slack", "Breeze"]
    assert offline.returncode == 0, offline.stderr
    assert marked_lines(offline.stdout) == ["✓ Configuration is valid (single-workspace)"]


def test_check_marks_the_configuration_with_each_problem_and_its_fix(
    cwd: Path, breeze: FakeServer, slack_api: FakeServer
) -> None:
    # A PostgreSQL database without encryption keys, and no signing secret: two settings to fix.
    env = without(fake_env(breeze, slack_api, DATABASE_URL=CLOSED_POSTGRES), "SLACK_SIGNING_SECRET")

    text = run_bot("check", env=env, cwd=cwd)
    as_json = run_bot("check", "--json", env=env, cwd=cwd)

    assert text.returncode == 2, text.stdout + text.stderr
    assert "Traceback" not in text.stdout + text.stderr
    marked = marked_lines(text.stdout)
    assert marked[0].startswith("✗ Configuration"), text.stdout
    block = text.stdout.split("✗ Configuration", 1)[1].split("Live checks:", 1)[0]
    assert "SLACK_SIGNING_SECRET is not set" in block
    assert "BREEZE_ENCRYPTION_KEYS is not set" in block
    assert block.count("fix: ") == 2, block
    assert "Signing Secret" in block
    assert "new-encryption-key" in block
    # The settings can be read, so the live checks still run and say what they find.
    assert any(line.startswith("✗ Database") and "127.0.0.1:1" in line for line in marked), text.stdout
    assert any(line.startswith("✓ Breeze") for line in marked), text.stdout

    assert as_json.returncode == 2
    report = json.loads(as_json.stdout)
    assert report["ok"] is False
    configuration = report["checks"][0]
    assert configuration["name"] == "configuration"
    assert configuration["status"] == "fail"
    assert configuration["fix"]
    problems = configuration["problems"]
    assert {name for p in problems for name in p["settings"]} == {
        "SLACK_SIGNING_SECRET",
        "BREEZE_ENCRYPTION_KEYS",
    }
    assert all(p["problem"] and p["fix"] for p in problems), problems
    assert {c["name"] for c in report["checks"]} >= {"configuration", "database", "slack", "breeze"}
    no_secrets(text.stdout, text.stderr, as_json.stdout, as_json.stderr)


# Socket Mode: Slack signs nothing, so `check` does not ask for the signing secret either.
NO_HTTP = [("balance",), ("preview",), ("worker", "--once"), ("check",)]


@pytest.mark.parametrize("args", NO_HTTP, ids=lambda a: " ".join(a))
def test_entry_points_that_take_no_signed_requests_run_without_the_signing_secret(
    cwd: Path, breeze: FakeServer, slack_api: FakeServer, args: tuple[str, ...]
) -> None:
    env = without(fake_env(breeze, slack_api), "SLACK_SIGNING_SECRET")
    if args[0] == "check":
        env["SLACK_APP_TOKEN"] = "xapp-1-A0001-123-abc"

    result = run_bot(*args, env=env, cwd=cwd)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SLACK_SIGNING_SECRET is not set" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


# --- exit 2: bad usage, bad configuration ----------------------------------------------------------


@pytest.mark.parametrize("args", [("nonsense",), ("check", "--bogus"), ("balance", "--team")])
def test_bad_usage_exits_2(
    tmp_path: Path, breeze: FakeServer, slack_api: FakeServer, args: tuple[str]
) -> None:
    result = run_bot(*args, env=fake_env(breeze, slack_api), cwd=tmp_path)

    assert result.returncode == 2, result.stdout + result.stderr
    assert "usage: breeze-balance" in result.stderr
    assert "Traceback" not in result.stderr
    assert breeze.received() == []
    assert slack_api.received() == []


def test_bad_configuration_exits_2_naming_the_setting(
    tmp_path: Path, breeze: FakeServer, slack_api: FakeServer
) -> None:
    env = fake_env(breeze, slack_api, PORT="http")

    text = run_bot("check", env=env, cwd=tmp_path)
    as_json = run_bot("check", "--json", env=env, cwd=tmp_path)

    assert text.returncode == 2
    # A value that cannot be read: the configuration's ✗ names it, and nothing else is tried.
    assert marked_lines(text.stdout) == ["✗ Configuration: 1 problem(s) with PORT"], text.stdout
    assert "PORT is invalid" in text.stdout
    assert "Traceback" not in text.stderr
    assert as_json.returncode == 2
    report = json.loads(as_json.stdout)
    assert report["ok"] is False
    assert "PORT" in report["message"]
    assert [(c["name"], c["status"]) for c in report["checks"]] == [("configuration", "fail")]
    assert report["checks"][0]["problems"][0]["settings"] == ["PORT"]
    assert breeze.received() == []
    assert slack_api.received() == []
    no_secrets(text.stdout, text.stderr, as_json.stdout, as_json.stderr)


def test_check_offline_rejects_a_database_url_the_app_cannot_use(
    tmp_path: Path, breeze: FakeServer, slack_api: FakeServer
) -> None:
    env = fake_env(
        breeze, slack_api, DATABASE_URL="mysql://app@127.0.0.1/app", BREEZE_ENCRYPTION_KEYS=ENCRYPTION_KEY
    )
    serve = run_bot("serve", "--strict", env=env, cwd=tmp_path)
    assert serve.returncode == 2  # the app refuses it
    assert "DATABASE_URL is invalid" in serve.stderr

    result = run_bot("check", "--offline", env=env, cwd=tmp_path)

    assert result.returncode == 2, result.stdout
    assert marked_lines(result.stdout)[0].startswith("✗ Configuration"), result.stdout
    assert "DATABASE_URL is invalid" in result.stdout


# --- --help and --version --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def helps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    """`--help` of the program and of every subcommand, run side by side."""
    folder = tmp_path_factory.mktemp("help")
    started = {
        name: subprocess.Popen(
            [sys.executable, "-m", "bot", *([name] if name else []), "--help"],
            env=base_env(),
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("", *SUBCOMMANDS)
    }
    done: dict[str, subprocess.CompletedProcess[str]] = {}
    try:
        for name, process in started.items():
            out, err = process.communicate(timeout=120)
            done[name] = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    finally:
        for process in started.values():
            if process.poll() is None:
                process.kill()
                process.wait(10)
    return done


def summaries(top_help: str) -> dict[str, str]:
    """Each subcommand's one-line summary, as the program's own --help lists it (wrapping undone)."""
    found: dict[str, list[str]] = {}
    current: str | None = None
    for line in top_help.split("COMMAND\n", 1)[1].splitlines():
        if not line.strip():
            break
        match = re.match(r"^ {4}(\S+)(?: {2,}(.*))?$", line)
        if match and match.group(1) in SUBCOMMANDS:
            current = match.group(1)
            found[current] = [match.group(2) or ""]
        elif current is not None:
            found[current].append(line.strip())
    return {name: " ".join(" ".join(parts).split()) for name, parts in found.items()}


def test_program_help_lists_every_subcommand(helps: dict[str, subprocess.CompletedProcess[str]]) -> None:
    top = helps[""]
    assert top.returncode == 0, top.stderr
    assert top.stdout.startswith("usage: breeze-balance")
    listed = summaries(top.stdout)
    assert set(listed) == set(SUBCOMMANDS)
    assert all(listed.values()), listed
    assert "Exit codes" in top.stdout


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_subcommand_help_exits_0_with_its_usage(
    helps: dict[str, subprocess.CompletedProcess[str]], name: str
) -> None:
    result = helps[name]
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: breeze-balance {name} ")
    assert "-h, --help" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_subcommand_help_describes_the_subcommand(
    helps: dict[str, subprocess.CompletedProcess[str]], name: str
) -> None:
    summary = summaries(helps[""].stdout)[name]
    own = " ".join(helps[name].stdout.split())
    assert summary in own, f"{name} --help does not say what it does ({summary!r}):\n{helps[name].stdout}"


def test_version(tmp_path: Path) -> None:
    result = run_bot("--version", env=base_env(), cwd=tmp_path)

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert result.returncode == 0
    assert result.stdout.strip() == f"breeze-balance {__version__}"
    assert __version__ == project["version"]


def test_installed_script_runs_the_same_program(tmp_path: Path) -> None:
    script = ROOT / ".venv" / "bin" / "breeze-balance"
    if not script.exists():
        pytest.skip(f"{script} is not installed (run `pip install -e .`)")

    helped = subprocess.run(
        [str(script), "--help"], env=base_env(), cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    version = subprocess.run(
        [str(script), "--version"], env=base_env(), cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    manifest = subprocess.run(
        [str(script), "manifest", "--url", "https://bot.acme.dev", "--json"],
        env=base_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("usage: breeze-balance")
    assert set(summaries(helped.stdout)) == set(SUBCOMMANDS)
    assert version.stdout.strip() == f"breeze-balance {__version__}"
    assert manifest.returncode == 0, manifest.stderr
    assert json.loads(manifest.stdout)["manifest"]["features"]["slash_commands"][0]["url"] == (
        "https://bot.acme.dev/slack/events"
    )


# --- balance ---------------------------------------------------------------------------------------


def numbers_of(text: str) -> dict[str, list[str]]:
    """What a reader takes from a balance answer: the amounts, statuses, dates, in order; the key id."""
    return {
        "credits": re.findall(r"[+-]?\d[\d,]*(?:\.\d+)? credits", text),
        "statuses": re.findall(r"\b(succeeded|pending|failed)\b", text),
        "dates": re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", text),
        "key id": re.findall(r"API key id: (\S+)", text),
    }


MANY_TOPUPS: dict[str, Any] = {
    "balance": 98765.4321,
    "topups": [
        {
            "topup_id": f"tp_{n}",
            "amount": 100 * n + 0.5,
            "status": ("succeeded", "pending", "failed")[n % 3],
            "created_at": f"2026-11-{n + 1:02d}T0{n}:15:00Z",
        }
        for n in range(1, 8)
    ],
}


@pytest.mark.parametrize("body", [BALANCE_BODY, MANY_TOPUPS], ids=["three-topups", "seven-topups"])
def test_balance_says_what_the_slash_command_says(
    tmp_path: Path,
    breeze: FakeServer,
    slack_api: FakeServer,
    hooks: FakeServer,
    response_url: str,
    body: dict[str, Any],
) -> None:
    breeze.route("GET", "/v1/balance", Reply(200, body, {"x-breeze-api-key-id": "key_abc123"}))
    settings = make_settings(breeze, slack_api, database_url=f"sqlite:///{tmp_path / 'app.db'}")
    server = AppServer(settings).start()
    slack = SlackClient(server.url, SIGNING_SECRET)
    try:
        reply = ask(slack, hooks, response_url).json()
    finally:
        slack.close()
        server.stop()
    said_in_slack = numbers_of(texts({"blocks": reply["blocks"]}))

    result = run_bot("balance", env=fake_env(breeze, slack_api), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    printed = numbers_of(result.stdout)
    assert printed == said_in_slack
    assert printed["credits"][0] == said_in_slack["credits"][0]  # the balance comes first in both
    assert printed["key id"] == ["key_abc123"]
    assert len(printed["credits"]) == 1 + min(5, len(body["topups"]))
    no_secrets(result.stdout, result.stderr)


def test_balance_json(tmp_path: Path, breeze: FakeServer, slack_api: FakeServer) -> None:
    result = run_bot("balance", "--json", env=fake_env(breeze, slack_api), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["ok"] is True
    assert Decimal(data["balance"]) == Decimal("1234567.891")
    assert [t["topup_id"] for t in data["topups"]] == ["tp_2", "tp_1", "tp_3"]  # newest first
    assert [t["status"] for t in data["topups"]] == ["pending", "succeeded", "failed"]
    assert Decimal(data["topups"][0]["amount"]) == Decimal("250.5")
    assert data["key_id"] == "key_abc123"
    assert breeze.received()[0].headers["xi-api-key"] == API_KEY
    no_secrets(result.stdout, result.stderr)


def test_balance_with_a_refused_key_exits_1_without_showing_it(
    tmp_path: Path, breeze: FakeServer, slack_api: FakeServer
) -> None:
    breeze.route("GET", "/v1/balance", REFUSED)
    env = fake_env(breeze, slack_api)

    text = run_bot("balance", env=env, cwd=tmp_path)
    as_json = run_bot("balance", "--json", env=env, cwd=tmp_path)

    assert text.returncode == 1
    assert "Breeze did not accept the API key" in text.stderr
    assert "Traceback" not in text.stderr
    assert "Balance:" not in text.stdout
    assert as_json.returncode == 1
    data = json.loads(as_json.stdout)
    assert data["ok"] is False
    assert data["error"] == "AUTH_INVALID_SESSION"
    assert "Breeze did not accept the API key" in data["message"]
    assert "balance" not in data
    no_secrets(text.stdout, text.stderr, as_json.stdout, as_json.stderr)


def key_id_for(request: Recorded) -> Reply:
    """Breeze naming each key by its last four characters, so a test can tell which key was used."""
    key = request.headers.get("xi-api-key", "")
    return Reply(200, BALANCE_BODY, {"x-breeze-api-key-id": f"key_{key[-4:]}"})


def store_key(database_url: str, team: str, key: str, encryption_keys: list[str]) -> None:
    """Save a workspace's key as `/breeze-balance set-key` does, straight into the database."""

    async def go() -> None:
        database = db.parse_database_url(database_url)
        engine = db.create_engine(database)
        try:
            sqlite_file = database.sqlite_file
            assert sqlite_file is not None
            cipher = load_cipher(encryption_keys, key_file=key_file_for(sqlite_file))
            await KeyStore(engine, cipher).put(
                Workspace(None, team), SecretStr(key), set_by="UADMIN001", key_id=f"key_{key[-4:]}"
            )
        finally:
            await engine.dispose()

    asyncio.run(go())


def test_balance_team_uses_the_key_stored_for_that_workspace(
    cwd: Path, breeze: FakeServer, slack_api: FakeServer
) -> None:
    breeze.route("GET", "/v1/balance", key_id_for)
    # No BREEZE_ENCRYPTION_KEYS: the key file next to the SQLite file is shared with the command.
    store_key(f"sqlite:///{cwd / 'breeze-balance.db'}", TEAM_ID, TEAM_KEY, [])
    env = fake_env(breeze, slack_api)

    stored = run_bot("balance", "--team", TEAM_ID, env=env, cwd=cwd)
    fallback = run_bot("balance", "--team", "T0002", "--json", env=env, cwd=cwd)

    assert stored.returncode == 0, stored.stderr
    assert "Balance: 1,234,567.891 credits" in stored.stdout
    assert f"API key id: key_{TEAM_KEY[-4:]}" in stored.stdout
    assert fallback.returncode == 0, fallback.stderr
    assert json.loads(fallback.stdout)["key_id"] == f"key_{API_KEY[-4:]}"
    used = [r.headers["xi-api-key"] for r in breeze.received("GET", "/v1/balance")]
    assert used == [TEAM_KEY, API_KEY]  # T0001's stored key, then BREEZE_API_KEY for a team without one
    no_secrets(stored.stdout, stored.stderr, fallback.stdout, fallback.stderr)


def test_in_one_workspace_balance_and_preview_use_the_key_admins_set_in_slack(
    cwd: Path, breeze: FakeServer, slack_api: FakeServer
) -> None:
    breeze.route("GET", "/v1/balance", key_id_for)
    env = fake_env(breeze, slack_api)  # one workspace: SLACK_BOT_TOKEN and BREEZE_API_KEY, no --team

    before = run_bot("balance", "--json", env=env, cwd=cwd)
    # An admin of the bot token's workspace (auth.test says T0001) runs `/breeze-balance set-key`.
    store_key(f"sqlite:///{cwd / 'breeze-balance.db'}", TEAM_ID, TEAM_KEY, [])
    text = run_bot("balance", env=env, cwd=cwd)
    as_json = run_bot("balance", "--json", env=env, cwd=cwd)
    preview = run_bot("preview", "--json", env=env, cwd=cwd)

    assert before.returncode == 0, before.stderr
    assert json.loads(before.stdout)["key_id"] == f"key_{API_KEY[-4:]}"  # nothing stored yet
    assert text.returncode == 0, text.stderr
    assert f"API key id: key_{TEAM_KEY[-4:]}" in text.stdout
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["key_id"] == f"key_{TEAM_KEY[-4:]}"
    assert preview.returncode == 0, preview.stderr
    assert json.loads(preview.stdout)["sample"] is False
    assert f"key_{TEAM_KEY[-4:]}" in texts({"blocks": builder_blocks(json.loads(preview.stdout)["url"])})
    used = [r.headers["xi-api-key"] for r in breeze.received("GET", "/v1/balance")]
    assert used == [API_KEY, TEAM_KEY, TEAM_KEY, TEAM_KEY]
    no_secrets(text.stdout, text.stderr, as_json.stdout, as_json.stderr, preview.stdout, preview.stderr)


def test_balance_in_multi_workspace_mode_needs_a_team(
    cwd: Path, breeze: FakeServer, slack_api: FakeServer
) -> None:
    breeze.route("GET", "/v1/balance", key_id_for)
    store_key(f"sqlite:///{cwd / 'breeze-balance.db'}", "T0002", OTHER_TEAM_KEY, [ENCRYPTION_KEY])
    env = without(fake_env(breeze, slack_api), "SLACK_BOT_TOKEN", "BREEZE_API_KEY") | {
        "SLACK_CLIENT_ID": "1111.2222",
        "SLACK_CLIENT_SECRET": "client-secret-value-0001",
        "BREEZE_ENCRYPTION_KEYS": ENCRYPTION_KEY,
    }

    no_team = run_bot("balance", env=env, cwd=cwd)
    team = run_bot("balance", "--team", "T0002", "--json", env=env, cwd=cwd)

    assert no_team.returncode == 2
    assert "--team" in no_team.stderr
    assert team.returncode == 0, team.stderr
    assert json.loads(team.stdout)["key_id"] == f"key_{OTHER_TEAM_KEY[-4:]}"
    assert [r.headers["xi-api-key"] for r in breeze.received("GET", "/v1/balance")] == [OTHER_TEAM_KEY]
    no_secrets(no_team.stderr, team.stdout, team.stderr, "client-secret-value-0001")


# --- manifest --------------------------------------------------------------------------------------


def strings_in(node: Any) -> Iterator[tuple[str, str]]:
    """Every (key, string value) in a JSON-like tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str):
                yield key, value
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                for item in value:
                    yield key, item
            else:
                yield from strings_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings_in(item)


def decoded_create_link(link: str) -> Any:
    assert link.startswith(CREATE_APP), link
    query = parse_qs(urlsplit(link).query)
    assert query["new_app"] == ["1"]
    return json.loads(query["manifest_json"][0])


def printed_manifest(stdout: str) -> tuple[dict[str, Any], str]:
    """The YAML manifest and the link on its `# Create the app` line."""
    manifest = yaml.safe_load(stdout)
    links = [line.removeprefix(CREATE_LINE) for line in stdout.splitlines() if line.startswith(CREATE_LINE)]
    assert len(links) == 1, stdout
    return manifest, links[0]


def test_manifest_for_a_url(tmp_path: Path) -> None:
    option = run_bot("manifest", "--url", "https://bot.acme.dev", env=base_env(), cwd=tmp_path)
    positional = run_bot("manifest", "https://bot.acme.dev/", env=base_env(), cwd=tmp_path)

    assert option.returncode == 0, option.stderr
    manifest, link = printed_manifest(option.stdout)
    jsonschema.validate(manifest, SCHEMA)
    urls = [value for _key, value in strings_in(manifest) if "://" in value]
    assert urls, manifest
    assert all(url.startswith("https://bot.acme.dev/") for url in urls), urls
    assert manifest["features"]["slash_commands"][0]["url"] == "https://bot.acme.dev/slack/events"
    assert manifest["settings"]["interactivity"]["request_url"] == "https://bot.acme.dev/slack/events"
    assert manifest["settings"]["event_subscriptions"]["request_url"] == "https://bot.acme.dev/slack/events"
    assert manifest["oauth_config"]["redirect_urls"] == ["https://bot.acme.dev/slack/oauth_redirect"]
    assert manifest["settings"]["socket_mode_enabled"] is False
    assert decoded_create_link(link) == manifest
    assert positional.returncode == 0
    assert positional.stdout == option.stdout


def test_manifest_for_socket_mode_has_no_request_urls(tmp_path: Path) -> None:
    result = run_bot("manifest", "--socket", env=base_env(), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    manifest, link = printed_manifest(result.stdout)
    jsonschema.validate(manifest, SCHEMA)
    assert manifest["settings"]["socket_mode_enabled"] is True
    keys = {key for key, _value in strings_in(manifest)}
    assert not keys & {"url", "request_url", "redirect_urls"}, manifest
    assert not [value for _key, value in strings_in(manifest) if "://" in value]
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["settings"]["event_subscriptions"]["bot_events"]
    assert decoded_create_link(link) == manifest


def test_manifest_json(tmp_path: Path) -> None:
    as_json = run_bot("manifest", "--url", "https://bot.acme.dev", "--json", env=base_env(), cwd=tmp_path)
    as_yaml = run_bot("manifest", "--url", "https://bot.acme.dev", env=base_env(), cwd=tmp_path)

    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert set(data) == {"manifest", "create_app_url"}
    jsonschema.validate(data["manifest"], SCHEMA)
    assert decoded_create_link(data["create_app_url"]) == data["manifest"]
    assert data["manifest"] == printed_manifest(as_yaml.stdout)[0]


def test_manifest_uses_public_url_when_no_url_is_given(tmp_path: Path) -> None:
    env = base_env(PUBLIC_URL="https://balance.example.org/")

    from_env = run_bot("manifest", env=env, cwd=tmp_path)
    overridden = run_bot("manifest", "--url", "https://bot.acme.dev", "--json", env=env, cwd=tmp_path)

    assert from_env.returncode == 0, from_env.stderr
    manifest, _link = printed_manifest(from_env.stdout)
    urls = [value for _key, value in strings_in(manifest) if "://" in value]
    assert urls
    assert all(url.startswith("https://balance.example.org/slack/") for url in urls), urls
    assert "//slack" not in from_env.stdout  # the trailing slash was not doubled
    assert overridden.returncode == 0
    assert "balance.example.org" not in overridden.stdout


@pytest.mark.parametrize("args", [("http://x",), ("--url", "http://bot.acme.dev"), ("--json", "http://x")])
def test_manifest_refuses_a_url_slack_will_not_call(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = run_bot("manifest", *args, env=base_env(), cwd=tmp_path)

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    if "--json" in args:
        assert json.loads(result.stdout)["ok"] is False
    else:
        assert "https://" in result.stderr
        assert result.stdout == ""


# --- preview ---------------------------------------------------------------------------------------


def builder_blocks(link: str) -> list[dict[str, Any]]:
    assert link.startswith(BUILDER), link
    data = json.loads(unquote(urlsplit(link).fragment))
    assert set(data) == {"blocks"}
    blocks = data["blocks"]
    assert isinstance(blocks, list)
    assert blocks
    assert all(isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks)
    return blocks


def link_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("https://")]


def test_preview_links_to_the_reply_with_the_balance(
    tmp_path: Path, breeze: FakeServer, slack_api: FakeServer
) -> None:
    result = run_bot("preview", env=fake_env(breeze, slack_api), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "SAMPLE" not in result.stdout
    links = link_lines(result.stdout)
    assert len(links) == 1, result.stdout
    shown = texts({"blocks": builder_blocks(links[0])})
    assert "1,234,567.891 credits" in shown
    assert "+250.5 credits" in shown
    assert "key_abc123" in shown
    assert breeze.received()[0].headers["xi-api-key"] == API_KEY
    no_secrets(result.stdout, result.stderr)


def test_preview_shows_a_labelled_sample_without_a_key(
    tmp_path: Path, breeze: FakeServer, slack_api: FakeServer
) -> None:
    env = without(fake_env(breeze, slack_api), "BREEZE_API_KEY")

    result = run_bot("preview", env=env, cwd=tmp_path)
    as_json = run_bot("preview", "--json", env=env, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "SAMPLE" in result.stdout
    links = link_lines(result.stdout)
    assert len(links) == 1, result.stdout
    assert "credits" in texts({"blocks": builder_blocks(links[0])})
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["sample"] is True
    assert builder_blocks(data["url"]) == builder_blocks(links[0])
    assert breeze.received() == []


def test_preview_json(tmp_path: Path, breeze: FakeServer, slack_api: FakeServer) -> None:
    result = run_bot("preview", "--json", env=fake_env(breeze, slack_api), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["sample"] is False
    assert data["text"] == "Breeze balance: 1,234,567.891 credits"
    assert "1,234,567.891 credits" in texts({"blocks": builder_blocks(data["url"])})


# --- worker --once ---------------------------------------------------------------------------------


def test_worker_once_json_with_no_rules(cwd: Path, breeze: FakeServer, slack_api: FakeServer) -> None:
    result = run_bot("worker", "--once", "--json", env=fake_env(breeze, slack_api), cwd=cwd)

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["ok"] is True
    assert data["checked"] == 0
    assert breeze.received() == []


def test_worker_once_json_checks_a_watched_workspace(
    cwd: Path, breeze: FakeServer, slack_api: FakeServer
) -> None:
    slack_api.route("POST", "/api/chat.postMessage", Reply(200, {"ok": True, "ts": "1.2"}))
    for method in ("GET", "POST"):
        slack_api.route(
            method,
            "/api/conversations.info",
            Reply(200, {"ok": True, "channel": {"id": "C0ALERTS01", "is_private": False}}),
        )
    settings = make_settings(
        breeze, slack_api, database_url=f"sqlite:///{cwd / 'breeze-balance.db'}", breeze_encryption_keys=None
    )

    async def watch() -> None:
        async with open_deps(settings) as deps:  # an alert above the balance: it fires at once
            await deps.watch.set_alert(
                Workspace(None, TEAM_ID), Decimal(2_000_000), "C0ALERTS01", "UADMIN001"
            )

    asyncio.run(watch())

    result = run_bot("worker", "--once", "--json", env=fake_env(breeze, slack_api), cwd=cwd)

    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["ok"] is True
    assert data["checked"] == 1
    assert data["failed"] == 0
    assert data["posted"] == 1
    posted = slack_api.received("POST", "/api/chat.postMessage")
    assert len(posted) == 1
    assert "C0ALERTS01" in posted[0].body.decode()
    no_secrets(result.stdout, result.stderr)
