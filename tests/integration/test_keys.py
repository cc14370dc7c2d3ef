"""Admins set, remove and inspect the workspace's Breeze key from Slack; nobody else can."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import API_KEY, TEAM_ID, AppFactory, ask, texts
from tests.fakes import FakeServer, Recorded, Reply, SlackClient

ADMIN = "UADMIN001"
OWNER = "UOWNER001"
MEMBER = "UMEMBER01"
LISTED = "ULISTED01"
NEW_KEY = "brz_live_NewWorkspaceKey9876"
NEW_KEY_ID = "key_new777"


def roles(recorded: Recorded) -> Reply:
    """Slack's users.info: ADMIN is an admin, OWNER an owner, everyone else a member."""
    user = recorded.query.get("user") or recorded.form().get("user", "")
    return Reply(
        200,
        {
            "ok": True,
            "user": {"id": user, "name": user.lower(), "is_admin": user == ADMIN, "is_owner": user == OWNER},
        },
    )


def key_checker(good: dict[str, str]) -> Any:
    """A Breeze that accepts the keys in `good` (key -> key id) and rejects the rest."""

    def answer(recorded: Recorded) -> Reply:
        key = recorded.headers.get("xi-api-key", "")
        if key in good:
            body = {"balance": 42.5, "topups": []}
            return Reply(200, body, {"x-breeze-api-key-id": good[key]})
        return Reply(401, {"code": "AUTH_INVALID_SESSION", "detail": "invalid key", "error": "unauthorized"})

    return answer


@pytest.fixture
def admin_slack(slack_api: FakeServer, breeze: FakeServer) -> FakeServer:
    slack_api.route("GET", "/api/users.info", roles)
    slack_api.route("POST", "/api/users.info", roles)
    slack_api.route("POST", "/api/views.open", Reply(200, {"ok": True, "view": {"id": "V0001"}}))
    breeze.route("GET", "/v1/balance", key_checker({API_KEY: "key_env111", NEW_KEY: NEW_KEY_ID}))
    return slack_api


def opened_view(slack_api: FakeServer) -> dict[str, Any]:
    """The modal the app asked Slack to open."""
    request = slack_api.wait_for(1, path="/api/views.open")[-1]
    try:
        body = request.json()
    except ValueError:
        body = request.form()
    view = body["view"]
    return json.loads(view) if isinstance(view, str) else view


def submission(
    view: dict[str, Any], key: str, user: str = ADMIN, team: str = TEAM_ID, enterprise: str | None = None
) -> dict[str, Any]:
    """The view_submission Slack sends when `user` submits the opened modal with `key`."""
    return {
        "type": "view_submission",
        "team": {"id": team, "domain": "acme"},
        "user": {"id": user, "username": user.lower(), "team_id": team},
        "api_app_id": "A0001",
        "token": "legacy-verification-token",
        "trigger_id": "2.3.4",
        "is_enterprise_install": enterprise is not None,
        "enterprise": {"id": enterprise, "name": "Org"} if enterprise else None,
        "view": {
            **view,
            "id": "V0001",
            "team_id": team,
            "state": {"values": {"api_key": {"api_key_input": {"type": "plain_text_input", "value": key}}}},
            "hash": "1.abc",
        },
    }


def button(action_id: str, response_url: str, user: str = ADMIN, team: str = TEAM_ID) -> dict[str, Any]:
    """The block_actions Slack sends when `user` clicks a button of an ephemeral message."""
    return {
        "type": "block_actions",
        "team": {"id": team, "domain": "acme"},
        "user": {"id": user, "team_id": team},
        "api_app_id": "A0001",
        "token": "legacy-verification-token",
        "trigger_id": "3.4.5",
        "container": {"type": "message", "is_ephemeral": True},
        "channel": {"id": "C0001", "name": "general"},
        "response_url": response_url,
        "actions": [
            {"action_id": action_id, "block_id": "key_actions", "type": "button", "action_ts": "1.2"}
        ],
    }


def set_key(
    slack: SlackClient, slack_api: FakeServer, hooks: FakeServer, response_url: str, key: str = NEW_KEY
) -> dict[str, Any]:
    """An admin runs set-key and submits `key`; returns the confirmation posted to response_url."""
    ack = slack.command(response_url, "set-key", user_id=ADMIN)
    assert ack.status_code == 200
    view = opened_view(slack_api)
    answer = slack.interaction(submission(view, key))
    assert answer.status_code == 200
    assert answer.content == b"", answer.text  # an empty 200 closes the modal
    path = response_url.removeprefix(hooks.url)
    return hooks.wait_for(1, path=path)[-1].json()


