"""``istio-federation demo``: the reference story, on loopback, in well under a minute.

Two sovereign clusters, cluster-a.local and cluster-b.local, each with its own Istio root CA, its
own Ed25519 identity, and a state directory as its object store.  Each runs the real components
as separate processes: an exporter over HTTPS, the admission webhook, and the reconciler.  Objects
an admin would ``kubectl apply`` go through the cluster's webhook, as the apiserver would send them.
"""

from __future__ import annotations

import argparse
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
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Any, TextIO

import yaml

from certs import istio_ca, webhook_cert
from certs.authority import Authority, common_name
from federation import keys, ownership, resources
from federation.commandline import UsageError
from federation.istio.hosts import hosts_of
from federation.store import Rejected
from objectstore.admission import WebhookAdmission
from objectstore.statedir import StateDirStore
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


class Narrator:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.step = 0

    def heading(self, text: str) -> None:
        self.step += 1
        print(f"\n=== Step {self.step}: {text}", file=self.out, flush=True)

    def say(self, text: str = "", indent: int = 2) -> None:
        for line in text.splitlines() or [""]:
            print(" " * indent + line, file=self.out, flush=True)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = subparsers.add_parser("demo", help="run the local two-cluster federation demo")
    demo.add_argument(
        "--workdir", type=Path, default=Path("demo-state"), metavar="DIR",
        help="where the clusters' state and logs live; replaced on every run",
    )  # fmt: skip
    demo.set_defaults(handler=_run)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "istio_federation.cli", *args]


def _seed(cluster: Cluster, obj: dict[str, Any]) -> None:
    """Objects the cluster already has before federation (Services, Istio's ConfigMaps)."""
    path = canonical_path(cluster.state, obj)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump(obj))


def _prepare(cluster: Cluster, demo_ca: Authority, now: datetime.datetime) -> None:
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


