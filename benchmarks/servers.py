"""Servers under test: started from the Procfile or under uvicorn, pinned, measured, always stopped.

A server runs in its own process group, pinned to one core with `taskset` when the machine
has two or more; the load generator keeps the other cores. Its CPU time and memory are read
from `/proc` for the process and all its descendants (uvicorn workers, if any). Helpers that
stand for the world around the server (a private `redis-server`) run the same way, pinned to
the load generator's cores instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
PR_SET_PDEATHSIG = 1
# The app waits up to 25 s for replies in flight when told to stop.
STOP_GRACE_SECONDS = 30.0

_live: set[Server] = set()
_started = itertools.count(1)
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


@dataclass(frozen=True)
class Pinning:
    """Which core the servers get and which ones the load generator and fakes keep."""

    server_core: int | None
    load_cores: frozenset[int]

    @classmethod
    def for_this_machine(cls) -> Pinning:
        cores = sorted(os.sched_getaffinity(0))
        if len(cores) >= 2 and shutil.which("taskset"):
            return cls(cores[0], frozenset(cores[1:]))
        return cls(None, frozenset(cores))

    def describe(self) -> str:
        if self.server_core is None:
            return "server and load share the cores"
        load = ",".join(str(core) for core in sorted(self.load_cores))
        return f"server on core {self.server_core}, load generator and fakes on core(s) {load}"


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds so far: the whole machine (busy), this process, and one server tree."""

    wall: float
    machine: float
    own: float
    server: float

    @classmethod
    def take(cls, server: Server, helpers: Iterable[Server] = ()) -> CpuSnapshot:
        """Now; the helpers' CPU (a private Redis) counts with this process's, as the load side."""
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[:7])
        times = os.times()
        return cls(
            wall=time.monotonic(),
            machine=(user + nice + system + irq + softirq) / TICKS_PER_SECOND,
            own=times.user + times.system + sum(helper.cpu_seconds() for helper in helpers),
            server=server.cpu_seconds(),
        )

    def shares_since(self, before: CpuSnapshot) -> tuple[float, float, float]:
        """Server, this process (with helpers) and everything else, each in cores busy (1.0 = one core)."""
        wall = max(self.wall - before.wall, 1e-9)
        server = self.server - before.server
        own = self.own - before.own
        other = max(self.machine - before.machine - server - own, 0.0)
        return server / wall, own / wall, other / wall


def procfile(kind: str) -> str:
    """The command of a `Procfile` line (`web`, `release`)."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        name, _, command = line.partition(":")
        if name.strip() == kind and command.strip():
            return command.strip()
    raise SystemExit(f"the Procfile has no {kind}: line")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def shell_env(settings: Mapping[str, str]) -> dict[str, str]:
    """A clean environment: this virtualenv's `python` first on PATH, and only the given settings."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)])
    return {
        "PATH": path,
        "HOME": os.environ.get("HOME", "/"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        # The checkout's code, whether or not it is installed in the virtualenv.
        "PYTHONPATH": str(ROOT),
        **settings,
    }


def run_release(env: Mapping[str, str], cwd: Path) -> None:
    """Run the Procfile's `release:` line, as a platform does before starting `web:`."""
    command = procfile("release")
    done = subprocess.run(
        ["bash", "-c", command], env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"`{command}` failed ({done.returncode}):\n{done.stdout}{done.stderr}")


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the benchmark dies without cleaning up (even on SIGKILL)."""
    if _libc is not None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass(eq=False)
class Server:
    """A server process group on a loopback port; its output goes to `log`."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def exited(self) -> bool:
        return self.process.poll() is not None

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
        """User + system CPU time of the whole tree so far."""
        return sum(self.cpu_by_process().values())

    def cpu_by_process(self) -> dict[int, float]:
        """User + system CPU seconds so far of each process in the tree, by pid."""
        found: dict[int, float] = {}
        for pid in self.tree():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                found[pid] = (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND  # utime, stime
        return found

    def rss_mb(self) -> float:
        """Resident memory of the whole tree, in MiB."""
        kib = 0
        for pid in self.tree():
            with contextlib.suppress(OSError, IndexError, ValueError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        kib += int(line.split()[1])
        return kib / 1024

    def log_lines(self) -> list[str]:
        """What the server wrote to stdout and stderr so far."""
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace").splitlines()
        return []

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """SIGTERM the process group, SIGKILL it if it has not exited within `grace` seconds."""
        _live.discard(self)
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # anything the group left behind
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)


def start(
    name: str, command: str, env: Mapping[str, str], cwd: Path, pinning: Pinning, *, helper: bool = False
) -> Server:
    """Run `command` with bash on a free port (`$PORT`), pinned to the server core (a helper: the load's)."""
    port = free_port()
    argv = ["bash", "-c", f"exec {command}"]
    if pinning.server_core is not None:
        cores = pinning.load_cores if helper else {pinning.server_core}
        argv = ["taskset", "-c", ",".join(str(core) for core in sorted(cores)), *argv]
    slug = "".join(ch if ch.isalnum() else "-" for ch in name)
    log = cwd / f"{next(_started):02d}-{slug}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            argv,
            env={**env, "PORT": str(port)},
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # one prctl call, safe after fork
        )
    server = Server(name, process, port, log)
    _live.add(server)
    return server


@contextlib.contextmanager
def running(
    name: str, command: str, env: Mapping[str, str], cwd: Path, pinning: Pinning, *, helper: bool = False
) -> Iterator[Server]:
    """A started server, stopped on the way out whatever happens (at once after an error)."""
    server = start(name, command, env, cwd, pinning, helper=helper)
    try:
        yield server
    except BaseException:
        server.stop(grace=5.0)
        raise
    server.stop()


def stop_all(grace: float = 5.0) -> None:
    """Stop every server still running (after an error or an interruption)."""
    for server in list(_live):
        server.stop(grace)


def uvicorn_command(factory: str) -> str:
    """How the floors run: uvicorn with the options `python -m bot serve` gives it."""
    return (
        f"python -m uvicorn --factory {factory} --host 127.0.0.1 --port $PORT --http httptools "
        "--loop uvloop --lifespan on --no-access-log --no-server-header --log-level warning"
    )


def redis_command() -> str | None:
    """A private, memory-only `redis-server` on `$PORT` and loopback; None if it is not installed."""
    executable = shutil.which("redis-server") or next(
        (path for path in ("/usr/bin/redis-server", "/usr/local/bin/redis-server") if Path(path).exists()),
        None,
    )
    if executable is None:
        return None
    return f"{executable} --port $PORT --bind 127.0.0.1 --save '' --appendonly no"
