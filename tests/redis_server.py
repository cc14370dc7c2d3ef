"""A private `redis-server` on a loopback port for the tests, that can be stopped and started again
on the same port, and that records every command it receives (MONITOR); plus a TCP server that
accepts connections and never answers, to stand in for a Redis that hangs."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import redis

SKIP_REASON = (
    "Redis tests skipped: no redis-server (apt-get install redis-server, or put redis-server on PATH); "
    "they start a private one on a free 127.0.0.1 port"
)
START_SECONDS = 15.0


def find_redis_server() -> str | None:
    """The redis-server executable, if installed."""
    found = shutil.which("redis-server")
    if found is None and Path("/usr/bin/redis-server").exists():
        found = "/usr/bin/redis-server"
    return found


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port() -> int:
    """A loopback port that refuses connections (nothing listens on it)."""
    return free_port()


class RedisServer:
    """`redis-server --port P --bind 127.0.0.1 --save "" --appendonly no`, owned by the tests."""

    def __init__(self, executable: str, workdir: Path) -> None:
        self.executable = executable
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._log = workdir / "redis.log"
        self._monitor_lines: list[str] = []
        self._monitor_lock = threading.Lock()
        self._monitor_socket: socket.socket | None = None
        self._monitor_thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """`redis://127.0.0.1:P/0`."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self.process is not None and self.process.poll() is None

    def start(self) -> RedisServer:
        """Start it (on the same port as before, if it ran before) and wait until it answers PING."""
        if self.running:
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self._log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    self.executable,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.workdir),
                    "--daemonize",
                    "no",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        deadline = time.monotonic() + START_SECONDS
        while not self._answers_ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}:\n{self.log_text()}")
            time.sleep(0.05)
        self._start_monitor()
        return self

    def stop(self) -> None:
        """Stop it (SIGTERM, as a platform restarting Redis would); its data is gone (no persistence)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        self._stop_monitor()

    def log_text(self) -> str:
        """What redis-server printed."""
        return self._log.read_text(errors="replace") if self._log.exists() else ""

    def client(self) -> redis.Redis:
        """A synchronous client, for the tests to look inside."""
        return redis.Redis(host="127.0.0.1", port=self.port, db=0, socket_timeout=5)

    def flush(self) -> None:
        """Empty every database."""
        with self.client() as client:
            client.flushall()

    def contents(self) -> dict[str, str]:
        """Every key (SCAN) and its value, read with the command its type needs, as text."""
        found: dict[str, str] = {}
        with self.client() as client:
            for raw_key in client.scan_iter(count=1000):
                key = raw_key.decode(errors="replace")
                kind = client.type(raw_key).decode()
                if kind == "string":
                    value: object = client.get(raw_key)
                elif kind == "hash":
                    value = client.hgetall(raw_key)
                elif kind == "list":
                    value = client.lrange(raw_key, 0, -1)
                elif kind == "set":
                    value = client.smembers(raw_key)
                elif kind == "zset":
                    value = client.zrange(raw_key, 0, -1, withscores=True)
                else:
                    value = client.dump(raw_key)
                found[key] = repr(value)
        return found

    def commands_seen(self) -> list[str]:
        """Every command any client sent since the server (re)started, as MONITOR printed them.

        A marker is sent first and waited for, so everything sent before this call is included.
        """
        if not self.running:
            with self._monitor_lock:
                return list(self._monitor_lines)
        marker = f"monitor-marker-{uuid.uuid4().hex}"
        with self.client() as client:
            client.echo(marker)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with self._monitor_lock:
                if any(marker in line for line in self._monitor_lines):
                    return [line for line in self._monitor_lines if "monitor-marker-" not in line]
            time.sleep(0.02)
        raise AssertionError("MONITOR did not show the marker command")

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _start_monitor(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.sendall(b"MONITOR\r\n")
        reader = sock.makefile("rb")
        first = reader.readline()
        if not first.startswith(b"+OK"):
            sock.close()
            raise RuntimeError(f"MONITOR refused: {first!r}")
        sock.settimeout(None)
        self._monitor_socket = sock

        def read() -> None:
            try:
                for line in reader:
                    with self._monitor_lock:
                        self._monitor_lines.append(line.decode(errors="replace").rstrip("\r\n"))
            except (OSError, ValueError):
                pass

        self._monitor_thread = threading.Thread(target=read, name="redis-monitor", daemon=True)
        self._monitor_thread.start()

    def _stop_monitor(self) -> None:
        sock, self._monitor_socket = self._monitor_socket, None
        if sock is not None:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self._monitor_thread is not None:
            self._monitor_thread.join(5)
            self._monitor_thread = None


class SilentServer:
    """Accepts TCP connections on loopback and never reads or answers: a Redis that hangs."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._held: list[socket.socket] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-redis", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        """Where it listens."""
        return int(self._listener.getsockname()[1])

    @property
    def url(self) -> str:
        """`redis://127.0.0.1:P/0`."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def accepted(self) -> int:
        """How many connections it took (and left hanging)."""
        return len(self._held)

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(conn)

    def close(self) -> None:
        """Stop accepting and drop every held connection."""
        self._stopping.set()
        self._thread.join(5)
        self._listener.close()
        for conn in self._held:
            conn.close()


@contextmanager
def silent_server() -> Iterator[SilentServer]:
    """A `SilentServer`, closed afterwards."""
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()


class DelayingProxy:
    """A loopback TCP proxy to a real Redis that holds every answer `delay` seconds: a slow Redis.

    `delay` may be changed while it runs; it applies to the next answers.
    """

    def __init__(self, target_port: int, delay: float) -> None:
        self.target_port = target_port
        self.delay = delay
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._listener.settimeout(0.2)
        self._stopping = threading.Event()
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="slow-redis", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """`redis://127.0.0.1:P/0`."""
        return f"redis://127.0.0.1:{self._listener.getsockname()[1]}/0"

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            upstream.settimeout(None)
            client.settimeout(None)
            self._sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, slow: bool) -> None:
        try:
            while data := source.recv(65536):
                if slow and self.delay:
                    time.sleep(self.delay)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Stop accepting and close every connection."""
        self._stopping.set()
        self._thread.join(5)
        self._listener.close()
        for sock in self._sockets:
            with suppress(OSError):
                sock.close()


@contextmanager
def delaying_proxy(target_port: int, delay: float) -> Iterator[DelayingProxy]:
    """A `DelayingProxy`, closed afterwards."""
    proxy = DelayingProxy(target_port, delay)
    try:
        yield proxy
    finally:
        proxy.close()
