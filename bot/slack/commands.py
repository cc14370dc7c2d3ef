"""Parse the text typed after `/breeze-balance` into a small command value. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from bot.slack.ids import Subcommand

_ALIASES: dict[str, Subcommand] = {
    "": Subcommand.BALANCE,
    "balance": Subcommand.BALANCE,
    "share": Subcommand.SHARE,
    "refresh": Subcommand.REFRESH,
    "help": Subcommand.HELP,
    "?": Subcommand.HELP,
    "-h": Subcommand.HELP,
    "--help": Subcommand.HELP,
    "set-key": Subcommand.SET_KEY,
    "setkey": Subcommand.SET_KEY,
    "set_key": Subcommand.SET_KEY,
    "remove-key": Subcommand.REMOVE_KEY,
    "removekey": Subcommand.REMOVE_KEY,
    "remove_key": Subcommand.REMOVE_KEY,
    "status": Subcommand.STATUS,
}


@dataclass(frozen=True, slots=True)
class Command:
    """What the user asked for; `unknown` holds text we did not understand."""

    subcommand: Subcommand
    unknown: str | None = None
    # Text after a known word, never echoed: people paste keys after `set-key`.
    ignored_text: bool = False


def parse(text: str | None) -> Command:
    """Parse command text; anything unrecognised becomes help that names what was typed."""
    words = (text or "").split()
    first = words[0].lower() if words else ""
    sub = _ALIASES.get(first)
    if sub is None:
        return Command(Subcommand.HELP, unknown=" ".join(words))
    return Command(sub, ignored_text=len(words) > 1)
