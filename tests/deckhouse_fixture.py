"""An independent stand-in for a Deckhouse cluster's metadata-exporter, over real HTTPS.

It is written from the Deckhouse facts (``../shared/reference/deckhouse-federation.md`` §2), not
from our exporter, so the reconciler is tested against the other implementation's behaviour:

* bodies are Go's ``json.MarshalIndent(v, "", "  ")``: pretty-printed JSON, served with no explicit
  Content-Type, so Go sniffs ``text/plain; charset=utf-8``;
* ``publicServices[].ports[]`` carry only ``name`` and ``port`` (no protocol);
* the Ed25519 public key uses Deckhouse's ``ED25519 PUBLIC KEY`` PEM label;
* tokens are checked as ``CheckAuthn`` does, in its order, with its exact 401 texts
  (``Authentication error: <reason>`` via ``http.Error``): Bearer prefix, ``aud`` equals this
  cluster's UUID, ``scope``, ``exp`` (no leeway), ``sub`` known, then the signature.  ``iss`` and
  ``nbf`` are not checked, as in Deckhouse.  JWS parsing and Ed25519 verification are done here
  with ``cryptography`` directly, not with the project's token module.

Misbehaviour for tests: ``mode`` ``"500"``, ``"garbage"``, ``"slow"`` (hold the response until
released or stopped, bounded), ``"oversized"``; ``public_body``/``private_body``, raw bytes served
instead of the document (the private one still only to an accepted token); and ``stop()`` for
"down".
"""

from __future__ import annotations

import base64
import binascii
import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import trustme
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

PUBLIC_PATH = "/metadata/public/public.json"
PRIVATE_PATH = "/metadata/private/federation.json"
SLOW_HOLD_SECONDS = 5.0


