"""`check`, `balance` and `preview` for operators: try the configuration for real, one line each.

Each check is ✓ (works), ✗ (broken, with the fix), ! (a note: an optional extra does not work, and
the app does without it) or – (not applicable here). Only ✗ fails `check`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters import db, outbound
from bot.adapters.breeze import BreezeClient
from bot.adapters.metering import MeteringClient
from bot.adapters.redis_shared import RedisShared
from bot.adapters.redis_shared import describe as describe_redis
from bot.config import Problem, Settings
from bot.domain.balances import Balance, Topup
from bot.domain.usage import KeyBudget, Window, utc_day
from bot.errors import (
    BotError,
    ConfigError,
    KeyForbidden,
    KeyRejected,
    MeteringUnavailable,
    NoApiKey,
    StorageError,
)
from bot.hints import HINTS
from bot.slack.auth import slack_error
from bot.slack.blocks import text
from bot.slack.blocks.balance import error_code, wording
from bot.slack.blocks.metering import budget_text

OK, FAIL, NOTE, SKIP = "✓", "✗", "!", "–"
DATABASE_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Check:
    """One thing tried: its name, how it went, what was found, and how to fix it."""

    name: str
    status: str  # "ok", "fail", "note" or "skip"
    detail: str
    fix: str | None = None
    problems: tuple[Problem, ...] = ()  # the configuration's, each with its own fix

    @property
    def failed(self) -> bool:
        """True when this check found a problem."""
        return self.status == "fail"

    @property
    def mark(self) -> str:
        """✓, ✗, ! or –."""
        return {"ok": OK, "fail": FAIL, "note": NOTE}.get(self.status, SKIP)

    def line(self) -> str:
        """`✓ Database …`, `✗ Slack … — fix: …`."""
        line = f"  {self.mark} {self.detail}"
        return f"{line}\n      fix: {self.fix}" if self.fix else line


def describe(settings: Settings) -> list[str]:
    """The configuration, secrets shown only as set or not set."""

    def shown(value: object) -> str:
        return "(not set)" if value is None else "(set, hidden)"

    keys = len(settings.encryption_keys)
    encryption = f"({keys} set, hidden)" if keys else "(not set)"
    redis = describe_redis(settings.redis_url.get_secret_value()) if settings.redis_url else "(not set)"
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
        f"  REDIS_URL               {redis}",
        f"  HOST:PORT               {settings.host}:{settings.port}",
        f"  LOG_LEVEL               {settings.log_level}",
    ]


def _database(settings: Settings) -> str:
    try:
        return db.parse_database_url(settings.database_url).display
    except ConfigError as exc:
        return f"(invalid: {exc})"


def check_configuration(settings: Settings | None, problems: list[Problem]) -> Check:
    """✓ when nothing stops the app, else ✗ with each problem and its fix."""
    if not problems:
        mode = f" ({settings.mode})" if settings is not None else ""
        return Check("configuration", "ok", f"Configuration is valid{mode}")
    names = ", ".join(dict.fromkeys(name for p in problems for name in p.settings))
    fixes = "\n".join(f"{', '.join(p.settings)}: {p.fix or p.problem}" for p in problems)
    detail = f"Configuration: {len(problems)} problem(s) with {names}"
    return Check("configuration", "fail", detail, fixes, tuple(problems))


async def run_checks(
    settings: Settings | None, problems: list[Problem], *, online: bool = True
) -> list[Check]:
    """The configuration, then (when its values could be read) the database, Redis, Slack, Breeze and its
    metering."""
    checks = [check_configuration(settings, problems)]
    if settings is None or not online:
        return checks
    found = await asyncio.gather(
        check_database(settings),
        check_redis(settings),
        check_slack(settings),
        check_breeze(settings),
        check_metering(settings),
    )
    return [*checks, *found]


def as_json(checks: list[Check]) -> dict[str, Any]:
    """The checks for a script: `ok` and one object per check (the configuration's with its problems)."""
    entries = [{k: v for k, v in asdict(c).items() if k != "problems" or v} for c in checks]
    return {"ok": not any(c.failed for c in checks), "checks": entries}


async def check_database(settings: Settings) -> Check:
    """Can the database be reached, and is its schema current?"""
    try:
        database = db.parse_database_url(settings.database_url)
        engine = db.create_engine(database)
    except ConfigError as exc:
        return Check("database", "fail", f"Database: {exc}", HINTS["DATABASE_URL"])
    try:
        async with asyncio.timeout(DATABASE_SECONDS):
            current = await db.current_revision(engine)
    except (StorageError, TimeoutError) as exc:
        reason = str(exc) or f"no answer within {DATABASE_SECONDS:g} s"
        return Check(
            "database",
            "fail",
            f"Database {database.display}: {reason}",
            "check DATABASE_URL (host, port, user, password, database name) and that the server is up",
        )
    finally:
        await engine.dispose()
    head = db.head_revision()
    if current != head:
        state = "has no tables" if current is None else f"is at schema {current}, not {head}"
        return Check(
            "database",
            "fail",
            f"Database {database.display} {state}: run `python -m bot migrate`",
            "run `python -m bot migrate` (a PaaS runs it from the Procfile's release line)",
        )
    return Check("database", "ok", f"Database {database.display}: schema {head}, up to date")


async def check_redis(settings: Settings) -> Check:
    """Does Redis (REDIS_URL, optional) answer?"""
    if settings.redis_url is None:
        return Check("redis", "skip", "Redis: REDIS_URL not set; each process keeps its own caches")
    url = settings.redis_url.get_secret_value()
    shared = RedisShared(url, timeout_seconds=2.0)
    try:
        answered = await shared.ping()
    finally:
        await shared.close()
    if answered:
        return Check("redis", "ok", f"Redis {describe_redis(url)}: answers; caches are shared")
    return Check(
        "redis",
        "fail",
        f"Redis {describe_redis(url)}: no answer",
        "check REDIS_URL (host, port, password, rediss:// for TLS) and that the server is up",
    )


async def check_slack(settings: Settings) -> Check:
    """Does Slack accept SLACK_BOT_TOKEN (`auth.test`)?"""
    if settings.slack_client_id is not None:
        return Check("slack", "skip", "Slack: multi-workspace mode; each installation brings its own token")
    if settings.slack_bot_token is None:
        return Check("slack", "skip", "Slack: no SLACK_BOT_TOKEN to check")
    client = AsyncWebClient(base_url=settings.slack_api_base, timeout=10)
    try:
        who = await client.auth_test(token=settings.slack_bot_token.get_secret_value())
    except SlackApiError as exc:
        return Check(
            "slack",
            "fail",
            f"Slack refused SLACK_BOT_TOKEN ({slack_error(exc)})",
            f"SLACK_BOT_TOKEN: {HINTS['SLACK_BOT_TOKEN']}; reinstall the app if it was revoked",
        )
    except (SlackClientError, OSError, TimeoutError) as exc:
        return Check(
            "slack",
            "fail",
            f"Slack could not be reached at {settings.slack_api_base} ({type(exc).__name__})",
            "check the network, or SLACK_API_URL if you set it",
        )
    return Check(
        "slack", "ok", f"Slack: workspace {who.get('team')} ({who.get('team_id')}) as @{who.get('user')}"
    )


async def check_breeze(settings: Settings) -> Check:
    """Does Breeze accept BREEZE_API_KEY (`GET /v1/balance`)?"""
    if settings.breeze_api_key is None or settings.slack_client_id is not None:
        return Check(
            "breeze", "skip", "Breeze: no deployment-wide key; admins set one with `/breeze-balance set-key`"
        )
    try:
        balance = await fetch_balance(settings)
    except BotError as exc:
        words = wording(exc)
        key_problem = isinstance(exc, KeyRejected | KeyForbidden)
        fix = f"BREEZE_API_KEY: {HINTS['BREEZE_API_KEY']}" if key_problem else words.next_step
        return Check("breeze", "fail", f"Breeze: {words.title} (error {error_code(exc)})", fix)
    key = f" with key id {balance.key_id}" if balance.key_id else ""
    return Check("breeze", "ok", f"Breeze: key accepted{key}; balance {text.credits(balance.credits)}")


async def check_metering(settings: Settings) -> Check:
    """Does Breeze answer its metering (`/v1/usage`, `/v1/api-keys/current`) for BREEZE_API_KEY? An
    extra: when it does not, the line is a note, never a failure."""
    key = settings.breeze_api_key
    if key is None or settings.slack_client_id is not None:
        return Check("metering", "skip", "Metering: no deployment-wide key to try it with")
    day = utc_day(datetime.now(UTC))
    async with breeze_client(settings) as client:
        metering = MeteringClient(client)
        usage, budget = await asyncio.gather(
            metering.spend(key, Window(day, day)), metering.current_key(key), return_exceptions=True
        )
    samples = "the runway comes from the app's own samples"
    if isinstance(usage, MeteringUnavailable):
        why = f"Breeze does not offer its metering to this key ({usage.reason})"
        return Check("metering", "note", f"Metering: {why}; {samples}")
    if isinstance(usage, BotError):
        why = f"could not be read: {wording(usage).title} (error {error_code(usage)})"
        return Check("metering", "note", f"Metering: {why}; until it can, {samples}")
    if isinstance(usage, BaseException):
        raise usage
    return Check("metering", "ok", f"Metering: Breeze answers with the account's spend; {_budget(budget)}")


def _budget(budget: KeyBudget | BaseException) -> str:
    if isinstance(budget, KeyBudget):
        return budget_text(budget) or "this key has no budget of its own"
    if isinstance(budget, BotError):
        return f"not the key's own budget ({error_code(budget)})"
    raise budget


async def fetch_balance(settings: Settings) -> Balance:
    """One balance call with the configured key; raises the usual `BotError`s."""
    if settings.breeze_api_key is None:
        raise NoApiKey("BREEZE_API_KEY is not set")
    async with breeze_client(settings) as client:
        return await client.get_balance(settings.breeze_api_key)


@asynccontextmanager
async def breeze_client(settings: Settings) -> AsyncIterator[BreezeClient]:
    # The same HTTP stack as the app, so its errors read the same way.
    async with outbound.client(settings.http_stack, settings.breeze_timeout_seconds) as http:
        yield BreezeClient(http, settings.breeze_url, settings.breeze_timeout_seconds)


def balance_lines(balance: Balance, trend: list[str] | None = None) -> list[str]:
    """The balance as plain text for a terminal: what `/breeze-balance` says."""
    lines = [f"Balance: {text.credits(balance.credits)}", *(trend or [])]
    for topup in balance.topups_newest_first()[:5]:
        amount = text.credits(topup.amount, signed=True) if topup.amount is not None else "amount unknown"
        when = text.utc_fallback(topup.created_at) if topup.created_at else (topup.raw_created_at or "?")
        lines.append(f"  {topup.status.value:<9} {amount:>24}  {when}")
    if balance.key_id:
        lines.append(f"API key id: {balance.key_id}")
    return lines


def balance_json(balance: Balance, trend: list[str] | None = None) -> dict[str, Any]:
    """The balance for a script."""

    def topup(item: Topup) -> dict[str, Any]:
        return {
            "topup_id": item.topup_id,
            "amount": None if item.amount is None else str(item.amount),
            "status": item.status.value,
            "created_at": item.created_at.isoformat() if item.created_at else item.raw_created_at,
        }

    return {
        "balance": str(balance.credits),
        "topups": [topup(t) for t in balance.topups_newest_first()],
        "key_id": balance.key_id,
        "trend": trend or [],
    }


SAMPLE_BALANCE = Balance(
    credits=Decimal("12345.678"),
    topups=(
        Topup("tp_sample_2", Decimal("500"), "pending", None, "2026-11-20T16:05:00Z"),
        Topup("tp_sample_1", Decimal("1000"), "succeeded", None, "2026-11-01T09:30:00Z"),
    ),
    key_id="key_sample",
)
