"""A hostile remote for the reconciler: the Deckhouse stand-in over real HTTPS, misbehaving on demand.

Built on ``tests/deckhouse_fixture.py`` (an independent Deckhouse exporter: its documents, its token
checks): by default it serves good documents; a case then gives a path a :data:`Behaviour` that
writes whatever a hostile peer would, from a whole response to bytes dripped out one at a time.
The private document's behaviour runs only for a caller whose token the remote accepts, as a real
peer's would.  Every drip is bounded (``DRIP_LIMIT``) and ends when the client goes or the remote
stops.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

import trustme

from tests.deckhouse_fixture import PRIVATE_PATH, PUBLIC_PATH, DeckhouseCluster, DeckhouseExporter

Behaviour = Callable[[BaseHTTPRequestHandler, threading.Event], None]
DRIP_LIMIT = 30.0  # seconds a drip may last; the reconciler's deadline is far shorter


class HostileRemote(DeckhouseExporter):
    def __init__(self, cluster: DeckhouseCluster, ca: trustme.CA) -> None:
        super().__init__(cluster, ca)
        self.behaviours: dict[str, Behaviour] = {}
        self.stopping = threading.Event()
        self._good = self._snapshot()

    def _snapshot(self) -> dict[str, Any]:
        cluster = self.cluster
        return {"cluster_uuid": cluster.cluster_uuid, "cluster_domain": cluster.cluster_domain,
                "root_ca_pem": cluster.root_ca_pem, "gateways": [dict(g) for g in cluster.gateways],
                "services": json.loads(json.dumps(cluster.services))}  # fmt: skip

    def reset(self) -> None:
        """Back to the good documents it started with, misbehaving nowhere."""
        self.behaviours.clear()
        self.mode = "ok"
        self.public_body = self.private_body = None
        for name, value in self._snapshot_copy().items():
            setattr(self.cluster, name, value)

    def _snapshot_copy(self) -> dict[str, Any]:
        copied: dict[str, Any] = json.loads(json.dumps(self._good))
        return copied

    def __enter__(self) -> HostileRemote:
        super().__enter__()
        return self

    def stop(self) -> None:
        self.stopping.set()
        super().stop()

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        behaviour = self.behaviours.get(path)
        if behaviour is None:
            super()._handle(request)
            return
        if path == PRIVATE_PATH:
            reason, _ = self.cluster.check_authn(request.headers.get("Authorization"), time.time())
            if reason:
                self._send(request, 401, f"Authentication error: {reason}\n".encode())
                return
        request.close_connection = True
        try:
            behaviour(request, self.stopping)
        except OSError:
            return  # the reconciler hung up (its deadline): what a drip is for


# -- behaviours ----------------------------------------------------------------------------------


def respond(body: bytes, *, status: int = 200, content_type: str | None = "application/json",
            headers: tuple[tuple[str, str], ...] = ()) -> Behaviour:  # fmt: skip
    """A well-formed response with this status, content type and body."""

    def behave(request: BaseHTTPRequestHandler, _: threading.Event) -> None:
        request.send_response(status)
        if content_type is not None:
            request.send_header("Content-Type", content_type)
        for name, value in headers:
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    return behave


def raw(data: bytes) -> Behaviour:
    """Exactly these bytes as the whole response, then the connection is closed."""

    def behave(request: BaseHTTPRequestHandler, _: threading.Event) -> None:
        request.wfile.write(data)

    return behave


def drip(data: bytes, *, prefix: bytes = b"", every: float = 0.5, size: int = 2) -> Behaviour:
    """``prefix`` at once, then ``data`` ``size`` bytes every ``every`` seconds (bounded)."""

    def behave(request: BaseHTTPRequestHandler, stopping: threading.Event) -> None:
        request.wfile.write(prefix)
        deadline = time.monotonic() + DRIP_LIMIT
        for position in range(0, len(data), size):
            if stopping.wait(every) or time.monotonic() > deadline:
                return
            request.wfile.write(data[position : position + size])

    return behave


def chunked(chunks: list[bytes], *, terminator: bytes = b"0\r\n\r\n") -> Behaviour:
    """A chunked response with these chunks (each sent as its own chunk) and this terminator."""

    def behave(request: BaseHTTPRequestHandler, _: threading.Event) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        request.wfile.write(head + b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + terminator)

    return behave


PUBLIC = PUBLIC_PATH
PRIVATE = PRIVATE_PATH
