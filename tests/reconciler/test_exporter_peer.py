"""The reconciler against the project's own exporter: real gunicorn over HTTPS, state directories.

Cluster A (us) runs the reconciler; cluster B runs ``istio-federation exporter serve``.  B trusts
A because B's IstioFederation for A holds A's public metadata, the key A's reconciler signs with,
which A's reconciler generated and persisted in its own state on first use.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme

from federation import conditions, keys, resources
from objectstore.statedir import StateDirStore
from reconciler import identity
from reconciler.observation import CLOCK_SKEW_HINT, UNKNOWN_CLUSTER_HINT
from tests.exporter.fixtures import configmap, keypair_secret, root_ca_configmap, service
from tests.reconciler.harness import (
    LOCAL_DOMAIN,
    LOCAL_UUID,
    NAMESPACE,
    SEED_HOST,
    SEED_NAME,
    Harness,
    ca_pem,
    federation,
    mesh_config_map,
    open_state,
    write_state,
)
from tests.support import ServerProcess, free_port

pytestmark = pytest.mark.slow

REMOTE_UUID = "b2b2b2b2-0000-4000-8000-0000000000b2"
ADVERTISE = "metadata-exporter-ingressgateway-advertise"


def advertise(*gateways: tuple[str, int]) -> dict[str, Any]:
    body = json.dumps([{"address": address, "port": port} for address, port in gateways])
    return configmap(ADVERTISE, {"gateways.json": body})


def federation_for_a(public_pem: str) -> dict[str, Any]:
    """B's IstioFederation for A, as if B's reconciler had fetched A's public metadata."""
    return {
        "apiVersion": "deckhouse.io/v1alpha1",
        "kind": "IstioFederation",
        "metadata": {"name": "cluster-a"},
        "spec": {"trustDomain": LOCAL_DOMAIN, "metadataEndpoint": "https://127.0.0.1:1/metadata/"},
        "status": {
            "metadataCache": {
                "public": {"clusterUUID": LOCAL_UUID, "authnKeyPub": public_pem, "rootCA": ca_pem(trustme.CA())}
            }
        },
    }


@dataclass
class World:
    a: Harness
    a_dir: Path
    b_dir: Path
    b_root_ca: str
    exporter: ServerProcess


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    a_dir, b_dir, tls_dir = tmp_path / "a", tmp_path / "b", tmp_path / "tls"
    for directory in (a_dir, b_dir, tls_dir):
        directory.mkdir()
    server_ca = trustme.CA()
    issued = server_ca.issue_cert("127.0.0.1", "localhost")
    issued.cert_chain_pems[0].write_to_path(str(tls_dir / "tls.crt"))
    issued.private_key_pem.write_to_path(str(tls_dir / "tls.key"))
    port = free_port()
    endpoint = f"https://127.0.0.1:{port}/metadata/"
    write_state(a_dir, federation("cluster-b", endpoint, ca=ca_pem(server_ca)), mesh_config_map())
    a_store = open_state(a_dir)
    # A's identity: generated once and persisted in A's state, as in a fresh cluster.
    a_keypair = identity.load_or_create(a_store, NAMESPACE)
    b_root_ca = ca_pem(trustme.CA())
    write_state(
        b_dir,
        keypair_secret(keys.Keypair.generate()),
        root_ca_configmap(b_root_ca),
        service("bar", "xyz", ports=[{"name": "http", "port": 8080}]),
        advertise(("10.0.0.10", 15443), ("10.0.0.11", 15443)),
        federation_for_a(a_keypair.public_pem),
    )
    args = [
        "exporter", "serve",
        "--cluster-uuid", REMOTE_UUID, "--cluster-domain", "cluster-b.local",
        "--state", str(b_dir), "--host", "127.0.0.1", "--port", str(port),
        "--tls-cert-file", str(tls_dir / "tls.crt"), "--tls-private-key-file", str(tls_dir / "tls.key"),
        "--poll-interval", "0.1",
    ]  # fmt: skip
    with ServerProcess(args, log_path=tmp_path / "exporter.log") as exporter:
        context = ssl.create_default_context()
        server_ca.configure_trust(context)
        exporter.wait_http(f"https://127.0.0.1:{port}/readyz", context=context)
        try:
            yield World(Harness(a_store, a_keypair), a_dir, b_dir, b_root_ca, exporter)
        finally:
            a_store.stop()


def sync_until(world: World, predicate: Any, what: str, attempts: int = 60) -> None:
    """The exporter picks up state changes by polling: sync until it has (bounded)."""
    for _ in range(attempts):
        world.a.sync()
        if predicate():
            return
        world.a.stop.wait(0.1)
    raise AssertionError(f"{what} never happened:\n{world.exporter.log()}")


