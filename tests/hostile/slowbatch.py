"""Slow clients, all at once: each holds its connection and sends slowly (or nothing, or never reads).

The batch starts every :class:`~tests.hostile.cases.SlowCase` of a target at the same time, in
threads, against the session's server; once they hold their connections, a prober sends a healthy
request every ``PROBE_INTERVAL`` until the last of them has finished.  Every loop is bounded: a
slow client gives up ``GIVE_UP`` seconds after it started, and the batch as a whole is waited for
at most ``BATCH_TIMEOUT``.

The clients here are generic over the servers: ``head`` is the request head a case trickles (a
review for the webhook, a GET for the exporter).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from tests.hostile.cases import Observed, SlowCase
from tests.serving import clients as wire

PROBE_INTERVAL = 0.25
GIVE_UP = 45.0  # longer than any deadline of the servers (the request timeout: 30 s)
BATCH_TIMEOUT = 90.0
DRIP_INTERVAL = 0.5


class SlowBatch:
    def __init__(self, target: Any, cases: list[SlowCase]) -> None:
        self.target = target
        self.cases = {case.name: case for case in cases}
        self.futures: dict[str, Future[Observed]] = {}
        self.probes: list[float] = []
        self.probe_failures: list[str] = []
        self._ready = threading.Semaphore(0)
        self._done = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=len(cases) + 1, thread_name_prefix=f"slow-{target.name}")
        self._prober: Future[None] | None = None

    def start(self) -> SlowBatch:
        for name, case in self.cases.items():
            self.futures[name] = self._pool.submit(case.run, self.target, self._ready.release)
        self._prober = self._pool.submit(self._probe_while_held)
        return self

    def _probe_while_held(self) -> None:
        # Wait (bounded) until every slow client holds its connection, then probe until all are done.
        deadline = time.monotonic() + 30
        for _ in self.cases:
            if not self._ready.acquire(timeout=max(0.0, deadline - time.monotonic())):
                break
        stop = time.monotonic() + BATCH_TIMEOUT
        while time.monotonic() < stop and not all(future.done() for future in self.futures.values()):
            try:
                self.probes.append(self.target.probe("while the slow clients held their connections"))
            except (AssertionError, OSError) as error:
                self.probe_failures.append(repr(error))
            time.sleep(PROBE_INTERVAL)

    def result(self, name: str) -> Observed:
        return self.futures[name].result(timeout=BATCH_TIMEOUT)

    def finish(self) -> None:
        if self._prober is not None:
            with contextlib.suppress(Exception):
                self._prober.result(timeout=BATCH_TIMEOUT)
        self._pool.shutdown(wait=True, cancel_futures=True)


# -- the slow clients ------------------------------------------------------------------------------


def _tls(target: Any, sock: socket.socket) -> ssl.SSLSocket:
    wrapped: ssl.SSLSocket = target.context.wrap_socket(sock, server_hostname="127.0.0.1")
    return wrapped


def _open(target: Any, *, tls: bool = True) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", target.port), timeout=10)
    return _tls(target, sock) if tls else sock


def _await(sock: socket.socket, started: float) -> Observed:
    """Wait (bounded) for the server's answer, or for it to close the connection."""
    reader = wire.Reader(sock)
    answer = reader.next_answer(timeout=max(1.0, started + GIVE_UP - time.monotonic()), final=True)
    closed = reader.eof or wire.closed_by_server(sock, timeout=max(1.0, started + GIVE_UP - time.monotonic()))
    return Observed(answer, closed, time.monotonic() - started)


def _drip(
    sock: socket.socket, data: bytes | list[bytes], started: float, *, every: float = DRIP_INTERVAL
) -> Observed:
    """Send ``data`` a piece at a time (a byte, or each item of a list), ``every`` seconds, until the
    server answers or closes."""
    pieces = [data[n : n + 1] for n in range(len(data))] if isinstance(data, bytes) else data
    reader = wire.Reader(sock)
    for piece in pieces:
        if time.monotonic() > started + GIVE_UP:
            break
        try:
            sock.sendall(piece)
        except OSError:
            break
        # Between pieces, look for an answer: the server may refuse before the data is all sent.
        answer = reader.next_answer(timeout=every, final=True)
        if answer is not None or reader.eof:
            closed = reader.eof or wire.closed_by_server(sock, timeout=10)
            return Observed(answer, closed, time.monotonic() - started)
    answer = reader.next_answer(timeout=max(1.0, started + GIVE_UP - time.monotonic()), final=True)
    closed = reader.eof or wire.closed_by_server(sock, timeout=10)
    return Observed(answer, closed, time.monotonic() - started)


