"""The Breeze adapter: parsing, error mapping by code then status, and the HTTP call itself."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot import errors
from bot.adapters import breeze
from bot.domain.balances import TopupStatus


def parse(body: Any, headers: dict[str, str] | None = None) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return breeze.parse_balance(raw, httpx.Headers(headers or {}))


# --- parsing a balance ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "credits"),
    [
        ({"balance": 1234567.891, "balance_millicredits": 1234567891}, Decimal("1234567.891")),
        ({"balance": 0.30000000000000004}, Decimal("0.3")),
        ({"balance": 12}, Decimal(12)),
        ({"balance": -12.5, "balance_millicredits": -12500}, Decimal("-12.5")),
        ({"balance": 0, "balance_millicredits": 0}, Decimal(0)),
        ({"balance": 1.5, "balance_millicredits": None}, Decimal("1.5")),
        # The exact figure wins where the two disagree (the float is rounded).
        ({"balance": 0.1, "balance_millicredits": 123}, Decimal("0.123")),
        ({"balance": 1, "balance_millicredits": 10**40 + 7}, Decimal(f"{10**40 + 7}e-3")),
    ],
)
def test_balance_in_exact_credits(body: dict[str, Any], credits: Decimal) -> None:
    assert parse(body).credits == credits


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Maintenance</body></html>",
        b"{not json",
        b"",
        b"[1, 2]",
        b'"balance"',
        b'{"topups": []}',
        b'{"balance_millicredits": 5000}',
        b'{"balance": "12.5"}',
        b'{"balance": null}',
        b'{"balance": true}',
        b'{"balance": NaN}',
        b'{"balance": Infinity}',
        b"\xff\xfe\x00",
        b"[" * 100_000,
    ],
)
def test_unreadable_answers(body: bytes) -> None:
    with pytest.raises(errors.BadResponse):
        parse(body)


def test_an_error_body_with_status_200_is_mapped_by_its_code() -> None:
    with pytest.raises(errors.KeyRejected):
        parse({"ok": False, "code": "AUTH_INVALID_SESSION", "detail": "expired", "error": "unauthorized"})


def test_topups_tolerate_nulls_junk_and_unknown_fields() -> None:
    balance = parse(
        {
            "balance": 1,
            "extra": {"whatever": [1, 2]},
            "topups": [
                {"topup_id": None, "amount": None, "status": None, "created_at": None},
                {"amount": "ten", "status": 5, "created_at": 1700000000, "new_field": True},
                "junk",
                42,
                {
                    "topup_id": "tp_9",
                    "amount": 10.25,
                    "status": "Succeeded",
                    "created_at": "2026-01-02T03:04:05Z",
                },
            ],
        }
    )

    assert balance.ignored_topups == 2
    empty, wrong_types, good = balance.topups
    assert (empty.amount, empty.raw_status, empty.created_at, empty.status) == (
        None,
        None,
        None,
        TopupStatus.UNKNOWN,
    )
    assert (wrong_types.amount, wrong_types.raw_status, wrong_types.created_at) == (None, None, None)
    assert good.amount == Decimal("10.25")
    assert good.status is TopupStatus.SUCCEEDED
    assert good.created_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize("topups", [None, {}, "none", 3])
def test_topups_that_are_not_a_list_mean_none(topups: Any) -> None:
    balance = parse({"balance": 1, "topups": topups})
    assert balance.topups == ()
    assert balance.ignored_topups == 0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-20T16:05:00Z", datetime(2026, 11, 20, 16, 5, tzinfo=UTC)),
        ("2026-11-20T18:05:00+02:00", datetime(2026, 11, 20, 16, 5, tzinfo=UTC)),
        ("2026-11-20T16:05:00", datetime(2026, 11, 20, 16, 5, tzinfo=UTC)),  # naive means UTC
        ("2026-11-20 16:05:00.123456+00:00", datetime(2026, 11, 20, 16, 5, 0, 123456, tzinfo=UTC)),
        ("1700000000", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        ("yesterday", None),
        ("0001-01-01T00:00:00+05:00", None),
        ("9" * 40, None),
        (None, None),
    ],
)
def test_timestamps(raw: str | None, expected: datetime | None) -> None:
    assert breeze.parse_timestamp(raw) == expected


def test_newest_first_with_undated_last() -> None:
    balance = parse(
        {
            "balance": 1,
            "topups": [
                {"topup_id": "old", "created_at": "2025-01-01T00:00:00Z"},
                {"topup_id": "undated"},
                {"topup_id": "new", "created_at": "2026-01-01T00:00:00Z"},
                {"topup_id": "garbled", "created_at": "soon"},
            ],
        }
    )
    assert [t.topup_id for t in balance.topups_newest_first()] == ["new", "old", "undated", "garbled"]


def test_key_id_header() -> None:
    assert parse({"balance": 1}, {"x-breeze-api-key-id": " key_123 "}).key_id == "key_123"
    assert parse({"balance": 1}).key_id is None
    assert parse({"balance": 1}, {"x-breeze-api-key-id": ""}).key_id is None


# --- mapping errors -------------------------------------------------------------------------------


def error(status: int, body: Any = b"", headers: dict[str, str] | None = None) -> errors.BreezeApiError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return breeze.error_from_response(status, httpx.Headers(headers or {}), raw)


def envelope(code: str, detail: str = "detail") -> dict[str, Any]:
    return {"ok": False, "code": code, "detail": detail, "error": "error", "meta": None}


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("AUTH_REQUIRED", 401, errors.KeyRejected),
        ("AUTH_INVALID_SESSION", 401, errors.KeyRejected),
        ("AUTH_SESSION_EXPIRED", 401, errors.KeyRejected),
        ("AUTH_USER_UNAVAILABLE", 401, errors.KeyRejected),
        ("AUTH_CONFIG_MISSING", 500, errors.KeyRejected),  # the code decides, whatever the status
        ("FORBIDDEN", 403, errors.KeyForbidden),
        ("RATE_LIMITED", 429, errors.RateLimited),
        ("UPSTREAM_BILLING_ERROR", 502, errors.BillingUpstreamError),
        ("UPSTREAM_TIMEOUT", 504, errors.BillingUpstreamError),
        ("GENERATION_CAPACITY_EXCEEDED", 503, errors.BreezeUnavailable),
        ("LLM_CONFIG_NOT_FOUND", 503, errors.BreezeUnavailable),
        ("BAD_REQUEST", 400, errors.BreezeApiError),
        ("VALIDATION_ERROR", 422, errors.BreezeApiError),
        ("RESOURCE_NOT_FOUND", 404, errors.BreezeApiError),
        ("BILLING_INSUFFICIENT_CREDITS", 402, errors.BreezeApiError),
        ("rate_limited", 400, errors.RateLimited),  # codes are compared case-insensitively
    ],
)
def test_code_first(code: str, status: int, kind: type[errors.BreezeApiError]) -> None:
    mapped = error(status, envelope(code))
    assert type(mapped) is kind
    assert mapped.code == code.upper()
    assert mapped.status == status


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, errors.KeyRejected),
        (403, errors.KeyForbidden),
        (429, errors.RateLimited),
        (502, errors.BillingUpstreamError),
        (503, errors.BreezeUnavailable),
        (504, errors.BillingUpstreamError),
        (500, errors.BreezeApiError),
        (418, errors.BreezeApiError),
        (301, errors.BreezeApiError),
    ],
)
@pytest.mark.parametrize(
    "body", [b"", b"<html>proxy error</html>", b"{broken", envelope("SOMETHING_NEW"), [1], {"code": 5}]
)
def test_status_second(status: int, kind: type[errors.BreezeApiError], body: Any) -> None:
    mapped = error(status, body)
    assert type(mapped) is kind
    expected_code = (
        "SOMETHING_NEW"
        if isinstance(body, dict) and body.get("code") == "SOMETHING_NEW"
        else f"HTTP_{status}"
    )
    assert mapped.code == expected_code


def test_detail_falls_back_to_error_and_is_bounded() -> None:
    assert error(400, {"code": "X", "detail": "", "error": "the error"}).detail == "the error"
    assert (
        len(error(400, {"code": "X", "detail": "d" * 10_000, "error": "e"}).detail or "") == breeze.MAX_TEXT
    )


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("30", 30.0),
        ("1.5", 1.5),
        ("-4", 0.0),
        ("999999", 86_400.0),
        ("soon", None),
        ("", None),
        ("nan", None),
    ],
)
def test_retry_after_seconds(header: str, seconds: float | None) -> None:
    mapped = error(429, envelope("RATE_LIMITED"), {"retry-after": header})
    assert isinstance(mapped, errors.RateLimited)
    assert mapped.retry_after == seconds


def test_retry_after_as_http_date() -> None:
    when = format_datetime(datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=120), usegmt=True)
    mapped = error(429, b"", {"retry-after": when})
    assert isinstance(mapped, errors.RateLimited)
    assert mapped.retry_after is not None
    assert 100 <= mapped.retry_after <= 121


# --- the HTTP call ----------------------------------------------------------------------------------

KEY = SecretStr("brz_unit_test_key")


def get_balance(
    handler: Callable[[httpx.Request], Any], base_url: str = "https://breeze.test", timeout: float = 5
) -> Any:
    async def run() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            return await breeze.BreezeClient(http, base_url, timeout).get_balance(KEY)

    return asyncio.run(run())


@pytest.mark.parametrize(
    "base_url", ["https://breeze.test", "https://breeze.test/", "https://gw.test/breeze"]
)
def test_get_sends_the_key_in_a_header(base_url: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"balance": 7}, headers={"x-breeze-api-key-id": "key_1"})

    balance = get_balance(handler, base_url)

    assert balance.credits == 7
    assert balance.key_id == "key_1"
    assert seen[0].method == "GET"
    assert str(seen[0].url) == base_url.rstrip("/") + "/v1/balance"
    assert seen[0].headers["xi-api-key"] == "brz_unit_test_key"
    assert "brz_unit_test_key" not in str(seen[0].url)


def test_error_status_is_mapped() -> None:
    with pytest.raises(errors.RateLimited) as caught:
        get_balance(
            lambda _: httpx.Response(429, json=envelope("RATE_LIMITED"), headers={"retry-after": "7"})
        )
    assert caught.value.retry_after == 7


@pytest.mark.parametrize(
    ("exception", "kind"),
    [
        (httpx.ConnectTimeout("slow"), errors.BreezeUnreachable),  # retried like a refused connection
        (httpx.ReadTimeout("slow"), errors.BreezeTimeout),
        (httpx.ConnectError("refused"), errors.BreezeUnreachable),
        (httpx.RemoteProtocolError("reset"), errors.BreezeUnreachable),
        (httpx.ReadError("reset"), errors.BreezeUnreachable),
    ],
)
def test_transport_failures(exception: Exception, kind: type[errors.BreezeError]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exception

    with pytest.raises(kind):
        get_balance(handler)


def test_total_deadline_bounds_a_slow_answer() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, json={"balance": 1})

    with pytest.raises(errors.BreezeTimeout):
        get_balance(handler, timeout=0.2)


def test_oversized_answer_is_unreadable() -> None:
    body = b'{"balance": 1, "pad": "' + b"x" * (breeze.MAX_BODY_BYTES + 10) + b'"}'
    with pytest.raises(errors.BadResponse):
        get_balance(lambda _: httpx.Response(200, content=body))


# --- retries ---------------------------------------------------------------------------------------


def scripted(
    *answers: httpx.Response | Exception,
) -> tuple[Callable[[httpx.Request], httpx.Response], list[float]]:
    """A Breeze that gives these answers in order (the last one again and again); records when."""
    calls: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(asyncio.get_running_loop().time())
        answer = answers[min(len(calls), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler, calls


OK = httpx.Response(200, json={"balance": 7})


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(503, json={"code": "GENERATION_CAPACITY_EXCEEDED", "detail": "busy", "error": "x"}),
        httpx.Response(502, text="<html>bad gateway</html>"),
        httpx.Response(504, json={"code": "UPSTREAM_TIMEOUT", "detail": "slow", "error": "x"}),
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("slow to connect"),
        httpx.RemoteProtocolError("reset"),
    ],
)
def test_passing_faults_are_retried_until_breeze_answers(failure: httpx.Response | Exception) -> None:
    handler, calls = scripted(failure, failure, OK)

    assert get_balance(handler).credits == 7
    assert len(calls) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 500])
def test_other_errors_are_not_retried(status: int) -> None:
    handler, calls = scripted(httpx.Response(status, json={"code": "X", "detail": "no", "error": "x"}), OK)

    with pytest.raises(errors.BreezeApiError):
        get_balance(handler)
    assert len(calls) == 1


def test_retries_stop_after_a_few_attempts() -> None:
    handler, calls = scripted(httpx.Response(503))

    with pytest.raises(errors.BreezeUnavailable):
        get_balance(handler, timeout=20)
    assert len(calls) == breeze.MAX_ATTEMPTS


def test_no_retry_is_started_that_the_deadline_could_not_finish(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(breeze.random, "uniform", lambda low, high: high)  # the longest jittered wait
    handler, calls = scripted(httpx.ConnectError("refused"))

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            client = breeze.BreezeClient(http, "https://breeze.test", 1.2, backoff_base_seconds=0.4)
            with pytest.raises(errors.BreezeUnreachable):
                await client.get_balance(KEY)

    asyncio.run(run())

    # Waits of 0.4 s then 0.8 s: the second would leave less than MIN_ATTEMPT_SECONDS of 1.2 s.
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 0.4


def test_rate_limits_are_retried_after_the_time_breeze_asks_when_it_fits() -> None:
    limited = httpx.Response(429, headers={"retry-after": "0.3"}, json={"code": "RATE_LIMITED", "error": "x"})
    handler, calls = scripted(limited, OK)

    assert get_balance(handler).credits == 7
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 0.3


@pytest.mark.parametrize("headers", [{"retry-after": "30"}, {}])
def test_rate_limits_beyond_the_deadline_or_without_a_time_are_not_retried(headers: dict[str, str]) -> None:
    handler, calls = scripted(
        httpx.Response(429, headers=headers, json={"code": "RATE_LIMITED", "error": "x"}), OK
    )

    with pytest.raises(errors.RateLimited):
        get_balance(handler, timeout=5)
    assert len(calls) == 1
