"""`alert`, `notify` and `digest` through signed slash commands into the running app."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.config import Settings
from bot.deps import open_deps
from bot.services.worker import PassReport
from tests.conftest import AppFactory, ask, texts
from tests.fakes import AppServer, FakeServer, Recorded, Reply, SlackClient
from tests.integration.test_keys import ADMIN, LISTED, MEMBER, OWNER
from tests.integration.test_workspaces import ALPHA, BETA, FakeSlack, breeze_by_key, install, multi, set_key

ALERTS = "C0ALERTS01"
PRIVATE = "G0PRIV0001"
TYPED_IN = "C0001"  # the channel_id of SlackClient.command
POST = "/api/chat.postMessage"
CONVERSATIONS = "/api/conversations.info"
DATE_TOKEN = re.compile(r"<!date\^(\d+)\^")


class Workspace:
    """Slack's users.info (admins, owners, members, each with a time zone) and conversations.info."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.tz: dict[str, str | None] = {ADMIN: "America/New_York", OWNER: "Europe/Berlin"}
        self.channels: dict[str, Reply] = {}
        for method in ("GET", "POST"):
            server.route(method, "/api/users.info", self.users_info)
            server.route(method, CONVERSATIONS, self.conversations_info)
        server.route("POST", POST, Reply(200, {"ok": True, "ts": "1.2"}))

    def users_info(self, recorded: Recorded) -> Reply:
        user = recorded.query.get("user") or recorded.form().get("user", "")
        found: dict[str, Any] = {"id": user, "is_admin": user == ADMIN, "is_owner": user == OWNER}
        if self.tz.get(user):
            found["tz"] = self.tz[user]
        return Reply(200, {"ok": True, "user": found})

    def conversations_info(self, recorded: Recorded) -> Reply:
        channel = recorded.query.get("channel") or recorded.form().get("channel", "")
        public = {"ok": True, "channel": {"id": channel, "is_private": False, "is_member": False}}
        return self.channels.get(channel) or Reply(200, public)

    def asked_about(self) -> list[str]:
        """The channels the app asked conversations.info about."""
        return [
            r.query.get("channel") or r.form().get("channel", "")
            for r in self.server.received(path=CONVERSATIONS)
        ]


@pytest.fixture
def workspace(slack_api: FakeServer) -> Workspace:
    return Workspace(slack_api)


class Chat:
    """Runs commands as someone in the workspace; each gets its own response_url."""

    def __init__(self, slack: SlackClient, hooks: FakeServer, response_url: str) -> None:
        self.slack = slack
        self.hooks = hooks
        self.base = response_url
        self.numbers = itertools.count(1)

    def reply(self, text: str, user: str = ADMIN, **extra: str) -> dict[str, Any]:
        url = f"{self.base}-{next(self.numbers)}"
        payload: dict[str, Any] = ask(self.slack, self.hooks, url, text, user_id=user, **extra).json()
        return payload

    def says(self, text: str, user: str = ADMIN, **extra: str) -> str:
        return texts(self.reply(text, user, **extra))


@pytest.fixture
def chat(slack: SlackClient, hooks: FakeServer, response_url: str, workspace: Workspace) -> Chat:
    return Chat(slack, hooks, response_url)


def saved(database_url: str) -> list[dict[str, Any]]:
    """The rows of watch_rules, as SQLite has them."""
    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM watch_rules")]


def teams_in(database_url: str, table: str) -> set[str]:
    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
        return {row[0] for row in db.execute(f"SELECT team_id FROM {table}")}  # noqa: S608 - fixed names


def one_pass(settings: Settings) -> PassReport:
    """One worker pass over the app's database, in this process, as `python -m bot worker --once`."""

    async def run() -> PassReport:
        async with open_deps(settings) as deps:
            return await deps.worker.run_pass()

    return asyncio.run(run())


def posted(slack_api: FakeServer) -> list[dict[str, Any]]:
    found = []
    for request in slack_api.received(path=POST):
        try:
            found.append(request.json())
        except ValueError:
            found.append(request.form())
    return found


