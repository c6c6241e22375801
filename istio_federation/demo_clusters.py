"""The demo's two loopback clusters: their key material, seeded state, and server processes.

Each cluster gets its own Istio root CA and Ed25519 identity, the objects it already holds before
federation (Istio's ConfigMaps, the gateways it advertises, cluster-b's public Service), and TLS
leaves from the one demo web CA for its exporter and webhook.  Those two run as separate processes
on free loopback ports, each logging to its own file, for as long as the story needs them.

The clusters live under a working directory that a run replaces, but only when an earlier run made it
(its marker file): ``--workdir`` may point anywhere, and the demo must never delete a user's directory.
"""

from __future__ import annotations

import datetime
import json
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from certs import istio_ca, webhook_cert
from certs.authority import Authority
from federation import keys, ownership
from federation.commandline import UsageError
from objectstore.statefiles import canonical_path
from objectstore.stateformat import dump

NAMESPACE = "istio-federation"
MESH_NAMESPACE = "istio-system"
RECONCILER_USER = "system:serviceaccount:istio-federation:istio-federation-reconciler"
WEBHOOK_DNS = "istio-federation-webhook.istio-federation.svc"
MARKER = ".istio-federation-demo"
GATEWAYS = {"cluster-a": ["198.51.100.10", "198.51.100.11"], "cluster-b": ["203.0.113.10", "203.0.113.11"]}
READY_TIMEOUT = 30.0
ISTIOD = "istiod.istio-system.svc:15012"


@dataclass
class Cluster:
    name: str
    root: Path
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    exporter_port: int = 0
    webhook_port: int = 0

    @property
    def domain(self) -> str:
        return f"{self.name}.local"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def metadata_endpoint(self) -> str:
        return f"https://127.0.0.1:{self.exporter_port}/metadata/"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "istio_federation.cli", *args]


def _seed(cluster: Cluster, obj: dict[str, Any]) -> None:
    """Objects the cluster already has before federation (Services, Istio's ConfigMaps)."""
    path = canonical_path(cluster.state, obj)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump(obj))


def prepare_cluster(cluster: Cluster, demo_ca: Authority, now: datetime.datetime) -> None:
    files = cluster.root / "files"
    files.mkdir(parents=True)
    istio = istio_ca.generate(cluster.domain, key_type="ec", days=365, now=now)
    (files / "root-cert.pem").write_bytes(istio.root.certificate_pem())
    identity = keys.Keypair.generate()
    for port_name, dns_names in (("exporter", ["localhost"]), ("webhook", [WEBHOOK_DNS])):
        leaf = webhook_cert.issue(demo_ca, dns_names=dns_names, ip_addresses=[ip_address("127.0.0.1")], days=1, now=now)
        (files / f"{port_name}.crt").write_bytes(leaf.certificate_pem())
        key_path = files / f"{port_name}.key"
        key_path.write_bytes(leaf.private_key_pem())
        key_path.chmod(0o600)
    _seed(cluster, {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "istio-ca-root-cert", "namespace": NAMESPACE},
        "data": {"root-cert.pem": istio.root.certificate_pem().decode()},
    })  # fmt: skip
    _seed(cluster, {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "istio-federation-authn-keypair", "namespace": NAMESPACE},
        "stringData": {"priv.pem": identity.private_pem(), "pub.pem": identity.public_pem},
    })  # fmt: skip
    _seed(cluster, {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "istio", "namespace": MESH_NAMESPACE},
        "data": {"mesh": f"trustDomain: {cluster.domain}\ndefaultConfig:\n  discoveryAddress: {ISTIOD}\n"},
    })  # fmt: skip
    gateways = [{"address": address, "port": 15443} for address in GATEWAYS[cluster.name]]
    _seed(cluster, {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "metadata-exporter-ingressgateway-advertise", "namespace": NAMESPACE},
        "data": {"gateways.json": json.dumps(gateways)},
    })  # fmt: skip
    if cluster.name == "cluster-b":
        _seed(cluster, {
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "bar", "namespace": "xyz", "labels": {ownership.PUBLIC_SERVICE_LABEL: ""}},
            "spec": {"type": "ClusterIP",
                     "ports": [{"name": "http", "port": 8080}, {"name": "grpc-api", "port": 9090}]},
        })  # fmt: skip


def tls_context(demo_ca_pem: bytes) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=demo_ca_pem.decode())
    context.check_hostname = False  # the demo's servers are reached by IP; the chain is still verified
    return context


def _wait_ready(url: str, context: ssl.SSLContext, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited early; see {log}:\n{log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(url, context=context, timeout=2) as response:  # noqa: S310 - https only
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} was not ready after {READY_TIMEOUT:.0f} s; see {log}")


@contextmanager
def running_servers(clusters: Sequence[Cluster], demo_ca_pem: bytes, logs: Path) -> Iterator[None]:
    processes: list[tuple[subprocess.Popen[bytes], str, Path]] = []
    try:
        for cluster in clusters:
            files = cluster.root / "files"
            cluster.exporter_port, cluster.webhook_port = _free_port(), _free_port()
            commands = {
                "exporter": cli_command(
                    "exporter", "serve", "--cluster-uuid", cluster.uuid, "--cluster-domain", cluster.domain,
                    "--state", str(cluster.state), "--namespace", NAMESPACE,
                    "--host", "127.0.0.1", "--port", str(cluster.exporter_port), "--poll-interval", "0.2",
                    "--tls-cert-file", str(files / "exporter.crt"),
                    "--tls-private-key-file", str(files / "exporter.key"),
                ),
                "webhook": cli_command(
                    "webhook", "serve", "--local-trust-domain", cluster.domain, "--state", str(cluster.state),
                    "--host", "127.0.0.1", "--port", str(cluster.webhook_port),
                    "--reconciler-username", RECONCILER_USER,
                    "--tls-cert-file", str(files / "webhook.crt"), "--tls-private-key-file", str(files / "webhook.key"),
                ),
            }  # fmt: skip
            for component, command in commands.items():
                log = logs / f"{cluster.name}-{component}.log"
                with log.open("wb") as handle:
                    process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT)
                port = cluster.exporter_port if component == "exporter" else cluster.webhook_port
                processes.append((process, f"https://127.0.0.1:{port}/readyz", log))
        context = tls_context(demo_ca_pem)
        for process, url, log in processes:
            _wait_ready(url, context, process, log)
        yield
    finally:
        for process, _, _ in processes:
            if process.poll() is None:
                process.terminate()
        for process, _, _ in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def prepare_workdir(workdir: Path) -> None:
    if workdir.exists():
        if not (workdir / MARKER).exists():
            raise UsageError(f"--workdir {workdir} exists and was not made by the demo; choose another --workdir")
        shutil.rmtree(workdir)
    try:
        workdir.mkdir(parents=True)
        (workdir / MARKER).write_text("made by istio-federation demo; deleted by the next run\n")
    except OSError as error:
        raise UsageError(f"--workdir {workdir}: cannot create it: {error.strerror or error}") from None
