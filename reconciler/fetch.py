"""HTTPS GET of a remote's metadata documents, with hard limits.

* TLS is verified against the system roots plus ``spec.metadata.ca`` (Deckhouse's rule); with
  ``insecureSkipVerify`` (and no ``ca``) verification is off and a warning is logged each time.
* 5 s to connect (TCP and TLS handshake), 10 s in total for the whole exchange; the total is a real
  deadline, enforced before every socket read, so a server that drips bytes cannot hold a worker.
* The body is read up to the cap plus one byte; anything longer is refused as oversized by the
  document parser, which owns the wire format.
* Redirects are not followed: a metadata endpoint that redirects is misconfigured.

Errors carry Deckhouse's condition reasons, so the caller can put them straight into status.
"""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from federation import conditions
from federation.documents import MAX_DOCUMENT_BYTES

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


def ssl_context(settings: TLSSettings) -> ssl.SSLContext:
    """System roots plus the federation's CA; or no verification at all when asked and no CA."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.ca_pem.strip():
        try:
            context.load_verify_locations(cadata=settings.ca_pem)
        except (ssl.SSLError, ValueError) as error:
            raise FetchError(
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
        connection = http.client.HTTPSConnection(
            host, port, timeout=min(self.limits.connect_timeout, self.limits.total_timeout), context=context
        )
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.connect()
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
        except FetchError:
            raise
        except ssl.SSLError as error:
            raise FetchError(conditions.FETCH_FAILED, _tls_hint(error, host, tls)) from error
        except TimeoutError as error:
            elapsed = time.monotonic() - started
            limit = self.limits.total_timeout
            raise FetchError(
                conditions.FETCH_FAILED, f"GET {url}: timed out after {elapsed:.1f}s (limit {limit:g}s)"
            ) from error
        except (OSError, http.client.HTTPException) as error:
            raise FetchError(conditions.FETCH_FAILED, f"GET {url}: {_describe(error)}") from error
        finally:
            connection.close()
        if oversized:
            raise FetchError(
                conditions.INVALID_JSON,
                f"GET {url}: response of {oversized} bytes is larger than {self.limits.max_bytes} bytes",
                status=response.status,
            )
        return Response(response.status, body, content_type, time.monotonic() - started)

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
