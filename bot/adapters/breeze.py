"""Breeze Developer API adapter: `GET /v1/balance` over a shared `httpx.AsyncClient`.

`BreezeClient.get` is the one way to Breeze, with its retries, deadline and error mapping; the
metering endpoints (`bot.adapters.metering`) go through it too. Every failure leaves this module as
one of the `bot.errors.BreezeError` types.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from email.utils import parsedate_to_datetime
from typing import Any, TypeGuard, TypeVar

import httpx
from pydantic import SecretStr

from bot import errors
from bot.domain.balances import Balance, Topup
from bot.logs import add_secret

log = logging.getLogger(__name__)

T = TypeVar("T")
Params = Mapping[str, str | int]

BALANCE_PATH = "/v1/balance"
KEY_ID_HEADER = "x-breeze-api-key-id"
MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_TEXT = 200
_THOUSANDTH = Decimal("0.001")


# Retried, because the balance call is idempotent: connection failures and these statuses,
# with full-jitter exponential backoff, all inside the one deadline. Never other 4xx.
RETRY_STATUSES = frozenset({502, 503, 504})
MAX_ATTEMPTS = 4
BACKOFF_BASE_SECONDS = 0.1
BACKOFF_CAP_SECONDS = 1.0
MIN_ATTEMPT_SECONDS = 0.5  # no retry unless at least this much of the deadline is left after waiting


class BreezeClient:
    """Reads balances from Breeze; one instance per process, sharing one connection pool."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        timeout_seconds: float,
        *,
        backoff_base_seconds: float = BACKOFF_BASE_SECONDS,
    ) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._deadline = timeout_seconds
        self._backoff_base = backoff_base_seconds

    async def get_balance(self, api_key: SecretStr) -> Balance:
        """Fetch the balance the key can see, retrying passing faults; raise a `BreezeError`."""
        return await self.get(BALANCE_PATH, api_key, parse_balance)

    async def get(
        self,
        path: str,
        api_key: SecretStr,
        parse: Callable[[bytes, Mapping[str, str]], T],
        params: Params | None = None,
    ) -> T:
        """GET `path` with the key, `parse` a 2xx answer, retry passing faults; raise a `BreezeError`."""
        # Workspace keys come from the database in any shape; keep each out of the logs too.
        add_secret(api_key.get_secret_value())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._deadline
        attempt = 1
        while True:
            try:
                return await self._attempt(path, params, api_key, parse, deadline)
            except errors.BreezeError as exc:
                wait = self._retry_wait(exc, attempt, deadline - loop.time())
                if wait is None:
                    raise
                log.info("Breeze: %s; retrying in %.2f s (attempt %d)", exc.code, wait, attempt + 1)
                await asyncio.sleep(wait)
                attempt += 1

    async def _attempt(
        self,
        path: str,
        params: Params | None,
        api_key: SecretStr,
        parse: Callable[[bytes, Mapping[str, str]], T],
        deadline: float,
    ) -> T:
        headers = {"xi-api-key": api_key.get_secret_value(), "accept": "application/json"}
        url = self._base + path
        try:
            async with asyncio.timeout_at(deadline):
                async with self._http.stream("GET", url, params=params, headers=headers) as response:
                    body = await _read_capped(response)
        except httpx.ConnectTimeout as exc:
            raise errors.BreezeUnreachable("could not connect to Breeze in time", "slow_connect") from exc
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise errors.BreezeTimeout(f"no answer from Breeze within {self._deadline:g} s") from exc
        except httpx.DecodingError as exc:
            raise errors.BadResponse("Breeze's answer could not be decoded") from exc
        except httpx.TransportError as exc:
            reason = _unreachable_reason(exc)
            raise errors.BreezeUnreachable(
                f"could not reach Breeze ({reason}): {type(exc).__name__}", reason
            ) from exc
        if 200 <= response.status_code < 300:
            return parse(body, response.headers)
        raise error_from_response(response.status_code, response.headers, body)

    def _retry_wait(self, error: errors.BreezeError, attempt: int, remaining: float) -> float | None:
        """Seconds to wait before trying again, or None when this error is final."""
        if attempt >= MAX_ATTEMPTS:
            return None
        if isinstance(error, errors.BreezeApiError) and error.status == 429:
            wait = getattr(error, "retry_after", None)
            if wait is None:
                return None
        elif (isinstance(error, errors.BreezeUnreachable) and error.reason != "tls") or (
            isinstance(error, errors.BreezeApiError) and error.status in RETRY_STATUSES
        ):
            wait = random.uniform(0, min(BACKOFF_CAP_SECONDS, self._backoff_base * 2 ** (attempt - 1)))  # noqa: S311
        else:
            return None
        return wait if wait + MIN_ATTEMPT_SECONDS <= remaining else None


def _unreachable_reason(exc: httpx.TransportError) -> str:
    """How the connection failed: refused, dropped or tls (the cause chain names TLS failures)."""
    chain: list[BaseException] = [exc]
    while (cause := chain[-1].__cause__ or chain[-1].__context__) is not None and len(chain) < 8:
        chain.append(cause)
    if any(isinstance(e, ssl.SSLError) or "ssl" in type(e).__name__.lower() for e in chain) or (
        "TLS" in str(exc) or "CERTIFICATE" in str(exc).upper()
    ):
        return "tls"
    if isinstance(exc, httpx.ConnectError):
        return "refused"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return "dropped"
    return "other"


async def _read_capped(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise errors.BadResponse(f"Breeze's answer is larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def loads(body: bytes) -> Any:
    """JSON, refusing NaN and Infinity (no number of credits is either)."""

    def reject(constant: str) -> None:
        raise ValueError(f"{constant} is not a number")

    return json.loads(body, parse_constant=reject)


def is_number(value: Any) -> TypeGuard[int | float]:
    """A JSON number (a bool is not one)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def to_decimal(value: int | float) -> Decimal:
    """An exact decimal for a JSON number, rounded to the millicredit (no float noise)."""
    if isinstance(value, int):
        return Decimal(value)
    exact = Decimal(repr(value))
    with localcontext() as ctx:
        ctx.prec = max(28, exact.adjusted() + 8)
        return exact.quantize(_THOUSANDTH) if exact else Decimal(0)


def text(value: Any) -> str | None:
    """A trimmed, bounded string from an answer, or None for anything else (or blank)."""
    return value.strip()[:MAX_TEXT] if isinstance(value, str) and value.strip() else None


def parse_balance(body: bytes, headers: Mapping[str, str]) -> Balance:
    """Turn a 2xx body into a `Balance`, or raise `BadResponse` (or the error it carries)."""
    try:
        data = loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise errors.BadResponse("Breeze's answer is not valid JSON") from exc
    if not isinstance(data, dict):
        raise errors.BadResponse("Breeze's answer is not a JSON object")
    if data.get("ok") is False and isinstance(data.get("code"), str):
        raise error_from_response(200, headers, body)
    credits = _credits(data)
    topups, ignored = _topups(data.get("topups"))
    return Balance(
        credits=credits, topups=topups, key_id=text(headers.get(KEY_ID_HEADER)), ignored_topups=ignored
    )


def _credits(data: dict[str, Any]) -> Decimal:
    """`balance` is required; the exact `balance_millicredits`, when given, says it precisely."""
    balance = data.get("balance")
    if not is_number(balance):
        raise errors.BadResponse("Breeze's answer has no numeric `balance`")
    millicredits = data.get("balance_millicredits")
    if isinstance(millicredits, int) and not isinstance(millicredits, bool):
        return Decimal(f"{millicredits}e-3") if millicredits else Decimal(0)  # exact, unlike scaleb
    return to_decimal(balance)


def _topups(raw: Any) -> tuple[tuple[Topup, ...], int]:
    if not isinstance(raw, list):
        return (), 0
    topups = tuple(_topup(item) for item in raw if isinstance(item, dict))
    return topups, len(raw) - len(topups)


def _topup(item: dict[str, Any]) -> Topup:
    amount = item.get("amount")
    raw_created = text(item.get("created_at"))
    return Topup(
        topup_id=text(item.get("topup_id")),
        amount=to_decimal(amount) if is_number(amount) else None,
        raw_status=text(item.get("status")),
        created_at=parse_timestamp(raw_created),
        raw_created_at=raw_created,
    )


def parse_timestamp(raw: str | None) -> datetime | None:
    """An aware UTC datetime for an ISO 8601 string (or unix seconds), else None."""
    if raw is None:
        return None
    try:
        if raw.isdigit():
            parsed = datetime.fromtimestamp(int(raw), tz=UTC)
        else:
            parsed = datetime.fromisoformat(raw)
            parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        parsed.timestamp()
    except (ValueError, OverflowError, OSError):
        return None
    return parsed


def error_from_response(status: int, headers: Mapping[str, str], body: bytes) -> errors.BreezeApiError:
    """Map an error answer to its type: by `ErrorResponse.code` first, HTTP status second."""
    code, detail = _error_fields(body)
    kind = _type_for(code, status)
    if kind is errors.RateLimited:
        return errors.RateLimited(status, code, detail, retry_after=retry_after_seconds(headers))
    return kind(status, code, detail)


_TYPE_BY_CODE: dict[str, type[errors.BreezeApiError]] = {
    "FORBIDDEN": errors.KeyForbidden,
    "RATE_LIMITED": errors.RateLimited,
    "GENERATION_CAPACITY_EXCEEDED": errors.BreezeUnavailable,
    "LLM_CONFIG_NOT_FOUND": errors.BreezeUnavailable,
    "UPSTREAM_BILLING_ERROR": errors.BillingUpstreamError,
    "UPSTREAM_TIMEOUT": errors.BillingUpstreamError,
    # Documented codes with no special meaning for a balance check: shown with their detail.
    "RESOURCE_NOT_FOUND": errors.BreezeApiError,
    "BAD_REQUEST": errors.BreezeApiError,
    "VALIDATION_ERROR": errors.BreezeApiError,
    "BILLING_INSUFFICIENT_CREDITS": errors.BreezeApiError,
}

_TYPE_BY_STATUS: dict[int, type[errors.BreezeApiError]] = {
    401: errors.KeyRejected,
    403: errors.KeyForbidden,
    429: errors.RateLimited,
    502: errors.BillingUpstreamError,
    503: errors.BreezeUnavailable,
    504: errors.BillingUpstreamError,
}


def _type_for(code: str | None, status: int) -> type[errors.BreezeApiError]:
    if code is not None:
        if code.startswith("AUTH_"):
            return errors.KeyRejected
        if code in _TYPE_BY_CODE:
            return _TYPE_BY_CODE[code]
    return _TYPE_BY_STATUS.get(status, errors.BreezeApiError)


def _error_fields(body: bytes) -> tuple[str | None, str | None]:
    try:
        data = loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    code = text(data.get("code"))
    detail = text(data.get("detail")) or text(data.get("error"))
    return (code.upper() if code else None), detail


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP date), if any."""
    value = (headers.get("retry-after") or "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), 86_400.0)
