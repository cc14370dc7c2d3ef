"""What the operator commands print: `check`, `balance`, `manifest`, `preview` (text or `--json`).

Exit codes scripts can trust: 0 ok, 1 a check failed (or Breeze refused), 2 bad usage or
configuration (raised as `ConfigError` and printed by `bot.cli.commands`).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from bot.adapters import db
from bot.cli import checks
from bot.config import SINGLE_WORKSPACE, Problem, Settings, StorageSettings
from bot.deps import Deps, open_deps
from bot.domain.balances import Balance, Requester, Workspace
from bot.errors import BotError, ConfigError, StorageError
from bot.services.balances import BalanceAnswer
from bot.slack import manifest
from bot.slack.blocks import balance as blocks
from bot.slack.blocks.balance import error_code, wording
from bot.slack.blocks.metering import lines_under_balance

CLI_USER = "cli"


def print_json(data: dict[str, Any]) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def print_failure(exc: BotError, *, as_json: bool, message: str | None = None) -> None:
    """A command that could not answer: the error in a person's words (or `message`), with its code."""
    code = error_code(exc)
    if message is None:
        words = wording(exc)
        message = f"{words.title} {words.next_step}"
    if as_json:
        print_json({"ok": False, "error": code, "message": message})
    else:
        print(f"{message} (error {code})", file=sys.stderr)


async def stored_key_applies(settings: Settings, team: str | None) -> bool:
    """Whether the key that answers for `team` (in one workspace, the bot token's) may be one an admin
    stored with `/breeze-balance set-key`; False when only BREEZE_API_KEY can answer. Raises
    `ConfigError` when the workspace cannot be known."""
    if team is not None:
        return True
    if settings.mode != SINGLE_WORKSPACE:
        raise ConfigError("--team is needed in multi-workspace mode: each workspace has its own key.")
    # No key can be stored without a bot token (set-key needs it) or before the database has tables.
    return settings.slack_bot_token is not None and await migrated(settings)


async def workspace_for(deps: Deps, team: str | None) -> Workspace:
    """`team`, or in one workspace the one SLACK_BOT_TOKEN belongs to."""
    return Workspace(None, team) if team is not None else await bot_workspace(deps)


async def check(settings: Settings | None, problems: list[Problem], *, online: bool, as_json: bool) -> int:
    """Every check, one ✓/✗ line each with the fix for each ✗; the configuration's first, each
    problem with its own fix. Exit 2 when the configuration has problems, else 1 when a check fails."""
    found = await checks.run_checks(settings, problems, online=online)
    failed = any(c.failed for c in found)
    if as_json:
        report = checks.as_json(found)
        if problems:
            report.update(error="configuration", message="\n".join(str(p) for p in problems))
        print_json(report)
    else:
        print("\n".join(_lines(settings, found)))
        if failed:
            print("\nFix what ✗ says, then run the check again.", file=sys.stderr)
    return 2 if problems else 1 if failed else 0


def _lines(settings: Settings | None, found: list[checks.Check]) -> list[str]:
    configuration, live = found[0], found[1:]
    lines = [f"{configuration.mark} {configuration.detail}"]
    for problem in configuration.problems:
        lines.append(f"  - {problem.problem}")
        if problem.fix:
            lines.append(f"    fix: {problem.fix}")
    if settings is not None:
        lines += checks.describe(settings)
    if live:
        lines += ["", "Live checks:", *(c.line() for c in live)]
    return lines