SlowRun = Callable[[Any, Callable[[], None]], Observed]


def idle_tcp() -> SlowRun:
    """Connect and never send a ClientHello."""

    def run(target: Any, ready: Callable[[], None]) -> Observed:
        started = time.monotonic()
        with _open(target, tls=False) as sock:
            ready()
            return _await(sock, started)

    return run


def idle_tls() -> SlowRun:
    """Finish the TLS handshake, then send nothing."""

    def run(target: Any, ready: Callable[[], None]) -> Observed:
        started = time.monotonic()
        with _open(target) as sock:
            ready()
            return _await(sock, started)

    return run


def client_hello_prefix() -> bytes:
    """The first bytes of a real ClientHello (made with a memory BIO: nothing is sent)."""
    context = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with contextlib.suppress(ssl.SSLWantReadError):
        client.do_handshake()
    return outgoing.read()


def slow_handshake() -> SlowRun:
    """Trickle a ClientHello a byte every half second."""

    def run(target: Any, ready: Callable[[], None]) -> Observed:
        started = time.monotonic()
        with _open(target, tls=False) as sock:
            ready()
            return _drip(sock, client_hello_prefix(), started)

    return run


def trickle(data: bytes | list[bytes], *, prefix: bytes = b"", every: float = DRIP_INTERVAL) -> SlowRun:
    """Send ``prefix`` at once, then ``data`` a byte (or list item) at a time (a slowloris head or body)."""

    def run(target: Any, ready: Callable[[], None]) -> Observed:
        started = time.monotonic()
        with _open(target) as sock:
            sock.sendall(prefix)
            ready()
            return _drip(sock, data, started, every=every)

    return run


def send_then_wait(data: bytes) -> SlowRun:
    """Send ``data`` at once (an incomplete request), then nothing."""

    def run(target: Any, ready: Callable[[], None]) -> Observed:
        started = time.monotonic()
        with _open(target) as sock:
            sock.sendall(data)
            ready()
            return _await(sock, started)

    return run


def answered_then_idle(request: bytes) -> SlowRun:
    """One request, its answer, then an idle kept-alive connection: the server must close it."""

    def run(target: Any, ready: Callable[[], None]) -> Observed:
        started = time.monotonic()
        with _open(target) as sock:
            sock.sendall(request)
            reader = wire.Reader(sock)
            answer = reader.next_answer(timeout=10)
            ready()
            closed = reader.eof or wire.closed_by_server(sock, timeout=GIVE_UP)
            return Observed(answer, closed, time.monotonic() - started)

    return run


def never_reads(request: bytes, count: int, *, pause: float) -> SlowRun:
    """Pipeline ``count`` requests whose answers add up to megabytes, and read nothing for ``pause`` s.

    The client's receive buffer is small, so the server's writes block: the request timeout must
    free the connection.  Then the client drains what came (bounded), noting how much arrived and
    whether the server had closed the connection.
    """

    def run(target: Any, ready: Callable[[], None]) -> Observed:
        started = time.monotonic()
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.settimeout(10)
        raw.connect(("127.0.0.1", target.port))
        with _tls(target, raw) as sock:
            sender = threading.Thread(target=_send_quietly, args=(sock, request * count), daemon=True)
            sender.start()
            ready()
            received, closed = 0, False
            time.sleep(pause)  # not reading: the server's writes fill the buffers and block
            deadline = started + GIVE_UP
            while time.monotonic() < deadline:
                sock.settimeout(max(0.1, deadline - time.monotonic()))
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    break
                except (OSError, ssl.SSLError):
                    chunk = b""
                if not chunk:
                    closed = True
                    break
                received += len(chunk)
            sender.join(timeout=5)
            return Observed(None, closed, time.monotonic() - started, {"received": received})

    return run


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    with contextlib.suppress(OSError):
        sock.sendall(data)
