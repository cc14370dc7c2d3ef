"""The command line (`python -m bot`, `breeze-balance`): serve, worker, and operator commands.

`main` is looked up lazily (the `breeze-balance` script's `bot.cli:main`), so importing one
operator module does not load every command.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "main":
        from bot.cli.commands import main

        return main
    raise AttributeError(name)
