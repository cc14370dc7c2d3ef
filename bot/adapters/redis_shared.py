"""Redis adapter: state every process and dyno shares (`REDIS_URL`): cached balances, who is asking
Breeze right now (and its answer, for the processes waiting on it), refresh limits, the version
of each workspace's key, and each workspace's metering with who reads it next.

No Breeze key or Slack token is ever written here, encrypted or not: a balance slot is named by a
SHA-256 of the key, and a key change only bumps a counter. When Redis is down, slow or refuses,
every call answers "unavailable" within a fraction of a second, the failure is logged once, and a
background task reconnects; the callers carry on with their in-process caches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError, RedisError

from bot.domain.balances import Balance, Topup
from bot.domain.spend import Metering, WeekSpend
from bot.domain.usage import DaySpend, KeyBudget, MeteredRequest, Spender, Split, UsageReport, Window
from bot.errors import MeteringUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

PREFIX = "breeze-balance:"
# Redis is a cache here: a call that takes longer than this is abandoned, the caller goes on without it.
# Generous enough that a busy event loop's own lag is not taken for an outage.
TIMEOUT_SECONDS = 1.0
# Connections to Redis per process; past this a call waits briefly for one instead of failing.
MAX_CONNECTIONS = 256
_POOL_EXHAUSTED = "No connection available"
RECONNECT_SECONDS = 2.0
# A key's version counter is forgotten this long after its last use: far longer than any cache
# entry it could invalidate (a key is cached seconds, a balance an hour at most), so an old cached
# key is never taken for a new one, yet Redis keeps nothing for workspaces long gone.
VERSION_SECONDS = 24 * 3600


def _balance_json(balance: Balance) -> str:
    topups = [
        {
            "topup_id": t.topup_id,
            "amount": None if t.amount is None else str(t.amount),
            "raw_status": t.raw_status,
            "created_at": t.created_at.isoformat() if t.created_at else None,
            "raw_created_at": t.raw_created_at,
        }
        for t in balance.topups
    ]
    data = {
        "credits": str(balance.credits),
        "topups": topups,
        "key_id": balance.key_id,
        "ignored_topups": balance.ignored_topups,
        "fetched_at": time.time(),
    }
    return json.dumps(data, separators=(",", ":"))


def _balance_from(raw: str | bytes) -> tuple[Balance, float]:
    data = json.loads(raw)
    topups = tuple(
        Topup(
            topup_id=t.get("topup_id"),
            amount=None if t.get("amount") is None else Decimal(t["amount"]),
            raw_status=t.get("raw_status"),
            created_at=datetime.fromisoformat(t["created_at"]) if t.get("created_at") else None,
            raw_created_at=t.get("raw_created_at"),
        )
        for t in data.get("topups", [])
    )
    balance = Balance(
        credits=Decimal(data["credits"]),
        topups=topups,
        key_id=data.get("key_id"),
        ignored_topups=int(data.get("ignored_topups", 0)),
    )
    return balance, float(data["fetched_at"])


def _metering_json(metering: Metering) -> str:
    # Dates, times and Decimals as their strings: each is read back by its field's type below.
    return json.dumps(asdict(metering), default=str, separators=(",", ":"))


def _metering_from(raw: str | bytes) -> Metering:
    data = json.loads(raw)
    week, budget = data["week"], data["budget"]
    if week is not None:
        splits = {name: _split_from(week.get(name)) for name in ("by_key", "by_model")}
        today, days = date.fromisoformat(week["today"]), tuple(week["days"])
        week = WeekSpend(**{**week, "today": today, "days": days, **splits})
    if budget is not None:
        amounts = {
            k: None if v is None else Decimal(v) for k, v in budget.items() if k not in ("key_id", "name")
        }
        budget = KeyBudget(budget["key_id"], budget["name"], **amounts)
    return Metering(datetime.fromisoformat(data["read_at"]), week, budget, data["key_week_millicredits"])


def _split_from(data: dict[str, Any] | None) -> Split | None:
    if data is None:
        return None

    def spender(found: dict[str, Any]) -> Spender:
        return Spender(found["label"], found["millicredits"], found["requests"], Decimal(found["share"]))

    other = data["other"]
    top = tuple(spender(found) for found in data["top"])
    return Split(top, None if other is None else spender(other), data["read"], data["total"])


def _usage_json(found: UsageReport | MeteringUnavailable) -> str:
    if isinstance(found, MeteringUnavailable):
        return json.dumps({"unavailable": found.reason})
    return json.dumps(asdict(found), default=str, separators=(",", ":"))


def _usage_from(raw: str | bytes) -> UsageReport | MeteringUnavailable:
    data = json.loads(raw)
    if "unavailable" in data:
        return MeteringUnavailable("Breeze does not meter for this key", str(data["unavailable"]))
    window = data["window"]
    requests = tuple(
        MeteredRequest(**{**r, "created_at": r["created_at"] and datetime.fromisoformat(r["created_at"])})
        for r in data["requests"]
    )
    daily = data["daily"]
    return UsageReport(
        Window(date.fromisoformat(window["start"]), date.fromisoformat(window["end"])),
        data["cost_millicredits"],
        data["request_count"],
        data["characters"],
        data["total"],
        requests,
        None if daily is None else tuple(DaySpend(date.fromisoformat(d), int(m)) for d, m in daily),
    )


class RedisShared:
    """`bot.services.caches.Shared` on Redis (`redis://`, `rediss://`) through redis-py's asyncio client."""

    def __init__(self, url: str, *, timeout_seconds: float = TIMEOUT_SECONDS) -> None:
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=timeout_seconds,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            health_check_interval=30,
        )
        # One quick retry on a fresh connection: a pooled one may have died with an earlier outage.
        self._client: redis.Redis = redis.Redis(
            connection_pool=pool, retry=Retry(NoBackoff(), 1), retry_on_error=[RedisConnectionError]
        )
        self._timeout = timeout_seconds
        self._down = False
        self._reconnecting: asyncio.Task[None] | None = None

    @property
    def available(self) -> bool:
        """False while Redis is known to be down (a background task is reconnecting)."""
        return not self._down

    async def ping(self) -> bool:
        """True when Redis answers now."""
        try:
            async with asyncio.timeout(self._timeout * 4):
                return bool(await self._client.ping())
        except (RedisError, OSError, TimeoutError):
            return False

    async def health(self) -> tuple[str, str | None]:
        """`ok` when this process shares its caches through Redis now; else `unavailable` or
        `reconnecting` (Redis answers, this process not yet using it), and why, without the URL."""
        answers = await self.ping()
        if self._down and answers:
            return "reconnecting", (
                "Redis answers again; this process still uses its own caches until it reconnects "
                f"(it tries every {RECONNECT_SECONDS:g} s)"
            )
        if self._down or not answers:
            return "unavailable", "Redis does not answer; this process uses its own caches until it is back"
        return "ok", None

    async def close(self) -> None:
        """Stop reconnecting and close the connections."""
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnecting
        await self._client.aclose()

    async def get_balance(self, slot: str) -> tuple[Balance, float] | None:
        """A cached balance and when it was fetched (unix time), if another process stored one."""
        return await self._get(slot, _balance_from, "balance")

    async def put_balance(self, slot: str, balance: Balance, seconds: float) -> None:
        """Keep a balance for every process, `seconds` long."""
        await self._put(slot, _balance_json(balance), seconds)

    async def get_metering(self, name: str) -> Metering | None:
        """A workspace's metering another process read, if it is still kept."""
        return await self._get(name, _metering_from, "metering")

    async def put_metering(self, name: str, metering: Metering, seconds: float) -> None:
        """Keep a workspace's metering for every process, `seconds` long."""
        await self._put(name, _metering_json(metering), seconds)

    async def get_usage(self, name: str) -> UsageReport | MeteringUnavailable | None:
        """A usage report (or "unavailable") another process read, if it is still kept."""
        return await self._get(name, _usage_from, "usage report")

    async def put_usage(self, name: str, found: UsageReport | MeteringUnavailable, seconds: float) -> None:
        """Keep a usage report (or that Breeze does not meter for the key) for every process."""
        await self._put(name, _usage_json(found), seconds)

    async def _get(self, name: str, parse: Callable[[str | bytes], T], what: str) -> T | None:
        ok, raw = await self._call(self._client.get(PREFIX + name))
        if not ok or raw is None:
            return None
        try:
            return parse(raw)
        except (ValueError, KeyError, TypeError, ArithmeticError):
            log.warning("ignored an unreadable cached %s in Redis", what)
            return None

    async def _put(self, name: str, value: str, seconds: float) -> None:
        await self._call(self._client.set(PREFIX + name, value, px=max(1, int(seconds * 1000))))

    async def claim(self, name: str, seconds: float, holder: str = "1") -> bool | None:
        """Take `name` for `seconds` as `holder` if nobody holds it: True taken, False held elsewhere,
        None unknown."""
        ok, taken = await self._call(
            self._client.set(PREFIX + name, holder, nx=True, px=max(1, int(seconds * 1000)))
        )
        return bool(taken) if ok else None

    async def holder(self, name: str) -> str | None:
        """Who holds `name` now; None when nobody does (or Redis is unavailable)."""
        ok, raw = await self._call(self._client.get(PREFIX + name))
        if not ok or raw is None:
            return None
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    async def release(self, name: str) -> None:
        """Give `name` back before its time is up."""
        await self._call(self._client.delete(PREFIX + name))

    async def wait_left(self, name: str) -> float | None:
        """Seconds until `name` is free again; None when it is free (or Redis is unavailable)."""
        ok, left = await self._call(self._client.pttl(PREFIX + name))
        if not ok or left is None or int(left) < 0:
            return None
        return int(left) / 1000

    async def version(self, name: str) -> int | None:
        """The counter `name` (0 when never bumped), kept for another day; None when Redis is unavailable."""
        ok, answers = await self._call(self._counter(name, increase=False))
        if not ok or answers is None:
            return None
        return int(answers[0]) if answers[0] is not None else 0

    async def bump(self, name: str) -> None:
        """Increase the counter `name`: every process sees the change on its next read."""
        await self._call(self._counter(name, increase=True))

    async def _counter(self, name: str, *, increase: bool) -> list[Any]:
        """Read or increase a counter and keep it `VERSION_SECONDS` from now, in one round trip."""
        key = PREFIX + name
        async with self._client.pipeline(transaction=True) as pipe:
            if increase:
                pipe.incr(key)
            else:
                pipe.get(key)
            pipe.expire(key, VERSION_SECONDS)
            return list(await pipe.execute())

    async def _call(self, operation: Awaitable[T]) -> tuple[bool, T | None]:
        """(True, the answer), or (False, None) when Redis did not answer."""
        if self._down:
            if asyncio.iscoroutine(operation):
                operation.close()
            return False, None
        try:
            async with asyncio.timeout(self._timeout * 2):
                return True, await operation
        except MaxConnectionsError:
            return False, None  # every connection busy: skip this once, Redis itself is fine
        except RedisConnectionError as exc:
            if _POOL_EXHAUSTED in str(exc):
                return False, None  # the same, as BlockingConnectionPool says it
            self._went_down(exc)
            return False, None
        except (RedisError, OSError, TimeoutError) as exc:
            self._went_down(exc)
            return False, None

    def _went_down(self, exc: BaseException) -> None:
        if self._down:
            return
        self._down = True
        log.warning(
            "Redis is unavailable (%s); each process uses its own caches until it is back", type(exc).__name__
        )
        self._reconnecting = asyncio.create_task(self._reconnect(), name="redis-reconnect")

    async def _reconnect(self) -> None:
        while True:
            await asyncio.sleep(RECONNECT_SECONDS)
            # Connections from before the outage are dead: drop them all, then try a fresh one.
            with contextlib.suppress(RedisError, OSError):
                await self._client.connection_pool.disconnect()
            if await self.ping():
                self._down = False
                log.info("Redis is back: caches are shared again")
                return


def describe(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or 'localhost'}{port}{parts.path or ''}"
