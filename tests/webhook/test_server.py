"""The webhook as it runs in a pod: real gunicorn (the bounded gevent worker) over TLS, verified with a trustme CA.

Includes a certificate rotation seen by a new connection without a restart, and the malformed
request corpus over the wire (400, never 5xx).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from tests.reviews import admission_review, federation, service_entry
from tests.support import ServerProcess, cli_command, free_port
from tests.webhook.tls import SERVICE_NAME, issue


class Webhook:
    def __init__(self, port: int, ca: trustme.CA, tls_dir: Path, server: ServerProcess) -> None:
        self.port, self.ca, self.tls_dir, self.server = port, ca, tls_dir, server

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    def peer_certificate_digest(self) -> str:
        """Open a new TLS connection, as the apiserver does, and fingerprint the served certificate."""
        with (
            socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw,
            self.context().wrap_socket(raw, server_hostname=SERVICE_NAME) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            return hashlib.sha256(der).hexdigest()

    def post(self, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context(), timeout=10)
        try:
            connection.request(
                "POST", "/validate?timeout=5s", body=body, headers=headers or {"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()


@pytest.fixture
def webhook(tmp_path: Path) -> Iterator[Webhook]:
    state = tmp_path / "state"
    (state / "_cluster").mkdir(parents=True)
    (state / "_cluster" / "cluster-b.yaml").write_text(yaml.safe_dump(federation()))
    tls_dir = tmp_path / "tls"
    tls_dir.mkdir()
    ca = trustme.CA()
    issue(ca, tls_dir)
    port = free_port()
    args = [
        "webhook", "serve",
        "--tls-cert-file", str(tls_dir / "tls.crt"),
        "--tls-private-key-file", str(tls_dir / "tls.key"),
        "--host", "127.0.0.1", "--port", str(port),
        "--local-trust-domain", "cluster-a.local",
        "--state", str(state),
    ]  # fmt: skip
    with ServerProcess(args, log_path=tmp_path / "webhook.log") as server:
        hook = Webhook(port, ca, tls_dir, server)
        server.wait_http(f"https://127.0.0.1:{port}/readyz", context=hook.context())
        yield hook


def test_denial_over_tls_from_a_real_gunicorn(webhook: Webhook) -> None:
    review = admission_review(service_entry("bar", "shop", "bar.xyz.svc.cluster-b.local"), uid="abc")
    status, payload = webhook.post(json.dumps(review).encode())
    assert status == 200
    assert payload["response"]["uid"] == "abc"
    assert payload["response"]["allowed"] is False
    assert payload["response"]["status"]["message"].startswith(
        'ServiceEntry "bar" is invalid: spec.hosts[0]: Forbidden: host "bar.xyz.svc.cluster-b.local" is in trust '
        'domain "cluster-b.local", reserved by IstioFederation "cluster-b"'
    )
    assert "Using worker: BoundedWorker" in webhook.server.log()


def test_rotated_certificate_is_served_to_new_connections_without_restart(webhook: Webhook) -> None:
    before = webhook.peer_certificate_digest()
    assert webhook.server.process is not None
    pid = webhook.server.process.pid
    issue(webhook.ca, webhook.tls_dir)
    after = webhook.peer_certificate_digest()
    assert after != before
    assert webhook.server.process.pid == pid
    assert webhook.server.process.poll() is None
    status, _ = webhook.post(json.dumps(admission_review(service_entry("web", "shop", "web.example.com"))).encode())
    assert status == 200


def test_certificate_from_an_unknown_ca_is_refused_by_a_verifying_client(webhook: Webhook) -> None:
    other = trustme.CA()
    context = ssl.create_default_context()
    other.configure_trust(context)
    with (
        socket.create_connection(("127.0.0.1", webhook.port), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        context.wrap_socket(raw, server_hostname=SERVICE_NAME)


def test_plain_http_is_not_served(webhook: Webhook) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", webhook.port, timeout=5)
    try:
        connection.request("GET", "/healthz")
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
            connection.getresponse()
    finally:
        connection.close()


MALFORMED_OVER_THE_WIRE: list[tuple[str, bytes, dict[str, str]]] = [
    ("garbage", b"\x00\x01garbage", {"Content-Type": "application/json"}),
    ("truncated-json", b'{"apiVersion": "admission.k8s.io/v1", "kind"', {"Content-Type": "application/json"}),
    ("form-encoded", b"a=b", {"Content-Type": "application/x-www-form-urlencoded"}),
    (
        "missing-uid",
        json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}).encode(),
        {"Content-Type": "application/json"},
    ),
    ("deep-nesting", b"[" * 100_000 + b"]" * 100_000, {"Content-Type": "application/json"}),
]


@pytest.mark.parametrize(
    ("body", "headers"), [m[1:] for m in MALFORMED_OVER_THE_WIRE], ids=[m[0] for m in MALFORMED_OVER_THE_WIRE]
)
def test_malformed_requests_over_the_wire_get_400(webhook: Webhook, body: bytes, headers: dict[str, str]) -> None:
    status, payload = webhook.post(body, headers)
    assert status == 400
    assert payload["error"] == "malformed AdmissionReview"
    assert "Traceback" not in webhook.server.log()


def test_deeply_nested_json_is_malformed_not_a_crash(webhook: Webhook) -> None:
    status, payload = webhook.post(b"[" * 100_000 + b"]" * 100_000)
    assert (status, payload["message"]) == (400, "body is nested too deeply to be an AdmissionReview")


def test_oversized_body_is_refused_from_its_content_length(webhook: Webhook) -> None:
    """The server answers 400 from the header alone, without reading (or buffering) the body."""
    with (
        socket.create_connection(("127.0.0.1", webhook.port), timeout=5) as raw,
        webhook.context().wrap_socket(raw, server_hostname=SERVICE_NAME) as tls,
    ):
        tls.sendall(
            b"POST /validate HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\n"
            b"Content-Length: 4000000\r\n\r\n{"
        )
        received = b""
        for _ in range(100):  # bounded: stop once the announced body has arrived
            head_bytes, _, body_bytes = received.partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head_bytes.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                None,
            )
            if length is not None and len(body_bytes) >= length:
                break
            received += tls.recv(65536)
        response = received.decode()
    head, _, body = response.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 400")
    assert json.loads(body) == {"error": "malformed AdmissionReview", "message": "body is larger than 3145728 bytes"}


def test_missing_certificate_file_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        cli_command(
            "webhook", "serve", "--tls-cert-file", str(tmp_path / "nope.crt"),
            "--tls-private-key-file", str(tmp_path / "nope.key"),
            "--local-trust-domain", "cluster-a.local", "--state", str(tmp_path),
        ),
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"istio-federation: error: --tls-cert-file {tmp_path / 'nope.crt'}: file not found "
        "(the webhook only serves over TLS)"
    )


def test_malformed_state_directory_is_a_usage_error_before_gunicorn_starts(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("apiVersion: v1\nkind: [\n")
    tls = tmp_path / "tls"
    tls.mkdir()
    issue(trustme.CA(), tls)
    result = subprocess.run(
        cli_command(
            "webhook", "serve", "--tls-cert-file", str(tls / "tls.crt"), "--tls-private-key-file", str(tls / "tls.key"),
            "--local-trust-domain", "cluster-a.local", "--state", str(tmp_path),
        ),
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"istio-federation: error: --state: {tmp_path / 'broken.yaml'}:3: invalid YAML: expected the node content, "
        "but found '<stream end>'"
    )
