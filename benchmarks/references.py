"""The two floors our app is measured against, each a plain ASGI app for uvicorn.

- `ack_floor`: answers 200 to everything. Nothing can acknowledge faster.
- `work_floor`: a hand-written bot with no framework. It checks the Slack signature, acks
  at once, then in the background makes one Breeze GET over a shared client and posts the
  reply to `response_url` over a shared client. It does the same work as the app, minimally.

Run with `uvicorn --factory benchmarks.references:ack_floor` (or `work_floor`); the work
floor reads SLACK_SIGNING_SECRET, BREEZE_BASE_URL and BREEZE_API_KEY.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import httpx

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

EMPTY_200 = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]}
EMPTY_BODY = {"type": "http.response.body", "body": b""}


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
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
    """200 to everything, after reading the body."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        await _body(receive)
        await send(EMPTY_200)
        await send(EMPTY_BODY)

    return app


def work_floor() -> App:
    """Verify, ack, then one Breeze GET and one reply POST over shared keep-alive clients."""
    secret = os.environ["SLACK_SIGNING_SECRET"].encode()
    breeze_url = os.environ["BREEZE_BASE_URL"].rstrip("/") + "/v1/balance"
    headers = {"xi-api-key": os.environ["BREEZE_API_KEY"]}
    state: dict[str, httpx.AsyncClient] = {}
    tasks: set[asyncio.Task[None]] = set()

    async def answer(response_url: str) -> None:
        client = state["http"]
        balance = (await client.get(breeze_url, headers=headers)).json()["balance"]
        await client.post(response_url, json={"response_type": "ephemeral", "text": f"Balance: {balance}"})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            state["http"] = httpx.AsyncClient(
                timeout=10, limits=httpx.Limits(max_connections=400, max_keepalive_connections=400)
            )
            await _lifespan(receive, send)
            await state["http"].aclose()
            return
        body = await _body(receive)
        sent = dict(scope["headers"])
        timestamp = sent.get(b"x-slack-request-timestamp", b"0")
        expected = (
            b"v0=" + hmac.new(secret, b"v0:" + timestamp + b":" + body, hashlib.sha256).hexdigest().encode()
        )
        fresh = abs(time.time() - int(timestamp or b"0")) < 300
        if not fresh or not hmac.compare_digest(expected, sent.get(b"x-slack-signature", b"")):
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send(EMPTY_BODY)
            return
        await send(EMPTY_200)
        await send(EMPTY_BODY)
        response_url = dict(parse_qsl(body.decode()))["response_url"]
        task = asyncio.create_task(answer(response_url))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    return app
