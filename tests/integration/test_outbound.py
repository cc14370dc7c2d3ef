"""The outbound HTTP client on both stacks, against real loopback servers: what each failure becomes.

Every server here is a plain `socket` server on 127.0.0.1 with one thread per connection, so a
test can misbehave exactly (drop, half-answer, stall, reset, speak the wrong protocol) and count
the connections it accepted. No mocks: the client under test is `bot.adapters.outbound.client(...)`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import ipaddress
import json
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp.client_reqrep import ConnectionKey
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from bot import errors
from bot.adapters import breeze, outbound
from bot.domain.balances import Balance
from bot.slack import replies
from bot.slack.blocks.balance import Message, wording

STACKS = pytest.mark.parametrize("stack", ["aiohttp", "httpcore"])
HOST = "127.0.0.1"
KEY = SecretStr("brz_test_OutboundKey123")
BALANCE = {"balance": 1234.5, "balance_millicredits": 1234500, "topups": []}
BALANCE_BYTES = json.dumps(BALANCE).encode()
POLL_SECONDS = 0.05
JOIN_SECONDS = 10.0


# --- loopback servers ------------------------------------------------------------------------------


class Peer:
    """One accepted connection: buffered reads that give up when the server stops."""

    def __init__(self, sock: socket.socket, stopping: threading.Event) -> None:
        self.sock = sock
        self._stopping = stopping
        self._buffer = b""
        sock.settimeout(POLL_SECONDS)

    def _recv(self) -> bytes | None:
        """Some bytes, or None when the client closed or the server is stopping."""
        while not self._stopping.is_set():
            try:
                data = self.sock.recv(65536)
            except (TimeoutError, ssl.SSLWantReadError):
                continue
            except OSError:
                return None
            return data or None
        return None

    def request(self) -> tuple[bytes, bytes] | None:
        """The next request's head and body, or None when the client went away."""
        while b"\r\n\r\n" not in self._buffer:
            data = self._recv()
            if data is None:
                return None
            self._buffer += data
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(rest) < length:
            data = self._recv()
            if data is None:
                return None
            rest += data
        self._buffer = rest[length:]
        return head, rest[:length]

    def some_bytes(self) -> bytes | None:
        """Whatever the client sends first (a TLS ClientHello, say)."""
        return self._recv()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def wait_closed(self) -> None:
        """Block until the client closes the connection (or the server stops)."""
        while self._recv() is not None:
            pass

    def reset(self) -> None:
        """Close with a TCP RST instead of a FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


Handler = Callable[[Peer, int], None]


class Loopback:
    """A TCP server on 127.0.0.1: each connection runs `handle(peer, n)` (n counts from 1) in a thread."""

    def __init__(self, handle: Handler, tls: ssl.SSLContext | None = None) -> None:
        self._handle = handle
        self._tls = tls
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((HOST, 0))
        self._listener.listen(64)
        self._listener.settimeout(POLL_SECONDS)
        self.port: int = self._listener.getsockname()[1]
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self.connections = 0
        self.requests = 0
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, name=f"loopback-{self.port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def https_url(self) -> str:
        return f"https://{HOST}:{self.port}"

    def count_request(self) -> None:
        with self._lock:
            self.requests += 1

    def __enter__(self) -> Loopback:
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._acceptor.join(JOIN_SECONDS)
        for thread in self._threads:
            thread.join(JOIN_SECONDS)
        self._listener.close()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                number = self.connections
            thread = threading.Thread(target=self._serve, args=(sock, number), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket, number: int) -> None:
        try:
            if self._tls is not None:
                sock.settimeout(JOIN_SECONDS)
                sock = self._tls.wrap_socket(sock, server_side=True)
            self._handle(Peer(sock, self.stopping), number)
        except (OSError, ssl.SSLError):
            pass  # the client hung up or failed the handshake: that is what some tests are about
        finally:
            sock.close()


def response(
    body: bytes = BALANCE_BYTES,
    *,
    status: str = "200 OK",
    headers: dict[str, str] | None = None,
    chunked: bool = False,
) -> bytes:
    """An HTTP/1.1 response; with `chunked`, the body goes in three chunks."""
    lines = [f"HTTP/1.1 {status}", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        third = max(1, len(body) // 3)
        pieces = [body[i : i + third] for i in range(0, len(body), third)]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"
    else:
        lines.append(f"Content-Length: {len(body)}")
        payload = body
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def serve(handle: Callable[[Peer, int, Loopback], None], tls: ssl.SSLContext | None = None) -> Loopback:
    """A `Loopback` whose handler also gets the server (to count the requests it read)."""
    holder: list[Loopback] = []
    server = Loopback(lambda peer, number: handle(peer, number, holder[0]), tls)
    holder.append(server)
    return server


def keep_answering(make: Callable[[], bytes] = response) -> Callable[[Peer, int, Loopback], None]:
    """Answer every request on the connection (keep-alive) with `make()`."""

    def handle(peer: Peer, number: int, server: Loopback) -> None:
        while peer.request() is not None:
            server.count_request()
            peer.send(make())

    return handle


# --- the client under test --------------------------------------------------------------------------


async def balance_from(
    stack: str,
    base_url: str,
    *,
    deadline: float = 2.0,
    http_timeout: float = 10.0,
    attempts: list[httpx.Request] | None = None,
) -> Balance:
    """One `get_balance` through a fresh `outbound.client(stack)`, closed afterwards."""
    http = outbound.client(stack, http_timeout, "outbound-test/1")  # type: ignore[arg-type]
    if attempts is not None:

        async def seen(request: httpx.Request) -> None:
            attempts.append(request)

        http.event_hooks["request"] = [seen]
    try:
        client = breeze.BreezeClient(http, base_url, timeout_seconds=deadline, backoff_base_seconds=0.01)
        return await client.get_balance(KEY)
    finally:
        await http.aclose()


def failure(stack: str, base_url: str, **kwargs: Any) -> errors.BreezeError:
    """The `BreezeError` a balance check ends with (any other outcome fails the test)."""
    try:
        balance = asyncio.run(balance_from(stack, base_url, **kwargs))
    except errors.BreezeError as exc:
        return exc
    pytest.fail(f"expected a BreezeError, got a balance: {balance!r}")


# --- 1. refused --------------------------------------------------------------------------------------


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port that is bound (so nobody else takes it) but not listening: connects are refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((HOST, 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@STACKS
def test_refused_connection_is_unreachable_refused_and_retried(stack: str, closed_port: int) -> None:
    attempts: list[httpx.Request] = []
    error = failure(stack, f"http://{HOST}:{closed_port}", attempts=attempts)
    assert isinstance(error, errors.BreezeUnreachable)
    assert error.reason == "refused"
    assert error.code == "CONNECTION_FAILED"
    assert isinstance(error.__cause__, httpx.ConnectError)
    assert not isinstance(error.__cause__, httpx.ConnectTimeout)
    # Every attempt went to the wire (the request hook runs once per attempt), within the one deadline.
    assert 2 <= len(attempts) <= breeze.MAX_ATTEMPTS
    assert all(str(request.url).endswith(breeze.BALANCE_PATH) for request in attempts)
    assert "refused" in wording(error).next_step


# --- 2. dropped --------------------------------------------------------------------------------------


def drop_after_request(peer: Peer, number: int, server: Loopback) -> None:
    if peer.request() is not None:
        server.count_request()


def reset_after_request(peer: Peer, number: int, server: Loopback) -> None:
    if peer.request() is not None:
        server.count_request()
        peer.reset()


def half_body(peer: Peer, number: int, server: Loopback) -> None:
    if peer.request() is not None:
        server.count_request()
        peer.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n")
        peer.send(BALANCE_BYTES[:10])


def half_chunked_body(peer: Peer, number: int, server: Loopback) -> None:
    if peer.request() is not None:
        server.count_request()
        peer.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        peer.send(b"%x\r\n%s\r\n" % (20, BALANCE_BYTES[:20]))


def head_only(peer: Peer, number: int, server: Loopback) -> None:
    if peer.request() is not None:
        server.count_request()
        peer.send(b"HTTP/1.1 200 OK\r\nContent-Type: appl")


# aiohttp itself resends an idempotent request once when the connection fails before the answer's
# head arrives (RFC 9112 §9.3.1.1), even on a fresh connection: on the aiohttp stack a Breeze that
# drops connections sees two connections per `BreezeClient` attempt, so up to 2 × MAX_ATTEMPTS.
DROPS = [
    pytest.param(drop_after_request, 2, id="closed-unanswered"),
    pytest.param(reset_after_request, 2, id="reset-unanswered"),
    pytest.param(head_only, 2, id="half-head"),
    pytest.param(half_body, 1, id="half-body"),
    pytest.param(half_chunked_body, 1, id="half-chunked-body"),
]


@STACKS
@pytest.mark.parametrize(("handle", "aiohttp_sends"), DROPS)
def test_dropped_connection_is_unreachable_dropped_and_retried(
    stack: str, handle: Callable[[Peer, int, Loopback], None], aiohttp_sends: int
) -> None:
    attempts: list[httpx.Request] = []
    with serve(handle) as server:
        error = failure(stack, server.url, attempts=attempts)
    assert isinstance(error, errors.BreezeUnreachable), repr(error)
    assert error.reason == "dropped", repr(error.__cause__)
    assert isinstance(error.__cause__, httpx.RemoteProtocolError | httpx.ReadError)
    assert "dropped" in wording(error).next_step
    # Retried, each time on a new connection; the half answer never became a balance.
    assert 2 <= len(attempts) <= breeze.MAX_ATTEMPTS
    per_attempt = aiohttp_sends if stack == "aiohttp" else 1
    assert server.connections == server.requests == len(attempts) * per_attempt


def bad_status_line(peer: Peer, number: int, server: Loopback) -> None:
    if peer.request() is not None:
        server.count_request()
        peer.send(b"HELLO WORLD\r\n\r\n")


def bad_header_line(peer: Peer, number: int, server: Loopback) -> None:
    if peer.request() is not None:
        server.count_request()
        peer.send(b"HTTP/1.1 200 OK\r\nContent Length: 5\r\n\r\nhello")


def two_content_lengths(peer: Peer, number: int, server: Loopback) -> None:
    if peer.request() is not None:
        server.count_request()
        peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")


def bad_chunk_size(peer: Peer, number: int, server: Loopback) -> None:
    if peer.request() is not None:
        server.count_request()
        peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")


MALFORMED = pytest.mark.parametrize(
    "handle",
    [bad_status_line, bad_header_line, two_content_lengths, bad_chunk_size],
    ids=["status-line", "header-line", "two-content-lengths", "chunk-size"],
)


@STACKS
@MALFORMED
def test_malformed_answer_is_a_breeze_error(
    stack: str, handle: Callable[[Peer, int, Loopback], None]
) -> None:
    """Not HTTP at all, or broken framing: on httpcore a RemoteProtocolError, so unreachable/dropped."""
    with serve(handle) as server:
        error = failure(stack, server.url)
    assert isinstance(error, errors.BreezeUnreachable | errors.BadResponse), repr(error)
    assert wording(error).title != wording(RuntimeError()).title


@STACKS
def test_corrupt_gzip_body_is_a_bad_response(stack: str) -> None:
    def corrupt_gzip() -> bytes:
        return response(b"0123456789", headers={"Content-Encoding": "gzip"})

    with serve(keep_answering(corrupt_gzip)) as server:
        error = failure(stack, server.url)
    assert isinstance(error, errors.BadResponse), repr(error)


@STACKS
def test_truncated_gzip_body_never_parses_as_a_balance(stack: str) -> None:
    def truncated_gzip() -> bytes:
        return response(gzip.compress(BALANCE_BYTES)[:-12], headers={"Content-Encoding": "gzip"})

    with serve(keep_answering(truncated_gzip)) as server:
        error = failure(stack, server.url)
    assert isinstance(error, errors.BadResponse), repr(error)


# --- slow connect (not asked for, but the fourth reason) ---------------------------------------------


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A listening port whose accept queue is full, so the kernel drops new SYNs: connects hang."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((HOST, 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        filler.setblocking(False)
        filler.connect_ex((HOST, port))
        fillers.append(filler)
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect((HOST, port))
    except TimeoutError:
        saturated = True
    else:
        saturated = False
    finally:
        probe.close()
    try:
        if not saturated:
            pytest.skip("this kernel does not drop SYNs on a full accept queue")
        yield port
    finally:
        for sock in [*fillers, listener]:
            sock.close()


@STACKS
def test_slow_connect_is_unreachable_slow_connect(
    stack: str, full_backlog: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbound, "CONNECT_SECONDS", 0.5)
    attempts: list[httpx.Request] = []
    error = failure(stack, f"http://{HOST}:{full_backlog}", deadline=5.0, attempts=attempts)
    assert isinstance(error, errors.BreezeUnreachable), repr(error)
    assert error.reason == "slow_connect"
    assert isinstance(error.__cause__, httpx.ConnectTimeout)
    assert len(attempts) >= 2


# --- 3. TLS ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def server_tls(cert_and_key: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*map(str, cert_and_key))
    return context


def plain_http_to_tls(peer: Peer, number: int, server: Loopback) -> None:
    """What an HTTP server does with a ClientHello: answers 400 in plain text and closes."""
    if peer.some_bytes() is not None:
        server.count_request()
        peer.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def assert_tls_failure(error: errors.BreezeError) -> None:
    assert isinstance(error, errors.BreezeUnreachable), repr(error)
    assert error.reason == "tls", repr(error.__cause__)
    assert isinstance(error.__cause__, httpx.ConnectError)
    assert not isinstance(error.__cause__, httpx.TimeoutException)
    assert "TLS" in wording(error).next_step


@STACKS
def test_https_to_a_plain_http_server_is_a_tls_failure(stack: str) -> None:
    with serve(plain_http_to_tls) as server:
        error = failure(stack, server.https_url)
    assert_tls_failure(error)
    assert server.connections >= 1


@STACKS
def test_untrusted_self_signed_certificate_is_a_tls_failure(
    stack: str, self_signed: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with serve(keep_answering(), tls=server_tls(self_signed)) as server:
        error = failure(stack, server.https_url)
    assert_tls_failure(error)
    assert "certificate" in str(error.__cause__).lower()
    assert server.requests == 0  # no request went over the untrusted connection


@STACKS
def test_trusted_certificate_works_so_the_tls_server_itself_is_sound(
    stack: str, self_signed: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control for the test above: the same server, its certificate trusted (httpx reads SSL_CERT_FILE)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(self_signed[0]))
    with serve(keep_answering(), tls=server_tls(self_signed)) as server:
        balance = asyncio.run(balance_from(stack, server.https_url))
    assert balance.credits == Decimal("1234.5")


# --- 4. read timeout ---------------------------------------------------------------------------------


def never_answer(peer: Peer, number: int, server: Loopback) -> None:
    if peer.request() is not None:
        server.count_request()
        peer.wait_closed()


def headers_then_silence(peer: Peer, number: int, server: Loopback) -> None:
    if peer.request() is not None:
        server.count_request()
        peer.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        peer.wait_closed()


@STACKS
@pytest.mark.parametrize("handle", [never_answer, headers_then_silence], ids=["no-answer", "stalled-body"])
def test_silent_server_is_a_timeout_not_unreachable(
    stack: str, handle: Callable[[Peer, int, Loopback], None]
) -> None:
    """Breeze's own deadline (1 s) runs out before the client's read timeout (10 s)."""
    with serve(handle) as server:
        error = failure(stack, server.url, deadline=1.0, http_timeout=10.0)
    assert isinstance(error, errors.BreezeTimeout), repr(error)
    assert not isinstance(error, errors.BreezeUnreachable)
    assert error.code == "TIMEOUT"
    assert server.requests == 1  # a timeout is not retried
    assert wording(error).title == "Breeze took too long to answer."


@STACKS
def test_client_read_timeout_is_a_timeout_not_unreachable(stack: str) -> None:
    """The client's read timeout (0.5 s) runs out first: httpx's ReadTimeout, still a BreezeTimeout."""
    with serve(never_answer) as server:
        error = failure(stack, server.url, deadline=10.0, http_timeout=0.5)
    assert isinstance(error, errors.BreezeTimeout), repr(error)
    assert isinstance(error.__cause__, httpx.ReadTimeout)
    assert server.requests == 1


# --- 5. a normal answer ------------------------------------------------------------------------------


def gzipped() -> bytes:
    return response(gzip.compress(BALANCE_BYTES), headers={"Content-Encoding": "gzip"})


def gzipped_chunked() -> bytes:
    return response(gzip.compress(BALANCE_BYTES), headers={"Content-Encoding": "gzip"}, chunked=True)


ENCODINGS = pytest.mark.parametrize(
    "make",
    [response, lambda: response(chunked=True), gzipped, gzipped_chunked],
    ids=["content-length", "chunked", "gzip", "gzip-chunked"],
)


@STACKS
@ENCODINGS
def test_balance_parses_in_every_transfer_encoding(stack: str, make: Callable[[], bytes]) -> None:
    with serve(keep_answering(make)) as server:
        balance = asyncio.run(balance_from(stack, server.url))
    assert balance.credits == Decimal("1234.5")
    assert server.requests == 1


@STACKS
def test_request_carries_key_user_agent_and_path(stack: str) -> None:
    heads: list[bytes] = []

    def handle(peer: Peer, number: int, server: Loopback) -> None:
        while (request := peer.request()) is not None:
            heads.append(request[0])
            peer.send(response(headers={breeze.KEY_ID_HEADER: "key_42"}))

    with serve(handle) as server:
        balance = asyncio.run(balance_from(stack, server.url + "/"))
    assert balance.key_id == "key_42"
    (head,) = heads
    lines = head.decode().split("\r\n")
    assert lines[0] == f"GET {breeze.BALANCE_PATH} HTTP/1.1"
    fields = {line.split(":", 1)[0].lower(): line.split(":", 1)[1].strip() for line in lines[1:]}
    assert fields["xi-api-key"] == KEY.get_secret_value()
    assert fields["user-agent"] == "outbound-test/1"
    assert fields["accept"] == "application/json"


# --- 6. keep-alive -----------------------------------------------------------------------------------


@STACKS
@ENCODINGS
def test_sequential_requests_reuse_connections(stack: str, make: Callable[[], bytes]) -> None:
    async def twenty(url: str) -> list[Balance]:
        http = outbound.client(stack, 10.0, "outbound-test/1")  # type: ignore[arg-type]
        try:
            client = breeze.BreezeClient(http, url, timeout_seconds=2, backoff_base_seconds=0.01)
            return [await client.get_balance(KEY) for _ in range(20)]
        finally:
            await http.aclose()

    with serve(keep_answering(make)) as server:
        balances = asyncio.run(twenty(server.url))
    assert [b.credits for b in balances] == [Decimal("1234.5")] * 20
    assert server.requests == 20
    assert 1 <= server.connections <= 2


@STACKS
def test_server_closing_an_idle_connection_does_not_fail_the_next_check(stack: str) -> None:
    """The pooled connection the server closed after answering is not the user's problem."""
    closed = threading.Event()

    def answer_once_then_close(peer: Peer, number: int, server: Loopback) -> None:
        if peer.request() is not None:
            server.count_request()
            peer.send(response())  # no `Connection: close`: the client pools the connection
        closed.set()

    async def two(url: str) -> list[Balance]:
        http = outbound.client(stack, 10.0, "outbound-test/1")  # type: ignore[arg-type]
        try:
            client = breeze.BreezeClient(http, url, timeout_seconds=2, backoff_base_seconds=0.01)
            first = await client.get_balance(KEY)
            assert await asyncio.to_thread(closed.wait, JOIN_SECONDS)
            await asyncio.sleep(0.1)  # let the loop see the FIN (no assertion depends on it)
            return [first, await client.get_balance(KEY)]
        finally:
            await http.aclose()

    with serve(answer_once_then_close) as server:
        balances = asyncio.run(two(server.url))
    assert [b.credits for b in balances] == [Decimal("1234.5")] * 2
    assert server.connections >= 2


