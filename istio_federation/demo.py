"""``istio-federation demo``: the reference story, on loopback, in well under a minute.

Two sovereign clusters, cluster-a.local and cluster-b.local, each with its own Istio root CA, its
own Ed25519 identity, and a state directory as its object store.  Each runs the real components
as separate processes: an exporter over HTTPS, the admission webhook, and the reconciler.  Objects
an admin would ``kubectl apply`` go through the cluster's webhook, as the apiserver would send them.

This module tells the story and plays the admin; setting up the clusters and running their servers
is :mod:`istio_federation.demo_clusters`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TextIO

import yaml

from certs.authority import Authority, common_name
from federation import ownership, resources
from federation.istio.hosts import hosts_of
from federation.store import Rejected
from istio_federation.demo_clusters import (
    GATEWAYS,
    MESH_NAMESPACE,
    NAMESPACE,
    READY_TIMEOUT,
    RECONCILER_USER,
    Cluster,
    cli_command,
    prepare_cluster,
    prepare_workdir,
    running_servers,
    tls_context,
)
from objectstore.admission import WebhookAdmission
from objectstore.statedir import StateDirStore


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
    command = cli_command(
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


def run(workdir: Path, out: TextIO = sys.stdout) -> int:
    started = time.monotonic()
    narrator = Narrator(out)
    workdir = workdir.resolve()
    prepare_workdir(workdir)
    logs = workdir / "logs"
    logs.mkdir()
    now = datetime.datetime.now(datetime.UTC)
    demo_ca = Authority.generate(common_name("istio-federation demo web CA"), days=1, now=now)
    demo_ca_pem = demo_ca.certificate_pem()
    demo_ca_file = workdir / "demo-web-ca.crt"
    demo_ca_file.write_bytes(demo_ca_pem)
    a, b = Cluster("cluster-a", workdir / "cluster-a"), Cluster("cluster-b", workdir / "cluster-b")
    for cluster in (a, b):
        prepare_cluster(cluster, demo_ca, now)
    narrator.say(
        "Two sovereign clusters, each with its own Istio root CA and Ed25519 identity:\n"
        f"  cluster-a.local  uuid {a.uuid}\n  cluster-b.local  uuid {b.uuid}\n"
        'cluster-b has Service xyz/bar labelled federation.istio.deckhouse.io/public-service="" and ingress\n'
        f"gateways at {', '.join(GATEWAYS['cluster-b'])} (port 15443). Starting exporters and webhooks…",
        indent=0,
    )
    context = tls_context(demo_ca_pem)
    with ExitStack() as stack:
        stack.enter_context(running_servers((a, b), demo_ca_pem, logs))

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
            cli_command("check", "--cluster-uuid", a.uuid, "--local-trust-domain", a.domain, "--state", str(a.state),
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
