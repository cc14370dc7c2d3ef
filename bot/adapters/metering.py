"""Breeze's metering: `GET /v1/usage` and `GET /v1/api-keys/current`, through `BreezeClient.get`, so with
the balance's connection pool, retries, deadline and error mapping.

Both are extras Breeze may not offer a key. A 403, 404, 405 or 501, or an answer that cannot be
read, leaves here as `MeteringUnavailable`, for which the features that need metering step aside; a
401 stays `KeyRejected`, and passing faults the usual `BreezeError`s. Extra fields are ignored, and
every field of a request but its id may be null or missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import SecretStr

from bot import errors
from bot.adapters.breeze import (
    BreezeClient,
    error_from_response,
    is_number,
    loads,
    parse_timestamp,
    text,
    to_decimal,
)
from bot.domain.usage import (
    MAX_PAGES,
    MAX_REQUESTS_READ,
    PAGE_SIZE,
    DaySpend,
    KeyBudget,
    MeteredRequest,
    UsageReport,
    Window,
    spent_per_day,
)

T = TypeVar("T")

USAGE_PATH = "/v1/usage"
CURRENT_KEY_PATH = "/v1/api-keys/current"
UNAVAILABLE_STATUSES = frozenset({403, 404, 405, 501})
# Calls in flight at once for one question (its pages, or its days' summaries): quick, yet polite.
CONCURRENT_CALLS = 4


@dataclass(frozen=True, slots=True)
class UsagePage:
    """One answer of `/v1/usage`: the window's summary and one page of its request log."""

    cost_millicredits: int
    request_count: int
    characters: int
    total: int
    items: tuple[tuple[str | None, MeteredRequest], ...]  # (Breeze's id of the request, the request)


