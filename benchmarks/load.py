"""The load generator: signed slash commands, closed loop, timed from send to ack and to reply."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

import aiohttp

from benchmarks.fakes import Fakes

EVENTS_PATH = "/slack/events"
REPLY_TIMEOUT_SECONDS = 30.0
# Workers start this far apart, so the first commands are not one synchronized herd (the
# burst scenario measures a herd on purpose).
RAMP_SECONDS_PER_WORKER = 0.002
_names = itertools.count()


@dataclass
class Timings:
    """What one closed-loop run saw from the client side; times in milliseconds."""

    commands: int
    acks: list[float] = field(default_factory=list)
    e2e: list[float] = field(default_factory=list)
    failed_acks: int = 0  # not a 200, or no answer at all
    lost_replies: int = 0  # acknowledged, but no reply within REPLY_TIMEOUT_SECONDS
    wrong_replies: int = 0  # a reply arrived, but it does not show the balance
    first_send: float = 0.0
    last_reply: float = 0.0
    last_ack: float = 0.0
    ack_errors: Counter[str] = field(default_factory=Counter)  # what went wrong, by HTTP status or exception

    @property
    def failures(self) -> int:
        return self.failed_acks + self.lost_replies + self.wrong_replies

    @property
    def replies_per_second(self) -> float:
        """Replies ÷ (last reply − first send)."""
        span = self.last_reply - self.first_send
        return len(self.e2e) / span if self.e2e and span > 0 else 0.0

    @property
    def acks_per_second(self) -> float:
        span = self.last_ack - self.first_send
        return len(self.acks) / span if self.acks and span > 0 else 0.0


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (`share` in 0..1); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def sign(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack sends with a signed request."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": stamp,
        "x-slack-signature": f"v0={digest}",
    }


def slash_command(team_id: str, user: int, response_url: str) -> str:
    """A `/breeze-balance` payload as Slack form-encodes it."""
    return urlencode(
        {
            "token": "bench-verification-token",
            "team_id": team_id,
            "team_domain": f"bench-{team_id.lower()}",
            "channel_id": "C0BENCH01",
            "channel_name": "general",
            "user_id": f"U0BENCH{user:03d}",
            "user_name": f"bench-user-{user}",
            "command": "/breeze-balance",
            "text": "",
            "api_app_id": "A0BENCHAPP",
            "response_url": response_url,
            "trigger_id": f"1000.{user}.bench",
        }
    )


async def closed_loop(
    session: aiohttp.ClientSession,
    server_url: str,
    fakes: Fakes,
    secret: str,
    *,
    commands: int,
    concurrency: int,
    teams: Sequence[str],
    wait_replies: bool = True,
    ramp_per_worker: float = RAMP_SECONDS_PER_WORKER,
) -> Timings:
    """Send `commands` commands with `concurrency` in flight; command n comes from `teams[n % len]`.

    A command is in flight from its send until its reply arrives (or, with `wait_replies`
    off, until its ack), and then its worker sends the next one. Workers start
    `ramp_per_worker` seconds apart.
    """
    url = server_url + EVENTS_PATH
    timings = Timings(commands)
    numbers = iter(range(commands))

    async def worker(delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        for n in numbers:
            name = f"c{next(_names)}"
            body = slash_command(teams[n % len(teams)], n % 97, f"{fakes.hooks_url}/{name}")
            reply = fakes.expect(name) if wait_replies else None
            sent = time.perf_counter()
            problem = ""
            try:
                async with session.post(url, data=body, headers=sign(secret, body)) as response:
                    await response.read()
                    if response.status != 200:
                        problem = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                problem = type(exc).__name__
            acked = time.perf_counter()
            timings.last_ack = max(timings.last_ack, acked)
            if problem:
                timings.failed_acks += 1
                timings.ack_errors[problem] += 1
                fakes.forget(name)
                continue
            timings.acks.append((acked - sent) * 1000)
            if reply is None:
                continue
            try:
                arrived = await asyncio.wait_for(reply, REPLY_TIMEOUT_SECONDS)
            except TimeoutError:
                timings.lost_replies += 1
                fakes.forget(name)
                continue
            if not arrived.is_balance:
                timings.wrong_replies += 1
            timings.e2e.append((arrived.arrived - sent) * 1000)
            timings.last_reply = max(timings.last_reply, arrived.arrived)

    timings.first_send = time.perf_counter()
    await asyncio.gather(*(worker(i * ramp_per_worker) for i in range(concurrency)))
    return timings
