"""`breeze-balance usage`: where the credits went, as `/breeze-balance usage` says it (text or JSON)."""

from __future__ import annotations

from bot.adapters.metering import MeteringClient
from bot.cli import checks
from bot.cli.operate import print_failure, print_json, stored_key_applies, workspace_for
from bot.cli.usage_output import usage_json, usage_lines
from bot.config import Settings
from bot.deps import open_deps
from bot.domain.usage import UsageReport, Window, utc_day
from bot.errors import BotError, ConfigError, MeteringUnavailable, NoApiKey
from bot.services.watching import utcnow

MAX_DAYS = 90


async def usage(settings: Settings, *, team: str | None, days: int, as_json: bool) -> int:
    """The last `days` UTC days' spend, biggest spenders and trend; 1 with a friendly line when it fails."""
    today = utc_day(utcnow())
    window = Window.ending(today, days)
    try:
        report = await _report(settings, team, window)
    except MeteringUnavailable as exc:
        said = f"Breeze does not offer usage reports for this key ({exc.reason})."
        print_failure(exc, as_json=as_json, message=said)
        return 1
    except BotError as exc:
        if isinstance(exc, ConfigError):
            raise
        print_failure(exc, as_json=as_json)
        return 1
    if as_json:
        print_json({"ok": True, **usage_json(report)})
    else:
        print("\n".join(usage_lines(report, today=today)))
    return 0


async def _report(settings: Settings, team: str | None, window: Window) -> UsageReport:
    """The report with the key the slash command would use in `team` (one workspace: the bot token's)."""
    if not await stored_key_applies(settings, team):
        if settings.breeze_api_key is None:
            raise NoApiKey("BREEZE_API_KEY is not set")
        async with checks.breeze_client(settings) as breeze:
            return await MeteringClient(breeze).report(
                settings.breeze_api_key, window, per_day=window.days > 1
            )
    async with open_deps(settings) as deps:
        workspace = await workspace_for(deps, team)
        key = await deps.balances.key_of(workspace)
        return await deps.usage.report(workspace, key, window)
