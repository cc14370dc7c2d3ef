"""Small ASGI helpers shared by the app and the setup server: types, bodies, JSON and HTML answers."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def headers(scope: Scope) -> dict[str, str | Sequence[str]]:
    headers: dict[str, list[str]] = {}
    for raw_name, raw_value in scope["headers"]:
        headers.setdefault(raw_name.decode("latin-1").lower(), []).append(raw_value.decode("latin-1"))
    return {name: values[0] if len(values) == 1 else values for name, values in headers.items()}


async def read_body(receive: Receive, limit: int) -> bytes | None:
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


async def send_json(send: Send, status: int, data: dict[str, Any], allow: str | None = None) -> None:
    body = json.dumps(data).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if allow:
        headers.append((b"allow", allow.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_html(send: Send, status: int, page: str) -> None:
    """A page, never cached (it shows live state)."""
    body = page.encode("utf-8")
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
        (b"content-security-policy", b"default-src 'none'; style-src 'unsafe-inline'; form-action 'none'"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def header(scope: Scope, name: str) -> str | None:
    """One request header's first value, by its lower-case name."""
    wanted = name.encode("latin-1")
    for raw_name, raw_value in scope["headers"]:
        if raw_name.lower() == wanted:
            return str(raw_value.decode("latin-1"))
    return None


def forwarded_host(scope: Scope) -> str | None:
    """The host the client asked for: a proxy's `X-Forwarded-Host`, else `Host`."""
    forwarded = header(scope, "x-forwarded-host")
    return forwarded.split(",")[0].strip() if forwarded else header(scope, "host")
