"""Command line: `python -m bot serve|worker|migrate|rotate-keys|check|balance|manifest|new-encryption-key`.

Each subcommand has `--help`.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from bot import __version__, checks, db
from bot.config import HINTS, Settings, StorageSettings, load_settings, load_storage_settings
from bot.crypto import key_file_for, load_cipher, new_key
from bot.deps import open_deps
from bot.errors import BotError, ConfigError, StorageError
from bot.logs import configure_logging
from bot.slack.blocks import error_code, wording
from bot.store import KeyStore
from bot.worker import run_until_signalled

GRACEFUL_CONNECTION_SECONDS = 5
MANIFEST_PLACEHOLDER = "https://breeze-balance.example.com"


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; configuration problems print one clear message and exit 2."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "manifest":
            return _manifest(args.url)
        if args.command == "new-encryption-key":
            print(new_key())
            return 0
        if args.command in ("migrate", "rotate-keys"):
            storage = load_storage_settings()
            configure_logging(logging.INFO, tuple(storage.encryption_keys))
            return _migrate(storage) if args.command == "migrate" else asyncio.run(_rotate(storage))
        settings = load_settings()
        configure_logging(settings.log_level_number, settings.secret_values(), settings.log_format)
        if args.command == "balance":
            return asyncio.run(_balance(settings))
        if args.command == "check":
            return asyncio.run(_check(settings, online=not args.offline))
        if args.command == "worker":
            return asyncio.run(_worker(settings, once=args.once))
        return _serve(settings, migrate=args.migrate, worker=args.worker)
    except ConfigError as exc:
        doing = "start" if args.command == "serve" else f"run `{args.command}`"
        print(f"Breeze Balance cannot {doing}:\n{_indent(str(exc))}", file=sys.stderr)
        print("Set these in the environment or in a .env file (see .env.example).", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Breeze Balance for Slack")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="serve Slack's requests over HTTP (the default)")
    serve.add_argument(
        "--migrate", action="store_true", help="migrate the database first (as AUTO_MIGRATE=true does)"
    )
    serve.add_argument(
        "--worker",
        action="store_true",
        help="also run the alert checks in this process (as RUN_WORKER=true does; `make run` uses it)",
    )
    worker = sub.add_parser(
        "worker", help="check alert rules every ALERT_INTERVAL_SECONDS and post alerts, notices and digests"
    )
    worker.add_argument(
        "--once", action="store_true", help="check every watched workspace once, then exit (for schedulers)"
    )
    sub.add_parser("migrate", help="create or upgrade the database schema (the Procfile's release phase)")
    sub.add_parser(
        "rotate-keys", help="re-encrypt every stored secret with the first BREEZE_ENCRYPTION_KEYS key"
    )
    sub.add_parser("new-encryption-key", help="print a new random key for BREEZE_ENCRYPTION_KEYS")
    check = sub.add_parser("check", help="validate the configuration, then try it with Slack and Breeze")
    check.add_argument("--offline", action="store_true", help="only validate; call neither Slack nor Breeze")
    sub.add_parser("balance", help="fetch the balance with BREEZE_API_KEY and print it")
    manifest = sub.add_parser("manifest", help="print manifest.yaml with your public URL filled in")
    manifest.add_argument("url", help="the public https:// base URL of this app")
    parser.set_defaults(command="serve", migrate=False, worker=False)
    return parser


def _indent(text: str) -> str:
    return "\n".join(f"  - {line}" for line in text.splitlines())


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
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=True,
        forwarded_allow_ips="*",
        timeout_graceful_shutdown=GRACEFUL_CONNECTION_SECONDS,
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


async def _worker(settings: Settings, *, once: bool) -> int:
    if settings.slack_client_id is None and settings.slack_bot_token is None:
        raise ConfigError(
            f"SLACK_BOT_TOKEN is not set; the worker posts alerts, notices and digests with it; "
            f"{HINTS['SLACK_BOT_TOKEN']}."
        )
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
                await run_until_signalled(deps.worker)
                return 0
            report = await deps.worker.run_pass(everything=True)
    finally:
        if lock is not None:
            lock.release()
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


async def _balance(settings: Settings) -> int:
    try:
        balance = await checks.fetch_balance(settings)
    except BotError as exc:
        words = wording(exc)
        print(f"{words.title} {words.next_step} (error {error_code(exc)})", file=sys.stderr)
        return 1
    print("\n".join(checks.balance_lines(balance)))
    return 0


async def _check(settings: Settings, online: bool) -> int:
    ok, lines = await checks.check(settings, online=online)
    print("\n".join(lines))
    if not ok:
        print("\nFix what FAIL says, then run the check again.", file=sys.stderr)
    return 0 if ok else 1


def _manifest(url: str) -> int:
    base = url.rstrip("/")
    if not base.startswith("https://"):
        print("The URL must start with https:// (Slack only calls https URLs).", file=sys.stderr)
        return 2
    source = Path(__file__).resolve().parent.parent / "manifest.yaml"
    print(source.read_text(encoding="utf-8").replace(MANIFEST_PLACEHOLDER, base), end="")
    return 0
