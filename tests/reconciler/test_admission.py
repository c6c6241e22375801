"""The reconciler's writes admitted by the real webhook, on both backends.

* Kubernetes mode: the API test double calls the webhook (a real ``webhook serve`` over TLS) per
  ``manifests/webhook``, and the reconciler talks to the double with the real ``kubernetes`` client
  as the reconciler's ServiceAccount.
* State mode: ``--admission-webhook`` sends the state store's writes through the same webhook.

The remote is the Deckhouse fixture.  It offers bar (importable) and baz, whose host a hand-written
ServiceEntry already declares; the webhook denies baz, and the denial must be recorded for baz
only, in status and an Event, while bar is imported.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
import yaml

from federation import conditions, resources
from federation.keys import Keypair
from federation.store import ObjectStore, Watch
from federation.validation.attributes import DEFAULT_RECONCILER_USERNAME
from objectstore import kube, kubeapi
from objectstore.admission import WebhookAdmission
from objectstore.statedir import StateDirStore
from reconciler.events import CLUSTER_SCOPED_EVENT_NAMESPACE
from reconciler.options import watches
from tests.deckhouse_fixture import DeckhouseExporter
from tests.kubeapi.server import KubeApiDouble
from tests.reconciler.harness import (
    MESH_NAMESPACE,
    NAMESPACE,
    SEED_NAME,
    Harness,
    ca_pem,
    deckhouse_remote,
    federation,
    mesh_config_map,
    write_state,
)
from tests.support import REPO_ROOT, ServerProcess, free_port, wait_until

pytestmark = pytest.mark.slow

BAZ_HOST = "baz.xyz.svc.cluster-b.local"
BAZ_NAME = "baz-xyz-svc-cluster-b-local-72k7zq8t8pld7bbt"
WEBHOOK_SERVICE = ("istio-federation", "istio-federation-webhook")
SE_WEBHOOK = "serviceentries.istio-federation.deckhouse.io"


def hand_written_baz() -> dict[str, object]:
    """Declares baz's host; written before the federation existed, so nothing admitted it."""
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "legacy-baz", "namespace": "shop"},
        "spec": {
            "hosts": [BAZ_HOST],
            "location": "MESH_EXTERNAL",
            "resolution": "DNS",
            "ports": [{"name": "http", "number": 80, "protocol": "HTTP"}],
        },
    }


@pytest.fixture
def remote(server_ca: trustme.CA, keypair: Keypair) -> Iterator[DeckhouseExporter]:
    with deckhouse_remote(server_ca, keypair) as exporter:
        exporter.cluster.services.append({"hostname": BAZ_HOST, "ports": [{"name": "http", "port": 80}]})
        yield exporter


def run_webhook(tmp_path: Path, store_args: list[str]) -> tuple[list[str], trustme.CA, int, Path]:
    tls_dir = tmp_path / "webhook-tls"
    tls_dir.mkdir()
    ca = trustme.CA()
    issued = ca.issue_cert("istio-federation-webhook.istio-federation.svc", "127.0.0.1", "localhost")
    issued.cert_chain_pems[0].write_to_path(str(tls_dir / "tls.crt"))
    issued.private_key_pem.write_to_path(str(tls_dir / "tls.key"))
    port = free_port()
    args = [
        "webhook", "serve",
        "--tls-cert-file", str(tls_dir / "tls.crt"), "--tls-private-key-file", str(tls_dir / "tls.key"),
        "--host", "127.0.0.1", "--port", str(port),
        "--local-trust-domain", "cluster-a.local",
        "--reconciler-username", DEFAULT_RECONCILER_USERNAME,
        *store_args,
    ]  # fmt: skip
    return args, ca, port, tmp_path / "webhook.log"


def wait_ready(server: ServerProcess, ca: trustme.CA, port: int) -> None:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    server.wait_http(f"https://127.0.0.1:{port}/readyz", context=context)


def assert_baz_denied_and_bar_imported(harness: Harness) -> None:
    assert harness.service_entry(SEED_NAME) is not None
    assert harness.destination_rule(SEED_NAME) is not None
    assert harness.service_entry(BAZ_NAME) is None
    assert harness.destination_rule(BAZ_NAME) is None  # not created alone when its ServiceEntry is denied
    services = {s["hostname"]: s for s in harness.status()["services"]}
    assert services["bar.xyz.svc.cluster-b.local"]["state"] == "Imported"
    denial = services[BAZ_HOST]
    assert denial["state"] == "Denied"
    assert denial["message"].startswith(f'admission webhook "{SE_WEBHOOK}" denied the request: ')
    assert "shop/legacy-baz" in denial["message"]
    synced = harness.condition(conditions.SYNCED)
    assert synced["reason"] == "ServicesDenied"
    assert synced["message"] == (
        f"Imported 1 service, skipped 0, denied 1. Denied by admission: {BAZ_HOST}."
    )
    (event,) = harness.events("ServiceDenied")
    assert event["message"] == f"{BAZ_HOST}: {denial['message']}"
    assert event["involvedObject"]["name"] == "cluster-b"


# -- Kubernetes mode -------------------------------------------------------------------------


