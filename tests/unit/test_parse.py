"""`parse`: the text after `/breeze-balance`, old subcommands unchanged, `alert`, `notify`, `digest`."""

from __future__ import annotations

import re
from datetime import date, time
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain.usage import Window
from bot.slack.commands import (
    USAGE,
    AlertArgs,
    Command,
    DigestArgs,
    NotifyArgs,
    UsageArgs,
    parse,
    parse_usage,
)
from bot.slack.ids import COMMAND, Subcommand

THRESHOLD_USAGE = f"`{COMMAND} alert &lt;credits&gt; [#channel]`, `{COMMAND} alert off`"
DAYS_USAGE = f"`{COMMAND} alert days &lt;days&gt; [#channel]`, `{COMMAND} alert days off`"
SPIKE_USAGE = f"`{COMMAND} alert spike [&lt;multiple&gt;] [#channel]`, `{COMMAND} alert spike off`"
ALERT_USAGE = f"{THRESHOLD_USAGE}; {DAYS_USAGE}; {SPIKE_USAGE}"
NOTIFY_USAGE = f"`{COMMAND} notify topups on [#channel]`, `{COMMAND} notify topups off`"
DIGEST_USAGE = f"`{COMMAND} digest daily|weekly [HH:MM] [#channel]`, `{COMMAND} digest off`"

PLAIN_CHANNEL = (
    "is plain text, not a channel link: pick the channel from Slack's autocomplete list as you type # "
    "so it becomes a link, or paste the channel id (like C0123ABCD)."
)
NOT_A_TIME = "is not a time: use HH:MM on a 24-hour clock, like 09:00 or 17:30."
PROFILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Escaped text may hold `&amp;`, `&lt;`, `&gt;` and no other `&`, and never a raw `<` or `>`.
MRKDWN_SAFE = re.compile(r"(?:[^&<>\n]|&amp;|&lt;|&gt;)*")


def alert_usage(problem: str) -> Command:
    return Command(Subcommand.ALERT, usage=f"{problem} Usage: {ALERT_USAGE}")


def days(count: int, channel: str | None = None) -> AlertArgs:
    return AlertArgs("set", channel=channel, rule="days", days=count)


def spike(multiple: str = "3", channel: str | None = None) -> AlertArgs:
    return AlertArgs("set", channel=channel, rule="spike", multiple=Decimal(multiple))


# `alert days` and `alert spike`, typed: what they set or remove.
DAYS_AND_SPIKE = {
    "alert days 5": days(5),
    "alert DAYS 1": days(1),
    "alert days 90": days(90),
    "alert days 007": days(7),
    "alert days 14 <#C0123ABCD|ops>": days(14, "C0123ABCD"),
    "alert days 14 C0123ABCD": days(14, "C0123ABCD"),
    "alert days off": AlertArgs("off", rule="days"),
    "alert days Remove": AlertArgs("off", rule="days"),
    "alert spike": spike(),
    "alert spike 2.5": spike("2.5"),
    "alert spike 1.5": spike("1.5"),
    "alert spike 100": spike("100"),
    "alert spike 100.00": spike("100"),
    "alert spike 002.50": spike("2.5"),
    "alert spike 4x": spike("4"),
    "alert spike 2.75X": spike("2.75"),
    "alert spike <#C0123ABCD|ops>": spike("3", "C0123ABCD"),
    "alert Spike 5 G0123ABCD": spike("5", "G0123ABCD"),
    "alert spike off": AlertArgs("off", rule="spike"),
    "alert spike none": AlertArgs("off", rule="spike"),
}


def notify_usage(problem: str) -> Command:
    return Command(Subcommand.NOTIFY, usage=f"{problem} Usage: {NOTIFY_USAGE}")


def digest_usage(problem: str) -> Command:
    return Command(Subcommand.DIGEST, usage=f"{problem} Usage: {DIGEST_USAGE}")


# --- ids -----------------------------------------------------------------------------------------


def test_subcommands_keep_their_order_and_values_with_the_new_ones_appended() -> None:
    assert [sub.value for sub in Subcommand] == [
        "",
        "share",
        "refresh",
        "help",
        "set-key",
        "remove-key",
        "status",
        "alert",
        "notify",
        "digest",
        "usage",
    ]


