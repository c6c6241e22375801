"""``exporter.snapshot``: the pure build, and the keeper that follows a real store's changes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter import settings as exporter_settings
from exporter import snapshot
from exporter.settings import Settings
from exporter.snapshot import Inputs, SnapshotKeeper
from federation import keys, ownership, resources
from federation.documents.ingress_gateways import IngressGateway
from federation.store import Watch
from objectstore.statedir import StateDirStore
from tests.exporter.cluster import SETTINGS, world
from tests.exporter.fixtures import (
    CLUSTER_UUID,
    gateway_service,
    keypair_secret,
    root_ca_configmap,
    root_ca_pem,
    service,
    write_state,
)


def test_not_synced_builds_nothing() -> None:
    built = snapshot.build(Inputs(synced=False), SETTINGS, generation=3)
    assert (built.ready, built.public, built.private, built.problems) == (
        False,
        None,
        None,
        ("the object cache is not synced yet",),
    )


def test_same_inputs_give_the_same_bodies_and_etags() -> None:
    first = snapshot.build(world(), SETTINGS, generation=1)
    second = snapshot.build(world(), SETTINGS, generation=2)
    assert first.public == second.public
    assert first.private == second.private
    assert first.spiffe_bundle == second.spiffe_bundle


def test_a_root_ca_the_bundle_cannot_express_keeps_public_json_but_says_why() -> None:
    import datetime

    from cryptography.hazmat.primitives.asymmetric import ed25519

    from tests.federation.test_spiffe import _self_signed  # the Ed25519 root built there

    pem = _self_signed(ed25519.Ed25519PrivateKey.generate(), datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC))
    built = snapshot.build(world(root_ca_configmap=root_ca_configmap(pem)), SETTINGS, generation=1)
    assert built.ready
    assert built.public is not None
    assert built.spiffe_bundle is None
    assert built.problems == (
        "ConfigMap istio-federation/istio-ca-root-cert: root CA key type Ed25519 is not supported in a SPIFFE "
        "bundle; use an RSA or EC (P-256/384/521) root",
    )


def test_watches_follow_the_settings() -> None:
    base = exporter_settings.watches(SETTINGS)
    assert Watch(resources.SERVICE, None, ownership.PUBLIC_SERVICE_LABEL) in base
    assert Watch(resources.SECRET, "istio-federation") in base
    assert not any(watch.resource in (resources.POD, resources.NODE) for watch in base)
    node_port = exporter_settings.watches(Settings(cluster_uuid="u", cluster_domain="d.local", inlet="NodePort"))
    assert {watch.resource for watch in node_port} >= {resources.POD, resources.NODE}
    advertised = exporter_settings.watches(
        Settings(
            cluster_uuid="u",
            cluster_domain="d.local",
            advertise=(IngressGateway("1.1.1.1", 1),),
            keypair_dir=Path("/k"),
        )
    )
    assert Watch(resources.SERVICE, "istio-federation", "app=ingressgateway") not in advertised
    assert not any(watch.resource == resources.SECRET for watch in advertised)


@pytest.fixture
def keeper(tmp_path: Path) -> Iterator[tuple[SnapshotKeeper, Path]]:
    store = StateDirStore(tmp_path, exporter_settings.watches(SETTINGS), poll_interval=0.05)
    running = SnapshotKeeper(store, SETTINGS, resync_interval=5)
    running.start()
    try:
        yield running, tmp_path
    finally:
        running.stop()


def test_keeper_becomes_ready_when_identity_appears_and_follows_services(keeper: tuple[SnapshotKeeper, Path]) -> None:
    running, state = keeper
    first = running.wait_for(lambda current: current.synced, timeout=10)
    assert first is not None
    assert not first.ready
    assert first.problems[0].startswith("Secret istio-federation/istio-federation-authn-keypair not found")

    write_state(state, [keypair_secret(keys.Keypair.generate()), root_ca_configmap(root_ca_pem()), gateway_service()])
    assert running.wait_for(lambda current: current.ready, timeout=10) is not None

    write_state(state, [service("a"), service("b")])
    found = running.wait_for(lambda current: current.services == 2, timeout=10)
    assert found is not None
    assert found.gateways == 1


def test_keeper_wait_is_bounded(keeper: tuple[SnapshotKeeper, Path]) -> None:
    running, _ = keeper
    assert running.wait_for(lambda current: current.services == 99, timeout=0.3) is None


def test_keeper_coalesces_a_burst_of_events(keeper: tuple[SnapshotKeeper, Path]) -> None:
    running, state = keeper
    write_state(state, [keypair_secret(keys.Keypair.generate()), root_ca_configmap(root_ca_pem())])
    ready = running.wait_for(lambda current: current.ready, timeout=10)
    assert ready is not None
    write_state(state, [service(f"svc-{n}") for n in range(200)])
    done = running.wait_for(lambda current: current.services == 200, timeout=10)
    assert done is not None
    # 200 files in one poll are 200 events; the keeper rebuilt a handful of times, not 200.
    assert done.generation - ready.generation < 20


def test_keeper_never_reads_beyond_the_cache(tmp_path: Path) -> None:
    class CountingStore(StateDirStore):
        reads = 0

        def read(self, resource: resources.Resource, namespace: str, name: str) -> resources.KubeObject | None:
            CountingStore.reads += 1
            return super().read(resource, namespace, name)

    write_state(tmp_path, [keypair_secret(keys.Keypair.generate()), root_ca_configmap(root_ca_pem())])
    store = CountingStore(tmp_path, exporter_settings.watches(SETTINGS), poll_interval=0.05)
    running = SnapshotKeeper(store, SETTINGS)
    running.start()
    try:
        assert running.wait_for(lambda current: current.ready, timeout=10) is not None
        for _ in range(5):
            running.rebuild()
    finally:
        running.stop()
    assert CountingStore.reads == 0
    assert CLUSTER_UUID in (running.current.public.body.decode() if running.current.public else "")
