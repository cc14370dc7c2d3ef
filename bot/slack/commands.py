"""Parse the text typed after `/breeze-balance` into a small command value. Pure."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal
from typing import Literal

from bot.domain.spend_rules import DEFAULT_MULTIPLE, MAX_DAYS, MAX_MULTIPLE, MIN_DAYS, MIN_MULTIPLE
from bot.domain.usage import Window
from bot.slack.blocks.text import outside
from bot.slack.ids import COMMAND, Subcommand

_ALIASES: dict[str, Subcommand] = {
    "": Subcommand.BALANCE,
    "balance": Subcommand.BALANCE,
    "share": Subcommand.SHARE,
    "refresh": Subcommand.REFRESH,
    "help": Subcommand.HELP,
    "?": Subcommand.HELP,
    "-h": Subcommand.HELP,
    "--help": Subcommand.HELP,
    "set-key": Subcommand.SET_KEY,
    "setkey": Subcommand.SET_KEY,
    "set_key": Subcommand.SET_KEY,
    "remove-key": Subcommand.REMOVE_KEY,
    "removekey": Subcommand.REMOVE_KEY,
    "remove_key": Subcommand.REMOVE_KEY,
    "status": Subcommand.STATUS,
    "alert": Subcommand.ALERT,
    "notify": Subcommand.NOTIFY,
    "digest": Subcommand.DIGEST,
    "usage": Subcommand.USAGE,
}

# mrkdwn: `<` and `>` are escaped so Slack shows them instead of reading a link.
THRESHOLD_USAGE = f"`{COMMAND} alert &lt;credits&gt; [#channel]`, `{COMMAND} alert off`"
DAYS_USAGE = f"`{COMMAND} alert days &lt;days&gt; [#channel]`, `{COMMAND} alert days off`"
SPIKE_USAGE = f"`{COMMAND} alert spike [&lt;multiple&gt;] [#channel]`, `{COMMAND} alert spike off`"
USAGE: dict[Subcommand, str] = {
    Subcommand.ALERT: f"{THRESHOLD_USAGE}; {DAYS_USAGE}; {SPIKE_USAGE}",
    Subcommand.NOTIFY: f"`{COMMAND} notify topups on [#channel]`, `{COMMAND} notify topups off`",
    Subcommand.DIGEST: f"`{COMMAND} digest daily|weekly [HH:MM] [#channel]`, `{COMMAND} digest off`",
    Subcommand.USAGE: f"`{COMMAND} usage [today|7d|30d|90d] [share]`",
}
USAGE_LINE = USAGE[Subcommand.USAGE]

MAX_THRESHOLD = Decimal("1000000000000000")  # 1e15 credits
THRESHOLD_PLACES = 3  # credits are exact to the millicredit
MULTIPLE_PLACES = 2
_ECHO_LIMIT = 40

# Digits are ASCII on purpose: Decimal() would also take `١٢٣`, `1_000`, `1e5`, `NaN` and `inf`.
_PLAIN_NUMBER = re.compile(r"(?P<whole>[0-9]+)(?:\.(?P<fraction>[0-9]+))?")
_GROUPED_NUMBER = re.compile(r"(?P<whole>[0-9]{1,3}(?:,[0-9]{3})+)(?:\.(?P<fraction>[0-9]+))?")
_COMMA_NUMBER = re.compile(r"[0-9][0-9,]*(?:\.[0-9]+)?")
_NEGATIVE_NUMBER = re.compile(r"-[0-9][0-9,]*(?:\.[0-9]+)?")
# Slack escapes channels as `<#C0123ABCD|name>`; the name may be empty or absent.
_CHANNEL_LINK = re.compile(r"<#(?P<id>[CG][A-Z0-9]{8,10})(?:\|[^<>|]*)?>")
_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{8,10}")
_DIGITS = frozenset("0123456789")
_TIME = re.compile(r"(?P<hour>[01]?[0-9]|2[0-3]):(?P<minute>[0-5][0-9])")

_ALERT_OFF = frozenset({"off", "none", "remove", "clear"})
_TOPICS = frozenset({"topups", "top-ups", "topup"})
_FREQUENCIES: dict[str, Literal["daily", "weekly"]] = {"daily": "daily", "weekly": "weekly"}
WindowName = Literal["today", "7d", "30d", "90d"]
# Each window's days, as Breeze counts `days`: the last N UTC dates, today included.
WINDOWS: dict[str, tuple[WindowName, int]] = {
    "today": ("today", 1),
    "7d": ("7d", 7),
    "30d": ("30d", 30),
    "90d": ("90d", 90),
}


@dataclass(frozen=True, slots=True)
class AlertArgs:
    """`alert`, `alert off`, `alert <threshold> [#channel]`; `alert days <N> [#channel]`, `alert days off`;
    `alert spike [<multiple>] [#channel]`, `alert spike off`."""

    action: Literal["show", "set", "off"]
    threshold: Decimal | None = None  # set only for "set" of the threshold rule; > 0
    channel: str | None = None  # a channel id like C0123ABCD; None = the channel the command was typed in
    rule: Literal["threshold", "days", "spike"] = "threshold"
    days: int | None = None  # set only for "set" of the runway rule; MIN_DAYS to MAX_DAYS
    multiple: Decimal | None = None  # set only for "set" of the spike rule; MIN_MULTIPLE to MAX_MULTIPLE


@dataclass(frozen=True, slots=True)
class NotifyArgs:
    """`notify` (show), `notify topups on [#channel]`, `notify topups off` (or just `notify off`)."""

    action: Literal["show", "on", "off"]
    channel: str | None = None


@dataclass(frozen=True, slots=True)
class DigestArgs:
    """`digest` (show), `digest off`, `digest daily|weekly [HH:MM] [#channel]`.

    The time and the channel may come in either order.
    """

    action: Literal["show", "set", "off"]
    frequency: Literal["daily", "weekly"] | None = None
    at: time | None = None  # None = the default (09:00), decided by the caller
    channel: str | None = None


@dataclass(frozen=True, slots=True)
class UsageArgs:
    """`usage [today|7d|30d|90d] [share]`, the two words in either order; the last 7 days by default."""

    days: int = 7
    name: WindowName = "7d"
    share: bool = False  # post it in the channel, saying who asked

    def window(self, today: date) -> Window:
        """The UTC dates it covers: the last `days` of them, `today` included."""
        return Window.ending(today, self.days)


RuleArgs = AlertArgs | NotifyArgs | DigestArgs
Args = RuleArgs | UsageArgs


@dataclass(frozen=True, slots=True)
class Command:
    """What the user asked for; `unknown` holds text we did not understand."""

    subcommand: Subcommand
    unknown: str | None = None
    # Text after a known word, never echoed: people paste keys after `set-key`.
    ignored_text: bool = False
    # What `alert`, `notify`, `digest` and `usage` were asked to do.
    args: Args | None = None
    # One mrkdwn-safe line when the words after `alert`, `notify`, `digest` or `usage` were not understood.
    usage: str | None = None


class _Usage(Exception):
    """The words after a subcommand were not understood; `problem` says why, mrkdwn-safe; `usage`, when
    given, is the usage line of the one form that was meant."""

    def __init__(self, problem: str, usage: str | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.usage = usage


def parse(text: str | None) -> Command:
    """Parse command text; anything unrecognised becomes help that names what was typed."""
    words = (text or "").split()
    first = words[0].lower() if words else ""
    sub = _ALIASES.get(first)
    if sub is None:
        return Command(Subcommand.HELP, unknown=" ".join(words))
    rest = words[1:]
    try:
        if sub is Subcommand.ALERT:
            return Command(sub, args=_alert(rest))
        if sub is Subcommand.NOTIFY:
            return Command(sub, args=_notify(rest))
        if sub is Subcommand.DIGEST:
            return Command(sub, args=_digest(rest))
        if sub is Subcommand.USAGE:
            return Command(sub, args=_usage(rest))
    except _Usage as problem:
        return Command(sub, usage=f"{problem.problem} Usage: {problem.usage or USAGE[sub]}")
    return Command(sub, ignored_text=len(words) > 1)


# --- the three subcommands -----------------------------------------------------------------------


def _alert(words: list[str]) -> AlertArgs:
    if not words:
        return AlertArgs("show")
    if words[0].lower() in _ALERT_OFF:
        _nothing_after(words[1:])
        return AlertArgs("off")
    rule = words[0].lower()
    if rule in ("days", "spike"):
        try:
            return _days_alert(words[1:]) if rule == "days" else _spike_alert(words[1:])
        except _Usage as problem:
            raise _Usage(problem.problem, DAYS_USAGE if rule == "days" else SPIKE_USAGE) from None
    threshold = _threshold(words[0])
    return AlertArgs("set", threshold=threshold, channel=_only_channel(words[1:]))


def _days_alert(words: list[str]) -> AlertArgs:
    if words and words[0].lower() in _ALERT_OFF:
        _nothing_after(words[1:])
        return AlertArgs("off", rule="days")
    between = f"The runway alert takes a whole number of days from {MIN_DAYS} to {MAX_DAYS}"
    if not words or _looks_like_channel(words[0]):
        raise _Usage(f"{between}, like `alert days 5`.")
    word = words[0]
    if not (word.isascii() and word.isdigit() and len(word) < 10 and MIN_DAYS <= int(word) <= MAX_DAYS):
        raise _Usage(f"{between}, not {_quote(word)}.")
    return AlertArgs("set", channel=_only_channel(words[1:]), rule="days", days=int(word))


def _spike_alert(words: list[str]) -> AlertArgs:
    if words and words[0].lower() in _ALERT_OFF:
        _nothing_after(words[1:])
        return AlertArgs("off", rule="spike")
    multiple = DEFAULT_MULTIPLE
    if words and not _looks_like_channel(words[0]):
        multiple = _multiple(words[0])
        words = words[1:]
    return AlertArgs("set", channel=_only_channel(words), rule="spike", multiple=multiple)


def _notify(words: list[str]) -> NotifyArgs:
    if not words:
        return NotifyArgs("show")
    topic = words[0].lower()
    if topic == "off":  # only top-ups can be notified about, so "off" needs no topic
        _nothing_after(words[1:])
        return NotifyArgs("off")
    if topic == "on":
        raise _Usage("Say what to be notified about: `topups`.")
    if topic not in _TOPICS:
        raise _Usage(f"{_quote(words[0])} is not something I can notify about: only `topups`.")
    if len(words) < 2:
        raise _Usage(f"Add `on` or `off` after {_quote(words[0])}.")
    switch = words[1].lower()
    if switch == "off":
        _nothing_after(words[2:])
        return NotifyArgs("off")
    if switch == "on":
        return NotifyArgs("on", channel=_only_channel(words[2:]))
    raise _Usage(f"{_quote(words[1])} is not `on` or `off`.")


def _digest(words: list[str]) -> DigestArgs:
    if not words:
        return DigestArgs("show")
    first = words[0].lower()
    if first == "off":
        _nothing_after(words[1:])
        return DigestArgs("off")
    frequency = _FREQUENCIES.get(first)
    if frequency is None:
        raise _Usage(f"{_quote(words[0])} is not `daily`, `weekly` or `off`.")
    at: time | None = None
    channel: str | None = None
    for word in words[1:]:
        if _looks_like_channel(word):
            if channel is not None:
                raise _Usage("Give only one channel.")
            channel = _channel(word)
        elif _looks_like_time(word):
            if at is not None:
                raise _Usage("Give only one time.")
            at = _time(word)
        else:
            raise _Usage(f"{_quote(word)} is not a time (HH:MM, like 09:00) or a channel.")
    return DigestArgs("set", frequency=frequency, at=at, channel=channel)


def parse_usage(words: Sequence[str]) -> UsageArgs | str:
    """The words after `usage`, or one mrkdwn-safe line saying what was not understood."""
    try:
        return _usage(words)
    except _Usage as problem:
        return f"{problem.problem} Usage: {USAGE_LINE}"


def _usage(words: Sequence[str]) -> UsageArgs:
    window: tuple[WindowName, int] | None = None
    share = False
    for word in words:
        lowered = word.lower()
        if lowered == "share":
            if share:
                raise _Usage("Say `share` only once.")
            share = True
        elif lowered in WINDOWS:
            if window is not None:
                raise _Usage("Give only one window.")
            window = WINDOWS[lowered]
        else:
            raise _Usage(f"{_quote(word)} is not a window (`today`, `7d`, `30d` or `90d`) or `share`.")
    name, days = window or WINDOWS["7d"]
    return UsageArgs(days, name, share)


# --- the pieces ----------------------------------------------------------------------------------


def _threshold(word: str) -> Decimal:
    """`1,500.75` → Decimal('1500.75'): positive, at most 3 decimals and 1e15; raises `_Usage`."""
    match = _PLAIN_NUMBER.fullmatch(word) or _GROUPED_NUMBER.fullmatch(word)
    if match is None:
        if _NEGATIVE_NUMBER.fullmatch(word):
            raise _Usage(f"The threshold must be more than 0 credits, not {_quote(word)}.")
        if _COMMA_NUMBER.fullmatch(word):
            raise _Usage(
                f"{_quote(word)} has a misplaced comma: commas go between groups of three digits, like 1,500."
            )
        raise _Usage(f"{_quote(word)} is not a number of credits.")
    whole = match["whole"].replace(",", "").lstrip("0") or "0"
    fraction = (match["fraction"] or "").rstrip("0")
    if len(fraction) > THRESHOLD_PLACES:
        raise _Usage(
            f"{_quote(word)} has more than {THRESHOLD_PLACES} decimal places: "
            "credits are exact to the millicredit (0.001)."
        )
    # Built from the digits themselves: no float, no rounding.
    value = Decimal(f"{whole}.{fraction}" if fraction else whole)
    if value <= 0:
        raise _Usage(f"The threshold must be more than 0 credits, not {_quote(word)}.")
    if value > MAX_THRESHOLD:
        raise _Usage(f"{_quote(word)} is too large: the most is 1,000,000,000,000,000 credits.")
    return value


def _multiple(word: str) -> Decimal:
    """`2.5`, `4x` → Decimal('2.5'), Decimal('4'): from 1.5 to 100, at most 2 decimals; raises `_Usage`."""
    typed = word[:-1] if word[-1:] in ("x", "X") else word
    between = f"The spike alert takes a multiple from {MIN_MULTIPLE} to {MAX_MULTIPLE}, not {_quote(word)}."
    if _NEGATIVE_NUMBER.fullmatch(typed):
        raise _Usage(between)
    match = _PLAIN_NUMBER.fullmatch(typed)
    if match is None:
        raise _Usage(f"{_quote(word)} is not a multiple (like 3 or 2.5) or a channel.")
    fraction = (match["fraction"] or "").rstrip("0")
    if len(fraction) > MULTIPLE_PLACES:
        raise _Usage(f"{_quote(word)} has more than {MULTIPLE_PLACES} decimal places: like 2.5 or 2.75.")
    whole = match["whole"].lstrip("0") or "0"
    value = Decimal(f"{whole}.{fraction}" if fraction else whole)
    if not MIN_MULTIPLE <= value <= MAX_MULTIPLE:
        raise _Usage(between)
    return value


def _channel(word: str) -> str:
    """`<#C0123ABCD|general>`, `<#C0123ABCD>` or `C0123ABCD` → `C0123ABCD`; raises `_Usage`."""
    link = _CHANNEL_LINK.fullmatch(word)
    if link is not None:
        return link["id"]
    if _CHANNEL_ID.fullmatch(word):
        return word
    if word.startswith("#"):
        raise _Usage(
            f"{_quote(word)} is plain text, not a channel link: pick the channel from Slack's "
            "autocomplete list as you type # so it becomes a link, or paste the channel id (like C0123ABCD)."
        )
    raise _Usage(f"{_quote(word)} is not a channel.")


def _time(word: str) -> time:
    """`9:00`, `09:30`, `23:59` → a `time`; raises `_Usage`."""
    match = _TIME.fullmatch(word)
    if match is None:
        raise _Usage(f"{_quote(word)} is not a time: use HH:MM on a 24-hour clock, like 09:00 or 17:30.")
    return time(int(match["hour"]), int(match["minute"]))


def _only_channel(words: list[str]) -> str | None:
    """The optional last word: one channel, nothing else."""
    if not words:
        return None
    if len(words) > 1 and all(_looks_like_channel(word) for word in words):
        raise _Usage("Give only one channel.")
    channel = _channel(words[0])
    _nothing_after(words[1:])
    return channel


def _nothing_after(words: list[str]) -> None:
    if words:
        raise _Usage(f"{_quote(' '.join(words))} was not expected there.")


def _looks_like_channel(word: str) -> bool:
    return word.startswith(("<#", "#")) or _CHANNEL_ID.fullmatch(word) is not None


def _looks_like_time(word: str) -> bool:
    return ":" in word or word[:1] in _DIGITS


def _quote(word: str) -> str:
    """Text from the user, shortened and escaped, in quotes."""
    return f"“{outside(word, _ECHO_LIMIT)}”"