def test_usage_strings() -> None:
    assert USAGE == {
        Subcommand.ALERT: (
            "`/breeze-balance alert &lt;credits&gt; [#channel]`, `/breeze-balance alert off`; "
            "`/breeze-balance alert days &lt;days&gt; [#channel]`, `/breeze-balance alert days off`; "
            "`/breeze-balance alert spike [&lt;multiple&gt;] [#channel]`, `/breeze-balance alert spike off`"
        ),
        Subcommand.NOTIFY: (
            "`/breeze-balance notify topups on [#channel]`, `/breeze-balance notify topups off`"
        ),
        Subcommand.DIGEST: (
            "`/breeze-balance digest daily|weekly [HH:MM] [#channel]`, `/breeze-balance digest off`"
        ),
        Subcommand.USAGE: "`/breeze-balance usage [today|7d|30d|90d] [share]`",
    }
    for usage in USAGE.values():
        assert MRKDWN_SAFE.fullmatch(usage)


# --- the subcommands that were there before ------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        (None, Command(Subcommand.BALANCE)),
        ("", Command(Subcommand.BALANCE)),
        ("   ", Command(Subcommand.BALANCE)),
        ("\t\n ", Command(Subcommand.BALANCE)),
        ("balance", Command(Subcommand.BALANCE)),
        ("BALANCE", Command(Subcommand.BALANCE)),
        ("balance now", Command(Subcommand.BALANCE, ignored_text=True)),
        ("share", Command(Subcommand.SHARE)),
        ("SHARE", Command(Subcommand.SHARE)),
        ("  share \t please ", Command(Subcommand.SHARE, ignored_text=True)),
        ("refresh", Command(Subcommand.REFRESH)),
        ("Refresh", Command(Subcommand.REFRESH)),
        ("help", Command(Subcommand.HELP)),
        ("  help  ", Command(Subcommand.HELP)),
        ("?", Command(Subcommand.HELP)),
        ("-h", Command(Subcommand.HELP)),
        ("--help", Command(Subcommand.HELP)),
        ("help alert", Command(Subcommand.HELP, ignored_text=True)),
        ("set-key", Command(Subcommand.SET_KEY)),
        ("setkey", Command(Subcommand.SET_KEY)),
        ("set_key", Command(Subcommand.SET_KEY)),
        ("SET-KEY", Command(Subcommand.SET_KEY)),
        ("set-key brz_live_Sup3rS3cret", Command(Subcommand.SET_KEY, ignored_text=True)),
        ("remove-key", Command(Subcommand.REMOVE_KEY)),
        ("removekey", Command(Subcommand.REMOVE_KEY)),
        ("remove_key", Command(Subcommand.REMOVE_KEY)),
        ("remove-key now please", Command(Subcommand.REMOVE_KEY, ignored_text=True)),
        ("status", Command(Subcommand.STATUS)),
        ("status <!channel>", Command(Subcommand.STATUS, ignored_text=True)),
    ],
)
def test_existing_subcommands_are_unchanged(typed: str | None, expected: Command) -> None:
    assert parse(typed) == expected


@pytest.mark.parametrize(
    ("typed", "unknown"),
    [
        ("frobnicate now", "frobnicate now"),
        ("日本語 🎉", "日本語 🎉"),
        ("frob   &\t<!here>", "frob & <!here>"),
        ("<!channel>", "<!channel>"),
        ("alerts 1500", "alerts 1500"),
        ("notification on", "notification on"),
        ("digests", "digests"),
        ("#general", "#general"),
    ],
)
def test_unknown_text_becomes_help_naming_it(typed: str, unknown: str) -> None:
    assert parse(typed) == Command(Subcommand.HELP, unknown=unknown)


