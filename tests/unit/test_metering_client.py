"""The metering adapter: `/v1/usage` paged and summed, `/v1/api-keys/current`, and when metering is unavailable."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import pytest
from pydantic import SecretStr

from bot import errors
from bot.adapters.breeze import BreezeClient
from bot.adapters.metering import MeteringClient
from bot.domain.usage import DaySpend, Window

KEY = SecretStr("brz_unit_test_metering_key")
WEEK = Window(date(2026, 11, 28), date(2026, 12, 4))
T = TypeVar("T")


def run(
    handler: Callable[[httpx.Request], httpx.Response],
    call: Callable[[MeteringClient], Coroutine[Any, Any, T]],
) -> T:
    async def go() -> T:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            client = BreezeClient(http, "https://breeze.test", 5, backoff_base_seconds=0.01)
            return await call(MeteringClient(client))

    return asyncio.run(go())


def item(n: int, cost: int, at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"req_{n}",
        "endpoint": "/v1/text-to-speech/voc_1",
        "method": "POST",
        "status": 200,
        "api_key_id": "key_prod",
        "api_key_name": "prod",
        "api_key_prefix": "brz_live",
        "model": "bluebell-v1-en",
        "cost": cost / 1000,
        "cost_millicredits": cost,
        "text_characters": 10,
        "created_at": at.isoformat().replace("+00:00", "Z"),
        **extra,
    }


class Usage:
    """A tiny `/v1/usage`: pages of `items` (newest first) under one summary; records every query."""

    def __init__(
        self, items: list[dict[str, Any]], total: int | None = None, cost: int | None = None
    ) -> None:
        self.items = items
        self.total = len(items) if total is None else total
        self.cost = sum(i["cost_millicredits"] or 0 for i in items) if cost is None else cost
        self.queries: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/usage"
        query = dict(request.url.params)
        self.queries.append(query)
        if query["from"] == query["to"] and query["page_size"] == "1":
            day = date.fromisoformat(query["from"])
            spent = sum(
                i["cost_millicredits"] or 0 for i in self.items if i["created_at"].startswith(day.isoformat())
            )
            return httpx.Response(200, json=body([], spent, 1))
        page, size = int(query["page"]), int(query["page_size"])
        return httpx.Response(
            200, json=body(self.items[(page - 1) * size : page * size], self.cost, self.total)
        )


def body(items: list[dict[str, Any]], cost: int, total: int) -> dict[str, Any]:
    return {
        "summary": {
            "request_count": total,
            "total_text_characters": 10 * total,
            "total_billable_units": total,
            "total_cost": cost / 1000,
            "total_cost_millicredits": cost,
            "something_new": {"nested": True},
        },
        "total": total,
        "page": 1,
        "page_size": 100,
        "window_days": 7,
        "daily": [{"date": "2026-12-01", "request_count": total}],
        "items": items,
    }


def spread(count: int, cost: int = 1_000) -> list[dict[str, Any]]:
    """`count` requests evenly over the week, newest first."""
    end = datetime(2026, 12, 4, 23, 59, tzinfo=UTC)
    step = timedelta(days=WEEK.days) / count
    return [item(n, cost, end - step * n) for n in range(count)]


# --- the request log -----------------------------------------------------------------------------


def test_a_report_pages_through_the_log_by_100_with_the_key_in_a_header_only() -> None:
    usage = Usage(spread(250))
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return usage(request)

    report = run(handler, lambda m: m.report(KEY, WEEK))

    assert [(q["page"], q["page_size"]) for q in usage.queries] == [("1", "100"), ("2", "100"), ("3", "100")]
    assert all((q["from"], q["to"]) == ("2026-11-28", "2026-12-04") for q in usage.queries)
    assert all("api_key_id" not in q for q in usage.queries)
    assert all(r.headers["xi-api-key"] == KEY.get_secret_value() for r in seen)
    assert all(KEY.get_secret_value() not in str(r.url) for r in seen)
    assert (report.cost_millicredits, report.total, report.read) == (250_000, 250, 250)
    assert report.complete
    assert report.requests[0].key_name == "prod"
    assert report.requests[0].created_at == datetime(2026, 12, 4, 23, 59, tzinfo=UTC)
    assert report.daily is None


def test_a_report_reads_at_most_ten_pages_and_keeps_the_exact_totals() -> None:
    usage = Usage(spread(1_200), total=52_340, cost=52_340_123)

    report = run(usage, lambda m: m.report(KEY, WEEK))

    assert len(usage.queries) == 10
    assert (report.read, report.total, report.cost_millicredits) == (1_000, 52_340, 52_340_123)
    assert report.credits == Decimal("52340.123")
    assert not report.complete


def test_a_report_counts_a_request_seen_on_two_pages_once() -> None:
    items = spread(150)
    pages = {1: items[:100], 2: [items[99], *items[100:]]}  # a new request shifted the log by one

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=body(pages[int(request.url.params["page"])], 150_000, 150))

    report = run(handler, lambda m: m.report(KEY, WEEK))

    assert report.read == 150


def test_a_filter_by_key_is_sent() -> None:
    usage = Usage(spread(3))

    spent = run(usage, lambda m: m.spend(KEY, WEEK, api_key_id="key_prod"))

    assert spent == 3_000
    assert usage.queries == [
        {"from": "2026-11-28", "to": "2026-12-04", "page": "1", "page_size": "1", "api_key_id": "key_prod"}
    ]


# --- per-day spend -------------------------------------------------------------------------------


def test_per_day_spend_comes_free_from_a_complete_log_that_adds_up() -> None:
    usage = Usage(spread(70))

    report = run(usage, lambda m: m.report(KEY, WEEK, per_day=True))

    assert len(usage.queries) == 1
    assert report.daily is not None
    assert sum(d.millicredits for d in report.daily) == 70_000
    assert [d.day for d in report.daily] == list(WEEK.dates())


def test_per_day_spend_asks_one_summary_a_day_when_the_log_is_cut_short() -> None:
    usage = Usage(spread(1_200))

    report = run(usage, lambda m: m.report(KEY, WEEK, per_day=True))

    summaries = [q for q in usage.queries if q["page_size"] == "1"]
    assert [(q["from"], q["to"]) for q in summaries] == [(d.isoformat(), d.isoformat()) for d in WEEK.dates()]
    assert report.daily is not None
    on_the_4th = sum(i["cost_millicredits"] for i in usage.items if i["created_at"].startswith("2026-12-04"))
    assert report.daily[-1] == DaySpend(date(2026, 12, 4), on_the_4th)
    assert sum(d.millicredits for d in report.daily) == 1_200_000


def test_per_day_spend_asks_the_summaries_when_the_items_do_not_add_up() -> None:
    items = spread(5)
    items[0]["cost_millicredits"] = items[0]["cost"] = None  # a cost Breeze did not give
    usage = Usage(items, cost=5_000)

    report = run(usage, lambda m: m.report(KEY, WEEK, per_day=True))

    assert len([q for q in usage.queries if q["page_size"] == "1"]) == 7
    assert report.daily is not None


# --- what Breeze may leave out -------------------------------------------------------------------


def test_nulls_missing_fields_and_strangers_are_tolerated() -> None:
    at = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    items = [
        {"id": "r1", "endpoint": "/v1/x", "method": "POST", "status": 200},
        {**item(2, 0, at), "api_key_name": None, "model": None, "cost_millicredits": None, "cost": 1.5},
        {**item(3, 250, at), "created_at": "yesterday", "text_characters": None},
        "not an object",
    ]
    answer = {"summary": {"total_cost": 12.5}, "items": items}

    report = run(lambda _: httpx.Response(200, json=answer), lambda m: m.report(KEY, WEEK))

    assert report.cost_millicredits == 12_500
    assert report.total == 3
    assert report.request_count == 3
    first, second, third = report.requests
    assert (first.key_id, first.model, first.cost_millicredits, first.created_at) == (None, None, 0, None)
    assert (second.key_label, second.model, second.cost_millicredits) == ("key_prod", None, 1_500)
    assert (third.characters, third.created_at) == (0, None)


@pytest.mark.parametrize("status", [403, 404, 405, 501])
@pytest.mark.parametrize("path", ["usage", "current"])
def test_metering_is_unavailable_when_breeze_does_not_offer_it(status: int, path: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"ok": False, "code": "RESOURCE_NOT_FOUND", "detail": "no"})

    with pytest.raises(errors.MeteringUnavailable) as caught:
        run(handler, lambda m: m.report(KEY, WEEK) if path == "usage" else m.current_key(KEY))
    assert caught.value.reason == f"HTTP {status}"


@pytest.mark.parametrize(
    "answer",
    [
        b"<html>Gateway</html>",
        b"",
        b"[]",
        b'{"items": []}',
        b'{"summary": {"request_count": 3}}',
        b'{"summary": "none"}',
        b'{"ok": false, "code": "FORBIDDEN", "detail": "no", "error": "forbidden"}',
    ],
)
def test_an_unreadable_usage_answer_means_unavailable(answer: bytes) -> None:
    with pytest.raises(errors.MeteringUnavailable):
        run(lambda _: httpx.Response(200, content=answer), lambda m: m.report(KEY, WEEK))


@pytest.mark.parametrize("answer", [b"{}", b'{"api_key": null}', b"not json"])
def test_an_unreadable_key_answer_means_unavailable(answer: bytes) -> None:
    with pytest.raises(errors.MeteringUnavailable):
        run(lambda _: httpx.Response(200, content=answer), lambda m: m.current_key(KEY))


def test_a_rejected_key_stays_the_usual_error() -> None:
    rejected = {"ok": False, "code": "AUTH_INVALID_SESSION", "detail": "bad key", "error": "unauthorized"}

    with pytest.raises(errors.KeyRejected):
        run(lambda _: httpx.Response(401, json=rejected), lambda m: m.report(KEY, WEEK))
    with pytest.raises(errors.KeyRejected):
        run(lambda _: httpx.Response(200, json=rejected), lambda m: m.current_key(KEY))


def test_passing_faults_are_retried_as_for_the_balance() -> None:
    answers = [httpx.Response(503), httpx.Response(502), httpx.Response(200, json=body([], 5, 0))]
    asked: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(1)
        return answers[len(asked) - 1]

    assert run(handler, lambda m: m.spend(KEY, WEEK)) == 5
    assert len(asked) == 3


def test_other_failures_are_the_usual_errors() -> None:
    with pytest.raises(errors.RateLimited):
        run(lambda _: httpx.Response(429, json={"code": "RATE_LIMITED"}), lambda m: m.spend(KEY, WEEK))


# --- the key's own budget ------------------------------------------------------------------------


def test_the_keys_own_budget() -> None:
    answer = {
        "api_key": {
            "id": "key_prod",
            "name": "prod",
            "prefix": "brz_live_abc",
            "status": "active",
            "credit_limit": 5000.0,
            "credit_used": 3750.5,
            "credit_reserved": 0.0,
            "credit_remaining": 1249.5,
            "future": [1, 2],
        }
    }
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=answer)

    budget = run(handler, lambda m: m.current_key(KEY))

    assert seen[0].url.path == "/v1/api-keys/current"
    assert (budget.key_id, budget.name) == ("key_prod", "prod")
    assert (budget.limit, budget.remaining, budget.used) == (
        Decimal(5000),
        Decimal("1249.5"),
        Decimal("3750.5"),
    )
    assert budget.has_limit
    assert "brz_live_abc" not in repr(budget)  # the prefix is never kept


@pytest.mark.parametrize(
    "key",
    [
        {"id": "key_prod", "name": "prod", "credit_limit": None, "credit_remaining": None},
        {"id": "key_prod"},
        {"id": None, "name": None, "credit_limit": "lots"},
    ],
)
def test_a_key_without_its_own_budget(key: dict[str, Any]) -> None:
    budget = run(lambda _: httpx.Response(200, json={"api_key": key}), lambda m: m.current_key(KEY))

    assert not budget.has_limit
    assert budget.limit is None


def test_what_is_left_is_worked_out_when_breeze_leaves_it_out() -> None:
    key = {"id": "key_prod", "credit_limit": 100, "credit_used": 30.25, "credit_reserved": 5}

    budget = run(lambda _: httpx.Response(200, json={"api_key": key}), lambda m: m.current_key(KEY))

    assert budget.remaining == Decimal("64.75")
