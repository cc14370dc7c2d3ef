"""REDIS_URL: caches and limits shared by every process, and nothing secret in Redis.

Two app instances here share one SQLite file and one private `redis-server`, but each has its own
in-process caches, so for the caches they are two processes (one test also runs two real
`python -m bot serve` subprocesses). When Redis stops, hangs or is not configured, every command
is still acknowledged and answered.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

import bot.adapters.redis_shared
from bot.adapters.redis_shared import PREFIX, RedisShared
from bot.config import Settings, load_settings
from bot.deps import KEY_CACHE_SECONDS, REFRESH_EVERY_SECONDS
from bot.domain.balances import Balance, Workspace
from bot.errors import ConfigError
from bot.services.caches import BalanceCache
from tests.conftest import (
    API_KEY,
    BOT_TOKEN,
    ENCRYPTION_KEY,
    SIGNING_SECRET,
    AppFactory,
    make_settings,
    texts,
)
from tests.fakes import AppServer, FakeServer, Recorded, Reply, SlackClient
from tests.integration.test_cli import base_env, check_env, free_port, run_bot
from tests.integration.test_keys import ADMIN, button, roles, submission
from tests.redis_server import (
    RedisServer,
    closed_port,
    delaying_proxy,
    silent_server,
)

FIRST_KEY = "brz_live_FirstSharedKey1111"
SECOND_KEY = "brz_live_SecondSharedKey2222"
KEY_BALANCES = {API_KEY: 5, FIRST_KEY: 11, SECOND_KEY: 22}
SECRETS = (API_KEY, FIRST_KEY, SECOND_KEY, BOT_TOKEN, SIGNING_SECRET, ENCRYPTION_KEY)
OUTAGE_LOG = "Redis is unavailable"
BACK_LOG = "Redis is back"
CACHE_SECONDS = 120  # longer than any test, however slow the machine


# --- fixtures and helpers -----------------------------------------------------------------------------


def by_key(delay: float = 0.0, gate: threading.Event | None = None) -> Callable[[Recorded], Reply]:
    """A Breeze that answers each known key with its own balance (after `delay`, or once `gate` is
    set), else 401."""

    def answer(recorded: Recorded) -> Reply:
        key = recorded.headers.get("xi-api-key", "")
        if key in KEY_BALANCES:
            body = {"balance": KEY_BALANCES[key], "topups": []}
            headers = {"x-breeze-api-key-id": f"key_{KEY_BALANCES[key]}"}
            return Reply(200, body, headers, delay=delay, gate=gate)
        return Reply(401, {"code": "AUTH_INVALID_SESSION", "detail": "invalid key", "error": "unauthorized"})

    return answer


def two_apps(start_app: AppFactory, **overrides: Any) -> list[tuple[AppServer, SlackClient]]:
    """Two instances on the same database and settings, each with its own in-process caches."""
    settings = {"breeze_cache_seconds": CACHE_SECONDS, **overrides}
    return [start_app(**settings), start_app(**settings)]


def command(slack: SlackClient, hooks: FakeServer, url: str, text: str = "", **extra: str) -> dict[str, Any]:
    """Run a command, check the ack, return the reply that arrived at its response_url."""
    ack = slack.command(url, text, **extra)
    assert ack.status_code == 200, ack.text
    assert ack.content == b"", ack.text  # the ack is empty: the answer comes at the response_url
    return hooks.wait_for(1, path=url.removeprefix(hooks.url))[0].json()


def burst(
    clients: list[SlackClient], hooks: FakeServer, tag: str, count: int, team: str = "T0001"
) -> list[dict[str, Any]]:
    """`count` commands at once, spread in turn over the clients; every reply, in order."""
    urls = [f"{hooks.url}/commands/{tag}/{n}" for n in range(count)]

    def send(n: int) -> httpx.Response:
        return clients[n % len(clients)].command(urls[n], team_id=team, user_id=f"U{n:04d}")

    with ThreadPoolExecutor(20) as pool:
        acks = list(pool.map(send, range(count)))
    assert [a.status_code for a in acks] == [200] * count
    return [hooks.wait_for(1, path=url.removeprefix(hooks.url))[0].json() for url in urls]


def breeze_keys(breeze: FakeServer, since: int = 0) -> list[str]:
    """The `xi-api-key` of each balance call Breeze received (from the `since`-th on)."""
    return [r.headers.get("xi-api-key", "") for r in breeze.received(path="/v1/balance")[since:]]


def commands_named(redis: RedisServer, start: str) -> list[str]:
    """The commands Redis received so far (MONITOR's lines) that contain `start`."""
    return [line for line in redis.commands_seen() if start in line]


def health(app: AppServer) -> httpx.Response:
    return httpx.get(f"{app.url}/healthz", timeout=10)


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:g} s: {what}")
        time.sleep(0.1)


