"""The reconciler against the independent Deckhouse fixture over real HTTPS, on the state directory.

Every "Done when" bullet of issue 4 has a test here (the exporter and the Kubernetes API double
run the same story in ``test_exporter_peer.py`` and ``test_reconciler_kube.py``).
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from federation import conditions, desired, ownership, resources, tokens
from federation.documents.private import parse_private
from federation.keys import Keypair
from federation.store import Rejected
from objectstore.statedir import StateDirStore
from reconciler import plan
from reconciler.fetch import Limits
from reconciler.observation import CLOCK_SKEW_HINT, UNKNOWN_CLUSTER_HINT
from tests.deckhouse_fixture import DeckhouseExporter
from tests.reconciler.harness import (
    LOCAL_UUID,
    NAMESPACE,
    ORIGINAL_MESH,
    SEED_HOST,
    SEED_NAME,
    Harness,
    ca_pem,
    deckhouse_remote,
    federation,
    mesh_config_map,
    open_state,
    write_state,
)


def reload(harness: Harness) -> None:
    assert isinstance(harness.store, StateDirStore)
    harness.store.reload()


@pytest.fixture
def harness(store: StateDirStore, keypair: Keypair) -> Harness:
    return Harness(store, keypair)


def test_seed_service_becomes_service_entry_with_both_gateways(harness: Harness, remote: DeckhouseExporter) -> None:
    report = harness.sync()

    assert report.ok, report.results
    entry = harness.service_entry()
    assert entry is not None
    assert entry["apiVersion"] == "networking.istio.io/v1"
    assert entry["metadata"]["labels"] == ownership.ownership_labels("cluster-b")
    assert entry["metadata"]["annotations"] == {
        ownership.REMOTE_CLUSTER_UUID_ANNOTATION: remote.cluster.cluster_uuid
    }
    assert entry["spec"] == {
        "hosts": [SEED_HOST],
        "exportTo": ["*"],
        "location": "MESH_INTERNAL",
        "ports": [{"name": "http", "number": 8080, "protocol": "HTTP"}],
        "resolution": "STATIC",
        "endpoints": [
            {"address": "10.0.0.10", "ports": {"http": 15443}},
            {"address": "10.0.0.11", "ports": {"http": 15443}},
        ],
    }
    rule = harness.destination_rule()
    assert rule is not None
    assert rule["spec"] == {"host": SEED_HOST, "exportTo": ["*"], "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}
    status = harness.status()
    assert status["metadataCache"]["public"] == remote.cluster.public_document()
    assert status["metadataCache"]["private"] == {
        "ingressGateways": remote.cluster.gateways,
        "publicServices": [
            {"hostname": SEED_HOST, "ports": [{"name": "http", "port": 8080, "protocol": "HTTP"}]}
        ],
    }
    assert status["importedServices"] == 1
    assert status["services"] == [{"hostname": SEED_HOST, "state": "Imported", "message": ""}]
    assert status["lastSuccessfulSyncTime"]
    assert harness.condition(conditions.PUBLIC) | {"lastTransitionTime": "x"} == {
        "type": conditions.PUBLIC,
        "status": "True",
        "reason": "Succeeded",
        "message": "Public metadata exchange succeeded.",
        "lastTransitionTime": "x",
        "observedGeneration": 1,
    }
    assert harness.condition(conditions.PRIVATE)["reason"] == "Succeeded"
    assert harness.condition(conditions.SYNCED)["message"] == "Imported 1 service, skipped 0, denied 0."
    assert harness.condition(conditions.STALE)["status"] == "False"
    assert harness.condition(conditions.READY)["status"] == "True"
    assert harness.federation_pems() == [remote.cluster.root_ca_pem]


def test_token_carries_deckhouse_claims(harness: Harness, remote: DeckhouseExporter) -> None:
    harness.sync()

    (claims,) = remote.accepted_claims
    assert claims["iss"] == tokens.ISSUER
    assert claims["sub"] == LOCAL_UUID
    assert claims["aud"] == remote.cluster.cluster_uuid
    assert claims["scope"] == "private-federation"
    assert claims["exp"] - claims["nbf"] == 60
    assert claims["nbf"] == int(harness.clock().timestamp())


def test_second_sync_writes_nothing(harness: Harness) -> None:
    harness.sync()
    before = harness.store.writes.total

    report = harness.sync()

    assert report.ok
    assert harness.store.writes.total == before
    assert harness.store.writes.total > 0


def test_removed_remote_service_is_garbage_collected(harness: Harness, remote: DeckhouseExporter) -> None:
    remote.cluster.services.append({"hostname": "foo.xyz.svc.cluster-b.local", "ports": [{"name": "tcp", "port": 9}]})
    harness.sync()
    assert harness.owned_names() == [SEED_NAME, "foo-xyz-svc-cluster-b-local-x474j4qb5ct4ndsk"]

    remote.cluster.services.pop()
    harness.sync()

    assert harness.owned_names() == [SEED_NAME]
    assert harness.destination_rule("foo-xyz-svc-cluster-b-local-x474j4qb5ct4ndsk") is None
    assert harness.status()["importedServices"] == 1


def test_unlabelled_objects_are_never_touched(harness: Harness, remote: DeckhouseExporter, tmp_path: Path) -> None:
    hand_written = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": SEED_NAME, "namespace": NAMESPACE},
        "spec": {"hosts": ["elsewhere.example"], "resolution": "DNS", "ports": [{"name": "h", "number": 80}]},
    }
    write_state(tmp_path, hand_written)
    reload(harness)

    harness.sync()

    assert harness.service_entry() == harness.store.get(resources.SERVICE_ENTRY, NAMESPACE, SEED_NAME)
    entry = harness.service_entry()
    assert entry is not None
    assert entry["spec"] == hand_written["spec"]
    (service,) = harness.status()["services"]
    assert service["state"] == "Conflict"
    assert "nobody we know (it has no istio-federation labels)" in service["message"]
    assert harness.condition(conditions.SYNCED)["status"] == "False"
    remote.cluster.services = []
    harness.sync()
    assert harness.service_entry() is not None  # GC only deletes through the ownership selector


def test_gateway_address_change_updates_endpoints(harness: Harness, remote: DeckhouseExporter) -> None:
    harness.sync()
    remote.cluster.gateways = [{"address": "gw.cluster-b.example.com", "port": 443}]

    report = harness.sync()

    entry = harness.service_entry()
    assert entry is not None
    assert entry["spec"]["resolution"] == "DNS"  # never STATIC with a name (Deckhouse #19395)
    assert entry["spec"]["endpoints"] == [{"address": "gw.cluster-b.example.com", "ports": {"http": 443}}]
    (result,) = report.results
    assert result.ok


def test_out_of_domain_hosts_are_refused(harness: Harness, remote: DeckhouseExporter) -> None:
    remote.cluster.services += [
        {"hostname": "api.default.svc.cluster-a.local", "ports": [{"name": "https", "port": 443}]},
        {"hostname": "db.prod.svc.cluster-c.local", "ports": [{"name": "tcp", "port": 5432}]},
    ]

    harness.sync()

    assert harness.owned_names() == [SEED_NAME]
    synced = harness.condition(conditions.SYNCED)
    assert synced["status"] == "False"
    assert synced["reason"] == "HostsRefused"
    assert synced["message"] == (
        "Imported 1 service, skipped 2, denied 0. "
        "Refused: api.default.svc.cluster-a.local, db.prod.svc.cluster-c.local."
    )
    messages = sorted(event["message"] for event in harness.events("HostRefused"))
    assert messages == [
        "api.default.svc.cluster-a.local: host is under the local trust domain cluster-a.local: "
        "a remote may not claim this cluster's own names",
        "db.prod.svc.cluster-c.local: host is outside the federation's trust domain cluster-b.local",
    ]
    assert all(event["type"] == "Warning" for event in harness.events("HostRefused"))
    before = len(harness.events())
    harness.sync()
    assert len(harness.events()) == before  # refused again, but no new Event: nothing changed


@pytest.mark.parametrize(
    ("mode", "reason", "message_part"),
    [
        pytest.param("down", "FetchFailed", "connection refused", id="down"),
        pytest.param("500", "NonOKResponse", "HTTP status 500 when fetching public metadata", id="500"),
        pytest.param("garbage", "InvalidJSON", '"<body>": not valid JSON: Expecting value', id="garbage"),
        pytest.param("slow", "FetchFailed", "timed out", id="slow"),
        pytest.param("oversized", "InvalidJSON", "larger than 4194304 bytes", id="oversized"),
    ],
)
def test_broken_remote_keeps_objects_and_turns_stale(
    harness: Harness, remote: DeckhouseExporter, mode: str, reason: str, message_part: str
) -> None:
    # Short limits so "slow" times out quickly; the fixture holds its answer far longer.
    harness.syncer.fetcher.limits = Limits(connect_timeout=1.0, total_timeout=0.5)
    assert harness.sync().ok
    good = harness.status()["metadataCache"]
    entry = harness.service_entry()
    if mode == "down":
        remote.stop()
    else:
        remote.mode = mode

    harness.clock.advance(timedelta(minutes=2))
    first = harness.sync()
    assert not first.ok
    assert harness.condition(conditions.STALE)["status"] == "False"
    harness.clock.advance(timedelta(minutes=4))
    harness.sync()
    remote.release.set()

    assert harness.service_entry() == entry
    assert harness.status()["metadataCache"] == good
    public = harness.condition(conditions.PUBLIC)
    assert public["status"] == "False"
    assert public["reason"] == reason
    assert message_part in public["message"]
    assert harness.condition(conditions.PRIVATE)["reason"] == "AwaitingPublic"
    stale = harness.condition(conditions.STALE)
    assert stale["status"] == "True"
    assert stale["message"].startswith("Last successful sync 6m ago (")
    assert harness.condition(conditions.READY)["status"] == "False"
    assert harness.federation_pems() == [remote.cluster.root_ca_pem]  # trust kept too


def test_unknown_cluster_401_says_what_to_do(tmp_path: Path, server_ca: trustme.CA, keypair: Keypair) -> None:
    with deckhouse_remote(server_ca, keypair, known=False) as remote:
        write_state(tmp_path, federation("cluster-b", remote.endpoint, ca=ca_pem(server_ca)), mesh_config_map())
        store = open_state(tmp_path)
        try:
            harness = Harness(store, keypair)
            report = harness.sync()
            private = harness.condition(conditions.PRIVATE)
        finally:
            store.stop()

    assert not report.ok
    assert private["reason"] == "NonOKResponse"
    assert private["message"] == (
        f"HTTP status 401 when fetching private metadata: {UNKNOWN_CLUSTER_HINT} "
        "(the remote said: Authentication error: JWT is signed for unknown source cluster)"
    )
    assert UNKNOWN_CLUSTER_HINT == (
        "the remote does not know this cluster yet: create the IstioFederation for this cluster in the remote"
    )


def test_invalid_private_document_never_replaces_good_data(harness: Harness, remote: DeckhouseExporter) -> None:
    harness.sync()
    good = harness.status()["metadataCache"]["private"]
    remote.cluster.services = {"not": "a list"}  # type: ignore[assignment]

    harness.sync()

    assert harness.status()["metadataCache"]["private"] == good
    private = harness.condition(conditions.PRIVATE)
    assert (private["reason"], private["message"]) == (
        "InvalidPrivateMetadata",
        'invalid private metadata: publicServices: Invalid value: "object": must be a list',
    )
    assert harness.owned_names() == [SEED_NAME]


def test_a_document_whose_only_gateway_is_unusable_keeps_the_objects(
    harness: Harness, remote: DeckhouseExporter
) -> None:
    harness.sync()
    good = harness.status()["metadataCache"]["private"]
    remote.cluster.gateways = [{"address": "not an address!", "port": 70000}]

    harness.sync()

    assert harness.status()["metadataCache"]["private"] == good
    private = harness.condition(conditions.PRIVATE)
    assert (private["reason"], private["message"]) == (
        "NoIngressGateways",
        "every ingress gateway the remote publishes is refused: 1 gateway skipped (1 InvalidAddress): not an "
        'address!: ingressGateways[0].address: Invalid value: "not an address!": must be an IP address or a DNS '
        "name; ingressGateways[0].port: Invalid value: 70000: must be from 1 to 65535; the last known objects are "
        "kept until it publishes a usable one",
    )
    assert harness.owned_names() == [SEED_NAME]


def test_ca_rotation_keeps_old_root_for_the_overlap(harness: Harness, remote: DeckhouseExporter) -> None:
    harness.sync()
    old_root = remote.cluster.root_ca_pem
    new_root = ca_pem(trustme.CA())
    remote.cluster.root_ca_pem = new_root

    harness.clock.advance(timedelta(hours=1))
    harness.sync()
    assert harness.federation_pems() == [new_root, old_root]
    assert [ca.get("retiredAt") is not None for ca in harness.status()["trustedRootCAs"]] == [False, True]

    harness.clock.advance(timedelta(hours=23, minutes=59))
    harness.sync()
    assert harness.federation_pems() == [new_root, old_root]

    harness.clock.advance(timedelta(minutes=2))
    harness.sync()
    assert harness.federation_pems() == [new_root]
    mesh = yaml.safe_load(harness.mesh_text())
    original = yaml.safe_load(ORIGINAL_MESH)
    assert {k: v for k, v in mesh.items() if k != "caCertificates"} == {
        k: v for k, v in original.items() if k != "caCertificates"
    }
    assert mesh["caCertificates"][0] == original["caCertificates"][0]  # the admin's entry, untouched
    config_map = harness.store.read(resources.CONFIG_MAP, "istio-system", "istio")
    assert config_map is not None
    assert config_map["data"]["meshNetworks"] == "networks: {}\n"


def test_dry_run_writes_nothing_and_prints_the_plan(harness: Harness, remote: DeckhouseExporter) -> None:
    before = harness.store.writes.total

    report = harness.sync(dry_run=True)

    assert harness.store.writes.total == before
    assert harness.service_entry() is None
    text = plan.render(report, "text")
    assert f"+ create ServiceEntry {NAMESPACE}/{SEED_NAME} (host {SEED_HOST})" in text
    assert f"+ create DestinationRule {NAMESPACE}/{SEED_NAME} (host {SEED_HOST})" in text
    assert "~ update ConfigMap istio-system/istio" in text
    assert text.startswith("Dry run: nothing was written.\n")
    data = json.loads(plan.render(report, "json"))
    (fed,) = data["federations"]
    assert [(a["verb"], a["kind"]) for a in fed["actions"]] == [
        ("create", "ServiceEntry"),
        ("create", "DestinationRule"),
    ]
    assert any(change["path"] == "status.importedServices" for change in fed["statusChanges"])
    assert yaml.safe_load(plan.render(report, "yaml")) == data


def test_dry_run_shows_field_diff_of_an_update(harness: Harness, remote: DeckhouseExporter) -> None:
    harness.sync()
    remote.cluster.gateways[1]["address"] = "10.0.0.12"
    before = harness.store.writes.total

    report = harness.sync(dry_run=True)

    assert harness.store.writes.total == before
    text = plan.render(report, "text")
    assert f"~ update ServiceEntry {NAMESPACE}/{SEED_NAME} (host {SEED_HOST})" in text
    assert '      spec.endpoints[1].address: "10.0.0.11" -> "10.0.0.12"' in text


def test_expire_after_removes_objects_once_the_ttl_passed(
    store: StateDirStore, keypair: Keypair, remote: DeckhouseExporter
) -> None:
    harness = Harness(store, keypair, expire_after=timedelta(hours=1))
    harness.sync()
    remote.mode = "500"
    harness.clock.advance(timedelta(minutes=59))
    harness.sync()
    assert harness.owned_names() == [SEED_NAME]

    harness.clock.advance(timedelta(minutes=2))
    harness.sync()

    assert harness.owned_names() == []
    assert harness.status()["importedServices"] == 0
    (event,) = harness.events("Expired")
    assert event["message"] == "objects 2 deleted (--expire-after reached)"


def test_deleted_federation_objects_and_trust_are_removed(harness: Harness, tmp_path: Path) -> None:
    harness.sync()
    (tmp_path / "_cluster" / "istiofederation" / "cluster-b.yaml").unlink()
    reload(harness)

    report = harness.sync()

    assert sorted(a.resource.kind for a in report.orphan_actions) == ["DestinationRule", "ServiceEntry"]
    assert harness.service_entry() is None
    assert harness.federation_pems() == []
    assert len(harness.mesh_entries()) == 1  # the admin's entry stays


def test_a_deleted_federations_root_stays_trusted_until_its_objects_are_gone(
    harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.sync()
    trusted = harness.federation_pems()
    assert trusted
    (tmp_path / "_cluster" / "istiofederation" / "cluster-b.yaml").unlink()
    reload(harness)
    real_delete = harness.store.delete

    def refuse_service_entries(resource: resources.Resource, namespace: str, name: str) -> None:
        if resource.kind == "ServiceEntry":
            raise Rejected("admission webhook refused the delete", code=403)
        real_delete(resource, namespace, name)

    monkeypatch.setattr(harness.store, "delete", refuse_service_entries)
    harness.sync()
    # The ServiceEntry still routes to cluster-b: its root must still be trusted, or that traffic
    # would fail mTLS instead of being cleaned up.
    assert harness.service_entry() is not None
    assert harness.federation_pems() == trusted

    monkeypatch.setattr(harness.store, "delete", real_delete)
    harness.sync()
    assert harness.service_entry() is None
    assert harness.federation_pems() == []


def test_federation_with_own_trust_domain_is_a_configuration_error(
    tmp_path: Path, keypair: Keypair, server_ca: trustme.CA
) -> None:
    write_state(tmp_path, federation("self", "https://127.0.0.1:1/metadata/", ca="", trust_domain="cluster-a.local"))
    store = open_state(tmp_path)
    try:
        harness = Harness(store, keypair)
        report = harness.sync()
        public = harness.condition(conditions.PUBLIC, "self")
    finally:
        store.stop()
    assert not report.ok
    assert public["reason"] == "ConfigurationError"
    assert public["message"] == (
        "spec.trustDomain cluster-a.local is this cluster's own trust domain: an IstioFederation names a remote cluster"
    )


def test_condition_transition_time_moves_only_on_status_change(harness: Harness, remote: DeckhouseExporter) -> None:
    harness.sync()
    first = harness.condition(conditions.PUBLIC)["lastTransitionTime"]
    remote.mode = "500"
    harness.clock.advance(timedelta(minutes=1))
    harness.sync()
    failed = harness.condition(conditions.PUBLIC)["lastTransitionTime"]
    harness.clock.advance(timedelta(minutes=1))
    harness.sync()

    assert failed != first
    assert harness.condition(conditions.PUBLIC)["lastTransitionTime"] == failed


def test_metrics_are_labelled_by_federation(harness: Harness, remote: DeckhouseExporter) -> None:
    harness.sync()
    remote.mode = "500"
    harness.clock.advance(timedelta(minutes=6))
    harness.sync()

    text = harness.metrics.exposition().decode()
    assert 'istio_federation_fetch_errors_total{federation="cluster-b",stage="public"} 1.0' in text
    assert 'istio_federation_imported_services{federation="cluster-b"} 1.0' in text
    assert 'istio_federation_writes_total{federation="cluster-b",verb="create"} 2.0' in text
    assert 'istio_federation_metadata_endpoint_up{federation="cluster-b"} 0.0' in text
    assert 'istio_federation_stale{federation="cluster-b"} 1.0' in text
    assert 'istio_federation_sync_duration_seconds_count{federation="cluster-b"} 2.0' in text
    assert 'istio_federation_last_success_timestamp_seconds{federation="cluster-b"}' in text


def test_expired_token_401_points_at_clocks_not_at_missing_objects(
    harness: Harness, remote: DeckhouseExporter
) -> None:
    harness.clock.advance(timedelta(minutes=-5))  # our clock is 5 minutes behind the remote's

    harness.sync()

    assert harness.condition(conditions.PRIVATE)["message"] == (
        f"HTTP status 401 when fetching private metadata: {CLOCK_SKEW_HINT} "
        "(the remote said: Authentication error: JWT token expired)"
    )


def test_one_changed_remote_service_costs_its_object_and_the_status(
    harness: Harness, remote: DeckhouseExporter, caplog: pytest.LogCaptureFixture
) -> None:
    remote.cluster.services.append({"hostname": "foo.xyz.svc.cluster-b.local", "ports": [{"name": "tcp", "port": 9}]})
    harness.sync()
    events_before = len(harness.events())
    before = dict(harness.store.writes.by_verb)
    remote.cluster.services[0] = {"hostname": SEED_HOST, "ports": [{"name": "http", "port": 8081}]}

    with caplog.at_level(logging.INFO, logger="reconciler.apply"):
        harness.sync()

    after = harness.store.writes.by_verb
    assert {verb: after.get(verb, 0) - before.get(verb, 0) for verb in after | before} == {
        "create": 0, "update": 1, "patch": 1,
    }  # fmt: skip
    assert len(harness.events()) == events_before  # an in-place update is logged, not an Event
    (line,) = [record.getMessage() for record in caplog.records if record.getMessage().startswith("updated")]
    assert line == (
        f"updated ServiceEntry {NAMESPACE}/{SEED_NAME} federation=cluster-b host={SEED_HOST} "
        "changed=spec.ports[0].number"
    )
    entry = harness.service_entry()
    assert entry is not None
    assert entry["spec"]["ports"] == [{"name": "http", "number": 8081, "protocol": "HTTP"}]


def test_an_unchanged_document_is_not_parsed_or_planned_again(
    harness: Harness, remote: DeckhouseExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.sync()
    calls: list[str] = []
    real_parse, real_plan = parse_private, desired.desired_state

    def parse(*args: Any, **kwargs: Any) -> Any:
        calls.append("parse")
        return real_parse(*args, **kwargs)

    def planned(*args: Any, **kwargs: Any) -> Any:
        calls.append("plan")
        return real_plan(*args, **kwargs)

    monkeypatch.setattr("reconciler.observation.parse_private", parse)
    monkeypatch.setattr(desired, "desired_state", planned)
    harness.sync()
    assert calls == []  # the same bytes: the last parse and plan are reused

    # Reused, yet level-triggered: a managed object edited by hand is put back.
    entry = harness.service_entry()
    assert entry is not None
    entry["spec"]["ports"] = [{"name": "http", "number": 1, "protocol": "HTTP"}]
    harness.store.update(entry)
    harness.sync()
    restored = harness.service_entry()
    assert restored is not None
    assert restored["spec"]["ports"] == [{"name": "http", "number": 8080, "protocol": "HTTP"}]
    assert calls == []

    remote.cluster.services[0] = {"hostname": SEED_HOST, "ports": [{"name": "http", "port": 8081}]}
    harness.sync()
    assert calls == ["parse", "plan"]  # new bytes: parsed and planned once


def test_a_changed_document_keeps_the_objects_of_its_unchanged_services(
    harness: Harness, remote: DeckhouseExporter
) -> None:
    remote.cluster.services.append({"hostname": "foo.xyz.svc.cluster-b.local", "ports": [{"name": "tcp", "port": 9}]})
    harness.sync()
    (before,) = harness.syncer.decisions._planned.values()
    remote.cluster.services[0] = {"hostname": SEED_HOST, "ports": [{"name": "http", "port": 8081}]}

    harness.sync()

    (after,) = harness.syncer.decisions._planned.values()
    old = {resources.name_of(obj) + obj["kind"]: obj for obj in before.plan.objects}
    same = sorted(key for obj in after.plan.objects if (key := resources.name_of(obj) + obj["kind"]) in old
                  and old[key] is obj)  # fmt: skip
    # The changed service's ServiceEntry is new; its DestinationRule and foo's two objects are the
    # previous plan's own, so the apply step recognises them without comparing them.
    assert same == sorted([f"{SEED_NAME}DestinationRule", "foo-xyz-svc-cluster-b-local-x474j4qb5ct4ndskDestinationRule",
                           "foo-xyz-svc-cluster-b-local-x474j4qb5ct4ndskServiceEntry"])  # fmt: skip
