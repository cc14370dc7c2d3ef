"""One router for `/breeze-balance`: every subcommand has one route, and handlers never hand on to each other."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from bot.slack import router
from bot.slack.commands import parse
from bot.slack.ids import Subcommand

LISTENERS = Path(router.__file__).parent / "listeners"
# Views that several features show; importing them is reuse, not routing.
SHARED_VIEWS = {"bot.slack.listeners.home", "bot.slack.listeners.trend"}


def test_every_subcommand_has_exactly_one_route() -> None:
    assert set(router.ROUTES) == set(Subcommand)


def test_every_word_the_parser_knows_reaches_a_route() -> None:
    for text in [
        "",
        "balance",
        "share",
        "refresh",
        "help",
        "?",
        "set-key",
        "remove-key",
        "status",
        "alert",
        "alert 100",
        "notify",
        "digest off",
        "nonsense words",
    ]:
        assert parse(text).subcommand in router.ROUTES, text


def test_only_the_balance_and_help_are_open_to_everyone() -> None:
    open_to_all = {sub for sub, route in router.ROUTES.items() if not route.admins_only}
    assert open_to_all == {
        Subcommand.BALANCE,
        Subcommand.SHARE,
        Subcommand.REFRESH,
        Subcommand.HELP,
        Subcommand.USAGE,
    }


def test_handlers_live_in_the_feature_listeners() -> None:
    for sub, route in router.ROUTES.items():
        module = inspect.getmodule(route.handler)
        assert module is not None, sub
        assert module.__name__.startswith("bot.slack.listeners."), sub
        assert inspect.iscoroutinefunction(route.handler), sub


def test_no_listener_hands_a_command_to_another_listener() -> None:
    for path in LISTENERS.glob("*.py"):
        tree = ast.parse(path.read_text())
        imported: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "bot.slack.listeners":
                    imported |= {f"bot.slack.listeners.{alias.name}" for alias in node.names}
                elif node.module.startswith("bot.slack.listeners."):
                    imported.add(node.module)
            if (
                isinstance(node, ast.ImportFrom)
                and node.module == "bot.slack"
                and any(alias.name == "router" for alias in node.names)
            ):
                imported.add("bot.slack.router")
        assert imported <= SHARED_VIEWS, f"{path.name} imports {sorted(imported - SHARED_VIEWS)}"