def admin_slack(slack_api: FakeServer) -> None:
    """Slack's users.info (ADMIN is an admin), views.open and views.publish."""
    slack_api.route("GET", "/api/users.info", roles)
    slack_api.route("POST", "/api/users.info", roles)
    slack_api.route("POST", "/api/views.open", Reply(200, {"ok": True, "view": {"id": "V0001"}}))
    slack_api.route("POST", "/api/views.publish", Reply(200, {"ok": True, "view": {"id": "V0002"}}))


def messages_at(hooks: FakeServer, url: str) -> list[str]:
    return [texts(r.json()) for r in hooks.received(path=url.removeprefix(hooks.url))]


def set_key(slack: SlackClient, slack_api: FakeServer, hooks: FakeServer, url: str, key: str) -> str:
    """An admin runs set-key and submits `key` in the modal; the confirmation's text."""
    opened = len(slack_api.received(path="/api/views.open"))
    ack = slack.command(url, "set-key", user_id=ADMIN)
    assert ack.status_code == 200
    request = slack_api.wait_for(opened + 1, path="/api/views.open")[opened]
    body = request.json() if request.body.startswith(b"{") else request.form()
    view = json.loads(body["view"]) if isinstance(body["view"], str) else body["view"]
    answer = slack.interaction(submission(view, key))
    assert answer.status_code == 200
    assert answer.content == b"", answer.text  # saved: an empty 200 closes the modal
    wait_until(lambda: any("key saved" in m for m in messages_at(hooks, url)), "the set-key confirmation")
    return next(m for m in messages_at(hooks, url) if "key saved" in m)


def remove_key(slack: SlackClient, hooks: FakeServer, url: str) -> str:
    """An admin runs remove-key and confirms; the text that replaced the prompt."""
    prompt = command(slack, hooks, url, "remove-key", user_id=ADMIN)
    assert "Remove the Breeze API key" in texts(prompt)
    assert slack.interaction(button("remove_key_confirm", url)).status_code == 200
    return texts(hooks.wait_for(2, path=url.removeprefix(hooks.url))[-1].json())


def assert_nothing_secret(redis: RedisServer) -> dict[str, str]:
    """Neither the keys nor the tokens, nor anything like them, in Redis now or in what it was sent."""
    contents = redis.contents()
    stored = "\n".join(f"{key} {value}" for key, value in contents.items())
    sent = "\n".join(redis.commands_seen())
    for where, seen in (("stored in", stored), ("sent to", sent)):
        for secret in SECRETS:
            assert secret not in seen, f"a secret was {where} Redis"
        assert "brz_" not in seen, f"something like a Breeze key was {where} Redis"
        assert "xox" not in seen, f"something like a Slack token was {where} Redis"
    assert all(key.startswith(PREFIX) for key in contents), sorted(contents)
    return contents


def warnings_per_thread(records: list[Any], text: str) -> dict[int | None, int]:
    """How many log records containing `text` each thread (each app has its own) wrote."""
    counts: dict[int | None, int] = {}
    for record in records:
        if text in record.getMessage():
            counts[record.thread] = counts.get(record.thread, 0) + 1
    return counts


# --- 1. one burst, two processes, one Breeze call ----------------------------------------------------


def test_a_burst_spread_over_two_processes_costs_one_breeze_call(
    redis: RedisServer, start_app: AppFactory, breeze: FakeServer, hooks: FakeServer
) -> None:
    breeze.route("GET", "/v1/balance", by_key(delay=0.5))
    (_, a), (_, b) = two_apps(start_app, redis_url=redis.url)

    replies = burst([a, b], hooks, "burst", 60)

    for reply in replies:
        assert "5 credits" in texts(reply), reply
        assert "Traceback" not in json.dumps(reply)
    assert breeze_keys(breeze) == [API_KEY]  # exactly one call, for 60 commands over 2 processes