def next_digest_at(said: str) -> datetime:
    """The moment of the `next <!date^…>` in the digest line of a rules reply."""
    line = next(line for line in said.splitlines() if line.startswith("*Digest:*"))
    match = DATE_TOKEN.search(line)
    assert match, line
    return datetime.fromtimestamp(int(match.group(1)), UTC)


# --- alert: set, show, remove --------------------------------------------------------------------


def test_an_admin_sets_shows_and_removes_the_alert(
    chat: Chat, workspace: Workspace, database_url: str
) -> None:
    said = chat.says("alert 1,500")

    assert ":white_check_mark:" in said
    assert f"I'll post in <#{TYPED_IN}> once when the balance falls below 1,500 credits" in said
    assert f"*Alert:* below 1,500 credits in <#{TYPED_IN}> (armed)" in said
    assert workspace.asked_about() == [TYPED_IN]
    [row] = saved(database_url)
    assert (row["alert_threshold"], row["alert_channel"], row["alert_set_by"]) == ("1500", TYPED_IN, ADMIN)
    assert row["alert_armed"]

    shown = chat.says("alert")
    assert f"*Alert:* below 1,500 credits in <#{TYPED_IN}>" in shown
    assert "*Top-up notices:* off." in shown
    assert "*Digest:* off." in shown

    removed = chat.says("alert off")
    assert "The low-balance alert is off" in removed
    assert "*Alert:* off." in removed
    assert saved(database_url) == []  # no rule left: the workspace is not checked any more

    assert "*Alert:* off." in chat.says("alert")


def test_status_shows_every_rule_beside_the_key(chat: Chat) -> None:
    before = chat.says("status")
    assert "*Alert:* off." in before
    assert "*Top-up notices:* off." in before
    assert "*Digest:* off." in before

    chat.says("alert 1,500")
    chat.says(f"notify topups on <#{ALERTS}|alerts>")
    chat.says("digest daily 08:30")

    said = chat.says("status")
    assert "*Mode:*" in said
    assert "BREEZE_API_KEY" in said
    assert f"*Alert:* below 1,500 credits in <#{TYPED_IN}>" in said
    assert f"*Top-up notices:* on, in <#{ALERTS}>" in said
    assert f"*Digest:* daily at 08:30 America/New_York in <#{TYPED_IN}>; next <!date^" in said


@pytest.mark.parametrize(
    ("text", "shown", "stored", "channel"),
    [
        ("alert 2500.5", "2,500.5 credits", "2500.5", TYPED_IN),
        ("alert 1,500", "1,500 credits", "1500", TYPED_IN),
        ("alert 1,234,567.125", "1,234,567.125 credits", "1234567.125", TYPED_IN),
        ("alert 0.5", "0.5 credits", "0.5", TYPED_IN),
        ("alert 1", "1 credit", "1", TYPED_IN),
        (f"alert 1,500 <#{ALERTS}|alerts>", "1,500 credits", "1500", ALERTS),
        (f"alert 1,500 <#{ALERTS}>", "1,500 credits", "1500", ALERTS),
        (f"alert 1500 {ALERTS}", "1,500 credits", "1500", ALERTS),
        (f"ALERT 750.250 <#{ALERTS}|>", "750.25 credits", "750.25", ALERTS),
    ],
)
def test_thresholds_and_channels_are_read_exactly(
    chat: Chat, workspace: Workspace, database_url: str, text: str, shown: str, stored: str, channel: str
) -> None:
    said = chat.says(text)

    assert f"falls below {shown}" in said
    assert f"<#{channel}>" in said
    assert f"*Alert:* below {shown} in <#{channel}>" in chat.says("alert")
    [row] = saved(database_url)
    assert Decimal(row["alert_threshold"]) == Decimal(stored)
    assert row["alert_channel"] == channel
    assert workspace.asked_about() == [channel]


def test_setting_the_alert_again_replaces_it(chat: Chat, database_url: str) -> None:
    chat.says("alert 1,500")

    chat.says(f"alert 200 <#{ALERTS}>")

    [row] = saved(database_url)
    assert (row["alert_threshold"], row["alert_channel"]) == ("200", ALERTS)
    assert f"*Alert:* below 200 credits in <#{ALERTS}>" in chat.says("alert")