# --- 7. ReplyPoster's one retry ----------------------------------------------------------------------


@STACKS
@pytest.mark.parametrize("how", ["closed", "reset"])
def test_reply_is_delivered_on_the_retry_after_a_dropped_connection(
    stack: str, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replies, "RETRY_DELAY_SECONDS", 0.01)
    bodies: list[bytes] = []

    def drop_first(peer: Peer, number: int, server: Loopback) -> None:
        while (request := peer.request()) is not None:
            server.count_request()
            bodies.append(request[1])
            if number == 1:
                if how == "reset":
                    peer.reset()
                return
            peer.send(response(b"ok", headers={"Content-Type": "text/plain"}))

    async def post(url: str) -> bool:
        http = outbound.client(stack, 10.0, "outbound-test/1")  # type: ignore[arg-type]
        try:
            poster = replies.ReplyPoster(http, timeout_seconds=5.0)
            return await poster.post(url + "/response-url", Message(text="hello"), "ref-1")
        finally:
            await http.aclose()

    with serve(drop_first) as server:
        delivered = asyncio.run(post(server.url))
    assert delivered is True
    assert server.connections == 2
    assert server.requests == 2
    assert [json.loads(body)["text"] for body in bodies] == ["hello", "hello"]


@STACKS
def test_reply_gives_up_after_one_retry(stack: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replies, "RETRY_DELAY_SECONDS", 0.01)

    async def post(url: str) -> bool:
        http = outbound.client(stack, 10.0, "outbound-test/1")  # type: ignore[arg-type]
        try:
            return await replies.ReplyPoster(http, 5.0).post(url, Message(text="hello"), "ref-2")
        finally:
            await http.aclose()

    with serve(drop_after_request) as server:
        delivered = asyncio.run(post(server.url))
    assert delivered is False
    assert server.requests == 2


