"""The runway and spike alerts as a PaaS runs them: the Procfile's web line and two worker lines on one
PostgreSQL, against the fake Breeze and its metering. Every wait is a bounded poll for something to
arrive; nothing measures time."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.fakes import FakeMetering, FakeServer, Metered
from tests.integration import test_worker_processes as paas
from tests.integration.test_worker_processes import (
    CHANNEL,
    BreezeScript,
    Processes,
    app_env,
    assert_clean_logs,
    command,
    posts,
    prepared_postgres,
    procfile_argv,
    release,
    script_breeze,
    script_slack,
    start_web,
    wait_checks,
    wait_until,
)

# The Procfile's processes, and an empty working directory for them.
procs = paas.procs
cwd = paas.cwd


def kinds(slack_api: FakeServer) -> Counter[str]:
    """The runway alerts, recoveries and spike alerts posted so far (anything else as `other`)."""
    found: Counter[str] = Counter()
    for post in posts(slack_api):
        text = str(post.get("text", ""))
        name = next((n for prefix, n in _KINDS if text.startswith(prefix)), "other")
        found[name] += 1
    return found


def web_on_postgres(
    procs: Processes, cwd: Path, breeze: FakeServer, slack_api: FakeServer, balance: BreezeScript, **env: str
) -> tuple[str, dict[str, str]]:
    """The release phase, then the Procfile's web line, on PostgreSQL against the fakes: its URL and env."""
    settings = app_env(breeze, slack_api, prepared_postgres(), **env)
    script_slack(slack_api)
    script_breeze(breeze, balance)
    release(settings, cwd)
    return start_web(procs, procfile_argv("web"), settings, cwd), settings


_KINDS = (
    ("Breeze runway is short", "days"),
    ("Breeze runway recovered", "recovery"),
    ("Breeze spend spike", "spike"),
)


def test_two_procfile_workers_on_postgresql_post_each_runway_crossing_and_spike_once(
    procs: Processes,
    cwd: Path,
    breeze: FakeServer,
    slack_api: FakeServer,
    hooks: FakeServer,
    metering: FakeMetering,
) -> None:
    today = datetime.now(UTC).date()
    metering.spent(*(Metered(today - timedelta(days=n), 100_000) for n in range(1, 8)))
    metering.spent(Metered(today, 500_000, key_id="key_batch", key_name="batch"))  # 5 times the usual day
    balance = BreezeScript(2000)  # 20 days at 100 credits a day
    web, env = web_on_postgres(procs, cwd, breeze, slack_api, balance, USAGE_REFRESH_SECONDS="60")
    for name in ("worker1", "worker2"):
        procs.start(name, procfile_argv("worker"), env, cwd)

    # A fresh workspace's first command already has the runway and its date; `usage` has the split.
    first = command(web, hooks, "")
    assert "About 20 days left, until around" in first, first
    spent = command(web, hooks, "usage")
    assert "*By key*" in spent, spent
    assert "`batch`" in spent, spent

    reply = command(web, hooks, f"alert spike <#{CHANNEL}|alerts>")
    assert f"I'll post in <#{CHANNEL}> when a day's spend is over 3x the usual day" in reply, reply
    reply = command(web, hooks, f"alert days 5 <#{CHANNEL}|alerts>")
    assert f"I'll post in <#{CHANNEL}> once when the runway falls under 5 days" in reply, reply

    wait_until(lambda: kinds(slack_api)["spike"] >= 1, "the spike alert", procs)
    wait_checks(breeze, 6, procs)
    assert kinds(slack_api) == {"spike": 1}, posts(slack_api)

    balance.balance = 400  # 4 days
    wait_until(lambda: kinds(slack_api)["days"] >= 1, "the runway alert", procs)
    wait_checks(breeze, 6, procs)
    assert kinds(slack_api) == {"spike": 1, "days": 1}, posts(slack_api)

    balance.balance = 600  # 6 days: at least 5.5
    wait_until(lambda: kinds(slack_api)["recovery"] >= 1, "the runway's recovery", procs)
    balance.balance = 300
    wait_until(lambda: kinds(slack_api)["days"] >= 2, "the second runway alert", procs)
    wait_checks(breeze, 6, procs)
    assert kinds(slack_api) == {"spike": 1, "days": 2, "recovery": 1}, posts(slack_api)
    assert {p["channel"] for p in posts(slack_api)} == {CHANNEL}
    assert "key *batch*" in str(next(p for p in posts(slack_api) if p["text"].startswith("Breeze spend")))

    for name in ("worker1", "worker2"):
        assert procs.stop(name) == 0, procs.log(name)
    procs.stop("web")
    assert_clean_logs(procs)


def test_with_metering_answering_404_the_procfile_web_answers_as_before(
    procs: Processes,
    cwd: Path,
    breeze: FakeServer,
    slack_api: FakeServer,
    hooks: FakeServer,
    metering: FakeMetering,
) -> None:
    metering.unavailable(404)
    web, _ = web_on_postgres(procs, cwd, breeze, slack_api, BreezeScript(2000))

    balance = command(web, hooks, "")
    spent = command(web, hooks, "usage")
    rule = command(web, hooks, f"alert days 5 <#{CHANNEL}|alerts>")

    assert "2,000 credits" in balance, balance
    assert "days left" not in balance  # no metering and no samples yet: no runway, and no error
    assert "Breeze does not offer usage reports for this workspace's API key" in spent, spent
    assert "once when the runway falls under 5 days" in rule, rule
    procs.stop("web")
    assert_clean_logs(procs)
