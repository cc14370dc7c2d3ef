"""`alert days` and `alert spike` through signed slash commands into the running app: set, listed with
every other rule by `alert`, `status` and the Home tab, removed, explained when out of range, and refused
to members."""

from __future__ import annotations

import pytest

from tests.fakes import FakeServer, Reply, SlackClient
from tests.integration import test_rule_commands
from tests.integration.test_home import block, open_home
from tests.integration.test_keys import ADMIN, MEMBER
from tests.integration.test_rule_commands import ALERTS, PRIVATE, TYPED_IN, Chat, Workspace, saved

# The slash commands' fixtures: a workspace with an admin and public channels, and a chat in it.
chat = test_rule_commands.chat
workspace = test_rule_commands.workspace

DAYS_OFF = "*Runway alert:* off. `/breeze-balance alert days &lt;days&gt; [#channel]`"
SPIKE_OFF = "*Spike alert:* off. `/breeze-balance alert spike [&lt;multiple&gt;] [#channel]`"


def test_an_admin_sets_shows_and_removes_the_runway_alert(
    chat: Chat, workspace: Workspace, database_url: str
) -> None:
    said = chat.says("alert days 5")

    assert (
        f":white_check_mark: I'll post in <#{TYPED_IN}> once when the runway falls under 5 days at the "
        "last 7 complete days' rate" in said
    )
    assert f"*Runway alert:* under 5 days in <#{TYPED_IN}> (armed)" in said
    assert workspace.asked_about() == [TYPED_IN]
    [row] = saved(database_url)
    assert (row["days_under"], row["days_channel"], row["days_set_by"]) == (5, TYPED_IN, ADMIN)
    assert row["alert_threshold"] is None
    assert row["spike_multiple"] is None

    removed = chat.says("alert days off")
    assert ":wastebasket: The runway alert is off." in removed
    assert DAYS_OFF in removed
    assert saved(database_url) == []  # no rule left: the workspace is not checked any more


def test_an_admin_sets_shows_and_removes_the_spike_alert(chat: Chat, database_url: str) -> None:
    said = chat.says("alert spike")  # 3 times by default

    [row] = saved(database_url)
    assert (row["spike_multiple"], row["spike_channel"], row["spike_set_by"]) == ("3", TYPED_IN, ADMIN)
    for shown in (
        f"I'll post in <#{TYPED_IN}> when a day's spend is over 3x the usual day",
        "at most once a day",
        f"*Spike alert:* a day over 3x the usual day, in <#{TYPED_IN}>",
    ):
        assert shown in said

    moved = chat.says(f"alert spike 2.5 <#{ALERTS}|alerts>")
    assert f"*Spike alert:* a day over 2.5x the usual day, in <#{ALERTS}>" in moved
    [row] = saved(database_url)
    assert (row["spike_multiple"], row["spike_channel"]) == ("2.5", ALERTS)

    removed = chat.says("alert spike off")
    assert ":wastebasket: The spike alert is off." in removed
    assert SPIKE_OFF in removed
    assert saved(database_url) == []


def test_alert_and_status_list_every_rule_and_each_off_removes_only_its_own(
    chat: Chat, database_url: str
) -> None:
    shown = chat.says("alert")
    assert "*Alert:* off." in shown
    assert DAYS_OFF in shown
    assert SPIKE_OFF in shown

    chat.says("alert 1,500")
    chat.says(f"alert days 7 <#{ALERTS}>")
    chat.says("alert spike 4x")
    for said in (chat.says("alert"), chat.says("status")):
        assert f"*Alert:* below 1,500 credits in <#{TYPED_IN}> (armed)" in said
        assert f"*Runway alert:* under 7 days in <#{ALERTS}> (armed)" in said
        assert f"*Spike alert:* a day over 4x the usual day, in <#{TYPED_IN}>" in said

    chat.says("alert days off")
    [row] = saved(database_url)
    assert (row["alert_threshold"], row["days_under"], row["spike_multiple"]) == ("1500", None, "4")
    chat.says("alert off")
    [row] = saved(database_url)
    assert (row["alert_threshold"], row["days_under"], row["spike_multiple"]) == (None, None, "4")
    said = chat.says("alert spike off")
    assert "*Alert:* off." in said
    assert DAYS_OFF in said
    assert SPIKE_OFF in said
    assert saved(database_url) == []


