"""Builders shared by the reconciler tests (no tests here): the local cluster, a clock, a syncer.

The local cluster is cluster-a.local; the remote is cluster-b.local, served either by
``tests/deckhouse_fixture.py`` or by the project's own exporter.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trustme
import yaml

from federation import meshconfig, ownership, resources
from federation.keys import Keypair
from federation.resources import KubeObject
from federation.store import ObjectStore
from objectstore.statedir import StateDirStore
from objectstore.stateformat import dump
from reconciler.dryrun import DryRunStore
from reconciler.events import CLUSTER_SCOPED_EVENT_NAMESPACE, EventRecorder
from reconciler.fetch import Fetcher, Limits
from reconciler.heap import Heap
from reconciler.loop import LoopSettings, Reconciler, RunReport
from reconciler.meshtrust import MeshTrust
from reconciler.metrics import ReconcilerMetrics
from reconciler.observation import LocalCluster
from reconciler.retry import Retry
from reconciler.sync import Syncer, SyncSettings
from tests.deckhouse_fixture import DeckhouseCluster, DeckhouseExporter

LOCAL_UUID = "a1a1a1a1-0000-4000-8000-0000000000a1"
LOCAL_DOMAIN = "cluster-a.local"
REMOTE_DOMAIN = "cluster-b.local"
NAMESPACE = "istio-federation"
MESH_NAMESPACE = "istio-system"
SEED_HOST = "bar.xyz.svc.cluster-b.local"
SEED_NAME = "bar-xyz-svc-cluster-b-local-9qv7cmchrxqdhvnv"
ORIGINAL_MESH = """\
# Istio's own settings: the reconciler must keep every one of them.
defaultConfig:
  discoveryAddress: istiod.istio-system.svc:15012
  proxyMetadata:
    ISTIO_META_DNS_CAPTURE: "true"
rootNamespace: istio-system
trustDomain: cluster-a.local
caCertificates:
- pem: |
    -----BEGIN CERTIFICATE-----
    admin-added
    -----END CERTIFICATE-----
  trustDomains: [partner.example]
