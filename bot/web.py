"""ASGI app factory (`uvicorn --factory bot.web:create_app`): Slack's requests, OAuth, /healthz."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot import __version__, db
from bot.config import Settings, load_settings
from bot.deps import Deps, open_deps
from bot.errors import ConfigError
from bot.logs import configure_logging
from bot.worker import STOP_GRACE_SECONDS

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

EVENTS_PATH = "/slack/events"
INSTALL_PATH = "/slack/install"
OAUTH_REDIRECT_PATH = "/slack/oauth_redirect"
HEALTH_PATH = "/healthz"
MAX_BODY_BYTES = 1024 * 1024  # Slack's payloads are a few KiB; refuse anything far larger.


class BreezeBalanceApp:
    """The whole HTTP surface; opens its dependencies in the ASGI lifespan."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.deps: Deps | None = None
        self._stack = AsyncExitStack()
        self._worker: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def startup(self) -> None:
        """Open shared clients and learn who we are in Slack."""
        deps = await self._stack.enter_async_context(open_deps(self.settings))
        if deps.authorizer is not None:
            await deps.authorizer.warm()
        self.deps = deps
        if self.settings.run_worker:
            self._worker = asyncio.create_task(_embedded_worker(deps), name="embedded-worker")
        log.info("Breeze Balance %s ready (%s) on %s", __version__, self.settings.mode, EVENTS_PATH)
        if deps.oauth is not None:
            log.info("workspaces install the app from %s", INSTALL_PATH)

    async def shutdown(self) -> None:
        """Stop the checks, finish replies in flight, then close everything."""
        deps, self.deps = self.deps, None
        if self._worker is not None and deps is not None:
            deps.worker.stopping.set()
            done, _ = await asyncio.wait({self._worker}, timeout=STOP_GRACE_SECONDS)
            if not done:
                self._worker.cancel()
                await asyncio.wait({self._worker}, timeout=1)
        await self._stack.aclose()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except ConfigError as exc:
                    await self._stack.aclose()
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if path == HEALTH_PATH:
            if method not in ("GET", "HEAD"):
                await _json(send, 405, {"error": "method not allowed"}, allow="GET, HEAD")
                return
            await self._health(send)
        elif path == EVENTS_PATH:
            if method != "POST":
                await _json(send, 405, {"error": "method not allowed"}, allow="POST")
                return
            await self._slack(scope, receive, send)
        elif path in (INSTALL_PATH, OAUTH_REDIRECT_PATH):
            if method not in ("GET", "HEAD"):
                await _json(send, 405, {"error": "method not allowed"}, allow="GET")
                return
            await self._oauth(scope, path, send)
        else:
            await _json(send, 404, {"error": "not found"})

    async def _health(self, send: Send) -> None:
        deps = self.deps
        if deps is None:
            await _json(send, 503, {"status": "starting"})
            return
        health: dict[str, Any] = {"status": "ok", "version": __version__, "mode": self.settings.mode}
        if deps.authorizer is not None:
            health["workspace"] = deps.authorizer.team_id
            health["breeze_key_configured"] = self.settings.breeze_api_key is not None
        health["replies_in_flight"] = len(deps.tasks)
        await _json(send, 200, health)

    async def _oauth(self, scope: Scope, path: str, send: Send) -> None:
        deps = self.deps
        if deps is None:
            await _json(send, 503, {"error": "starting"})
            return
        if deps.oauth is None:
            await _json(
                send,
                404,
                {"error": "installs need SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (multi-workspace mode)"},
            )
            return
        request = AsyncBoltRequest(
            body="",
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=_headers(scope),
        )
        if path == INSTALL_PATH:
            response = await deps.oauth.handle_installation(request)
        else:
            response = await deps.oauth.handle_callback(request)
        await _send_bolt(send, response)

    async def _slack(self, scope: Scope, receive: Receive, send: Send) -> None:
        deps = self.deps
        if deps is None:
            await _json(send, 503, {"error": "starting"})
            return
        body = await _read_body(receive, MAX_BODY_BYTES)
        if body is None:
            await _json(send, 413, {"error": "request body too large"})
            return
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            await _json(send, 400, {"error": "request body is not UTF-8"})
            return
        headers = _headers(scope)
        timestamp = headers.get("x-slack-request-timestamp")
        if timestamp is not None and not str(timestamp).isdigit():
            # slack_sdk's verifier raises on a non-numeric timestamp; refuse it as unsigned.
            await _json(send, 401, {"error": "invalid request"})
            return
        request = AsyncBoltRequest(
            body=text,
            query=dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))),
            headers=headers,
        )
        await _send_bolt(send, await deps.bolt.async_dispatch(request))


async def _embedded_worker(deps: Deps) -> None:
    """The alert checks inside the web process (`RUN_WORKER=true`, as `make run` sets)."""
    settings = deps.settings
    if settings.slack_client_id is None and settings.slack_bot_token is None:
        log.warning("alert checks are off: they post with SLACK_BOT_TOKEN, which is not set")
        return
    lock = db.worker_lock(db.parse_database_url(settings.database_url))
    try:
        if lock is not None and not lock.acquire():
            log.info("another process runs the alert checks on this SQLite database; this one waits")
            while not lock.acquire():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(deps.worker.stopping.wait(), settings.alert_interval_seconds)
                if deps.worker.stopping.is_set():
                    return
        await deps.worker.run_forever()
    finally:
        if lock is not None:
            lock.release()


async def _send_bolt(send: Send, response: BoltResponse) -> None:
    raw_headers = [
        (name.encode("latin-1"), value.encode("latin-1"))
        for name, values in response.headers.items()
        for value in values
    ]
    payload = response.body.encode("utf-8") if isinstance(response.body, str) else response.body
    await send({"type": "http.response.start", "status": response.status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


def _headers(scope: Scope) -> dict[str, str | Sequence[str]]:
    headers: dict[str, list[str]] = {}
    for raw_name, raw_value in scope["headers"]:
        headers.setdefault(raw_name.decode("latin-1").lower(), []).append(raw_value.decode("latin-1"))
    return {name: values[0] if len(values) == 1 else values for name, values in headers.items()}


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _json(send: Send, status: int, data: dict[str, Any], allow: str | None = None) -> None:
    body = json.dumps(data).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if allow:
        headers.append((b"allow", allow.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app(settings: Settings | None = None) -> BreezeBalanceApp:
    """The ASGI app; reads settings from the environment unless given them."""
    if settings is None:
        settings = load_settings()
        configure_logging(settings.log_level_number, settings.secret_values(), settings.log_format)
    return BreezeBalanceApp(settings)