def stored_bytes(database_url: str) -> bytes:
    """Everything SQLite has on disk for the database: the file and its write-ahead log."""
    path = Path(database_url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())


def test_admin_sets_the_key_with_a_modal_and_balances_use_it(
    start_app: AppFactory,
    admin_slack: FakeServer,
    breeze: FakeServer,
    hooks: FakeServer,
    response_url: str,
    database_url: str,
    all_logs: pytest.LogCaptureFixture,
) -> None:
    _, slack = start_app()

    confirmation = set_key(slack, admin_slack, hooks, response_url)

    opened = admin_slack.received(path="/api/views.open")[0]
    body = opened.json() if opened.body.startswith(b"{") else opened.form()
    assert body["trigger_id"] == "1.2.3"
    view = opened_view(admin_slack)
    assert view["callback_id"] == "set_key_modal"
    assert view["blocks"][1]["element"]["type"] == "plain_text_input"
    said = texts(confirmation)
    assert "Breeze API key saved" in said
    assert "…9876" in said
    assert NEW_KEY_ID in said
    assert "42.5 credits" in said
    assert confirmation["response_type"] == "ephemeral"
    assert NEW_KEY not in json.dumps(confirmation)

    later = f"{response_url}-later"
    reply = ask(slack, hooks, later)
    assert "42.5 credits" in texts(reply.json())
    assert breeze.received()[-1].headers["xi-api-key"] == NEW_KEY

    assert NEW_KEY.encode() not in stored_bytes(database_url)
    assert all(NEW_KEY not in record.getMessage() for record in all_logs.records)


def test_a_key_breeze_rejects_shows_an_inline_error_and_is_not_saved(
    start_app: AppFactory, admin_slack: FakeServer, breeze: FakeServer, hooks: FakeServer, response_url: str
) -> None:
    _, slack = start_app()
    slack.command(response_url, "set-key", user_id=ADMIN)
    view = opened_view(admin_slack)

    answer = slack.interaction(submission(view, "brz_wrong_key_0000"))

    assert answer.status_code == 200
    body = answer.json()
    assert body["response_action"] == "errors"
    assert "Breeze did not accept the API key" in body["errors"]["api_key"]
    assert breeze.received()[-1].headers["xi-api-key"] == "brz_wrong_key_0000"
    reply = ask(slack, hooks, f"{response_url}-after")
    assert breeze.received()[-1].headers["xi-api-key"] == API_KEY  # still the environment's key
    assert "42.5 credits" in texts(reply.json())


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("", "Paste the API key"),
        ("brz key with spaces", "not an API key"),
        ("brz_\u00e9t\u00e9", "not an API key"),
    ],
)
def test_a_malformed_key_is_refused_before_asking_breeze(
    start_app: AppFactory,
    admin_slack: FakeServer,
    breeze: FakeServer,
    response_url: str,
    typed: str,
    error: str,
) -> None:
    _, slack = start_app()
    slack.command(response_url, "set-key", user_id=ADMIN)
    view = opened_view(admin_slack)

    answer = slack.interaction(submission(view, typed))

    assert error in answer.json()["errors"]["api_key"]
    assert breeze.received() == []


def test_breeze_too_slow_for_the_modal_is_an_inline_error(
    start_app: AppFactory, admin_slack: FakeServer, breeze: FakeServer, response_url: str
) -> None:
    breeze.route("GET", "/v1/balance", Reply(200, {"balance": 1}, delay=2.6))
    _, slack = start_app()
    slack.command(response_url, "set-key", user_id=ADMIN)
    view = opened_view(admin_slack)

    answer = slack.interaction(submission(view, NEW_KEY))

    assert "took too long" in answer.json()["errors"]["api_key"]


@pytest.mark.parametrize("subcommand", ["set-key", "remove-key", "status"])
def test_members_are_refused_politely_and_told_who_can(
    start_app: AppFactory,
    admin_slack: FakeServer,
    breeze: FakeServer,
    hooks: FakeServer,
    response_url: str,
    subcommand: str,
) -> None:
    _, slack = start_app(breeze_admin_user_ids=LISTED)

    reply = ask(slack, hooks, response_url, subcommand, user_id=MEMBER).json()

    said = texts(reply)
    assert "only workspace admins and owners" in said
    assert f"<@{LISTED}>" in said
    assert admin_slack.received(path="/api/views.open") == []
    assert breeze.received() == []
    assert "…" not in said  # nothing about the key