# --- alert ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "args"),
    [
        ("alert", AlertArgs("show")),
        ("ALERT", AlertArgs("show")),
        ("  alert \t ", AlertArgs("show")),
        ("alert off", AlertArgs("off")),
        ("alert OFF", AlertArgs("off")),
        ("alert none", AlertArgs("off")),
        ("alert remove", AlertArgs("off")),
        ("alert Clear", AlertArgs("off")),
        ("alert 1500", AlertArgs("set", threshold=Decimal("1500"))),
        ("alert 1,500", AlertArgs("set", threshold=Decimal("1500"))),
        ("alert 1,500,000", AlertArgs("set", threshold=Decimal("1500000"))),
        ("alert 2500.5", AlertArgs("set", threshold=Decimal("2500.5"))),
        ("alert 2,500.75", AlertArgs("set", threshold=Decimal("2500.75"))),
        ("alert 0.5", AlertArgs("set", threshold=Decimal("0.5"))),
        ("alert 0.001", AlertArgs("set", threshold=Decimal("0.001"))),
        ("alert 1.5000", AlertArgs("set", threshold=Decimal("1.5"))),
        ("alert 007", AlertArgs("set", threshold=Decimal("7"))),
        ("alert 999", AlertArgs("set", threshold=Decimal("999"))),
        ("alert 1000000000000000", AlertArgs("set", threshold=Decimal("1000000000000000"))),
        ("alert 1,000,000,000,000,000", AlertArgs("set", threshold=Decimal("1000000000000000"))),
        ("alert 999999999999999.999", AlertArgs("set", threshold=Decimal("999999999999999.999"))),
        (
            "alert 1500 <#C0123ABCD|general>",
            AlertArgs("set", threshold=Decimal("1500"), channel="C0123ABCD"),
        ),
        ("alert 1500 <#C0123ABCD>", AlertArgs("set", threshold=Decimal("1500"), channel="C0123ABCD")),
        ("alert 1500 <#C0123ABCD|>", AlertArgs("set", threshold=Decimal("1500"), channel="C0123ABCD")),
        (
            "alert 1500 <#G0123ABCDEF|private-ops>",
            AlertArgs("set", threshold=Decimal("1500"), channel="G0123ABCDEF"),
        ),
        ("alert 1500 C0123ABCD", AlertArgs("set", threshold=Decimal("1500"), channel="C0123ABCD")),
        ("alert 1500 G0123ABCD", AlertArgs("set", threshold=Decimal("1500"), channel="G0123ABCD")),
        ("alert 1500 C0123ABCDEF", AlertArgs("set", threshold=Decimal("1500"), channel="C0123ABCDEF")),
        (
            "alert\t2,500.75\t\t<#C0123ABCD|général>",
            AlertArgs("set", threshold=Decimal("2500.75"), channel="C0123ABCD"),
        ),
        *DAYS_AND_SPIKE.items(),
    ],
)
def test_alert(typed: str, args: AlertArgs) -> None:
    assert parse(typed) == Command(Subcommand.ALERT, args=args)


