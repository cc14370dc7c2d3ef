"""The App Home tab, through signed events and interactions into the running app."""

from __future__ import annotations

import itertools
import json
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from bot.services import metering as metering_service
from tests.conftest import AppFactory, ask, texts
from tests.fakes import FakeMetering, FakeServer, Metered, Recorded, Reply, SlackClient
from tests.integration.test_keys import ADMIN, MEMBER, NEW_KEY, submission
from tests.integration.test_metering import a_week_of, around, balance_of

PUBLISH = "/api/views.publish"
OPEN = "/api/views.open"
USERS = "/api/users.info"
CONVERSATIONS = "/api/conversations.info"
ALERTS = "C0ALERTS01"
PRIVATE = "G0PRIV0001"
ADMIN_TZ = "America/New_York"
ADMIN_BUTTONS = ["home_set_key", "home_alert", "home_notify", "home_digest", "home_refresh"]

_event_ids = itertools.count(1)


class Workspace:
    """Slack's users.info (ADMIN is an admin with a time zone), conversations.info, views.*."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.channels: dict[str, Reply] = {
            PRIVATE: Reply(
                200, {"ok": True, "channel": {"id": PRIVATE, "is_private": True, "is_member": False}}
            )
        }
        for method in ("GET", "POST"):
            server.route(method, USERS, self.users_info)
            server.route(method, CONVERSATIONS, self.conversations_info)
        server.route("POST", PUBLISH, Reply(200, {"ok": True, "view": {"id": "VHOME"}}))
        server.route("POST", OPEN, Reply(200, {"ok": True, "view": {"id": "V0001"}}))

    def users_info(self, recorded: Recorded) -> Reply:
        user = recorded.query.get("user") or recorded.form().get("user", "")
        found: dict[str, Any] = {"id": user, "is_admin": user == ADMIN, "is_owner": False}
        if user == ADMIN:
            found["tz"] = ADMIN_TZ
        return Reply(200, {"ok": True, "user": found})

    def conversations_info(self, recorded: Recorded) -> Reply:
        channel = recorded.query.get("channel") or recorded.form().get("channel", "")
        public = {"ok": True, "channel": {"id": channel, "is_private": False, "is_member": False}}
        return self.channels.get(channel) or Reply(200, public)


@pytest.fixture
def workspace(slack_api: FakeServer) -> Workspace:
    return Workspace(slack_api)


def body_of(recorded: Recorded) -> dict[str, Any]:
    """A Web API call's arguments, whether slack_sdk sent them as JSON or as a form."""
    body: dict[str, Any] = recorded.json() if recorded.body.startswith(b"{") else recorded.form()
    if isinstance(body.get("view"), str):
        body["view"] = json.loads(body["view"])
    return body


def home_opened(user: str, tab: str = "home") -> dict[str, Any]:
    """The Events API envelope Slack sends when `user` opens a tab of the app."""
    return {
        "type": "event_callback",
        "team_id": "T0001",
        "api_app_id": "A0001",
        "event": {"type": "app_home_opened", "user": user, "channel": "D0001", "tab": tab},
        "event_id": f"Ev{next(_event_ids)}",
        "event_time": 1,
    }


def open_home(slack: SlackClient, slack_api: FakeServer, user: str) -> dict[str, Any]:
    """`user` opens the Home tab; returns the views.publish call it caused (user_id and view)."""
    before = len(slack_api.received(path=PUBLISH))
    answer = slack.event(home_opened(user))
    assert answer.status_code == 200, answer.text
    return body_of(slack_api.wait_for(before + 1, path=PUBLISH)[before])


def block_ids(view: dict[str, Any]) -> list[str]:
    return [str(b.get("block_id")) for b in view["blocks"]]


def block(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


def settle(app_url: str, timeout: float = 15.0) -> None:
    """Wait until the app has no background work left (its /healthz counts the replies in flight)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{app_url}/healthz").json()["replies_in_flight"] == 0:
            return
        time.sleep(0.02)
    raise AssertionError("the app still has work in flight")


def home_button(action_id: str, user: str = ADMIN) -> dict[str, Any]:
    """The block_actions Slack sends when `user` clicks a button on the Home tab."""
    return {
        "type": "block_actions",
        "team": {"id": "T0001", "domain": "acme"},
        "user": {"id": user, "team_id": "T0001"},
        "api_app_id": "A0001",
        "token": "legacy-verification-token",
        "trigger_id": "7.8.9",
        "container": {"type": "view", "view_id": "VHOME"},
        "view": {"id": "VHOME", "type": "home", "team_id": "T0001"},
        "actions": [
            {
                "action_id": action_id,
                "block_id": "home_actions",
                "type": "button",
                "value": action_id,
                "action_ts": "1.2",
            }
        ],
    }


def form(callback_id: str, values: dict[str, dict[str, Any]], user: str = ADMIN) -> dict[str, Any]:
    """The view_submission Slack sends when `user` saves one of the Home's rule forms."""
    return {
        "type": "view_submission",
        "team": {"id": "T0001", "domain": "acme"},
        "user": {"id": user, "username": user.lower(), "team_id": "T0001"},
        "api_app_id": "A0001",
        "token": "legacy-verification-token",
        "trigger_id": "2.3.4",
        "view": {
            "id": "V0001",
            "team_id": "T0001",
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": json.dumps({"from": "home"}),
            "state": {"values": values},
            "hash": "1.abc",
        },
    }


def threshold(value: str | None) -> dict[str, dict[str, Any]]:
    return {"rule_threshold": {"rule_threshold_input": {"type": "plain_text_input", "value": value}}}


def channel(value: str | None) -> dict[str, dict[str, Any]]:
    picked = {"type": "conversations_select", "selected_conversation": value}
    return {"rule_channel": {"rule_channel_input": picked}}


def option(block_id: str, action_id: str, value: str) -> dict[str, dict[str, Any]]:
    chosen = {"text": {"type": "plain_text", "text": value}, "value": value}
    return {block_id: {action_id: {"type": "static_select", "selected_option": chosen}}}


def saved(database_url: str) -> list[dict[str, Any]]:
    """The rows of watch_rules, as SQLite has them."""
    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM watch_rules")]


def submit(
    slack: SlackClient, slack_api: FakeServer, payload: dict[str, Any]
) -> tuple[httpx.Response, dict[str, Any] | None]:
    """Submit a form; on success return the Home republished for its author."""
    before = len(slack_api.received(path=PUBLISH))
    answer = slack.interaction(payload)
    assert answer.status_code == 200, answer.text
    if answer.content:
        return answer, None
    return answer, body_of(slack_api.wait_for(before + 1, path=PUBLISH)[before])


# --- publishing the Home tab ---------------------------------------------------------------------


def test_a_member_sees_the_balance_and_top_ups_and_nothing_for_admins(
    slack: SlackClient, workspace: Workspace, slack_api: FakeServer, breeze: FakeServer
) -> None:
    published = open_home(slack, slack_api, MEMBER)

    assert published["user_id"] == MEMBER
    view = published["view"]
    assert view["type"] == "home"
    shown = texts(view)
    assert "1,234,567.891 credits" in shown
    assert "500 credits" in shown
    assert "250.5 credits" in shown
    assert "home_actions" not in block_ids(view)
    assert "watch_rules" not in block_ids(view)
    assert "*Key:*" not in shown
    assert "brz_live" not in json.dumps(view)
    request = slack_api.received(path=PUBLISH)[0]
    assert request.headers["authorization"].startswith("Bearer xoxb-")
    assert len(breeze.received(path="/v1/balance")) == 1


def test_the_home_shows_the_metered_runway_with_its_date_and_the_weeks_spend_by_key_and_model(
    slack: SlackClient,
    workspace: Workspace,
    slack_api: FakeServer,
    breeze: FakeServer,
    metering: FakeMetering,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metering_service, "REPLY_WAIT_SECONDS", 30.0)  # however slow the machine
    balance_of(breeze, 1_680)
    a_week_of(metering, 140)  # `prod`, half on `m1`, half on `bluebell-v1-en`
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    metering.spent(Metered(yesterday, 420_000, key_id="key_batch", key_name="batch", model="m1"))

    shown = texts(open_home(slack, slack_api, MEMBER)["view"])

    # 1,400 credits in the week, 200 a day: 8.4 days
    assert f":hourglass: About 8.4 days left, until around {around(8.4)}, at 200 credits a day" in shown
    assert "*1,400 credits* spent in the last 7 complete days (" in shown
    assert "• `prod`: *980 credits* (70%)\n• `batch`: *420 credits* (30%)" in shown
    assert "• `m1`: *910 credits* (65%)\n• `bluebell-v1-en`: *490 credits* (35%)" in shown
    assert "of the newest" not in shown  # every request of the week was read


def test_without_metering_the_home_shows_no_spend_and_the_runway_from_samples_as_before(
    slack: SlackClient, workspace: Workspace, slack_api: FakeServer
) -> None:
    shown = texts(open_home(slack, slack_api, MEMBER)["view"])  # no `metering`: Breeze answers 404

    assert "1,234,567.891 credits" in shown
    assert "spent in the last 7 complete days" not in shown
    assert ":hourglass:" not in shown  # no samples yet either


def test_an_admin_also_sees_the_key_the_rules_and_the_buttons(
    slack: SlackClient, workspace: Workspace, slack_api: FakeServer
) -> None:
    view = open_home(slack, slack_api, ADMIN)["view"]

    shown = texts(view)
    assert "1,234,567.891 credits" in shown
    rules = block(view, "watch_rules")["text"]["text"]
    assert "*Key:*" in rules
    assert "*Alert:* off." in rules
    assert "*Top-up notices:* off." in rules
    assert "*Digest:* off." in rules
    buttons = block(view, "home_actions")["elements"]
    assert [b["action_id"] for b in buttons] == ADMIN_BUTTONS
    assert "Sup3rS3cret" not in json.dumps(view)


def test_other_tabs_publish_nothing(
    running: tuple[Any, SlackClient], workspace: Workspace, slack_api: FakeServer
) -> None:
    app, slack = running

    assert slack.event(home_opened(ADMIN, tab="messages")).status_code == 200
    open_home(slack, slack_api, MEMBER)  # something that does publish, after it
    settle(app.url)

    assert [body_of(r)["user_id"] for r in slack_api.received(path=PUBLISH)] == [MEMBER]


def test_when_breeze_refuses_the_key_the_home_still_publishes_the_friendly_error(
    slack: SlackClient, workspace: Workspace, slack_api: FakeServer, breeze: FakeServer
) -> None:
    breeze.route(
        "GET", "/v1/balance", Reply(401, {"code": "AUTH_INVALID_SESSION", "detail": "no", "error": "x"})
    )

    view = open_home(slack, slack_api, ADMIN)["view"]

    shown = texts(view)
    assert "Breeze did not accept the API key." in shown
    assert "/breeze-balance set-key" in shown
    assert "credits" not in block(view, "error_message")["text"]["text"]
    assert "home_actions" in block_ids(view)  # the admin can still fix it from here


def test_opening_the_home_often_reuses_the_cached_balance(
    running: tuple[Any, SlackClient], workspace: Workspace, slack_api: FakeServer, breeze: FakeServer
) -> None:
    app, slack = running

    for _ in range(20):
        assert slack.event(home_opened(MEMBER)).status_code == 200
    slack_api.wait_for(20, path=PUBLISH)
    settle(app.url)

    assert 1 <= len(breeze.received(path="/v1/balance")) <= 2
    for request in slack_api.received(path=PUBLISH):
        assert "1,234,567.891 credits" in texts(body_of(request)["view"])


# --- buttons -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action_id", "callback_id"),
    [
        ("home_alert", "alert_modal"),
        ("home_notify", "notify_modal"),
        ("home_digest", "digest_modal"),
        ("home_set_key", "set_key_modal"),
    ],
)
def test_an_admin_button_opens_its_form(
    slack: SlackClient, workspace: Workspace, slack_api: FakeServer, action_id: str, callback_id: str
) -> None:
    answer = slack.interaction(home_button(action_id))

    assert answer.status_code == 200
    body = body_of(slack_api.wait_for(1, path=OPEN)[0])
    assert body["trigger_id"] == "7.8.9"
    assert body["view"]["type"] == "modal"
    assert body["view"]["callback_id"] == callback_id


def test_the_alert_form_shows_the_current_rule(
    slack: SlackClient, workspace: Workspace, slack_api: FakeServer, hooks: FakeServer, response_url: str
) -> None:
    ask(slack, hooks, response_url, f"alert 1,500 <#{ALERTS}|alerts>", user_id=ADMIN)

    slack.interaction(home_button("home_alert"))

    view = body_of(slack_api.wait_for(1, path=OPEN)[0])["view"]
    inputs = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    assert inputs["rule_threshold"]["initial_value"] == "1,500"
    assert inputs["rule_channel"]["initial_conversation"] == ALERTS


def test_a_member_clicking_an_admin_button_gets_no_form(
    slack: SlackClient, workspace: Workspace, slack_api: FakeServer, all_logs: pytest.LogCaptureFixture
) -> None:
    assert slack.interaction(home_button("home_alert", user=MEMBER)).status_code == 200
    deadline = time.monotonic() + 15
    while not any("refused" in r.getMessage() and MEMBER in r.getMessage() for r in all_logs.records):
        assert time.monotonic() < deadline, "the member's click was never handled"
        time.sleep(0.02)

    assert slack_api.received(path=OPEN) == []
    slack.interaction(home_button("home_alert"))  # an admin's click does open it
    assert len(slack_api.wait_for(1, path=OPEN)) == 1


