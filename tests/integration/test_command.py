"""/breeze-balance end to end: signed requests into the running app, fakes on loopback."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from tests.conftest import API_KEY, BALANCE_BODY, AppFactory, ask, auth_test_ok, texts
from tests.fakes import FakeServer, Reply, SlackClient


def block(payload: dict[str, Any], block_id: str) -> dict[str, Any]:
    return next(b for b in payload["blocks"] if b.get("block_id") == block_id)


def test_balance_reply_is_ephemeral_formatted_and_ordered(
    slack: SlackClient, hooks: FakeServer, breeze: FakeServer, response_url: str
) -> None:
    reply = ask(slack, hooks, response_url).json()

    assert reply["response_type"] == "ephemeral"
    assert reply["text"] == "Breeze balance: 1,234,567.891 credits"
    assert "*1,234,567.891 credits*" in block(reply, "balance_amount")["text"]["text"]
    topups = block(reply, "balance_topups")["text"]["text"].splitlines()
    assert topups[0] == "*Recent top-ups*"
    # Newest first, whatever order the API used; each with its status marker and a Slack date.
    assert topups[1].startswith(":hourglass_flowing_sand: *+250.5 credits* · pending · <!date^")
    assert topups[2].startswith(":white_check_mark: *+500 credits* · succeeded · <!date^")
    assert topups[3].startswith(":x: *+100 credits* · failed · <!date^")
    assert "|2026-11-20 16:05 UTC>" in topups[1]
    assert "|2026-10-15 10:00 UTC>" in topups[3]
    assert "API key id: key_abc123" in texts(reply)

    call = breeze.received("GET", "/v1/balance")
    assert len(call) == 1
    assert call[0].headers["xi-api-key"] == API_KEY


def test_ack_comes_before_breeze_answers(
    slack: SlackClient, hooks: FakeServer, breeze: FakeServer, response_url: str
) -> None:
    gate = threading.Event()
    breeze.queue("GET", "/v1/balance", Reply(200, BALANCE_BODY, gate=gate))

    ack = slack.command(response_url)

    assert ack.status_code == 200
    assert ack.text == ""
    breeze.wait_for(1)  # the call is under way, still held back by the gate
    assert hooks.received() == []
    gate.set()
    hooks.wait_for(1)


def test_share_posts_in_channel_naming_who_asked(
    slack: SlackClient, hooks: FakeServer, response_url: str
) -> None:
    reply = ask(slack, hooks, response_url, "share", user_id="U0ADA").json()

    assert reply["response_type"] == "in_channel"
    assert "Requested by <@U0ADA>" in texts(reply)
    assert "1,234,567.891 credits" in reply["text"]


@pytest.mark.parametrize("text", ["help", "HELP", "?"])
def test_help(
    slack: SlackClient, hooks: FakeServer, breeze: FakeServer, response_url: str, text: str
) -> None:
    reply = ask(slack, hooks, response_url, text).json()

    assert reply["response_type"] == "ephemeral"
    assert "/breeze-balance share" in texts(reply)
    assert breeze.received() == []


def test_unknown_subcommand_gets_help_naming_it_escaped(
    slack: SlackClient, hooks: FakeServer, breeze: FakeServer, response_url: str
) -> None:
    reply = ask(slack, hooks, response_url, "frobnicate <!channel>").json()

    shown = texts(reply)
    assert "I don't know “frobnicate &lt;!channel&gt;”" in shown
    assert "<!channel>" not in json.dumps(reply)
    assert "/breeze-balance help" in shown
    assert breeze.received() == []


def test_zero_and_negative_balances_are_said_plainly(
    slack: SlackClient, hooks: FakeServer, breeze: FakeServer, response_url: str
) -> None:
    breeze.queue("GET", "/v1/balance", Reply(200, {"balance": 0, "topups": []}))
    zero = ask(slack, hooks, response_url).json()
    assert "*0 credits*" in texts(zero)
    assert "no credits left" in texts(zero)
    assert "No top-ups to show" in texts(zero)

    hooks.reset()
    hooks.route("POST", "*", Reply(200, "ok"))
    breeze.queue("GET", "/v1/balance", Reply(200, {"balance": -12.5, "balance_millicredits": -12500}))
    negative = ask(slack, hooks, response_url, "refresh").json()  # past the cached zero
    assert "*-12.5 credits*" in texts(negative)
    assert "negative" in texts(negative)


def test_nulls_unknown_fields_and_hostile_strings(
    slack: SlackClient, hooks: FakeServer, breeze: FakeServer, response_url: str
) -> None:
    body = {
        "balance": 10.1,
        "balance_millicredits": None,
        "surprise": {"nested": True},
        "topups": [
            {"topup_id": None, "amount": None, "status": None, "created_at": None},
            {"amount": 5, "status": "<!here> & <https://evil.example|x>", "created_at": "not a date <b>"},
            "not an object",
        ],
    }
    breeze.queue("GET", "/v1/balance", Reply(200, body, {"x-breeze-api-key-id": "<@U123>"}))

    reply = ask(slack, hooks, response_url).json()

    raw = json.dumps(reply)
    assert "<!here>" not in raw
    assert "<@U123>" not in raw
    assert "<https://evil" not in raw
    shown = texts(reply)
    assert "*10.1 credits*" in shown
    assert "_amount unknown_" in shown
    assert "date unknown" in shown
    assert "unknown (&lt;!here&gt; &amp; &lt;https://evil.examp…)" in shown
    assert "not a date &lt;b&gt;" in shown
    assert "API key id: &lt;@U123&gt;" in shown


def test_hundreds_of_topups_fit_block_kit_limits(
    slack: SlackClient, hooks: FakeServer, breeze: FakeServer, response_url: str
) -> None:
    topups = [
        {
            "topup_id": f"tp_{i}",
            "amount": i * 1000.5,
            "status": "x" * 500,
            "created_at": f"2026-01-01T00:{i % 60:02d}:00Z",
        }
        for i in range(400)
    ]
    breeze.queue("GET", "/v1/balance", Reply(200, {"balance": 1e15, "topups": topups}))

    reply = ask(slack, hooks, response_url).json()

    assert len(reply["blocks"]) <= 50
    for b in reply["blocks"]:
        if b["type"] == "section":
            assert len(b["text"]["text"]) <= 3000
        if b["type"] == "header":
            assert len(b["text"]["text"]) <= 150
        if b["type"] == "context":
            assert len(b["elements"]) <= 10
    assert "Showing the 5 newest of 400 top-ups." in texts(reply)
    assert len(block(reply, "balance_topups")["text"]["text"].splitlines()) == 6
    assert "1,000,000,000,000,000 credits" in reply["text"]


ERROR_CASES = [
    pytest.param(
        Reply(
            401, {"ok": False, "code": "AUTH_INVALID_SESSION", "detail": "bad key", "error": "unauthorized"}
        ),
        "Breeze did not accept the API key.",
        "AUTH_INVALID_SESSION",
        id="401-auth-code",
    ),
    pytest.param(Reply(401, ""), "Breeze did not accept the API key.", "HTTP_401", id="401-empty"),
    pytest.param(
        Reply(403, {"code": "FORBIDDEN", "detail": "nope", "error": "forbidden"}),
        "This API key is not allowed to read the balance.",
        "FORBIDDEN",
        id="403",
    ),
    pytest.param(
        Reply(429, {"code": "RATE_LIMITED", "detail": "slow down", "error": "x"}, {"retry-after": "30"}),
        "Please try again in 30 seconds.",
        "RATE_LIMITED",
        id="429-retry-after",
    ),
    pytest.param(Reply(429, "<html>busy</html>"), "Please try again in a minute.", "HTTP_429", id="429-html"),
    pytest.param(
        Reply(503, {"code": "GENERATION_CAPACITY_EXCEEDED", "detail": "busy", "error": "x"}),
        "Breeze is temporarily unavailable.",
        "GENERATION_CAPACITY_EXCEEDED",
        id="503",
    ),
    pytest.param(
        Reply(502, "<html><body>Bad gateway</body></html>", {"content-type": "text/html"}),
        "Breeze's billing system is not responding right now.",
        "HTTP_502",
        id="502-html",
    ),
    pytest.param(
        Reply(504, {"code": "UPSTREAM_TIMEOUT", "detail": "billing slow", "error": "x"}),
        "Breeze's billing system is not responding right now.",
        "UPSTREAM_TIMEOUT",
        id="504",
    ),
    pytest.param(
        Reply(200, "<html>maintenance</html>", {"content-type": "text/html"}),
        "Breeze sent an answer that could not be read.",
        "BAD_RESPONSE",
        id="200-html",
    ),
    pytest.param(
        Reply(200, b"{not json"),
        "Breeze sent an answer that could not be read.",
        "BAD_RESPONSE",
        id="bad-json",
    ),
    pytest.param(
        Reply(200, {"topups": []}),
        "Breeze sent an answer that could not be read.",
        "BAD_RESPONSE",
        id="no-balance",
    ),
    pytest.param(
        Reply(402, {"code": "SOMETHING_NEW", "detail": "Account <b>suspended</b> & frozen", "error": "x"}),
        "Breeze could not give the balance: “Account &lt;b&gt;suspended&lt;/b&gt; &amp; frozen”",
        "SOMETHING_NEW",
        id="other-code-detail-escaped",
    ),
    pytest.param(
        Reply(500, "Internal Server Error"),
        "Breeze could not give the balance (HTTP 500)",
        "HTTP_500",
        id="500",
    ),
]


@pytest.mark.parametrize(("breeze_reply", "words", "code"), ERROR_CASES)
def test_each_error_gets_its_own_friendly_reply(
    slack: SlackClient,
    hooks: FakeServer,
    breeze: FakeServer,
    response_url: str,
    all_logs: pytest.LogCaptureFixture,
    breeze_reply: Reply,
    words: str,
    code: str,
) -> None:
    breeze.route("GET", "/v1/balance", breeze_reply)  # every attempt, retries included

    reply = ask(slack, hooks, response_url).json()

    shown = texts(reply)
    assert reply["response_type"] == "ephemeral"
    assert words in shown
    context = block(reply, "error_context")["elements"][0]["text"]
    assert f"Error `{code}`" in context
    reference = context.split("Reference `")[1].rstrip("`")
    assert len(reference) == 8
    assert any(reference in r.getMessage() for r in all_logs.records), "the reference is not in the log"
    assert "Traceback" not in shown
    assert '"ok"' not in shown
    assert "{" not in reply["text"]


def test_breeze_too_slow_gets_timeout_reply(
    start_app: AppFactory, hooks: FakeServer, breeze: FakeServer, response_url: str
) -> None:
    _, slack = start_app(breeze_timeout_seconds=1)
    breeze.queue("GET", "/v1/balance", Reply(200, BALANCE_BODY, delay=3))

    reply = ask(slack, hooks, response_url).json()

    assert "Breeze took too long to answer." in texts(reply)
    assert "Error `TIMEOUT`" in texts(reply)


def test_breeze_unreachable_gets_connection_reply(
    start_app: AppFactory, hooks: FakeServer, response_url: str
) -> None:
    closed = FakeServer("closed").start()
    closed.stop()  # its port now refuses connections
    _, slack = start_app(breeze_base_url=closed.url)

    reply = ask(slack, hooks, response_url).json()

    assert "Could not reach Breeze." in texts(reply)
    assert "Error `CONNECTION_FAILED`" in texts(reply)


def test_no_key_configured_says_how_to_fix(
    start_app: AppFactory, hooks: FakeServer, breeze: FakeServer, response_url: str
) -> None:
    _, slack = start_app(breeze_api_key=None)

    reply = ask(slack, hooks, response_url).json()

    assert "No Breeze API key is set up for this workspace yet." in texts(reply)
    assert "A workspace admin can set one with `/breeze-balance set-key`" in texts(reply)
    assert breeze.received() == []


def test_works_without_a_bot_token(
    start_app: AppFactory, hooks: FakeServer, slack_api: FakeServer, response_url: str
) -> None:
    _, slack = start_app(slack_bot_token=None)

    reply = ask(slack, hooks, response_url).json()

    assert "1,234,567.891 credits" in reply["text"]
    assert slack_api.received() == []


def test_auth_test_runs_once_at_startup_with_the_bot_token(
    slack: SlackClient, hooks: FakeServer, slack_api: FakeServer, response_url: str
) -> None:
    ask(slack, hooks, response_url)
    ask(slack, hooks, response_url.replace("/secret-hook", "/second"))

    calls = slack_api.received("POST", "/api/auth.test")
    assert len(calls) == 1
    assert calls[0].headers["authorization"] == "Bearer xoxb-1111-2222-testtokenvalue"


def test_a_failed_reply_post_is_retried_once(
    slack: SlackClient, hooks: FakeServer, response_url: str, all_logs: pytest.LogCaptureFixture
) -> None:
    path = response_url.removeprefix(hooks.url)
    hooks.queue("POST", path, Reply(500, "oops"))

    slack.command(response_url)

    got = hooks.wait_for(2, path=path)
    assert got[0].json() == got[1].json()
    assert any("retrying once" in r.getMessage() for r in all_logs.records)


def test_api_key_never_in_replies_or_logs(
    slack: SlackClient,
    hooks: FakeServer,
    breeze: FakeServer,
    response_url: str,
    all_logs: pytest.LogCaptureFixture,
) -> None:
    replies = [ask(slack, hooks, response_url).json()]
    for n, failing in enumerate(
        [Reply(401, {"code": "AUTH_REQUIRED", "detail": API_KEY, "error": API_KEY}), Reply(500, API_KEY)]
    ):
        breeze.queue("GET", "/v1/balance", failing)
        replies.append(ask(slack, hooks, f"{response_url}-{n}").json())

    for reply in replies:
        assert API_KEY not in json.dumps(reply)
    logged = "\n".join(r.getMessage() + str(r.exc_info or "") for r in all_logs.records)
    assert API_KEY not in logged
    assert "xoxb-1111-2222-testtokenvalue" not in logged


def test_healthz(running: Any) -> None:
    _, slack = running
    response = slack.http.get("/healthz")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    health = response.json()
    assert health["status"] == "ok"
    assert health["workspace"] == "T0001"
    assert health["breeze_key_configured"] is True
    assert API_KEY not in response.text
    assert "xoxb" not in response.text


def test_unknown_paths_and_methods(slack: SlackClient) -> None:
    assert slack.http.get("/nope").status_code == 404
    assert slack.http.get("/slack/events").status_code == 405
    assert slack.http.post("/healthz").status_code == 405


def test_oversized_body_is_refused(slack: SlackClient, breeze: FakeServer) -> None:
    body = "text=" + "a" * (2 * 1024 * 1024)
    response = slack.http.post("/slack/events", content=body, headers=slack.signed_headers(body))

    assert response.status_code == 413
    assert breeze.received() == []


@pytest.mark.parametrize(
    "failure", [Reply(500, "<html>down</html>"), Reply(200, {"ok": False, "error": "fatal_error"})]
)
def test_slack_api_down_at_start_does_not_stop_commands(
    start_app: AppFactory, hooks: FakeServer, slack_api: FakeServer, response_url: str, failure: Reply
) -> None:
    slack_api.route("POST", "/api/auth.test", failure)
    app, slack = start_app()
    assert slack.http.get("/healthz").json()["workspace"] is None

    reply = ask(slack, hooks, response_url).json()
    assert "1,234,567.891 credits" in reply["text"]

    # auth.test is tried again in the background, without holding up the command.
    slack_api.route("POST", "/api/auth.test", auth_test_ok())
    app.app.deps.authorizer._next_attempt = 0  # type: ignore[union-attr]
    ask(slack, hooks, response_url + "-again")
    slack_api.wait_for(2, path="/api/auth.test")
    deadline = time.monotonic() + 5
    while slack.http.get("/healthz").json()["workspace"] != "T0001":
        assert time.monotonic() < deadline


def test_a_hanging_response_url_does_not_hold_up_other_commands(
    slack: SlackClient, hooks: FakeServer, breeze: FakeServer, response_url: str
) -> None:
    stuck = threading.Event()
    hooks.route("POST", "/commands/stuck/1", Reply(200, "ok", gate=stuck))

    assert slack.command(f"{hooks.url}/commands/stuck/1").status_code == 200
    hooks.wait_for(1, path="/commands/stuck/1")
    reply = ask(slack, hooks, response_url, team_id="T0002").json()  # while the first reply hangs

    assert reply["text"].startswith("Breeze balance:")
    stuck.set()
