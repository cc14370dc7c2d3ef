"""Command line (`python -m bot …`, installed as `breeze-balance …`); each subcommand has `--help`.

serve | socket | worker | migrate | rotate-keys | new-encryption-key | check | balance | usage | manifest |
preview
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from dataclasses import asdict
from typing import Any

from bot import __version__
from bot.adapters import db
from bot.adapters.crypto import key_file_for, load_cipher, new_key
from bot.adapters.key_store import KeyStore
from bot.cli import operate, usage
from bot.config import Settings, SettingsError, StorageSettings, load_settings, load_storage_settings
from bot.deps import open_deps
from bot.errors import ConfigError, StorageError
from bot.logs import configure_logging
from bot.needs import CHECK
from bot.services.worker import run_until_signalled
from bot.slack import manifest

log = logging.getLogger(__name__)

GRACEFUL_CONNECTION_SECONDS = 5
# How every server runs: our logging only, no access log or server header, behind a proxy.
UVICORN_OPTIONS: dict[str, Any] = {
    "lifespan": "on",
    "log_config": None,
    "access_log": False,
    "server_header": False,
    "proxy_headers": True,
    "forwarded_allow_ips": "*",
    "timeout_graceful_shutdown": GRACEFUL_CONNECTION_SECONDS,
}
MANIFEST_PLACEHOLDER = manifest.PLACEHOLDER


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand: 0 ok, 1 a check failed, 2 bad usage or configuration (one clear message)."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except ConfigError as exc:
        if getattr(args, "json", False):
            print(json.dumps({"ok": False, "error": "configuration", "message": str(exc)}, indent=2))
            return 2
        doing = "start" if args.command in ("serve", "socket", "worker") else f"run `{args.command}`"
        print(f"Breeze Balance cannot {doing}:\n{_indent(str(exc))}", file=sys.stderr)
        print("Set these in the environment or in a .env file (see .env.example).", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    command = args.command
    if command == "new-encryption-key":
        print(new_key())
        return 0
    if command in ("migrate", "rotate-keys", "manifest"):
        storage = load_storage_settings()
        configure_logging(logging.INFO, tuple(storage.encryption_keys))
        if command == "manifest":
            return operate.print_manifest(
                storage, args.url_option or args.url, socket=args.socket, as_json=args.json
            )
        return _migrate(storage) if command == "migrate" else asyncio.run(_rotate(storage))
    if command == "check":
        return _check(online=not args.offline, as_json=args.json)
    try:
        settings = load_settings(command)  # what this entry point needs, and no more
    except SettingsError as exc:
        if command != "serve" or args.strict or exc.settings is None:
            raise
        return _serve_setup(exc.settings, exc)  # only missing pieces: serve the setup page meanwhile
    configure_logging(settings.log_level_number, settings.secret_values(), settings.log_format)
    if command == "balance":
        return asyncio.run(operate.balance(settings, team=args.team, as_json=args.json))
    if command == "preview":
        return asyncio.run(operate.preview(settings, team=args.team, as_json=args.json))
    if command == "usage":
        return asyncio.run(usage.usage(settings, team=args.team, days=args.days, as_json=args.json))
    if command == "worker":
        return asyncio.run(_worker(settings, once=args.once, as_json=args.json))
    if command == "socket":
        return _socket(settings, migrate=args.migrate, worker=args.worker)
    return _serve(settings, migrate=args.migrate, worker=args.worker)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="breeze-balance",
        description="Breeze Balance for Slack. Exit codes: 0 ok, 1 a check failed, 2 bad usage or settings.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = _subcommand(sub, "serve", "serve Slack's requests over HTTP on $PORT (the default)")
    serve.add_argument(
        "--migrate", action="store_true", help="migrate the database first (as AUTO_MIGRATE=true does)"
    )
    serve.add_argument(
        "--worker",
        action="store_true",
        help="also run the alert checks in this process (as RUN_WORKER=true does; `make run` uses it)",
    )
    serve.add_argument(
        "--strict",
        action="store_true",
        help="exit (status 2) when a needed setting is missing, instead of serving the setup page",
    )
    socket = _subcommand(
        sub, "socket", "answer Slack over Socket Mode (SLACK_APP_TOKEN; no public URL), /healthz on $PORT"
    )
    socket.add_argument("--migrate", action="store_true", help="migrate the database first")
    socket.add_argument("--worker", action="store_true", help="also run the alert checks in this process")
    worker = _subcommand(
        sub, "worker", "check alert rules every ALERT_INTERVAL_SECONDS and post alerts, notices and digests"
    )
    worker.add_argument(
        "--once", action="store_true", help="check every watched workspace once, then exit (for schedulers)"
    )
    _json_flag(worker, "with --once, print what the pass did as JSON")
    _subcommand(sub, "migrate", "create or upgrade the database schema (the Procfile's release phase)")
    _subcommand(
        sub, "rotate-keys", "re-encrypt every stored secret with the first BREEZE_ENCRYPTION_KEYS key"
    )
    _subcommand(sub, "new-encryption-key", "print a new random key for BREEZE_ENCRYPTION_KEYS")
    check = _subcommand(
        sub, "check", "validate the configuration, then try the database, Slack and Breeze: one ✓/✗ line each"
    )
    check.add_argument("--offline", action="store_true", help="only validate; call neither Slack nor Breeze")
    _json_flag(check, "print the checks as JSON")
    balance = _subcommand(sub, "balance", "print the answer /breeze-balance gives")
    balance.add_argument("--team", help="the workspace (team id, T0123…) whose stored key to use")
    _json_flag(balance, "print the balance as JSON")
    manifest = _subcommand(sub, "manifest", "print the Slack app manifest with its URLs filled in")
    manifest.add_argument("url", nargs="?", help="the public https:// base URL of this app (or PUBLIC_URL)")
    manifest.add_argument("--url", dest="url_option", metavar="URL", help="the same, as an option")
    manifest.add_argument("--socket", action="store_true", help="the Socket Mode manifest (no request URLs)")
    _json_flag(manifest, "print the manifest and the create-app link as JSON")
    preview = _subcommand(
        sub, "preview", "a Block Kit Builder link showing the reply to the current balance as Slack would"
    )
    preview.add_argument("--team", help="the workspace (team id) whose stored key to use")
    _json_flag(preview, "print the link as JSON")
    spend = _subcommand(sub, "usage", "where the credits went: what /breeze-balance usage says")
    spend.add_argument("--team", help="the workspace (team id) whose stored key to use")
    spend.add_argument(
        "--days", type=_days, default=7, help="the last N UTC days, today included (1 to 90; default 7)"
    )
    _json_flag(spend, "print the report as JSON")
    parser.set_defaults(command="serve", migrate=False, worker=False, strict=False, json=False)
    return parser


def _subcommand(sub: Any, name: str, summary: str) -> argparse.ArgumentParser:
    """A subcommand whose own --help says what it does, as the list in the top-level --help does."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=summary, description=summary)
    return parser


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days") from None
    if not 1 <= days <= usage.MAX_DAYS:
        raise argparse.ArgumentTypeError(f"{days} is outside 1 to {usage.MAX_DAYS} days")
    return days


