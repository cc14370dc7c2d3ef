"""What `usage` says: a window's spend as Block Kit and as the CLI's text and JSON, from fixed reports."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.cli.usage_output import usage_json, usage_lines
from bot.domain.usage import DaySpend, MeteredRequest, UsageReport, Window, credits_of
from bot.domain.usage_view import average_per_day, daily_spend, spend_trend
from bot.slack.blocks import balance as blocks
from bot.slack.blocks import text as t
from bot.slack.blocks.usage import usage_message
from bot.slack.ids import BlockId
from tests.unit.test_blocks import all_text, assert_within_limits

TODAY = date(2026, 12, 8)  # a Tuesday
WEEK = Window.ending(TODAY, 7)  # Dec 2 to Dec 8
# (key name, model, requests, millicredits each): 1,000 requests that cost 1,000 credits in all.
SPENDERS = [
    ("prod", "bluebell-v1-en", 400, 1_000),
    ("staging", "bluebell-v1-en", 200, 1_000),
    ("batch", "bluebell-v2-multi", 150, 1_000),
    ("ci", "bluebell-v2-multi", 100, 1_000),
    ("dev", "bluebell-v2-multi", 80, 1_000),
    ("alice", "bluebell-v2-multi", 40, 1_000),
    ("bob", "bluebell-v2-multi", 30, 1_000),
]
DAYS = (0, 100_000, 200_000, 150_000, 300_000, 400_000, 84_567)  # Dec 2 to Dec 8: 1,234,567 in all
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def at(day: date, hour: int = 12) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=UTC)


def requests(
    spenders: Sequence[tuple[str | None, str | None, int, int]], day: date = TODAY
) -> list[MeteredRequest]:
    return [
        MeteredRequest(f"key_{name}" if name else None, name, model, cost, 10, at(day))
        for name, model, count, cost in spenders
        for _ in range(count)
    ]


def week_report(**overrides: object) -> UsageReport:
    fields: dict[str, object] = {
        "window": WEEK,
        "cost_millicredits": 1_234_567,
        "request_count": 52_340,
        "characters": 987_654,
        "total": 52_340,
        "requests": tuple(requests(SPENDERS)),
        "daily": tuple(DaySpend(day, cost) for day, cost in zip(WEEK.dates(), DAYS, strict=True)),
    }
    fields.update(overrides)
    return UsageReport(**fields)  # type: ignore[arg-type]


def section_text(message: blocks.Message, block_id: str) -> str:
    found = [b for b in message.blocks if b.get("block_id") == block_id]
    assert len(found) == 1, [b.get("block_id") for b in message.blocks]
    block = found[0]
    if block["type"] == "context":
        return "\n".join(e["text"] for e in block["elements"])
    return str(block["text"]["text"])


def block_ids(message: blocks.Message) -> list[str]:
    return [b["block_id"] for b in message.blocks]


# --- the view's numbers ---------------------------------------------------------------------------


def test_the_average_day_is_the_window_over_its_days_to_the_millicredit() -> None:
    assert average_per_day(week_report()) == Decimal("176.367")  # 1,234.567 / 7 = 176.36671…
    assert average_per_day(week_report(cost_millicredits=7)) == Decimal("0.001")
    assert average_per_day(week_report(cost_millicredits=0)) == Decimal(0)


def test_an_enormous_spend_stays_exact_in_every_rendering() -> None:
    huge = 10**60 + 7
    report = week_report(cost_millicredits=huge, daily=None)

    whole, rest = divmod(huge, 7)
    assert average_per_day(report) == Decimal(f"{whole + (2 * rest >= 7)}e-3")  # to the millicredit
    message = usage_message(report, today=TODAY)
    assert f"*{t.credits(Decimal(f'{huge}e-3'))}*" in section_text(message, BlockId.USAGE)
    assert usage_json(report)["spent"] == f"{huge // 1000}.007"
    assert_within_limits(message)


def test_each_days_spend_is_breezes_or_else_from_every_request_of_the_window() -> None:
    report = week_report()
    assert daily_spend(report) == report.daily

    every = requests([("prod", "m", 2, 500)], day=date(2026, 12, 3)) + requests([("prod", "m", 1, 250)])
    complete = week_report(daily=None, requests=tuple(every), total=3, cost_millicredits=1_250)
    assert daily_spend(complete) == tuple(
        DaySpend(day, {date(2026, 12, 3): 1_000, TODAY: 250}.get(day, 0)) for day in WEEK.dates()
    )
    assert daily_spend(week_report(daily=None)) is None  # 1,000 of 52,340 read: the days are not known


def test_the_trend_is_a_bar_a_day_for_windows_longer_than_a_day() -> None:
    assert spend_trend(week_report()) == "▁▃▅▄▆█▂"
    assert spend_trend(week_report(daily=None)) == ""
    one_day = Window(TODAY, TODAY)
    assert spend_trend(week_report(window=one_day, daily=(DaySpend(TODAY, 5),))) == ""


# --- the message ----------------------------------------------------------------------------------


def test_a_weeks_spend_exact_with_its_counts_and_average_day() -> None:
    message = usage_message(week_report(), today=TODAY)

    assert message.response_type == "ephemeral"
    assert block_ids(message) == [
        BlockId.HEADER,
        BlockId.USAGE,
        BlockId.USAGE_KEYS,
        BlockId.USAGE_MODELS,
        BlockId.USAGE_TREND,
        BlockId.FOOTER,
    ]
    assert message.blocks[0]["text"]["text"] == "Breeze spend: the last 7 days"
    assert section_text(message, BlockId.USAGE) == (
        "*1,234.567 credits* spent in the last 7 days (Dec 2 – Dec 8, 2026, UTC).\n"
        "52,340 requests · 987,654 characters · 176.367 credits a day on average"
    )
    assert_within_limits(message)


def test_the_top_five_keys_and_models_with_other_and_their_shares() -> None:
    message = usage_message(week_report(), today=TODAY)

    assert section_text(message, BlockId.USAGE_KEYS) == (
        "*By key*\n"
        "• `prod`: *400 credits* (40%)\n"
        "• `staging`: *200 credits* (20%)\n"
        "• `batch`: *150 credits* (15%)\n"
        "• `ci`: *100 credits* (10%)\n"
        "• `dev`: *80 credits* (8%)\n"
        "• other keys: *70 credits* (7%)"
    )
    assert section_text(message, BlockId.USAGE_MODELS) == (
        "*By model*\n• `bluebell-v1-en`: *600 credits* (60%)\n• `bluebell-v2-multi`: *400 credits* (40%)"
    )


def test_a_key_without_a_name_shows_its_id_and_unknown_ones_say_so() -> None:
    nameless = [
        MeteredRequest("key_9f8e", None, None, 3_000, 10, at(TODAY)),
        MeteredRequest(None, None, "bluebell-v1-en", 1_000, 10, at(TODAY)),
    ]
    report = week_report(requests=tuple(nameless), total=2, request_count=2, cost_millicredits=4_000)

    message = usage_message(report, today=TODAY)

    assert section_text(message, BlockId.USAGE_KEYS) == (
        "*By key*\n• `key_9f8e`: *3 credits* (75%)\n• _key not given_: *1 credit* (25%)"
    )
    assert section_text(message, BlockId.USAGE_MODELS) == (
        "*By model*\n• _model not given_: *3 credits* (75%)\n• `bluebell-v1-en`: *1 credit* (25%)"
    )


def test_a_split_of_the_newest_requests_says_what_it_is_based_on_while_the_totals_stay_exact() -> None:
    message = usage_message(week_report(), today=TODAY)

    note = "The split by key and by model is of the newest 1,000 of 52,340 requests; the totals are exact."
    assert section_text(message, BlockId.FOOTER) == note
    assert "*1,234.567 credits*" in section_text(message, BlockId.USAGE)
    assert note in message.text


def test_a_split_of_every_request_needs_no_note() -> None:
    every = requests([("prod", "m", 3, 1_000)])
    report = week_report(requests=tuple(every), total=3, request_count=3, cost_millicredits=3_000)

    message = usage_message(report, today=TODAY)

    assert BlockId.FOOTER not in block_ids(message)
    assert "newest" not in all_text(message)


def test_the_trend_bars_each_day_and_names_the_busiest() -> None:
    message = usage_message(week_report(), today=TODAY)

    assert section_text(message, BlockId.USAGE_TREND) == (
        "*Per day:* `▁▃▅▄▆█▂` Dec 2 → Dec 8 · busiest Mon Dec 7: 400 credits"
    )
    assert BlockId.USAGE_TREND not in block_ids(usage_message(week_report(daily=None), today=TODAY))


def test_today_is_a_single_day_so_far_without_an_average_or_a_trend() -> None:
    today = Window(TODAY, TODAY)
    spent = requests([("prod", "bluebell-v1-en", 3, 4_500)])
    report = UsageReport(today, 13_500, 3, 120, 3, tuple(spent), (DaySpend(TODAY, 13_500),))

    message = usage_message(report, today=TODAY)

    assert message.blocks[0]["text"]["text"] == "Breeze spend: today"
    assert section_text(message, BlockId.USAGE) == (
        "*13.5 credits* spent today so far (Tue Dec 8, 2026, UTC).\n3 requests · 120 characters"
    )
    assert BlockId.USAGE_TREND not in block_ids(message)


def test_a_window_with_no_spend_says_so_plainly() -> None:
    report = UsageReport(Window.ending(TODAY, 30), 0, 0, 0, 0)

    message = usage_message(report, today=TODAY)

    assert block_ids(message) == [BlockId.HEADER, BlockId.USAGE]
    assert section_text(message, BlockId.USAGE) == (
        "*Nothing was spent* in the last 30 days (Nov 9 – Dec 8, 2026, UTC)."
    )
    assert message.text == "Breeze spend in the last 30 days (Nov 9 – Dec 8, 2026, UTC): nothing was spent."


def test_free_requests_are_counted_when_nothing_was_spent() -> None:
    free = requests([("prod", "bluebell-v1-en", 2, 0)])
    report = UsageReport(WEEK, 0, 2, 20, 2, tuple(free))

    message = usage_message(report, today=TODAY)

    assert section_text(message, BlockId.USAGE) == (
        "*Nothing was spent* in the last 7 days (Dec 2 – Dec 8, 2026, UTC).\n2 requests · 20 characters"
    )
    assert block_ids(message) == [BlockId.HEADER, BlockId.USAGE]
    assert message.text == (
        "Breeze spend in the last 7 days (Dec 2 – Dec 8, 2026, UTC): nothing was spent (2 requests, 20 characters)."
    )


def test_spend_without_its_requests_has_no_split_and_says_why() -> None:
    report = UsageReport(WEEK, 5_000, 3, 30, 3)

    message = usage_message(report, today=TODAY)

    assert block_ids(message) == [BlockId.HEADER, BlockId.USAGE, BlockId.FOOTER]
    assert section_text(message, BlockId.FOOTER) == (
        "No requests were read, so there is no split by key or model."
    )
    assert "No requests were read" in message.text
    assert usage_lines(report, today=TODAY)[-1] == (
        "No requests were read, so there is no split by key or model."
    )


@pytest.mark.parametrize(
    ("window", "today", "title", "during"),
    [
        (
            Window(date(2025, 12, 30), date(2026, 1, 5)),
            date(2026, 1, 5),
            "Breeze spend: the last 7 days",
            "in the last 7 days (Dec 30, 2025 – Jan 5, 2026, UTC)",
        ),
        (
            Window(date(2026, 12, 1), date(2026, 12, 7)),
            TODAY,
            "Breeze spend: Dec 1 – Dec 7, 2026",
            "in Dec 1 – Dec 7, 2026 (UTC)",
        ),
        (
            Window(date(2026, 12, 7), date(2026, 12, 7)),
            TODAY,
            "Breeze spend: Mon Dec 7, 2026",
            "on Mon Dec 7, 2026 (UTC)",
        ),
    ],
)
def test_windows_are_named_by_their_utc_dates(window: Window, today: date, title: str, during: str) -> None:
    message = usage_message(UsageReport(window, 1_000, 1, 10, 1), today=today)

    assert message.blocks[0]["text"]["text"] == title
    assert section_text(message, BlockId.USAGE).startswith(f"*1 credit* spent {during}.\n")
    assert usage_lines(UsageReport(window, 1_000, 1, 10, 1), today=today)[0] == f"Breeze spend {during}"


def test_shared_it_is_posted_in_the_channel_saying_who_asked() -> None:
    message = usage_message(week_report(), today=TODAY, shared_by="U123")

    assert message.response_type == "in_channel"
    assert "<@U123> shared this" in section_text(message, BlockId.FOOTER)
    assert message.text.endswith(" <@U123> shared this.")
    hostile = usage_message(week_report(), today=TODAY, shared_by="U1> <!channel")
    assert "<!channel" not in all_text(hostile)


def test_the_fallback_text_says_the_same_numbers_as_the_blocks() -> None:
    message = usage_message(week_report(), today=TODAY, shared_by="U123")
    shown = json.dumps(message.blocks, ensure_ascii=False)

    assert message.text == (
        "Breeze spend in the last 7 days (Dec 2 – Dec 8, 2026, UTC): 1,234.567 credits, 52,340 requests, "
        "987,654 characters, 176.367 credits a day on average. Top key: `prod`, 400 credits (40%). "
        "Top model: `bluebell-v1-en`, 600 credits (60%). The split by key and by model is of the newest "
        "1,000 of 52,340 requests; the totals are exact. <@U123> shared this."
    )
    for figure in NUMBER.findall(message.text):
        assert figure in shown, figure


def test_long_and_hostile_names_are_escaped_shortened_and_keep_every_figure_within_slacks_limits() -> None:
    hostile = "<!channel> & `rm` " * 40
    spenders = [(f"{n}{hostile}", f"{hostile}{n}", 10 + n, 1_000) for n in range(8)]
    spent = requests(spenders)
    cost = sum(r.cost_millicredits for r in spent)
    report = week_report(
        requests=tuple(spent), total=len(spent), request_count=len(spent), cost_millicredits=cost
    )

    message = usage_message(report, today=TODAY, shared_by="U123")

    assert_within_limits(message)
    for block_id in (BlockId.USAGE_KEYS, BlockId.USAGE_MODELS):
        text = section_text(message, block_id)
        assert "<" not in text
        assert ">" not in text
        assert re.fullmatch(r"(?:[^&]|&amp;|&lt;|&gt;)*", text)
        rows = text.split("\n")[1:]
        assert len(rows) == 6  # the top five and the other ones: none cut off
        for row in rows:
            assert row.count("`") in (0, 2), row  # a name cannot close its code span early
            assert len(row) < 400
        assert "*17 credits*" in text  # the biggest spender's figure survives its name
    assert "<!channel" not in all_text(message)


def test_the_mrkdwn_of_names_is_escaped_with_backticks_made_harmless() -> None:
    assert t.code("a<b>&`c`") == "`a&lt;b&gt;&amp;ˋcˋ`"
    assert t.code("  two\nlines ") == "`two lines`"


def test_shares_are_percent_to_a_tenth() -> None:
    expected = {
        "0.4": "40%",
        "1": "100%",
        "0": "0%",
        "0.12345": "12.3%",
        "0.00049": "<0.1%",
        "0.99951": ">99.9%",
    }
    assert {share: t.percent(Decimal(share)) for share in expected} == expected


def test_the_edges_of_a_share_are_escaped_in_mrkdwn() -> None:
    spent = requests([("prod", "bluebell-v1-en", 1, 999_999), ("dev", "bluebell-v1-en", 1, 1)])
    report = week_report(requests=tuple(spent), total=2, request_count=2, cost_millicredits=1_000_000)

    message = usage_message(report, today=TODAY)

    assert section_text(message, BlockId.USAGE_KEYS) == (
        "*By key*\n• `prod`: *999.999 credits* (&gt;99.9%)\n• `dev`: *0.001 credits* (&lt;0.1%)"
    )
    assert "Top key: `prod`, 999.999 credits (&gt;99.9%)." in message.text
    assert "  prod" + " " * 36 + "  999.999 credits >99.9%" in usage_lines(report, today=TODAY)


# --- the CLI's text and JSON ---------------------------------------------------------------------


def test_the_cli_prints_the_same_figures_as_plain_text() -> None:
    assert usage_lines(week_report(), today=TODAY) == [
        "Breeze spend in the last 7 days (Dec 2 – Dec 8, 2026, UTC)",
        "  spent        1,234.567 credits",
        "  requests     52,340",
        "  characters   987,654",
        "  per day      176.367 credits on average",
        "By key (of the newest 1,000 of 52,340 requests):",
        "  prod                                          400 credits    40%",
        "  staging                                       200 credits    20%",
        "  batch                                         150 credits    15%",
        "  ci                                            100 credits    10%",
        "  dev                                            80 credits     8%",
        "  (other keys)                                   70 credits     7%",
        "By model (of the newest 1,000 of 52,340 requests):",
        "  bluebell-v1-en                                600 credits    60%",
        "  bluebell-v2-multi                             400 credits    40%",
        "Per day: ▁▃▅▄▆█▂ Dec 2 → Dec 8 · busiest Mon Dec 7: 400 credits",
    ]


def test_the_cli_says_plainly_when_nothing_was_spent_and_shows_names_as_they_are() -> None:
    assert usage_lines(UsageReport(Window(TODAY, TODAY), 0, 0, 0, 0), today=TODAY) == [
        "Breeze spend today so far (Tue Dec 8, 2026, UTC): nothing was spent."
    ]
    odd = requests([("a<b> & `c`\x1b[31m", None, 1, 1_000)])
    lines = usage_lines(UsageReport(WEEK, 1_000, 1, 10, 1, tuple(odd)), today=TODAY)
    assert "  a<b> & `c`?[31m                                  1 credit   100%" in lines
    assert "  (model not given)                                1 credit   100%" in lines
    assert not any("\x1b" in line for line in lines)


def test_the_cli_json_is_exact_for_scripts() -> None:
    data = usage_json(week_report())

    assert json.loads(json.dumps(data)) == data
    assert {k: v for k, v in data.items() if k not in ("by_key", "by_model", "daily")} == {
        "from": "2026-12-02",
        "to": "2026-12-08",
        "days": 7,
        "spent": "1234.567",
        "spent_millicredits": 1_234_567,
        "requests": 52_340,
        "characters": 987_654,
        "average_per_day": "176.367",
        "split_read": 1_000,
        "split_total": 52_340,
        "split_sampled": True,
        "trend": "▁▃▅▄▆█▂",
    }
    assert data["by_key"][0] == {
        "name": "prod",
        "other": False,
        "spent": "400.000",
        "spent_millicredits": 400_000,
        "requests": 400,
        "share": "0.4000",
    }
    assert data["by_key"][-1] == {
        "name": None,
        "other": True,
        "spent": "70.000",
        "spent_millicredits": 70_000,
        "requests": 70,
        "share": "0.0700",
    }
    assert [row["name"] for row in data["by_model"]] == ["bluebell-v1-en", "bluebell-v2-multi"]
    assert data["daily"][5] == {"date": "2026-12-07", "spent": "400.000", "spent_millicredits": 400_000}
    assert len(data["daily"]) == 7
    assert usage_json(week_report(daily=None))["daily"] is None


# --- any report ----------------------------------------------------------------------------------

names = st.one_of(st.none(), st.text(max_size=120), st.sampled_from(["<!channel>", "`", "&amp;", "*x*"]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spent=st.lists(st.tuples(names, names, names, st.integers(0, 10**12), st.integers(0, 89)), max_size=40),
    days=st.integers(1, 90),
    unread=st.integers(0, 10**6),
    shared_by=st.one_of(st.none(), st.text(max_size=20)),
)
def test_any_report_renders_within_slacks_limits_with_every_name_escaped(
    spent: list[tuple[str | None, str | None, str | None, int, int]],
    days: int,
    unread: int,
    shared_by: str | None,
) -> None:
    window = Window.ending(TODAY, days)
    read = tuple(
        MeteredRequest(key, name, model, cost, 1, at(TODAY) - timedelta(days=back % days))
        for key, name, model, cost, back in spent
    )
    cost = sum(r.cost_millicredits for r in read)
    report = UsageReport(window, cost, len(read) + unread, len(read), len(read) + unread, read)

    message = usage_message(report, today=TODAY, shared_by=shared_by)

    assert_within_limits(message)
    for block in message.blocks:
        if block["block_id"] in (BlockId.USAGE_KEYS, BlockId.USAGE_MODELS):
            assert re.fullmatch(r"(?:[^&<>]|&amp;|&lt;|&gt;)*", block["text"]["text"])
            assert all(row.count("`") in (0, 2) for row in block["text"]["text"].split("\n"))
    if cost:
        assert t.credits(credits_of(cost)) in message.text
    shown = json.dumps(message.blocks, ensure_ascii=False)
    for figure in NUMBER.findall(message.text):
        assert figure in shown, figure
    lines = usage_lines(report, today=TODAY)
    assert all(line.isprintable() for line in lines)
    assert json.loads(json.dumps(usage_json(report)))["spent_millicredits"] == cost