# --- what is not understood ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "echo"),
    [
        ("alert lots", "“lots”"),
        ("alert -5", "“-5”"),
        ("alert 0", "“0”"),
        ("alert 0.000", "“0.000”"),
        ("alert 1,50", "“1,50”"),
        ("alert 1.0005", "“1.0005”"),
        ("alert 1e5", "“1e5”"),
        ("alert 1500 #general", "“#general”"),
        ("alert 1500 general", "“general”"),
        ("alert off now", "“now”"),
        ("alert <script>", "“&lt;script&gt;”"),
        ("digest hourly", "“hourly”"),
        ("digest daily 25:00", "“25:00”"),
        ("digest daily 9am", "“9am”"),
        (f"digest daily <#{ALERTS}> <#C0OTHER001>", "only one channel"),
        ("notify topups maybe", "“maybe”"),
        ("notify balances on", "“balances”"),
        ("notify on", "`topups`"),
        ("notify topups", "Add `on` or `off`"),
    ],
)
def test_nonsense_gets_a_usage_line_and_nothing_is_saved(
    chat: Chat, workspace: Workspace, database_url: str, text: str, echo: str
) -> None:
    reply = chat.reply(text)

    said = texts(reply)
    assert "Usage" in said
    assert echo in said
    assert "<script>" not in json.dumps(reply)
    assert saved(database_url) == []
    assert workspace.asked_about() == []  # refused before any channel was looked at


def test_a_long_nonsense_threshold_is_shortened_and_escaped(chat: Chat) -> None:
    reply = chat.reply("alert " + "<b>" * 200)

    raw = json.dumps(reply)
    assert "<b>" not in raw
    assert "&lt;b&gt;" in raw
    assert "&lt;b&gt;" * 20 not in raw
    assert "Usage" in texts(reply)


# --- who may set rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "doing"),
    [
        ("alert 1500", "set the low-balance alert"),
        (f"alert 1500 <#{ALERTS}>", "set the low-balance alert"),
        ("alert", "set the low-balance alert"),
        ("alert lots", "set the low-balance alert"),
        ("notify topups on", "turn top-up notices on or off"),
        ("digest daily 08:00", "set the balance digest"),
        ("digest off", "set the balance digest"),
    ],
)
def test_members_are_refused_politely_and_nothing_is_saved(
    chat: Chat, workspace: Workspace, database_url: str, text: str, doing: str
) -> None:
    said = chat.says(text, user=MEMBER)

    assert f"Sorry, only workspace admins and owners can {doing}" in said
    assert "Usage" not in said
    assert saved(database_url) == []
    assert workspace.asked_about() == []
    assert "*Alert:* off." in chat.says("alert", user=ADMIN)


def test_a_member_cannot_remove_an_admins_rules(chat: Chat, database_url: str) -> None:
    chat.says("alert 1,500")
    chat.says("notify topups on")

    for text in ("alert off", "notify topups off", "notify off"):
        assert "Sorry, only workspace admins and owners" in chat.says(text, user=MEMBER)

    [row] = saved(database_url)
    assert row["alert_threshold"] == "1500"
    assert row["topups_channel"] == TYPED_IN


def test_owners_and_listed_users_may_set_rules(
    start_app: AppFactory,
    workspace: Workspace,
    slack_api: FakeServer,
    hooks: FakeServer,
    response_url: str,
    database_url: str,
) -> None:
    _, slack = start_app(breeze_admin_user_ids=LISTED)
    chat = Chat(slack, hooks, response_url)

    assert "falls below 100 credits" in chat.says("alert 100", user=OWNER)
    assert "I'll post each new top-up" in chat.says("notify topups on", user=LISTED)
    refused = chat.says("digest daily", user=MEMBER)

    assert f"<@{LISTED}>" in refused  # the refusal names who else may
    [row] = saved(database_url)
    assert (row["alert_set_by"], row["topups_set_by"], row["digest_frequency"]) == (OWNER, LISTED, None)
    asked = [r.query.get("user") for r in slack_api.received(path="/api/users.info")]
    assert LISTED not in asked  # listed users need no Slack lookup


# --- channels the app cannot post in -------------------------------------------------------------

