"""The app's targets, checked against the figures of the same run (README: The targets).

Ratios are to the work floor at the same Breeze latency and concurrency. The targets are
checked on the default HTTP stack's rows ("app, cache on" and "app, cache off", both bursts and
the soak); the other stacks' rows are checked against the cache-off targets for comparison.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from benchmarks.report import WORK_FLOOR, Row

APP_CACHE_ON = "app, cache on"
APP_CACHE_OFF = "app, cache off"

LOADED = 200  # commands in flight for the ratio targets
LOADED_LATENCY_MS = 300
ACK_P99_RATIO = 2.0  # at most
CPU_RATIO_CACHE_OFF = 1.5  # at most
REPLIES_RATIO_CACHE_OFF = 0.9  # at least
REPLIES_RATIO_CACHE_ON = 1.5  # at least
ACK_LIMIT_MS = 3000.0  # Slack gives up after 3 s
E2E_CONCURRENCY = 50
E2E_OVER_LATENCY_MS = 15.0  # e2e p50 at most Breeze latency + this
BURST_CALLS = 2  # at most
RSS_LIMIT_MB = 150.0  # below

MET, MISSED, UNMEASURED = "✓", "✗", "–"


@dataclass(frozen=True)
class Burst:
    """One burst: a row, or why it was not measured."""

    label: str
    row: Row | None
    skipped: str = ""


@dataclass(frozen=True)
class Soak:
    """RSS of a fresh app after the first `checkpoint` commands and after all `commands`."""

    commands: int
    checkpoint: int
    early_mb: float
    late_mb: float
    grew: bool
    rows: Sequence[Row] = field(default_factory=tuple)


@dataclass(frozen=True)
class Check:
    met: bool | None  # None: not measured
    text: str

    def line(self) -> str:
        mark = UNMEASURED if self.met is None else MET if self.met else MISSED
        return f"- {mark} {self.text}"


def _ms(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:,.1f} ms"


def _times(ratio: float) -> str:
    return "–" if math.isnan(ratio) else f"{ratio:.2f}×"


def _divide(ours: float, floor: float) -> float:
    if not floor or math.isnan(ours) or math.isnan(floor):
        return math.nan
    return ours / floor


def _find(rows: Sequence[Row], target: str, latency_ms: int, concurrency: int) -> Row | None:
    return next(
        (
            r
            for r in rows
            if r.target == target and r.latency_ms == latency_ms and r.concurrency == concurrency
        ),
        None,
    )


def _where(row: Row) -> str:
    return f"{row.target}, Breeze {row.latency_ms} ms, c={row.concurrency}"


class _Checker:
    def __init__(self, rows: Sequence[Row]) -> None:
        self.rows = rows

    def pair(self, target: str, latency_ms: int, concurrency: int) -> tuple[Row, Row] | None:
        ours = _find(self.rows, target, latency_ms, concurrency)
        floor = _find(self.rows, WORK_FLOOR, latency_ms, concurrency)
        return None if ours is None or floor is None else (ours, floor)

    def ack_p99(self, target: str, title: str) -> Check:
        found = self.pair(target, LOADED_LATENCY_MS, LOADED)
        if found is None:
            return Check(None, f"{title}: ack p99 not measured")
        ours, floor = found
        ratio = _divide(ours.ack(0.99), floor.ack(0.99))
        return Check(
            ratio <= ACK_P99_RATIO,
            f"{title}: ack p99 **{_ms(ours.ack(0.99))}**, **{_times(ratio)}** the work floor's "
            f"{_ms(floor.ack(0.99))} (target ≤ {ACK_P99_RATIO:g}×)",
        )

    def cpu(self, target: str, title: str) -> Check:
        found = self.pair(target, LOADED_LATENCY_MS, LOADED)
        if found is None:
            return Check(None, f"{title}: CPU per command not measured")
        ours, floor = found
        ratio = _divide(ours.cpu_ms_per_command, floor.cpu_ms_per_command)
        return Check(
            ratio <= CPU_RATIO_CACHE_OFF,
            f"{title}: CPU **{ours.cpu_ms_per_command:.2f} ms** per command, **{_times(ratio)}** the work "
            f"floor's {floor.cpu_ms_per_command:.2f} ms (target ≤ {CPU_RATIO_CACHE_OFF:g}×)",
        )

    def replies(self, target: str, title: str, at_least: float) -> Check:
        found = self.pair(target, LOADED_LATENCY_MS, LOADED)
        if found is None:
            return Check(None, f"{title}: replies/s not measured")
        ours, floor = found
        rate, floor_rate = ours.timings.replies_per_second, floor.timings.replies_per_second
        ratio = _divide(rate, floor_rate)
        return Check(
            ratio >= at_least,
            f"{title}: **{rate:,.0f} replies/s**, **{_times(ratio)}** the work floor's {floor_rate:,.0f} "
            f"(target ≥ {at_least:g}×)",
        )

    def e2e(self, target: str, title: str, latency_ms: int) -> Check:
        found = self.pair(target, latency_ms, E2E_CONCURRENCY)
        limit = latency_ms + E2E_OVER_LATENCY_MS
        if found is None:
            return Check(None, f"{title}: e2e p50 not measured")
        ours, floor = found
        p50, floor_p50 = ours.e2e(0.5), floor.e2e(0.5)
        return Check(
            p50 <= limit,
            f"{title}: e2e p50 **{_ms(p50)}** (target ≤ {limit:.0f} ms), {_times(_divide(p50, floor_p50))} "
            f"the work floor's {_ms(floor_p50)}",
        )


def _cache_off_checks(checker: _Checker, target: str, latencies: Sequence[int]) -> list[Check]:
    loaded = f"{target}, {LOADED} in flight, Breeze {LOADED_LATENCY_MS} ms"
    return [
        checker.ack_p99(target, loaded),
        checker.cpu(target, loaded),
        checker.replies(target, loaded, REPLIES_RATIO_CACHE_OFF),
        *(
            checker.e2e(target, f"{target}, {E2E_CONCURRENCY} in flight, Breeze {ms} ms", ms)
            for ms in latencies
            if ms > 0
        ),
    ]


def report(
    rows: Sequence[Row],
    bursts: Sequence[Burst],
    soak: Soak | None,
    *,
    compare: Sequence[str] = (),
) -> list[str]:
    """The targets section: ✓ / ✗ per target for the default stack, then the other stacks' cache-off figures."""
    checker = _Checker(rows)
    latencies = sorted({r.latency_ms for r in rows if r.target == APP_CACHE_OFF})
    cache_off = _cache_off_checks(checker, APP_CACHE_OFF, latencies)
    on = f"{APP_CACHE_ON}, {LOADED} in flight, Breeze {LOADED_LATENCY_MS} ms"
    checks = [
        *cache_off[:3],  # ack p99, CPU, replies/s
        checker.ack_p99(APP_CACHE_ON, on),
        checker.replies(APP_CACHE_ON, on, REPLIES_RATIO_CACHE_ON),
    ]

    # Every cell of the default stack: its table rows, the bursts and the soak.
    default = [r for r in rows if r.target in (APP_CACHE_ON, APP_CACHE_OFF)]
    default += [b.row for b in bursts if b.row is not None]
    default += list(soak.rows) if soak is not None else []
    acked = [r for r in default if r.timings.acks]
    floor_acks = [r.slowest_ack for r in rows if r.target == WORK_FLOOR and r.timings.acks]
    if acked:
        slowest = max(acked, key=lambda r: r.slowest_ack)
        floor_slowest = max(floor_acks, default=math.nan)
        checks.append(
            Check(
                slowest.slowest_ack <= ACK_LIMIT_MS,
                f"No ack over {ACK_LIMIT_MS / 1000:g} s: the slowest of the default stack's cells took "
                f"**{_ms(slowest.slowest_ack)}** ({_where(slowest)}); {_times(_divide(slowest.slowest_ack, floor_slowest))} "
                f"the work floor's slowest, {_ms(floor_slowest)}",
            )
        )
    else:
        checks.append(Check(None, f"No ack over {ACK_LIMIT_MS / 1000:g} s: nothing measured"))
    sent = sum(r.timings.commands for r in default)
    failed = [r for r in default if r.timings.failures]
    lost = sum(r.timings.failures for r in failed)
    checks.append(
        Check(
            (not lost) if default else None,
            f"Nothing lost: **{lost} failed** of {sent:,} commands in the default stack's cells"
            + (f" ({'; '.join(f'{_where(r)}: {r.timings.failures}' for r in failed)})" if failed else ""),
        )
    )
    checks += cache_off[3:]  # e2e p50 at 50 in flight
    for burst in bursts:
        if burst.row is None:
            checks.append(Check(None, f"Burst, {burst.label}: not measured ({burst.skipped})"))
            continue
        calls = burst.row.counts.breeze_total
        checks.append(
            Check(
                calls <= BURST_CALLS,
                f"Burst, {burst.label}: **{calls} Breeze call(s)** for {burst.row.timings.commands:,} commands "
                f"(target ≤ {BURST_CALLS})",
            )
        )
    if soak is None:
        checks.append(Check(None, "RSS after the soak: not measured"))
    else:
        checks.append(
            Check(
                soak.late_mb < RSS_LIMIT_MB and not soak.grew,
                f"RSS after {soak.commands:,} commands: **{soak.late_mb:.1f} MB** (target < {RSS_LIMIT_MB:.0f} MB), "
                f"{soak.late_mb - soak.early_mb:+.1f} MB since the first {soak.checkpoint:,}: "
                + ("**it grew**" if soak.grew else "flat"),
            )
        )

    met = sum(1 for c in checks if c.met)
    measured = sum(1 for c in checks if c.met is not None)
    lines = [
        "## Targets",
        "",
        "The default stack (aiohttp), from this run; ratios are to the work floor at the same Breeze "
        "latency and concurrency.",
        "",
        *(c.line() for c in checks),
        "",
        f"**{met} of {measured} met**"
        + (f"; {len(checks) - measured} not measured." if measured < len(checks) else "."),
    ]
    others = [t for t in compare if any(r.target == t for r in rows)]
    if others:
        lines += ["", "The other stacks against the cache-off targets, for comparison:", ""]
        for target in others:
            lines += [c.line() for c in _cache_off_checks(checker, target, latencies)]
    if 0 in latencies:
        pair = checker.pair(APP_CACHE_OFF, 0, E2E_CONCURRENCY)
        if pair is not None:
            lines += [
                "",
                f"Not a target: with Breeze at 0 ms, {E2E_CONCURRENCY} commands in flight keep the server busy, "
                f"so e2e p50 is queueing (about {E2E_CONCURRENCY} ÷ replies/s): the app "
                f"{_ms(pair[0].e2e(0.5))}, the work floor {_ms(pair[1].e2e(0.5))}.",
            ]
    return lines
