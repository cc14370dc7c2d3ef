"""Setup mode: what `serve` runs while Slack's credentials are missing, instead of exiting.

It serves the setup guide at `/`, answers `/healthz` with `"status": "setup"` (a platform's boot
check passes) and refuses Slack's requests with 503: never 200, never fail-open.
"""

from __future__ import annotations

import logging

from bot import __version__
from bot.config import Settings, SettingsError
from bot.routes import EVENTS_PATH, HEALTH_PATH, HOME_PATH
from bot.web import asgi, pages
from bot.web.asgi import Receive, Scope, Send

log = logging.getLogger(__name__)


class SetupApp:
    """The ASGI app of setup mode."""

    def __init__(self, settings: Settings, error: SettingsError) -> None:
        self.settings = settings
        self.problems = [str(problem) for problem in error.problems]
        # Every setting to set or correct, by name only: the log line, /healthz and the page agree.
        self.missing = error.names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if path == EVENTS_PATH:
            await asgi.send_json(
                send,
                503,
                {
                    "ok": False,
                    "error": "setup_incomplete",
                    "message": "Breeze Balance is not set up yet: open its home page for the steps.",
                    "missing": self.missing,
                },
            )
        elif path == HEALTH_PATH:
            await asgi.send_json(
                send, 200, {"status": "setup", "version": __version__, "missing": self.missing}
            )
        elif path == HOME_PATH and method in ("GET", "HEAD"):
            host, proto = asgi.forwarded_host(scope), asgi.header(scope, "x-forwarded-proto")
            base = pages.base_url(self.settings, host, proto)
            page = pages.setup_page(self.settings, base, self.problems, self.missing)
            await asgi.send_html(send, 200, page)
        elif path == HOME_PATH:
            await asgi.send_json(send, 405, {"error": "method not allowed"}, allow="GET, HEAD")
        else:
            await asgi.send_json(send, 404, {"error": "not found"})
