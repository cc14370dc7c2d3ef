"""Command line: `python -m bot [serve|check|balance|manifest]`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from bot import __version__
from bot.config import Settings, load_settings
from bot.errors import BotError, ConfigError
from bot.logs import configure_logging

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
            print(_describe(settings))
            return 0
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
    sub.add_parser("check", help="validate the configuration and print it, secrets hidden")
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


def _describe(settings: Settings) -> str:
    def shown(value: object) -> str:
        return "(not set)" if value is None else "(set, hidden)"

    lines = [
        "Configuration is valid:",
        f"  SLACK_SIGNING_SECRET  {shown(settings.slack_signing_secret)}",
        f"  SLACK_BOT_TOKEN       {shown(settings.slack_bot_token)}",
        f"  BREEZE_API_KEY        {shown(settings.breeze_api_key)}",
        f"  BREEZE_BASE_URL       {settings.breeze_url}",
        f"  SLACK_API_URL         {settings.slack_api_base}",
        f"  DATABASE_URL          {settings.database_url.split('@')[-1]}",
        f"  HOST:PORT             {settings.host}:{settings.port}",
        f"  LOG_LEVEL             {settings.log_level}",
    ]
    return "\n".join(lines)


async def _balance(settings: Settings) -> int:
    import httpx

    from bot.breeze import BreezeClient
    from bot.slack import text
    from bot.slack.blocks import error_code, wording

    if settings.breeze_api_key is None:
        raise ConfigError("BREEZE_API_KEY is not set; it is needed to fetch a balance.")
    async with httpx.AsyncClient() as http:
        client = BreezeClient(http, settings.breeze_url, settings.breeze_timeout_seconds)
        try:
            balance = await client.get_balance(settings.breeze_api_key)
        except BotError as exc:
            words = wording(exc)
            print(f"{words.title} {words.next_step} (error {error_code(exc)})", file=sys.stderr)
            return 1
    print(f"Balance: {text.credits(balance.credits)}")
    for topup in balance.topups_newest_first()[:5]:
        amount = text.credits(topup.amount, signed=True) if topup.amount is not None else "amount unknown"
        when = text.utc_fallback(topup.created_at) if topup.created_at else (topup.raw_created_at or "?")
        print(f"  {topup.status.value:<9} {amount:>24}  {when}")
    if balance.key_id:
        print(f"API key id: {balance.key_id}")
    return 0


def _manifest(url: str) -> int:
    base = url.rstrip("/")
    if not base.startswith("https://"):
        print("The URL must start with https:// (Slack only calls https URLs).", file=sys.stderr)
        return 2
    source = Path(__file__).resolve().parent.parent / "manifest.yaml"
    print(source.read_text(encoding="utf-8").replace(MANIFEST_PLACEHOLDER, base), end="")
    return 0
