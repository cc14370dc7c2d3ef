"""The world around the server, faked on loopback: Breeze, the Slack Web API and `response_url`s.

All three are aiohttp servers on their own ports (so they are separate origins, as in
production) in the load generator's process and event loop. That way a command's send time
and its reply's arrival time are read from one clock.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web

BALANCE = 1234.5
# What a reply must contain to count as a balance (the app formats it, the work floor does not).
BALANCE_SHOWN = ("1,234.5", "1234.5")
BREEZE_KEY_ID = "key_1"
BREEZE_BODY = json.dumps(
    {
        "balance": BALANCE,
        "topups": [
            {"topup_id": "tp_1", "amount": 500, "status": "succeeded", "created_at": "2026-11-01T09:30:00Z"}
        ],
    }
).encode()
UNAUTHORIZED_BODY = json.dumps({"code": "AUTH_INVALID_SESSION", "error": "unknown API key"}).encode()
BOT_IDENTITY = {
    "ok": True,
    "team_id": "T0BENCH",
    "team": "Bench",
    "user_id": "U0BENCHBOT",
    "bot_id": "B0BENCH",
}


@dataclass
class Reply:
    """A reply that arrived at a `response_url`."""

    arrived: float  # time.perf_counter()
    is_balance: bool


@dataclass
class Counts:
    """What the fakes saw since the last `Fakes.reset_counts()`."""

    breeze_calls: Counter[str] = field(default_factory=Counter)  # by API key
    slack_calls: Counter[str] = field(default_factory=Counter)  # by method
    replies: int = 0
    # TCP connections the server opened to Breeze / to response_urls: first used since the last
    # reset, never before (aiohttp's client takes idle connections in turn, so one that is only
    # reused is not new).
    breeze_connections: set[object] = field(default_factory=set)
    reply_connections: set[object] = field(default_factory=set)

    @property
    def breeze_total(self) -> int:
        return sum(self.breeze_calls.values())


class Fakes:
    """Fake Breeze (with a settable latency), Slack Web API and `response_url` catcher."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.latency = 0.0
        self.counts = Counts()
        self._waiting: dict[str, asyncio.Future[Reply]] = {}
        self._seen: set[object] = set()  # every connection that ever reached a fake
        self._runners: list[web.AppRunner] = []
        self.breeze_url = self.slack_api_url = self.hooks_url = ""

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on three loopback ports."""
        breeze = web.Application()
        breeze.router.add_get("/v1/balance", self._balance)
        slack = web.Application()
        slack.router.add_post("/api/{method}", self._slack_api)
        hooks = web.Application()
        hooks.router.add_post("/commands/{name}", self._hook)
        self.breeze_url = await self._serve(breeze)
        self.slack_api_url = await self._serve(slack) + "/api/"
        self.hooks_url = await self._serve(hooks) + "/commands"

    async def stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()

    async def _serve(self, app: web.Application) -> str:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        self._runners.append(runner)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(runner, sock, backlog=4096).start()
        port: int = sock.getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def reset_counts(self) -> Counts:
        """Start counting afresh; return what was counted so far."""
        counts, self.counts = self.counts, Counts()
        return counts

    # --- replies -------------------------------------------------------------------------------

    def expect(self, name: str) -> asyncio.Future[Reply]:
        """A future that resolves when `{hooks_url}/{name}` receives its reply."""
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting[name] = future
        return future

    def forget(self, name: str) -> None:
        self._waiting.pop(name, None)

    # --- handlers ------------------------------------------------------------------------------

    def _opened(self, request: web.Request, into: set[object]) -> None:
        """Count the request's connection in `into` if no earlier request came over it."""
        transport = request.transport
        # The client's address and port, with the handler (alive while it serves the request).
        key = (transport.get_extra_info("peername") if transport is not None else None, id(request.protocol))
        if key not in self._seen:
            self._seen.add(key)
            into.add(key)

    async def _balance(self, request: web.Request) -> web.Response:
        self._opened(request, self.counts.breeze_connections)
        key = request.headers.get("xi-api-key", "")
        self.counts.breeze_calls[key] += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        if key != self.api_key:
            return web.Response(status=401, body=UNAUTHORIZED_BODY, content_type="application/json")
        return web.Response(
            body=BREEZE_BODY, content_type="application/json", headers={"x-breeze-api-key-id": BREEZE_KEY_ID}
        )

    async def _slack_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.counts.slack_calls[method] += 1
        await request.read()
        if method == "auth.test":
            return web.json_response(BOT_IDENTITY)
        return web.json_response({"ok": False, "error": "unknown_method"})

    async def _hook(self, request: web.Request) -> web.Response:
        self._opened(request, self.counts.reply_connections)
        body = await request.read()
        arrived = time.perf_counter()
        self.counts.replies += 1
        try:
            text = json.loads(body).get("text", "")
        except ValueError:
            text = ""
        reply = Reply(arrived, isinstance(text, str) and any(shown in text for shown in BALANCE_SHOWN))
        future = self._waiting.pop(request.match_info["name"], None)
        if future is not None and not future.done():
            future.set_result(reply)
        return web.Response(text="ok")
