"""The runway and spike alerts as Slack shows them, from the facts queued in the outbox."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from bot.domain.rules import DaysRule, PostKind, Rules, SpikeRule, WatchState
from bot.slack.blocks import notices, spend_alerts
from bot.slack.blocks.balance import Message
from tests.unit.test_spend_rules import DAYS_FACTS, SPIKE_FACTS

# The facts the domain queues for these posts.
DAYS = DAYS_FACTS
SPIKE = {**SPIKE_FACTS, "today": "1425.5", "times": "14.2"}


def shown(message: Message) -> str:
    """The fallback and every block's text, as a reader could see them."""
    return json.dumps(message.payload(), ensure_ascii=False)


def test_the_runway_alert_says_the_date_the_rate_and_what_drove_the_week() -> None:
    message = notices.render(PostKind.DAYS_ALERT, DAYS)

    assert message.text == (
        "Breeze runway is short: about 4.5 days left, until around Sun Dec 13 (alert under 5 days). "
        "Top up in Breeze."
    )
    said = shown(message)
    assert (
        "*About 4.5 days of credits left*, under the alert of 5 days: at 100 credits a day, "
        "the balance of 450 credits runs out around *Sun Dec 13*." in said
    )
    assert "Most of the last 7 days' spend: key *prod*, model *bluebell-v1-en*." in said
    assert "back above 5.5 days" in said
    assert message.payload()["response_type"] == "in_channel"


def test_a_runway_under_a_day_and_a_date_next_year() -> None:
    facts = {**DAYS, "days_left": "0.4", "until": "2027-01-01", "on": "2026-12-31"}

    message = notices.render(PostKind.DAYS_ALERT, facts)

    assert "less than a day left, until around Fri Jan 1, 2027" in message.text


def test_the_key_budget_running_out_first_is_said() -> None:
    facts = {**DAYS, "by_key_limit": "true", "key_remaining": "200"}

    said = shown(notices.render(PostKind.DAYS_ALERT, facts))

    assert "this key's own budget (200 credits left) runs out before the account does" in said
    assert "the balance of" not in said


def test_the_recovery_is_short() -> None:
    message = notices.render(PostKind.DAYS_RECOVERY, {**DAYS, "days_left": "12"})

    assert message.text == "Breeze runway recovered: about 12 days left (alert under 5 days)."
    assert "The Breeze runway is back to *about 12 days*, until around Sun Dec 13" in shown(message)


def test_the_spike_says_by_how_much_and_who() -> None:
    message = notices.render(PostKind.SPIKE, SPIKE)

    assert message.text == "Breeze spend spike: 1,425.5 credits today, 14.2x the usual day (alert over 3x)."
    said = shown(message)
    assert "*Breeze spend today is 14.2x the usual day*: 1,425.5 credits so far" in said
    assert "against 100 credits a day on average over the last 7 complete days" in said
    assert "Most of today's spend: key *batch*, model *bluebell-v2-multi*." in said


@pytest.mark.parametrize("kind", [PostKind.DAYS_ALERT, PostKind.SPIKE])
def test_names_from_breeze_are_escaped(kind: PostKind) -> None:
    facts = {
        **(DAYS if kind is PostKind.DAYS_ALERT else SPIKE),
        "top_key": "<!channel> & co",
        "top_model": "*x*",
    }

    said = shown(notices.render(kind, facts))

    assert "<!channel>" not in said
    assert "key *&lt;!channel&gt; &amp; co*" in said


@pytest.mark.parametrize("kind", [PostKind.DAYS_ALERT, PostKind.DAYS_RECOVERY, PostKind.SPIKE])
def test_missing_or_broken_facts_still_give_a_message(kind: PostKind) -> None:
    for facts in ({}, {"days": "x<y", "days_left": "NaN", "today": "lots", "until": "soon", "on": "?"}):
        message = notices.render(kind, facts)
        assert message.text
        assert "<y" not in shown(message)


def test_the_rules_say_when_the_runway_alert_has_fired() -> None:
    rules = Rules(days=DaysRule(5, "C0RUNWAY01", "U1"), spike=SpikeRule(Decimal("2.5"), "C0SPIKES01", "U1"))

    armed = spend_alerts.rules_lines(rules, WatchState())
    fired = spend_alerts.rules_lines(rules, WatchState(days_armed=False, days_crossings=1))

    assert armed == [
        "*Runway alert:* under 5 days in <#C0RUNWAY01> (armed)",
        "*Spike alert:* a day over 2.5x the usual day, in <#C0SPIKES01>",
    ]
    assert fired[0] == (
        "*Runway alert:* under 5 days in <#C0RUNWAY01> (fired, waiting for it to be back above 5.5 days)"
    )
