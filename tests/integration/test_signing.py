"""Request signing: only requests Slack signed, recently, reach the command."""

from __future__ import annotations

import time
import urllib.parse

import pytest
from slack_sdk.signature import SignatureVerifier

from tests.conftest import SIGNING_SECRET
from tests.fakes import FakeServer, SlackClient, slack_signature

# https://api.slack.com/authentication/verifying-requests-from-slack (the documented example)
DOC_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
DOC_TIMESTAMP = "1531420618"
DOC_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    "&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    "&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


class FixedClock:
    def now(self) -> float:
        return float(DOC_TIMESTAMP)


def test_documented_example_signature() -> None:
    assert slack_signature(DOC_SECRET, DOC_TIMESTAMP, DOC_BODY) == DOC_SIGNATURE
    verifier = SignatureVerifier(DOC_SECRET, clock=FixedClock())
    headers = {"x-slack-request-timestamp": DOC_TIMESTAMP, "x-slack-signature": DOC_SIGNATURE}
    assert verifier.is_valid_request(DOC_BODY, headers)
    assert not verifier.is_valid_request(DOC_BODY.replace("foobar", "foobaz"), headers)


def test_documented_example_is_refused_as_stale(slack: SlackClient, breeze: FakeServer) -> None:
    assert SIGNING_SECRET == DOC_SECRET  # the app under test uses the documented secret
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": DOC_TIMESTAMP,
        "x-slack-signature": DOC_SIGNATURE,
    }

    response = slack.http.post("/slack/events", content=DOC_BODY, headers=headers)

    assert response.status_code == 401
    assert breeze.received() == []


def command_body(response_url: str) -> str:
    return urllib.parse.urlencode(
        {
            "team_id": "T0001",
            "user_id": "U0001",
            "command": "/breeze-balance",
            "text": "",
            "response_url": response_url,
        }
    )


@pytest.mark.parametrize(
    "forgery",
    ["wrong-secret", "no-signature", "no-timestamp", "tampered-body", "stale", "future", "garbage-timestamp"],
)
def test_forged_and_stale_requests_are_refused(
    slack: SlackClient, breeze: FakeServer, hooks: FakeServer, response_url: str, forgery: str
) -> None:
    body = command_body(response_url)
    now = int(time.time())
    headers = slack.signed_headers(body)
    if forgery == "wrong-secret":
        headers = slack.signed_headers(body, secret="not-the-secret")
    elif forgery == "no-signature":
        del headers["x-slack-signature"]
    elif forgery == "no-timestamp":
        del headers["x-slack-request-timestamp"]
    elif forgery == "tampered-body":
        body = body.replace("U0001", "U0EVIL")
    elif forgery == "stale":
        headers = slack.signed_headers(body, timestamp=now - 6 * 60)
    elif forgery == "future":
        headers = slack.signed_headers(body, timestamp=now + 6 * 60)
    elif forgery == "garbage-timestamp":
        headers["x-slack-request-timestamp"] = "yesterday"

    response = slack.http.post("/slack/events", content=body, headers=headers)

    assert response.status_code == 401
    time.sleep(0.2)  # give a wrongly accepted command time to show itself
    assert breeze.received() == []
    assert hooks.received() == []


def test_a_recent_signed_request_is_accepted(
    slack: SlackClient, hooks: FakeServer, response_url: str
) -> None:
    body = command_body(response_url)
    headers = slack.signed_headers(body, timestamp=int(time.time()) - 4 * 60)

    response = slack.http.post("/slack/events", content=body, headers=headers)

    assert response.status_code == 200
    hooks.wait_for(1)


def test_url_verification_challenge_is_answered_when_signed(slack: SlackClient) -> None:
    body = '{"type": "url_verification", "token": "legacy", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}'
    headers = {**slack.signed_headers(body), "content-type": "application/json"}

    response = slack.http.post("/slack/events", content=body, headers=headers)

    assert response.status_code == 200
    assert "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" in response.text
    forged = {**slack.signed_headers(body, secret="wrong"), "content-type": "application/json"}
    assert slack.http.post("/slack/events", content=body, headers=forged).status_code == 401


def test_ssl_check_is_answered(slack: SlackClient, breeze: FakeServer) -> None:
    # https://api.slack.com/interactivity/slash-commands#ssl
    body = "ssl_check=1&token=legacy-verification-token"
    response = slack.http.post(
        "/slack/events", content=body, headers={"content-type": "application/x-www-form-urlencoded"}
    )

    assert response.status_code == 200
    assert breeze.received() == []
