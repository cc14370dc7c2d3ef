"""The web entry point: the ASGI app (`uvicorn --factory bot.web:create_app`) and its pages.

`create_app` is looked up lazily, so importing a page module does not load the whole app.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from bot.web.app import create_app

        return create_app
    raise AttributeError(name)