def test_thresholds_are_exact_decimals() -> None:
    command = parse("alert 2,500.755")
    assert isinstance(command.args, AlertArgs)
    assert command.args.threshold == Decimal("2500.755")
    assert str(command.args.threshold) == "2500.755"
    assert type(command.args.threshold) is Decimal


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("alert lots", "“lots” is not a number of credits."),
        ("alert 1e5", "“1e5” is not a number of credits."),
        ("alert NaN", "“NaN” is not a number of credits."),
        ("alert nan", "“nan” is not a number of credits."),
        ("alert inf", "“inf” is not a number of credits."),
        ("alert Infinity", "“Infinity” is not a number of credits."),
        ("alert 1.2.3", "“1.2.3” is not a number of credits."),
        ("alert 1_000", "“1_000” is not a number of credits."),
        ("alert +5", "“+5” is not a number of credits."),
        ("alert 1500.", "“1500.” is not a number of credits."),
        ("alert .5", "“.5” is not a number of credits."),
        ("alert 0x10", "“0x10” is not a number of credits."),
        ("alert ١٥٠٠", "“١٥٠٠” is not a number of credits."),
        ("alert １５００", "“１５００” is not a number of credits."),
        ("alert 1 500", "“500” is not a channel."),
        ("alert 1500credits", "“1500credits” is not a number of credits."),
        ("alert $1500", "“$1500” is not a number of credits."),
        ("alert <!channel>", "“&lt;!channel&gt;” is not a number of credits."),
        ("alert &", "“&amp;” is not a number of credits."),
        ("alert <#C0123ABCD> 1500", "“&lt;#C0123ABCD&gt;” is not a number of credits."),
        ("alert on", "“on” is not a number of credits."),
        ("alert -5", "The threshold must be more than 0 credits, not “-5”."),
        ("alert -1,500.5", "The threshold must be more than 0 credits, not “-1,500.5”."),
        ("alert 0", "The threshold must be more than 0 credits, not “0”."),
        ("alert 0.000", "The threshold must be more than 0 credits, not “0.000”."),
        ("alert 0,000", "The threshold must be more than 0 credits, not “0,000”."),
        ("alert -0", "The threshold must be more than 0 credits, not “-0”."),
        (
            "alert 1,50",
            "“1,50” has a misplaced comma: commas go between groups of three digits, like 1,500.",
        ),
        (
            "alert 15,00",
            "“15,00” has a misplaced comma: commas go between groups of three digits, like 1,500.",
        ),
        (
            "alert 1500,000",
            "“1500,000” has a misplaced comma: commas go between groups of three digits, like 1,500.",
        ),
        (
            "alert 1,500,",
            "“1,500,” has a misplaced comma: commas go between groups of three digits, like 1,500.",
        ),
        (
            "alert 1,,500",
            "“1,,500” has a misplaced comma: commas go between groups of three digits, like 1,500.",
        ),
        (
            "alert 1,5000.5",
            "“1,5000.5” has a misplaced comma: commas go between groups of three digits, like 1,500.",
        ),
        (
            "alert 1.2345",
            "“1.2345” has more than 3 decimal places: credits are exact to the millicredit (0.001).",
        ),
        (
            "alert 0.0001",
            "“0.0001” has more than 3 decimal places: credits are exact to the millicredit (0.001).",
        ),
        (
            "alert 1000000000000001",
            "“1000000000000001” is too large: the most is 1,000,000,000,000,000 credits.",
        ),
        (
            "alert 1000000000000000.001",
            "“1000000000000000.001” is too large: the most is 1,000,000,000,000,000 credits.",
        ),
        (
            "alert " + "9" * 5000,
            "“" + "9" * 39 + "…” is too large: the most is 1,000,000,000,000,000 credits.",
        ),
        ("alert 1500 #general", f"“#general” {PLAIN_CHANNEL}"),
        ("alert 1500 #", f"“#” {PLAIN_CHANNEL}"),
        ("alert 1500 <@U0123ABCD>", "“&lt;@U0123ABCD&gt;” is not a channel."),
        ("alert 1500 <!channel>", "“&lt;!channel&gt;” is not a channel."),
        ("alert 1500 <!here>", "“&lt;!here&gt;” is not a channel."),
        ("alert 1500 general", "“general” is not a channel."),
        ("alert 1500 c0123abcd", "“c0123abcd” is not a channel."),
        ("alert 1500 C0123", "“C0123” is not a channel."),
        ("alert 1500 C0123ABCDEFG", "“C0123ABCDEFG” is not a channel."),
        ("alert 1500 U0123ABCD", "“U0123ABCD” is not a channel."),
        ("alert 1500 <#U0123ABCD|x>", "“&lt;#U0123ABCD|x&gt;” is not a channel."),
        ("alert 1500 <#general>", "“&lt;#general&gt;” is not a channel."),
        ("alert 1500 <#C0123ABCD", "“&lt;#C0123ABCD” is not a channel."),
        ("alert 1500 <#C0123ABCD|a>b>", "“&lt;#C0123ABCD|a&gt;b&gt;” is not a channel."),
        ("alert 1500 <#c0123abcd|general>", "“&lt;#c0123abcd|general&gt;” is not a channel."),
        ("alert 1500 credits", "“credits” is not a channel."),
        ("alert 1500 <#C0123ABCD> <#G0123ABCD>", "Give only one channel."),
        ("alert 1500 <#C0123ABCD> #general", "Give only one channel."),
        ("alert 1500 <#C0123ABCD> please", "“please” was not expected there."),
        ("alert 1500 <#C0123ABCD> right now", "“right now” was not expected there."),
        ("alert 1500 <#C0123ABCD> <!channel>", "“&lt;!channel&gt;” was not expected there."),
        ("alert off now", "“now” was not expected there."),
        ("alert off <#C0123ABCD>", "“&lt;#C0123ABCD&gt;” was not expected there."),
        ("alert clear 1500", "“1500” was not expected there."),
    ],
)
def test_alert_usage_errors(typed: str, problem: str) -> None:
    assert parse(typed) == alert_usage(problem)


def test_the_example_usage_line() -> None:
    assert parse("alert lots").usage == (
        "“lots” is not a number of credits. "
        "Usage: `/breeze-balance alert &lt;credits&gt; [#channel]`, `/breeze-balance alert off`; "
        "`/breeze-balance alert days &lt;days&gt; [#channel]`, `/breeze-balance alert days off`; "
        "`/breeze-balance alert spike [&lt;multiple&gt;] [#channel]`, `/breeze-balance alert spike off`"
    )


