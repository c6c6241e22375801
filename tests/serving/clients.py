"""Raw-socket clients for the serving tests: hostile connections held open, and bounded reads.

Everything talks to 127.0.0.1 only; every read has a deadline and a byte cap; every socket a
helper opens is closed by the ``Held`` that owns it.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

MAX_RESPONSE_BYTES = 1 << 20


def connect(port: int, context: ssl.SSLContext | None = None, *, timeout: float = 5.0) -> socket.socket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if context is None:
        return raw
    try:
        return context.wrap_socket(raw, server_hostname="127.0.0.1")
    except BaseException:
        raw.close()
        raise


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Reader:
    """HTTP responses read off one connection in turn (pipelined answers, HEAD and 304 included).

    Bounded: every read has a deadline and the connection's bytes are capped at
    ``MAX_RESPONSE_BYTES``; a chunked or close-delimited answer is read until it ends or the cap.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.received = 0
        self.eof = False

    def _fill(self, deadline: float) -> bool:
        """Read more bytes into the buffer; False at EOF, reset, the cap or the deadline."""
        remaining = deadline - time.monotonic()
        if self.eof or remaining <= 0 or self.received >= MAX_RESPONSE_BYTES:
            return False
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            return False
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.received += len(chunk)
        self.buffer += chunk
        return True

    def next_answer(self, *, timeout: float = 10.0, head: bool = False, final: bool = False) -> Answer | None:
        """The next response, or None when the connection ended (or the deadline passed) without one.

        ``final`` skips interim answers (``100 Continue``).
        """
        deadline = time.monotonic() + timeout
        answer = self._next(deadline, head=head)
        while final and answer is not None and 100 <= answer.status < 200:
            answer = self._next(deadline, head=head)
        return answer

    def _next(self, deadline: float, *, head: bool) -> Answer | None:
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill(deadline):
                return None
        head_bytes, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status = int(head_bytes.split(b" ", 2)[1])
        headers = _headers(head_bytes)
        if head or status in (204, 304) or 100 <= status < 200:
            return Answer(status, headers, b"")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return Answer(status, headers, self._chunked(deadline))
        if "content-length" in headers:
            length = int(headers["content-length"])
            while len(self.buffer) < length:
                if not self._fill(deadline):
                    return None
            body, self.buffer = self.buffer[:length], self.buffer[length:]
            return Answer(status, headers, body)
        while self._fill(deadline):  # delimited by the end of the connection
            pass
        body, self.buffer = self.buffer, b""
        return Answer(status, headers, body)

    def _chunked(self, deadline: float) -> bytes:
        body = b""
        while True:
            while b"\r\n" not in self.buffer:
                if not self._fill(deadline):
                    return body
            size_line, _, self.buffer = self.buffer.partition(b"\r\n")
            size = int(size_line.split(b";", 1)[0], 16)
            while len(self.buffer) < size + 2:
                if not self._fill(deadline):
                    return body + self.buffer
            body += self.buffer[:size]
            self.buffer = self.buffer[size + 2 :]
            if size == 0:
                return body


def read_answer(sock: socket.socket, *, timeout: float = 10.0, head: bool = False) -> Answer | None:
    """The HTTP response on ``sock``, or None when the server closed without one."""
    return Reader(sock).next_answer(timeout=timeout, head=head)


def _headers(head: bytes) -> dict[str, str]:
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers


def closed_by_server(sock: socket.socket, *, timeout: float) -> bool:
    """Whether the server ends the connection (EOF, reset, or an answer then EOF) within ``timeout``."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    received = 0
    while time.monotonic() < deadline and received < MAX_RESPONSE_BYTES:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return False
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            return True
        if not chunk:
            return True
        received += len(chunk)
    return False


def still_open(sock: socket.socket) -> bool:
    """True when the server has neither closed ``sock`` nor written to it."""
    try:
        sock.setblocking(False)
        sock.recv(1)
    except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
        return True
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            sock.setblocking(True)
    return False


class Held:
    """Connections held open against a server, closed on exit."""

    def __init__(self, sockets: list[socket.socket]) -> None:
        self.sockets = sockets

    def __enter__(self) -> Held:
        return self

    def __exit__(self, *exc: object) -> None:
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def __iter__(self) -> Iterator[socket.socket]:
        return iter(self.sockets)

    def __len__(self) -> int:
        return len(self.sockets)

    def open_count(self) -> int:
        return sum(1 for sock in self.sockets if still_open(sock))


def hold(count: int, opener: Callable[[], socket.socket]) -> Held:
    """Open ``count`` connections in parallel; all of them, or fail (closing those opened)."""
    opened: list[socket.socket] = []
    failures: list[BaseException] = []
    with ThreadPoolExecutor(max_workers=16) as pool:
        for future in [pool.submit(opener) for _ in range(count)]:
            try:
                opened.append(future.result(timeout=30))
            except Exception as error:
                failures.append(error)
    if failures:
        Held(opened).__exit__()
        raise AssertionError(f"opened {len(opened)} of {count} connections: {failures[0]!r}")
    return Held(opened)