async def _answer(settings: Settings, team: str | None, *, plain: bool) -> tuple[BalanceAnswer, list[str]]:
    """The balance the slash command would give in `team` (in one workspace, the bot token's), and the
    lines under it (as mrkdwn, or `plain`): the key an admin stored with `/breeze-balance set-key`,
    else BREEZE_API_KEY."""
    if not await stored_key_applies(settings, team):
        return BalanceAnswer(await checks.fetch_balance(settings)), []
    async with open_deps(settings) as deps:
        workspace = await workspace_for(deps, team)
        requester = Requester(workspace.team_id, workspace.enterprise_id, user_id=CLI_USER)
        answer = await deps.balances.balance_for(requester)
        metering = await deps.metering.current(workspace)
        trend = await deps.watch.trend(workspace)
        lines = lines_under_balance(
            answer.balance.credits,
            deps.metering.now(),
            metering,
            trend.runway if trend is not None else None,
            trend.sparkline if trend is not None else "",
            plain=plain,
        )
    return answer, lines


async def migrated(settings: Settings) -> bool:
    """Whether the database has the app's tables (a key may be stored there); it must answer."""
    database = db.parse_database_url(settings.database_url)
    engine = db.create_engine(database)
    try:
        return await db.current_revision(engine) is not None
    except StorageError as exc:
        raise ConfigError(f"DATABASE_URL ({database.display}): {exc}") from None
    finally:
        await engine.dispose()


async def bot_workspace(deps: Deps) -> Workspace:
    """The workspace SLACK_BOT_TOKEN belongs to, as Slack's `auth.test` says: where set-key stored its key."""
    assert deps.authorizer is not None  # one-workspace mode
    await deps.authorizer.warm()  # a token Slack refuses raises ConfigError
    if deps.authorizer.workspace is None:
        raise ConfigError(
            "Slack did not say which workspace SLACK_BOT_TOKEN belongs to (auth.test failed); "
            "try again, or name the workspace with --team T0123…"
        )
    return deps.authorizer.workspace


async def balance(settings: Settings, *, team: str | None, as_json: bool) -> int:
    """The answer `/breeze-balance` gives, as text (or JSON); a friendly error and 1 when it fails."""
    try:
        answer, trend = await _answer(settings, team, plain=True)
    except BotError as exc:
        if isinstance(exc, ConfigError):
            raise
        print_failure(exc, as_json=as_json)
        return 1
    if as_json:
        print_json({"ok": True, **checks.balance_json(answer.balance, trend)})
    else:
        print("\n".join(checks.balance_lines(answer.balance, trend)))
    return 0


def print_manifest(storage: StorageSettings, url: str | None, *, socket: bool, as_json: bool) -> int:
    """The manifest with every URL filled in (or for Socket Mode), and the link that creates the app."""
    base = (url or storage.public_url or manifest.PLACEHOLDER).rstrip("/")
    if not socket and not base.startswith("https://"):
        raise ConfigError("The URL must start with https:// (Slack only calls https URLs); or use --socket.")
    app = manifest.build(base, socket=socket)
    link = manifest.create_app_link(app)
    if as_json:
        print_json({"manifest": app, "create_app_url": link})
        return 0
    print(manifest.to_yaml(app), end="")
    print(f"# Create the app with this manifest: {link}")
    if base == manifest.PLACEHOLDER and not socket:
        print(
            f"# Replace {manifest.PLACEHOLDER} with your app's URL (--url, or PUBLIC_URL).", file=sys.stderr
        )
    return 0


async def preview(settings: Settings, *, team: str | None, as_json: bool) -> int:
    """A Block Kit Builder link for the reply to the current balance, or to a labelled sample."""
    sample = False
    try:
        answer, trend = await _answer(settings, team, plain=False)
        shown: Balance = answer.balance
    except BotError as exc:
        if isinstance(exc, ConfigError) and team is None:
            raise
        sample, shown, trend = True, checks.SAMPLE_BALANCE, ["Last 7 days: `▁▂▃▄▅▆▇`"]
        reason = wording(exc).title
    reply = blocks.balance_message(shown, trend=trend or None)
    link = manifest.block_kit_builder_link(reply.blocks)
    if as_json:
        print_json({"sample": sample, "url": link, "text": reply.text})
        return 0
    if sample:
        print(f"SAMPLE: no balance could be read ({reason}); this previews sample figures.")
    print(link)
    return 0
