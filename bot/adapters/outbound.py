"""The process's one outbound HTTP client: httpx's API over aiohttp's connection pool.

httpcore's pool walks every pooled connection for every request, which made it most of the
app's CPU under load; aiohttp's does not (README: Performance). `httpx-aiohttp` maps every
`aiohttp.ClientConnectionError` to `httpx.ConnectTimeout`, which would turn a refused, dropped or
TLS-broken connection, or a read timeout, into "could not connect in time": `Transport` maps
aiohttp's exceptions to the httpx ones that say what happened, so the Breeze adapter's
translation (and its retries) stay right.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from typing import Literal

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from bot import __version__

HttpStack = Literal["aiohttp", "httpcore"]
USER_AGENT = f"breeze-balance-slack/{__version__}"
CONNECT_SECONDS = 3.0
KEEPALIVE_SECONDS = 60.0


def translate(exc: httpx.TransportError) -> httpx.TransportError:
    """The httpx exception that says what really happened to a request aiohttp made."""
    cause = exc.__cause__
    if not isinstance(cause, BaseException):
        return exc
    message = str(exc) or type(cause).__name__
    request = getattr(exc, "_request", None)
    if isinstance(cause, aiohttp.ConnectionTimeoutError):
        kind: type[httpx.TransportError] = httpx.ConnectTimeout
    elif isinstance(cause, aiohttp.ServerTimeoutError | asyncio.TimeoutError):
        kind = httpx.ReadTimeout
    elif isinstance(cause, aiohttp.ClientSSLError | ssl.SSLError) or isinstance(
        getattr(cause, "os_error", None), ssl.SSLError
    ):
        kind = httpx.ConnectError
        message = f"TLS failed: {message}"
    elif isinstance(cause, aiohttp.ClientConnectorError):
        kind = httpx.ConnectError
    elif isinstance(cause, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        kind = httpx.RemoteProtocolError
    elif isinstance(cause, aiohttp.ClientOSError | ConnectionError):
        kind = httpx.ReadError
    else:
        return exc
    translated = kind(message, request=request) if request is not None else kind(message)
    translated.__cause__ = cause
    return translated


def _unmapped(exc: aiohttp.ClientError, request: httpx.Request | None = None) -> httpx.TransportError:
    """An aiohttp error httpx-aiohttp lets through (a malformed answer: bad status line, headers)."""
    message = f"malformed answer: {type(exc).__name__}: {exc}"
    return (
        httpx.RemoteProtocolError(message, request=request) if request else httpx.RemoteProtocolError(message)
    )


class _TranslatingStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except httpx.TransportError as exc:
            raise translate(exc) from exc.__cause__
        except aiohttp.ClientError as exc:
            raise _unmapped(exc) from exc

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        except httpx.TransportError as exc:
            raise translate(exc) from exc.__cause__
        except aiohttp.ClientError as exc:
            raise _unmapped(exc) from exc


class Transport(AiohttpTransport):
    """`AiohttpTransport` whose errors say whether the connection was refused, dropped, TLS-broken or slow."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send the request; its errors, and those of reading its body, translated."""
        try:
            response = await super().handle_async_request(request)
        except httpx.TransportError as exc:
            raise translate(exc) from exc.__cause__
        except aiohttp.ClientError as exc:
            raise _unmapped(exc, request) from exc
        stream = response.stream
        if isinstance(stream, httpx.AsyncByteStream):
            response.stream = _TranslatingStream(stream)
        return response


def client(stack: HttpStack, timeout_seconds: float, user_agent: str = USER_AGENT) -> httpx.AsyncClient:
    """The shared client; `httpcore` keeps httpx's own pool (for comparison in the benchmark)."""
    timeout = httpx.Timeout(timeout_seconds, connect=CONNECT_SECONDS)
    headers = {"user-agent": user_agent}
    if stack == "httpcore":
        limits = httpx.Limits(
            max_connections=200, max_keepalive_connections=50, keepalive_expiry=KEEPALIVE_SECONDS
        )
        return httpx.AsyncClient(timeout=timeout, limits=limits, headers=headers, follow_redirects=False)
    transport = Transport(limits=httpx.Limits(keepalive_expiry=KEEPALIVE_SECONDS))

    def session() -> aiohttp.ClientSession:
        # aiohttp's pool keeps idle connections without walking them per request: no cap beyond the
        # operating system's, so replies never queue behind the pool. Made in the running loop.
        connector = aiohttp.TCPConnector(
            limit=0, keepalive_timeout=KEEPALIVE_SECONDS, ssl=transport.ssl_context
        )
        return aiohttp.ClientSession(connector=connector)

    transport.client = session
    return httpx.AsyncClient(transport=transport, timeout=timeout, headers=headers, follow_redirects=False)