def test_seed_case_against_our_exporter_then_zero_writes(world: World) -> None:
    report = world.a.sync()

    assert report.ok, [(r.stage, r.message) for r in report.results]
    entry = world.a.service_entry()
    assert entry is not None
    assert entry["spec"]["hosts"] == [SEED_HOST]
    assert entry["spec"]["endpoints"] == [
        {"address": "10.0.0.10", "ports": {"http": 15443}},
        {"address": "10.0.0.11", "ports": {"http": 15443}},
    ]
    assert entry["spec"]["ports"] == [{"name": "http", "number": 8080, "protocol": "HTTP"}]
    assert world.a.status()["metadataCache"]["public"]["clusterUUID"] == REMOTE_UUID
    assert world.a.federation_pems() == [world.b_root_ca]
    assert world.a.condition(conditions.READY)["status"] == "True"

    before = world.a.store.writes.total
    assert world.a.sync().ok
    assert world.a.store.writes.total == before


def test_removed_service_and_gateway_change_through_our_exporter(world: World) -> None:
    write_state(world.b_dir, service("foo", "xyz", ports=[{"name": "tcp-db", "port": 5432}]))
    sync_until(
        world, lambda: world.a.service_entry("foo-xyz-svc-cluster-b-local-x474j4qb5ct4ndsk") is not None, "foo imported"
    )

    (world.b_dir / "xyz" / "service" / "foo.yaml").unlink()
    sync_until(
        world, lambda: world.a.service_entry("foo-xyz-svc-cluster-b-local-x474j4qb5ct4ndsk") is None, "foo removed"
    )
    assert world.a.owned_names() == [SEED_NAME]

    write_state(world.b_dir, advertise(("gw.cluster-b.example.com", 443)))

    def moved() -> bool:
        entry = world.a.service_entry()
        return entry is not None and entry["spec"]["endpoints"] == [
            {"address": "gw.cluster-b.example.com", "ports": {"http": 443}}
        ]

    sync_until(world, moved, "gateway change")
    entry = world.a.service_entry()
    assert entry is not None
    assert entry["spec"]["resolution"] == "DNS"


def test_our_exporter_refuses_an_unknown_cluster_with_the_hint(world: World) -> None:
    assert world.a.sync().ok
    (world.b_dir / "_cluster" / "istiofederation" / "cluster-a.yaml").unlink()

    def refused() -> bool:
        return bool(world.a.condition(conditions.PRIVATE)["reason"] == "NonOKResponse")

    sync_until(world, refused, "401")
    message = world.a.condition(conditions.PRIVATE)["message"]
    assert message.startswith(f"HTTP status 401 when fetching private metadata: {UNKNOWN_CLUSTER_HINT}")
    assert world.a.owned_names() == [SEED_NAME]  # a refused fetch is not a complete view: nothing is deleted


def test_a_clock_ahead_of_the_remotes_is_quoted_with_the_offset_the_remote_measured(world: World) -> None:
    # Our clock runs ten minutes ahead: the token's nbf is beyond the remote's leeway (300 s).
    world.a.clock.now = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=10)

    assert not world.a.sync().ok

    message = world.a.condition(conditions.PRIVATE)["message"]
    measured = re.search(r"clock is (\d+) s ahead", message)
    assert measured is not None, message
    offset = int(measured.group(1))
    assert 590 <= offset <= 600  # the remote measures against its own clock, a moment later
    assert message == (
        f"HTTP status 401 when fetching private metadata: {CLOCK_SKEW_HINT}: this cluster's clock is {offset} s "
        f"ahead of the remote's (measured by the remote) (the remote said: not yet valid: nbf is {offset} s ahead "
        "of this cluster's clock (leeway 300 s): clock skew suspected; synchronize the clocks (NTP))"
    )


def test_exporter_down_keeps_objects_and_turns_stale(world: World) -> None:
    assert world.a.sync().ok
    entry = world.a.service_entry()
    world.exporter.stop()

    world.a.clock.advance(timedelta(minutes=6))
    report = world.a.sync()

    assert not report.ok
    assert world.a.service_entry() == entry
    assert world.a.condition(conditions.PUBLIC)["reason"] == "FetchFailed"
    assert world.a.condition(conditions.STALE)["status"] == "True"


def test_identity_is_generated_once_and_kept(world: World) -> None:
    secret = world.a.store.read(resources.SECRET, NAMESPACE, identity.SECRET_NAME)
    assert secret is not None
    again = identity.load_or_create(world.a.store, NAMESPACE)
    assert again.public_pem == world.a.syncer.keypair.public_pem
    assert world.a.store.read(resources.SECRET, NAMESPACE, identity.SECRET_NAME) == secret
    reopened = StateDirStore(world.a_dir, [], poll_interval=0)
    reopened.start()
    try:
        assert identity.load_or_create(reopened, NAMESPACE).public_pem == again.public_pem
    finally:
        reopened.stop()
