"""Pure Block Kit builders, text helpers, command parsing: compared as JSON and text."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from bot import errors
from bot.domain.balances import Balance, Topup, TopupStatus, topup_status
from bot.slack.blocks import balance as blocks
from bot.slack.blocks import text as t
from bot.slack.commands import parse
from bot.slack.ids import Subcommand

WHEN = datetime(2026, 11, 20, 16, 5, tzinfo=UTC)


def all_text(message: blocks.Message) -> str:
    return json.dumps(message.payload(), ensure_ascii=False)


def assert_within_limits(message: blocks.Message) -> None:
    payload = message.payload()
    assert payload["text"].strip()
    assert len(payload["text"]) <= blocks.MAX_FALLBACK_TEXT
    assert len(payload["blocks"]) <= blocks.MAX_BLOCKS
    for block in payload["blocks"]:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= blocks.MAX_HEADER_TEXT
            assert block["text"]["type"] == "plain_text"
        elif block["type"] == "section":
            assert len(block["text"]["text"]) <= blocks.MAX_SECTION_TEXT
        elif block["type"] == "context":
            assert 1 <= len(block["elements"]) <= blocks.MAX_CONTEXT_ELEMENTS
            for element in block["elements"]:
                assert len(element["text"]) <= blocks.MAX_SECTION_TEXT


# --- text helpers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("1234567.891"), "1,234,567.891"),
        (Decimal("1000"), "1,000"),
        (Decimal("1E+3"), "1,000"),
        (Decimal("1.500"), "1.5"),
        (Decimal("0"), "0"),
        (Decimal("-0.000"), "0"),
        (Decimal("-1234.5"), "-1,234.5"),
        (Decimal("0.001"), "0.001"),
        (Decimal("NaN"), "unknown"),
    ],
)
def test_number(value: Decimal, shown: str) -> None:
    assert t.number(value) == shown


def test_number_of_a_huge_balance_is_exact() -> None:
    assert t.number(Decimal("1E+308")) == "100" + ",000" * 102
    assert t.number(Decimal(f"{10**40 + 7}e-3")) == "10,000,000,000,000,000,000,000,000,000,000,000,000.007"


@pytest.mark.parametrize(
    ("value", "signed", "shown"),
    [
        (Decimal(1), False, "1 credit"),
        (Decimal(-1), False, "-1 credit"),
        (Decimal(2), False, "2 credits"),
        (Decimal("0.5"), False, "0.5 credits"),
        (Decimal(500), True, "+500 credits"),
        (Decimal(-5), True, "-5 credits"),
        (Decimal(0), True, "0 credits"),
    ],
)
def test_credits(value: Decimal, signed: bool, shown: str) -> None:
    assert t.credits(value, signed=signed) == shown


def test_escape_and_outside() -> None:
    assert t.escape("<!channel> & <@U1>") == "&lt;!channel&gt; &amp; &lt;@U1&gt;"
    assert t.outside("a\n\nb   c", 40) == "a b c"
    assert t.outside("<" * 100, 5) == "&lt;&lt;&lt;&lt;…"
    assert t.identifier("AUTH_*`<x>`", 40) == "AUTH_x"


def test_truncate_and_fit() -> None:
    assert t.truncate("abcdef", 4) == "abc…"
    assert t.truncate("abc", 3) == "abc"
    assert t.truncate("abc", 0) == ""
    assert t.fit("line one\nline two\nline three", 20) == "line one\nline two…"
    assert len(t.fit("x" * 5000, 3000)) == 3000


def test_slack_date() -> None:
    assert t.slack_date(WHEN) == "<!date^1795190700^{date_short_pretty} at {time}|2026-11-20 16:05 UTC>"
    assert t.slack_date(datetime(1960, 1, 1, tzinfo=UTC)) == "1960-01-01 00:00 UTC"


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (0.2, "1 second"),
        (30, "30 seconds"),
        (120, "120 seconds"),
        (178.5, "179 seconds"),
        (179.5, "3 minutes"),
        (600, "10 minutes"),
        (7200, "2 hours"),
    ],
)
def test_duration(seconds: float, said: str) -> None:
    assert t.duration(seconds) == said


# --- commands ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "sub", "unknown"),
    [
        ("", Subcommand.BALANCE, None),
        (None, Subcommand.BALANCE, None),
        ("   ", Subcommand.BALANCE, None),
        ("balance", Subcommand.BALANCE, None),
        ("share", Subcommand.SHARE, None),
        ("SHARE", Subcommand.SHARE, None),
        ("share please", Subcommand.SHARE, None),
        ("  help  ", Subcommand.HELP, None),
        ("?", Subcommand.HELP, None),
        ("--help", Subcommand.HELP, None),
        ("frobnicate now", Subcommand.HELP, "frobnicate now"),
        ("日本語 🎉", Subcommand.HELP, "日本語 🎉"),
    ],
)
def test_parse(typed: str | None, sub: Subcommand, unknown: str | None) -> None:
    command = parse(typed)
    assert command.subcommand is sub
    assert command.unknown == unknown


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("succeeded", TopupStatus.SUCCEEDED),
        ("Completed", TopupStatus.SUCCEEDED),
        ("PAID", TopupStatus.SUCCEEDED),
        ("pending", TopupStatus.PENDING),
        ("in-progress", TopupStatus.PENDING),
        ("requires action", TopupStatus.PENDING),
        ("failed", TopupStatus.FAILED),
        ("cancelled", TopupStatus.FAILED),
        ("refunded", TopupStatus.UNKNOWN),
        ("", TopupStatus.UNKNOWN),
        (None, TopupStatus.UNKNOWN),
    ],
)
def test_topup_status(raw: str | None, status: TopupStatus) -> None:
    assert topup_status(raw) is status


# --- the balance message ----------------------------------------------------------------------------


def test_balance_message_as_json() -> None:
    balance = Balance(
        credits=Decimal("1234567.891"),
        topups=(Topup("tp_1", Decimal(500), "succeeded", WHEN, "2026-11-20T16:05:00Z"),),
        key_id="key_abc",
    )

    assert blocks.balance_message(balance).payload() == {
        "response_type": "ephemeral",
        "text": "Breeze balance: 1,234,567.891 credits",
        "blocks": [
            {
                "type": "header",
                "block_id": "balance_header",
                "text": {"type": "plain_text", "text": "Breeze balance", "emoji": True},
            },
            {
                "type": "section",
                "block_id": "balance_amount",
                "text": {"type": "mrkdwn", "text": "*1,234,567.891 credits*"},
            },
            {
                "type": "section",
                "block_id": "balance_topups",
                "text": {
                    "type": "mrkdwn",
                    "text": "*Recent top-ups*\n:white_check_mark: *+500 credits* · succeeded · "
                    "<!date^1795190700^{date_short_pretty} at {time}|2026-11-20 16:05 UTC>",
                },
            },
            {
                "type": "context",
                "block_id": "balance_footer",
                "elements": [{"type": "mrkdwn", "text": "API key id: key_abc"}],
            },
        ],
    }


def test_markers_and_unknowns() -> None:
    topups = (
        Topup(amount=Decimal(1), raw_status="pending", created_at=WHEN),
        Topup(amount=Decimal(2), raw_status="failed", created_at=WHEN),
        Topup(amount=None, raw_status="on_hold", created_at=None, raw_created_at="next tuesday"),
        Topup(),
    )
    lines = blocks.balance_message(Balance(Decimal(1), topups)).blocks[2]["text"]["text"].splitlines()

    assert lines[1].startswith(":hourglass_flowing_sand: *+1 credit* · pending · <!date^")
    assert lines[2].startswith(":x: *+2 credits* · failed · <!date^")
    assert lines[3] == ":grey_question: _amount unknown_ · unknown (on_hold) · next tuesday"
    assert lines[4] == ":grey_question: _amount unknown_ · unknown · date unknown"


def test_more_topups_than_shown_are_counted() -> None:
    topups = tuple(Topup(amount=Decimal(i)) for i in range(7))
    message = blocks.balance_message(Balance(Decimal(1), topups, ignored_topups=3))

    assert "Showing the 5 newest of 10 top-ups." in all_text(message)
    assert len(message.blocks[2]["text"]["text"].splitlines()) == 1 + blocks.TOPUPS_SHOWN


def test_no_note_when_all_are_shown() -> None:
    message = blocks.balance_message(Balance(Decimal(1), tuple(Topup() for _ in range(5))))
    assert "Showing" not in all_text(message)
    assert [b["type"] for b in message.blocks] == ["header", "section", "section"]


def test_share_is_in_channel_and_names_who_asked() -> None:
    message = blocks.balance_message(Balance(Decimal(3)), shared_by="U0ADA")

    assert message.response_type == "in_channel"
    assert message.blocks[-1]["elements"][-1]["text"] == "Requested by <@U0ADA>"
    assert message.text == "Breeze balance: 3 credits (requested by <@U0ADA>)"


def test_shared_by_cannot_inject_markup() -> None:
    message = blocks.balance_message(Balance(Decimal(3)), shared_by="U1> <!channel")
    assert "<!channel" not in all_text(message)


@pytest.mark.parametrize(
    ("credits", "words"),
    [(Decimal(0), "no credits left"), (Decimal("-0.5"), "negative"), (Decimal(-1000), "negative")],
)
def test_zero_and_negative_are_called_out(credits: Decimal, words: str) -> None:
    text = blocks.balance_message(Balance(credits)).blocks[1]["text"]["text"]
    assert text.startswith(":warning: ")
    assert words in text


HOSTILE = "<!channel> & <https://evil.example|click> <@U123> " * 300


def test_hostile_api_strings_are_escaped_and_bounded() -> None:
    topups = tuple(Topup(HOSTILE, Decimal("1E+30"), HOSTILE, None, HOSTILE) for _ in range(500))
    message = blocks.balance_message(Balance(Decimal("-1E+30"), topups, key_id=HOSTILE, ignored_topups=500))

    raw = all_text(message)
    for dangerous in ("<!channel>", "<https://evil", "<@U123>"):
        assert dangerous not in raw
    assert "&lt;!channel&gt;" in raw
    assert_within_limits(message)


# --- help and errors --------------------------------------------------------------------------------


def test_help_lists_every_subcommand() -> None:
    message = blocks.help_message()
    for sub in ("`/breeze-balance`", "`/breeze-balance share`", "`/breeze-balance help`"):
        assert sub in message.text
    assert message.response_type == "ephemeral"
    assert_within_limits(message)


def test_help_for_unknown_text_names_it_escaped() -> None:
    message = blocks.help_message("<!here> pls")
    assert message.text.startswith("I don't know “&lt;!here&gt; pls”.")
    assert "<!here>" not in all_text(message)


ALL_ERRORS: list[tuple[BaseException, str, str]] = [
    (errors.NoApiKey("x"), "No Breeze API key is set up", "NO_API_KEY"),
    (
        errors.KeyRejected(401, "AUTH_INVALID_SESSION", "d"),
        "did not accept the API key",
        "AUTH_INVALID_SESSION",
    ),
    (errors.KeyForbidden(403), "not allowed to read the balance", "HTTP_403"),
    (errors.RateLimited(429, "RATE_LIMITED", None, 30), "try again in 30 seconds", "RATE_LIMITED"),
    (
        errors.BreezeUnavailable(503, "GENERATION_CAPACITY_EXCEEDED"),
        "temporarily unavailable",
        "GENERATION_CAPACITY_EXCEEDED",
    ),
    (errors.BillingUpstreamError(502), "billing system is not responding", "HTTP_502"),
    (
        errors.BreezeApiError(400, "BAD_REQUEST", "Missing <field> & more"),
        "“Missing &lt;field&gt; &amp; more”",
        "BAD_REQUEST",
    ),
    (errors.BreezeApiError(500), "could not give the balance (HTTP 500)", "HTTP_500"),
    (errors.BreezeTimeout("slow"), "took too long", "TIMEOUT"),
    (errors.BreezeUnreachable("down"), "Could not reach Breeze", "CONNECTION_FAILED"),
    (errors.BadResponse("html"), "could not be read", "BAD_RESPONSE"),
    (ValueError("kaboom"), "Something went wrong on our side", "INTERNAL_ERROR"),
]


@pytest.mark.parametrize(("error", "words", "code"), ALL_ERRORS)
def test_every_error_has_its_words_code_and_reference(error: BaseException, words: str, code: str) -> None:
    message = blocks.error_message(error, "R7K2M9QX")

    assert words in message.blocks[0]["text"]["text"]
    assert message.blocks[1]["elements"][0]["text"] == f"Error `{code}` · Reference `R7K2M9QX`"
    assert "R7K2M9QX" in message.text
    assert message.response_type == "ephemeral"
    assert "kaboom" not in all_text(message)
    assert "Traceback" not in all_text(message)
    assert_within_limits(message)


def test_error_titles_are_distinct() -> None:
    titles = [blocks.wording(error).title for error, _, _ in ALL_ERRORS]
    assert len(set(titles)) == len(titles)


@pytest.mark.parametrize(
    ("wait", "said"),
    [(None, "in a minute"), (0, "in a minute"), (42, "in 42 seconds"), (600, "in 10 minutes")],
)
def test_rate_limit_says_how_long(wait: float | None, said: str) -> None:
    assert said in blocks.wording(errors.RateLimited(429, retry_after=wait)).next_step


def test_an_api_code_cannot_inject_markup() -> None:
    message = blocks.error_message(errors.BreezeApiError(400, "<!channel>`x`"), "R1")
    assert "<!channel>" not in all_text(message)
    assert "Error `channelx`" in all_text(message)


def message_json(message: blocks.Message) -> dict[str, Any]:
    return json.loads(json.dumps(message.payload()))


def test_payload_is_plain_json() -> None:
    assert message_json(blocks.help_message())["response_type"] == "ephemeral"
