"""Command line: `python -m bot [serve|check|balance|manifest]`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bot import __version__, checks
from bot.config import Settings, load_settings
from bot.errors import BotError, ConfigError
from bot.logs import configure_logging
from bot.slack.blocks import error_code, wording

GRACEFUL_CONNECTION_SECONDS = 5
MANIFEST_PLACEHOLDER = "https://breeze-balance.example.com"


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; configuration problems print one clear message and exit 2."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "manifest":
            return _manifest(args.url)
        settings = load_settings()
        configure_logging(settings.log_level_number, settings.secret_values())
        if args.command == "balance":
            return asyncio.run(_balance(settings))
        if args.command == "check":
            return asyncio.run(_check(settings, online=not args.offline))
        return _serve(settings)
    except ConfigError as exc:
        print(f"Breeze Balance cannot start:\n{_indent(str(exc))}", file=sys.stderr)
        print("Set these in the environment or in a .env file (see .env.example).", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Breeze Balance for Slack")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="serve Slack's requests over HTTP (the default)")
    check = sub.add_parser("check", help="validate the configuration, then try it with Slack and Breeze")
    check.add_argument("--offline", action="store_true", help="only validate; call neither Slack nor Breeze")
    sub.add_parser("balance", help="fetch the balance with BREEZE_API_KEY and print it")
    manifest = sub.add_parser("manifest", help="print manifest.yaml with your public URL filled in")
    manifest.add_argument("url", help="the public https:// base URL of this app")
    parser.set_defaults(command="serve")
    return parser


def _indent(text: str) -> str:
    return "\n".join(f"  - {line}" for line in text.splitlines())


def _serve(settings: Settings) -> int:
    import uvicorn

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