PRIVATE_OUTSIDE = Reply(200, {"ok": True, "channel": {"id": PRIVATE, "is_private": True, "is_member": False}})
NOT_FOUND = Reply(200, {"ok": False, "error": "channel_not_found"})
ARCHIVED = Reply(200, {"ok": True, "channel": {"id": PRIVATE, "is_private": False, "is_archived": True}})
PRIVATE_INSIDE = Reply(200, {"ok": True, "channel": {"id": PRIVATE, "is_private": True, "is_member": True}})
PUBLIC_OUTSIDE = Reply(200, {"ok": True, "channel": {"id": PRIVATE, "is_private": False, "is_member": False}})
MISSING_SCOPE = Reply(200, {"ok": False, "error": "missing_scope", "needed": "groups:read"})


@pytest.mark.parametrize("text", [f"alert 1500 <#{PRIVATE}|secret>", f"notify topups on <#{PRIVATE}>"])
@pytest.mark.parametrize("answer", [PRIVATE_OUTSIDE, NOT_FOUND], ids=["private", "not_found"])
def test_a_private_channel_the_app_is_not_in_is_refused(
    chat: Chat, workspace: Workspace, database_url: str, text: str, answer: Reply
) -> None:
    workspace.channels[PRIVATE] = answer

    said = chat.says(text)

    assert f"I cannot post in <#{PRIVATE}>" in said
    assert "Invite me first" in said
    assert "/invite @Breeze Balance" in said
    assert saved(database_url) == []
    assert workspace.asked_about() == [PRIVATE]


def test_a_digest_for_a_private_channel_the_app_is_not_in_is_refused(
    chat: Chat, workspace: Workspace, database_url: str
) -> None:
    workspace.channels[PRIVATE] = PRIVATE_OUTSIDE

    said = chat.says(f"digest weekly 10:00 <#{PRIVATE}|secret>")

    assert "Invite me first" in said
    assert saved(database_url) == []


def test_a_command_typed_in_a_private_channel_the_app_is_not_in_is_refused(
    chat: Chat, workspace: Workspace, database_url: str
) -> None:
    workspace.channels[PRIVATE] = PRIVATE_OUTSIDE

    said = chat.says("alert 1500", channel_id=PRIVATE, channel_name="privategroup")

    assert "Invite me first" in said
    assert saved(database_url) == []


def test_an_archived_channel_is_refused(chat: Chat, workspace: Workspace, database_url: str) -> None:
    workspace.channels[PRIVATE] = ARCHIVED

    said = chat.says(f"alert 1500 <#{PRIVATE}|old>")

    assert f"<#{PRIVATE}> is archived" in said
    assert saved(database_url) == []


def test_a_direct_message_is_refused_without_asking_slack(
    chat: Chat, workspace: Workspace, database_url: str
) -> None:
    said = chat.says("alert 1500", channel_id="D0DIRECT01", channel_name="directmessage")

    assert "cannot post alerts in a direct message" in said
    assert saved(database_url) == []
    assert workspace.asked_about() == []


@pytest.mark.parametrize(
    "answer",
    [PUBLIC_OUTSIDE, PRIVATE_INSIDE, MISSING_SCOPE],
    ids=["public_not_member", "private_member", "missing_scope"],
)
def test_a_channel_the_app_can_or_may_post_in_is_accepted(
    chat: Chat, workspace: Workspace, database_url: str, answer: Reply
) -> None:
    workspace.channels[PRIVATE] = answer

    said = chat.says(f"alert 1500 <#{PRIVATE}|somewhere>")

    assert f"I'll post in <#{PRIVATE}>" in said
    [row] = saved(database_url)
    assert row["alert_channel"] == PRIVATE


def test_show_and_off_do_not_look_at_channels(chat: Chat, workspace: Workspace) -> None:
    workspace.channels[TYPED_IN] = NOT_FOUND

    assert "*Alert:* off." in chat.says("alert")
    assert "The digest is off" in chat.says("digest off")
    assert "Top-up notices are off" in chat.says("notify off")

    assert workspace.asked_about() == []


# --- digests -------------------------------------------------------------------------------------


