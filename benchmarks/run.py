"""`make bench`: the real server against two raw-ASGI floors, all on loopback.

One process (this one) holds the load generator and the fakes: Breeze with a chosen
latency, the Slack Web API, and the `response_url` catcher, so that send and arrival times
share one clock. The server under test runs as the Procfile's `web:` line; the floors run
under uvicorn with the same flags. Servers are pinned to core 0 and this process to core 1
when the machine has two or more.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-signing-secret-0123456789abcdef"
API_KEY = "brz_live_BenchmarkKey_0000"
BOT_TOKEN = "xoxb-0000-0000-benchmarktoken"
ENCRYPTION_KEY = "vTG5F6bfB0uC0jQa3mV4p0nJm3yUe4o4bL9dQp0VQ1o="
TICKS = os.sysconf("SC_CLK_TCK")
TWO_CORES = (os.cpu_count() or 1) >= 2


# --- fakes -------------------------------------------------------------------------------------------


@dataclass
class Fakes:
    """Breeze, the Slack Web API and the response_url catcher, in this process."""

    latency: float = 0.0
    breeze_calls: int = 0
    arrivals: dict[str, float] = field(default_factory=dict)
    waiting: dict[str, asyncio.Future[float]] = field(default_factory=dict)

    async def balance(self, request: web.Request) -> web.Response:
        self.breeze_calls += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        body = {
            "balance": 1234.5,
            "topups": [{"amount": 500, "status": "succeeded", "created_at": "2026-11-01T09:30:00Z"}],
        }
        return web.json_response(body, headers={"x-breeze-api-key-id": "key_bench"})

    async def auth_test(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"ok": True, "team_id": "T0000", "team": "Bench", "user_id": "UBOT", "bot_id": "BBOT"}
        )

    async def hook(self, request: web.Request) -> web.Response:
        await request.read()
        now = time.perf_counter()
        name = request.match_info["name"]
        self.arrivals[name] = now
        waiter = self.waiting.pop(name, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(now)
        return web.Response(text="ok")

    async def start(self) -> tuple[web.AppRunner, int]:
        app = web.Application()
        app.router.add_get("/v1/balance", self.balance)
        app.router.add_post("/api/auth.test", self.auth_test)
        app.router.add_post("/hook/{name}", self.hook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=2048).start()
        return runner, port


# --- servers -----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def procfile(kind: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{kind}:"):
            return line.split(":", 1)[1].strip()
    raise SystemExit(f"no {kind}: line in the Procfile")


def pinned(command: list[str], core: int) -> list[str]:
    return ["taskset", "-c", str(core), *command] if TWO_CORES and shutil.which("taskset") else command


@dataclass
class Server:
    """A server process (and its children) on a loopback port."""

    name: str
    process: subprocess.Popen[bytes]
    port: int

    def tree(self) -> list[int]:
        """The process and all its descendants."""
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                    children.setdefault(parent, []).append(int(entry.name))
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def cpu_seconds(self) -> float:
        total = 0
        for pid in self.tree():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / TICKS

    def rss_mb(self) -> float:
        total = 0
        for pid in self.tree():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return total / 1024

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


def start(name: str, command: str, env: dict[str, str], cwd: Path, port: int) -> Server:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    process = subprocess.Popen(
        pinned(["bash", "-c", f"exec {command}"], 0),
        env={**env, "PATH": path, "PORT": str(port)},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return Server(name, process, port)


def uvicorn_command(factory: str) -> str:
    """The floors run with the flags `python -m bot serve` gives uvicorn."""
    return (
        f"python -m uvicorn --factory {factory} --host 127.0.0.1 --port $PORT --http httptools "
        "--loop uvloop --no-access-log --lifespan on --log-level warning"
    )


# --- load --------------------------------------------------------------------------------------------


@dataclass
class Result:
    acks: list[float]
    e2e: list[float]
    seconds: float
    cpu_ms: float
    breeze_calls: int
    rss_mb: float
    errors: int

    @property
    def per_second(self) -> float:
        return len(self.e2e) / self.seconds if self.seconds else 0.0


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def signed(body: str) -> dict[str, str]:
    timestamp = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": timestamp,
        "x-slack-signature": f"v0={digest}",
    }


_sequence = iter(range(10**9))


async def load(
    session: aiohttp.ClientSession,
    server: Server,
    fakes: Fakes,
    hooks_port: int,
    *,
    commands: int,
    concurrency: int,
    workspaces: int,
    wait_replies: bool,
) -> Result:
    """Closed loop: `concurrency` commands in flight until `commands` were sent."""
    url = f"http://127.0.0.1:{server.port}/slack/events"
    acks: list[float] = []
    e2e: list[float] = []
    errors = 0
    queue = iter(range(commands))
    loop = asyncio.get_running_loop()
    last_arrival = 0.0

    async def worker() -> None:
        nonlocal errors, last_arrival
        for n in queue:
            name = f"r{next(_sequence)}"
            body = urlencode(
                {
                    "team_id": f"T{n % workspaces:04d}",
                    "user_id": f"U{n % 97:04d}",
                    "command": "/breeze-balance",
                    "text": "",
                    "response_url": f"http://127.0.0.1:{hooks_port}/hook/{name}",
                    "trigger_id": "1.2.3",
                }
            )
            arrival: asyncio.Future[float] = loop.create_future()
            if wait_replies:
                fakes.waiting[name] = arrival
            sent = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=signed(body)) as response:
                    await response.read()
                    ok = response.status == 200
            except aiohttp.ClientError:
                ok = False
            acked = time.perf_counter()
            if not ok:
                errors += 1
                fakes.waiting.pop(name, None)
                continue
            acks.append((acked - sent) * 1000)
            if not wait_replies:
                continue
            try:
                arrived = await asyncio.wait_for(arrival, 30)
            except TimeoutError:
                errors += 1
                continue
            e2e.append((arrived - sent) * 1000)
            last_arrival = max(last_arrival, arrived)

    calls_before, cpu_before = fakes.breeze_calls, server.cpu_seconds()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    finished = last_arrival if wait_replies else time.perf_counter()
    await asyncio.sleep(0.05)
    return Result(
        acks=acks,
        e2e=e2e,
        seconds=max(finished - started, 1e-9),
        cpu_ms=(server.cpu_seconds() - cpu_before) * 1000 / max(commands, 1),
        breeze_calls=fakes.breeze_calls - calls_before,
        rss_mb=server.rss_mb(),
        errors=errors,
    )


async def wait_healthy(session: aiohttp.ClientSession, server: Server, path: str = "/healthz") -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"{server.name} exited while starting")
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(f"http://127.0.0.1:{server.port}{path}") as response:
                if response.status < 500:
                    return
        await asyncio.sleep(0.1)
    raise SystemExit(f"{server.name} did not start")


# --- the run -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    concurrencies: tuple[int, ...]
    latencies_ms: tuple[int, ...]
    commands: dict[tuple[int, int], int]
    workspaces: int
    burst: int
    soak: int


FULL = Plan(
    concurrencies=(1, 50, 200),
    latencies_ms=(0, 300),
    commands={(1, 0): 300, (1, 300): 30, (50, 0): 2000, (50, 300): 800, (200, 0): 3000, (200, 300): 1500},
    workspaces=20,
    burst=1000,
    soak=10_000,
)
QUICK = Plan(
    concurrencies=(1, 50, 200),
    latencies_ms=(0, 300),
    commands={(1, 0): 100, (1, 300): 10, (50, 0): 500, (50, 300): 400, (200, 0): 800, (200, 300): 800},
    workspaces=20,
    burst=1000,
    soak=2_000,
)


def app_env(breeze_port: int, cache_seconds: float, workdir: Path) -> dict[str, str]:
    return {
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "HOST": "127.0.0.1",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "BREEZE_API_KEY": API_KEY,
        "BREEZE_BASE_URL": f"http://127.0.0.1:{breeze_port}",
        "SLACK_API_URL": f"http://127.0.0.1:{breeze_port}/api/",
        "DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}",
        "BREEZE_ENCRYPTION_KEYS": ENCRYPTION_KEY,
        "BREEZE_CACHE_SECONDS": str(cache_seconds),
        "LOG_LEVEL": "WARNING",
        "WEB_CONCURRENCY": "1",
    }


@contextlib.contextmanager
def running(name: str, command: str, env: dict[str, str], workdir: Path) -> Iterator[Server]:
    server = start(name, command, env, workdir, free_port())
    try:
        yield server
    finally:
        server.stop()


async def measure(plan: Plan) -> list[str]:
    fakes = Fakes()
    runner, port = await fakes.start()
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, force_close=False)
    lines: list[str] = []
    rows: dict[tuple[str, int, int], Result] = {}
    extra: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=60)
        ) as session:
            env = app_env(port, 10, workdir)
            subprocess.run(
                ["bash", "-c", procfile("release")],
                env={**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"},
                cwd=workdir,
                check=True,
                capture_output=True,
            )
            targets = [
                ("app, cache on", procfile("web"), app_env(port, 10, workdir)),
                ("app, cache off", procfile("web"), app_env(port, 0, workdir)),
                (
                    "work floor",
                    uvicorn_command("benchmarks.references:work_floor"),
                    app_env(port, 0, workdir),
                ),
                ("ack floor", uvicorn_command("benchmarks.references:ack_floor"), app_env(port, 0, workdir)),
            ]
            for name, command, target_env in targets:
                target_env["PYTHONPATH"] = str(ROOT)
                with running(name, command, target_env, workdir) as server:
                    await wait_healthy(session, server)
                    wait = name != "ack floor"
                    fakes.latency = 0
                    await load(
                        session,
                        server,
                        fakes,
                        port,
                        commands=200,
                        concurrency=20,
                        workspaces=plan.workspaces,
                        wait_replies=wait,
                    )
                    for latency in plan.latencies_ms:
                        if name == "ack floor" and latency:
                            continue
                        fakes.latency = latency / 1000
                        for concurrency in plan.concurrencies:
                            count = plan.commands[(concurrency, latency)]
                            result = await load(
                                session,
                                server,
                                fakes,
                                port,
                                commands=count,
                                concurrency=concurrency,
                                workspaces=plan.workspaces,
                                wait_replies=wait,
                            )
                            rows[(name, latency, concurrency)] = result
                            print(
                                f"  {name:15} Breeze {latency:3} ms  c={concurrency:3}  {summary(result)}",
                                file=sys.stderr,
                            )
                    if name == "app, cache on":
                        extra += await burst_and_soak(session, server, fakes, port, plan)
    await runner.cleanup()
    lines += table(rows, plan)
    lines += ["", *extra]
    return lines


async def burst_and_soak(
    session: aiohttp.ClientSession, server: Server, fakes: Fakes, port: int, plan: Plan
) -> list[str]:
    fakes.latency = 0.3
    await asyncio.sleep(11)  # let the cache from the runs before expire
    burst = await load(
        session, server, fakes, port, commands=plan.burst, concurrency=200, workspaces=1, wait_replies=True
    )
    fakes.latency = 0
    first = await load(
        session,
        server,
        fakes,
        port,
        commands=2000,
        concurrency=200,
        workspaces=plan.workspaces,
        wait_replies=True,
    )
    rest = await load(
        session,
        server,
        fakes,
        port,
        commands=max(plan.soak - 2000, 0),
        concurrency=200,
        workspaces=plan.workspaces,
        wait_replies=True,
    )
    return [
        f"- Burst: {plan.burst:,} commands from one workspace at concurrency 200, Breeze 300 ms, cache on: "
        f"**{burst.breeze_calls} Breeze call(s)**, all {len(burst.e2e):,} answered, {burst.errors} errors.",
        f"- Memory: server RSS {first.rss_mb:.0f} MB after 2,000 more commands, "
        f"{rest.rss_mb:.0f} MB after {plan.soak:,} ({rest.rss_mb - first.rss_mb:+.1f} MB).",
    ]


def summary(result: Result) -> str:
    e2e = f"e2e p50 {percentile(result.e2e, 0.5):7.1f}" if result.e2e else "e2e      -"
    return (
        f"ack p50 {percentile(result.acks, 0.5):6.2f} p99 {percentile(result.acks, 0.99):6.2f} ms  {e2e} ms  "
        f"{result.per_second:7.0f}/s  cpu {result.cpu_ms:5.2f} ms/cmd  breeze {result.breeze_calls}  "
        f"rss {result.rss_mb:4.0f} MB  errors {result.errors}"
    )


def table(rows: dict[tuple[str, int, int], Result], plan: Plan) -> list[str]:
    header = (
        "| target | Breeze | conc. | ack p50 | ack p99 | e2e p50 | e2e p99 | replies/s | CPU/cmd | Breeze calls | RSS "
        "| ack p99 ÷ floor | CPU ÷ floor | replies/s ÷ floor |"
    )
    lines = [header, "|" + "---|" * 14]
    for (name, latency, concurrency), result in rows.items():
        floor = rows.get(("work floor", latency, concurrency))
        ratios = ["", "", ""]
        if floor is not None and name.startswith("app"):
            ratios = [
                f"{percentile(result.acks, 0.99) / percentile(floor.acks, 0.99):.2f}x",
                f"{result.cpu_ms / floor.cpu_ms:.2f}x" if floor.cpu_ms else "",
                f"{result.per_second / floor.per_second:.2f}x" if floor.per_second else "",
            ]
        e2e = [f"{percentile(result.e2e, q):.1f} ms" if result.e2e else "–" for q in (0.5, 0.99)]
        rate = f"{result.per_second:,.0f}" if result.e2e else "–"
        lines.append(
            f"| {name} | {latency} ms | {concurrency} | {percentile(result.acks, 0.5):.2f} ms | "
            f"{percentile(result.acks, 0.99):.2f} ms | {e2e[0]} | {e2e[1]} | {rate} | {result.cpu_ms:.2f} ms | "
            f"{result.breeze_calls} | {result.rss_mb:.0f} MB | {' | '.join(ratios)} |"
        )
    return lines


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    pinning = "server on core 0, load and fakes on core 1" if TWO_CORES else "one core shared"
    return (
        f"{model}, {os.cpu_count()} cores ({pinning}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer commands per scenario (about 2 minutes)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results.md")
    args = parser.parse_args()
    if TWO_CORES and shutil.which("taskset"):
        os.sched_setaffinity(0, {1})
    plan = QUICK if args.quick else FULL
    started = time.monotonic()
    lines = asyncio.run(measure(plan))
    took = time.monotonic() - started
    report = [
        f"Measured on {machine()}; took {took:.0f} s{' (--quick)' if args.quick else ''}.",
        "",
        *lines,
    ]
    text = "\n".join(report) + "\n"
    print(text)
    args.output.write_text(text)


if __name__ == "__main__":
    main()