def test_refresh_republishes_the_home(
    slack: SlackClient, workspace: Workspace, slack_api: FakeServer
) -> None:
    slack.interaction(home_button("home_refresh", user=MEMBER))

    published = body_of(slack_api.wait_for(1, path=PUBLISH)[0])
    assert published["user_id"] == MEMBER
    assert "1,234,567.891 credits" in texts(published["view"])


# --- the forms -----------------------------------------------------------------------------------


def test_saving_the_alert_form_saves_the_rule_and_republishes_the_home(
    slack: SlackClient,
    workspace: Workspace,
    slack_api: FakeServer,
    hooks: FakeServer,
    response_url: str,
    database_url: str,
) -> None:
    answer, home = submit(slack, slack_api, form("alert_modal", {**threshold("1,500"), **channel(ALERTS)}))

    assert answer.content == b""  # an empty 200 closes the form
    [row] = saved(database_url)
    assert (row["alert_threshold"], row["alert_channel"], row["alert_set_by"]) == ("1500", ALERTS, ADMIN)
    assert home is not None
    assert home["user_id"] == ADMIN
    assert (
        f"*Alert:* below 1,500 credits in <#{ALERTS}>" in block(home["view"], "watch_rules")["text"]["text"]
    )
    said = texts(ask(slack, hooks, response_url, "alert", user_id=ADMIN).json())
    assert f"*Alert:* below 1,500 credits in <#{ALERTS}>" in said


