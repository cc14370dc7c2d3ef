"""Property-based tests: whatever Breeze or a person sends, the reply renders and fits Slack.

Balance bodies are generated from the Breeze OpenAPI description (a copy in tests/data).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.adapters import breeze
from bot.errors import BotError, BreezeApiError
from bot.slack.blocks import balance as blocks
from bot.slack.commands import parse
from bot.slack.ids import Subcommand
from tests.schemas import from_schema

OPENAPI = yaml.safe_load((Path(__file__).resolve().parents[1] / "data" / "balance.openapi.yaml").read_text())
BALANCE_RESPONSE = {
    **OPENAPI["components"]["schemas"]["BalanceResponse"],
    "components": OPENAPI["components"],
}
CONTRACT = jsonschema.Draft202012Validator(BALANCE_RESPONSE)
PROFILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def response_body(status: str) -> st.SearchStrategy[Any]:
    """Bodies the description allows for `GET /v1/balance` answering `status`."""
    content = OPENAPI["paths"]["/v1/balance"]["get"]["responses"][status]["content"]
    return from_schema(content["application/json"]["schema"], OPENAPI)


def assert_fits_slack(message: blocks.Message) -> None:
    """Slack's Block Kit limits: https://api.slack.com/reference/block-kit/blocks"""
    payload = message.payload()
    json.dumps(payload)  # serialisable
    assert message.text.strip()
    assert len(message.text) <= blocks.MAX_FALLBACK_TEXT
    assert len(message.blocks) <= blocks.MAX_BLOCKS
    for block in message.blocks:
        if block["type"] == "header":
            assert 0 < len(block["text"]["text"]) <= blocks.MAX_HEADER_TEXT
        if block["type"] == "section":
            assert 0 < len(block["text"]["text"]) <= blocks.MAX_SECTION_TEXT
        if block["type"] == "context":
            assert 0 < len(block["elements"]) <= blocks.MAX_CONTEXT_ELEMENTS
            assert all(0 < len(e["text"]) <= blocks.MAX_SECTION_TEXT for e in block["elements"])


key_ids = st.one_of(st.none(), st.text(max_size=300))


@PROFILE
@given(
    body=response_body("200"),
    key_id=key_ids,
    shared_by=st.one_of(st.none(), st.text(max_size=40)),
    age=st.one_of(st.none(), st.floats(0, 3600)),
)
def test_any_balance_the_contract_allows_renders_within_block_kit_limits(
    body: dict[str, Any], key_id: str | None, shared_by: str | None, age: float | None
) -> None:
    # Header values arrive as bytes, whatever a proxy put in them.
    headers = httpx.Headers([(b"x-breeze-api-key-id", key_id.encode())] if key_id else [])
    raw = json.dumps(body).encode()
    CONTRACT.validate(body)  # the generator only makes bodies the contract allows

    balance = breeze.parse_balance(raw, headers)

    assert_fits_slack(blocks.balance_message(balance, shared_by=shared_by, age_seconds=age))


@PROFILE
@given(
    status=st.integers(min_value=400, max_value=599),
    body=st.one_of(
        response_body("401").map(lambda b: json.dumps(b).encode()),
        st.binary(max_size=600),
        st.text(max_size=600).map(str.encode),
    ),
    retry_after=st.one_of(st.none(), st.text(max_size=40), st.floats(allow_nan=True).map(str)),
    reference=st.text(alphabet="23456789ABCDEFGHJKLMNPQRSTUVWXYZ", min_size=8, max_size=8),
)
def test_any_error_answer_maps_to_a_friendly_message(
    status: int, body: bytes, retry_after: str | None, reference: str
) -> None:
    headers = httpx.Headers([(b"retry-after", retry_after.encode())] if retry_after else [])

    error = breeze.error_from_response(status, headers, body)

    assert isinstance(error, BreezeApiError)
    words = blocks.wording(error)
    assert words.title.strip()
    assert words.next_step.strip()
    message = blocks.error_message(error, reference)
    assert_fits_slack(message)
    assert reference in message.text


@PROFILE
@given(body=st.binary(max_size=2000), status=st.sampled_from([200, 201, 204]))
def test_any_2xx_body_is_a_balance_or_a_bad_response(body: bytes, status: int) -> None:
    try:
        balance = breeze.parse_balance(body, httpx.Headers())
    except BotError as exc:
        assert_fits_slack(blocks.error_message(exc, "R0000000"))
    else:
        assert_fits_slack(blocks.balance_message(balance))


@PROFILE
@given(text=st.text())
def test_any_unicode_command_text_is_understood_or_answered_with_help(text: str) -> None:
    command = parse(text)

    assert command.subcommand in set(Subcommand)
    if command.subcommand is Subcommand.HELP:
        assert_fits_slack(blocks.help_message(command.unknown))