@STACKS
def test_reply_to_a_silent_server_is_lost_after_one_retry(
    stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replies, "RETRY_DELAY_SECONDS", 0.01)

    async def post(url: str) -> bool:
        http = outbound.client(stack, 10.0, "outbound-test/1")  # type: ignore[arg-type]
        try:
            return await replies.ReplyPoster(http, 0.5).post(url, Message(text="hello"), "ref-3")
        finally:
            await http.aclose()

    with serve(never_answer) as server:
        delivered = asyncio.run(post(server.url))
    assert delivered is False
    assert server.requests == 2


@STACKS
def test_reply_to_a_malformed_answer_never_raises(stack: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replies, "RETRY_DELAY_SECONDS", 0.01)

    async def post(url: str) -> bool:
        http = outbound.client(stack, 10.0, "outbound-test/1")  # type: ignore[arg-type]
        try:
            return await replies.ReplyPoster(http, 5.0).post(url, Message(text="hello"), "ref-4")
        finally:
            await http.aclose()

    with serve(bad_header_line) as server:
        delivered = asyncio.run(post(server.url))
    assert delivered is False
    assert server.requests == 2  # a protocol error is a passing fault: retried once


# --- 8. translate() itself ---------------------------------------------------------------------------


def connection_key() -> ConnectionKey:
    return ConnectionKey(HOST, 443, True, True, None, None, None, None)


