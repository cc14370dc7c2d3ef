"""Loopback stand-ins for Breeze, the Slack Web API and `response_url`, plus the app server."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import uvicorn

from bot.config import Settings
from bot.web.app import BreezeBalanceApp


@dataclass
class Reply:
    """What a fake server answers: status, headers, body, after an optional delay."""

    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    gate: threading.Event | None = None

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        """The body as bytes and the headers to send with it."""
        headers = dict(self.headers)
        if isinstance(self.body, dict | list):
            headers.setdefault("content-type", "application/json")
            return json.dumps(self.body).encode(), headers
        if isinstance(self.body, str):
            headers.setdefault("content-type", "text/plain; charset=utf-8")
            return self.body.encode(), headers
        return self.body, headers


@dataclass
class Recorded:
    """A request a fake server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    query: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        """The body parsed as a form."""
        return dict(urllib.parse.parse_qsl(self.body.decode()))


Route = Callable[[Recorded], Reply]


class FakeServer:
    """A threaded HTTP server on 127.0.0.1 that records requests and answers from a script."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.requests: list[Recorded] = []
        self.routes: dict[tuple[str, str], Route] = {}
        self.queued: dict[tuple[str, str], list[Reply]] = {}
        self._cond = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=name, daemon=True)

    @property
    def url(self) -> str:
        """Base URL, no trailing slash."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeServer:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        """Forget requests and scripts."""
        with self._cond:
            self.requests.clear()
            self.queued.clear()
        self.routes.clear()

    def route(self, method: str, path: str, reply: Reply | Route) -> None:
        """Answer every `method path` (`*`: any path) with `reply` (or what the function returns)."""
        self.routes[(method, path)] = reply if callable(reply) else (lambda _req, r=reply: r)

    def queue(self, method: str, path: str, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order, before falling back to the route."""
        with self._cond:
            self.queued.setdefault((method, path), []).extend(replies)

    def received(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        """Requests so far, optionally filtered."""
        with self._cond:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and (path is None or r.path == path)
            ]

    def wait_for(self, count: int = 1, path: str | None = None, timeout: float = 15.0) -> list[Recorded]:
        """Block until at least `count` matching requests arrived; fail the test if they do not."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [r for r in self.requests if path is None or r.path == path]
                if len(got) >= count:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.name}: expected {count} request(s), got {len(got)}")
                self._cond.wait(left)

    def _answer(self, recorded: Recorded) -> Reply:
        key = (recorded.method, recorded.path)
        with self._cond:
            self.requests.append(recorded)
            self._cond.notify_all()
            queued = self.queued.get(key)
            if queued:
                return queued.pop(0)
        route = self.routes.get(key) or self.routes.get((recorded.method, "*"))
        return route(recorded) if route else Reply(404, {"error": "no such route in the fake"})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else headers and body wait on delayed ACKs (40 ms)

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urllib.parse.urlsplit(self.path)
                headers = {k.lower(): v for k, v in self.headers.items()}
                query = dict(urllib.parse.parse_qsl(url.query))
                reply = fake._answer(Recorded(self.command, url.path, headers, body, query))
                if reply.gate is not None:
                    reply.gate.wait(30)
                if reply.delay:
                    time.sleep(reply.delay)
                payload, out_headers = reply.encoded()
                try:
                    self.send_response(reply.status)
                    for name, value in out_headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def slack_signature(secret: str, timestamp: str, body: str) -> str:
    """Slack's request signature: v0= + hex HMAC-SHA256 of `v0:{timestamp}:{body}`."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class AppServer:
    """The real ASGI app under uvicorn, on a free loopback port, in a background thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = BreezeBalanceApp(settings)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, lifespan="on", log_config=None)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="app", daemon=True)

    def start(self) -> AppServer:
        """Start and wait until it accepts requests."""
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the app did not start")
            time.sleep(0.01)
        return self

    @property
    def url(self) -> str:
        """Base URL of the running app."""
        sock = self.server.servers[0].sockets[0]
        host, port = sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        """Shut down as on SIGTERM, waiting for replies in flight."""
        self.server.should_exit = True
        self._thread.join(40)


class SlackClient:
    """Sends requests into the app the way Slack does: form-encoded, signed."""

    def __init__(self, app_url: str, signing_secret: str) -> None:
        self.app_url = app_url
        self.secret = signing_secret
        self.http = httpx.Client(base_url=app_url, timeout=10)

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def signed_headers(
        self, body: str, timestamp: int | None = None, secret: str | None = None
    ) -> dict[str, str]:
        """Headers Slack sends with a body."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        return {
            "content-type": "application/x-www-form-urlencoded",
            "x-slack-request-timestamp": ts,
            "x-slack-signature": slack_signature(secret or self.secret, ts, body),
        }

    def command(
        self,
        response_url: str,
        text: str = "",
        *,
        team_id: str = "T0001",
        user_id: str = "U0001",
        command: str = "/breeze-balance",
        **extra: str,
    ) -> httpx.Response:
        """POST a signed slash command."""
        fields = {
            "token": "legacy-verification-token",
            "team_id": team_id,
            "team_domain": "acme",
            "channel_id": "C0001",
            "channel_name": "general",
            "user_id": user_id,
            "user_name": "ada",
            "command": command,
            "text": text,
            "api_app_id": "A0001",
            "response_url": response_url,
            "trigger_id": "1.2.3",
            **extra,
        }
        body = urllib.parse.urlencode(fields)
        return self.http.post("/slack/events", content=body, headers=self.signed_headers(body))

    def interaction(self, payload: dict[str, Any]) -> httpx.Response:
        """POST a signed interaction (`block_actions`, `view_submission`) as Slack does."""
        body = urllib.parse.urlencode({"payload": json.dumps(payload)})
        return self.http.post("/slack/events", content=body, headers=self.signed_headers(body))

    def event(self, envelope: dict[str, Any]) -> httpx.Response:
        """POST a signed Events API envelope (JSON)."""
        body = json.dumps(envelope)
        headers = {**self.signed_headers(body), "content-type": "application/json"}
        return self.http.post("/slack/events", content=body, headers=headers)
