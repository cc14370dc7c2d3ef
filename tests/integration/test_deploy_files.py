"""app.json, the Procfile, the Dockerfile and .dockerignore, kept true to the app they deploy.

No Docker engine is used: the Dockerfile is read, and its HEALTHCHECK and CMD are run here as the
container would run them.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import re
import shlex
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from bot.adapters import db
from bot.adapters.crypto import key_file_for, new_key
from bot.config import DEFAULT_DATABASE_URL, Settings
from bot.routes import HEALTH_PATH
from tests.fakes import FakeServer, Reply
from tests.integration.test_cli import base_env, free_port, procfile_command

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
CLOSED_POSTGRES = "postgres://postgres@127.0.0.1:1/app"  # nothing listens on port 1
SETTINGS = {name.upper() for name in Settings.model_fields}
# Without these a deployment on a PaaS with PostgreSQL cannot answer Slack: the signing secret, one of
# the two Slack modes (a bot token, or OAuth client credentials), and the key that encrypts secrets.
NEEDED_ON_A_PAAS = {
    "SLACK_SIGNING_SECRET",
    "SLACK_BOT_TOKEN",
    "SLACK_CLIENT_ID",
    "SLACK_CLIENT_SECRET",
    "BREEZE_ENCRYPTION_KEYS",
}


# --- reading the files -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_json() -> dict[str, Any]:
    return dict(json.loads((ROOT / "app.json").read_text()))


def procfile() -> dict[str, str]:
    kinds = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            kind, command = line.split(":", 1)
            kinds[kind.strip()] = command.strip()
    return kinds


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        word, _, rest = line.partition(" ")
        instructions.append((word.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends in a continuation line"
    return instructions


def instruction(name: str) -> list[str]:
    return [args for word, args in dockerfile() if word == name]


def exec_form(args: str) -> list[str]:
    """A CMD in JSON exec form."""
    argv = json.loads(args)
    assert isinstance(argv, list), args
    assert all(isinstance(a, str) for a in argv), args
    return argv


def healthcheck_argv() -> list[str]:
    (check,) = instruction("HEALTHCHECK")
    _options, marker, command = check.partition("CMD ")
    assert marker, f"HEALTHCHECK without CMD: {check}"
    return exec_form(command)


def with_this_python(argv: list[str]) -> list[str]:
    """The image's `python` is the one the app is installed into; here that is this interpreter."""
    assert argv[0] == "python", argv
    return [sys.executable, *argv[1:]]


def docker_env() -> dict[str, str]:
    """The ENV instructions' variables."""
    found: dict[str, str] = {}
    for args in instruction("ENV"):
        for item in shlex.split(args):
            name, _, value = item.partition("=")
            found[name] = value
    return found