class MeteringClient:
    """Reads a window's usage, a day's spend and the key's own budget; raises `MeteringUnavailable`."""

    def __init__(self, breeze: BreezeClient) -> None:
        self._breeze = breeze

    async def report(
        self, api_key: SecretStr, window: Window, *, per_day: bool = False, api_key_id: str | None = None
    ) -> UsageReport:
        """The window's exact totals and its newest requests (10 pages of 100 at most); with `per_day`,
        each date's spend too. `api_key_id` keeps only the requests made with that key."""
        first = await self._page(api_key, window, 1, PAGE_SIZE, api_key_id)
        pages = min(MAX_PAGES, -(-first.total // PAGE_SIZE))
        rest = await _bounded(
            self._page(api_key, window, n, PAGE_SIZE, api_key_id) for n in range(2, pages + 1)
        )
        requests = _unique(item for page in (first, *rest) for item in page.items)[:MAX_REQUESTS_READ]
        daily = await self._daily(api_key, window, first, requests, api_key_id) if per_day else None
        return UsageReport(
            window,
            first.cost_millicredits,
            first.request_count,
            first.characters,
            first.total,
            tuple(requests),
            daily,
        )

    async def spend(self, api_key: SecretStr, window: Window, *, api_key_id: str | None = None) -> int:
        """What the window cost, exactly, in millicredits: the summary alone (a page of one request)."""
        return (await self._page(api_key, window, 1, 1, api_key_id)).cost_millicredits

    async def current_key(self, api_key: SecretStr) -> KeyBudget:
        """The calling key and its own budget."""
        with _unless_unavailable(CURRENT_KEY_PATH):
            return await self._breeze.get(CURRENT_KEY_PATH, api_key, parse_current_key)

    async def _daily(
        self,
        api_key: SecretStr,
        window: Window,
        first: UsagePage,
        requests: list[MeteredRequest],
        api_key_id: str | None,
    ) -> tuple[DaySpend, ...]:
        # Breeze's `daily` buckets count requests, not credits. When every request of the window was
        # read and their own costs add up to the summary's exact total, they give each day's spend
        # exactly and for free; otherwise one summary per day (`from` = `to`, a page of one) does,
        # exactly, at one call a day. Items alone would be cheaper but inexact past 1,000 requests.
        if (
            len(requests) >= first.total
            and sum(r.cost_millicredits for r in requests) == first.cost_millicredits
        ):
            found = spent_per_day(requests, window)
            if found is not None:
                return found
        days = window.dates()
        spent = await _bounded(self.spend(api_key, Window(day, day), api_key_id=api_key_id) for day in days)
        return tuple(DaySpend(day, cost) for day, cost in zip(days, spent, strict=True))

    async def _page(
        self, api_key: SecretStr, window: Window, page: int, size: int, api_key_id: str | None
    ) -> UsagePage:
        params: dict[str, str | int] = {
            "from": window.start.isoformat(),
            "to": window.end.isoformat(),
            "page": page,
            "page_size": size,
        }
        if api_key_id:
            params["api_key_id"] = api_key_id
        with _unless_unavailable(USAGE_PATH):
            return await self._breeze.get(USAGE_PATH, api_key, parse_usage, params)


@contextmanager
def _unless_unavailable(path: str) -> Iterator[None]:
    """Breeze's "not for this key" answers (403, 404, 405, 501, unreadable) as `MeteringUnavailable`."""
    try:
        yield
    except errors.BreezeApiError as exc:
        if exc.status in UNAVAILABLE_STATUSES:
            raise errors.MeteringUnavailable(f"{path}: {exc}", f"HTTP {exc.status}") from exc
        if isinstance(exc, errors.KeyForbidden) or exc.api_code == "RESOURCE_NOT_FOUND":
            raise errors.MeteringUnavailable(f"{path}: {exc}", exc.code) from exc
        raise
    except errors.BadResponse as exc:
        raise errors.MeteringUnavailable(f"{path}: {exc}", "unreadable answer") from exc


async def _bounded(calls: Iterable[Awaitable[T]]) -> list[T]:
    """Every call's answer in order, `CONCURRENT_CALLS` at a time; the first failure once all are done."""
    gate = asyncio.Semaphore(CONCURRENT_CALLS)

    async def one(call: Awaitable[T]) -> T:
        async with gate:
            return await call

    done = await asyncio.gather(*(one(call) for call in calls), return_exceptions=True)
    for answer in done:
        if isinstance(answer, BaseException):
            raise answer
    return [answer for answer in done if not isinstance(answer, BaseException)]


def _unique(items: Iterable[tuple[str | None, MeteredRequest]]) -> list[MeteredRequest]:
    """Requests in order, each once: a request made while the pages are read shifts the log by one."""
    seen: set[str] = set()
    kept = []
    for request_id, request in items:
        if request_id is not None:
            if request_id in seen:
                continue
            seen.add(request_id)
        kept.append(request)
    return kept


# --- parsing -------------------------------------------------------------------------------------


def _object(body: bytes, headers: Mapping[str, str], what: str) -> dict[str, Any]:
    """The answer as a JSON object; an error envelope raises its error, anything else is unreadable."""
    try:
        data = loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise errors.MeteringUnavailable(f"{what}: not valid JSON", "unreadable answer") from exc
    if not isinstance(data, dict):
        raise errors.MeteringUnavailable(f"{what}: not a JSON object", "unreadable answer")
    if data.get("ok") is False and isinstance(data.get("code"), str):
        mapped = error_from_response(200, headers, body)
        if isinstance(mapped, errors.KeyRejected):
            raise mapped
        raise errors.MeteringUnavailable(f"{what}: {mapped}", mapped.code)
    return data


def parse_usage(body: bytes, headers: Mapping[str, str]) -> UsagePage:
    """A 2xx answer of `/v1/usage`; it must have a summary with its cost."""
    data = _object(body, headers, USAGE_PATH)
    summary = data.get("summary")
    cost = (
        _millicredits(summary.get("total_cost_millicredits"), summary.get("total_cost"))
        if isinstance(summary, dict)
        else None
    )
    if not isinstance(summary, dict) or cost is None:
        raise errors.MeteringUnavailable(f"{USAGE_PATH}: no summary with a cost", "unreadable answer")
    raw = data.get("items")
    items = tuple(_item(entry) for entry in raw if isinstance(entry, dict)) if isinstance(raw, list) else ()
    count = _count(summary.get("request_count"))
    total = _count(data.get("total"))
    total = total if total is not None else count if count is not None else len(items)
    return UsagePage(
        cost_millicredits=cost,
        request_count=count if count is not None else total,
        characters=_count(summary.get("total_text_characters")) or 0,
        total=total,
        items=items,
    )


def _item(entry: dict[str, Any]) -> tuple[str | None, MeteredRequest]:
    request = MeteredRequest(
        key_id=text(entry.get("api_key_id")),
        key_name=text(entry.get("api_key_name")),
        model=text(entry.get("model")),
        cost_millicredits=_millicredits(entry.get("cost_millicredits"), entry.get("cost")) or 0,
        characters=_count(entry.get("text_characters")) or 0,
        created_at=parse_timestamp(text(entry.get("created_at"))),
    )
    return text(entry.get("id")), request


def parse_current_key(body: bytes, headers: Mapping[str, str]) -> KeyBudget:
    """A 2xx answer of `/v1/api-keys/current`; its `prefix` is never kept."""
    key = _object(body, headers, CURRENT_KEY_PATH).get("api_key")
    if not isinstance(key, dict):
        raise errors.MeteringUnavailable(f"{CURRENT_KEY_PATH}: no api_key object", "unreadable answer")
    limit, used, reserved = (
        _credits(key.get(name)) for name in ("credit_limit", "credit_used", "credit_reserved")
    )
    remaining = _credits(key.get("credit_remaining"))
    if remaining is None and limit is not None and used is not None:
        remaining = limit - used - (reserved or 0)
    return KeyBudget(text(key.get("id")), text(key.get("name")), limit, remaining, used, reserved)


def _credits(value: Any) -> Decimal | None:
    return to_decimal(value) if is_number(value) else None


def _millicredits(exact: Any, credits: Any) -> int | None:
    """Millicredits from the exact integer field, else from the credits number, else None."""
    if isinstance(exact, int) and not isinstance(exact, bool):
        return exact
    if is_number(credits):
        return int(to_decimal(credits).scaleb(3).to_integral_value())
    return None


def _count(value: Any) -> int | None:
    """A whole, non-negative number of things, else None."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
