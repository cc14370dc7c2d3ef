"""Parse the text typed after `/breeze-balance` into a small command value. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from bot.slack.ids import Subcommand

_ALIASES: dict[str, Subcommand] = {
    "": Subcommand.BALANCE,
    "balance": Subcommand.BALANCE,
    "share": Subcommand.SHARE,
    "help": Subcommand.HELP,
    "?": Subcommand.HELP,
    "-h": Subcommand.HELP,
    "--help": Subcommand.HELP,
}


@dataclass(frozen=True, slots=True)
class Command:
    """What the user asked for; `unknown` holds text we did not understand."""

    subcommand: Subcommand
    unknown: str | None = None


def parse(text: str | None) -> Command:
    """Parse command text; anything unrecognised becomes help that names what was typed."""
    words = (text or "").split()
    first = words[0].lower() if words else ""
    sub = _ALIASES.get(first)
    if sub is None:
        return Command(Subcommand.HELP, unknown=" ".join(words))
    return Command(sub)
