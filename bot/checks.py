"""`python -m bot check` and `python -m bot balance`: try the configuration for real."""

from __future__ import annotations

import httpx
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot import db
from bot.breeze import BreezeClient
from bot.config import Settings
from bot.domain import Balance
from bot.errors import BotError, ConfigError, NoApiKey, StorageError
from bot.slack import text
from bot.slack.auth import slack_error
from bot.slack.blocks import error_code, wording

OK, FAIL, SKIP = "ok  ", "FAIL", "--  "


def describe(settings: Settings) -> list[str]:
    """The configuration, secrets shown only as set or not set."""

    def shown(value: object) -> str:
        return "(not set)" if value is None else "(set, hidden)"

    keys = len(settings.encryption_keys)
    encryption = f"({keys} set, hidden)" if keys else "(not set)"
    admins = ", ".join(sorted(settings.admin_user_ids)) or "(none: Slack admins and owners only)"
    return [
        f"  mode                    {settings.mode}",
        f"  SLACK_SIGNING_SECRET    {shown(settings.slack_signing_secret)}",
        f"  SLACK_BOT_TOKEN         {shown(settings.slack_bot_token)}",
        f"  SLACK_CLIENT_ID         {settings.slack_client_id or '(not set)'}",
        f"  SLACK_CLIENT_SECRET     {shown(settings.slack_client_secret)}",
        f"  BREEZE_API_KEY          {shown(settings.breeze_api_key)}",
        f"  BREEZE_ENCRYPTION_KEYS  {encryption}",
        f"  BREEZE_ADMIN_USER_IDS   {admins}",
        f"  BREEZE_BASE_URL         {settings.breeze_url}",
        f"  SLACK_API_URL           {settings.slack_api_base}",
        f"  DATABASE_URL            {_database(settings)}",
        f"  HOST:PORT               {settings.host}:{settings.port}",
        f"  LOG_LEVEL               {settings.log_level}",
    ]


def _database(settings: Settings) -> str:
    try:
        return db.parse_database_url(settings.database_url).display
    except ConfigError as exc:
        return f"(invalid: {exc})"


async def check(settings: Settings, *, online: bool = True) -> tuple[bool, list[str]]:
    """Validate settings, then (online) ask Slack and Breeze whether they accept the credentials."""
    lines = ["Configuration is valid:", *describe(settings)]
    if not online:
        return True, lines
    database_ok, database_line = await _check_database(settings)
    slack_ok, slack_line = await _check_slack(settings)
    breeze_ok, breeze_line = await _check_breeze(settings)
    lines += ["", "Live checks:", database_line, slack_line, breeze_line]
    return database_ok and slack_ok and breeze_ok, lines


async def _check_database(settings: Settings) -> tuple[bool, str]:
    try:
        database = db.parse_database_url(settings.database_url)
        engine = db.create_engine(database)
    except ConfigError as exc:
        return False, f"  {FAIL} Database: {exc}"
    try:
        current = await db.current_revision(engine)
    except StorageError as exc:
        return False, f"  {FAIL} Database {database.display}: {exc}"
    finally:
        await engine.dispose()
    head = db.head_revision()
    if current != head:
        state = "has no tables" if current is None else f"is at schema {current}, not {head}"
        return False, f"  {FAIL} Database {database.display} {state}: run `python -m bot migrate`"
    return True, f"  {OK} Database {database.display}: schema {head}, up to date"


async def _check_slack(settings: Settings) -> tuple[bool, str]:
    if settings.slack_client_id is not None:
        return True, f"  {SKIP} Slack: multi-workspace mode; each installation brings its own token"
    if settings.slack_bot_token is None:
        return True, f"  {SKIP} Slack: no SLACK_BOT_TOKEN to check"
    client = AsyncWebClient(base_url=settings.slack_api_base, timeout=10)
    try:
        who = await client.auth_test(token=settings.slack_bot_token.get_secret_value())
    except SlackApiError as exc:
        return False, f"  {FAIL} Slack refused SLACK_BOT_TOKEN ({slack_error(exc)})"
    except (SlackClientError, OSError, TimeoutError) as exc:
        return (
            False,
            f"  {FAIL} Slack could not be reached at {settings.slack_api_base} ({type(exc).__name__})",
        )
    return True, f"  {OK} Slack: workspace {who.get('team')} ({who.get('team_id')}) as @{who.get('user')}"


async def _check_breeze(settings: Settings) -> tuple[bool, str]:
    if settings.breeze_api_key is None or settings.slack_client_id is not None:
        return True, f"  {SKIP} Breeze: no deployment-wide key; admins set one with `/breeze-balance set-key`"
    try:
        balance = await fetch_balance(settings)
    except BotError as exc:
        words = wording(exc)
        return False, f"  {FAIL} Breeze: {words.title} (error {error_code(exc)})"
    key = f" with key id {balance.key_id}" if balance.key_id else ""
    return True, f"  {OK} Breeze: key accepted{key}; balance {text.credits(balance.credits)}"


async def fetch_balance(settings: Settings) -> Balance:
    """One balance call with the configured key; raises the usual `BotError`s."""
    if settings.breeze_api_key is None:
        raise NoApiKey("BREEZE_API_KEY is not set")
    async with httpx.AsyncClient(timeout=httpx.Timeout(settings.breeze_timeout_seconds, connect=3.0)) as http:
        client = BreezeClient(http, settings.breeze_url, settings.breeze_timeout_seconds)
        return await client.get_balance(settings.breeze_api_key)


def balance_lines(balance: Balance) -> list[str]:
    """The balance as plain text for a terminal."""
    lines = [f"Balance: {text.credits(balance.credits)}"]
    for topup in balance.topups_newest_first()[:5]:
        amount = text.credits(topup.amount, signed=True) if topup.amount is not None else "amount unknown"
        when = text.utc_fallback(topup.created_at) if topup.created_at else (topup.raw_created_at or "?")
        lines.append(f"  {topup.status.value:<9} {amount:>24}  {when}")
    if balance.key_id:
        lines.append(f"API key id: {balance.key_id}")
    return lines
