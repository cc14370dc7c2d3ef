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
from datetime import UTC, date, datetime, timedelta
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
    """A threaded HTTP server on 127.0.0.1 that records requests and answers from a script.

    Requests to `quiet` paths are recorded, but `received()` and `wait_for()` list them only when asked
    for by path: the app reads Breeze's metering beside the balance on its own schedule, and a test
    that counts calls to Breeze counts balance calls unless it names the metering's paths.
    """

    def __init__(self, name: str, quiet: frozenset[str] = frozenset()) -> None:
        self.name = name
        self.quiet = quiet
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
                r for r in self.requests if (method is None or r.method == method) and self._asked(r, path)
            ]

    def wait_for(self, count: int = 1, path: str | None = None, timeout: float = 15.0) -> list[Recorded]:
        """Block until at least `count` matching requests arrived; fail the test if they do not."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [r for r in self.requests if self._asked(r, path)]
                if len(got) >= count:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.name}: expected {count} request(s), got {len(got)}")
                self._cond.wait(left)

    def _asked(self, recorded: Recorded, path: str | None) -> bool:
        return recorded.path == path if path is not None else recorded.path not in self.quiet

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


USAGE_PATH = "/v1/usage"
CURRENT_KEY_PATH = "/v1/api-keys/current"
METERING_PATHS = frozenset({USAGE_PATH, CURRENT_KEY_PATH})
_INVALID = {"ok": False, "code": "VALIDATION_ERROR", "detail": "invalid query", "error": "unprocessable"}


@dataclass
class Metered:
    """A request Breeze metered: on `at` (a date is its noon, UTC), with a key, a model and a cost."""

    at: date | datetime
    cost_millicredits: int
    key_id: str = "key_abc123"
    key_name: str | None = "prod"
    model: str | None = "bluebell-v1-en"
    characters: int = 100

    @property
    def moment(self) -> datetime:
        """When it was made, in UTC."""
        if isinstance(self.at, datetime):
            return self.at.astimezone(UTC)
        return datetime(self.at.year, self.at.month, self.at.day, 12, tzinfo=UTC)


class FakeMetering:
    """Breeze's metering on a fake server, as its public docs describe it: `GET /v1/usage` answers any
    window (`days`, `from`/`to`), filter (`api_key_id`) and page of `requests`, newest first, and
    `GET /v1/api-keys/current` the calling key, with its own budget or without. `unavailable()`
    answers both with an error status instead; `hold` keeps every answer back until it is set.
    Windows end `today` (UTC) unless told."""

    def __init__(self, server: FakeServer, today: date | None = None) -> None:
        self.server = server
        self.today = today
        self.requests: list[Metered] = []
        self.hold: threading.Event | None = None  # given, every answer waits until it is set
        self.key: dict[str, Any] = {
            "id": "key_abc123",
            "name": "prod",
            "prefix": "brz_live",
            "status": "active",
        }

    def serve(self) -> FakeMetering:
        """Answer both endpoints from what the fake knows."""
        self.server.route("GET", USAGE_PATH, self._usage)
        self.server.route("GET", CURRENT_KEY_PATH, self._current_key)
        return self

    def unavailable(self, status: int = 404) -> None:
        """Answer both endpoints with `status`, as a Breeze without metering for the key would."""
        body = {"ok": False, "code": "RESOURCE_NOT_FOUND", "detail": "Not found", "error": "not_found"}
        for path in METERING_PATHS:
            self.server.route("GET", path, Reply(status, body))

    def spent(self, *requests: Metered) -> None:
        """These requests were made (in any order)."""
        self.requests.extend(requests)

    def budget(self, limit: float, used: float, reserved: float = 0.0) -> None:
        """The calling key has its own budget."""
        self.key.update(
            credit_limit=limit,
            credit_used=used,
            credit_reserved=reserved,
            credit_remaining=limit - used - reserved,
        )

    def calls(self, path: str = USAGE_PATH) -> list[Recorded]:
        """The metering calls received so far."""
        return self.server.received("GET", path)

    def _current_key(self, _recorded: Recorded) -> Reply:
        fields = ("credit_limit", "credit_used", "credit_reserved", "credit_remaining")
        return Reply(200, {"api_key": {**dict.fromkeys(fields), **self.key}}, gate=self.hold)

    def _usage(self, recorded: Recorded) -> Reply:
        try:
            start, end, page, size = self._query(recorded.query)
        except ValueError:
            return Reply(422, _INVALID)
        key_id = recorded.query.get("api_key_id")
        ordered = sorted(enumerate(self.requests), key=lambda pair: (pair[1].moment, pair[0]), reverse=True)
        chosen = [
            (n, r) for n, r in ordered if start <= r.moment.date() <= end and key_id in (None, r.key_id)
        ]
        cost = sum(r.cost_millicredits for _, r in chosen)
        characters = sum(r.characters for _, r in chosen)
        counts = {start + timedelta(days=n): 0 for n in range((end - start).days + 1)}
        for _, r in chosen:
            counts[r.moment.date()] += 1
        body = {
            "summary": {
                "request_count": len(chosen),
                "total_text_characters": characters,
                "total_billable_units": characters,
                "total_cost": cost / 1000,
                "total_cost_millicredits": cost,
            },
            "total": len(chosen),
            "page": page,
            "page_size": size,
            "window_days": len(counts),
            "daily": [{"date": d.isoformat(), "request_count": n} for d, n in counts.items()],
            "items": [_item(n, r) for n, r in chosen[(page - 1) * size : page * size]],
        }
        return Reply(200, body, gate=self.hold)

    def _query(self, query: dict[str, str]) -> tuple[date, date, int, int]:
        """The window and page asked for; ValueError for anything out of range, as Breeze answers 422."""
        days = int(query.get("days", 30))
        page = int(query.get("page", 1))
        size = int(query.get("page_size", 20))
        if not (1 <= days <= 90 and page >= 1 and 1 <= size <= 100):
            raise ValueError("out of range")
        end = date.fromisoformat(query["to"]) if "to" in query else self.today or datetime.now(UTC).date()
        start = date.fromisoformat(query["from"]) if "from" in query else end - timedelta(days=days - 1)
        if end < start:
            raise ValueError("the window ends before it starts")
        return start, end, page, size


def _item(number: int, request: Metered) -> dict[str, Any]:
    """A request as `/v1/usage` lists it, with every field Breeze's docs name."""
    return {
        "id": f"req_{number}",
        "endpoint": "/v1/text-to-speech/voc_1",
        "method": "POST",
        "status": 200,
        "api_key_id": request.key_id,
        "api_key_name": request.key_name,
        "api_key_prefix": "brz_live",
        "model": request.model,
        "billable_units": request.characters,
        "cost": request.cost_millicredits / 1000,
        "cost_millicredits": request.cost_millicredits,
        "text_characters": request.characters,
        "latency_ms": 120,
        "duration_ms": 900,
        "first_audio_chunk_ms": 80,
        "request_duration_ms": 950,
        "trace_id": f"trace_{number}",
        "request_id": f"req_{number}",
        "action_code": "tts.generate",
        "client_type": "sdk",
        "client_name": "breeze-blue",
        "client_version": "0.21.1",
        "created_at": request.moment.isoformat().replace("+00:00", "Z"),
    }


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