def test_with_the_cache_off_a_burst_over_two_processes_shares_the_call_in_flight_and_keeps_nothing(
    redis: RedisServer, start_app: AppFactory, breeze: FakeServer, hooks: FakeServer
) -> None:
    """Sharing the call in flight is not caching: every command of the burst gets that one call's
    answer, and a command after it asks Breeze again."""
    gate = threading.Event()
    breeze.route("GET", "/v1/balance", by_key())
    (_, a), (_, b) = two_apps(start_app, redis_url=redis.url, breeze_cache_seconds=0)
    for n, client in enumerate((a, b)):  # each process has read the workspace's key once (kept 10 s)
        assert "5 credits" in texts(command(client, hooks, f"{hooks.url}/commands/nocache-first/{n}"))
    assert breeze_keys(breeze) == [API_KEY, API_KEY]  # the cache is off: one call each
    breeze.route("GET", "/v1/balance", by_key(gate=gate))
    version_reads = len(commands_named(redis, '"GET" "breeze-balance:key:'))
    claims = len(commands_named(redis, '"SET" "breeze-balance:asking:'))
    urls = [f"{hooks.url}/commands/nocache/{n}" for n in range(30)]

    with ThreadPoolExecutor(10) as pool:
        acks = list(pool.map(lambda n: (a, b)[n % 2].command(urls[n], user_id=f"U{n:04d}"), range(30)))
    assert [ack.status_code for ack in acks] == [200] * 30

    def every_command_waits_on_breeze() -> bool:
        if len(breeze_keys(breeze)) > 3:
            return True  # a second call is already out: no use waiting
        # Every command has read its key (the last step before it joins a call in flight), and
        # each process has tried to claim the call: the one that got it asks, the other waits.
        read = len(commands_named(redis, '"GET" "breeze-balance:key:')) - version_reads
        claimed = len(commands_named(redis, '"SET" "breeze-balance:asking:')) - claims
        return len(breeze_keys(breeze)) == 3 and read == 30 and claimed == 2

    wait_until(every_command_waits_on_breeze, "every command waiting on one Breeze call")
    gate.set()
    replies = [texts(hooks.wait_for(1, path=url.removeprefix(hooks.url))[0].json()) for url in urls]

    assert len(breeze_keys(breeze)) == 3, "one Breeze call for the burst over both processes"
    for reply in replies:
        assert "5 credits" in reply, reply
        assert "As of" not in reply, reply  # the answer of the call in flight, not a cached one
    assert not [k for k in redis.contents() if k.startswith(f"{PREFIX}balance:")]  # nothing cached
    # The call is over: the next command, in either process, asks Breeze again.
    assert "As of" not in texts(command(b, hooks, f"{hooks.url}/commands/nocache-after/b"))
    assert "As of" not in texts(command(a, hooks, f"{hooks.url}/commands/nocache-after/a"))
    assert len(breeze_keys(breeze)) == 5


# --- 2. a key set or removed in one process is used by the other at once -----------------------------


def test_set_key_and_remove_key_in_one_process_take_effect_in_the_other_at_once(
    redis: RedisServer, start_app: AppFactory, breeze: FakeServer, slack_api: FakeServer, hooks: FakeServer
) -> None:
    breeze.route("GET", "/v1/balance", by_key())
    admin_slack(slack_api)
    # No BREEZE_API_KEY: the stored key is the only one.
    (_, a), (_, b) = two_apps(start_app, redis_url=redis.url, breeze_api_key=None)
    base = f"{hooks.url}/commands/keys"

    # B reads (and caches for KEY_CACHE_SECONDS) "no key" ...
    assert "No Breeze API key is set up" in texts(command(b, hooks, f"{base}/b-0"))
    # ... A sets the first key: B's very next command uses it.
    assert "11 credits" in set_key(a, slack_api, hooks, f"{base}/a-set-1", FIRST_KEY)
    assert "11 credits" in texts(command(b, hooks, f"{base}/b-1"))
    # A replaces it: B's very next command uses the new key, not the one it just cached.
    calls = len(breeze_keys(breeze))
    assert "22 credits" in set_key(a, slack_api, hooks, f"{base}/a-set-2", SECOND_KEY)
    reply = texts(command(b, hooks, f"{base}/b-2"))
    assert "22 credits" in reply, reply
    assert "11 credits" not in reply
    assert FIRST_KEY not in breeze_keys(breeze, calls)  # the old key was not used again
    assert breeze_keys(breeze)[-1] == SECOND_KEY

    # A removes it: B's very next command says there is no key, and Breeze is not asked.
    assert "removed this workspace's Breeze API key" in remove_key(a, hooks, f"{base}/a-remove")
    calls = len(breeze_keys(breeze))
    assert "No Breeze API key is set up" in texts(command(b, hooks, f"{base}/b-3"))
    assert breeze_keys(breeze, calls) == []