def _context(demo_ca_pem: bytes) -> ssl.SSLContext:
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
def _servers(clusters: Sequence[Cluster], demo_ca_pem: bytes, logs: Path) -> Iterator[None]:
    processes: list[tuple[subprocess.Popen[bytes], str, Path]] = []
    try:
        for cluster in clusters:
            files = cluster.root / "files"
            cluster.exporter_port, cluster.webhook_port = _free_port(), _free_port()
            commands = {
                "exporter": _cli(
                    "exporter", "serve", "--cluster-uuid", cluster.uuid, "--cluster-domain", cluster.domain,
                    "--state", str(cluster.state), "--namespace", NAMESPACE,
                    "--host", "127.0.0.1", "--port", str(cluster.exporter_port), "--poll-interval", "0.2",
                    "--tls-cert-file", str(files / "exporter.crt"),
                    "--tls-private-key-file", str(files / "exporter.key"),
                ),
                "webhook": _cli(
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
        context = _context(demo_ca_pem)
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


def _wait_cached(cluster: Cluster, context: ssl.SSLContext, resource: str, count: int) -> None:
    """Let the webhook's watch cache catch up with the reconciler's writes (bounded)."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        _, body, _ = _get(f"https://127.0.0.1:{cluster.webhook_port}/readyz", context)
        if body.get("cached", {}).get(resource) == count:
            return
        time.sleep(0.1)


def _get(url: str, context: ssl.SSLContext) -> tuple[int, dict[str, Any], dict[str, str]]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - https only
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}"), dict(error.headers)


def _shorten_pems(document: Any) -> Any:
    if isinstance(document, dict):
        return {key: _shorten_pems(value) for key, value in document.items()}
    if isinstance(document, str) and document.startswith("-----BEGIN"):
        first = document.splitlines()[0]
        return f"{first} … ({len(document)} bytes)"
    return document


def _admin_store(cluster: Cluster, demo_ca_pem: bytes) -> StateDirStore:
    admission = WebhookAdmission(f"https://127.0.0.1:{cluster.webhook_port}/validate", demo_ca_pem.decode())
    store = StateDirStore(cluster.state, poll_interval=0, admission=admission, username="kubernetes-admin")
    store.start()
    return store


def _reconcile(cluster: Cluster, demo_ca_pem_file: Path, narrator: Narrator, *, expected_refusal: str = "") -> int:
    """One ``reconciler run --once``, its log lines, and what its exit status means here.

    ``expected_refusal`` explains a failure the story expects (the first sync, before the remote
    knows this cluster's key), so it does not read as an error.
    """
    command = _cli(
        "--log-level", "INFO", "reconciler", "run", "--once",
        "--cluster-uuid", cluster.uuid, "--local-trust-domain", cluster.domain,
        "--state", str(cluster.state), "--namespace", NAMESPACE, "--metrics-port", "0",
        "--admission-webhook", f"https://127.0.0.1:{cluster.webhook_port}/validate",
        "--admission-ca", str(demo_ca_pem_file), "--as", RECONCILER_USER,
    )  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    for line in (result.stderr + result.stdout).splitlines():
        message = line.split(": ", 1)[1] if " reconciler" in line.split(": ", 1)[0] and ": " in line else line
        if message.strip():
            narrator.say(message, indent=4)
    if result.returncode == 0:
        narrator.say(f"→ every federation of {cluster.name} synced (exit 0)", indent=4)
    elif expected_refusal:
        narrator.say(f"→ not synced yet, as expected (exit {result.returncode}): {expected_refusal}", indent=4)
    else:
        narrator.say(f"→ a federation of {cluster.name} did not sync (exit {result.returncode}): see above", indent=4)
    return result.returncode


def _conditions(cluster: Cluster, narrator: Narrator) -> None:
    store = StateDirStore(cluster.state, poll_interval=0)
    store.start()
    for federation in store.list(resources.ISTIO_FEDERATION):
        status = federation.get("status", {})
        narrator.say(
            f"{cluster.name}: IstioFederation {resources.name_of(federation)} "
            f"(importedServices={status.get('importedServices', 0)}, "
            f"lastSuccessfulSyncTime={status.get('lastSuccessfulSyncTime', '-')})"
        )
        for condition in status.get("conditions", []):
            narrator.say(
                f"{condition['type']:<30} {condition['status']:<8} {condition.get('reason', ''):<24} "
                f"{condition.get('message', '')}",
                indent=4,
            )


def _federation_status(cluster: Cluster, name: str) -> dict[str, Any]:
    store = StateDirStore(cluster.state, poll_interval=0)
    store.start()
    federation = store.get(resources.ISTIO_FEDERATION, "", name) or {}
    status: dict[str, Any] = federation.get("status") or {}
    return status


def kubectl_error(status: dict[str, Any], *, verb: str, filename: str) -> str:
    """What kubectl prints for a write the apiserver refused with this Status.

    An Invalid Status with causes reads ``The Kind "name" is invalid: cause`` (several causes each on
    a ``* `` line, after kubectl's own trailing space), as kubectl v1.32 prints it (README,
    tests/realcluster/test_20_kubectl_output.py); any other is ``Error from server (Reason): error
    when creating "file": message``.
    """
    details = status.get("details") if isinstance(status.get("details"), dict) else {}
    assert isinstance(details, dict)
    causes = [cause for cause in details.get("causes") or [] if isinstance(cause, dict)]
    if status.get("reason") == "Invalid" and (details.get("kind") or details.get("name")):
        head = f'The {details.get("kind", "")} "{details.get("name", "")}" is invalid'
        lines = [f"{cause.get('field', '')}: {cause.get('message', '')}" for cause in causes]
        if not lines:
            return head
        if len(lines) == 1:
            return f"{head}: {lines[0]}"
        return f"{head}: \n" + "\n".join(f"* {line}" for line in lines)
    reason = status.get("reason")
    prefix = f"Error from server ({reason})" if reason else "Error from server"
    return f'{prefix}: error when {verb} "{filename}": {status.get("message", "")}'


def _kubectl_apply(store: StateDirStore, obj: dict[str, Any], filename: str, narrator: Narrator) -> bool:
    narrator.say(f"$ kubectl apply -f {filename}")
    try:
        store.create(obj)
    except Rejected as error:
        status = error.status or {"message": str(error)}
        narrator.say(kubectl_error(status, verb="creating", filename=filename), indent=2)
        return False
    for warning in store.last_warnings:
        narrator.say(f"Warning: {warning}")
    kind = str(obj["kind"]).lower()
    group = resources.by_kind(str(obj["kind"]))
    suffix = f".{group.group}" if group and group.group else ""
    narrator.say(f"{kind}{suffix}/{resources.name_of(obj)} created")
    return True


def _federation(name: str, remote: Cluster, demo_ca_pem: bytes) -> dict[str, Any]:
    return {
        "apiVersion": "deckhouse.io/v1alpha1",
        "kind": "IstioFederation",
        "metadata": {"name": name},
        "spec": {
            "trustDomain": remote.domain,
            "metadataEndpoint": remote.metadata_endpoint,
            "metadata": {"ca": demo_ca_pem.decode()},
        },
    }


def _prepare_workdir(workdir: Path) -> None:
    if workdir.exists():
        if not (workdir / MARKER).exists():
            raise UsageError(f"--workdir {workdir} exists and was not made by the demo; choose another --workdir")
        shutil.rmtree(workdir)
    try:
        workdir.mkdir(parents=True)
        (workdir / MARKER).write_text("made by istio-federation demo; deleted by the next run\n")
    except OSError as error:
        raise UsageError(f"--workdir {workdir}: cannot create it: {error.strerror or error}") from None


def run(workdir: Path, out: TextIO = sys.stdout) -> int:
    started = time.monotonic()
    narrator = Narrator(out)
    workdir = workdir.resolve()
    _prepare_workdir(workdir)
    logs = workdir / "logs"
    logs.mkdir()
    now = datetime.datetime.now(datetime.UTC)
    demo_ca = Authority.generate(common_name("istio-federation demo web CA"), days=1, now=now)
    demo_ca_pem = demo_ca.certificate_pem()
    demo_ca_file = workdir / "demo-web-ca.crt"
    demo_ca_file.write_bytes(demo_ca_pem)
    a, b = Cluster("cluster-a", workdir / "cluster-a"), Cluster("cluster-b", workdir / "cluster-b")
    for cluster in (a, b):
        _prepare(cluster, demo_ca, now)
    narrator.say(
        "Two sovereign clusters, each with its own Istio root CA and Ed25519 identity:\n"
        f"  cluster-a.local  uuid {a.uuid}\n  cluster-b.local  uuid {b.uuid}\n"
        'cluster-b has Service xyz/bar labelled federation.istio.deckhouse.io/public-service="" and ingress\n'
        f"gateways at {', '.join(GATEWAYS['cluster-b'])} (port 15443). Starting exporters and webhooks…",
        indent=0,
    )
    context = _context(demo_ca_pem)
    with ExitStack() as stack:
        stack.enter_context(_servers((a, b), demo_ca_pem, logs))

        narrator.heading("the exporters publish their metadata")
        code, public, _ = _get(f"{b.metadata_endpoint}public/public.json", context)
        narrator.say(f"GET {b.metadata_endpoint}public/public.json → {code}")
        narrator.say(json.dumps(_shorten_pems(public), indent=2, ensure_ascii=False), indent=4)
        code, body, headers = _get(f"{b.metadata_endpoint}private/federation.json", context)
        narrator.say(f"GET {b.metadata_endpoint}private/federation.json (no token) → {code}")
        narrator.say(f"WWW-Authenticate: {headers.get('WWW-Authenticate', '')}", indent=4)
        narrator.say(json.dumps(body), indent=4)

        narrator.heading("an admin creates an IstioFederation in each cluster (admitted by that cluster's webhook)")
        admin_a, admin_b = _admin_store(a, demo_ca_pem), _admin_store(b, demo_ca_pem)
        narrator.say("cluster-a:")
        _kubectl_apply(admin_a, _federation("cluster-b", b, demo_ca_pem), "cluster-b-federation.yaml", narrator)
        narrator.say("cluster-b:")
        _kubectl_apply(admin_b, _federation("cluster-a", a, demo_ca_pem), "cluster-a-federation.yaml", narrator)

        narrator.heading("the reconcilers fetch public metadata, exchange keys, and fetch private metadata with JWTs")
        narrator.say(
            "cluster-a reconciles first. Its public step succeeds (cluster-b's root CA becomes trusted), but\n"
            "cluster-b's exporter does not know cluster-a's key yet and refuses its token (HTTP 401): this first\n"
            "refusal is expected, and is how mutual trust works; it clears once cluster-b has synced:"
        )
        _reconcile(
            a, demo_ca_file, narrator,
            expected_refusal="cluster-b has not fetched cluster-a's public metadata (and key) yet",
        )  # fmt: skip
        narrator.say(
            "cluster-b reconciles: it learns cluster-a's key, and cluster-a's exporter already knows cluster-b:"
        )
        _reconcile(b, demo_ca_file, narrator)
        narrator.say("cluster-a reconciles again, once cluster-b's exporter has seen cluster-a's key:")
        time.sleep(0.5)  # the exporter re-reads its state directory every 0.2 s
        result = 1
        for _ in range(5):  # bounded: each attempt is a full sync
            result = _reconcile(a, demo_ca_file, narrator)
            if result == 0:
                break
            time.sleep(0.5)

        narrator.heading("cluster-a now routes bar.xyz.svc.cluster-b.local through cluster-b's gateways")
        host = "bar.xyz.svc.cluster-b.local"
        name = ownership.managed_name(host)
        entry_path = a.state / NAMESPACE / "serviceentry" / f"{name}.yaml"
        rule_path = a.state / NAMESPACE / "destinationrule" / f"{name}.yaml"
        if entry_path.exists():
            narrator.say(f"ServiceEntry {NAMESPACE}/{name} ({entry_path.relative_to(workdir)}):")
            narrator.say(entry_path.read_text().rstrip(), indent=4)
        else:
            narrator.say(f"no ServiceEntry at {entry_path}: the federation did not sync; see {logs}")
        if rule_path.exists():
            rule = yaml.safe_load(rule_path.read_text())
            narrator.say(
                f"DestinationRule {NAMESPACE}/{name}: host {', '.join(hosts_of(rule))}, "
                f"tls mode {rule['spec']['trafficPolicy']['tls']['mode']}"
            )
        mesh = yaml.safe_load(
            yaml.safe_load((a.state / MESH_NAMESPACE / "configmap" / "istio.yaml").read_text())["data"]["mesh"]
        )
        for entry in mesh.get("caCertificates", []):
            narrator.say(
                f"mesh trust (ConfigMap {MESH_NAMESPACE}/istio): caCertificates entry for trustDomains "
                f"{entry.get('trustDomains')} = {_shorten_pems(entry.get('pem', ''))}"
            )

        private = _federation_status(a, "cluster-b").get("metadataCache", {}).get("private", {})
        narrator.say(
            "cluster-b's private metadata, as cluster-a fetched it with its JWT (status.metadataCache.private):"
        )
        narrator.say(json.dumps(private, indent=2, ensure_ascii=False), indent=4)

        narrator.heading("status conditions of both federations")
        _conditions(a, narrator)
        _conditions(b, narrator)

        narrator.heading("diagnostics: istio-federation check in cluster-a")
        check = subprocess.run(
            _cli("check", "--cluster-uuid", a.uuid, "--local-trust-domain", a.domain, "--state", str(a.state),
                 "--namespace", NAMESPACE),
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        narrator.say(f"$ istio-federation check --cluster-uuid {a.uuid} --local-trust-domain {a.domain} --state …")
        narrator.say((check.stdout + check.stderr).rstrip())
        narrator.say(f"(exit {check.returncode})")

        narrator.heading("admission at work: what kubectl apply users see")
        _wait_cached(a, context, "serviceentries", 1)
        hand_written = {
            "apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
            "metadata": {"name": "bar-by-hand", "namespace": "default"},
            "spec": {"hosts": [host], "location": "MESH_INTERNAL", "resolution": "DNS",
                     "ports": [{"name": "http", "number": 8080, "protocol": "HTTP"}]},
        }  # fmt: skip
        _kubectl_apply(admin_a, hand_written, "bar-by-hand.yaml", narrator)
        duplicate = _federation("cluster-b-again", b, demo_ca_pem)
        duplicate["spec"]["metadataEndpoint"] = f"https://localhost:{b.exporter_port}/metadata/"
        _kubectl_apply(admin_a, duplicate, "cluster-b-again.yaml", narrator)

    narrator.heading("inspect everything")
    narrator.say(f"cluster-a state: {a.state}\ncluster-b state: {b.state}\nlogs:            {logs}")
    narrator.say(
        f"e.g.  ls -R {a.state}   or   istio-federation validate --local-trust-domain cluster-a.local "
        f"--state {a.state} -f FILE"
    )
    narrator.say(f"\ndemo finished in {time.monotonic() - started:.1f} s", indent=0)
    return 0 if result == 0 and check.returncode == 0 else 1


def _run(args: argparse.Namespace) -> int:
    return run(args.workdir)
