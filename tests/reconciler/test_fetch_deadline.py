"""``reconciler.fetch``: the total deadline holds against a remote that drips its answer.

The attack run (issue 14) held one ``--once`` for 121 s with a remote that sent its status line and
headers at 2 bytes/s, although fetches promise a 10 s total deadline: ``http.client`` reads them with
a timeout per ``recv``.  Here a real TLS server on loopback drips, and the fetch must give up at
its deadline with a message that says so.  Timings are not asserted tightly: only that the fetch
ends well before the drip would (under 3x the deadline).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

import pytest
import trustme

from federation import conditions
from reconciler.fetch import Fetcher, FetchError, Limits, TLSSettings

DEADLINE = 2.0
HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    + b"".join(b"X-Padding-%d: %s\r\n" % (n, b"x" * 20) for n in range(10))
    + b"Content-Length: 2\r\n\r\n"
)


@dataclass
class DripServer:
    """A TLS server on 127.0.0.1 answering ``head + body``: ``drip_from`` bytes at once, then ``rate`` a second.

    One connection at a time, every wait bounded, stopped (and joined) by the context manager.
    """

    ca: trustme.CA
    head: bytes
    body: bytes
    drip_from: int  # bytes sent at once before the drip starts
    rate: int = 2
    stop: threading.Event = field(default_factory=threading.Event)
    connections: int = 0

    def __post_init__(self) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ca.issue_cert("127.0.0.1").configure_cert(self.context)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            with contextlib.suppress(OSError), client:
                self._answer(client)

    def _answer(self, client: socket.socket) -> None:
        client.settimeout(5)
        with self.context.wrap_socket(client, server_side=True) as tls:
            request = b""
            while b"\r\n\r\n" not in request and len(request) < 65536:
                chunk = tls.recv(4096)
                if not chunk:
                    return
                request += chunk
            answer = self.head + self.body
            tls.sendall(answer[: self.drip_from])
            for start in range(self.drip_from, len(answer), self.rate):
                if self.stop.wait(1.0):
                    return
                tls.sendall(answer[start : start + self.rate])  # raises once the client has gone

    def __enter__(self) -> DripServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.listener.close()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/metadata/public/public.json"

    @property
    def tls(self) -> TLSSettings:
        return TLSSettings(ca_pem=self.ca.cert_pem.bytes().decode())


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def fetch_failure(server: DripServer, limits: Limits) -> tuple[FetchError, float]:
    started = time.monotonic()
    with pytest.raises(FetchError) as raised:
        Fetcher(limits).get(server.url, tls=server.tls)
    return raised.value, time.monotonic() - started


LONG_HEAD = HEAD.replace(b"Content-Length: 2", b"Content-Length: 200")


@pytest.mark.parametrize(
    ("head", "body", "drip_from"),
    [
        pytest.param(HEAD, b"{}", 0, id="status line and headers at 2 bytes per second"),
        pytest.param(HEAD, b"{}", len(b"HTTP/1.1 200 OK\r\n"), id="headers at 2 bytes per second"),
        pytest.param(LONG_HEAD, b"{}" + b" " * 198, len(LONG_HEAD), id="body at 2 bytes per second"),
    ],
)
def test_a_dripping_remote_is_given_up_at_the_total_deadline(
    ca: trustme.CA, head: bytes, body: bytes, drip_from: int
) -> None:
    with DripServer(ca, head, body, drip_from) as server:
        error, elapsed = fetch_failure(server, Limits(connect_timeout=DEADLINE, total_timeout=DEADLINE))

    assert error.reason == conditions.FETCH_FAILED
    assert error.message == (
        f"GET {server.url}: timed out: the remote did not answer within 2s (the total deadline of a fetch)"
    )
    assert isinstance(error.__cause__, TimeoutError)  # what check's diagnosis looks for
    # The drip alone would take over a minute; the deadline ends it (with slack for a loaded machine).
    assert elapsed < 3 * DEADLINE, elapsed
    assert server.connections == 1


def test_the_default_deadline_is_ten_seconds_in_the_message() -> None:
    assert Limits().total_timeout == 10.0
    assert Fetcher()._deadline("https://x/metadata/public/public.json").message == (
        "GET https://x/metadata/public/public.json: timed out: the remote did not answer within 10s (the total "
        "deadline of a fetch)"
    )


def test_a_stalled_tls_handshake_times_out_while_connecting(ca: trustme.CA) -> None:
    # A TCP listener that never speaks TLS: the handshake waits for the connect timeout.
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        url = f"https://127.0.0.1:{listener.getsockname()[1]}/metadata/public/public.json"
        started = time.monotonic()
        with pytest.raises(FetchError) as raised:
            Fetcher(Limits(connect_timeout=1.0, total_timeout=DEADLINE)).get(
                url, tls=TLSSettings(ca_pem=ca.cert_pem.bytes().decode())
            )
        elapsed = time.monotonic() - started
    finally:
        listener.close()
    assert raised.value.message == f"GET {url}: timed out connecting (TCP and TLS handshake) within 1s"
    assert elapsed < 3 * DEADLINE


def test_a_body_cut_short_of_its_content_length_is_not_a_document(ca: trustme.CA) -> None:
    # The server sends 2 of the 200 bytes it announced, then closes: never take that for the document.
    head = LONG_HEAD
    with DripServer(ca, head, b"{}", drip_from=len(head) + 2) as server:
        error, _ = fetch_failure(server, Limits(connect_timeout=DEADLINE, total_timeout=DEADLINE))
    assert error.message == f"GET {server.url}: the connection closed after 2 of 200 bytes"


def test_a_prompt_remote_is_fetched_and_the_watchdog_leaves_nothing_behind(ca: trustme.CA) -> None:
    threads_before = threading.active_count()
    with DripServer(ca, HEAD, b"{}", drip_from=len(HEAD) + 2) as server:
        response = Fetcher(Limits(connect_timeout=DEADLINE, total_timeout=DEADLINE)).get(server.url, tls=server.tls)
    assert (response.status, response.body, response.content_type) == (200, b"{}", "application/json")
    deadline = time.monotonic() + 5
    while threading.active_count() > threads_before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= threads_before  # the watchdog timer was cancelled