def test_key_versions_outlive_every_cache_entry_and_each_use_keeps_them_longer(
    redis: RedisServer, start_app: AppFactory, breeze: FakeServer, slack_api: FakeServer, hooks: FakeServer
) -> None:
    """A workspace's key version is kept longer than any cache entry could be (so no process ever
    mistakes an old cached key for a new one), then forgotten: Redis does not fill up with the
    counters of workspaces long gone."""
    limits = Settings.model_fields["breeze_cache_seconds"].metadata
    longest_balance = next(rule.le for rule in limits if hasattr(rule, "le"))  # BREEZE_CACHE_SECONDS' top
    longest_cache = max(longest_balance, KEY_CACHE_SECONDS, REFRESH_EVERY_SECONDS)
    breeze.route("GET", "/v1/balance", by_key())
    admin_slack(slack_api)
    (_, a), (_, b) = two_apps(start_app, redis_url=redis.url, breeze_api_key=None)

    set_key(a, slack_api, hooks, f"{hooks.url}/commands/versions/set", FIRST_KEY)

    counters = [key for key in redis.contents() if key.startswith(f"{PREFIX}key:")]
    assert counters == [f"{PREFIX}key:-:T0001"]
    with redis.client() as client:
        assert client.ttl(counters[0]) > longest_cache  # -1 would be: never forgotten
        client.expire(counters[0], 60)  # as if nobody had used the workspace for most of that time
    # B's command reads the version (to trust its cached key): that use keeps it as long again.
    assert "11 credits" in texts(command(b, hooks, f"{hooks.url}/commands/versions/b"))
    with redis.client() as client:
        assert client.ttl(counters[0]) > longest_cache


# --- 3. the refresh limit counts across processes -----------------------------------------------------


def test_the_refresh_limit_is_shared_by_every_process(
    redis: RedisServer, start_app: AppFactory, breeze: FakeServer, hooks: FakeServer
) -> None:
    breeze.route("GET", "/v1/balance", by_key())
    (_, a), (_, b) = two_apps(start_app, redis_url=redis.url)
    base = f"{hooks.url}/commands/refresh"

    first = texts(command(a, hooks, f"{base}/a", "refresh", user_id="U0042"))
    second = texts(command(b, hooks, f"{base}/b", "refresh", user_id="U0042"))

    assert "5 credits" in first
    assert "you can refresh again" not in first
    assert "5 credits" in second
    found = re.search(r"you can refresh again in (\d+) seconds?", second)
    assert found is not None, second
    assert 1 <= int(found.group(1)) <= 30
    assert breeze_keys(breeze) == [API_KEY]  # the refused refresh cost no Breeze call

    # Another user may refresh in B: the limit is per user.
    other = texts(command(b, hooks, f"{base}/b-other", "refresh", user_id="U0043"))
    assert "you can refresh again" not in other
    assert len(breeze_keys(breeze)) == 2


# --- 4. no secret ever reaches Redis ------------------------------------------------------------------


def test_no_breeze_key_or_slack_token_is_ever_written_to_redis(
    redis: RedisServer, start_app: AppFactory, breeze: FakeServer, slack_api: FakeServer, hooks: FakeServer
) -> None:
    breeze.route("GET", "/v1/balance", by_key(delay=0.3))
    admin_slack(slack_api)
    (_, a), (_, b) = two_apps(start_app, redis_url=redis.url)
    base = f"{hooks.url}/commands/secrets"

    # Everything that writes to Redis: balances and "asking" claims, refresh limits, key versions.
    burst([a, b], hooks, "secrets-burst", 10)
    command(a, hooks, f"{base}/refresh-a", "refresh", user_id="U0042")
    command(b, hooks, f"{base}/refresh-b", "refresh", user_id="U0042")
    set_key(a, slack_api, hooks, f"{base}/set-1", FIRST_KEY)
    command(b, hooks, f"{base}/after-set-1")
    set_key(b, slack_api, hooks, f"{base}/set-2", SECOND_KEY)
    command(a, hooks, f"{base}/after-set-2")
    remove_key(a, hooks, f"{base}/remove")
    command(b, hooks, f"{base}/after-remove")

    contents = assert_nothing_secret(redis)

    kinds = {key.removeprefix(PREFIX).split(":")[0] for key in contents}
    assert {"balance", "refresh", "key"} <= kinds, sorted(contents)
    sent = "\n".join(redis.commands_seen())
    assert f'"{PREFIX}asking:' in sent  # the claims were made (and released) too


# --- 5. Redis stops mid-run, then comes back --------------------------------------------------------