@pytest.mark.parametrize(
    ("values", "block_id", "words"),
    [
        ({**threshold("lots"), **channel(ALERTS)}, "rule_threshold", ""),
        ({**threshold("-5"), **channel(ALERTS)}, "rule_threshold", ""),
        ({**threshold("1,500"), **channel(None)}, "rule_channel", "Pick the channel"),
        ({**threshold("1,500"), **channel(PRIVATE)}, "rule_channel", "Invite me"),
        ({**threshold("1,500"), **channel("D0001")}, "rule_channel", "direct message"),
    ],
)
def test_a_wrong_alert_form_stays_open_with_the_reason_and_saves_nothing(
    slack: SlackClient,
    workspace: Workspace,
    slack_api: FakeServer,
    running: tuple[Any, SlackClient],
    database_url: str,
    values: dict[str, dict[str, Any]],
    block_id: str,
    words: str,
) -> None:
    answer = slack.interaction(form("alert_modal", values))

    assert answer.status_code == 200
    body = answer.json()
    assert body["response_action"] == "errors"
    assert list(body["errors"]) == [block_id]
    assert words.lower() in body["errors"][block_id].lower()
    assert 0 < len(body["errors"][block_id]) <= 150
    assert saved(database_url) == []
    settle(running[0].url)
    assert slack_api.received(path=PUBLISH) == []


def test_the_private_channel_error_in_the_form_is_shown_whole(
    slack: SlackClient, workspace: Workspace, database_url: str
) -> None:
    body = slack.interaction(form("alert_modal", {**threshold("1500"), **channel(PRIVATE)})).json()

    error = body["errors"]["rule_channel"]
    assert "/invite" in error
    assert not error.endswith("…"), error


def test_the_private_channel_is_checked_with_slack(
    slack: SlackClient, workspace: Workspace, slack_api: FakeServer, database_url: str
) -> None:
    slack.interaction(form("alert_modal", {**threshold("1500"), **channel(PRIVATE)}))

    asked = [
        r.query.get("channel") or r.form().get("channel") for r in slack_api.received(path=CONVERSATIONS)
    ]
    assert asked == [PRIVATE]


def test_an_empty_threshold_turns_the_alert_off(
    slack: SlackClient, workspace: Workspace, slack_api: FakeServer, database_url: str
) -> None:
    submit(slack, slack_api, form("alert_modal", {**threshold("1,500"), **channel(ALERTS)}))
    assert len(saved(database_url)) == 1

    answer, home = submit(slack, slack_api, form("alert_modal", {**threshold(None), **channel(ALERTS)}))

    assert answer.content == b""
    assert saved(database_url) == []
    assert home is not None
    assert "*Alert:* off." in block(home["view"], "watch_rules")["text"]["text"]


def test_the_notify_form_turns_top_up_notices_on_and_off(
    slack: SlackClient, workspace: Workspace, slack_api: FakeServer, database_url: str
) -> None:
    on = {**option("rule_switch", "rule_switch_input", "on"), **channel(ALERTS)}
    answer, home = submit(slack, slack_api, form("notify_modal", on))

    assert answer.content == b""
    [row] = saved(database_url)
    assert (row["topups_channel"], row["topups_set_by"]) == (ALERTS, ADMIN)
    assert home is not None
    assert f"*Top-up notices:* on, in <#{ALERTS}>" in block(home["view"], "watch_rules")["text"]["text"]

    off = {**option("rule_switch", "rule_switch_input", "off"), **channel(ALERTS)}
    submit(slack, slack_api, form("notify_modal", off))
    assert saved(database_url) == []


def test_notices_on_without_a_channel_ask_for_one(
    slack: SlackClient, workspace: Workspace, database_url: str
) -> None:
    on = {**option("rule_switch", "rule_switch_input", "on"), **channel(None)}

    body = slack.interaction(form("notify_modal", on)).json()

    assert body["response_action"] == "errors"
    assert "rule_channel" in body["errors"]
    assert saved(database_url) == []