DAYS_USAGE = "`/breeze-balance alert days &lt;days&gt; [#channel]`, `/breeze-balance alert days off`"
SPIKE_USAGE = "`/breeze-balance alert spike [&lt;multiple&gt;] [#channel]`, `/breeze-balance alert spike off`"


@pytest.mark.parametrize(
    ("text", "problem", "usage"),
    [
        ("alert days 0", "The runway alert takes a whole number of days from 1 to 90, not “0”.", DAYS_USAGE),
        (
            "alert days 91",
            "The runway alert takes a whole number of days from 1 to 90, not “91”.",
            DAYS_USAGE,
        ),
        ("alert days", "The runway alert takes a whole number of days from 1 to 90, like", DAYS_USAGE),
        ("alert spike 1.2", "The spike alert takes a multiple from 1.5 to 100, not “1.2”.", SPIKE_USAGE),
        ("alert spike 101", "The spike alert takes a multiple from 1.5 to 100, not “101”.", SPIKE_USAGE),
    ],
)
def test_out_of_range_is_explained_and_nothing_is_saved(
    chat: Chat, workspace: Workspace, database_url: str, text: str, problem: str, usage: str
) -> None:
    said = chat.says(text)

    assert said.startswith(problem), said
    assert said.endswith(f"Usage: {usage}"), said
    assert saved(database_url) == []
    assert workspace.asked_about() == []


@pytest.mark.parametrize(
    "text", ["alert days 5", "alert spike", f"alert spike 2 <#{ALERTS}>", "alert days off"]
)
def test_members_are_refused_and_nothing_is_saved(chat: Chat, database_url: str, text: str) -> None:
    said = chat.says(text, user=MEMBER)

    assert "Sorry, only workspace admins and owners can" in said
    assert saved(database_url) == []


def test_a_member_cannot_remove_an_admins_runway_or_spike_alert(chat: Chat, database_url: str) -> None:
    chat.says("alert days 5")
    chat.says("alert spike")

    for text in ("alert days off", "alert spike off"):
        assert "Sorry, only workspace admins and owners" in chat.says(text, user=MEMBER)

    [row] = saved(database_url)
    assert (row["days_under"], row["spike_multiple"]) == (5, "3")


def test_a_private_channel_the_app_is_not_in_is_refused_before_saving(
    chat: Chat, workspace: Workspace, database_url: str
) -> None:
    not_member = {"ok": True, "channel": {"id": PRIVATE, "is_private": True, "is_member": False}}
    workspace.channels[PRIVATE] = Reply(200, not_member)

    for text in (f"alert days 5 <#{PRIVATE}|ops>", f"alert spike <#{PRIVATE}|ops>"):
        said = chat.says(text)
        assert "Invite me first with `/invite @Breeze Balance`" in said

    assert saved(database_url) == []


def test_the_home_tab_shows_the_runway_and_spike_alerts_to_admins(
    chat: Chat, slack: SlackClient, slack_api: FakeServer
) -> None:
    chat.says("alert days 5")
    chat.says(f"alert spike 2.5 <#{ALERTS}>")

    home = open_home(slack, slack_api, ADMIN)

    rules = block(home["view"], "watch_rules")["text"]["text"]
    assert f"*Runway alert:* under 5 days in <#{TYPED_IN}> (armed)" in rules
    assert f"*Spike alert:* a day over 2.5x the usual day, in <#{ALERTS}>" in rules


def test_help_mentions_the_runway_and_spike_alerts(chat: Chat) -> None:
    said = chat.says("help", user=MEMBER)

    assert "/breeze-balance alert days 5 #channel" in said
    assert "/breeze-balance alert spike #channel" in said
