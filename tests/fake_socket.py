"""A loopback stand-in for Slack's Socket Mode WebSocket server (aiohttp, in a background thread).

On each connection it sends Slack's `hello`, then pushes the envelopes a test gives it and records
every message the client sends back (the acks). https://api.slack.com/apis/socket-mode
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

HELLO: dict[str, Any] = {
    "type": "hello",
    "num_connections": 1,
    "connection_info": {"app_id": "A0001"},
    "debug_info": {"host": "fake"},
}


class FakeSocketMode:
    """Serves `ws://127.0.0.1:<port>/link`; one client at a time gets what `push` sends."""

    def __init__(self, path: str = "/link") -> None:
        self.path = path
        self.connections = 0
        self.disconnections = 0
        self.received: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._sockets: list[web.WebSocketResponse] = []
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-socket-mode", daemon=True)

    @property
    def url(self) -> str:
        """The WebSocket URL `apps.connections.open` hands out."""
        return f"ws://127.0.0.1:{self._port}{self.path}"

    def start(self) -> FakeSocketMode:
        """Start serving in a background thread."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        """Close every connection and stop serving."""
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def wait_connected(self, count: int = 1, timeout: float = 30.0) -> None:
        """Block until `count` clients have connected in all; fail the test if they do not."""
        self._wait(lambda: self.connections >= count, timeout, f"{count} Socket Mode connection(s)")

    def wait_disconnected(self, count: int = 1, timeout: float = 30.0) -> None:
        """Block until `count` connections have been closed in all."""
        self._wait(lambda: self.disconnections >= count, timeout, f"{count} closed connection(s)")

    def push(self, envelope: dict[str, Any]) -> None:
        """Send an envelope to the newest connected client."""
        asyncio.run_coroutine_threadsafe(self._push(envelope), self._loop).result(10)

    def wait_for_ack(self, envelope_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """The message the client sent back for `envelope_id`."""

        def found() -> bool:
            return any(m.get("envelope_id") == envelope_id for m in self.received)

        self._wait(found, timeout, f"an ack of envelope {envelope_id}")
        with self._cond:
            return next(m for m in self.received if m.get("envelope_id") == envelope_id)

    def _wait(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not ready():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"fake Socket Mode server: expected {what}, got {self.received}")
                self._cond.wait(left)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get(self.path, self._serve)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])

    async def _stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _push(self, envelope: dict[str, Any]) -> None:
        live = [ws for ws in self._sockets if not ws.closed]
        if not live:
            raise AssertionError("fake Socket Mode server: no client is connected")
        await live[-1].send_str(json.dumps(envelope))

    async def _serve(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(json.dumps(HELLO))
        with self._cond:
            self.connections += 1
            self._cond.notify_all()
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    with self._cond:
                        self.received.append(json.loads(message.data))
                        self._cond.notify_all()
        finally:
            self._sockets.remove(ws)
            with self._cond:
                self.disconnections += 1
                self._cond.notify_all()
        return ws