def run_shell(command: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """A Procfile or app.json command as a platform runs it: in a shell, `python` on the PATH."""
    path = f"{VENV_BIN}:{base_env()['PATH']}"
    return subprocess.run(
        ["bash", "-c", command],
        env={**base_env(**env), "PATH": path},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- app.json --------------------------------------------------------------------------------------


def test_app_json_names_only_settings_the_app_reads(app_json: dict[str, Any]) -> None:
    env = app_json["env"]
    assert env
    assert set(env) <= SETTINGS, f"not settings of the app: {sorted(set(env) - SETTINGS)}"
    for name, spec in env.items():
        assert isinstance(spec, dict), name
        assert isinstance(spec.get("description"), str), name
        assert len(spec["description"].strip()) >= 10, name
        assert isinstance(spec.get("required"), bool), f"{name}: required must be true or false"


def test_app_json_defaults_are_the_apps_defaults(app_json: dict[str, Any]) -> None:
    for name, spec in app_json["env"].items():
        if "value" not in spec:
            continue
        field = name.lower()
        parsed = Settings(_env_file=None, slack_signing_secret="x1", **{field: spec["value"]})
        assert getattr(parsed, field) == Settings.model_fields[field].default, name


def test_app_json_asks_for_what_a_postgresql_deployment_needs(app_json: dict[str, Any]) -> None:
    env = app_json["env"]
    missing = NEEDED_ON_A_PAAS - set(env)
    assert not missing, f"app.json does not ask for {sorted(missing)}"
    assert env["BREEZE_ENCRYPTION_KEYS"]["required"] is True
    # The addon supplies DATABASE_URL, and the platform PORT: neither is asked of the operator.
    assert "DATABASE_URL" not in env
    assert "PORT" not in env


def test_app_json_requirements_are_what_the_app_refuses_to_run_without(
    app_json: dict[str, Any], tmp_path: Path
) -> None:
    """With PostgreSQL, the required settings (plus Slack's, once known) pass; without any one, not."""
    samples = {
        "BREEZE_ENCRYPTION_KEYS": new_key(),
        "SLACK_SIGNING_SECRET": "signing-secret-0001",
        "SLACK_BOT_TOKEN": "xoxb-1-2-deploytest",
    }
    required = [name for name, spec in app_json["env"].items() if spec["required"]]
    assert "BREEZE_ENCRYPTION_KEYS" in required
    assert set(required) <= set(samples), f"give this test a valid sample of {set(required) - set(samples)}"
    env = {"DATABASE_URL": CLOSED_POSTGRES, **samples}

    complete = run_shell("python -m bot check --offline", tmp_path, **env)
    assert complete.returncode == 0, complete.stdout + complete.stderr
    for name in required:
        lacking = run_shell(
            "python -m bot check --offline", tmp_path, **{k: v for k, v in env.items() if k != name}
        )
        assert lacking.returncode == 2, name
        assert f"{name} is not set" in lacking.stdout  # under `✗ Configuration`


def test_app_json_addon_gives_the_database_url_the_app_reads(app_json: dict[str, Any]) -> None:
    addons = [a if isinstance(a, dict) else {"plan": a} for a in app_json["addons"]]
    postgres = [a for a in addons if a["plan"].split(":", 1)[0] == "heroku-postgresql"]
    assert len(postgres) == 1, addons
    attachment = postgres[0].get("as", "DATABASE")
    assert f"{attachment}_URL" == "DATABASE_URL"
    assert "DATABASE_URL" in SETTINGS
    # Heroku's URLs start postgres://; the app takes them as they are.
    parsed = db.parse_database_url("postgres://user:secret@ec2-1-2-3-4.compute.amazonaws.com:5432/d8x")
    assert parsed.url.drivername == "postgresql+asyncpg"
    assert "secret" not in parsed.display


def test_app_json_formation_runs_the_procfile_processes(app_json: dict[str, Any]) -> None:
    formation = app_json["formation"]
    assert {"web", "worker"} <= set(formation)
    assert set(formation) <= set(procfile()), "a formation entry with no Procfile line"
    for kind in ("web", "worker"):
        assert formation[kind].get("quantity", 1) >= 1, kind


def test_app_json_migrates_as_the_procfile_release_line_does(
    app_json: dict[str, Any], tmp_path: Path
) -> None:
    scripts = app_json["scripts"]
    commands = {scripts[k] for k in ("postdeploy", "release") if k in scripts}
    assert commands == {"python -m bot migrate"}
    assert procfile_command("release") == "python -m bot migrate"

    migrated = run_shell(procfile_command("release"), tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'a.db'}")

    assert migrated.returncode == 0, migrated.stderr
    assert db.head_revision() in migrated.stdout


@pytest.mark.parametrize("kind", ["web", "worker", "release"])
def test_procfile_lines_are_real_subcommands(kind: str, tmp_path: Path) -> None:
    command = procfile()[kind]
    argv = shlex.split(command)
    assert argv[:3] == ["python", "-m", "bot"], command
    assert len(argv) >= 4, f"{kind}: names no subcommand: {command}"

    helped = run_shell(f"{command} --help", tmp_path)

    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith(f"usage: breeze-balance {argv[3]} "), helped.stdout


def test_the_buildpack_installs_with_the_same_pins(tmp_path: Path) -> None:
    lines = [
        line.strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert "-c constraints.txt" in lines or "--constraint constraints.txt" in lines, lines
    assert "." in lines, lines
    python_version = (ROOT / ".python-version").read_text().strip()
    assert python_version.split(".")[:2] == ["3", "11"]


# --- Dockerfile ------------------------------------------------------------------------------------


def test_dockerfile_builds_from_python_3_11_slim() -> None:
    froms = instruction("FROM")
    assert froms, "no FROM"
    image = froms[-1].split()[0]
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-[a-z]+)?", image), image
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert SpecifierSet(requires).contains("3.11")


def test_dockerfile_runs_as_a_user_that_can_write_the_default_database() -> None:
    users = instruction("USER")
    assert users, "no USER: the container would run as root"
    user = users[-1].split(":", 1)[0]
    assert user not in ("root", "0"), user
    runs = " ".join(instruction("RUN"))
    if not user.isdigit():
        assert re.search(rf"\b(useradd|adduser)\b[^&;]*\b{re.escape(user)}\b", runs), "USER is never created"
    # The default database (and its key file) is created in the working directory.
    assert db.parse_database_url(DEFAULT_DATABASE_URL).sqlite_file == Path("breeze-balance.db")
    workdir = instruction("WORKDIR")[-1]
    assert re.search(rf"\bchown\b[^&;]*\b{re.escape(user)}\b[^&;]*\s{re.escape(workdir)}(\s|$)", runs), (
        f"{workdir} is not made writable for {user}"
    )


def test_dockerfile_installs_with_the_repositorys_constraints() -> None:
    copied = [shlex.split(args) for args in instruction("COPY")]
    sources = {source for argv in copied for source in argv[:-1] if not source.startswith("--")}
    assert "constraints.txt" in sources, copied
    assert "pyproject.toml" in sources
    installs = [args for args in instruction("RUN") if "pip install" in args]
    assert len(installs) == 1, installs
    assert re.search(r"(--constraint|-c)[ =]constraints\.txt\b", installs[0]), installs[0]
    assert re.search(r"\s\.(\s|$)", installs[0]), f"the app itself is not installed: {installs[0]}"
    # pyproject.toml names README.md as the readme: the build needs it too.
    readme = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["readme"]
    assert readme in sources


def pins() -> dict[str, str]:
    found: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"not a pin: {line}"
            found[canonicalize_name(name)] = version.strip()
    return found


def runtime_closure() -> Iterator[tuple[str, Requirement]]:
    """Every package the installed app needs at run time (no extras of its own), with who asked."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo: list[tuple[str, Requirement, frozenset[str]]] = [
        ("breeze-balance-slack", Requirement(r), frozenset())
        for r in metadata.requires("breeze-balance-slack") or []
    ]
    while todo:
        parent, requirement, extras = todo.pop()
        environments = [{"extra": e} for e in extras] or [{"extra": ""}]
        if requirement.marker is not None and not any(requirement.marker.evaluate(e) for e in environments):
            continue
        name = canonicalize_name(requirement.name)
        yield parent, requirement
        walked = (name, frozenset(requirement.extras))
        if walked in seen:
            continue
        seen.add(walked)
        for child in metadata.requires(requirement.name) or []:
            todo.append((name, Requirement(child), frozenset(requirement.extras)))


def test_constraints_pin_every_runtime_dependency_at_the_tested_version() -> None:
    """The image gets constraints.txt's versions; the tests ran on these same versions."""
    pinned = pins()
    for parent, requirement in runtime_closure():
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{requirement} (needed by {parent}) is not pinned in constraints.txt"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"constraints.txt pins {name}=={pinned[name]}, outside {parent}'s {requirement}"
        )
        assert metadata.version(requirement.name) == pinned[name], (
            f"{name}: tests ran on {metadata.version(requirement.name)}, the image installs {pinned[name]}"
        )


def test_dockerfile_cmd_serves_the_app_as_the_procfile_does() -> None:
    (cmd,) = instruction("CMD")
    argv = exec_form(cmd)
    assert argv == ["python", "-m", "bot", "serve"]
    assert argv == shlex.split(procfile_command("web"))


def test_dockerfile_exposes_the_default_port() -> None:
    default = Settings.model_fields["port"].default
    exposed = [int(p.split("/")[0]) for args in instruction("EXPOSE") for p in args.split()]
    assert exposed == [default]
    assert docker_env().get("PORT", str(default)) == str(default)


def ignore_pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as Docker reads it: `*` and `?` stay within a folder, `**` spans folders."""
    out = ""
    rest = pattern.strip("/")
    while rest:
        if rest.startswith("**/"):
            out, rest = out + "(?:.*/)?", rest[3:]
        elif rest.startswith("**"):
            out, rest = out + ".*", rest[2:]
        elif rest[0] == "*":
            out, rest = out + "[^/]*", rest[1:]
        elif rest[0] == "?":
            out, rest = out + "[^/]", rest[1:]
        else:
            out, rest = out + re.escape(rest[0]), rest[1:]
    return re.compile(out)


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore leaves `path` out of the build context (a left-out folder takes its files)."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = ignore_pattern(pattern.removeprefix("!"))
        if any(regex.fullmatch(candidate) for candidate in candidates):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_secrets_and_the_virtualenv_out_but_not_the_app() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ".env" in patterns
    assert ".venv" in patterns
    for kept_out in (".env", ".venv/bin/python", "bot/__pycache__/cli.cpython-311.pyc"):
        assert dockerignored(kept_out, patterns), kept_out
    # A local database and the key file the app makes next to it are secrets too.
    local_db = db.parse_database_url(DEFAULT_DATABASE_URL).sqlite_file
    assert local_db is not None
    assert dockerignored(str(local_db), patterns)
    assert dockerignored(str(key_file_for(local_db)), patterns)
    # Everything the Dockerfile copies (and the package's data files) stays in.
    copied = {s for args in instruction("COPY") for s in shlex.split(args)[:-1] if not s.startswith("--")}
    needed = set(copied)
    for folder in (s for s in copied if (ROOT / s).is_dir()):
        needed |= {
            str(p.relative_to(ROOT))
            for p in (ROOT / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        }
    assert "bot/web/templates/setup.html" in needed
    left_out = sorted(p for p in needed if dockerignored(p, patterns))
    assert not left_out, f".dockerignore leaves out files the image needs: {left_out}"


# --- the HEALTHCHECK, run for real -----------------------------------------------------------------


def test_healthcheck_requests_healthz() -> None:
    argv = healthcheck_argv()
    assert HEALTH_PATH == "/healthz"
    assert any(HEALTH_PATH in arg for arg in argv), argv


@contextmanager
def serving(argv: list[str], cwd: Path, **env: str) -> Iterator[int]:
    """Run a server command on a free port until it answers /healthz with 200; kill it afterwards."""
    port = free_port()
    process = subprocess.Popen(
        argv,
        env=base_env(**{**env, "PORT": str(port), "HOST": "127.0.0.1"}),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "the app did not answer /healthz within 60 s"
            try:
                if httpx.get(f"http://127.0.0.1:{port}{HEALTH_PATH}", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield port
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=20)


@pytest.fixture
def container_cmd(tmp_path: Path) -> Iterator[int]:
    """The Dockerfile's CMD with its ENV, as the container runs it before any setting is given."""
    (cmd,) = instruction("CMD")
    with serving(with_this_python(exec_form(cmd)), tmp_path, **docker_env()) as port:
        yield port


def test_procfile_web_with_only_app_json_required_settings_serves_the_setup_page(
    app_json: dict[str, Any], tmp_path: Path
) -> None:
    """app.json marks Slack's settings optional: the web process must then come up (setup mode)."""
    required = {name: new_key() for name, spec in app_json["env"].items() if spec["required"]}
    argv = with_this_python(shlex.split(procfile_command("web")))

    with serving(argv, tmp_path, DATABASE_URL=CLOSED_POSTGRES, **required) as port:
        health = httpx.get(f"http://127.0.0.1:{port}{HEALTH_PATH}", timeout=5).json()
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
        events = httpx.post(f"http://127.0.0.1:{port}/slack/events", content="x=1", timeout=5)

    assert health["status"] == "setup"
    assert "SLACK_SIGNING_SECRET" in health["missing"]
    assert page.status_code == 200
    assert 'data-setting="SLACK_SIGNING_SECRET"' in page.text
    assert events.status_code == 503
    for value in required.values():
        assert value not in page.text


def run_healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        with_this_python(healthcheck_argv()),
        env=base_env(PORT=str(port)),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_healthcheck_passes_on_a_healthy_server(container_cmd: int) -> None:
    health = httpx.get(f"http://127.0.0.1:{container_cmd}{HEALTH_PATH}", timeout=5).json()
    assert health["status"] == "setup"  # no settings yet: the setup page, and healthy

    result = run_healthcheck(container_cmd)

    assert result.returncode == 0, result.stderr


def test_healthcheck_fails_on_a_closed_port() -> None:
    result = run_healthcheck(free_port())

    assert result.returncode != 0


def test_healthcheck_fails_when_healthz_says_unhealthy(breeze: FakeServer) -> None:
    """Any server on the port is not enough: /healthz must answer 2xx."""
    breeze.route("GET", HEALTH_PATH, Reply(503, {"status": "unavailable"}))
    port = int(breeze.url.rsplit(":", 1)[1])

    result = run_healthcheck(port)

    assert result.returncode != 0
    assert breeze.received("GET", HEALTH_PATH)
