"""The reconciler against a hostile remote (issue 14) and a Deckhouse-shaped peer (issue 12).

Every remote here is the independent Deckhouse fixture over real HTTPS on 127.0.0.1, and what it
sends is what the attack run sent: a 100,000-deep document, a 5,000-digit number, 30,000 invalid
services, port names that are no Service's, another federation's clusterUUID, gateways inside this
cluster, an expired root CA, an empty gateway list.  Each test asserts the status, the objects and
the metrics a sync leaves, with the exact messages an admin reads.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from exporter import trust
from federation import conditions, ownership, resources
from federation.keys import Keypair
from objectstore.statedir import StateDirStore
from reconciler import identity
from reconciler.observation import LocalCluster
from tests import pki
from tests.deckhouse_fixture import DeckhouseExporter
from tests.reconciler.harness import (
    LOCAL_DOMAIN,
    LOCAL_UUID,
    NAMESPACE,
    SEED_HOST,
    Harness,
    ca_pem,
    deckhouse_remote,
    federation,
    mesh_config_map,
    open_state,
    write_state,
)
from tests.support import REPO_ROOT, cli_command

SEED = ownership.managed_name(SEED_HOST)
DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_MESSAGE = 'Invalid value: "<body>": nested deeper than the limit of 32 levels at line 1 column 33 (char 32)'
HUGE_NUMBER_MESSAGE = (
    'Invalid value: "<body>": number 11111111111111111111... has 5000 characters, more than the limit of 40'
)
KEPT = "the last known objects are kept until it publishes a usable one"
LOOPBACK = "is a loopback address: it would point into this cluster"


def huge_number(key: str) -> bytes:
    return b'{"' + key.encode() + b'": ' + b"1" * 5000 + b"}"


@pytest.fixture
def harness(store: StateDirStore, keypair: Keypair) -> Harness:
    """``--stale-after 1s``: two seconds on the fake clock make any failure stale."""
    return Harness(store, keypair, stale_after=timedelta(seconds=1))


def metric_lines(harness: Harness) -> list[str]:
    return harness.metrics.exposition().decode().splitlines()


def status_size(harness: Harness, name: str = "cluster-b") -> int:
    return len(json.dumps(harness.status(name), separators=(",", ":")))


def condition_view(harness: Harness, condition_type: str, name: str = "cluster-b") -> tuple[str, str, str]:
    found = harness.condition(condition_type, name)
    return found["status"], found["reason"], found["message"]


def reload(harness: Harness) -> None:
    assert isinstance(harness.store, StateDirStore)
    harness.store.reload()


# -- a crashed sync is visible (issue 14) -------------------------------------------------------------


def _raise(*_args: Any, **_kwargs: Any) -> Any:
    raise RuntimeError("boom")


@pytest.mark.parametrize(
    ("target", "stage"),
    [
        pytest.param("reconciler.sync.observe", "observe", id="observe"),
        pytest.param("federation.desired.desired_state", "decide", id="desired-state"),
        pytest.param("federation.status.next_status", "decide", id="next-status"),
        pytest.param("reconciler.report.record_metrics", "report", id="report"),
    ],
)
def test_a_sync_that_raises_ends_in_a_status_and_a_metric(
    harness: Harness, remote: DeckhouseExporter, monkeypatch: pytest.MonkeyPatch, target: str, stage: str
) -> None:
    assert harness.sync().ok
    entry = harness.service_entry(SEED)
    monkeypatch.setattr(target, _raise)
    harness.clock.advance(timedelta(seconds=2))
    # A new offer, so that every stage runs again (an unchanged document's plan is reused).
    remote.cluster.services.append({"hostname": "new.xyz.svc.cluster-b.local", "ports": [{"name": "http", "port": 80}]})

    (result,) = harness.sync().results

    assert (result.ok, result.stage, result.message) == (
        False,
        "internal",
        f"failed unexpectedly in stage {stage}: RuntimeError: boom",
    )
    message = (
        f"The sync failed unexpectedly in its {stage} stage (RuntimeError: boom); the last known objects are kept; "
        "the reconciler's log has the traceback."
    )
    assert condition_view(harness, conditions.SYNCED) == ("False", "InternalError", message)
    assert condition_view(harness, conditions.READY) == ("False", "InternalError", f"Synced: {message}")
    assert harness.condition(conditions.STALE)["status"] == "True"
    assert harness.service_entry(SEED) == entry
    assert harness.federation_pems() == [remote.cluster.root_ca_pem]  # the mesh keeps trusting the last good root
    lines = metric_lines(harness)
    assert f'istio_federation_sync_errors_total{{federation="cluster-b",stage="{stage}"}} 1.0' in lines
    assert 'istio_federation_fetch_errors_total{federation="cluster-b",stage="internal"} 1.0' in lines
    assert 'istio_federation_stale{federation="cluster-b"} 1.0' in lines
    (event,) = harness.events("InternalError")
    assert event["message"] == f"Synced: {message}"


@pytest.mark.parametrize(
    ("document", "body", "condition_type", "reason", "message"),
    [
        pytest.param(
            "public", None, conditions.PUBLIC, "NonOKResponse", "HTTP status 500 when fetching public metadata",
            id="HTTP 500, for comparison",
        ),
        pytest.param(
            "public", DEEP, conditions.PUBLIC, "InvalidJSON", f"invalid public metadata: {DEEP_MESSAGE}",
            id="public 100,000 deep",
        ),
        pytest.param(
            "public", huge_number("clusterUUID"), conditions.PUBLIC, "InvalidJSON",
            f"invalid public metadata: {HUGE_NUMBER_MESSAGE}", id="public 5,000-digit number",
        ),
        pytest.param(
            "private", DEEP, conditions.PRIVATE, "InvalidJSON", f"invalid private metadata: {DEEP_MESSAGE}",
            id="private 100,000 deep",
        ),
        pytest.param(
            "private", huge_number("ingressGateways"), conditions.PRIVATE, "InvalidJSON",
            f"invalid private metadata: {HUGE_NUMBER_MESSAGE}", id="private 5,000-digit number",
        ),
    ],
)  # fmt: skip
def test_hostile_documents_fail_cleanly_and_turn_stale_like_a_500(  # noqa: PLR0917 - pytest passes them so
    harness: Harness,
    remote: DeckhouseExporter,
    document: str,
    body: bytes | None,
    condition_type: str,
    reason: str,
    message: str,
) -> None:
    assert harness.sync().ok
    entry = harness.service_entry(SEED)
    if body is None:
        remote.mode = "500"
    elif document == "public":
        remote.public_body = body
    else:
        remote.private_body = body
    harness.clock.advance(timedelta(seconds=2))

    (result,) = harness.sync().results

    assert (result.ok, result.stage, result.message) == (False, document, message)
    assert condition_view(harness, condition_type) == ("False", reason, message)
    assert condition_view(harness, conditions.READY) == ("False", reason, f"{condition_type}: {message}")
    stale = harness.condition(conditions.STALE)
    assert (stale["status"], stale["reason"]) == ("True", "LastSyncTooOld")
    assert harness.service_entry(SEED) == entry
    assert f'istio_federation_fetch_errors_total{{federation="cluster-b",stage="{document}"}} 1.0' in (
        metric_lines(harness)
    )


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli_command(*args), capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, check=False)


def _stored_status(root: Path, name: str = "cluster-b") -> dict[str, Any]:
    obj = yaml.safe_load((root / "_cluster" / "istiofederation" / f"{name}.yaml").read_text(encoding="utf-8"))
    assert isinstance(obj, dict)
    return dict(obj["status"])


def _condition(status: dict[str, Any], condition_type: str) -> dict[str, Any]:
    found = conditions.find(status["conditions"], condition_type)
    assert found is not None, status
    return found


def test_reconciler_run_once_with_stale_after_1s_reports_a_deep_document(
    tmp_path: Path, remote: DeckhouseExporter, server_ca: trustme.CA, keypair: Keypair
) -> None:
    write_state(
        tmp_path,
        federation("cluster-b", remote.endpoint, ca=ca_pem(server_ca)),
        mesh_config_map(),
        identity.secret_for(keypair, NAMESPACE),
    )
    command = (
        "reconciler", "run", "--cluster-uuid", LOCAL_UUID, "--local-trust-domain", LOCAL_DOMAIN,
        "--state", str(tmp_path), "--once", "--stale-after", "1s",
    )  # fmt: skip
    first = _cli(*command)
    assert first.returncode == 0, first.stderr
    remote.private_body = DEEP
    time.sleep(1.5)  # past --stale-after: the next run finds the last success older than 1 s

    second = _cli(*command)

    assert second.returncode == 1
    assert "Traceback" not in second.stderr
    status = _stored_status(tmp_path)
    private = _condition(status, conditions.PRIVATE)
    assert (private["status"], private["reason"]) == ("False", "InvalidJSON")
    assert private["message"] == f"invalid private metadata: {DEEP_MESSAGE}"
    assert _condition(status, conditions.STALE)["status"] == "True"
    assert _condition(status, conditions.READY)["status"] == "False"
    assert (tmp_path / NAMESPACE / "serviceentry" / f"{SEED}.yaml").is_file()


# -- status stays bounded (issue 14) ------------------------------------------------------------------


def _invalid_services(count: int) -> list[dict[str, Any]]:
    return [{"hostname": f"bad host {n}\n", "ports": []} for n in range(count)]


def test_thirty_thousand_invalid_services_leave_a_small_status(harness: Harness, remote: DeckhouseExporter) -> None:
    assert harness.sync().ok
    gateways = remote.cluster.gateways
    document = {"ingressGateways": gateways, "publicServices": _invalid_services(30_000)}
    remote.private_body = json.dumps(document).encode()

    harness.sync()

    assert condition_view(harness, conditions.PRIVATE) == (
        "False",
        "InvalidJSON",
        'invalid private metadata: Invalid value: "<body>": array at publicServices has 30000 members, more than '
        "the limit of 20000",
    )
    assert status_size(harness) < 16 * 1024

    # As many as a document may hold: 19,999 skipped with their reasons, one imported.
    services = [*_invalid_services(19_999), {"hostname": SEED_HOST, "ports": [{"name": "http", "port": 8080}]}]
    remote.private_body = json.dumps({"ingressGateways": gateways, "publicServices": services}).encode()

    assert harness.sync().ok

    status = harness.status()
    size = status_size(harness)
    assert size < 64 * 1024, size
    entries = status["skippedEntries"]
    assert (entries["total"], entries["byReason"], entries["omitted"], len(entries["items"])) == (
        19_999,
        {"InvalidHostname": 19_999},
        19_979,
        20,
    )
    first = 'publicServices[0].hostname: Invalid value: "bad host 0\\n": must be a valid DNS name'
    assert entries["items"][0] == {
        "path": "publicServices[0]",
        "subject": "bad host 0?",
        "reason": "InvalidHostname",
        "message": first,
    }
    private = harness.condition(conditions.PRIVATE)
    assert (private["status"], private["reason"]) == ("True", "Succeeded")
    assert private["message"].startswith(
        f"Private metadata exchange succeeded. 19999 entries skipped (19999 InvalidHostname): bad host 0?: {first}; "
    )
    assert private["message"].endswith("; and 19996 more")
    assert 'istio_federation_skipped_entries{federation="cluster-b",reason="InvalidHostname"} 19999.0' in (
        metric_lines(harness)
    )
    assert harness.owned_names() == [SEED]


def test_ten_thousand_hosts_outside_the_trust_domain_cost_a_small_status_and_few_events(
    harness: Harness, remote: DeckhouseExporter
) -> None:
    remote.cluster.services = [
        {"hostname": f"svc{n:05d}.ns.svc.cluster-c.local", "ports": [{"name": "http", "port": 80}]}
        for n in range(10_000)
    ]

    harness.sync()

    status = harness.status()
    assert status_size(harness) < 64 * 1024, status_size(harness)
    assert status["servicesSummary"] == {"total": 10_000, "byState": {"Refused": 10_000}, "omitted": 9_950}
    assert len(status["services"]) == 50
    cached = len(status["metadataCache"]["private"]["publicServices"])  # what the remote offers, within a budget
    assert status["metadataCache"]["privateOmitted"] == {"ingressGateways": 0, "publicServices": 10_000 - cached}
    synced = harness.condition(conditions.SYNCED)
    assert (synced["status"], synced["reason"]) == ("False", "TrustDomainMismatch")
    assert synced["message"] == (
        "Imported 0 services, skipped 10000, denied 0. Every host the remote offers is outside spec.trustDomain "
        "cluster-b.local: its hosts are under cluster-c.local, so spec.trustDomain probably does not match the "
        "remote's real trust domain (create an IstioFederation with the right trustDomain; it is immutable). "
        "Refused: svc00000.ns.svc.cluster-c.local, svc00001.ns.svc.cluster-c.local, svc00002.ns.svc.cluster-c.local, "
        "svc00003.ns.svc.cluster-c.local, svc00004.ns.svc.cluster-c.local and 9995 more."
    )
    assert len(harness.events("HostRefused")) == 10
    (rest,) = harness.events("ServicesNotImported")
    assert rest["message"] == (
        "and 9990 more services not imported (Refused): see status.services, status.servicesSummary and the "
        "Synced condition"
    )
    before = len(harness.events())
    harness.sync()
    assert len(harness.events()) == before  # nothing changed, nothing more recorded


# -- port names (issue 14) ----------------------------------------------------------------------------


def test_port_names_no_service_could_have_are_skipped_and_never_written(
    harness: Harness, remote: DeckhouseExporter, tmp_path: Path
) -> None:
    hostile = ["UPPER", "a" * 30, "../x", "a/b", "x\x00", "http\nInjected: 1"]
    ports = [{"name": "http", "port": 8080}, *({"name": name, "port": 9000 + n} for n, name in enumerate(hostile))]
    remote.cluster.services = [{"hostname": SEED_HOST, "ports": ports}]

    assert harness.sync().ok

    entry = harness.service_entry(SEED)
    assert entry is not None
    assert entry["spec"]["ports"] == [{"name": "http", "number": 8080, "protocol": "HTTP"}]
    written = (tmp_path / NAMESPACE / "serviceentry" / f"{SEED}.yaml").read_text(encoding="utf-8")
    assert "Injected" not in written
    assert "UPPER" not in written
    entries = harness.status()["skippedEntries"]
    assert (entries["total"], entries["byReason"]) == (6, {"InvalidPortName": 6})
    assert [item["subject"] for item in entries["items"]] == [f"{SEED_HOST} port {9000 + n}" for n in range(6)]
    assert entries["items"][5]["message"] == (
        'publicServices[0].ports[6].name: Invalid value: "http\\nInjected: 1": must be a Service port name '
        "(IANA_SVC_NAME): 1 to 15 lowercase letters and digits, a letter among them, and single '-' between them"
    )


# -- identity claims (issue 14) -----------------------------------------------------------------------


def _impostor(ca: trustme.CA, keypair: Keypair, owner: DeckhouseExporter) -> DeckhouseExporter:
    """A remote for cluster-c.local that publishes cluster-b's clusterUUID (with its own key)."""
    exporter = deckhouse_remote(ca, keypair)
    exporter.cluster.cluster_uuid = owner.cluster.cluster_uuid
    exporter.cluster.cluster_domain = "cluster-c.local"
    exporter.cluster.services = [{"hostname": "evil.x.svc.cluster-c.local", "ports": [{"name": "http", "port": 80}]}]
    return exporter


