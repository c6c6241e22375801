"""``federation.documents``: our wire classes fit Deckhouse's shapes, and Deckhouse's documents parse."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from federation import keys
from federation.api_status import status_cause
from federation.documents.ingress_gateways import IngressGateway
from federation.documents.private import PrivateMetadata, parse_private
from federation.documents.public import PublicMetadata, parse_public, root_ca_problem
from federation.documents.public_services import PublicService, ServicePort
from federation.documents.reading import DocumentError, decode_json
from tests import deckhouse_shapes, pki
from tests.exporter.fixtures import CLUSTER_UUID, root_ca_pem


def test_public_metadata_to_json_fits_deckhouse_shape_and_parses_back() -> None:
    pem = keys.Keypair.generate().public_pem
    public = PublicMetadata(CLUSTER_UUID, pem, root_ca_pem())
    wire = json.loads(json.dumps(public.to_json()))

    assert deckhouse_shapes.check_public(wire) == []
    assert parse_public(wire) == public


def test_private_metadata_to_json_fits_deckhouse_shape_and_parses_back() -> None:
    private = PrivateMetadata(
        (IngressGateway("203.0.113.10", 15443), IngressGateway("gw.example.com", 443)),
        (PublicService("reviews.bookinfo.svc.cluster-a.local", (ServicePort("http", 9080, "HTTP"),)),),
    )
    wire = json.loads(json.dumps(private.to_json()))

    assert deckhouse_shapes.check_private(wire) == []
    assert wire == {
        "ingressGateways": [{"address": "203.0.113.10", "port": 15443}, {"address": "gw.example.com", "port": 443}],
        "publicServices": [
            {
                "hostname": "reviews.bookinfo.svc.cluster-a.local",
                "ports": [{"name": "http", "port": 9080, "protocol": "HTTP"}],
            }
        ],
    }
    parsed = parse_private(wire)
    assert parsed.public_services == private.public_services
    assert set(parsed.ingress_gateways) == set(private.ingress_gateways)


def test_deckhouse_private_document_without_protocol_parses_with_derived_protocols() -> None:
    # The example of the reference §2.5, as a Deckhouse exporter sends it (no "protocol").
    body = json.dumps(
        {
            "ingressGateways": [{"address": "1.2.3.4", "port": 15443}],
            "publicServices": [
                {
                    "hostname": "productpage.bookinfo.svc.cluster-b.local",
                    "ports": [
                        {"name": "http", "port": 9080},
                        {"name": "grpc-api", "port": 9090},
                        {"name": "db", "port": 5432},
                    ],
                }
            ],
        },
        indent=2,
    ).encode()
    parsed = parse_private(decode_json(body, "private metadata"))

    assert deckhouse_shapes.check_private(json.loads(body)) == []
    assert [port.port for port in parsed.public_services[0].ports] == [5432, 9080, 9090]
    assert {port.name: port.protocol for port in parsed.public_services[0].ports} == {
        "http": "HTTP",
        "grpc-api": "HTTP2",
        "db": "TCP",
    }


def test_deckhouse_public_document_with_deckhouse_key_labels_parses() -> None:
    keypair = keys.Keypair.generate()
    wire = {
        "clusterUUID": CLUSTER_UUID,
        "authnKeyPub": keys.public_key_pem(keypair.private_key.public_key(), deckhouse_labels=True),
        "rootCA": root_ca_pem(),
    }
    assert deckhouse_shapes.check_public(wire) == []
    assert parse_public(wire).cluster_uuid == CLUSTER_UUID


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ({"clusterUUID": "x", "authnKeyPub": "", "rootCA": "y"}, "public.json.authnKeyPub: must be a non-empty string"),
        ({"clusterUUID": "x", "rootCA": "y"}, "public.json: missing keys ['authnKeyPub']"),
        ({"clusterUUID": "x", "authnKeyPub": "k", "rootCA": "y", "extra": 1}, "public.json: unexpected keys ['extra']"),
    ],
    ids=["empty field", "missing field", "extra field"],
)
def test_the_shape_checker_itself_catches_deviations(doc: dict[str, object], problem: str) -> None:
    assert problem in deckhouse_shapes.check_public(doc)


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ({"ingressGateways": [], "publicServices": None}, "federation.json.publicServices: must be a list"),
        (
            {"ingressGateways": [{"address": "a", "port": "1"}], "publicServices": []},
            "ingressGateways[0].port: must be an integer port",
        ),
        (
            {
                "ingressGateways": [],
                "publicServices": [{"hostname": "h", "ports": [{"name": "x", "port": 1, "protocol": "UDP"}]}],
            },
            "publicServices[0].ports[0].protocol: must be one of ['HTTP', 'HTTP2', 'TCP', 'TLS']",
        ),
    ],
    ids=["null list", "string port", "bad protocol"],
)
def test_the_private_shape_checker_catches_deviations(doc: dict[str, object], problem: str) -> None:
    assert problem in deckhouse_shapes.check_private(doc)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([1], 'invalid public metadata: Invalid value: "array": must be a JSON object'),
        (None, 'invalid public metadata: Invalid value: "null": must be a JSON object'),
        ("text", 'invalid public metadata: Invalid value: "string": must be a JSON object'),
    ],
    ids=["array", "null", "string"],
)
def test_a_document_that_is_not_an_object_is_named_by_its_json_type(document: object, message: str) -> None:
    with pytest.raises(DocumentError) as raised:
        parse_public(document)
    assert str(raised.value) == message
    assert status_cause(raised.value.errors[0]) == {
        "reason": "FieldValueInvalid",
        "message": message.removeprefix("invalid public metadata: "),
        "field": "",
    }


def test_a_list_of_the_wrong_type_is_named_by_its_json_type() -> None:
    with pytest.raises(DocumentError) as raised:
        parse_private({"ingressGateways": {"address": "x"}, "publicServices": []})
    assert str(raised.value) == 'invalid private metadata: ingressGateways: Invalid value: "object": must be a list'


def test_a_next_root_is_accepted_beside_todays_but_not_alone() -> None:
    now = datetime(2026, 11, 30, tzinfo=UTC)
    today = pki.certificate_pem("today", not_before=now - timedelta(days=1), not_after=now + timedelta(days=300))
    # A few minutes ahead is clock skew between clusters, not a future root.
    skewed = pki.certificate_pem("skewed", not_before=now + timedelta(minutes=3), not_after=now + timedelta(days=300))
    upcoming = pki.certificate_pem("next", not_before=now + timedelta(days=30), not_after=now + timedelta(days=400))
    assert root_ca_problem(today + upcoming, now=now) is None
    assert root_ca_problem(skewed, now=now) is None
    assert root_ca_problem(upcoming, now=now) == (
        "certificate CN=next is not valid before 2026-12-30T00:00:00Z and no certificate in rootCA is valid now: "
        "the remote must publish the root CA it signs with today (beside its next one)"
    )
