"""reconciler.dryrun: reads go to the real store, writes are recorded and never reach it."""

from __future__ import annotations

from pathlib import Path

import trustme

from federation import resources
from federation.keys import Keypair
from federation.resources import KubeObject
from reconciler.dryrun import DryRunStore, IntendedWrite
from tests.deckhouse_fixture import DeckhouseExporter
from tests.reconciler.harness import (
    MESH_NAMESPACE,
    NAMESPACE,
    SEED_NAME,
    Harness,
    ca_pem,
    federation,
    mesh_config_map,
    open_state,
    write_state,
)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def service_entry(name: str, host: str) -> KubeObject:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"hosts": [host], "resolution": "DNS", "ports": [{"name": "http", "number": 80}]},
    }


def test_writes_are_recorded_in_order_and_reads_see_the_real_store(tmp_path: Path) -> None:
    existing = service_entry("kept", "kept.example")
    write_state(tmp_path, existing, federation("cluster-b", "https://x.example/metadata/", ca=""))
    real = open_state(tmp_path)
    before = snapshot(tmp_path)
    store = DryRunStore(real)
    try:
        created = store.create(service_entry("new", "new.example"))
        current = store.get(resources.SERVICE_ENTRY, NAMESPACE, "kept")
        assert current is not None
        current["spec"]["hosts"] = ["moved.example"]
        store.update(current)
        patched = store.patch_status(
            resources.ISTIO_FEDERATION, "", "cluster-b", {"status": {"importedServices": 3}}
        )
        store.delete(resources.SERVICE_ENTRY, NAMESPACE, "kept")

        assert created["metadata"]["name"] == "new"
        assert patched["status"] == {"importedServices": 3}
        assert [(w.verb, w.target) for w in store.intended] == [
            ("create", f"ServiceEntry {NAMESPACE}/new"),
            ("update", f"ServiceEntry {NAMESPACE}/kept"),
            ("patch", "IstioFederation cluster-b"),
            ("delete", f"ServiceEntry {NAMESPACE}/kept"),
        ]
        assert store.intended[2] == IntendedWrite(
            "patch", "IstioFederation", "", "cluster-b", {"status": {"importedServices": 3}}
        )
        # Nothing reached the real store: not its cache, not its files, not its write counter.
        assert store.get(resources.SERVICE_ENTRY, NAMESPACE, "new") is None
        assert store.read(resources.SERVICE_ENTRY, NAMESPACE, "kept") == real.get(
            resources.SERVICE_ENTRY, NAMESPACE, "kept"
        )
        assert [resources.name_of(o) for o in store.list(resources.SERVICE_ENTRY)] == ["kept"]
        assert real.writes.total == 0
        assert store.writes.total == 0
        assert store.events == []
    finally:
        store.stop()
    assert snapshot(tmp_path) == before


def test_a_dry_run_sync_records_what_a_real_one_writes(
    tmp_path: Path, remote: DeckhouseExporter, server_ca: trustme.CA, keypair: Keypair
) -> None:
    write_state(tmp_path, federation("cluster-b", remote.endpoint, ca=ca_pem(server_ca)), mesh_config_map())
    store = open_state(tmp_path)
    before = snapshot(tmp_path)
    try:
        harness = Harness(store, keypair)

        report = harness.sync(dry_run=True)

        assert report.ok, report.results
        dry = harness.last_dry_run
        assert dry is not None
        assert [(w.verb, w.kind, w.namespace, w.name) for w in dry.intended if w.kind != "Event"] == [
            ("create", "ServiceEntry", NAMESPACE, SEED_NAME),
            ("create", "DestinationRule", NAMESPACE, SEED_NAME),
            ("patch", "IstioFederation", "", "cluster-b"),
            ("update", "ConfigMap", MESH_NAMESPACE, "istio"),
        ]
        assert [(event["reason"], event["message"]) for event in dry.events] == [
            ("Applied", "objects 2 created"),
            ("Ready", "Federation is synced: 1 service imported."),
        ]
        assert store.writes.total == 0
        assert snapshot(tmp_path) == before

        # The real pass writes exactly what the dry run recorded (Events have generated names).
        harness.sync()
        assert store.writes.by_verb == {"create": 4, "patch": 1, "update": 1}
    finally:
        store.stop()