def _conflict(uuid: str, owner: str = "cluster-b") -> str:
    return (
        f"the remote claims clusterUUID {uuid}, which IstioFederation {owner} already holds (its "
        f"status.metadataCache.public): refused, so that {owner} keeps working; two IstioFederations cannot name one "
        "cluster: check spec.metadataEndpoint, or delete the IstioFederation that is wrong"
    )


def test_a_remote_claiming_another_federations_cluster_uuid_is_refused(
    tmp_path: Path, harness: Harness, remote: DeckhouseExporter, server_ca: trustme.CA, keypair: Keypair
) -> None:
    assert harness.sync().ok
    before = harness.status("cluster-b")
    uuid = remote.cluster.cluster_uuid
    with _impostor(server_ca, keypair, remote) as impostor:
        write_state(
            tmp_path,
            federation("impostor", impostor.endpoint, ca=ca_pem(server_ca), trust_domain="cluster-c.local"),
        )
        reload(harness)

        harness.sync()

        public_requests = [path for path, _ in impostor.requests]
    assert condition_view(harness, conditions.PUBLIC, "impostor") == ("False", "ClusterUUIDConflict", _conflict(uuid))
    assert "metadataCache" not in harness.status("impostor")
    assert public_requests == ["/metadata/public/public.json"]  # no token was ever sent to it
    assert harness.status("cluster-b") == before  # the first federation is untouched ...
    known = trust.known_keys(harness.store.list(resources.ISTIO_FEDERATION))
    assert known.problems == ()  # ... and the exporter still trusts its cluster
    assert list(known.keys) == [uuid]


