"""HTTPS GET of a remote's metadata documents, with hard limits.

* TLS is verified against the system roots plus ``spec.metadata.ca`` (Deckhouse's rule); with
  ``insecureSkipVerify`` (and no ``ca``) verification is off and a warning is logged each time.
* 5 s to connect (TCP and TLS handshake), 10 s in total for the whole exchange.  The total is a real
  deadline: a watchdog timer shuts the socket down when it passes, whatever ``http.client`` is
  blocked in (the TLS handshake, the status line, a header, the body), because ``http.client``
  reads the status line and headers with a timeout per ``recv``, so a server dripping two bytes a
  second would otherwise hold a worker for minutes.  (Name resolution happens before there is a
  socket to shut down; the system resolver's own timeouts bound it.)
* The body is read up to the cap plus one byte; anything longer is refused as oversized by the
  document parser, which owns the wire format.
* Redirects are not followed: a metadata endpoint that redirects is misconfigured.

Errors carry Deckhouse's condition reasons, so the caller can put them straight into status.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from federation import conditions
from federation.documents.reading import MAX_DOCUMENT_BYTES

log = logging.getLogger(__name__)

PUBLIC_PATH = "/public/public.json"
PRIVATE_PATH = "/private/federation.json"
USER_AGENT = "istio-federation-reconciler/0.1"


class FetchError(Exception):
    """A fetch that produced no usable body; ``reason`` is a Deckhouse condition reason."""

    def __init__(self, reason: str, message: str, *, status: int = 0, body: bytes = b"") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status
        self.body = body


class UnusableTrust(FetchError):
    """``spec.metadata.ca`` cannot be loaded: the spec's fault, found before anything is contacted."""


@dataclass(frozen=True)
class TLSSettings:
    ca_pem: str = ""
    insecure_skip_verify: bool = False


@dataclass(frozen=True)
class Limits:
    connect_timeout: float = 5.0
    total_timeout: float = 10.0
    max_bytes: int = MAX_DOCUMENT_BYTES


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str
    elapsed: float = field(default=0.0, compare=False)


def endpoint_url(endpoint: str, path: str) -> str:
    """``https://x/metadata/`` + ``/public/public.json``, as Deckhouse joins them."""
    return endpoint.strip().rstrip("/") + path