def test_a_forged_submission_from_a_member_is_not_saved(
    start_app: AppFactory, admin_slack: FakeServer, hooks: FakeServer, breeze: FakeServer, response_url: str
) -> None:
    _, slack = start_app()
    slack.command(response_url, "set-key", user_id=ADMIN)
    view = opened_view(admin_slack)

    answer = slack.interaction(submission(view, NEW_KEY, user=MEMBER))

    assert "Only workspace admins and owners" in answer.json()["errors"]["api_key"]
    assert breeze.received() == []
    ask(slack, hooks, f"{response_url}-after")
    assert breeze.received()[-1].headers["xi-api-key"] == API_KEY


def test_owners_and_listed_users_count_as_admins(
    start_app: AppFactory, admin_slack: FakeServer, hooks: FakeServer, response_url: str
) -> None:
    _, slack = start_app(breeze_admin_user_ids=LISTED)

    for user in (OWNER, LISTED):
        slack.command(f"{response_url}-{user}", "set-key", user_id=user)
    admin_slack.wait_for(2, path="/api/views.open")
    asked = [r.query.get("user") for r in admin_slack.received(path="/api/users.info")]
    assert LISTED not in asked  # listed users need no Slack lookup


def test_status_shows_the_source_and_what_breeze_says(
    start_app: AppFactory, admin_slack: FakeServer, hooks: FakeServer, response_url: str
) -> None:
    _, slack = start_app()

    before = texts(ask(slack, hooks, response_url, "status", user_id=ADMIN).json())
    assert "single-workspace" in before
    assert "BREEZE_API_KEY" in before
    assert f"…{API_KEY[-4:]}" in before
    assert "accepts it" in before
    assert API_KEY not in before

    set_key(slack, admin_slack, hooks, f"{response_url}-set")
    after = texts(ask(slack, hooks, f"{response_url}-2", "status", user_id=ADMIN).json())
    assert "stored for this workspace" in after
    assert "…9876" in after
    assert NEW_KEY_ID in after
    assert f"<@{ADMIN}>" in after
    assert "<!date^" in after


def test_status_with_no_key_says_how_to_set_one(
    start_app: AppFactory, admin_slack: FakeServer, hooks: FakeServer, breeze: FakeServer, response_url: str
) -> None:
    _, slack = start_app(breeze_api_key=None)

    said = texts(ask(slack, hooks, response_url, "status", user_id=ADMIN).json())

    assert "none set" in said
    assert "/breeze-balance set-key" in said
    assert breeze.received() == []


def test_remove_key_asks_for_confirmation_then_removes(
    start_app: AppFactory, admin_slack: FakeServer, breeze: FakeServer, hooks: FakeServer, response_url: str
) -> None:
    _, slack = start_app(breeze_api_key=None)
    set_key(slack, admin_slack, hooks, f"{response_url}-set")
    prompt_url = f"{response_url}-remove"

    prompt = ask(slack, hooks, prompt_url, "remove-key", user_id=ADMIN).json()

    assert "Remove the Breeze API key" in texts(prompt)
    buttons = prompt["blocks"][1]["elements"]
    assert [b["action_id"] for b in buttons] == ["remove_key_confirm", "remove_key_cancel"]
    assert buttons[0]["style"] == "danger"
    assert "confirm" in buttons[0]

    assert slack.interaction(button("remove_key_confirm", prompt_url)).status_code == 200
    done = hooks.wait_for(2, path=prompt_url.removeprefix(hooks.url))[-1].json()
    assert done["replace_original"] is True
    assert "removed this workspace's Breeze API key" in texts(done)

    reply = ask(slack, hooks, f"{response_url}-after").json()
    assert "No Breeze API key is set up for this workspace yet" in texts(reply)


def test_cancel_keeps_the_key(
    start_app: AppFactory, admin_slack: FakeServer, breeze: FakeServer, hooks: FakeServer, response_url: str
) -> None:
    _, slack = start_app(breeze_api_key=None)
    set_key(slack, admin_slack, hooks, f"{response_url}-set")
    prompt_url = f"{response_url}-remove"
    ask(slack, hooks, prompt_url, "remove-key", user_id=ADMIN)

    slack.interaction(button("remove_key_cancel", prompt_url))

    done = hooks.wait_for(2, path=prompt_url.removeprefix(hooks.url))[-1].json()
    assert "Kept the Breeze API key" in texts(done)
    ask(slack, hooks, f"{response_url}-after")
    assert breeze.received()[-1].headers["xi-api-key"] == NEW_KEY


