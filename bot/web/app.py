"""ASGI app factory (`uvicorn --factory bot.web:create_app`): Slack's requests, OAuth, /healthz."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import parse_qsl

from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot import __version__
from bot.adapters import db
from bot.config import Settings, load_settings
from bot.deps import Deps, open_deps
from bot.errors import BotError, ConfigError
from bot.hints import HINTS
from bot.logs import configure_logging
from bot.routes import EVENTS_PATH, HEALTH_PATH, HOME_PATH, INSTALL_PATH, OAUTH_REDIRECT_PATH
from bot.services.tasks import RECORD_SECONDS
from bot.services.worker import STOP_GRACE_SECONDS
from bot.slack.blocks.balance import wording
from bot.web import asgi, pages
from bot.web.asgi import Receive, Scope, Send

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024  # Slack's payloads are a few KiB; refuse anything far larger.
PROBE_SECONDS = 60.0  # the status page asks Breeze at most this often


class BreezeBalanceApp:
    """The whole HTTP surface; opens its dependencies in the ASGI lifespan."""

    def __init__(self, settings: Settings, *, socket: bool = False) -> None:
        self.settings = settings
        self.socket = socket
        self._socket: Any = None
        self.deps: Deps | None = None
        self._stack = AsyncExitStack()
        self._worker: asyncio.Task[None] | None = None
        self._breeze_probe: tuple[pages.Probe, float] | None = None

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
        if self.socket:
            self._socket = await _connect_socket_mode(deps, self.settings)
        self.deps = deps
        if self.settings.run_worker:
            self._worker = asyncio.create_task(_embedded_worker(deps), name="embedded-worker")
        where = "over Socket Mode" if self.socket else f"on {EVENTS_PATH}"
        log.info("Breeze Balance %s ready (%s) %s", __version__, self.settings.mode, where)
        if deps.oauth is not None:
            log.info("workspaces install the app from %s", INSTALL_PATH)

    async def shutdown(self) -> None:
        """Stop the checks, finish replies in flight, then close everything."""
        deps, self.deps = self.deps, None
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None
        if self._worker is not None and deps is not None:
            deps.worker.stopping.set()
            done, _ = await asyncio.wait({self._worker}, timeout=STOP_GRACE_SECONDS)
            if not done:
                self._worker.cancel()
                await asyncio.wait({self._worker}, timeout=RECORD_SECONDS + 1)
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
                await asgi.send_json(send, 405, {"error": "method not allowed"}, allow="GET, HEAD")
                return
            await self._health(send)
        elif path == EVENTS_PATH:
            if method != "POST":
                await asgi.send_json(send, 405, {"error": "method not allowed"}, allow="POST")
                return
            await self._slack(scope, receive, send)
        elif path == HOME_PATH:
            if method not in ("GET", "HEAD"):
                await asgi.send_json(send, 405, {"error": "method not allowed"}, allow="GET, HEAD")
                return
            await self._status_page(scope, send)
        elif path in (INSTALL_PATH, OAUTH_REDIRECT_PATH):
            if method not in ("GET", "HEAD"):
                await asgi.send_json(send, 405, {"error": "method not allowed"}, allow="GET")
                return
            await self._oauth(scope, path, send)
        else:
            await asgi.send_json(send, 404, {"error": "not found"})

    async def _health(self, send: Send) -> None:
        deps = self.deps
        if deps is None:
            await asgi.send_json(send, 503, {"status": "starting"})
            return
        health: dict[str, Any] = {"status": "ok", "version": __version__, "mode": self.settings.mode}
        if deps.authorizer is not None:
            health["workspace"] = deps.authorizer.team_id
            health["breeze_key_configured"] = self.settings.breeze_api_key is not None
        health["replies_in_flight"] = len(deps.tasks)
        if deps.shared is not None:
            # Redis is optional: without it each process uses its own caches, so this stays 200.
            health["redis"], why = await deps.shared.health()
            if why is not None:
                health.update(status="degraded", degraded=[why])
        await asgi.send_json(send, 200, health)

    async def _status_page(self, scope: Scope, send: Send) -> None:
        deps = self.deps
        if deps is None:
            await asgi.send_json(send, 503, {"status": "starting"})
            return
        base = pages.base_url(
            self.settings, asgi.forwarded_host(scope), asgi.header(scope, "x-forwarded-proto")
        )
        probes = [pages.Probe("Database", "ok", "reachable, schema up to date"), self._slack_probe(deps)]
        probes.append(await self._probe_breeze(deps))
        await asgi.send_html(send, 200, pages.status_page(self.settings, base, probes))

    def _slack_probe(self, deps: Deps) -> pages.Probe:
        if deps.authorizer is None:
            return pages.Probe("Slack", "skip", "many workspaces: each installation brings its own token")
        if self.settings.slack_bot_token is None:
            return pages.Probe("Slack", "skip", "no SLACK_BOT_TOKEN: admin commands and alerts are off")
        if deps.authorizer.team_id is None:
            return pages.Probe("Slack", "fail", "auth.test has not answered yet; retried in the background")
        return pages.Probe("Slack", "ok", f"bot token accepted in workspace {deps.authorizer.team_id}")

    async def _probe_breeze(self, deps: Deps) -> pages.Probe:
        key = self.settings.breeze_api_key if deps.authorizer is not None else None
        if key is None:
            return pages.Probe(
                "Breeze", "skip", "no BREEZE_API_KEY: admins set each workspace's key in Slack"
            )
        cached = self._breeze_probe
        if cached is not None and time.monotonic() - cached[1] < PROBE_SECONDS:
            return cached[0]
        try:
            await deps.breeze.get_balance(key)
        except BotError as exc:
            probe = pages.Probe("Breeze", "fail", f"BREEZE_API_KEY: {wording(exc).title}")
        else:
            probe = pages.Probe("Breeze", "ok", "BREEZE_API_KEY accepted")
        self._breeze_probe = (probe, time.monotonic())
        return probe

    async def _oauth(self, scope: Scope, path: str, send: Send) -> None:
        deps = self.deps
        if deps is None:
            await asgi.send_json(send, 503, {"error": "starting"})
            return
        if deps.oauth is None:
            await asgi.send_json(
                send,
                404,
                {"error": "installs need SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (multi-workspace mode)"},
            )
            return
        request = AsyncBoltRequest(
            body="",
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=asgi.headers(scope),
        )
        if path == INSTALL_PATH:
            response = await deps.oauth.handle_installation(request)
        else:
            response = await deps.oauth.handle_callback(request)
        await _send_bolt(send, response)

    async def _slack(self, scope: Scope, receive: Receive, send: Send) -> None:
        deps = self.deps
        if deps is None:
            await asgi.send_json(send, 503, {"error": "starting"})
            return
        body = await asgi.read_body(receive, MAX_BODY_BYTES)
        if body is None:
            await asgi.send_json(send, 413, {"error": "request body too large"})
            return
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            await asgi.send_json(send, 400, {"error": "request body is not UTF-8"})
            return
        headers = asgi.headers(scope)
        timestamp = headers.get("x-slack-request-timestamp")
        if timestamp is not None and not str(timestamp).isdigit():
            # slack_sdk's verifier raises on a non-numeric timestamp; refuse it as unsigned.
            await asgi.send_json(send, 401, {"error": "invalid request"})
            return
        request = AsyncBoltRequest(
            body=text,
            query=dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))),
            headers=headers,
        )
        await _send_bolt(send, await deps.bolt.async_dispatch(request))


async def _connect_socket_mode(deps: Deps, settings: Settings) -> Any:
    """Connect the Bolt app to Slack over Socket Mode; a refused app token stops start-up clearly."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
    from slack_sdk.errors import SlackApiError, SlackClientError

    from bot.slack.auth import slack_error

    if settings.slack_app_token is None:
        raise ConfigError(f"SLACK_APP_TOKEN is not set; {HINTS['SLACK_APP_TOKEN']}.")
    token = settings.slack_app_token.get_secret_value()
    handler = AsyncSocketModeHandler(deps.bolt, token, web_client=deps.bolt.client)
    try:
        # The client retries a refused token forever; ask once ourselves, so it stops start-up clearly.
        await deps.bolt.client.apps_connections_open(app_token=token)
        await handler.connect_async()  # type: ignore[no-untyped-call]
    except SlackApiError as exc:
        raise ConfigError(
            f"SLACK_APP_TOKEN was refused by Slack ({slack_error(exc)}); {HINTS['SLACK_APP_TOKEN']}."
        ) from None
    except (SlackClientError, OSError) as exc:
        raise ConfigError(f"could not connect to Slack over Socket Mode: {type(exc).__name__}") from None
    log.info("connected to Slack over Socket Mode")
    return handler


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


def create_app(settings: Settings | None = None) -> BreezeBalanceApp:
    """The ASGI app; reads settings from the environment unless given them."""
    if settings is None:
        settings = load_settings()
        configure_logging(settings.log_level_number, settings.secret_values(), settings.log_format)
    return BreezeBalanceApp(settings)
