"""The reference story against the Kubernetes API: two test doubles as two sovereign clusters.

Real components in Kubernetes mode, as separate processes: each cluster's webhook (called by its
double per manifests/), exporter over HTTPS and reconciler, all through the real ``kubernetes``
client. The doubles are test doubles, not clusters; everything talks over loopback.
"""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from federation import keys, ownership, resources
from federation.validation.attributes import DEFAULT_RECONCILER_USERNAME
from tests.kubeapi import KubeApiDouble
from tests.kubeapi.client import api_for, call
from tests.kubeapi.webhook import real_webhook
from tests.support import ServerProcess, cli_command, free_port

pytestmark = pytest.mark.slow

NAMESPACE = "istio-federation"
EXPORTER_USER = "system:serviceaccount:istio-federation:istio-federation-exporter"
IF_PATH = "/apis/deckhouse.io/v1alpha1/istiofederations"
HOST = "bar.xyz.svc.cluster-b.local"


@dataclass
class Cluster:
    name: str
    double: KubeApiDouble
    workdir: Path
    gateways: list[str]
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    exporter_port: int = field(default_factory=free_port)
    root_ca: trustme.CA = field(default_factory=trustme.CA)

    @property
    def domain(self) -> str:
        return f"{self.name}.local"

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.exporter_port}/metadata/"

    def kubeconfig(self, username: str) -> Path:
        path = self.workdir / f"{username.rsplit(':', 1)[-1]}.kubeconfig"
        self.double.add_user(username)
        self.double.write_kubeconfig(path, username)
        return path