def test_the_digest_form_saves_a_weekly_digest_in_the_admins_time_zone(
    slack: SlackClient, workspace: Workspace, slack_api: FakeServer, database_url: str
) -> None:
    values = {
        **option("rule_frequency", "rule_frequency_input", "weekly"),
        "rule_time": {"rule_time_input": {"type": "timepicker", "selected_time": "08:30"}},
        **channel(ALERTS),
    }

    answer, home = submit(slack, slack_api, form("digest_modal", values))

    assert answer.content == b""
    [row] = saved(database_url)
    assert (row["digest_frequency"], row["digest_time"], row["digest_tz"]) == ("weekly", "08:30", ADMIN_TZ)
    assert (row["digest_channel"], row["digest_set_by"]) == (ALERTS, ADMIN)
    assert home is not None
    rules = block(home["view"], "watch_rules")["text"]["text"]
    assert f"*Digest:* weekly at 08:30 {ADMIN_TZ} on Mondays in <#{ALERTS}>" in rules

    off = {**option("rule_frequency", "rule_frequency_input", "off"), **channel(ALERTS)}
    submit(slack, slack_api, form("digest_modal", off))
    assert saved(database_url) == []


def test_a_forged_form_from_a_member_saves_nothing(
    slack: SlackClient, workspace: Workspace, slack_api: FakeServer, database_url: str
) -> None:
    values = {**threshold("1,500"), **channel(ALERTS)}

    body = slack.interaction(form("alert_modal", values, user=MEMBER)).json()

    assert body["response_action"] == "errors"
    assert "Only workspace admins and owners" in body["errors"]["rule_channel"]
    assert saved(database_url) == []


# --- rule changes elsewhere ----------------------------------------------------------------------


def test_a_rule_changed_by_slash_command_republishes_the_admins_home(
    slack: SlackClient, workspace: Workspace, slack_api: FakeServer, hooks: FakeServer, response_url: str
) -> None:
    said = texts(ask(slack, hooks, response_url, "alert 1500", user_id=ADMIN).json())
    assert "*Alert:* below 1,500 credits" in said

    published = body_of(slack_api.wait_for(1, path=PUBLISH)[0])
    assert published["user_id"] == ADMIN
    assert (
        "*Alert:* below 1,500 credits in <#C0001>" in block(published["view"], "watch_rules")["text"]["text"]
    )

    ask(slack, hooks, f"{response_url}-off", "alert off", user_id=ADMIN)
    again = body_of(slack_api.wait_for(2, path=PUBLISH)[1])
    assert "*Alert:* off." in block(again["view"], "watch_rules")["text"]["text"]


def test_the_home_of_a_workspace_without_a_key_says_how_to_set_one(
    start_app: AppFactory, workspace: Workspace, slack_api: FakeServer, breeze: FakeServer
) -> None:
    _, slack = start_app(breeze_api_key=None)

    view = open_home(slack, slack_api, ADMIN)["view"]

    shown = texts(view)
    assert "No Breeze API key is set up for this workspace yet." in shown
    assert "*Key:* none yet." in block(view, "watch_rules")["text"]["text"]
    assert breeze.received() == []


def test_a_key_set_from_the_home_is_used_on_the_republished_home(
    slack: SlackClient, workspace: Workspace, slack_api: FakeServer, breeze: FakeServer
) -> None:
    def by_key(recorded: Recorded) -> Reply:
        if recorded.headers.get("xi-api-key") == NEW_KEY:
            return Reply(200, {"balance": 42.5, "topups": []}, {"x-breeze-api-key-id": "key_new777"})
        return Reply(200, {"balance": 7, "topups": []}, {"x-breeze-api-key-id": "key_env111"})

    breeze.route("GET", "/v1/balance", by_key)
    assert "7 credits" in texts(open_home(slack, slack_api, ADMIN)["view"])
    slack.interaction(home_button("home_set_key"))
    view = body_of(slack_api.wait_for(1, path=OPEN)[0])["view"]

    answer, home = submit(slack, slack_api, submission(view, NEW_KEY))

    assert answer.content == b"", answer.text
    assert home is not None
    assert home["user_id"] == ADMIN
    assert "42.5 credits" in texts(home["view"])
    assert "…9876" in block(home["view"], "watch_rules")["text"]["text"]
    assert NEW_KEY not in json.dumps(home)