@pytest.fixture
def kube_world(
    kube_api: KubeApiDouble, tmp_path: Path, remote: DeckhouseExporter, server_ca: trustme.CA, keypair: Keypair
) -> Iterator[Harness]:
    admin_config = tmp_path / "admin.kubeconfig"
    kube_api.write_kubeconfig(admin_config)
    args, webhook_ca, port, log_path = run_webhook(tmp_path, ["--kubeconfig", str(admin_config)])
    kube_api.seed(federation("cluster-b", remote.endpoint, ca=ca_pem(server_ca)))
    kube_api.seed(mesh_config_map())
    kube_api.seed(hand_written_baz())
    with ServerProcess(args, log_path=log_path) as server:
        wait_ready(server, webhook_ca, port)
        vwc = yaml.safe_load((REPO_ROOT / "manifests" / "webhook" / "validatingwebhookconfiguration.yaml").read_text())
        for hook in vwc["webhooks"]:
            hook["clientConfig"]["caBundle"] = base64.b64encode(webhook_ca.cert_pem.bytes()).decode()
        kube_api.register_webhooks(vwc, {WEBHOOK_SERVICE: ("127.0.0.1", port)})
        reconciler_config = tmp_path / "reconciler.kubeconfig"
        kube_api.write_kubeconfig(reconciler_config, DEFAULT_RECONCILER_USERNAME)
        store = kube.KubernetesStore(
            kubeapi.connect(str(reconciler_config), False),
            [
                *watches(NAMESPACE, MESH_NAMESPACE, mesh_trust=True),
                Watch(resources.EVENT, CLUSTER_SCOPED_EVENT_NAMESPACE),
            ],
        )
        store.start()
        try:
            assert store.wait_synced(15)
            yield Harness(store, keypair, mesh_create=False)
        finally:
            store.stop()


def test_kubernetes_mode_seed_case_denial_and_zero_writes(kube_world: Harness, remote: DeckhouseExporter) -> None:
    report = kube_world.sync()

    (result,) = report.results
    assert result.ok  # a denial is recorded for its service; the sync itself completed
    entry = kube_world.service_entry(SEED_NAME)
    assert entry is not None
    assert entry["spec"]["endpoints"] == [
        {"address": "10.0.0.10", "ports": {"http": 15443}},
        {"address": "10.0.0.11", "ports": {"http": 15443}},
    ]
    assert_baz_denied_and_bar_imported(kube_world)
    assert kube_world.federation_pems() == [remote.cluster.root_ca_pem]

    assert wait_until(lambda: kube_world.store.get(resources.SERVICE_ENTRY, NAMESPACE, SEED_NAME) is not None)
    assert wait_until(lambda: _cache_caught_up(kube_world.store))
    before = kube_world.store.writes.total
    kube_world.sync()
    assert kube_world.store.writes.total == before


def test_kubernetes_mode_garbage_collection(kube_world: Harness, remote: DeckhouseExporter) -> None:
    kube_world.sync()
    remote.cluster.services = []
    assert wait_until(lambda: _cache_caught_up(kube_world.store))

    kube_world.sync()

    assert kube_world.service_entry(SEED_NAME) is None
    assert kube_world.destination_rule(SEED_NAME) is None
    legacy = kube_world.store.read(resources.SERVICE_ENTRY, "shop", "legacy-baz")
    assert legacy is not None  # never ours, never touched


def _cache_caught_up(store: ObjectStore) -> bool:
    """The watch cache has seen our last writes (status included), so a sync compares like for like."""
    fresh = store.read(resources.ISTIO_FEDERATION, "", "cluster-b")
    cached = store.get(resources.ISTIO_FEDERATION, "", "cluster-b")
    entries_fresh = store.read(resources.SERVICE_ENTRY, NAMESPACE, SEED_NAME)
    entries_cached = store.get(resources.SERVICE_ENTRY, NAMESPACE, SEED_NAME)
    return fresh == cached and entries_fresh == entries_cached


# -- state mode ------------------------------------------------------------------------------


def test_state_mode_writes_go_through_the_webhook(
    tmp_path: Path, remote: DeckhouseExporter, server_ca: trustme.CA, keypair: Keypair
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    objects = (federation("cluster-b", remote.endpoint, ca=ca_pem(server_ca)), mesh_config_map(), hand_written_baz())
    write_state(state, *objects)
    args, webhook_ca, port, log_path = run_webhook(tmp_path, ["--state", str(state)])
    with ServerProcess(args, log_path=log_path) as server:
        wait_ready(server, webhook_ca, port)
        admission = WebhookAdmission(f"https://127.0.0.1:{port}/validate", webhook_ca.cert_pem.bytes().decode())
        store = StateDirStore(state, [], poll_interval=0, admission=admission, username=DEFAULT_RECONCILER_USERNAME)
        store.start()
        try:
            harness = Harness(store, keypair)
            harness.sync()
            assert_baz_denied_and_bar_imported(harness)
            before = store.writes.total
            harness.sync()
            assert store.writes.total == before
        finally:
            store.stop()


def test_state_mode_as_someone_else_is_denied_for_every_service(
    tmp_path: Path, remote: DeckhouseExporter, server_ca: trustme.CA, keypair: Keypair
) -> None:
    """The webhook protects managed objects: only the reconciler's identity may write them."""
    state = tmp_path / "state"
    state.mkdir()
    write_state(state, federation("cluster-b", remote.endpoint, ca=ca_pem(server_ca)), mesh_config_map())
    args, webhook_ca, port, log_path = run_webhook(tmp_path, ["--state", str(state)])
    with ServerProcess(args, log_path=log_path) as server:
        wait_ready(server, webhook_ca, port)
        admission = WebhookAdmission(f"https://127.0.0.1:{port}/validate", webhook_ca.cert_pem.bytes().decode())
        store = StateDirStore(state, [], poll_interval=0, admission=admission, username="mallory")
        store.start()
        try:
            harness = Harness(store, keypair)
            harness.sync()
            states = {s["hostname"]: s["state"] for s in harness.status()["services"]}
        finally:
            store.stop()
    assert states == {"bar.xyz.svc.cluster-b.local": "Denied", BAZ_HOST: "Denied"}
