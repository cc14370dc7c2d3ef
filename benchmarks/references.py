"""The floors the app is measured against, each a raw ASGI app for uvicorn, no framework.

- `ack_floor`: answers 200 with an empty body to everything. Nothing acknowledges faster.
- `work_floor`: the fastest honest bot. It acks at once with an empty 200, then in a background
  task makes one Breeze GET and posts a JSON reply to the command's `response_url`, both over a
  single `aiohttp.ClientSession` with no cap on connections (`TCPConnector(limit=0)`). No
  signature check, no logging: the least a bot can do and still answer. The app's ratios are to it.
- `httpx_floor`: the previous work floor, kept as a reference. It checks the Slack signature,
  acks, then makes the same two requests over two shared `httpx.AsyncClient`s (one per
  destination, each with its own keep-alive pool): the least work with plain httpx.

Run with `uvicorn --factory benchmarks.references:ack_floor` (or `work_floor`, `httpx_floor`);
the work floors read BREEZE_BASE_URL and BREEZE_API_KEY, the httpx floor SLACK_SIGNING_SECRET too.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import time
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import httpx

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_SIGNATURE_AGE_SECONDS = 300
EVENTS_PATH = "/slack/events"
TIMEOUT_SECONDS = 10
# The httpx floor's pool: no cap on connections, so no request queues for one, and httpx's
# default keep-alive pool of 20. A bigger keep-alive pool costs more than it saves: httpcore 1.0 scans every pooled
# connection for every idle one each time a request starts or ends, which came to about
# 24 ms of CPU per request with 200 requests in flight (under 2 ms with 20 kept alive).
POOL = httpx.Limits(max_connections=None, max_keepalive_connections=20)

_EMPTY_BODY: Message = {"type": "http.response.body", "body": b""}


def _start(status: int) -> Message:
    return {"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]}


async def _lifespan(
    receive: Receive,
    send: Send,
    on_stop: Callable[[], Awaitable[None]] | None,
    on_start: Callable[[], Awaitable[None]] | None = None,
) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if on_start is not None:
                await on_start()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if on_stop is not None:
                await on_stop()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def ack_floor() -> App:
    """200 with an empty body to every request, after reading it."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, None)
            return
        await _body(receive)
        await send(_start(200))
        await send(_EMPTY_BODY)

    return app


def _signed(secret: bytes, headers: dict[bytes, bytes], body: bytes) -> bool:
    timestamp = headers.get(b"x-slack-request-timestamp", b"")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > MAX_SIGNATURE_AGE_SECONDS:
        return False
    digest = hmac.new(secret, b"v0:" + timestamp + b":" + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(b"v0=" + digest.encode(), headers.get(b"x-slack-signature", b""))


def _background(tasks: set[asyncio.Task[None]], work: Coroutine[Any, Any, None]) -> None:
    task = asyncio.create_task(work)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


def work_floor() -> App:
    """Ack, then one Breeze GET and one reply POST over one aiohttp session with no connection cap."""
    balance_url = os.environ["BREEZE_BASE_URL"].rstrip("/") + "/v1/balance"
    breeze_headers = {"xi-api-key": os.environ["BREEZE_API_KEY"]}
    sessions: list[aiohttp.ClientSession] = []  # made in the server's loop, at start-up
    tasks: set[asyncio.Task[None]] = set()

    async def start() -> None:
        sessions.append(
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS),
            )
        )

    async def answer(body: bytes) -> None:
        session = sessions[0]
        response_urls = parse_qs(body.decode()).get("response_url")
        if not response_urls:  # not a slash command
            return
        response_url = response_urls[0]
        async with session.get(balance_url, headers=breeze_headers) as response:
            balance = json.loads(await response.read())["balance"]
        reply = {"response_type": "ephemeral", "text": f"Balance: {balance}"}
        async with session.post(response_url, json=reply) as response:
            await response.read()

    async def stop() -> None:
        await asyncio.gather(*tasks, return_exceptions=True)
        for session in sessions:
            await session.close()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, stop, start)
            return
        body = await _body(receive)
        if scope["path"] != EVENTS_PATH:  # the benchmark's readiness probe
            await send(_start(404))
            await send(_EMPTY_BODY)
            return
        await send(_start(200))
        await send(_EMPTY_BODY)
        _background(tasks, answer(body))

    return app


def httpx_floor() -> App:
    """Verify, ack, then one Breeze GET and one reply POST, over shared httpx keep-alive clients."""
    secret = os.environ["SLACK_SIGNING_SECRET"].encode()
    breeze = httpx.AsyncClient(
        base_url=os.environ["BREEZE_BASE_URL"].rstrip("/"),
        headers={"xi-api-key": os.environ["BREEZE_API_KEY"]},
        timeout=TIMEOUT_SECONDS,
        limits=POOL,
    )
    slack = httpx.AsyncClient(timeout=TIMEOUT_SECONDS, limits=POOL)
    tasks: set[asyncio.Task[None]] = set()

    async def answer(body: bytes) -> None:
        response_url = parse_qs(body.decode())["response_url"][0]
        balance = (await breeze.get("/v1/balance")).json()["balance"]
        await slack.post(response_url, json={"response_type": "ephemeral", "text": f"Balance: {balance}"})

    async def stop() -> None:
        await asyncio.gather(*tasks, return_exceptions=True)
        await breeze.aclose()
        await slack.aclose()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, stop)
            return
        body = await _body(receive)
        if not _signed(secret, dict(scope["headers"]), body):
            await send(_start(401))
            await send(_EMPTY_BODY)
            return
        await send(_start(200))
        await send(_EMPTY_BODY)
        _background(tasks, answer(body))

    return app