def test_a_member_clicking_remove_does_not_remove(
    start_app: AppFactory, admin_slack: FakeServer, breeze: FakeServer, hooks: FakeServer, response_url: str
) -> None:
    _, slack = start_app(breeze_api_key=None)
    set_key(slack, admin_slack, hooks, f"{response_url}-set")
    prompt_url = f"{response_url}-remove"

    slack.interaction(button("remove_key_confirm", prompt_url, user=MEMBER))

    refused = hooks.wait_for(1, path=prompt_url.removeprefix(hooks.url))[-1].json()
    assert "only workspace admins and owners" in texts(refused)
    ask(slack, hooks, f"{response_url}-after")
    assert breeze.received()[-1].headers["xi-api-key"] == NEW_KEY


def test_remove_key_without_a_stored_key(
    start_app: AppFactory, admin_slack: FakeServer, hooks: FakeServer, response_url: str
) -> None:
    _, slack = start_app()

    said = texts(ask(slack, hooks, response_url, "remove-key", user_id=ADMIN).json())

    assert "no stored Breeze API key" in said
    assert "BREEZE_API_KEY" in said


def test_text_after_set_key_is_ignored_and_never_echoed(
    start_app: AppFactory, admin_slack: FakeServer, hooks: FakeServer, response_url: str
) -> None:
    _, slack = start_app()

    reply = ask(slack, hooks, response_url, f"set-key {NEW_KEY}", user_id=ADMIN).json()

    assert "ignored the text after `set-key`" in texts(reply)
    assert NEW_KEY not in json.dumps(reply)
    assert NEW_KEY not in json.dumps(opened_view(admin_slack))


def test_when_slack_cannot_say_who_is_admin_the_reply_says_so(
    start_app: AppFactory, admin_slack: FakeServer, hooks: FakeServer, response_url: str
) -> None:
    admin_slack.route("GET", "/api/users.info", Reply(200, {"ok": False, "error": "missing_scope"}))
    _, slack = start_app()

    said = texts(ask(slack, hooks, response_url, "set-key", user_id=ADMIN).json())

    assert "could not tell me whether you are a workspace admin" in said
    assert "ADMIN_CHECK_FAILED" in said
    assert admin_slack.received(path="/api/views.open") == []


def test_an_expired_trigger_is_explained(
    start_app: AppFactory, admin_slack: FakeServer, hooks: FakeServer, response_url: str
) -> None:
    admin_slack.route("POST", "/api/views.open", Reply(200, {"ok": False, "error": "expired_trigger_id"}))
    _, slack = start_app()

    said = texts(ask(slack, hooks, response_url, "set-key", user_id=ADMIN).json())

    assert "expired_trigger_id" in said
    assert "run the command again" in said


def test_a_key_stored_under_lost_encryption_keys_is_explained(
    start_app: AppFactory, admin_slack: FakeServer, hooks: FakeServer, response_url: str, database_url: str
) -> None:
    app, slack = start_app(breeze_api_key=None)
    set_key(slack, admin_slack, hooks, f"{response_url}-set")
    app.stop()
    from tests.conftest import OLD_ENCRYPTION_KEY

    _, slack = start_app(breeze_api_key=None, breeze_encryption_keys=OLD_ENCRYPTION_KEY)
    said = texts(ask(slack, hooks, response_url).json())

    assert "cannot be decrypted" in said
    assert "KEY_UNREADABLE" in said


def test_a_slow_admin_check_still_answers_the_modal_in_time(
    start_app: AppFactory, admin_slack: FakeServer, breeze: FakeServer, response_url: str
) -> None:
    _, slack = start_app(breeze_admin_user_ids=LISTED)
    slack.command(response_url, "set-key", user_id=LISTED)  # listed: no users.info for the modal
    view = opened_view(admin_slack)
    admin_slack.route("GET", "/api/users.info", Reply(200, {"ok": True, "user": {"is_admin": True}}, delay=4))

    answer = slack.interaction(submission(view, NEW_KEY, user=ADMIN))

    assert "checking took too long" in answer.json()["errors"]["api_key"]
    assert breeze.received() == []


def test_without_a_bot_token_admin_commands_say_what_is_missing(
    start_app: AppFactory, admin_slack: FakeServer, hooks: FakeServer, response_url: str
) -> None:
    _, slack = start_app(slack_bot_token=None)

    said = texts(ask(slack, hooks, response_url, "status", user_id=ADMIN).json())

    assert "no Slack bot token" in said
    assert "SLACK_BOT_TOKEN" in said
    assert admin_slack.received(path="/api/users.info") == []