TRANSLATIONS = [
    ("connector-refused", lambda: aiohttp.ClientConnectorError(connection_key(), ConnectionRefusedError(111, "refused")), httpx.ConnectError),
    ("server-disconnected", lambda: aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError),
    ("connection-timeout", lambda: aiohttp.ConnectionTimeoutError(), httpx.ConnectTimeout),
    ("socket-timeout", lambda: aiohttp.SocketTimeoutError(), httpx.ReadTimeout),
    ("server-timeout", lambda: aiohttp.ServerTimeoutError(), httpx.ReadTimeout),
    ("builtin-timeout", lambda: TimeoutError(), httpx.ReadTimeout),
    ("payload", lambda: aiohttp.ClientPayloadError(), httpx.RemoteProtocolError),
    ("client-os", lambda: aiohttp.ClientOSError(), httpx.ReadError),
    ("connection-reset", lambda: aiohttp.ClientConnectionResetError(), httpx.ReadError),
    ("plain-connection-reset", lambda: ConnectionResetError(104, "reset"), httpx.ReadError),
]  # fmt: skip


@pytest.mark.parametrize(
    ("cause", "expected"), [t[1:] for t in TRANSLATIONS], ids=[t[0] for t in TRANSLATIONS]
)
def test_translate_maps_each_aiohttp_error(cause: Callable[[], BaseException], expected: type) -> None:
    original = httpx.ConnectTimeout("x")
    reason = cause()
    original.__cause__ = reason
    translated = outbound.translate(original)
    assert type(translated) is expected
    assert translated.__cause__ is reason
    assert "TLS" not in str(translated)