"""


class Clock:
    """A clock tests move by hand, so Stale and rotation are tested without waiting."""

    def __init__(self, start: datetime | None = None) -> None:
        # Real time when the test starts (not when the module was imported): remotes check a
        # token's exp against their own clock, and a full run imports this minutes earlier.
        self.now = start or datetime.now(UTC).replace(microsecond=0)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self.now += delta


def ca_pem(ca: trustme.CA) -> str:
    return ca.cert_pem.bytes().decode()


def federation(
    name: str, endpoint: str, *, ca: str, trust_domain: str = REMOTE_DOMAIN, generation: int = 1
) -> KubeObject:
    return {
        "apiVersion": resources.ISTIO_FEDERATION.api_version,
        "kind": resources.ISTIO_FEDERATION.kind,
        "metadata": {"name": name, "generation": generation},
        "spec": {"trustDomain": trust_domain, "metadataEndpoint": endpoint, "metadata": {"ca": ca}},
    }


def mesh_config_map(text: str = ORIGINAL_MESH) -> KubeObject:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": meshconfig.CONFIG_MAP_NAME, "namespace": MESH_NAMESPACE},
        "data": {"mesh": text, "meshNetworks": "networks: {}\n"},
    }


def write_state(root: Path, *objects: KubeObject) -> None:
    """Objects as files, the way an admin (or GitOps) puts them there: no admission involved."""
    for obj in objects:
        namespace = resources.namespace_of(obj) or "_cluster"
        path = root / namespace / str(obj["kind"]).lower() / f"{resources.name_of(obj)}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump(obj), encoding="utf-8")


def open_state(root: Path, **kwargs: Any) -> StateDirStore:
    store = StateDirStore(root, [], poll_interval=0, **kwargs)
    store.start()
    return store


class Harness:
    """One local cluster (a store) with a syncer, mesh trust and a loop, around a fake clock.

    ``sync(dry_run=True)`` runs a second, fresh set of the same parts on a ``DryRunStore`` around
    the store, as ``reconciler run --dry-run`` does; ``last_dry_run`` is that store afterwards.
    """

    def __init__(
        self,
        store: ObjectStore,
        keypair: Keypair,
        *,
        clock: Clock | None = None,
        limits: Limits | None = None,
        stale_after: timedelta = timedelta(minutes=5),
        expire_after: timedelta | None = None,
        ca_overlap: timedelta = timedelta(hours=24),
        mesh_create: bool = True,
        interval: float = 60.0,
        concurrency: int = 4,
        local: LocalCluster | None = None,
        heap: Heap | None = None,
    ) -> None:
        self.heap = heap  # None: tests leave the process's garbage collector as it is
        self.store = store
        self.clock = clock or Clock()
        self.stop = threading.Event()
        self.metrics = ReconcilerMetrics()
        self.retry = Retry(stop=self.stop, base_delay=0.01, max_delay=0.05)
        self.settings = SyncSettings(
            local=local or LocalCluster(LOCAL_UUID, LOCAL_DOMAIN),
            namespace=NAMESPACE,
            stale_after=stale_after,
            expire_after=expire_after,
            ca_overlap=ca_overlap,
        )
        self.keypair = keypair
        self.fetcher = Fetcher(limits or Limits(connect_timeout=2.0, total_timeout=5.0))
        self.mesh_create = mesh_create
        self.loop_settings = LoopSettings(interval=interval, concurrency=concurrency, tick=0.05)
        self.reconciler = self._reconciler(store, self.metrics)
        self.syncer = self.reconciler.syncer
        assert self.reconciler.mesh_trust is not None
        self.mesh = self.reconciler.mesh_trust
        self.last_dry_run: DryRunStore | None = None

    def _reconciler(self, store: ObjectStore, metrics: ReconcilerMetrics) -> Reconciler:
        syncer = Syncer(
            store,
            self.settings,
            self.keypair,
            fetcher=self.fetcher,
            retry=self.retry,
            metrics=metrics,
            events_recorder=EventRecorder(store, NAMESPACE, clock=self.clock),
            clock=self.clock,
        )
        mesh = MeshTrust(
            store,
            self.retry,
            namespace=MESH_NAMESPACE,
            local_trust_domain=LOCAL_DOMAIN,
            create_if_absent=self.mesh_create,
        )
        return Reconciler(
            store,
            syncer,
            mesh_trust=mesh,
            settings=self.loop_settings,
            stop=self.stop,
            metrics=metrics,
            retry=self.retry,
            heap=self.heap,
        )

    def sync(self, *, dry_run: bool = False) -> RunReport:
        if not dry_run:
            return self.reconciler.sync_once()
        self.last_dry_run = DryRunStore(self.store)
        return self._reconciler(self.last_dry_run, ReconcilerMetrics()).sync_once()

    def federation(self, name: str = "cluster-b") -> KubeObject:
        found = self.store.read(resources.ISTIO_FEDERATION, "", name)
        assert found is not None
        return found

    def status(self, name: str = "cluster-b") -> dict[str, Any]:
        status = self.federation(name).get("status")
        assert isinstance(status, dict)
        return status

    def condition(self, condition_type: str, name: str = "cluster-b") -> dict[str, Any]:
        for condition in self.status(name).get("conditions") or []:
            if condition["type"] == condition_type:
                return dict(condition)
        raise AssertionError(f"no condition {condition_type} in {self.status(name)}")

    def service_entry(self, name: str = SEED_NAME) -> KubeObject | None:
        return self.store.read(resources.SERVICE_ENTRY, NAMESPACE, name)

    def destination_rule(self, name: str = SEED_NAME) -> KubeObject | None:
        return self.store.read(resources.DESTINATION_RULE, NAMESPACE, name)

    def owned_names(self, kind: resources.Resource = resources.SERVICE_ENTRY) -> list[str]:
        return [resources.name_of(o) for o in self.store.list(kind, NAMESPACE, ownership.selector("cluster-b"))]

    def events(self, reason: str | None = None) -> list[KubeObject]:
        found = self.store.list(resources.EVENT, CLUSTER_SCOPED_EVENT_NAMESPACE)
        return [e for e in found if reason is None or e.get("reason") == reason]

    def mesh_text(self) -> str:
        config_map = self.store.read(resources.CONFIG_MAP, MESH_NAMESPACE, meshconfig.CONFIG_MAP_NAME)
        assert config_map is not None
        return str(config_map["data"]["mesh"])

    def mesh_entries(self) -> list[dict[str, Any]]:
        return meshconfig.mesh_entries(self.mesh_text())

    def federation_pems(self) -> list[str]:
        return [e["pem"] for e in self.mesh_entries() if e.get("trustDomains") == [REMOTE_DOMAIN]]


def deckhouse_remote(ca: trustme.CA, local_keypair: Keypair, *, known: bool = True) -> DeckhouseExporter:
    """A Deckhouse cluster-b that (if ``known``) has an IstioFederation for us, i.e. knows our key."""
    cluster = DeckhouseCluster(root_ca_pem=ca_pem(trustme.CA()))
    if known:
        cluster.known_clusters[LOCAL_UUID] = local_keypair.public_pem
    return DeckhouseExporter(cluster, ca)


def parse_yaml(text: str) -> Any:
    return yaml.safe_load(text)


def iter_objects(store: ObjectStore, kind: resources.Resource) -> Iterator[KubeObject]:
    yield from store.list(kind)