def _b64url(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _deckhouse_public_pem(key: ed25519.Ed25519PublicKey) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    body = base64.b64encode(der).decode()
    return "-----BEGIN ED25519 PUBLIC KEY-----\n" + body + "\n-----END ED25519 PUBLIC KEY-----\n"


def _load_any_public_pem(pem: str) -> ed25519.Ed25519PublicKey | None:
    """Go's pem.Decode ignores the label; so do we."""
    lines = [line for line in pem.strip().splitlines() if line and not line.startswith("-----")]
    try:
        key = serialization.load_der_public_key(base64.b64decode("".join(lines)))
    except (ValueError, binascii.Error):
        return None
    return key if isinstance(key, ed25519.Ed25519PublicKey) else None


@dataclass
class DeckhouseCluster:
    """The documents and the trust of one Deckhouse cluster; tests change these between syncs."""

    cluster_uuid: str = "5d6c1e2f-0000-4000-8000-0000000000b2"
    cluster_domain: str = "cluster-b.local"
    root_ca_pem: str = ""
    gateways: list[dict[str, Any]] = field(
        default_factory=lambda: [{"address": "10.0.0.10", "port": 15443}, {"address": "10.0.0.11", "port": 15443}]
    )
    services: list[dict[str, Any]] = field(
        default_factory=lambda: [{"hostname": "bar.xyz.svc.cluster-b.local", "ports": [{"name": "http", "port": 8080}]}]
    )
    # clusterUUID -> authnKeyPub PEM, as in d8-remote-clusters-public-metadata.
    known_clusters: dict[str, str] = field(default_factory=dict)
    signing_key: ed25519.Ed25519PrivateKey = field(default_factory=ed25519.Ed25519PrivateKey.generate)

    def public_document(self) -> dict[str, Any]:
        return {
            "clusterUUID": self.cluster_uuid,
            "authnKeyPub": _deckhouse_public_pem(self.signing_key.public_key()),
            "rootCA": self.root_ca_pem,
        }

    def private_document(self) -> dict[str, Any]:
        return {"ingressGateways": self.gateways, "publicServices": self.services}

    def check_authn(self, header: str | None, now: float) -> tuple[str, dict[str, Any]]:
        """Deckhouse's CheckAuthn: '' when allowed, else the reason; plus the decoded claims."""
        if not header or not header.startswith("Bearer "):
            return "Bearer authorization required", {}
        parts = header[len("Bearer ") :].split(".")
        if len(parts) != 3:
            return "compact JWS format must have three parts", {}
        try:
            claims = json.loads(_b64url(parts[1]))
            signature = _b64url(parts[2])
        except (ValueError, binascii.Error):
            return "illegal base64 data in JWS", {}
        if not isinstance(claims, dict):
            return "JWT payload is not a JSON object", {}
        if claims.get("aud") != self.cluster_uuid:
            got = claims.get("aud")
            return f"JWT is signed for wrong destination cluster. Expected: {self.cluster_uuid}, Got: {got}", claims
        if claims.get("scope") != "private-federation":
            return "JWT is signed for wrong scope", claims
        expires = claims.get("exp")
        if not isinstance(expires, int | float) or expires < now:
            return "JWT token expired", claims
        known = self.known_clusters.get(str(claims.get("sub")))
        if known is None:
            return "JWT is signed for unknown source cluster", claims
        key = _load_any_public_pem(known)
        if key is None:
            return "failed to decode public key PEM", claims
        try:
            key.verify(signature, f"{parts[0]}.{parts[1]}".encode("ascii"))
        except InvalidSignature:
            return "cannot verify JWT token with known public key", claims
        return "", claims


class DeckhouseExporter:
    """A ThreadingHTTPServer over TLS on 127.0.0.1; use as a context manager."""

    def __init__(self, cluster: DeckhouseCluster, ca: trustme.CA) -> None:
        self.cluster = cluster
        self.ca = ca
        self.mode = "ok"
        # Raw bytes served as the document instead of the marshalled one (hostile remotes).
        self.public_body: bytes | None = None
        self.private_body: bytes | None = None
        self.requests: list[tuple[str, str]] = []  # (path, Authorization header or "")
        self.accepted_claims: list[dict[str, Any]] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer._handle(self)

            def do_POST(self) -> None:  # Deckhouse's ServeMux accepts any method
                outer._handle(self)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, name="deckhouse-exporter", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}/metadata/"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving; the port refuses connections afterwards ("remote down")."""
        self.release.set()
        if self.thread.is_alive():
            self.server.shutdown()
            self.thread.join(timeout=10)
        self.server.server_close()

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        with self._lock:
            self.requests.append((path, request.headers.get("Authorization") or ""))
        if self.mode == "500":
            self._send(request, 500, b"Internal Server Error\n")
            return
        if self.mode == "garbage":
            self._send(request, 200, b"<html>this is not the metadata you are looking for</html>")
            return
        if self.mode == "slow":
            # Bounded: released by the test or by stop(), at most SLOW_HOLD_SECONDS.
            self.release.wait(SLOW_HOLD_SECONDS)
        if self.mode == "oversized":
            self._send(request, 200, b"[" + b"0," * (3 * 1024 * 1024) + b"0]")
            return
        if path == PUBLIC_PATH:
            body = self.public_body
            self._send(request, 200, self._marshal_indent(self.cluster.public_document()) if body is None else body)
            return
        if path == PRIVATE_PATH:
            reason, claims = self.cluster.check_authn(request.headers.get("Authorization"), time.time())
            if reason:
                self._send(request, 401, f"Authentication error: {reason}\n".encode())
                return
            with self._lock:
                self.accepted_claims.append(claims)
            body = self.private_body
            self._send(request, 200, self._marshal_indent(self.cluster.private_document()) if body is None else body)
            return
        self._send(request, 404, b"404 page not found\n")

    @staticmethod
    def _marshal_indent(value: Any) -> bytes:
        return json.dumps(value, indent=2).encode()

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, code: int, body: bytes) -> None:
        try:
            request.send_response(code)
            request.send_header("Content-Type", "text/plain; charset=utf-8")
            if code != 200:
                request.send_header("X-Content-Type-Options", "nosniff")
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)
        except OSError:
            return  # the client gave up (timeout test): nothing to do