# --- alert days, alert spike ---------------------------------------------------------------------


DAYS_RANGE = "The runway alert takes a whole number of days from 1 to 90"
SPIKE_RANGE = "The spike alert takes a multiple from 1.5 to 100"


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("alert days", f"{DAYS_RANGE}, like `alert days 5`."),
        ("alert days <#C0123ABCD>", f"{DAYS_RANGE}, like `alert days 5`."),
        ("alert days 0", f"{DAYS_RANGE}, not “0”."),
        ("alert days 91", f"{DAYS_RANGE}, not “91”."),
        ("alert days 365", f"{DAYS_RANGE}, not “365”."),
        ("alert days -3", f"{DAYS_RANGE}, not “-3”."),
        ("alert days 2.5", f"{DAYS_RANGE}, not “2.5”."),
        ("alert days five", f"{DAYS_RANGE}, not “five”."),
        ("alert days 1e1", f"{DAYS_RANGE}, not “1e1”."),
        ("alert days ٥", f"{DAYS_RANGE}, not “٥”."),
        ("alert days " + "9" * 5000, f"{DAYS_RANGE}, not “" + "9" * 39 + "…”."),
        ("alert days 5 #general", f"“#general” {PLAIN_CHANNEL}"),
        ("alert days 5 <#C0123ABCD> now", "“now” was not expected there."),
        ("alert days off now", "“now” was not expected there."),
        ("alert spike 1.4", f"{SPIKE_RANGE}, not “1.4”."),
        ("alert spike 1", f"{SPIKE_RANGE}, not “1”."),
        ("alert spike 0", f"{SPIKE_RANGE}, not “0”."),
        ("alert spike 100.01", f"{SPIKE_RANGE}, not “100.01”."),
        ("alert spike 1000", f"{SPIKE_RANGE}, not “1000”."),
        ("alert spike " + "9" * 5000, f"{SPIKE_RANGE}, not “" + "9" * 39 + "…”."),
        ("alert spike -2", f"{SPIKE_RANGE}, not “-2”."),
        ("alert spike 2.555", "“2.555” has more than 2 decimal places: like 2.5 or 2.75."),
        ("alert spike lots", "“lots” is not a multiple (like 3 or 2.5) or a channel."),
        ("alert spike 1e2", "“1e2” is not a multiple (like 3 or 2.5) or a channel."),
        ("alert spike NaN", "“NaN” is not a multiple (like 3 or 2.5) or a channel."),
        ("alert spike x", "“x” is not a multiple (like 3 or 2.5) or a channel."),
        ("alert spike 3 4", "“4” is not a channel."),
        ("alert spike #general", f"“#general” {PLAIN_CHANNEL}"),
        ("alert spike off please", "“please” was not expected there."),
    ],
)
def test_alert_days_and_spike_usage_errors(typed: str, problem: str) -> None:
    usage = DAYS_USAGE if typed.split()[1] == "days" else SPIKE_USAGE  # the form meant, not all three
    assert parse(typed).usage == f"{problem} Usage: {usage}"


