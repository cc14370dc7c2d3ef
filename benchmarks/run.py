"""`make bench`: the server as the Procfile runs it, on each HTTP stack, against raw-ASGI floors, on loopback.

This process holds the load generator and the fakes (Breeze with a chosen latency, the Slack
Web API, the `response_url` catcher), pinned away from the core the servers get. For every
target it starts one server, warms it up, then runs each scenario: a closed loop of signed
slash commands at a concurrency, with Breeze answering after a latency. Each scenario uses
workspaces of its own, so a cache starts cold. Then a burst against four processes sharing a
private Redis, and a soak. The report ends with the targets, checked on this run's figures.
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from benchmarks import report, servers, targets
from benchmarks.fakes import Fakes
from benchmarks.load import RAMP_SECONDS_PER_WORKER, closed_loop
from benchmarks.report import ACK_FLOOR, HTTPX_FLOOR, WORK_FLOOR, Row
from benchmarks.servers import CpuSnapshot, Pinning, Server

# Loopback-only credentials; nothing here ever reaches Slack or Breeze.
SIGNING_SECRET = "bench0signing0secret0123456789abcdef"
BOT_TOKEN = "xoxb-0000000000-0000000000000-benchmarkbenchmarkbench"
API_KEY = "brz_live_BenchmarkKey_0000000000"
RESULTS = Path(__file__).resolve().parent / "results.md"
READY_TIMEOUT_SECONDS = 60.0
BURST_TARGET_CALLS = targets.BURST_CALLS
SHARED_PROCESSES = 4  # WEB_CONCURRENCY of the burst over processes sharing Redis
HTTPX2_VERSION = "2.16.2"
APP_HTTPCORE = "app, httpcore, cache off"
APP_HTTPX2 = "app, httpx2, cache off"
# Copied into the scratch directory, which goes first on PYTHONPATH for the httpx2 target only.
SITECUSTOMIZE = Path(__file__).resolve().parent / "httpx2_site" / "sitecustomize.py"
RSS_GROWTH_TOLERANCE = 0.02  # growth under 2 % (or 2 MB) counts as flat
NOISY_CORES = 0.15  # other processes busier than this during a scenario make the figures noisy


@dataclass(frozen=True)
class Plan:
    """How many commands each scenario sends."""

    commands: Mapping[tuple[int, int], int]  # (concurrency, Breeze latency ms) -> commands
    workspaces: int = 20
    warmup: int = 300
    burst: int = 1000
    burst_concurrency: int = 200
    soak: int = 10_000
    soak_checkpoint: int = 2000
    soak_concurrency: int = 200

    @property
    def concurrencies(self) -> list[int]:
        return sorted({c for c, _ in self.commands})

    @property
    def latencies(self) -> list[int]:
        return sorted({ms for _, ms in self.commands})


FULL = Plan(
    commands={(1, 0): 200, (1, 300): 30, (50, 0): 2000, (50, 300): 1500, (200, 0): 2000, (200, 300): 2000}
)
QUICK = Plan(
    commands={(1, 0): 100, (1, 300): 10, (50, 0): 500, (50, 300): 500, (200, 0): 800, (200, 300): 800},
    warmup=200,
    soak=3000,
    soak_checkpoint=1000,
)


@dataclass(frozen=True)
class Target:
    name: str
    command: str
    settings: Mapping[str, str]
    replies: bool = True
    burst: bool = False  # the one-workspace burst after the scenarios


class Bench:
    """One run: the fakes, a client session, a scratch directory, and the rows measured so far."""

    def __init__(self, plan: Plan, pinning: Pinning, fakes: Fakes, session: aiohttp.ClientSession, tmp: Path):
        self.plan = plan
        self.pinning = pinning
        self.fakes = fakes
        self.session = session
        self.tmp = tmp
        self.encryption_key = ""
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.bursts: list[targets.Burst] = []
        self.soaked: targets.Soak | None = None
        self.helpers: list[Server] = []  # run beside a server for the load side (a private Redis)
        self.httpx2_shim: Path | None = None  # the sitecustomize directory, once httpx2 imports
        self._workspace_sets = itertools.count(1)

    def teams(self, count: int) -> list[str]:
        """Workspace ids never used before in this run, so that every cache starts cold."""
        group = next(self._workspace_sets)
        return [f"T{group:03d}W{n:03d}" for n in range(count)]

    def settings(self, cache_seconds: int) -> dict[str, str]:
        return {
            "HOST": "127.0.0.1",
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "BREEZE_API_KEY": API_KEY,
            "BREEZE_BASE_URL": self.fakes.breeze_url,
            "SLACK_API_URL": self.fakes.slack_api_url,
            "DATABASE_URL": f"sqlite:///{self.tmp / 'bench.db'}",
            "BREEZE_ENCRYPTION_KEYS": self.encryption_key,
            "BREEZE_CACHE_SECONDS": str(cache_seconds),
            "LOG_LEVEL": "WARNING",
            "WEB_CONCURRENCY": "1",
        }

    def prepare(self) -> None:
        """A fresh encryption key and database, migrated by the Procfile's `release:` line."""
        done = subprocess.run(
            ["bash", "-c", "python -m bot new-encryption-key"],
            env=servers.shell_env({}),
            cwd=self.tmp,
            capture_output=True,
            text=True,
            check=True,
        )
        self.encryption_key = done.stdout.strip()
        servers.run_release(servers.shell_env(self.settings(10)), self.tmp)
        self.prepare_httpx2()

    def prepare_httpx2(self) -> None:
        """The httpx2 target's sitecustomize; skipped with a note when the app cannot import with it."""
        shim = self.tmp / "httpx2-shim"
        (shim / "records").mkdir(parents=True)
        shutil.copyfile(SITECUSTOMIZE, shim / "sitecustomize.py")
        probe = "import httpx, bot.adapters.outbound; print(httpx.__name__, httpx.__version__)"
        env = servers.shell_env(self.httpx2_settings(shim, {}))
        del env["BENCH_HTTPX2_RECORDS"]  # the probe's exit is not the target's
        done = subprocess.run(
            ["bash", "-c", f"python -c '{probe}'"],
            env=env,
            cwd=self.tmp,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        found = done.stdout.split()
        if done.returncode != 0 or not found or found[0] != "httpx2":
            why = (done.stderr.strip().splitlines() or done.stdout.strip().splitlines() or ["no output"])[-1]
            self.notes.append(
                f"- **{APP_HTTPX2} skipped**: the app does not import with httpx2 standing in for httpx "
                f"(`{why[:200]}`); install it with `.venv/bin/pip install httpx2=={HTTPX2_VERSION}`."
            )
            return
        self.httpx2_shim = shim
        if found[1:] != [HTTPX2_VERSION]:
            self.notes.append(
                f"- {APP_HTTPX2} ran httpx2 {' '.join(found[1:])}, not {HTTPX2_VERSION} as planned."
            )

    def httpx2_settings(self, shim: Path, settings: Mapping[str, str]) -> dict[str, str]:
        return {
            **settings,
            # httpx-aiohttp subclasses httpx's types, so httpx2 replaces plain httpx (httpcore2's pool).
            "HTTP_STACK": "httpcore",
            "PYTHONPATH": os.pathsep.join([str(shim), str(servers.ROOT)]),
            "BENCH_HTTPX2_RECORDS": str(shim / "records"),
        }

    def targets(self) -> list[Target]:
        web = servers.procfile("web")
        found = [
            Target(ACK_FLOOR, servers.uvicorn_command("benchmarks.references:ack_floor"), {}, replies=False),
            Target(WORK_FLOOR, servers.uvicorn_command("benchmarks.references:work_floor"), self.settings(0)),
            Target(
                HTTPX_FLOOR, servers.uvicorn_command("benchmarks.references:httpx_floor"), self.settings(0)
            ),
            Target(targets.APP_CACHE_ON, web, self.settings(10), burst=True),
            Target(targets.APP_CACHE_OFF, web, self.settings(0)),
            Target(APP_HTTPCORE, web, {**self.settings(0), "HTTP_STACK": "httpcore"}),
        ]
        if self.httpx2_shim is not None:
            found.append(Target(APP_HTTPX2, web, self.httpx2_settings(self.httpx2_shim, self.settings(0))))
        return found

    # --- running servers -----------------------------------------------------------------------

    async def ready(self, server: Server) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if server.exited():
                raise SystemExit(
                    f"{server.name} exited while starting:\n" + "\n".join(server.log_lines()[-20:])
                )
            with contextlib.suppress(aiohttp.ClientError):
                async with self.session.get(server.url + "/healthz") as response:
                    if response.status < 500:
                        return
            await asyncio.sleep(0.1)
        raise SystemExit(f"{server.name} did not become ready in {READY_TIMEOUT_SECONDS:.0f} s")

    async def scenario(
        self,
        server: Server,
        *,
        latency_ms: int,
        concurrency: int,
        commands: int,
        teams: Sequence[str],
        replies: bool = True,
        ramp_per_worker: float = RAMP_SECONDS_PER_WORKER,
        label: str | None = None,
    ) -> Row:
        """Run one closed loop against `server`; the row is named `label` (else after the server)."""
        self.fakes.latency = latency_ms / 1000
        self.fakes.reset_counts()
        before = CpuSnapshot.take(server, self.helpers)
        timings = await closed_loop(
            self.session,
            server.url,
            self.fakes,
            SIGNING_SECRET,
            commands=commands,
            concurrency=concurrency,
            teams=teams,
            wait_replies=replies,
            ramp_per_worker=ramp_per_worker,
        )
        await asyncio.sleep(0.2)  # the server logs and tidies up after the last reply
        if server.exited():
            raise SystemExit(f"{server.name} exited:\n" + "\n".join(server.log_lines()[-20:]))
        after = CpuSnapshot.take(server, self.helpers)
        server_cores, load_cores, other_cores = after.shares_since(before)
        return Row(
            target=label or server.name,
            latency_ms=latency_ms,
            concurrency=concurrency,
            timings=timings,
            cpu_ms_per_command=(after.server - before.server) * 1000 / commands,
            counts=self.fakes.reset_counts(),
            rss_mb=server.rss_mb(),
            server_cores=server_cores,
            load_cores=load_cores,
            other_cores=other_cores,
        )

    async def warm_up(self, server: Server, replies: bool) -> None:
        await self.scenario(
            server,
            latency_ms=0,
            concurrency=20,
            commands=self.plan.warmup,
            teams=self.teams(self.plan.workspaces),
            replies=replies,
        )

    # --- the run -------------------------------------------------------------------------------

    async def target(self, target: Target) -> None:
        with servers.running(
            target.name, target.command, servers.shell_env(target.settings), self.tmp, self.pinning
        ) as server:
            await self.ready(server)
            await self.warm_up(server, target.replies)
            for latency in self.plan.latencies if target.replies else [0]:
                for concurrency in self.plan.concurrencies:
                    row = await self.scenario(
                        server,
                        latency_ms=latency,
                        concurrency=concurrency,
                        commands=self.plan.commands[(concurrency, latency)],
                        teams=self.teams(self.plan.workspaces),
                        replies=target.replies,
                    )
                    self.rows.append(row)
                    progress(row.progress())
            if target.burst:
                await self.burst(server, "one process")
            self.note_log(server)
        if target.name == APP_HTTPX2:
            self.note_httpx2()

    async def burst(self, server: Server, label: str) -> None:
        """Many commands from one workspace at once: the app should call Breeze once or twice."""
        before = server.cpu_by_process()
        row = await self.scenario(
            server,
            latency_ms=300,
            concurrency=self.plan.burst_concurrency,
            commands=self.plan.burst,
            teams=self.teams(1),
            ramp_per_worker=0,  # all at once
            label=f"burst, {label}",
        )
        progress(row.progress())
        self.bursts.append(targets.Burst(label, row))
        used = sorted(
            (seconds - before.get(pid, 0.0) for pid, seconds in server.cpu_by_process().items()), reverse=True
        )
        spread = ""
        if len(used) > 1 and sum(used) > 0:
            shares = ", ".join(f"{share / sum(used):.0%}" for share in used)
            spread = f"; CPU by process of the tree (supervisor included): {shares}"
        calls = row.counts.breeze_total
        verdict = "meets" if calls <= BURST_TARGET_CALLS else "**misses**"
        self.notes.append(
            f"- **Burst, {label}**: {self.plan.burst:,} commands from one workspace at concurrency "
            f"{self.plan.burst_concurrency}, Breeze 300 ms, cache on: **{calls} Breeze call(s)** "
            f"({verdict} the target of at most {BURST_TARGET_CALLS}); the first {self.plan.burst_concurrency} "
            f"sent at once, ack p99 {row.ack(0.99):.0f} ms, slowest {row.slowest_ack:.0f} ms; e2e p50 "
            f"{row.e2e(0.5):.0f} ms, p99 {row.e2e(0.99):.0f} ms; CPU {row.cpu_ms_per_command:.2f} ms/cmd; "
            f"{len(row.timings.e2e):,} replies, {row.timings.failures} failed{spread}."
        )

    async def shared_burst(self) -> None:
        """The burst against WEB_CONCURRENCY=4 processes sharing a private Redis: still one or two calls."""
        label = f"{SHARED_PROCESSES} processes sharing Redis"
        command = servers.redis_command()
        if command is None:
            self.bursts.append(targets.Burst(label, None, "no redis-server"))
            self.notes.append(
                f"- **Burst, {label}: skipped**, no `redis-server` on PATH (e.g. `apt-get install redis-server`)."
            )
            return
        with servers.running(
            "redis", command, servers.shell_env({}), self.tmp, self.pinning, helper=True
        ) as redis:
            await self.redis_ready(redis)
            settings = {
                **self.settings(10),
                "WEB_CONCURRENCY": str(SHARED_PROCESSES),
                "REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
            }
            self.fakes.reset_counts()
            name = f"app ×{SHARED_PROCESSES}, Redis"
            web = servers.procfile("web")
            with servers.running(name, web, servers.shell_env(settings), self.tmp, self.pinning) as server:
                await self.ready(server)
                await self.identified(server, SHARED_PROCESSES)
                self.helpers = [redis]
                try:
                    await self.warm_up(server, replies=True)
                    await self.burst(server, label)
                finally:
                    self.helpers = []
                self.note_log(server)

    async def redis_ready(self, redis: Server) -> None:
        """Wait for the private Redis to answer PING."""
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if redis.exited():
                raise SystemExit("redis-server exited while starting:\n" + "\n".join(redis.log_lines()[-20:]))
            with contextlib.suppress(OSError):
                reader, writer = await asyncio.open_connection("127.0.0.1", redis.port)
                try:
                    writer.write(b"PING\r\n")
                    await writer.drain()
                    if await asyncio.wait_for(reader.readline(), 2) == b"+PONG\r\n":
                        return
                finally:
                    writer.close()
            await asyncio.sleep(0.1)
        raise SystemExit(f"redis-server did not answer PING in {READY_TIMEOUT_SECONDS:.0f} s")

    async def identified(self, server: Server, processes: int) -> None:
        """Every worker calls auth.test once at start-up: wait for all of them before the load."""
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while self.fakes.counts.slack_calls["auth.test"] < processes:
            if time.monotonic() > deadline or server.exited():
                self.notes.append(
                    f"- {server.name}: only {self.fakes.counts.slack_calls['auth.test']} of {processes} "
                    "processes had started when the load began."
                )
                return
            await asyncio.sleep(0.1)

    def note_httpx2(self) -> None:
        """Did every process of the httpx2 target really run httpx2, and never the original httpx?"""
        assert self.httpx2_shim is not None
        records = []
        for path in sorted((self.httpx2_shim / "records").glob("*.json")):
            with contextlib.suppress(OSError, ValueError):
                records.append(json.loads(path.read_text()))
        good = [
            r
            for r in records
            if r.get("httpx") == "httpx2" and r.get("httpcore") == "httpcore2" and not r.get("originals")
        ]
        if records and len(good) == len(records):
            versions = ", ".join(sorted({str(r.get("version")) for r in good}))
            self.notes.append(
                f"- {APP_HTTPX2}: its process ran httpx2 {versions} as `httpx` and httpcore2 as `httpcore` "
                "(recorded when it stopped); the original httpx and httpcore were never imported."
            )
        else:
            self.notes.append(
                f"- **{APP_HTTPX2}: could not confirm that it ran httpx2 only** "
                f"({len(records)} exit record(s): {json.dumps(records)[:300]})."
            )

    async def soak(self) -> None:
        """RSS of a fresh app after the first commands and after all of them: does memory grow?"""
        plan = self.plan
        settings = servers.shell_env(self.settings(10))
        with servers.running("soak", servers.procfile("web"), settings, self.tmp, self.pinning) as server:
            await self.ready(server)
            teams = self.teams(plan.workspaces)
            started = server.rss_mb()
            rows = []
            for commands in (plan.soak_checkpoint, plan.soak - plan.soak_checkpoint):
                row = await self.scenario(
                    server,
                    latency_ms=0,
                    concurrency=plan.soak_concurrency,
                    commands=commands,
                    teams=teams,
                    label="soak",
                )
                progress(row.progress())
                rows.append(row)
            self.note_log(server)
        early, late = rows[0].rss_mb, rows[1].rss_mb
        grew = late - early > max(2.0, early * RSS_GROWTH_TOLERANCE)
        self.soaked = targets.Soak(plan.soak, plan.soak_checkpoint, early, late, grew, tuple(rows))
        verdict = "**it grew**" if grew else "flat"
        failed = sum(r.timings.failures for r in rows)
        self.notes.append(
            f"- **RSS after {plan.soak:,} commands** (fresh app, concurrency {plan.soak_concurrency}, "
            f"Breeze 0 ms, cache on, {plan.workspaces} workspaces): **{late:.1f} MB**, against "
            f"{early:.1f} MB after the first {plan.soak_checkpoint:,} ({late - early:+.1f} MB: {verdict}); "
            f"{started:.1f} MB at start; {failed} failed."
        )

    def note_log(self, server: Server) -> None:
        lines = [line for line in server.log_lines() if line.strip()]
        if lines:
            self.notes.append(
                f"- {server.name} logged {len(lines)} line(s) at WARNING or above, first: `{lines[0][:200]}`"
            )

    def closing_notes(self) -> None:
        """What helps read the table: the load generator's ceiling, the run's conditions, failures."""
        acks = [r for r in self.rows if r.target == ACK_FLOOR]
        if acks:
            fastest = max(r.timings.acks_per_second for r in acks)
            self.notes.append(
                f"- The ack floor took up to {fastest:,.0f} commands/s: about the most this load generator "
                "sends from its core, a ceiling for every figure above."
            )
        if self.rows:
            busiest = max(self.rows, key=lambda r: r.load_cores)
            noisiest = max(self.rows, key=lambda r: r.other_cores)
            self.notes.append(
                f"- Conditions: the load generator and fakes kept at most {busiest.load_cores:.0%} of a core "
                f"busy ({busiest.target}, Breeze {busiest.latency_ms} ms, c={busiest.concurrency}); other "
                f"processes on the machine at most {noisiest.other_cores:.0%} of a core "
                f"({noisiest.target}, Breeze {noisiest.latency_ms} ms, c={noisiest.concurrency})."
                + (
                    " **Measured on a busy machine: expect noise.**"
                    if noisiest.other_cores > NOISY_CORES
                    else ""
                )
            )
        wrong_keys = sum(n for r in self.rows for key, n in r.counts.breeze_calls.items() if key != API_KEY)
        if wrong_keys:
            self.notes.append(
                f"- **{wrong_keys} Breeze call(s) came with another API key than the configured one.**"
            )
        slack_calls = sum(sum(r.counts.slack_calls.values()) for r in self.rows)
        if slack_calls:
            self.notes.append(
                f"- The servers called the Slack Web API {slack_calls} time(s) while answering commands."
            )
        for row in self.rows:
            t = row.timings
            if t.failures:
                errors = ", ".join(f"{count} {kind}" for kind, count in t.ack_errors.items())
                self.notes.append(
                    f"- **{row.target}, Breeze {row.latency_ms} ms, c={row.concurrency}**: {t.failed_acks} not "
                    f"acknowledged{f' ({errors})' if errors else ''}, {t.lost_replies} replies lost, "
                    f"{t.wrong_replies} replies without the balance."
                )


def progress(line: str) -> None:
    print(f"  {line}", file=sys.stderr, flush=True)


async def measure(plan: Plan, pinning: Pinning) -> tuple[list[Row], list[str], list[str]]:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    fakes = Fakes(API_KEY)
    await fakes.start()
    # Idle connections are dropped well before uvicorn's 5 s keep-alive timeout, so no command
    # is sent on a connection the server is closing.
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=2)
    try:
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=60)
        ) as session:
            with tempfile.TemporaryDirectory(prefix="breeze-bench-") as tmp:
                bench = Bench(plan, pinning, fakes, session, Path(tmp))
                bench.prepare()
                for target in bench.targets():
                    await bench.target(target)
                await bench.shared_burst()
                await bench.soak()
                bench.closing_notes()
                checked = targets.report(
                    bench.rows, bench.bursts, bench.soaked, compare=(APP_HTTPCORE, APP_HTTPX2)
                )
                return bench.rows, bench.notes, checked
    finally:
        await fakes.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer commands per scenario (about two and a half minutes)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the markdown report")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    pinning = Pinning.for_this_machine()
    os.sched_setaffinity(0, pinning.load_cores)
    started = time.monotonic()
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            rows, notes, checked = runner.run(measure(plan, pinning))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted; servers stopped", file=sys.stderr)
        return 130
    finally:
        servers.stop_all()
    took = time.monotonic() - started
    text = "\n".join(
        [
            "# Benchmark results",
            "",
            f"Measured on {report.machine(pinning)}; took {took:.0f} s{' (--quick)' if args.quick else ''}.",
            "",
            *report.table(rows),
            "",
            *notes,
            "",
            *checked,
            "",
        ]
    )
    print(text)
    args.output.write_text(text)
    return 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop, as the servers use, so the load generator is as fast as it can be."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


if __name__ == "__main__":
    sys.exit(main())