def _json_flag(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", help=what)


def _indent(text: str) -> str:
    return "\n".join(f"  - {line}" for line in text.splitlines())


def _check(*, online: bool, as_json: bool) -> int:
    """`check`: the configuration's problems are its first ✗ line; the live checks run on what can be read."""
    settings: Settings | None
    try:
        settings, problems = load_settings(CHECK), []
    except SettingsError as exc:
        settings, problems = exc.settings, exc.problems
    if settings is not None:
        configure_logging(settings.log_level_number, settings.secret_values(), settings.log_format)
    return asyncio.run(operate.check(settings, problems, online=online, as_json=as_json))


def _serve_setup(setup: Settings, error: SettingsError) -> int:
    import uvicorn

    from bot.web.setup import SetupApp

    configure_logging(setup.log_level_number, setup.secret_values(), setup.log_format)
    app = SetupApp(setup, error)
    log.warning(
        "Breeze Balance is not set up yet (missing: %s): open http://localhost:%d/ for the steps; "
        "Slack's requests get 503 until then",
        ", ".join(app.missing),
        setup.port,
    )
    uvicorn.run(app, host=setup.host, port=setup.port, **UVICORN_OPTIONS)
    return 0


def _serve(settings: Settings, *, migrate: bool, worker: bool) -> int:
    import uvicorn

    # Checked once here, before any worker starts, so a problem is one clear message.
    asyncio.run(_prepare_database(settings, migrate=migrate or settings.auto_migrate))
    if migrate:
        # Workers read their settings afresh; an in-memory SQLite database is theirs alone.
        os.environ["AUTO_MIGRATE"] = "true"
    if worker:
        os.environ["RUN_WORKER"] = "true"
    uvicorn.run(
        "bot.web:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.web_concurrency,
        **UVICORN_OPTIONS,
    )
    return 0


def _socket(settings: Settings, *, migrate: bool, worker: bool) -> int:
    import uvicorn

    from bot.web.app import BreezeBalanceApp

    asyncio.run(_prepare_database(settings, migrate=migrate or settings.auto_migrate))
    changes = {"auto_migrate": settings.auto_migrate or migrate, "run_worker": settings.run_worker or worker}
    app = BreezeBalanceApp(settings.model_copy(update=changes), socket=True)
    # One process holds the Socket Mode connection; $PORT serves /healthz (and the status page).
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        **UVICORN_OPTIONS,
    )
    return 0


async def _prepare_database(settings: Settings, *, migrate: bool) -> None:
    database = db.parse_database_url(settings.database_url)
    engine = db.create_engine(database)
    try:
        if migrate:
            before, after = await db.migrate(engine)
            if before != after:
                print(f"Migrated {database.display} to schema {after}.", file=sys.stderr)
        else:
            await db.require_migrated(engine, database.display)
    except StorageError as exc:
        raise ConfigError(f"DATABASE_URL ({database.display}): {exc}") from None
    finally:
        await engine.dispose()


async def _worker(settings: Settings, *, once: bool, as_json: bool = False) -> int:
    database = db.parse_database_url(settings.database_url)
    lock = db.worker_lock(database)
    if lock is not None and not lock.acquire():
        print(
            f"Another worker (pid {lock.holder()}) is already checking alerts on the SQLite database "
            f"{database.display}. Only one worker can run on SQLite; to run several, use PostgreSQL.",
            file=sys.stderr,
        )
        return 1
    try:
        async with open_deps(settings) as deps:
            if not once:
                await run_until_signalled(deps.worker, deps.worker.run_forever())
                return 0
            report = await run_until_signalled(deps.worker, deps.worker.run_pass(everything=True))
    finally:
        if lock is not None:
            lock.release()
    if report is None:
        print(
            "Stopped before the checks in hand finished; they are checked on the next run.", file=sys.stderr
        )
        return 1
    if as_json:
        print(json.dumps({"ok": report.ok, **asdict(report)}, indent=2))
        return 0 if report.ok else 1
    print(f"Checked {report.checked} workspace(s), {report.failed} failed; {report.posted} post(s) sent.")
    for problem in report.problems:
        print(f"  - {problem}", file=sys.stderr)
    return 0 if report.ok else 1


def _migrate(storage: StorageSettings) -> int:
    database = db.parse_database_url(storage.database_url)
    try:
        before, after = db.run_migrations(database)
    except StorageError as exc:
        print(f"Could not migrate {database.display}: {exc}", file=sys.stderr)
        return 1
    if before == after:
        print(f"{database.display} is up to date (schema {after}).")
    else:
        print(f"Migrated {database.display} from {before or 'an empty database'} to schema {after}.")
    return 0


async def _rotate(storage: StorageSettings) -> int:
    database = db.parse_database_url(storage.database_url)
    engine = db.create_engine(database)
    try:
        await db.require_migrated(engine, database.display)
        sqlite_file = database.sqlite_file
        key_file = key_file_for(sqlite_file) if sqlite_file is not None else None
        if not storage.encryption_keys and (key_file is None or not key_file.exists()):
            raise ConfigError(
                "BREEZE_ENCRYPTION_KEYS is not set: put the new key first and the old ones after it, "
                "comma-separated, then run rotate-keys again."
            )
        cipher = load_cipher(storage.encryption_keys, key_file=key_file)
        report = await KeyStore(engine, cipher).rotate()
    except StorageError as exc:
        print(f"Could not re-encrypt: {exc}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
    print(f"Re-encrypted {report.rotated} stored secret(s) with the first encryption key.")
    if report.unreadable:
        print(
            "These could not be decrypted with any configured key and were left as they are:", file=sys.stderr
        )
        for item in report.unreadable:
            print(f"  - {item}", file=sys.stderr)
        return 1
    return 0