# --- notify --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "args"),
    [
        ("notify", NotifyArgs("show")),
        ("Notify  ", NotifyArgs("show")),
        ("notify topups on", NotifyArgs("on")),
        ("notify top-ups on", NotifyArgs("on")),
        ("notify topup on", NotifyArgs("on")),
        ("NOTIFY TOPUPS ON", NotifyArgs("on")),
        ("notify Top-Ups On", NotifyArgs("on")),
        ("notify topups on <#C0123ABCD|finance>", NotifyArgs("on", channel="C0123ABCD")),
        ("notify topups on <#C0123ABCD>", NotifyArgs("on", channel="C0123ABCD")),
        ("notify topups on <#G0123ABCD|>", NotifyArgs("on", channel="G0123ABCD")),
        ("notify topups on C0123ABCD", NotifyArgs("on", channel="C0123ABCD")),
        ("notify \t topups \t on \t <#C0123ABCD|x>", NotifyArgs("on", channel="C0123ABCD")),
        ("notify topups off", NotifyArgs("off")),
        ("notify top-ups OFF", NotifyArgs("off")),
        ("notify topup off", NotifyArgs("off")),
        # Top-ups are the only notifications, so `off` needs no topic.
        ("notify off", NotifyArgs("off")),
        ("notify OFF", NotifyArgs("off")),
    ],
)
def test_notify(typed: str, args: NotifyArgs) -> None:
    assert parse(typed) == Command(Subcommand.NOTIFY, args=args)


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("notify topups", "Add `on` or `off` after “topups”."),
        ("notify Top-Ups", "Add `on` or `off` after “Top-Ups”."),
        ("notify topups maybe", "“maybe” is not `on` or `off`."),
        ("notify topups <#C0123ABCD>", "“&lt;#C0123ABCD&gt;” is not `on` or `off`."),
        ("notify topups yes", "“yes” is not `on` or `off`."),
        ("notify on", "Say what to be notified about: `topups`."),
        ("notify on <#C0123ABCD>", "Say what to be notified about: `topups`."),
        ("notify balance on", "“balance” is not something I can notify about: only `topups`."),
        ("notify <!channel> on", "“&lt;!channel&gt;” is not something I can notify about: only `topups`."),
        ("notify top ups on", "“top” is not something I can notify about: only `topups`."),
        ("notify topups off <#C0123ABCD>", "“&lt;#C0123ABCD&gt;” was not expected there."),
        ("notify topups off please", "“please” was not expected there."),
        ("notify off topups", "“topups” was not expected there."),
        ("notify topups on #finance", f"“#finance” {PLAIN_CHANNEL}"),
        ("notify topups on <@U0123ABCD>", "“&lt;@U0123ABCD&gt;” is not a channel."),
        ("notify topups on finance", "“finance” is not a channel."),
        ("notify topups on <#C0123ABCD> <#C0123ABCE>", "Give only one channel."),
        ("notify topups on <#C0123ABCD> & more", "“&amp; more” was not expected there."),
    ],
)
def test_notify_usage_errors(typed: str, problem: str) -> None:
    assert parse(typed) == notify_usage(problem)


# --- digest --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "args"),
    [
        ("digest", DigestArgs("show")),
        ("DIGEST", DigestArgs("show")),
        ("digest off", DigestArgs("off")),
        ("digest Off", DigestArgs("off")),
        ("digest daily", DigestArgs("set", frequency="daily")),
        ("digest weekly", DigestArgs("set", frequency="weekly")),
        ("digest DAILY", DigestArgs("set", frequency="daily")),
        ("digest Weekly", DigestArgs("set", frequency="weekly")),
        ("digest daily 9:00", DigestArgs("set", frequency="daily", at=time(9, 0))),
        ("digest daily 09:30", DigestArgs("set", frequency="daily", at=time(9, 30))),
        ("digest daily 23:59", DigestArgs("set", frequency="daily", at=time(23, 59))),
        ("digest daily 0:00", DigestArgs("set", frequency="daily", at=time(0, 0))),
        ("digest daily 00:00", DigestArgs("set", frequency="daily", at=time(0, 0))),
        ("digest weekly 17:05", DigestArgs("set", frequency="weekly", at=time(17, 5))),
        (
            "digest daily <#C0123ABCD|finance>",
            DigestArgs("set", frequency="daily", channel="C0123ABCD"),
        ),
        (
            "digest weekly 9:00 <#C0123ABCD|finance>",
            DigestArgs("set", frequency="weekly", at=time(9, 0), channel="C0123ABCD"),
        ),
        (
            "digest weekly <#C0123ABCD|finance> 9:00",
            DigestArgs("set", frequency="weekly", at=time(9, 0), channel="C0123ABCD"),
        ),
        (
            "digest daily G0123ABCD 18:45",
            DigestArgs("set", frequency="daily", at=time(18, 45), channel="G0123ABCD"),
        ),
        (
            "digest\tdaily\t\t<#C0123ABCD|>   07:15",
            DigestArgs("set", frequency="daily", at=time(7, 15), channel="C0123ABCD"),
        ),
    ],
)
def test_digest(typed: str, args: DigestArgs) -> None:
    assert parse(typed) == Command(Subcommand.DIGEST, args=args)


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("digest monthly", "“monthly” is not `daily`, `weekly` or `off`."),
        ("digest 9:00 daily", "“9:00” is not `daily`, `weekly` or `off`."),
        ("digest <#C0123ABCD> daily", "“&lt;#C0123ABCD&gt;” is not `daily`, `weekly` or `off`."),
        ("digest on", "“on” is not `daily`, `weekly` or `off`."),
        ("digest <!channel>", "“&lt;!channel&gt;” is not `daily`, `weekly` or `off`."),
        ("digest daily 24:00", f"“24:00” {NOT_A_TIME}"),
        ("digest daily 9", f"“9” {NOT_A_TIME}"),
        ("digest daily 9:60", f"“9:60” {NOT_A_TIME}"),
        ("digest daily 9am", f"“9am” {NOT_A_TIME}"),
        ("digest daily 9:5", f"“9:5” {NOT_A_TIME}"),
        ("digest daily 009:00", f"“009:00” {NOT_A_TIME}"),
        ("digest daily 09:00:00", f"“09:00:00” {NOT_A_TIME}"),
        ("digest daily :30", f"“:30” {NOT_A_TIME}"),
        ("digest daily -1:00", f"“-1:00” {NOT_A_TIME}"),
        ("digest daily 9.30", f"“9.30” {NOT_A_TIME}"),
        ("digest daily noon", "“noon” is not a time (HH:MM, like 09:00) or a channel."),
        ("digest daily ９:００", "“９:００” " + NOT_A_TIME),
        ("digest daily tomorrow", "“tomorrow” is not a time (HH:MM, like 09:00) or a channel."),
        ("digest daily <@U0123ABCD>", "“&lt;@U0123ABCD&gt;” is not a time (HH:MM, like 09:00) or a channel."),
        ("digest daily 9:00 10:00", "Give only one time."),
        ("digest daily <#C0123ABCD> <#G0123ABCD>", "Give only one channel."),
        ("digest daily 9:00 #general", f"“#general” {PLAIN_CHANNEL}"),
        ("digest daily <#general>", "“&lt;#general&gt;” is not a channel."),
        ("digest daily 9:00 <#C0123ABCD> please", "“please” is not a time (HH:MM, like 09:00) or a channel."),
        ("digest off daily", "“daily” was not expected there."),
        ("digest off 9:00", "“9:00” was not expected there."),
    ],
)
def test_digest_usage_errors(typed: str, problem: str) -> None:
    assert parse(typed) == digest_usage(problem)