def test_two_new_federations_claiming_one_cluster_at_once_get_it_once(
    tmp_path: Path, remote: DeckhouseExporter, server_ca: trustme.CA, keypair: Keypair
) -> None:
    with _impostor(server_ca, keypair, remote) as impostor:
        write_state(
            tmp_path,
            federation("cluster-b", remote.endpoint, ca=ca_pem(server_ca)),
            federation("impostor", impostor.endpoint, ca=ca_pem(server_ca), trust_domain="cluster-c.local"),
            mesh_config_map(),
        )
        store = open_state(tmp_path)
        try:
            harness = Harness(store, keypair, concurrency=2)
            harness.sync()
            reasons = sorted(harness.condition(conditions.PUBLIC, name)["reason"] for name in ("cluster-b", "impostor"))
            holders = [
                name
                for name in ("cluster-b", "impostor")
                if "public" in (harness.status(name).get("metadataCache") or {})
            ]
            known = trust.known_keys(store.list(resources.ISTIO_FEDERATION))
        finally:
            store.stop()
    assert reasons == ["ClusterUUIDConflict", "Succeeded"]
    assert len(holders) == 1
    assert known.problems == ()


def test_of_two_federations_already_holding_one_uuid_the_older_keeps_it(
    tmp_path: Path, remote: DeckhouseExporter, server_ca: trustme.CA, keypair: Keypair
) -> None:
    uuid = remote.cluster.cluster_uuid
    with _impostor(server_ca, keypair, remote) as impostor:
        older = federation("cluster-b", remote.endpoint, ca=ca_pem(server_ca))
        older["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
        older["status"] = {"metadataCache": {"public": remote.cluster.public_document()}}
        newer = federation("impostor", impostor.endpoint, ca=ca_pem(server_ca), trust_domain="cluster-c.local")
        newer["metadata"]["creationTimestamp"] = "2026-06-01T00:00:00Z"
        newer["status"] = {"metadataCache": {"public": impostor.cluster.public_document()}}
        write_state(tmp_path, older, newer, mesh_config_map())
        store = open_state(tmp_path)
        try:
            assert trust.known_keys(store.list(resources.ISTIO_FEDERATION)).keys == {}  # written before this rule
            harness = Harness(store, keypair)
            harness.sync()
            impostor_status = harness.status("impostor")
            public = harness.condition(conditions.PUBLIC, "cluster-b")
            known = trust.known_keys(store.list(resources.ISTIO_FEDERATION))
        finally:
            store.stop()
    assert impostor_status["metadataCache"] == {}  # the claim it held is dropped
    refused = _condition(impostor_status, conditions.PUBLIC)
    assert (refused["reason"], refused["message"]) == ("ClusterUUIDConflict", _conflict(uuid))
    assert public["reason"] == "Succeeded"
    assert list(known.keys) == [uuid]
    assert known.problems == ()


# -- gateways pointing inside this cluster (issue 14) -------------------------------------------------


def test_gateways_in_refused_ranges_and_local_domains_are_left_out_and_named(
    store: StateDirStore, keypair: Keypair, remote: DeckhouseExporter
) -> None:
    local = LocalCluster(LOCAL_UUID, LOCAL_DOMAIN, refused_networks=(ipaddress.ip_network("10.96.0.0/12"),))
    harness = Harness(store, keypair, local=local)
    remote.cluster.gateways = [
        {"address": "10.96.0.10", "port": 15443},
        {"address": "gw.istio-system.svc.cluster-a.local", "port": 15443},
        {"address": "gw.ns.svc.cluster.local", "port": 15443},
        {"address": "10.0.0.10", "port": 15443},
    ]

    assert harness.sync().ok

    entry = harness.service_entry(SEED)
    assert entry is not None
    assert entry["spec"]["endpoints"] == [{"address": "10.0.0.10", "ports": {"http": 15443}}]
    assert condition_view(harness, conditions.PRIVATE) == (
        "True",
        "Succeeded",
        "Private metadata exchange succeeded. 3 entries skipped (3 ForbiddenAddress): 10.96.0.10: "
        "ingressGateways[0].address: Forbidden: 10.96.0.10 is in 10.96.0.0/12, a range of this cluster (refused "
        "networks); gw.istio-system.svc.cluster-a.local: ingressGateways[1].address: Forbidden: "
        "gw.istio-system.svc.cluster-a.local is under cluster-a.local, a domain of this cluster; "
        "gw.ns.svc.cluster.local: ingressGateways[2].address: Forbidden: gw.ns.svc.cluster.local is under "
        "cluster.local, a domain of this cluster",
    )


def test_refuse_gateway_cidr_is_a_flag_of_run_and_check(tmp_path: Path) -> None:
    base = ("--cluster-uuid", LOCAL_UUID, "--local-trust-domain", LOCAL_DOMAIN, "--state", str(tmp_path))
    for command in (("reconciler", "run", "--once"), ("check",)):
        result = _cli(*command, *base, "--refuse-gateway-cidr", "10.96.0.1/12")
        assert result.returncode == 2
        assert (
            "argument --refuse-gateway-cidr: '10.96.0.1/12' is not a CIDR (such as 10.96.0.0/12): "
            "10.96.0.1/12 has host bits set"
        ) in result.stderr


# -- an expired root CA (issue 14) --------------------------------------------------------------------


def _expired_root() -> tuple[str, str]:
    now = datetime.now(UTC).replace(microsecond=0)
    expired_at = now - timedelta(days=1)
    pem = pki.certificate_pem("expired-root", not_before=now - timedelta(days=400), not_after=expired_at)
    return pem, expired_at.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_an_expired_root_ca_is_refused_and_the_last_good_one_kept(
    harness: Harness, remote: DeckhouseExporter
) -> None:
    assert harness.sync().ok
    good = harness.status()
    root = remote.cluster.root_ca_pem
    remote.cluster.root_ca_pem, expired_at = _expired_root()
    harness.clock.advance(timedelta(seconds=30))

    harness.sync()

    assert condition_view(harness, conditions.PUBLIC) == (
        "False",
        "InvalidPublicMetadata",
        f'invalid public metadata: rootCA: Invalid value: "<PEM>": certificate CN=expired-root expired at '
        f"{expired_at}: the remote must publish its current root CA",
    )
    status = harness.status()
    assert status["metadataCache"] == good["metadataCache"]
    assert status["trustedRootCAs"] == good["trustedRootCAs"]
    assert harness.federation_pems() == [root]
    assert harness.owned_names() == [SEED]


def test_a_first_public_document_with_an_expired_root_ca_is_trusted_nowhere(
    harness: Harness, remote: DeckhouseExporter
) -> None:
    remote.cluster.root_ca_pem, _ = _expired_root()

    harness.sync()

    assert harness.condition(conditions.PUBLIC)["reason"] == "InvalidPublicMetadata"
    assert "trustedRootCAs" not in harness.status()
    assert harness.federation_pems() == []


# -- no ingress gateway (issue 14) --------------------------------------------------------------------


def test_no_usable_gateway_keeps_the_peers_objects_under_the_stale_policy(
    harness: Harness, remote: DeckhouseExporter
) -> None:
    assert harness.sync().ok
    entry, rule = harness.service_entry(SEED), harness.destination_rule(SEED)
    remote.cluster.gateways = []

    (result,) = harness.sync().results

    message = f"the remote publishes no ingress gateway, so none of its services can be reached; {KEPT}"
    assert (result.ok, result.stage, result.message) == (False, "private", message)
    assert condition_view(harness, conditions.PRIVATE) == ("False", "NoIngressGateways", message)
    assert harness.condition(conditions.SYNCED)["reason"] == "AwaitingMetadata"
    assert (harness.service_entry(SEED), harness.destination_rule(SEED)) == (entry, rule)

    unspecified = "0.0.0.0"  # noqa: S104 - an address a hostile remote publishes, never bound
    remote.cluster.gateways = [{"address": "127.0.0.1", "port": 15443}, {"address": unspecified, "port": 15443}]
    harness.clock.advance(timedelta(seconds=2))
    harness.sync()

    assert condition_view(harness, conditions.PRIVATE) == (
        "False",
        "NoIngressGateways",
        "every ingress gateway the remote publishes is refused: 2 gateways skipped (2 ForbiddenAddress): 127.0.0.1: "
        f"ingressGateways[0].address: Forbidden: 127.0.0.1 {LOOPBACK}; 0.0.0.0: ingressGateways[1].address: "
        f"Forbidden: 0.0.0.0 is an unspecified address: it would point into this cluster; {KEPT}",
    )
    assert harness.status()["skippedEntries"]["byReason"] == {"ForbiddenAddress": 2}
    assert harness.condition(conditions.STALE)["status"] == "True"
    assert (harness.service_entry(SEED), harness.destination_rule(SEED)) == (entry, rule)
    assert 'istio_federation_writes_total{federation="cluster-b",verb="delete"}' not in "\n".join(
        metric_lines(harness)
    )

    remote.cluster.gateways = [{"address": "10.0.0.10", "port": 15443}]
    assert harness.sync().ok
    assert harness.condition(conditions.READY)["status"] == "True"
    assert "skippedEntries" not in harness.status()


# -- a Deckhouse-shaped peer (issue 12) ---------------------------------------------------------------

DECKHOUSE_SERVICES: list[dict[str, Any]] = [
    {"hostname": "productpage.bookinfo.svc.cluster-b.local", "ports": [{"name": "http", "port": 9080}]},
    {"hostname": "legacy.bookinfo.svc.cluster-b.local", "ports": [{"name": "", "port": 80}]},
    # A UDP port as an exporter that sends protocols writes it; Deckhouse's sends none, so its
    # UDP ports look like TCP ones here (documented).
    {
        "hostname": "dns.infra.svc.cluster-b.local",
        "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53}],
    },
    {"hostname": "external.bookinfo.svc.cluster-b.local", "ports": []},
    {"hostname": "external2.bookinfo.svc.cluster-b.local", "ports": None},
]
DECKHOUSE_SKIPS = [
    (
        "publicServices[2].ports[0]",
        "dns.infra.svc.cluster-b.local port 53",
        "UnsupportedProtocol",
        'publicServices[2].ports[0].protocol: Invalid value: "UDP": UDP cannot cross the ingress gateway, which '
        "forwards TCP only",
    ),
    (
        "publicServices[3]",
        "external.bookinfo.svc.cluster-b.local",
        "NoPorts",
        "publicServices[3].ports: Required value: the remote publishes no ports for this service",
    ),
    (
        "publicServices[4]",
        "external2.bookinfo.svc.cluster-b.local",
        "NoPorts",
        "publicServices[4].ports: Required value: the remote publishes no ports for this service",
    ),
]


def test_a_deckhouse_peer_with_unnamed_udp_and_external_name_services_syncs_the_rest(
    harness: Harness, remote: DeckhouseExporter
) -> None:
    remote.cluster.services = DECKHOUSE_SERVICES

    assert harness.sync().ok

    imported = {
        "productpage.bookinfo.svc.cluster-b.local": [{"name": "http", "number": 9080, "protocol": "HTTP"}],
        "legacy.bookinfo.svc.cluster-b.local": [{"name": "tcp-80", "number": 80, "protocol": "TCP"}],
        "dns.infra.svc.cluster-b.local": [{"name": "dns-tcp", "number": 53, "protocol": "TCP"}],
    }
    for host, ports in imported.items():
        entry = harness.service_entry(ownership.managed_name(host))
        assert entry is not None, host
        assert entry["spec"]["ports"] == ports
    assert harness.status()["importedServices"] == 3
    entries = harness.status()["skippedEntries"]
    assert [(i["path"], i["subject"], i["reason"], i["message"]) for i in entries["items"]] == DECKHOUSE_SKIPS
    assert entries["byReason"] == {"NoPorts": 2, "UnsupportedProtocol": 1}
    named = "; ".join(f"{subject}: {message}" for _, subject, _, message in DECKHOUSE_SKIPS)
    assert condition_view(harness, conditions.PRIVATE) == (
        "True",
        "Succeeded",
        f"Private metadata exchange succeeded. 3 entries skipped (2 NoPorts, 1 UnsupportedProtocol): {named}",
    )
    assert harness.condition(conditions.READY)["status"] == "True"
    lines = metric_lines(harness)
    assert 'istio_federation_skipped_entries{federation="cluster-b",reason="NoPorts"} 2.0' in lines
    assert 'istio_federation_skipped_entries{federation="cluster-b",reason="UnsupportedProtocol"} 1.0' in lines

    remote.cluster.services = DECKHOUSE_SERVICES[:1]
    assert harness.sync().ok
    assert 'istio_federation_skipped_entries{federation="cluster-b",reason="NoPorts"} 0.0' in metric_lines(harness)


# -- explicit exportTo (issue 12) ---------------------------------------------------------------------


def test_export_to_comes_from_the_annotation_else_from_the_reconciler(
    store: StateDirStore, keypair: Keypair, remote: DeckhouseExporter, tmp_path: Path
) -> None:
    harness = Harness(store, keypair, local=LocalCluster(LOCAL_UUID, LOCAL_DOMAIN, export_to=("mesh-clients",)))
    assert harness.sync().ok
    for obj in (harness.service_entry(SEED), harness.destination_rule(SEED)):
        assert obj is not None
        assert obj["spec"]["exportTo"] == ["mesh-clients"]

    annotated = harness.federation()
    annotated["metadata"]["annotations"] = {"federation.istio.deckhouse.io/export-to": "shop, web"}
    write_state(tmp_path, annotated)
    reload(harness)
    assert harness.sync().ok
    for obj in (harness.service_entry(SEED), harness.destination_rule(SEED)):
        assert obj is not None
        assert obj["spec"]["exportTo"] == ["shop", "web"]

    annotated["metadata"]["annotations"] = {"federation.istio.deckhouse.io/export-to": "*,shop"}
    write_state(tmp_path, annotated)
    reload(harness)
    entry = harness.service_entry(SEED)
    harness.sync()
    assert condition_view(harness, conditions.PUBLIC) == (
        "False",
        "ConfigurationError",
        "annotation federation.istio.deckhouse.io/export-to '*,shop' is not a usable exportTo: exportTo: Forbidden: "
        "cannot have both public (*) and non-public exportTo values for a resource: fix the annotation, or remove it",
    )
    assert harness.service_entry(SEED) == entry


def test_export_to_flag_is_checked_at_start(tmp_path: Path) -> None:
    base = ("--cluster-uuid", LOCAL_UUID, "--local-trust-domain", LOCAL_DOMAIN, "--state", str(tmp_path))
    result = _cli("reconciler", "run", "--once", *base, "--export-to", "*", "--export-to", "shop")
    assert result.returncode == 2
    assert result.stderr.endswith(
        "istio-federation: error: --export-to: exportTo: Forbidden: cannot have both public (*) and non-public "
        "exportTo values for a resource\n"
    )
