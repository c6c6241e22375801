"""federation.meshconfig: our caCertificates entries in Istio's mesh config, nothing else touched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml

from federation import meshconfig
from federation.meshconfig import TrustedCA

MESH = """\
# comment
defaultConfig:
  discoveryAddress: istiod.istio-system.svc:15012
trustDomain: cluster-a.local
caCertificates:
- pem: ADMIN
  trustDomains: [partner.example]
- spiffeBundleUrl: https://bundle.example/
"""
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def test_unchanged_returns_the_original_text() -> None:
    assert meshconfig.merge_mesh(MESH, {}, ()) == MESH
    once = meshconfig.merge_mesh(MESH, {"cluster-b.local": ["B"]}, ())
    assert meshconfig.merge_mesh(once, {"cluster-b.local": ["B"]}, ["cluster-b.local"]) == once


def test_adds_entries_bound_to_the_trust_domain_and_keeps_the_rest() -> None:
    merged = yaml.safe_load(meshconfig.merge_mesh(MESH, {"cluster-b.local": ["B1", "B0"]}, ()))
    original = yaml.safe_load(MESH)
    assert merged["defaultConfig"] == original["defaultConfig"]
    assert merged["trustDomain"] == "cluster-a.local"
    assert merged["caCertificates"] == [
        {"pem": "ADMIN", "trustDomains": ["partner.example"]},
        {"spiffeBundleUrl": "https://bundle.example/"},
        {"pem": "B1", "trustDomains": ["cluster-b.local"]},
        {"pem": "B0", "trustDomains": ["cluster-b.local"]},
    ]


def test_removes_only_managed_domains() -> None:
    with_b = meshconfig.merge_mesh(MESH, {"cluster-b.local": ["B"]}, ())
    without = yaml.safe_load(meshconfig.merge_mesh(with_b, {}, ["cluster-b.local"]))
    assert without["caCertificates"] == yaml.safe_load(MESH)["caCertificates"]


def test_invalid_mesh_is_never_overwritten() -> None:
    with pytest.raises(meshconfig.MeshConfigError, match="not valid YAML, refusing to edit it"):
        meshconfig.merge_mesh("a: [unclosed", {"x": ["P"]}, ())
    with pytest.raises(meshconfig.MeshConfigError, match="must be a list"):
        meshconfig.merge_mesh("caCertificates: {}\n", {"x": ["P"]}, ())


def test_config_map_annotation_records_managed_domains() -> None:
    current = {"metadata": {"name": "istio", "namespace": "istio-system"}, "data": {"mesh": MESH}}
    updated = meshconfig.desired_config_map(current, {"cluster-b.local": ["B"]}, namespace="istio-system")
    assert updated is not None
    assert meshconfig.managed_domains(updated) == {"cluster-b.local"}
    assert meshconfig.desired_config_map(updated, {"cluster-b.local": ["B"]}, namespace="istio-system") is None
    removed = meshconfig.desired_config_map(updated, {}, namespace="istio-system")
    assert removed is not None
    assert yaml.safe_load(removed["data"]["mesh"]) == yaml.safe_load(MESH)
    assert meshconfig.managed_domains(removed) == set()


def test_rotation_overlap() -> None:
    overlap = timedelta(hours=24)
    first = meshconfig.rotate([], "OLD", NOW, overlap)
    assert first == [TrustedCA("OLD", "2026-11-29T12:00:00Z")]
    rotated = meshconfig.rotate(first, "NEW", NOW + timedelta(hours=1), overlap)
    assert rotated == [
        TrustedCA("NEW", "2026-11-29T13:00:00Z"),
        TrustedCA("OLD", "2026-11-29T12:00:00Z", "2026-11-29T13:00:00Z"),
    ]
    assert meshconfig.rotate(rotated, "NEW", NOW + timedelta(hours=24, minutes=59), overlap) == rotated
    assert meshconfig.rotate(rotated, "NEW", NOW + timedelta(hours=25), overlap) == [rotated[0]]
    rollback = meshconfig.rotate(rotated, "OLD", NOW + timedelta(hours=2), overlap)
    assert rollback[0] == TrustedCA("OLD", "2026-11-29T12:00:00Z")
    assert rollback[1].pem == "NEW"
    assert rollback[1].retired_at == "2026-11-29T14:00:00Z"


def test_same_pem_ignores_layout() -> None:
    assert meshconfig.same_pem("A\r\nB\n", "A\nB")
    assert meshconfig.rotate([TrustedCA("A\nB\n", "t")], "A\nB", NOW, timedelta(0)) == [TrustedCA("A\nB\n", "t")]


def test_a_remote_rotating_at_every_sync_keeps_at_most_three_retired_roots() -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    trusted: list[TrustedCA] = []
    for minute in range(100):  # a new root every minute, well within the 24 h overlap
        trusted = meshconfig.rotate(trusted, f"ROOT-{minute}", start + timedelta(minutes=minute), timedelta(hours=24))

    assert [entry.pem for entry in trusted] == ["ROOT-99", "ROOT-98", "ROOT-97", "ROOT-96"]
    assert [entry.retired_at is None for entry in trusted] == [True, False, False, False]


def _config_map(mesh: str, domains: str) -> dict[str, object]:
    return {
        "metadata": {
            "name": "istio",
            "namespace": "istio-system",
            "annotations": {meshconfig.MANAGED_DOMAINS_ANNOTATION: domains},
        },
        "data": {"mesh": mesh},
    }


def test_a_root_stays_while_a_managed_service_entry_still_routes_into_its_domain() -> None:
    mesh = meshconfig.merge_mesh(MESH, {"cluster-b.local": ["B"], "cluster-c.local": ["C"]}, ())
    current = _config_map(mesh, "cluster-b.local,cluster-c.local")
    # cluster-b's federation is gone but one of its ServiceEntries is not (its delete failed).
    kept = meshconfig.still_routed(current, {"cluster-c.local": ["C"]}, ["bar.xyz.svc.cluster-b.local"])
    assert kept == {"cluster-c.local": ["C"], "cluster-b.local": ["B"]}
    # Once nothing routes there, the root goes.
    assert meshconfig.still_routed(current, {"cluster-c.local": ["C"]}, []) == {"cluster-c.local": ["C"]}
    # A host merely ending in the same letters is not in the domain.
    assert meshconfig.still_routed(current, {"cluster-c.local": ["C"]}, ["bar.east-cluster-b.local"]) == {
        "cluster-c.local": ["C"]
    }


def test_still_routed_never_adds_a_domain_we_did_not_write() -> None:
    # partner.example is the admin's own entry: not ours to keep or drop.
    current = _config_map(MESH, "")
    assert meshconfig.still_routed(current, {}, ["svc.partner.example"]) == {}
    assert meshconfig.still_routed(None, {"cluster-b.local": ["B"]}, ["x.cluster-b.local"]) == {
        "cluster-b.local": ["B"]
    }