# --- hostile text --------------------------------------------------------------------------------


def test_echoed_text_is_shortened_and_escaped() -> None:
    hostile = "<!channel>&<@U1>" * 10
    command = parse(f"alert {hostile}")
    assert command == alert_usage(
        "“&lt;!channel&gt;&amp;&lt;@U1&gt;&lt;!channel&gt;&amp;&lt;@U1&gt;&lt;!chann…” "
        "is not a number of credits."
    )


def test_very_long_input_gives_one_short_line() -> None:
    command = parse("notify topups on <#C0123ABCD> " + "spam " * 20_000)
    assert command.usage == f"“{'spam ' * 7}spam…” was not expected there. Usage: {NOTIFY_USAGE}"


@pytest.mark.parametrize("sub", [Subcommand.ALERT, Subcommand.NOTIFY, Subcommand.DIGEST])
def test_new_subcommands_never_set_ignored_text_or_unknown(sub: Subcommand) -> None:
    for tail in ["", "off", "nonsense words here", "1500 <#C0123ABCD>", "topups on", "daily 9:00"]:
        command = parse(f"{sub.value} {tail}")
        assert command.subcommand is sub
        assert command.ignored_text is False
        assert command.unknown is None
        assert (command.args is None) != (command.usage is None)


@PROFILE
@given(
    sub=st.sampled_from([Subcommand.ALERT, Subcommand.NOTIFY, Subcommand.DIGEST]),
    tail=st.lists(
        st.one_of(
            st.text(max_size=30),
            st.sampled_from(
                [
                    "off",
                    "topups",
                    "on",
                    "daily",
                    "weekly",
                    "9:00",
                    "24:00",
                    "1,500",
                    "1,50",
                    "-5",
                    "<#C0123ABCD|x>",
                    "C0123ABCD",
                    "#general",
                    "<!channel>",
                    "&",
                ]
            ),
        ),
        max_size=5,
    ),
)
def test_any_text_after_a_new_subcommand_is_understood_or_explained_safely(
    sub: Subcommand, tail: list[str]
) -> None:
    command = parse(" ".join([sub.value, *tail]))

    assert command.subcommand is sub
    assert command.ignored_text is False
    assert command.unknown is None
    if command.usage is None:
        assert command.args is not None
    else:
        assert command.args is None
        assert command.usage.endswith(f" Usage: {USAGE[sub]}")
        assert MRKDWN_SAFE.fullmatch(command.usage)
        assert len(command.usage) < 400
    if isinstance(command.args, AlertArgs) and command.args.threshold is not None:
        assert Decimal(0) < command.args.threshold <= Decimal("1e15")
        assert command.args.threshold == command.args.threshold.quantize(Decimal("0.001"))