TLS_CAUSES = [
    ("connector-ssl", lambda: aiohttp.ClientConnectorSSLError(connection_key(), ssl.SSLError(1, "wrong version number"))),
    ("certificate", lambda: aiohttp.ClientConnectorCertificateError(connection_key(), ssl.SSLCertVerificationError(1, "self-signed"))),
    ("connector-with-ssl-os-error", lambda: aiohttp.ClientConnectorError(connection_key(), ssl.SSLError(1, "bad record mac"))),
    ("raw-ssl-error", lambda: ssl.SSLError(1, "handshake failure")),
]  # fmt: skip


@pytest.mark.parametrize("cause", [t[1] for t in TLS_CAUSES], ids=[t[0] for t in TLS_CAUSES])
def test_translate_names_tls_failures(cause: Callable[[], BaseException]) -> None:
    original = httpx.ConnectTimeout("x")
    original.__cause__ = cause()
    translated = outbound.translate(original)
    assert type(translated) is httpx.ConnectError
    assert str(translated).startswith("TLS failed")
    assert breeze._unreachable_reason(translated) == "tls"


def test_translate_keeps_the_request_and_message() -> None:
    request = httpx.Request("GET", f"http://{HOST}/v1/balance")
    original = httpx.ConnectTimeout("Server disconnected", request=request)
    original.__cause__ = aiohttp.ServerDisconnectedError()
    translated = outbound.translate(original)
    assert type(translated) is httpx.RemoteProtocolError
    assert translated.request is request
    assert str(translated) == "Server disconnected"