def test_a_daily_digest_is_at_the_time_given_in_the_admins_time_zone(
    chat: Chat, workspace: Workspace, database_url: str
) -> None:
    workspace.tz[ADMIN] = "Asia/Tokyo"
    before = datetime.now(UTC)

    said = chat.says(f"digest daily 08:30 <#{ALERTS}|alerts>")

    assert f"A digest in <#{ALERTS}> every day at 08:30 Asia/Tokyo, starting at the next one" in said
    assert f"*Digest:* daily at 08:30 Asia/Tokyo in <#{ALERTS}>" in said
    first = next_digest_at(said)
    local = first.astimezone(ZoneInfo("Asia/Tokyo"))
    assert (local.hour, local.minute) == (8, 30)
    assert first > before  # never now or in the past
    assert first - before <= timedelta(days=1)
    [row] = saved(database_url)
    assert (row["digest_frequency"], row["digest_time"], row["digest_tz"], row["digest_channel"]) == (
        "daily",
        "08:30",
        "Asia/Tokyo",
        ALERTS,
    )


def test_a_weekly_digest_is_on_mondays_at_nine_by_default(chat: Chat, database_url: str) -> None:
    before = datetime.now(UTC)

    said = chat.says("digest weekly")

    assert f"A digest in <#{TYPED_IN}> every Monday at 09:00 America/New_York" in said
    assert "*Digest:* weekly at 09:00 America/New_York on Mondays" in said
    first = next_digest_at(said)
    local = first.astimezone(ZoneInfo("America/New_York"))
    assert (local.weekday(), local.hour, local.minute) == (0, 9, 0)
    assert first > before
    assert first - before <= timedelta(days=7)
    [row] = saved(database_url)
    assert (row["digest_frequency"], row["digest_time"]) == ("weekly", "09:00")


def test_the_digest_time_and_channel_may_come_in_either_order(chat: Chat, database_url: str) -> None:
    said = chat.says(f"digest daily <#{ALERTS}|alerts> 17:45")

    assert "every day at 17:45" in said
    [row] = saved(database_url)
    assert (row["digest_time"], row["digest_channel"]) == ("17:45", ALERTS)


def test_without_a_time_zone_from_slack_the_digest_is_in_utc_and_says_so(
    chat: Chat, workspace: Workspace, database_url: str
) -> None:
    workspace.tz[ADMIN] = None

    said = chat.says("digest daily 07:00")

    assert "07:00 UTC (Slack did not tell me your time zone)" in said
    first = next_digest_at(said)
    assert (first.hour, first.minute) == (7, 0)
    [row] = saved(database_url)
    assert row["digest_tz"] == "UTC"


def test_a_listed_user_slack_will_not_describe_gets_a_utc_digest(
    start_app: AppFactory, slack_api: FakeServer, hooks: FakeServer, response_url: str, database_url: str
) -> None:
    for method in ("GET", "POST"):
        slack_api.route(method, "/api/users.info", Reply(200, {"ok": False, "error": "user_not_found"}))
        slack_api.route(method, CONVERSATIONS, PUBLIC_OUTSIDE)
    _, slack = start_app(breeze_admin_user_ids=LISTED)

    said = Chat(slack, hooks, response_url).says("digest daily 06:15", user=LISTED)

    assert "06:15 UTC (Slack did not tell me your time zone)" in said
    [row] = saved(database_url)
    assert (row["digest_tz"], row["digest_set_by"]) == ("UTC", LISTED)


def test_a_new_digest_is_not_posted_at_once(
    running: tuple[AppServer, SlackClient],
    chat: Chat,
    slack_api: FakeServer,
    breeze: FakeServer,
    database_url: str,
) -> None:
    app, _ = running
    chat.says("digest daily")
    chat.says("digest weekly 23:59 <#C0ALERTS01>")  # replaces the daily one
    checks_before = len(breeze.received(path="/v1/balance"))

    report = one_pass(app.settings)

    assert report.checked == 1
    assert len(breeze.received(path="/v1/balance")) > checks_before  # the workspace was checked
    assert posted(slack_api) == []
    assert "*Digest:* weekly at 23:59" in chat.says("digest")
    assert "_Last checked <!date^" in chat.says("digest")