@PROFILE
@given(text=st.text(max_size=200))
def test_parse_is_total(text: str) -> None:
    assert isinstance(parse(text), Command)


# --- usage: the spend of a window (parsed on its own until the subcommand is routed) --------------

USAGE_LINE = "`/breeze-balance usage [today|7d|30d|90d] [share]`"
NOT_A_WINDOW = "is not a window (`today`, `7d`, `30d` or `90d`) or `share`."


def usage_args(typed: str) -> UsageArgs:
    found = parse_usage(typed.split())
    assert isinstance(found, UsageArgs), found
    return found


@pytest.mark.parametrize(
    ("typed", "args"),
    [
        ("", UsageArgs(7, "7d", share=False)),
        ("today", UsageArgs(1, "today", share=False)),
        ("7d", UsageArgs(7, "7d", share=False)),
        ("30d", UsageArgs(30, "30d", share=False)),
        ("90d", UsageArgs(90, "90d", share=False)),
        ("share", UsageArgs(7, "7d", share=True)),
        ("30d share", UsageArgs(30, "30d", share=True)),
        ("share 30d", UsageArgs(30, "30d", share=True)),
        ("TODAY", UsageArgs(1, "today", share=False)),
        ("Share 90D", UsageArgs(90, "90d", share=True)),
        ("  today \t share ", UsageArgs(1, "today", share=True)),
    ],
)
def test_usage(typed: str, args: UsageArgs) -> None:
    assert usage_args(typed) == args


def test_usage_windows_are_utc_dates_ending_today_as_breeze_counts_days() -> None:
    today = date(2026, 12, 8)
    assert usage_args("today").window(today) == Window(today, today)
    assert usage_args("").window(today) == Window(date(2026, 12, 2), today)
    assert usage_args("30d share").window(today) == Window(date(2026, 11, 9), today)
    assert usage_args("90d").window(today) == Window(date(2026, 9, 10), today)


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("forever", f"“forever” {NOT_A_WINDOW}"),
        ("7", f"“7” {NOT_A_WINDOW}"),
        ("1d", f"“1d” {NOT_A_WINDOW}"),
        ("365d", f"“365d” {NOT_A_WINDOW}"),
        ("week", f"“week” {NOT_A_WINDOW}"),
        ("share forever", f"“forever” {NOT_A_WINDOW}"),
        ("7d please", f"“please” {NOT_A_WINDOW}"),
        ("7d 30d", "Give only one window."),
        ("today TODAY", "Give only one window."),
        ("share share", "Say `share` only once."),
    ],
)
def test_usage_errors(typed: str, problem: str) -> None:
    assert parse_usage(typed.split()) == f"{problem} Usage: {USAGE_LINE}"


def test_usage_echoes_hostile_words_shortened_and_escaped() -> None:
    line = parse_usage(["<!channel>&`x`" * 10])
    assert line == (
        "“&lt;!channel&gt;&amp;`x`&lt;!channel&gt;&amp;`x`&lt;!channel&gt;&amp;…” "
        f"{NOT_A_WINDOW} Usage: {USAGE_LINE}"
    )


@PROFILE
@given(
    tail=st.lists(
        st.one_of(
            st.text(max_size=30),
            st.sampled_from(["today", "7d", "30d", "90d", "share", "SHARE", "forever", "<!here>", "&"]),
        ),
        max_size=5,
    )
)
def test_any_words_after_usage_are_understood_or_explained_safely(tail: list[str]) -> None:
    found = parse_usage(" ".join(tail).split())

    if isinstance(found, UsageArgs):
        assert (found.name, found.days) in {("today", 1), ("7d", 7), ("30d", 30), ("90d", 90)}
    else:
        assert found.endswith(f" Usage: {USAGE_LINE}")
        assert MRKDWN_SAFE.fullmatch(found)
        assert len(found) < 400
