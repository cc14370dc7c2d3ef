"""Turning measurements into the markdown report."""

from __future__ import annotations

import contextlib
import math
import os
import platform
from dataclasses import dataclass
from pathlib import Path

from benchmarks.fakes import Counts
from benchmarks.load import Timings, percentile
from benchmarks.servers import Pinning

WORK_FLOOR = "work floor"
ACK_FLOOR = "ack floor"
HTTPX_FLOOR = "httpx floor"
# References get no ratios; every other row gets its ratios to the work floor.
REFERENCES = frozenset({WORK_FLOOR, ACK_FLOOR, HTTPX_FLOOR})


@dataclass
class Row:
    """One target under one load: the client's timings and the server's costs."""

    target: str
    latency_ms: int
    concurrency: int
    timings: Timings
    cpu_ms_per_command: float
    counts: Counts
    rss_mb: float
    # Cores kept busy during the scenario (1.0 = one core): the server, the load generator
    # with the fakes, and every other process on the machine.
    server_cores: float = 0.0
    load_cores: float = 0.0
    other_cores: float = 0.0

    @property
    def slowest_ack(self) -> float:
        return max(self.timings.acks, default=math.nan)

    @property
    def replies(self) -> bool:
        return bool(self.timings.e2e)

    def ack(self, share: float) -> float:
        return percentile(self.timings.acks, share)

    def e2e(self, share: float) -> float:
        return percentile(self.timings.e2e, share)

    @property
    def connections(self) -> int:
        return len(self.counts.breeze_connections) + len(self.counts.reply_connections)

    def progress(self) -> str:
        """One line for the terminal while the run goes on."""
        t = self.timings
        e2e = f"e2e p50 {self.e2e(0.5):7.1f} p99 {self.e2e(0.99):7.1f} ms" if self.replies else "no replies"
        rate = (
            f"{t.replies_per_second:6.0f} replies/s" if self.replies else f"{t.acks_per_second:6.0f} acks/s"
        )
        return (
            f"{self.target:25} Breeze {self.latency_ms:3} ms  c={self.concurrency:<3} n={t.commands:<5} "
            f"ack p50 {self.ack(0.5):6.2f} p99 {self.ack(0.99):6.2f} ms  {e2e}  {rate}  "
            f"CPU {self.cpu_ms_per_command:5.2f} ms/cmd  Breeze calls {self.counts.breeze_total}  "
            f"new conns {len(self.counts.breeze_connections)}+{len(self.counts.reply_connections)}  "
            f"RSS {self.rss_mb:.0f} MB  cores {self.server_cores:.2f}/{self.load_cores:.2f}/{self.other_cores:.2f}  "
            f"failed {t.failures}" + (f" {dict(t.ack_errors)}" if t.ack_errors else "")
        )


def _ms(value: float) -> str:
    if math.isnan(value):
        return "–"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 1000 else f"{value:,.0f}"


def _ratio(ours: float, floor: float) -> str:
    if not floor or math.isnan(ours) or math.isnan(floor):
        return "–"
    return f"{ours / floor:.2f}×"


def table(rows: list[Row]) -> list[str]:
    """The markdown table; app rows carry ratios to the work floor at the same latency and concurrency."""
    floors = {(r.latency_ms, r.concurrency): r for r in rows if r.target == WORK_FLOOR}
    lines = [
        "| target | Breeze | conc. | cmds | ack p50 | ack p99 | e2e p50 | e2e p99 | replies/s | CPU/cmd "
        "| Breeze calls | new conns | RSS MB | failed | ack p99 ÷ floor | CPU ÷ floor | replies/s ÷ floor |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        t = row.timings
        floor = floors.get((row.latency_ms, row.concurrency))
        ratios = ["", "", ""]
        if floor is not None and row.target not in REFERENCES:
            ratios = [
                _ratio(row.ack(0.99), floor.ack(0.99)),
                _ratio(row.cpu_ms_per_command, floor.cpu_ms_per_command),
                _ratio(t.replies_per_second, floor.timings.replies_per_second),
            ]
        rate = f"{t.replies_per_second:,.0f}" if row.replies else "–"
        cells = [
            row.target,
            f"{row.latency_ms} ms",
            str(row.concurrency),
            f"{t.commands:,}",
            _ms(row.ack(0.5)),
            _ms(row.ack(0.99)),
            _ms(row.e2e(0.5)),
            _ms(row.e2e(0.99)),
            rate,
            f"{row.cpu_ms_per_command:.2f}",
            f"{row.counts.breeze_total:,}",
            f"{row.connections:,}",
            f"{row.rss_mb:.0f}",
            f"**{t.failures}**" if t.failures else "0",
            *ratios,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def machine(pinning: Pinning) -> str:
    return (
        f"{cpu_model()}, {os.cpu_count()} cores ({pinning.describe()}), "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )
