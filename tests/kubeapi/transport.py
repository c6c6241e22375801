"""The double's HTTP layer: HTTPS on loopback, one thread per connection, kube-apiserver's wire habits.

It authenticates bearer tokens, routes the path (:mod:`tests.kubeapi.routing`), hands the request
to the double (a :class:`Backend`), and answers with JSON, ``Warning`` headers and, for a watch,
a chunked stream of events; a dropped watch or a stopping double cuts the connection as a
network failure would.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from federation.resources import KubeObject
from tests.kubeapi.routing import Route, resolve
from tests.kubeapi.status import UNAUTHORIZED, ApiError, bad_request, status
from tests.kubeapi.watch import Event, Watcher

log = logging.getLogger(__name__)

POLL = 0.05
NOT_ALLOWED = status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")


@dataclass
class User:
    name: str
    groups: tuple[str, ...]


class Backend(Protocol):
    """What the HTTP layer asks of the double (:class:`tests.kubeapi.server.KubeApiDouble`)."""

    default_watch_timeout: float
    bookmark_interval: float

    @property
    def tls_context(self) -> ssl.SSLContext: ...

    @property
    def stopping(self) -> bool: ...

    def log_request(self, method: str, path: str) -> None: ...

    def authenticate(self, header: str | None) -> User | None: ...

    def get(self, route: Route) -> KubeObject: ...

    def list_objects(self, route: Route, query: dict[str, str]) -> KubeObject: ...

    def create(self, route: Route, body: Any, user: User, query: dict[str, str]) -> tuple[KubeObject, list[str]]: ...

    def update(self, route: Route, body: Any, user: User, query: dict[str, str]) -> tuple[KubeObject, list[str]]: ...

    def patch(
        self, route: Route, raw: bytes, content_type: str, user: User, query: dict[str, str]
    ) -> tuple[KubeObject, list[str]]: ...

    def delete(self, route: Route, body: Any, user: User, query: dict[str, str]) -> tuple[KubeObject, list[str]]: ...

    def open_watch(
        self, route: Route, query: dict[str, str]
    ) -> tuple[Watcher | None, list[Event], KubeObject | None]: ...

    def close_watch(self, watcher: Watcher) -> None: ...

    def translate(self, watcher: Watcher, event: Event) -> dict[str, Any] | None: ...

    def bookmark(self, watcher: Watcher) -> dict[str, Any] | None: ...


def _warning_header(text: str) -> str | None:
    if any(ord(char) < 32 or ord(char) == 127 for char in text):
        return None  # the apiserver silently drops warnings with control characters
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{escaped}"'


def _cut(connection: socket.socket) -> None:
    # socket.socket.shutdown, not SSLSocket.shutdown: the latter drops the TLS object under a
    # thread that may be reading from it.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(connection, socket.SHUT_RDWR)


class Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], double: Backend) -> None:
        self.double = double
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def forget(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Unblock handler threads parked on idle keep-alive reads so server_close can join them."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            _cut(connection)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    server: Server

    def setup(self) -> None:
        self.request.settimeout(self.timeout)
        # wrap_socket detaches the accepted socket, so the TLS socket is what stop() must cut.
        # The handshake happens on the first read, in this thread and under the timeout, so a
        # slow or broken client never stalls the accept loop.
        self.request = self.server.double.tls_context.wrap_socket(
            self.request, server_side=True, do_handshake_on_connect=False
        )
        self.server.track(self.request)
        super().setup()

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.server.forget(self.request)

    def cut(self) -> None:
        """End the TCP connection without a TLS close or final chunk, like a network failure."""
        _cut(self.request)

    def handle(self) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            super().handle()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("kube-api-double: " + format, *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        double = self.server.double
        double.log_request(method, self.path)
        raw = self._read_body()
        warnings: list[str] = []
        try:
            user = double.authenticate(self.headers.get("Authorization"))
            if user is None:
                self._send(401, UNAUTHORIZED)
                return
            parts = urlsplit(self.path)
            query = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
            route = resolve(parts.path)
            if isinstance(route, dict):
                if method != "GET":
                    raise ApiError(NOT_ALLOWED)
                self._send(200, route)
                return
            self._serve(method, route, raw, query=query, user=user, warnings=warnings)
        except ApiError as error:
            warnings = error.warnings or warnings
            self._send(error.code, error.status, warnings)

    def _serve(
        self, method: str, route: Route, raw: bytes, *, query: dict[str, str], user: User, warnings: list[str]
    ) -> None:
        double = self.server.double
        collection = not route.name
        if method == "GET" and collection and query.get("watch") in ("true", "1"):
            self._watch(route, query)
            return
        if method == "GET":
            self._send(200, double.list_objects(route, query) if collection else double.get(route))
            return
        if method == "POST" and collection and not route.subresource:
            obj, warnings[:] = double.create(route, self._json(raw), user, query)
            self._send(201, obj, warnings)
            return
        if collection or (route.resource.namespaced and route.namespace is None):
            raise ApiError(NOT_ALLOWED)
        if method == "PUT":
            obj, warnings[:] = double.update(route, self._json(raw), user, query)
            self._send(200, obj, warnings)
        elif method == "PATCH":
            obj, warnings[:] = double.patch(route, raw, self.headers.get("Content-Type") or "", user, query)
            self._send(200, obj, warnings)
        elif method == "DELETE" and not route.subresource:
            obj, warnings[:] = double.delete(route, self._json(raw) if raw else None, user, query)
            self._send(200, obj, warnings)
        else:
            raise ApiError(NOT_ALLOWED)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    @staticmethod
    def _json(raw: bytes) -> Any:
        try:
            return json.loads(raw or b"null")
        except ValueError as error:
            raise bad_request(f"couldn't get version/kind; json parse error: {error}") from error

    def _send(self, code: int, body: dict[str, Any], warnings: list[str] | None = None) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        seen: set[str] = set()
        for text in warnings or []:
            header = _warning_header(text)
            if header and header not in seen:
                seen.add(header)
                self.send_header("Warning", header)
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, event: dict[str, Any]) -> None:
        data = json.dumps(event, separators=(",", ":")).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def _watch(self, route: Route, query: dict[str, str]) -> None:
        double = self.server.double
        try:
            timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds") else double.default_watch_timeout
        except ValueError as error:
            raise bad_request(f"invalid timeoutSeconds: {query['timeoutSeconds']}") from error
        watcher, backlog, too_old = double.open_watch(route, query)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        if watcher is None:
            self._chunk({"type": "ERROR", "object": too_old})
            self.wfile.write(b"0\r\n\r\n")
            return
        try:
            clean = self._stream(watcher, backlog, timeout, query.get("allowWatchBookmarks") == "true")
            if clean:
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.close_connection = True
                self.cut()
        finally:
            double.close_watch(watcher)

    def _stream(self, watcher: Watcher, backlog: list[Event], timeout: float, bookmarks: bool) -> bool:
        """Send events until the timeout (True: end cleanly) or a drop or stop (False: cut)."""
        double = self.server.double
        deadline = time.monotonic() + timeout
        last_sent = time.monotonic()
        pending: Iterator[Event] = iter(backlog)
        while True:
            if watcher.dropped.is_set() or double.stopping:
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            event = next(pending, None)
            if event is None:
                try:
                    event = watcher.events.get(timeout=min(remaining, POLL))
                except queue.Empty:
                    if bookmarks and time.monotonic() - last_sent >= double.bookmark_interval:
                        mark = double.bookmark(watcher)
                        if mark is not None:
                            self._chunk(mark)
                            last_sent = time.monotonic()
                    continue
            shown = double.translate(watcher, event)
            if shown is not None:
                self._chunk(shown)
                last_sent = time.monotonic()