def test_a_new_alert_below_the_balance_is_posted_on_the_first_check(
    running: tuple[AppServer, SlackClient], chat: Chat, slack_api: FakeServer
) -> None:
    app, _ = running
    chat.says(f"alert 2,000,000 <#{ALERTS}|alerts>")  # the balance is 1,234,567.891

    one_pass(app.settings)

    [post] = posted(slack_api)
    assert post["channel"] == ALERTS
    assert "1,234,567.891 credits" in post["text"]
    assert "fired, waiting for the balance to recover" in chat.says("alert")


# --- top-up notices ------------------------------------------------------------------------------


def test_top_up_notices_on_and_off(chat: Chat, database_url: str) -> None:
    said = chat.says("notify topups on")

    assert f"I'll post each new top-up in <#{TYPED_IN}>" in said
    assert "those already made are not announced" in said
    assert f"*Top-up notices:* on, in <#{TYPED_IN}>" in said
    [row] = saved(database_url)
    assert (row["topups_channel"], row["topups_set_by"]) == (TYPED_IN, ADMIN)
    assert row["topups_baselined"]  # the top-ups Breeze lists now are the baseline
    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
        seen = {r[0] for r in db.execute("SELECT topup_key FROM watch_topups")}
    assert seen == {"tp_1", "tp_2", "tp_3"}

    off = chat.says("notify topups off")
    assert "Top-up notices are off" in off
    assert "*Top-up notices:* off." in off
    assert saved(database_url) == []


def test_top_ups_there_when_notices_were_turned_on_are_not_announced(
    running: tuple[AppServer, SlackClient], chat: Chat, slack_api: FakeServer
) -> None:
    app, _ = running
    chat.says(f"notify top-ups on <#{ALERTS}>")

    one_pass(app.settings)

    assert posted(slack_api) == []


# --- help and the balance ------------------------------------------------------------------------


def test_help_mentions_the_rule_subcommands(chat: Chat) -> None:
    said = chat.says("help", user=MEMBER)

    assert "/breeze-balance alert 1,500 #channel" in said
    assert "/breeze-balance notify topups on #channel" in said
    assert "/breeze-balance digest daily 09:00 #channel" in said
    assert "`off` stops each one" in said


def test_the_balance_answer_works_with_no_rules_and_no_samples(chat: Chat, database_url: str) -> None:
    reply = chat.reply("", user=MEMBER)

    said = texts(reply)
    assert "1,234,567.891 credits" in said
    assert ":hourglass:" not in said
    assert "Last 7 days" not in said
    assert "balance_trend" not in [block.get("block_id") for block in reply["blocks"]]
    assert saved(database_url) == []


# --- uninstall -----------------------------------------------------------------------------------


def breeze_with_topups(recorded: Recorded) -> Reply:
    """Each workspace's own balance, with a top-up of its own (so there are seen top-ups to forget)."""
    reply = breeze_by_key(recorded)
    if reply.status != 200 or not isinstance(reply.body, dict):
        return reply
    team = reply.headers["x-breeze-api-key-id"]
    topup = {
        "topup_id": f"tp_{team}",
        "amount": 5,
        "status": "succeeded",
        "created_at": "2026-11-01T09:30:00Z",
    }
    return Reply(200, {**reply.body, "topups": [topup]}, reply.headers)


@pytest.fixture
def installs(slack_api: FakeServer, breeze: FakeServer) -> FakeSlack:
    breeze.route("GET", "/v1/balance", breeze_with_topups)
    fake = FakeSlack(slack_api)
    public = Reply(200, {"ok": True, "channel": {"id": ALERTS, "is_private": False, "is_member": True}})
    slack_api.route("GET", CONVERSATIONS, public)
    # Posts are deferred, so they are still in the outbox when the workspace uninstalls.
    limited = Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "3600"})
    slack_api.route("POST", POST, limited)
    return fake