def outage(
    redis: RedisServer,
    apps: list[tuple[AppServer, SlackClient]],
    breeze: FakeServer,
    hooks: FakeServer,
    logs: pytest.LogCaptureFixture,
) -> None:
    """Stop Redis under two busy processes, check they cope, start it again, wait for /healthz ok."""
    (app_a, a), (app_b, b) = apps
    assert [health(app).json()["redis"] for app in (app_a, app_b)] == ["ok", "ok"]
    burst([a, b], hooks, "before-outage", 20)  # several pooled Redis connections in each process
    assert len(breeze_keys(breeze)) == 1

    redis.stop()
    try:
        replies = [
            command((a, b)[n % 2], hooks, f"{hooks.url}/commands/outage/{n}", user_id=f"U{n:04d}")
            for n in range(12)
        ]
        # A workspace neither process has cached: each asks Breeze itself (no sharing without Redis).
        replies += burst([a, b], hooks, "outage-new-team", 6, team="T0002")
        for reply in replies:
            said = json.dumps(reply)
            assert "5 credits" in texts(reply), reply
            assert "Traceback" not in said
            assert "Redis" not in said
            assert "ConnectionError" not in said
        assert 1 + 2 <= len(breeze_keys(breeze)) <= 1 + 6

        for app in (app_a, app_b):
            answer = health(app)
            assert answer.status_code == 200  # Redis is optional: nothing to restart the app for
            assert answer.json()["redis"] == "unavailable"
            assert answer.json()["status"] == "degraded"

        found = warnings_per_thread(logs.records, OUTAGE_LOG)
        assert sorted(found.values()) == [1, 1], found  # once per process, not once per command
        assert not [r for r in logs.records if r.exc_info and r.name.startswith("bot")]
    finally:
        redis.start()

    for app in (app_a, app_b):
        wait_until(lambda app=app: health(app).json().get("redis") == "ok", "/healthz says redis ok")


def test_a_redis_outage_is_survived_logged_once_and_recovered_from(
    redis: RedisServer,
    start_app: AppFactory,
    breeze: FakeServer,
    hooks: FakeServer,
    all_logs: pytest.LogCaptureFixture,
) -> None:
    breeze.route("GET", "/v1/balance", by_key(delay=0.2))
    apps = two_apps(start_app, redis_url=redis.url)

    outage(redis, apps, breeze, hooks, all_logs)

    # Shared again once each process has reconnected (in the background, every few seconds): a
    # balance one process stores, the other reads.
    (_, a), (_, b) = apps
    probes = iter(range(1000))

    def sharing_again() -> bool:
        team = f"TPROBE{next(probes):03d}"
        command(a, hooks, f"{hooks.url}/commands/probe/{team}/a", team_id=team)
        return "As of" in texts(command(b, hooks, f"{hooks.url}/commands/probe/{team}/b", team_id=team))

    wait_until(sharing_again, "a balance one process stored is read by the other")
    assert len(warnings_per_thread(all_logs.records, BACK_LOG)) == 2  # each process said it is back