@functools.lru_cache(maxsize=64)
def ssl_context(settings: TLSSettings) -> ssl.SSLContext:
    """System roots plus the federation's CA; or no verification at all when asked and no CA.

    Built once per setting and shared (a context is safe to use from many threads): loading the
    system roots costs tens of milliseconds, twice per sync of every federation otherwise.  An
    unusable CA raises each time (exceptions are not cached)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.ca_pem.strip():
        try:
            context.load_verify_locations(cadata=settings.ca_pem)
        except (ssl.SSLError, ValueError) as error:
            raise UnusableTrust(
                conditions.FETCH_FAILED, f"spec.metadata.ca is not a usable PEM certificate: {error}"
            ) from error
    elif settings.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _tls_hint(error: ssl.SSLError, host: str, settings: TLSSettings) -> str:
    detail = getattr(error, "verify_message", None) or error.reason or str(error)
    if isinstance(error, ssl.SSLCertVerificationError):
        if "hostname" in str(detail).lower() or "IP address mismatch" in str(detail):
            return f"TLS verification failed for {host}: {detail}; the certificate does not name {host}"
        where = "spec.metadata.ca" if settings.ca_pem.strip() else "the system roots (spec.metadata.ca is empty)"
        return (
            f"TLS verification failed for {host}: {detail}; the CA that signed the endpoint's "
            f"certificate is not in {where}: put it in spec.metadata.ca"
        )
    return f"TLS handshake with {host} failed: {detail}"


class _Watchdog:
    """Shuts a connection's socket down once ``seconds`` have passed, from a timer thread.

    It shuts down a duplicate of the TCP socket, taken before TLS wraps it: shutdown acts on the
    connection, not the descriptor, so every blocked read returns at once.  The lock keeps the
    shutdown and the close of that duplicate apart, so a descriptor number reused elsewhere is
    never touched.
    """

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._fired = False
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    @property
    def fired(self) -> bool:
        with self._lock:
            return self._fired

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            if self._socket is not None:
                self._socket.close()
            self._socket = sock.dup()
            if self._fired:
                self._shutdown()

    def _fire(self) -> None:
        with self._lock:
            self._fired = True
            self._shutdown()

    def _shutdown(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError):  # already closed by the peer
                self._socket.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None


class _WatchedConnection(http.client.HTTPSConnection):
    """An HTTPS connection whose TCP socket is handed to the watchdog before the TLS handshake."""

    def __init__(self, host: str, port: int, *, timeout: float, context: ssl.SSLContext, watchdog: _Watchdog) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._tls_context = context
        self._watchdog = watchdog

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self._watchdog.watch(sock)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self._tls_context.wrap_socket(sock, server_hostname=self.host)


class Fetcher:
    """One GET per call; no connection reuse, since each remote is fetched twice a minute at most."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()

    def get(self, url: str, *, tls: TLSSettings, headers: dict[str, str] | None = None) -> Response:
        parts = urlsplit(url)
        if parts.scheme != "https":
            raise FetchError(
                conditions.FETCH_FAILED,
                f"metadata endpoint scheme {parts.scheme or '(none)'!r} is not supported: use an https:// URL",
            )
        try:
            host = parts.hostname or ""
            port = parts.port or 443
        except ValueError as error:
            raise FetchError(conditions.FETCH_FAILED, f"metadata endpoint {url!r} is not a URL: {error}") from error
        if not host:
            raise FetchError(conditions.FETCH_FAILED, f"metadata endpoint {url!r} has no host")
        if tls.insecure_skip_verify and not tls.ca_pem.strip():
            log.warning("fetching %s without TLS verification (spec.metadata.insecureSkipVerify)", url)
        context = ssl_context(tls)
        started = time.monotonic()
        deadline = started + self.limits.total_timeout
        watchdog = _Watchdog(self.limits.total_timeout)
        connection = _WatchedConnection(
            host,
            port,
            timeout=min(self.limits.connect_timeout, self.limits.total_timeout),
            context=context,
            watchdog=watchdog,
        )
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connected = False
        try:
            connection.connect()
            connected = True
            self._arm(connection, deadline)
            request_headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})}
            connection.request("GET", path, headers=request_headers)
            response = connection.getresponse()
            length = response.getheader("Content-Length")
            if length and length.isdigit() and int(length) > self.limits.max_bytes:
                # Refused without reading it: the size alone disqualifies the document.
                body = b""
                oversized = int(length)
            else:
                body = self._read(connection, response, deadline)
                oversized = 0
            content_type = response.getheader("Content-Type") or ""
            missing = response.length or 0  # what Content-Length promised and never came
        except FetchError:
            raise
        except (OSError, http.client.HTTPException) as error:
            if watchdog.fired:
                raise self._deadline(url) from self._timeout()
            if isinstance(error, ssl.SSLError):
                raise FetchError(conditions.FETCH_FAILED, _tls_hint(error, host, tls)) from error
            if isinstance(error, TimeoutError):
                if not connected:
                    limit = min(self.limits.connect_timeout, self.limits.total_timeout)
                    raise FetchError(
                        conditions.FETCH_FAILED,
                        f"GET {url}: timed out connecting (TCP and TLS handshake) within {limit:g}s",
                    ) from error
                raise self._deadline(url) from self._timeout()
            raise FetchError(conditions.FETCH_FAILED, f"GET {url}: {_describe(error)}") from error
        finally:
            fired = watchdog.fired
            watchdog.close()
            connection.close()
        if fired:
            # The shutdown can look like a clean end of the headers or the body: never trust them.
            raise self._deadline(url) from self._timeout()
        if missing and not oversized and len(body) <= self.limits.max_bytes:
            raise FetchError(
                conditions.FETCH_FAILED,
                f"GET {url}: the connection closed after {len(body)} of {len(body) + missing} bytes",
                status=response.status,
            )
        if oversized:
            raise FetchError(
                conditions.INVALID_JSON,
                f"GET {url}: response of {oversized} bytes is larger than {self.limits.max_bytes} bytes",
                status=response.status,
            )
        return Response(response.status, body, content_type, time.monotonic() - started)

    def _deadline(self, url: str) -> FetchError:
        """The total deadline passed; raise it ``from`` :meth:`_timeout`, as diagnostics (check) expect."""
        limit = self.limits.total_timeout
        return FetchError(
            conditions.FETCH_FAILED,
            f"GET {url}: timed out: the remote did not answer within {limit:g}s (the total deadline of a fetch)",
        )

    def _timeout(self) -> TimeoutError:
        return TimeoutError(f"no complete answer within {self.limits.total_timeout:g}s")

    def _arm(self, connection: http.client.HTTPSConnection, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("total deadline reached")
        if connection.sock is not None:
            connection.sock.settimeout(remaining)

    def _read(
        self, connection: http.client.HTTPSConnection, response: http.client.HTTPResponse, deadline: float
    ) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while size <= self.limits.max_bytes:
            self._arm(connection, deadline)
            chunk = response.read1(min(65536, self.limits.max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)


def _describe(error: BaseException) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, socket.gaierror):
        return f"cannot resolve host: {error.strerror or error}"
    return str(error) or type(error).__name__
