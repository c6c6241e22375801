"""Kubernetes-mode write benchmark against a real kube-apiserver with the webhook registered.

    .venv/bin/python -m tests.bench.kube [--services 2500] [--concurrency 1,4,8,16,32]

Starts one real etcd + kube-apiserver v1.20.2 (``tests/realcluster``), installs the Istio CRDs and
the IstioFederation CRD, runs ``istio-federation webhook serve`` against it and registers the
shipped ValidatingWebhookConfiguration (its clientConfig pointed at loopback, as the real-cluster
tier does), so every create below is admitted by the webhook.  Then, each in its own process and
each for its own federation's objects (the ServiceEntries and DestinationRules a sync of S
services writes):

* a bare client: the same ``kubernetes`` client, POSTing the objects from N threads, nothing else;
* the reconciler's Applier over the KubernetesStore (list+watch cache, retries), N writes in flight.

Prints objects/s of each, their ratio, and the Applier process's RSS.  Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme

from federation import desired, resources
from federation.documents.private import parse_private
from federation.resources import KubeObject
from reconciler.apply import DEFAULT_WRITE_CONCURRENCY
from tests.bench import stop_cleanly_on_sigterm
from tests.support import REPO_ROOT, ServerProcess, free_port

NAMESPACE = "istio-federation"
LOCAL_DOMAIN = "cluster-a.local"
ADMIN = "admin"  # the admin token's user: the webhook is told it is the reconciler


def desired_objects(federation: str, services: int) -> list[KubeObject]:
    """What a sync of ``federation`` (trust domain ``<federation>.local``) with S services writes."""
    domain = f"{federation}.local"
    private = parse_private(
        {
            "ingressGateways": [{"address": "192.0.2.10", "port": 15443}, {"address": "192.0.2.11", "port": 15443}],
            "publicServices": [
                {"hostname": f"svc{i}.ns{i % 20}.svc.{domain}", "ports": [{"name": "http", "port": 8080}]}
                for i in range(services)
            ],
        }
    )
    settings = desired.FederationSettings(
        federation_name=federation,
        namespace=NAMESPACE,
        trust_domain=domain,
        remote_cluster_uuid="5d6c1e2f-0000-4000-8000-0000000000b2",
        local_trust_domain=LOCAL_DOMAIN,
    )
    return list(desired.desired_state(private, settings).objects)


PER_FEDERATION = 5000


def shares(federation: str, services: int) -> list[tuple[str, int]]:
    """``services`` split into federations of at most PER_FEDERATION (one, under its own name, if it fits)."""
    if services <= PER_FEDERATION:
        return [(federation, services)]
    return [
        (f"{federation}-{number}", min(PER_FEDERATION, services - start))
        for number, start in enumerate(range(0, services, PER_FEDERATION))
    ]


def federation_object(name: str) -> KubeObject:
    return {
        "apiVersion": resources.ISTIO_FEDERATION.api_version,
        "kind": resources.ISTIO_FEDERATION.kind,
        "metadata": {"name": name},
        "spec": {"trustDomain": f"{name}.local", "metadataEndpoint": f"https://{name}.example.com/metadata/"},
    }


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# -- the two writers, each run in a child process ------------------------------------------------


def bare(kubeconfig: str, federation: str, services: int, concurrency: int) -> dict[str, Any]:
    from objectstore import kubeapi
    from reconciler.placement import hostname_of

    client = kubeapi.connect(kubeconfig, False)
    objects = desired_objects(federation, services)
    by_host: dict[str, list[KubeObject]] = {}
    for obj in sorted(objects, key=lambda o: (hostname_of(o), o["kind"] != "ServiceEntry")):
        by_host.setdefault(hostname_of(obj), []).append(obj)

    def post(group: list[KubeObject]) -> int:
        failures = 0
        for obj in group:
            resource = resources.by_kind(obj["kind"])
            assert resource is not None
            path = kubeapi.resource_path(resource, NAMESPACE)
            request = client.param_serialize(
                "POST", path, header_params={"Accept": "application/json", "Content-Type": "application/json"},
                body=obj, auth_settings=["BearerToken"],
            )  # fmt: skip
            response: Any = client.call_api(*request, _request_timeout=30)
            response.read()
            failures += response.status != 201
        return failures

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        failures = sum(pool.map(post, by_host.values()))
    elapsed = time.monotonic() - started
    return {"objects": len(objects), "seconds": elapsed, "failures": failures, "rss_mib": rss_mib()}


def applier(kubeconfig: str, federation: str, services: int, concurrency: int) -> dict[str, Any]:
    from federation import ownership
    from federation.store import Watch
    from objectstore import kube, kubeapi
    from reconciler.apply import Applier
    from reconciler.retry import Retry

    store = kube.KubernetesStore(
        kubeapi.connect(kubeconfig, False),
        [
            Watch(resources.ISTIO_FEDERATION),
            Watch(resources.SERVICE_ENTRY, NAMESPACE, ownership.selector()),
            Watch(resources.DESTINATION_RULE, NAMESPACE, ownership.selector()),
        ],
    )
    store.start()
    try:
        if not store.wait_synced(120):
            raise RuntimeError("the store did not sync")
        writer = Applier(store, Retry(), concurrency=concurrency)
        written = failures = 0
        # At most PER_FEDERATION services each, as a remote offers them: federation-0, federation-1, ...
        # Planned before the clock starts, as the bare client's objects are: writes are what is timed.
        plans = [(name, desired_objects(name, count)) for name, count in shares(federation, services)]
        started = time.monotonic()
        for name, plan in plans:
            outcome = writer.apply(name, plan, gc=False)
            written += len(outcome.written)
            failures += len(outcome.denied) + len(outcome.failed) + len(outcome.blocked)
        elapsed = time.monotonic() - started
        writer.close()
        return {"objects": written, "seconds": elapsed, "failures": failures, "rss_mib": rss_mib()}
    finally:
        store.stop()


def child(role: str, kubeconfig: str, federation: str, services: int, concurrency: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "tests.bench.kube", "--child", role, kubeconfig, federation,
               str(services), str(concurrency)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False, cwd=REPO_ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{role} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- the cluster ---------------------------------------------------------------------------------


@dataclass
class KubeFigures:
    services: int
    concurrency: int
    bare_rate: float
    applier_rate: float
    applier_rss_mib: float
    failures: int

    @property
    def ratio(self) -> float:
        return self.applier_rate / self.bare_rate if self.bare_rate else 0.0


@dataclass
class MemoryFigure:
    objects: int
    seconds: float
    rss_mib: float


def measure(
    services: int, concurrencies: list[int], *, work: Path, memory_services: int = 0, rounds: int = 3
) -> tuple[list[KubeFigures], MemoryFigure | None]:
    """The sweep, ``rounds`` times at each number of writes in flight, bare client and Applier in
    turn (which goes first alternates), medians compared: one round is at the mercy of a neighbour's
    burst. With ``memory_services``, then one Applier run of that size alone (its RSS)."""
    from tests.realcluster import build
    from tests.realcluster.cluster import Cluster, stop_all
    from tests.realcluster.world import ISTIO_CRDS, MANIFESTS, load_yaml_documents, patch_webhook_client

    binaries = build.cached() or build.build()
    cluster = Cluster("cluster-a", binaries, work / "cluster-a")
    figures: list[KubeFigures] = []
    memory: MemoryFigure | None = None
    try:
        cluster.start()
        cluster.wait_ready()
        cluster.apply(load_yaml_documents(ISTIO_CRDS.read_text()))
        cluster.apply(load_yaml_documents((MANIFESTS / "crd" / "istiofederation.yaml").read_text()))
        cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        names = [f"{role}{n}-{r}" for role in ("bare", "applier") for n in concurrencies for r in range(rounds)]
        names += [name for name, _ in shares("memory", memory_services)] if memory_services else []
        cluster.apply([federation_object(name) for name in names])
        ca = trustme.CA()
        leaf = ca.issue_cert("127.0.0.1")
        leaf.private_key_pem.write_to_path(str(work / "tls.key"))
        leaf.cert_chain_pems[0].write_to_path(str(work / "tls.crt"))
        port = free_port()
        args = ["--log-level", "WARNING", "webhook", "serve", "--kubeconfig", str(cluster.admin_kubeconfig),
                "--tls-cert-file", str(work / "tls.crt"), "--tls-private-key-file", str(work / "tls.key"),
                "--host", "127.0.0.1", "--port", str(port), "--local-trust-domain", LOCAL_DOMAIN,
                "--reconciler-username", ADMIN]  # fmt: skip
        with ServerProcess(args, log_path=work / "webhook.log") as server:
            import ssl

            context = ssl.create_default_context()
            ca.configure_trust(context)
            server.wait_http(f"https://127.0.0.1:{port}/readyz", context=context, timeout=120)
            configurations = load_yaml_documents(
                (MANIFESTS / "webhook" / "validatingwebhookconfiguration.yaml").read_text()
            )
            patch_webhook_client(configurations, f"https://127.0.0.1:{port}", ca.cert_pem.bytes())
            cluster.apply(configurations)
            time.sleep(2)  # the apiserver picks the configuration up from its own watch
            kubeconfig = str(cluster.admin_kubeconfig)
            for concurrency in concurrencies:
                runs: dict[str, list[dict[str, Any]]] = {"bare": [], "applier": []}
                for number in range(rounds):
                    for role in ("bare", "applier") if number % 2 == 0 else ("applier", "bare"):
                        runs[role].append(child(role, kubeconfig, f"{role}{concurrency}-{number}", services,
                                                concurrency))  # fmt: skip
                figures.append(
                    KubeFigures(
                        services,
                        concurrency,
                        statistics.median(run["objects"] / run["seconds"] for run in runs["bare"]),
                        statistics.median(run["objects"] / run["seconds"] for run in runs["applier"]),
                        max(run["rss_mib"] for run in runs["applier"]),
                        sum(int(run["failures"]) for role_runs in runs.values() for run in role_runs),
                    )
                )
                print_figures(figures[-1:], header=len(figures) == 1)
            if memory_services:
                alone = child("applier", kubeconfig, "memory", memory_services, DEFAULT_WRITE_CONCURRENCY)
                memory = MemoryFigure(int(alone["objects"]), float(alone["seconds"]), float(alone["rss_mib"]))
                print(f"Applier alone, {memory.objects} objects created and cached: {memory.seconds:.0f} s, "
                      f"RSS {memory.rss_mib:.0f} MiB", flush=True)  # fmt: skip
    finally:
        cluster.stop()
        stop_all()
    return figures, memory


def print_figures(figures: list[KubeFigures], *, header: bool = True) -> None:
    if header:
        print("writes in flight   bare client   Applier+KubernetesStore   ratio   Applier RSS   failures")
    for figure in figures:
        print(
            f"{figure.concurrency:>16}   {figure.bare_rate:8.0f}/s   {figure.applier_rate:18.0f}/s   "
            f"{figure.ratio:5.2f}   {figure.applier_rss_mib:7.0f} MiB   {figure.failures}",
            flush=True,
        )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        role, kubeconfig, federation, services, concurrency = sys.argv[2:7]
        run = bare if role == "bare" else applier
        print(json.dumps(run(kubeconfig, federation, int(services), int(concurrency))))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--services", type=int, default=2500, help="services per run (2 objects each)")
    parser.add_argument("--concurrency", default="1,4,8,16,32", help="writes in flight, comma-separated")
    parser.add_argument("--memory-services", type=int, default=0, help="then one Applier run of this size alone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        print(f"{args.services * 2} objects per run, real kube-apiserver with the webhook registered:")
        measure(args.services, [int(n) for n in args.concurrency.split(",")], work=Path(work),
                memory_services=args.memory_services)  # fmt: skip


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    stop_cleanly_on_sigterm()
    main()
