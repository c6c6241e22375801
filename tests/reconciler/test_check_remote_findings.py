"""``check`` says what a sync says about the remote (issues 12 and 14): skipped entries, gateways
inside this cluster, a clock skew the remote measured, a trust domain that does not match, a
clusterUUID another federation holds, an expired root CA.

The pure half (:func:`reconciler.check.evaluate`) gets exactly the bytes a remote answered; one
test runs the real ``check -o json`` against the Deckhouse fixture.
"""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme

from federation.keys import Keypair
from reconciler import check
from reconciler.check.report import CheckResult
from reconciler.fetch import Response
from tests import pki
from tests.deckhouse_fixture import DeckhouseCluster, DeckhouseExporter
from tests.reconciler.harness import LOCAL_DOMAIN, LOCAL_UUID, ca_pem, federation
from tests.reconciler.test_check import run_check, seed, sync
from tests.reconciler.test_hostile import DECKHOUSE_SERVICES, DECKHOUSE_SKIPS

NAME = "cluster-b"
ENDPOINT = "https://metadata.cluster-b.example/metadata/"
NOW = datetime.now(UTC).replace(microsecond=0)
REMOTE = DeckhouseCluster(root_ca_pem=ca_pem(trustme.CA()))
SETTINGS = check.CheckSettings(check.LocalCluster(LOCAL_UUID, LOCAL_DOMAIN))


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2).encode()


def _observation(
    *,
    public: dict[str, Any] | None = None,
    private: bytes | None = None,
    private_status: int = 200,
    owners: dict[str, str] | None = None,
    trust_domain: str = "cluster-b.local",
) -> check.Observation:
    obj = federation(NAME, ENDPOINT, ca="", trust_domain=trust_domain)
    private_body = private if private is not None else _json(REMOTE.private_document())
    return check.Observation(
        obj,
        NOW,
        public=check.Fetched(
            f"{ENDPOINT}public/public.json", Response(200, _json(public or REMOTE.public_document()), "")
        ),
        private=check.Fetched(f"{ENDPOINT}private/federation.json", Response(private_status, private_body, "")),
        cluster_uuid_owners=owners or {},
    )


def _result(report: check.FederationReport, name: str) -> CheckResult:
    (found,) = [result for result in report.checks if result.name == name]
    return found


def test_the_private_line_names_skipped_entries_and_json_carries_them() -> None:
    body = _json({"ingressGateways": REMOTE.gateways, "publicServices": DECKHOUSE_SERVICES})

    private = _result(check.evaluate(_observation(private=body), SETTINGS), "private")

    named = "; ".join(f"{subject}: {message}" for _, subject, _, message in DECKHOUSE_SKIPS)
    assert private.line() == (
        "✓ private: readable with our JWT: 2 ingress gateways, 3 public services; 3 entries skipped "
        f"(2 NoPorts, 1 UnsupportedProtocol): {named}"
    )
    assert private.to_json()["skippedEntries"] == {
        "total": 3,
        "byReason": {"NoPorts": 2, "UnsupportedProtocol": 1},
        "items": [
            {"path": path, "subject": subject, "reason": reason, "message": message}
            for path, subject, reason, message in DECKHOUSE_SKIPS
        ],
        "omitted": 0,
    }


def test_gateways_inside_this_cluster_are_named_and_none_left_fails() -> None:
    local = check.LocalCluster(LOCAL_UUID, LOCAL_DOMAIN, refused_networks=(ipaddress.ip_network("10.0.0.0/8"),))
    settings = check.CheckSettings(local)

    private = _result(check.evaluate(_observation(), settings), "private")

    assert private.line() == (
        "✗ private: every ingress gateway the remote publishes is refused: 2 gateways skipped (2 ForbiddenAddress): "
        "10.0.0.10: ingressGateways[0].address: Forbidden: 10.0.0.10 is in 10.0.0.0/8, a range of this cluster "
        "(refused networks); 10.0.0.11: ingressGateways[1].address: Forbidden: 10.0.0.11 is in 10.0.0.0/8, a range "
        "of this cluster (refused networks); the last known objects are kept until it publishes a usable one; "
        "fix: the remote must publish an ingress gateway this cluster can reach (its exporter's --advertise, or its "
        "gateway Service's load balancer); until then the last known objects are kept"
    )
    assert private.to_json()["skippedEntries"]["byReason"] == {"ForbiddenAddress": 2}


