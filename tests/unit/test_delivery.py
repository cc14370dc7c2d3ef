"""Delivery and upkeep: response_url posting, background tasks, log redaction."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import httpx
import pytest

from bot import logs
from bot.services.tasks import TaskTracker
from bot.slack import replies
from bot.slack.blocks.balance import Message, help_message

URL = "https://hooks.slack.com/commands/T1/2/secret"


@pytest.fixture(autouse=True)
def no_retry_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replies, "RETRY_DELAY_SECONDS", 0)


def deliver(
    answers: list[httpx.Response | Exception], message: Message | None = None
) -> tuple[bool, list[dict]]:
    sent: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def run() -> bool:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            return await replies.ReplyPoster(http).post(URL, message or help_message(), "REF12345")

    return asyncio.run(run()), sent


def test_delivered_first_time() -> None:
    ok, sent = deliver([httpx.Response(200, text="ok")])
    assert ok
    assert len(sent) == 1
    assert sent[0]["blocks"]


@pytest.mark.parametrize(
    "first", [httpx.Response(500, text="oops"), httpx.Response(429, text="slow"), httpx.ConnectError("down")]
)
def test_passing_faults_are_retried_once(first: httpx.Response | Exception) -> None:
    ok, sent = deliver([first, httpx.Response(200, text="ok")])
    assert ok
    assert len(sent) == 2
    assert sent[0] == sent[1]


def test_gives_up_after_one_retry_and_logs_the_reference(caplog: pytest.LogCaptureFixture) -> None:
    ok, sent = deliver([httpx.Response(503), httpx.Response(503)])
    assert not ok
    assert len(sent) == 2
    assert any("REF12345" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
    assert not any("hooks.slack.com" in r.getMessage() for r in caplog.records)


def test_an_expired_response_url_is_not_retried() -> None:
    ok, sent = deliver([httpx.Response(404, text="expired_url")])
    assert not ok
    assert len(sent) == 1


def test_refused_blocks_fall_back_to_text() -> None:
    ok, sent = deliver([httpx.Response(400, text="invalid_blocks"), httpx.Response(200, text="ok")])
    assert ok
    assert sent[1]["blocks"] == []
    assert sent[1]["text"] == sent[0]["text"]


def test_tracker_waits_for_work_and_cancels_what_overstays() -> None:
    async def run() -> tuple[int, list[str]]:
        tracker = TaskTracker()
        done: list[str] = []

        async def work(name: str, seconds: float) -> None:
            await asyncio.sleep(seconds)
            done.append(name)

        tracker.spawn(work("quick", 0.05), "quick")
        tracker.spawn(work("slow", 10), "slow")
        assert len(tracker) == 2
        cut = await tracker.drain(0.3)
        return cut, done

    cut, done = asyncio.run(run())
    assert cut == 1
    assert done == ["quick"]


def test_a_reply_in_flight_when_the_grace_ends_is_cut_once_and_not_sent_again() -> None:
    """A reply is not recorded anywhere: cut short, it is never retried, so never posted twice."""

    async def run() -> tuple[int, int]:
        sent: list[httpx.Request] = []
        arrived, answered = asyncio.Event(), asyncio.Event()

        async def slow_slack(request: httpx.Request) -> httpx.Response:
            sent.append(request)
            arrived.set()
            await answered.wait()  # Slack has the reply but does not answer before the grace ends
            return httpx.Response(200, text="ok")

        async with httpx.AsyncClient(transport=httpx.MockTransport(slow_slack)) as http:
            tracker = TaskTracker()
            tracker.spawn(replies.ReplyPoster(http).post(URL, help_message(), "REF12345"), "reply-REF12345")
            await arrived.wait()
            cut = await tracker.drain(0.1)  # a retry (no delay here) would have been sent by now
            answered.set()
            return cut, len(sent)

    assert asyncio.run(run()) == (1, 1)


def test_tracker_logs_a_failed_task(caplog: pytest.LogCaptureFixture) -> None:
    async def run() -> None:
        tracker = TaskTracker()

        async def boom() -> None:
            raise RuntimeError("boom")

        tracker.spawn(boom(), "boom")
        await tracker.drain(1)

    asyncio.run(run())
    assert any("background task boom failed" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "secret",
    [
        "brz_live_abcdef123456",
        "xoxb-1234-5678-abcdefghijkl",
        "xoxp-1-2-3-abcdef",
        "xoxe.xoxb-1-abcdef",
        "xapp-1-A111-222-abc",
        "hooks.slack.com/commands/T1/2/secret",
    ],
)
def test_redaction_covers_every_logger_and_tracebacks(secret: str) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.RedactingFormatter("%(name)s %(message)s"))
    logger = logging.getLogger("third_party.client")
    logger.addHandler(handler)
    try:
        logger.warning("token is %s", secret)
        try:
            raise ValueError(f"failed with {secret}")
        except ValueError:
            logger.exception("oops")
    finally:
        logger.removeHandler(handler)

    output = stream.getvalue()
    assert secret not in output
    assert output.count(logs.REDACTED) == 2


def test_configured_secrets_are_redacted_whatever_their_shape() -> None:
    logs.add_secret("plain-signing-secret-123")
    assert logs.redact("x plain-signing-secret-123 y") == f"x {logs.REDACTED} y"
    assert logs.redact("short") == "short"