def test_healthz_says_degraded_until_the_process_shares_its_caches_again(
    redis: RedisServer,
    start_app: AppFactory,
    breeze: FakeServer,
    hooks: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Redis answering again is not enough: until this process has reconnected it still uses its
    own caches, and /healthz says so."""
    breeze.route("GET", "/v1/balance", by_key())
    app, slack = start_app(redis_url=redis.url, breeze_cache_seconds=CACHE_SECONDS)
    assert {k: health(app).json()[k] for k in ("status", "redis")} == {"status": "ok", "redis": "ok"}
    assert "degraded" not in health(app).json()
    # The process reconnects in the background; here it waits until the test lets it, so the
    # time between Redis coming back and the process using it again can be looked at.
    may_reconnect = threading.Event()
    reconnect = RedisShared._reconnect

    async def held_reconnect(self: RedisShared) -> None:
        while not may_reconnect.is_set():  # noqa: ASYNC110 (set from the test's thread, not this loop)
            await asyncio.sleep(0.05)
        await reconnect(self)

    monkeypatch.setattr(RedisShared, "_reconnect", held_reconnect)

    redis.stop()
    try:
        assert "5 credits" in texts(command(slack, hooks, f"{hooks.url}/commands/healthz/down"))
        down = health(app)
    finally:
        redis.start()
    back = health(app)  # Redis answers, but this process has not reconnected
    may_reconnect.set()
    wait_until(lambda: health(app).json()["status"] == "ok", "/healthz says ok again")
    shared = health(app).json()

    assert down.status_code == back.status_code == 200  # Redis is optional: nothing to restart for
    assert (down.json()["status"], down.json()["redis"]) == ("degraded", "unavailable")
    assert (back.json()["status"], back.json()["redis"]) == ("degraded", "reconnecting")
    for answer in (down, back):
        [why] = answer.json()["degraded"]
        assert "own caches" in why, why
        assert str(redis.port) not in why  # nothing of the URL (which may hold a password)
    assert shared["redis"] == "ok"
    assert "degraded" not in shared
    # "ok" means shared: a balance this process asks Breeze for now lands in Redis.
    command(slack, hooks, f"{hooks.url}/commands/healthz/up", team_id="T0009")
    assert [k for k in redis.contents() if k.startswith(f"{PREFIX}balance:-:T0009:")]


def test_after_an_outage_a_burst_over_both_processes_costs_one_breeze_call(
    redis: RedisServer,
    start_app: AppFactory,
    breeze: FakeServer,
    hooks: FakeServer,
    all_logs: pytest.LogCaptureFixture,
) -> None:
    """Pooled connections opened before the outage are dead: once back, none of them may take the
    store down again (a second outage log, caches unshared for another reconnect period)."""
    breeze.route("GET", "/v1/balance", by_key(delay=0.2))
    apps = two_apps(start_app, redis_url=redis.url)
    outage(redis, apps, breeze, hooks, all_logs)
    wait_until(
        lambda: len(warnings_per_thread(all_logs.records, BACK_LOG)) == 2, "both processes reconnected"
    )

    calls = len(breeze_keys(breeze))
    for reply in burst([a for _, a in apps], hooks, "after-outage", 40, team="T0003"):
        assert "5 credits" in texts(reply)

    assert sorted(warnings_per_thread(all_logs.records, OUTAGE_LOG).values()) == [1, 1]  # not again
    assert len(breeze_keys(breeze)) - calls == 1


def test_once_back_the_shared_store_stays_available_under_concurrent_calls(redis: RedisServer) -> None:
    """The same at the adapter: ten pooled connections die with Redis; after the reconnect, ten
    concurrent calls all answer and the store stays available."""

    async def scenario() -> tuple[list[int | None], bool]:
        shared = RedisShared(redis.url)
        try:
            await asyncio.gather(*(shared.version(f"v{n}") for n in range(10)))  # ten pooled connections
            redis.stop()
            try:
                assert await shared.version("v0") is None
                assert not shared.available
            finally:
                redis.start()
            for _ in range(400):  # up to 20 s for the background reconnect to find Redis again
                if shared.available:
                    break
                await asyncio.sleep(0.05)
            versions = await asyncio.gather(*(shared.version(f"v{n}") for n in range(10)))
            return list(versions), shared.available
        finally:
            await shared.close()

    assert asyncio.run(scenario()) == ([0] * 10, True)


# --- 6. Redis accepts connections but never answers ----------------------------------------------------


def test_a_redis_that_never_answers_slows_nothing_down(
    start_app: AppFactory, breeze: FakeServer, hooks: FakeServer, all_logs: pytest.LogCaptureFixture
) -> None:
    gate = threading.Event()
    breeze.route("GET", "/v1/balance", Reply(200, {"balance": 7, "topups": []}, gate=gate))
    with silent_server() as silent:
        (app_a, a), (app_b, b) = two_apps(start_app, redis_url=silent.url)
        urls = [f"{hooks.url}/commands/silent/{n}" for n in range(8)]

        # Every command is acknowledged while Breeze has not answered yet: the ack waits on nothing.
        acks = [(a, b)[n % 2].command(url, user_id=f"U{n:04d}") for n, url in enumerate(urls)]
        assert [ack.status_code for ack in acks] == [200] * 8
        assert all(ack.content == b"" for ack in acks)
        breeze.wait_for(1)
        gate.set()

        for url in urls:
            reply = hooks.wait_for(1, path=url.removeprefix(hooks.url))[0].json()
            assert "7 credits" in texts(reply), reply
        assert 1 <= len(breeze_keys(breeze)) <= 2  # Breeze was asked (once per process at most)
        assert silent.accepted >= 1  # the apps did try the hanging "Redis"
        for app in (app_a, app_b):
            answer = health(app)
            assert answer.status_code == 200
            assert answer.json()["redis"] == "unavailable"
        assert sorted(warnings_per_thread(all_logs.records, OUTAGE_LOG).values()) == [1, 1]


# --- 7. REDIS_URL unset -------------------------------------------------------------------------------


def test_without_redis_url_nothing_changes(
    start_app: AppFactory, breeze: FakeServer, hooks: FakeServer
) -> None:
    app, slack = start_app()

    first = texts(command(slack, hooks, f"{hooks.url}/commands/plain/1"))
    second = texts(command(slack, hooks, f"{hooks.url}/commands/plain/2"))

    assert "1,234,567.891 credits" in first
    assert "As of" in second  # the in-process cache still works
    assert len(breeze_keys(breeze)) == 1
    answer = health(app)
    assert answer.status_code == 200
    assert "redis" not in answer.json()
    assert app.app.deps is not None
    assert app.app.deps.shared is None


# --- 8 and 9. `python -m bot check`, and a malformed REDIS_URL ----------------------------------------


def test_check_says_redis_answers(
    redis: RedisServer, tmp_path: Path, breeze: FakeServer, slack_api: FakeServer
) -> None:
    env = {**check_env(breeze, slack_api), "REDIS_URL": redis.url}
    assert run_bot("migrate", env=env, cwd=tmp_path).returncode == 0

    result = run_bot("check", env=env, cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"✓ Redis redis://127.0.0.1:{redis.port}/0: answers; caches are shared" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_check_says_redis_does_not_answer_and_how_to_fix_it(
    tmp_path: Path, breeze: FakeServer, slack_api: FakeServer
) -> None:
    port = closed_port()
    password = "RedisPassw0rdNotShown"
    env = {**check_env(breeze, slack_api), "REDIS_URL": f"redis://:{password}@127.0.0.1:{port}/0"}
    assert run_bot("migrate", env=env, cwd=tmp_path).returncode == 0

    result = run_bot("check", env=env, cwd=tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if "✗ Redis" in line)
    assert f"✗ Redis redis://127.0.0.1:{port}/0: no answer" in lines[at]
    assert lines[at + 1].strip().startswith("fix:")
    assert "REDIS_URL" in lines[at + 1]
    assert result.stdout.count("✗") == 1  # the database, Slack and Breeze are fine
    assert password not in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("subcommand", ["check", "serve"])
def test_a_malformed_redis_url_stops_start_up_naming_it(
    tmp_path: Path, breeze: FakeServer, slack_api: FakeServer, subcommand: str
) -> None:
    env = {
        **check_env(breeze, slack_api),
        "REDIS_URL": "http://user:Hunter2Secret@x",
        "PORT": str(free_port()),
    }

    result = run_bot(subcommand, env=env, cwd=tmp_path)

    assert result.returncode == 2, result.stdout + result.stderr
    # serve says so on stderr; check, under its ✗ Configuration line
    assert "REDIS_URL is invalid: must be a redis:// or rediss:// URL" in result.stdout + result.stderr
    assert "Hunter2Secret" not in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_a_malformed_redis_url_is_refused_in_process(breeze: FakeServer, slack_api: FakeServer) -> None:
    with pytest.raises(ValidationError, match="redis_url"):
        make_settings(breeze, slack_api, redis_url="http://x")
    with pytest.raises(ConfigError, match="REDIS_URL is invalid"):
        load_settings(_env_file=None, slack_signing_secret=SIGNING_SECRET, redis_url="http://x")
    settings = make_settings(breeze, slack_api, redis_url=" rediss://cache.example:6380/1 ")
    assert settings.redis_url is not None
    assert settings.redis_url.get_secret_value() == "rediss://cache.example:6380/1"
    assert settings.redis_url.get_secret_value() in settings.secret_values()  # masked in logs


# --- two real `python -m bot serve` processes ---------------------------------------------------------


def serve_process(env: dict[str, str], cwd: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--strict"],
            env={**env, "PORT": str(port)},
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, f"http://127.0.0.1:{port}"


def wait_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the app exited ({process.returncode}):\n{log.read_text()}")
        try:
            answer = httpx.get(f"{url}/healthz", timeout=2)
            if answer.status_code == 200:
                return dict(answer.json())
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the app did not become healthy:\n{log.read_text()}")


def test_two_real_serve_processes_share_caches_and_limits(
    redis: RedisServer, tmp_path: Path, breeze: FakeServer, slack_api: FakeServer, hooks: FakeServer
) -> None:
    breeze.route("GET", "/v1/balance", by_key(delay=0.5))
    env = base_env(
        HOST="127.0.0.1",
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        BREEZE_API_KEY=API_KEY,
        BREEZE_BASE_URL=breeze.url,
        SLACK_API_URL=slack_api.url + "/api/",
        BREEZE_ENCRYPTION_KEYS=ENCRYPTION_KEY,
        DATABASE_URL=f"sqlite:///{tmp_path / 'shared.db'}",
        REDIS_URL=redis.url,
        BREEZE_CACHE_SECONDS=str(CACHE_SECONDS),
        LOG_LEVEL="INFO",
    )
    migrated = run_bot("migrate", env=env, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    logs = [tmp_path / "serve-1.log", tmp_path / "serve-2.log"]
    processes = [serve_process(env, tmp_path, log) for log in logs]
    clients: list[SlackClient] = []
    try:
        for (process, url), log in zip(processes, logs, strict=True):
            assert wait_healthy(process, url, log)["redis"] == "ok"
        clients = [SlackClient(url, SIGNING_SECRET) for _, url in processes]

        for reply in burst(clients, hooks, "procs", 40):
            assert "5 credits" in texts(reply)
        assert breeze_keys(breeze) == [API_KEY]  # one call for 40 commands over two processes

        one, two = clients
        command(one, hooks, f"{hooks.url}/commands/procs-refresh/1", "refresh", user_id="U0042")
        refused = texts(
            command(two, hooks, f"{hooks.url}/commands/procs-refresh/2", "refresh", user_id="U0042")
        )
        assert re.search(r"you can refresh again in \d+ seconds?", refused), refused
        assert len(breeze_keys(breeze)) == 2  # the refresh in the first process; none for the refused one

        assert_nothing_secret(redis)
    finally:
        for client in clients:
            client.close()
        for process, _ in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, _ in processes:
            try:
                process.wait(40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
    for log in logs:
        output = log.read_text()
        assert "Traceback" not in output, output
        for secret in (API_KEY, BOT_TOKEN, SIGNING_SECRET, ENCRYPTION_KEY):
            assert secret not in output


# --- the shared "who is asking Breeze" claim and a slow store --------------------------------------------------


class SlowPuts:
    """A `Shared` whose writes of a balance take a little while to land (a busy Redis, a far one)."""

    def __init__(self, inner: RedisShared, delay: float) -> None:
        self._inner = inner
        self._delay = delay

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @property
    def available(self) -> bool:
        return self._inner.available

    async def put_balance(self, slot: str, balance: Balance, seconds: float) -> None:
        await asyncio.sleep(self._delay)
        await self._inner.put_balance(slot, balance, seconds)


class CountingReader:
    """A Breeze stand-in: counts calls; each waits until released."""

    def __init__(self) -> None:
        self.calls = 0
        self.called = asyncio.Event()
        self.release = asyncio.Event()

    async def get_balance(self, api_key: SecretStr) -> Balance:
        self.calls += 1
        self.called.set()
        await self.release.wait()
        return Balance(credits=Decimal(5), topups=())


def test_a_process_waiting_for_another_does_not_ask_breeze_when_the_answer_lands_late(
    redis: RedisServer,
) -> None:
    """The answer is stored before the "asking" claim is released: a process waiting on the claim
    never finds neither, even when storing the answer takes a while (here 0.3 s)."""

    async def scenario() -> tuple[int, int]:
        first, second = RedisShared(redis.url), RedisShared(redis.url)
        try:
            reader_a, reader_b = CountingReader(), CountingReader()
            reader_b.release.set()
            cache_a = BalanceCache(reader_a, 60, shared=SlowPuts(first, 0.3), wait_seconds=5)  # type: ignore[arg-type]
            cache_b = BalanceCache(reader_b, 60, shared=second, wait_seconds=5)
            workspace, key = Workspace(None, "TRACE"), SecretStr("brz_live_RaceKey")
            asking_a = asyncio.create_task(cache_a.get(workspace, key, fresh=False))
            await asyncio.wait_for(reader_a.called.wait(), 10)  # A holds the claim, asks Breeze
            asking_b = asyncio.create_task(cache_b.get(workspace, key, fresh=False))
            await asyncio.sleep(0.2)  # B is waiting for A's answer
            reader_a.release.set()
            await asyncio.gather(asking_a, asking_b)
            return reader_a.calls, reader_b.calls
        finally:
            await first.close()
            await second.close()

    assert asyncio.run(scenario()) == (1, 0)


# --- a busy connection pool ---------------------------------------------------------------------------


def test_a_busy_connection_pool_is_not_taken_for_an_outage(
    redis: RedisServer, monkeypatch: pytest.MonkeyPatch, all_logs: pytest.LogCaptureFixture
) -> None:
    # One connection, then a Redis that answers each command in 0.3 s, within the 0.5 s timeout.
    monkeypatch.setattr(bot.adapters.redis_shared, "MAX_CONNECTIONS", 1)
    with delaying_proxy(redis.port, 0.0) as slow:

        async def scenario() -> tuple[list[int | None], bool]:
            shared = RedisShared(slow.url, timeout_seconds=0.5)
            try:
                assert await shared.version("busy") == 0  # the one connection, made and working
                slow.delay = 0.3
                assert await shared.version("busy") == 0  # slow, but within the timeout
                # Four at once on one connection: the last ones wait longer than the pool's timeout.
                answers = await asyncio.gather(*(shared.version(f"busy{n}") for n in range(4)))
                return list(answers), shared.available
            finally:
                await shared.close()

        answers, available = asyncio.run(scenario())

    assert answers[0] == 0  # Redis answered, slowly
    assert available, "a busy pool was taken for Redis being down"
    assert OUTAGE_LOG not in all_logs.text