def test_a_clock_offset_the_remote_measured_is_in_the_fix() -> None:
    refusal = {
        "error": "invalid_token",
        "reason": "not yet valid: nbf is 600 s ahead of this cluster's clock (leeway 300 s): clock skew suspected; "
        "synchronize the clocks (NTP)",
        "clockOffsetSeconds": 600,
    }

    private = _result(check.evaluate(_observation(private=_json(refusal), private_status=401), SETTINGS), "private")

    assert private.line() == (
        f"✗ private: HTTP 401: the remote refused the token's validity period (the remote said: {refusal['reason']}); "
        "fix: synchronize the clocks of both clusters (NTP): this cluster's clock is 600 s ahead of the remote's "
        "(measured by the remote)"
    )


def test_every_host_outside_the_trust_domain_points_at_spec_trust_domain() -> None:
    body = _json(
        {
            "ingressGateways": REMOTE.gateways,
            "publicServices": [
                {"hostname": "bar.xyz.svc.cluster-c.local", "ports": [{"name": "http", "port": 80}]},
                {"hostname": "foo.shop.svc.cluster-c.local", "ports": [{"name": "http", "port": 80}]},
            ],
        }
    )

    refused = _result(check.evaluate(_observation(private=body), SETTINGS), "refused")

    assert refused.line() == (
        "✗ refused: every host the remote offers is outside spec.trustDomain cluster-b.local (its hosts are under "
        "cluster-c.local): spec.trustDomain probably does not match the remote's real trust domain; 2 hosts not "
        "imported: bar.xyz.svc.cluster-c.local: host is outside the federation's trust domain cluster-b.local; "
        "foo.shop.svc.cluster-c.local: host is outside the federation's trust domain cluster-b.local; fix: if the "
        "remote's trust domain is cluster-c.local, create an IstioFederation with that trustDomain (spec.trustDomain "
        f"is immutable) and delete {NAME}; otherwise the remote must publish hosts under cluster-b.local"
    )


def test_a_cluster_uuid_another_federation_holds_fails_the_public_check() -> None:
    report = check.evaluate(_observation(owners={REMOTE.cluster_uuid: "cluster-b-old"}), SETTINGS)

    assert _result(report, "public").line() == (
        f"✗ public: the remote claims clusterUUID {REMOTE.cluster_uuid}, which IstioFederation cluster-b-old already "
        "holds (its status.metadataCache.public): refused, so that cluster-b-old keeps working; two IstioFederations "
        "cannot name one cluster: check spec.metadataEndpoint, or delete the IstioFederation that is wrong; fix: if "
        f"cluster-b-old is right, correct or delete IstioFederation {NAME}; if it is the wrong one, fix or delete "
        "cluster-b-old"
    )
    assert _result(report, "private").skipped


def test_an_expired_root_ca_fails_the_public_check() -> None:
    expired_at = NOW - timedelta(hours=1)
    root = pki.certificate_pem("old-root", not_before=NOW - timedelta(days=30), not_after=expired_at)

    report = check.evaluate(_observation(public={**REMOTE.public_document(), "rootCA": root}), SETTINGS)

    assert _result(report, "public").line() == (
        '✗ public: the public document is invalid: rootCA: Invalid value: "<PEM>": certificate CN=old-root expired '
        f"at {expired_at.strftime('%Y-%m-%dT%H:%M:%SZ')}: the remote must publish its current root CA; fix: the "
        "remote's metadata exporter must publish its Istio root CA certificate as rootCA: fix it in the remote cluster"
    )


def test_check_json_of_a_deckhouse_peer_lists_what_it_skipped(
    tmp_path: Path,
    remote: DeckhouseExporter,
    server_ca: trustme.CA,
    keypair: Keypair,
    capsys: pytest.CaptureFixture[str],
) -> None:
    remote.cluster.services = DECKHOUSE_SERVICES
    root = tmp_path / "cluster-a"
    seed(root, remote.endpoint, ca_pem(server_ca), keypair)
    sync(root, keypair)

    code, out = run_check(root, capsys, "-o", "json")

    assert code == 0, out
    (report,) = json.loads(out)["federations"]
    (private,) = [entry for entry in report["checks"] if entry["name"] == "private"]
    assert private["ok"] is True
    assert [
        (item["path"], item["subject"], item["reason"], item["message"]) for item in private["skippedEntries"]["items"]
    ] == DECKHOUSE_SKIPS