def test_translate_names_the_cause_when_the_message_is_empty() -> None:
    original = httpx.ReadError("")
    original.__cause__ = aiohttp.ClientPayloadError()
    assert str(outbound.translate(original)) == "ClientPayloadError"


@pytest.mark.parametrize(
    "cause", [None, ValueError("not a transport problem")], ids=["no-cause", "unrelated-cause"]
)
def test_translate_leaves_other_errors_alone(cause: BaseException | None) -> None:
    original = httpx.ConnectTimeout("x")
    original.__cause__ = cause
    assert outbound.translate(original) is original


@pytest.mark.parametrize(
    ("cause", "reason"),
    [
        (
            lambda: aiohttp.ClientConnectorError(connection_key(), ConnectionRefusedError(111, "refused")),
            "refused",
        ),
        (lambda: aiohttp.ServerDisconnectedError(), "dropped"),
        (lambda: aiohttp.ClientPayloadError(), "dropped"),
        (lambda: aiohttp.ClientOSError(104, "reset"), "dropped"),
    ],
    ids=["refused", "disconnected", "payload", "os-error"],
)
def test_translated_errors_give_breeze_the_right_reason(
    cause: Callable[[], BaseException], reason: str
) -> None:
    original = httpx.ConnectTimeout("x")
    original.__cause__ = cause()
    assert breeze._unreachable_reason(outbound.translate(original)) == reason
