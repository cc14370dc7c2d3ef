"""`breeze-balance usage`: where the credits went, as `/breeze-balance usage` says it (text or JSON)."""

from __future__ import annotations

import json
import sys

from bot.adapters.metering import MeteringClient
from bot.cli import checks
from bot.cli.operate import bot_workspace, migrated
from bot.cli.usage_output import usage_json, usage_lines
from bot.config import SINGLE_WORKSPACE, Settings
from bot.deps import open_deps
from bot.domain.balances import Workspace
from bot.domain.usage import UsageReport, Window, utc_day
from bot.errors import BotError, ConfigError, MeteringUnavailable, NoApiKey
from bot.services.watching import utcnow
from bot.slack.blocks.balance import error_code, wording

MAX_DAYS = 90


async def usage(settings: Settings, *, team: str | None, days: int, as_json: bool) -> int:
    """The last `days` UTC days' spend, biggest spenders and trend; 1 with a friendly line when it fails."""
    today = utc_day(utcnow())
    window = Window.ending(today, days)
    try:
        report = await _report(settings, team, window)
    except MeteringUnavailable as exc:
        said = f"Breeze does not offer usage reports for this key ({exc.reason})."
        _fail(as_json, "METERING_UNAVAILABLE", said)
        return 1
    except BotError as exc:
        if isinstance(exc, ConfigError):
            raise
        words = wording(exc)
        _fail(as_json, error_code(exc), f"{words.title} {words.next_step}")
        return 1
    if as_json:
        print(json.dumps({"ok": True, **usage_json(report)}, indent=2))
    else:
        print("\n".join(usage_lines(report, today=today)))
    return 0


async def _report(settings: Settings, team: str | None, window: Window) -> UsageReport:
    """The report with the key the slash command would use in `team` (one workspace: the bot token's)."""
    if team is None:
        if settings.mode != SINGLE_WORKSPACE:
            raise ConfigError("--team is needed in multi-workspace mode: each workspace has its own key.")
        if settings.slack_bot_token is None or not await migrated(settings):
            # No key can be stored without a bot token or tables: BREEZE_API_KEY is the only one.
            if settings.breeze_api_key is None:
                raise NoApiKey("BREEZE_API_KEY is not set")
            async with checks.breeze_client(settings) as breeze:
                return await MeteringClient(breeze).report(
                    settings.breeze_api_key, window, per_day=window.days > 1
                )
    async with open_deps(settings) as deps:
        workspace = await bot_workspace(deps) if team is None else Workspace(None, team)
        key = await deps.balances.key_of(workspace)
        return await deps.usage.report(workspace, key, window)


def _fail(as_json: bool, code: str, message: str) -> None:
    if as_json:
        print(json.dumps({"ok": False, "error": code, "message": message}, indent=2))
    else:
        print(f"{message} (error {code})", file=sys.stderr)