def test_uninstalling_forgets_that_workspaces_rules_samples_and_posts(
    start_app: AppFactory, installs: FakeSlack, slack_api: FakeServer, hooks: FakeServer, database_url: str
) -> None:
    app, slack = multi(start_app)
    for place in (ALPHA, BETA):
        assert install(slack, place).status_code == 200
        set_key(slack, slack_api, hooks, place)
        for number, text in enumerate(("alert 1,000", "notify topups on", "digest daily")):
            url = f"{hooks.url}/commands/{place.team_id}/rule-{number}"
            ack = slack.command(url, text, team_id=place.team_id, user_id=ADMIN, channel_id=ALERTS)
            assert ack.status_code == 200
            assert ":white_check_mark:" in texts(
                hooks.wait_for(1, path=url.removeprefix(hooks.url))[0].json()
            )
    one_pass(app.settings)  # samples for both; alerts (balances 111 and 222) wait in the outbox
    for table in ("watch_rules", "watch_samples", "watch_posts", "watch_topups"):
        assert teams_in(database_url, table) == {ALPHA.team_id, BETA.team_id}, table

    answer = slack.event(
        {
            "token": "legacy",
            "team_id": ALPHA.team_id,
            "api_app_id": "A0001",
            "event": {"type": "app_uninstalled"},
            "type": "event_callback",
            "event_id": "Ev2",
            "event_time": int(time.time()),
        }
    )

    assert answer.status_code == 200
    for table in ("watch_rules", "watch_samples", "watch_posts", "watch_topups"):
        assert teams_in(database_url, table) == {BETA.team_id}, table
    url = f"{hooks.url}/commands/{BETA.team_id}/still-there"
    slack.command(url, "alert", team_id=BETA.team_id, user_id=ADMIN)
    still = texts(hooks.wait_for(1, path=url.removeprefix(hooks.url))[0].json())
    assert f"*Alert:* below 1,000 credits in <#{ALERTS}>" in still


# --- a rule set again after every rule was removed ------------------------------------------------


def test_alert_off_drops_its_waiting_post_while_other_rules_remain(
    running: tuple[AppServer, SlackClient], chat: Chat, slack_api: FakeServer
) -> None:
    app, _ = running
    limited = Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"})
    slack_api.queue("POST", POST, limited)
    chat.says("notify topups on")
    chat.says(f"alert 2,000,000 <#{ALERTS}>")  # below at once: an alert is queued, Slack defers it
    one_pass(app.settings)
    assert len(slack_api.received(path=POST)) == 1

    chat.says("alert off")
    time.sleep(1.5)  # past Retry-After, so the deferred post is due again
    one_pass(app.settings)

    assert len(slack_api.received(path=POST)) == 1  # the removed rule's alert was not sent after all


def test_alert_off_drops_its_waiting_post_when_it_was_the_only_rule(
    running: tuple[AppServer, SlackClient], chat: Chat, slack_api: FakeServer
) -> None:
    app, _ = running
    limited = Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "1"})
    slack_api.queue("POST", POST, limited)
    chat.says(f"alert 2,000,000 <#{ALERTS}>")
    one_pass(app.settings)
    assert len(slack_api.received(path=POST)) == 1

    chat.says("alert off")
    time.sleep(1.5)
    one_pass(app.settings)

    assert len(slack_api.received(path=POST)) == 1


def test_an_alert_set_again_alerts_again_while_other_rules_remain(
    running: tuple[AppServer, SlackClient], chat: Chat, slack_api: FakeServer
) -> None:
    app, _ = running
    chat.says("notify topups on")
    chat.says(f"alert 2,000,000 <#{ALERTS}>")
    one_pass(app.settings)
    chat.says("alert off")

    chat.says(f"alert 2,000,000 <#{ALERTS}>")
    one_pass(app.settings)

    assert [p["channel"] for p in posted(slack_api)] == [ALERTS, ALERTS]


def test_an_alert_set_again_after_every_rule_was_removed_alerts_again(
    running: tuple[AppServer, SlackClient], chat: Chat, slack_api: FakeServer
) -> None:
    app, _ = running
    chat.says(f"alert 2,000,000 <#{ALERTS}>")
    one_pass(app.settings)
    assert len(posted(slack_api)) == 1
    chat.says("alert off")  # the only rule: the workspace's row goes

    chat.says(f"alert 2,000,000 <#{ALERTS}>")
    one_pass(app.settings)

    assert [p["channel"] for p in posted(slack_api)] == [ALERTS, ALERTS]