def seed_cluster(cluster: Cluster) -> None:
    identity = keys.Keypair.generate()
    seeds: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio-ca-root-cert", "namespace": NAMESPACE},
         "data": {"root-cert.pem": cluster.root_ca.cert_pem.bytes().decode()}},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": "istio-federation-authn-keypair", "namespace": NAMESPACE},
         "stringData": {"priv.pem": identity.private_pem(deckhouse_labels=True), "pub.pem": identity.public_pem}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio", "namespace": "istio-system"},
         "data": {"mesh": f"trustDomain: {cluster.domain}\nenableAutoMtls: true\n"}},
    ]  # fmt: skip
    for position, address in enumerate(cluster.gateways):
        seeds.append({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": f"ingressgateway-{position}", "namespace": NAMESPACE,
                         "labels": {"app": "ingressgateway"}},
            "spec": {"type": "LoadBalancer", "ports": [{"name": "tls", "port": 15443, "protocol": "TCP"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": address}]}},
        })  # fmt: skip
    if cluster.name == "cluster-b":
        seeds.append({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "bar", "namespace": "xyz", "labels": {ownership.PUBLIC_SERVICE_LABEL: ""}},
            "spec": {"ports": [{"name": "http", "port": 8080}, {"name": "tls-db", "port": 5432}]},
        })  # fmt: skip
    for obj in seeds:
        cluster.double.seed(obj)


@contextlib.contextmanager
def exporter(cluster: Cluster, tls_ca: trustme.CA) -> Iterator[ServerProcess]:
    leaf = tls_ca.issue_cert("127.0.0.1", "localhost")
    leaf.private_key_pem.write_to_path(str(cluster.workdir / "exporter.key"))
    leaf.cert_chain_pems[0].write_to_path(str(cluster.workdir / "exporter.crt"))
    args = [
        "exporter", "serve", "--cluster-uuid", cluster.uuid, "--cluster-domain", cluster.domain,
        "--kubeconfig", str(cluster.kubeconfig(EXPORTER_USER)), "--namespace", NAMESPACE,
        "--host", "127.0.0.1", "--port", str(cluster.exporter_port),
        "--tls-cert-file", str(cluster.workdir / "exporter.crt"),
        "--tls-private-key-file", str(cluster.workdir / "exporter.key"),
    ]  # fmt: skip
    with ServerProcess(args, log_path=cluster.workdir / "exporter.log") as server:
        import ssl

        context = ssl.create_default_context()
        tls_ca.configure_trust(context)
        server.wait_http(f"{cluster.endpoint}public/public.json", context=context, timeout=30)
        yield server


def reconcile_once(cluster: Cluster) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(
            "reconciler", "run", "--once", "--cluster-uuid", cluster.uuid, "--local-trust-domain", cluster.domain,
            "--kubeconfig", str(cluster.kubeconfig(DEFAULT_RECONCILER_USERNAME)), "--namespace", NAMESPACE,
            "--metrics-port", "0", "--no-leader-election",
        ),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def federation(remote: Cluster, tls_ca: trustme.CA) -> dict[str, Any]:
    return {
        "apiVersion": "deckhouse.io/v1alpha1",
        "kind": "IstioFederation",
        "metadata": {"name": remote.name},
        "spec": {
            "trustDomain": remote.domain,
            "metadataEndpoint": remote.endpoint,
            "metadata": {"ca": tls_ca.cert_pem.bytes().decode()},
        },
    }


def conditions(obj: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in obj.get("status", {}).get("conditions", [])}


def test_two_clusters_federate_through_the_kubernetes_api(tmp_path: Path) -> None:
    tls_ca = trustme.CA()  # the "web PKI" both exporters' serving certificates chain to
    with contextlib.ExitStack() as stack:
        clusters = []
        for name, gateways in (("cluster-a", ["198.51.100.10"]), ("cluster-b", ["203.0.113.10", "203.0.113.11"])):
            double = KubeApiDouble()
            double.start()
            stack.callback(double.stop)
            workdir = tmp_path / name
            workdir.mkdir()
            cluster = Cluster(name, double, workdir, gateways)
            seed_cluster(cluster)
            stack.enter_context(real_webhook(double, workdir / "webhook", local_trust_domain=cluster.domain))
            clusters.append(cluster)
        a, b = clusters
        for cluster in clusters:
            stack.enter_context(exporter(cluster, tls_ca))
        for local, remote in ((a, b), (b, a)):
            admin = api_for(local.double, local.workdir)
            stack.callback(admin.close)
            code, body, _ = call(admin, "POST", IF_PATH, federation(remote, tls_ca))
            assert code == 201, body

        first = reconcile_once(a)
        assert first.returncode == 1  # cluster-b does not know cluster-a yet
        assert "the remote does not know this cluster yet" in first.stderr + first.stdout
        second = reconcile_once(b)
        assert second.returncode == 0, second.stderr
        results = []
        for _ in range(10):  # bounded: cluster-b's exporter learns cluster-a's key through its watch
            results.append(reconcile_once(a))
            if results[-1].returncode == 0:
                break
        assert results[-1].returncode == 0, results[-1].stderr

        name = ownership.managed_name(HOST)
        entry = a.double.get_object(resources.SERVICE_ENTRY, NAMESPACE, name)
        assert entry is not None
        assert entry["metadata"]["labels"] == ownership.ownership_labels("cluster-b")
        assert entry["metadata"]["annotations"][ownership.REMOTE_CLUSTER_UUID_ANNOTATION] == b.uuid
        assert entry["spec"]["hosts"] == [HOST]
        assert entry["spec"]["location"] == "MESH_INTERNAL"
        assert entry["spec"]["resolution"] == "STATIC"
        assert entry["spec"]["ports"] == [  # sorted by number, as Deckhouse renders them
            {"name": "tls-db", "number": 5432, "protocol": "TLS"},
            {"name": "http", "number": 8080, "protocol": "HTTP"},
        ]
        assert entry["spec"]["endpoints"] == [
            {"address": "203.0.113.10", "ports": {"tls-db": 15443, "http": 15443}},
            {"address": "203.0.113.11", "ports": {"tls-db": 15443, "http": 15443}},
        ]
        rule = a.double.get_object(resources.DESTINATION_RULE, NAMESPACE, name)
        assert rule is not None
        assert rule["spec"] == {"host": HOST, "exportTo": ["*"], "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}
        assert entry["spec"]["exportTo"] == ["*"]
        assert b.double.objects(resources.SERVICE_ENTRY) == []

        mesh_a = a.double.get_object(resources.CONFIG_MAP, "istio-system", "istio")
        assert mesh_a is not None
        mesh = yaml.safe_load(mesh_a["data"]["mesh"])
        assert mesh["enableAutoMtls"] is True  # other keys preserved
        assert mesh["caCertificates"] == [
            {"pem": b.root_ca.cert_pem.bytes().decode(), "trustDomains": ["cluster-b.local"]}
        ]

        fed_a = a.double.get_object(resources.ISTIO_FEDERATION, "", "cluster-b")
        fed_b = b.double.get_object(resources.ISTIO_FEDERATION, "", "cluster-a")
        assert fed_a is not None
        assert fed_b is not None
        assert fed_a["status"]["metadataCache"]["public"]["clusterUUID"] == b.uuid
        assert [s["hostname"] for s in fed_a["status"]["metadataCache"]["private"]["publicServices"]] == [HOST]
        assert fed_a["status"]["importedServices"] == 1
        assert fed_b["status"]["importedServices"] == 0
        for fed in (fed_a, fed_b):
            assert conditions(fed) == {
                "PublicMetadataExchangeReady": ("True", "Succeeded"),
                "PrivateMetadataExchangeReady": ("True", "Succeeded"),
                "Synced": ("True", "Synced"),
                "Stale": ("False", "Fresh"),
                "Ready": ("True", "Ready"),
            }
            assert all(c["observedGeneration"] == 1 for c in fed["status"]["conditions"])

        # Every write went through admission: the reconciler's ServiceEntry was reviewed as its user.
        reviews = [
            review["request"] for review in a.double.admission_log
            if review["request"]["resource"]["resource"] == "serviceentries"
        ]  # fmt: skip
        assert [(r["operation"], r["userInfo"]["username"]) for r in reviews] == [
            ("CREATE", DEFAULT_RECONCILER_USERNAME)
        ]
        rule_reviews = [
            review["request"] for review in a.double.admission_log
            if review["request"]["resource"]["resource"] == "destinationrules"
        ]  # fmt: skip
        assert [(r["operation"], r["userInfo"]["username"]) for r in rule_reviews] == [
            ("CREATE", DEFAULT_RECONCILER_USERNAME)
        ]

        # A second sync with nothing changed writes nothing.
        before = a.double.resource_version
        again = reconcile_once(a)
        assert again.returncode == 0, again.stderr
        assert a.double.resource_version == before

        # Diagnostics in Kubernetes mode: every check passes, and check only reads.
        before = a.double.resource_version
        diagnosis = subprocess.run(
            cli_command(
                "check", "cluster-b", "--cluster-uuid", a.uuid, "--local-trust-domain", a.domain,
                "--kubeconfig", str(a.kubeconfig(DEFAULT_RECONCILER_USERNAME)), "--namespace", NAMESPACE,
            ),
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert diagnosis.returncode == 0, diagnosis.stdout + diagnosis.stderr
        assert "  ✓ services: 1 imported of 1 exported" in diagnosis.stdout.splitlines()
        assert diagnosis.stdout.splitlines()[-1] == "all 7 checks passed"
        assert a.double.resource_version == before
