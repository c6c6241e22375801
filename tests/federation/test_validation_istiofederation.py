"""IstioFederation admission rules: one valid fixture, one change per case, exact messages."""

from __future__ import annotations

import copy
import datetime
import json
from collections.abc import Callable
from typing import Any

import pytest

from federation import ownership
from federation.admission_response import AdmissionResponse
from federation.index import ObjectIndex
from federation.validation import registry
from federation.validation.attributes import Attributes, Context
from tests.pki import NOW, certificate_pem

KIND = "IstioFederation"
PREFIX = 'IstioFederation "cluster-b" is invalid: '
ENDPOINT = "https://istio-metadata.cluster-b.example.com/metadata/"
LOCAL_TRUST_DOMAIN = "cluster-a.local"


def federation(name: str = "cluster-b", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "deckhouse.io/v1alpha1",
        "kind": KIND,
        "metadata": {"name": name},
        "spec": {"trustDomain": "cluster-b.local", "metadataEndpoint": ENDPOINT, **spec},
    }


def existing_index() -> ObjectIndex:
    index = ObjectIndex()
    index.apply(
        "ADDED",
        federation("cluster-c", trustDomain="cluster-c.local", metadataEndpoint="https://meta.c.example.com/metadata/"),
    )
    return index


def admit(
    obj: dict[str, Any] | None,
    *,
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
    index: ObjectIndex | None = None,
) -> AdmissionResponse:
    subject = obj if obj is not None else old
    assert subject is not None
    attributes = Attributes(
        operation=operation,
        group="deckhouse.io",
        resource="istiofederations",
        kind=KIND,
        name=subject["metadata"]["name"],
        namespace="",
        obj=obj,
        old=old,
        username="kubernetes-admin",
    )
    context = Context(index=index or existing_index(), local_trust_domain=LOCAL_TRUST_DOMAIN, now=NOW)
    return registry.admit(attributes, context)


def with_spec(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def change(obj: dict[str, Any]) -> None:
        for key, value in changes.items():
            if value is None:
                obj["spec"].pop(key, None)
            else:
                obj["spec"][key] = value

    return change


def test_valid_fixture_is_allowed_without_warnings() -> None:
    decision = admit(federation())
    assert decision == AdmissionResponse(allowed=True, warnings=())


LABEL_RULE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
SUBDOMAIN_RULE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)
EXPIRED_CA = certificate_pem("old-ca", not_after=NOW - datetime.timedelta(days=1))
LEAF = certificate_pem("leaf.example.com", ca=False, dns_names=("leaf.example.com",))
SELF_SIGNED_ENDPOINT = certificate_pem(
    "istio-metadata.cluster-b.example.com", ca=False, dns_names=("istio-metadata.cluster-b.example.com",)
)
NO_CONSTRAINTS = certificate_pem("bare", basic_constraints=False)

DENIALS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    (
        "name-not-a-label",
        lambda obj: obj["metadata"].update(name="cluster.b"),
        'IstioFederation "cluster.b" is invalid: metadata.name: Invalid value: "cluster.b": '
        f'{LABEL_RULE} (character "." at position 7 is not allowed)',
    ),
    (
        "trust-domain-missing",
        with_spec(trustDomain=None),
        PREFIX + "spec.trustDomain: Required value: the remote cluster's trust domain, e.g. cluster-b.local",
    ),
    (
        "trust-domain-uppercase",
        with_spec(trustDomain="Cluster-B.local"),
        PREFIX + 'spec.trustDomain: Invalid value: "Cluster-B.local": '
        f'{SUBDOMAIN_RULE} (character "C" at position 0 is not allowed)',
    ),
    (
        "trust-domain-underscore",
        with_spec(trustDomain="cluster_b.local"),
        PREFIX + 'spec.trustDomain: Invalid value: "cluster_b.local": '
        f'{SUBDOMAIN_RULE} (character "_" at position 7 is not allowed)',
    ),
    (
        "trust-domain-empty-label",
        with_spec(trustDomain="cluster-b..local"),
        PREFIX + 'spec.trustDomain: Invalid value: "cluster-b..local": '
        f"{SUBDOMAIN_RULE} (it has an empty label: two dots in a row, or a leading or trailing dot)",
    ),
    (
        "trust-domain-is-local",
        with_spec(trustDomain="cluster-a.local"),
        PREFIX + 'spec.trustDomain: Invalid value: "cluster-a.local": must differ from this cluster\'s own '
        "trust domain: an IstioFederation points at a remote cluster",
    ),
    (
        "trust-domain-cluster-local",
        with_spec(trustDomain="cluster.local"),
        PREFIX + 'spec.trustDomain: Invalid value: "cluster.local": cluster.local cannot be federated: every '
        "federated cluster needs its own unique cluster domain",
    ),
    (
        "trust-domain-duplicate",
        with_spec(trustDomain="cluster-c.local"),
        PREFIX + 'spec.trustDomain: Duplicate value: "cluster-c.local": already federated by IstioFederation '
        '"cluster-c"; each remote cluster needs exactly one IstioFederation: edit "cluster-c" instead',
    ),
    (
        "trust-domain-not-a-string",
        with_spec(trustDomain=42),
        PREFIX + "spec.trustDomain: Invalid value: 42: must be a string",
    ),
    (
        "endpoint-missing",
        with_spec(metadataEndpoint=None),
        PREFIX + "spec.metadataEndpoint: Required value: the remote's metadata URL, e.g. " + ENDPOINT,
    ),
    (
        "endpoint-http",
        with_spec(metadataEndpoint="http://istio-metadata.cluster-b.example.com/metadata/"),
        PREFIX + 'spec.metadataEndpoint: Invalid value: "http://istio-metadata.cluster-b.example.com/metadata/": '
        "must be an https:// URL (got scheme 'http'); metadata must be fetched over TLS",
    ),
    (
        "endpoint-userinfo",
        with_spec(metadataEndpoint="https://admin:secret@meta.example.com/metadata/"),
        PREFIX + 'spec.metadataEndpoint: Invalid value: "https://admin:secret@meta.example.com/metadata/": '
        "must not contain user information (user@ or user:password@); credentials do not belong in the spec",
    ),
    (
        "endpoint-query",
        with_spec(metadataEndpoint="https://meta.example.com/metadata/?x=1"),
        PREFIX + 'spec.metadataEndpoint: Invalid value: "https://meta.example.com/metadata/?x=1": '
        "must not contain a query string",
    ),
    (
        "endpoint-fragment",
        with_spec(metadataEndpoint="https://meta.example.com/metadata/#top"),
        PREFIX + 'spec.metadataEndpoint: Invalid value: "https://meta.example.com/metadata/#top": '
        "must not contain a fragment",
    ),
    (
        "endpoint-bad-host",
        with_spec(metadataEndpoint="https://meta_data.example.com/metadata/"),
        PREFIX + 'spec.metadataEndpoint: Invalid value: "https://meta_data.example.com/metadata/": '
        "host 'meta_data.example.com' is neither a valid DNS name nor an IP address",
    ),
    (
        "endpoint-port-out-of-range",
        with_spec(metadataEndpoint="https://meta.example.com:70000/metadata/"),
        PREFIX + 'spec.metadataEndpoint: Invalid value: "https://meta.example.com:70000/metadata/": '
        "is not a valid URL (Port out of range 0-65535); use the form " + ENDPOINT,
    ),
    (
        "endpoint-port-zero",
        with_spec(metadataEndpoint="https://meta.example.com:0/metadata/"),
        PREFIX + 'spec.metadataEndpoint: Invalid value: "https://meta.example.com:0/metadata/": '
        "port 0 is out of range 1-65535",
    ),
    (
        "endpoint-no-path",
        with_spec(metadataEndpoint="https://meta.example.com"),
        PREFIX + 'spec.metadataEndpoint: Invalid value: "https://meta.example.com": must include the path '
        "where the metadata is published, e.g. " + ENDPOINT,
    ),
    (
        "endpoint-duplicate",
        with_spec(metadataEndpoint="https://META.c.example.com:443/metadata"),
        PREFIX + 'spec.metadataEndpoint: Duplicate value: "https://META.c.example.com:443/metadata": already used '
        'by IstioFederation "cluster-c"; one remote cluster is federated by one IstioFederation',
    ),
    (
        "ca-not-pem",
        with_spec(metadata={"ca": "not a certificate"}),
        PREFIX + 'spec.metadata.ca: Invalid value: "<PEM>": must be PEM-encoded X.509 certificate(s)',
    ),
    (
        "ca-expired",
        with_spec(metadata={"ca": EXPIRED_CA}),
        PREFIX + 'spec.metadata.ca: Invalid value: "<PEM>": certificate 1 (CN=old-ca) expired at '
        f"{(NOW - datetime.timedelta(days=1)):%Y-%m-%dT%H:%M:%SZ}; put the remote's current CA here",
    ),
    (
        "ca-is-a-leaf",
        with_spec(metadata={"ca": LEAF}),
        PREFIX + 'spec.metadata.ca: Invalid value: "<PEM>": certificate 1 (CN=leaf.example.com) is not a CA '
        "certificate (basicConstraints CA:TRUE) nor the endpoint's own self-signed certificate; put the CA that "
        "signed the endpoint's certificate here",
    ),
    (
        "ca-second-of-bundle-without-constraints",
        with_spec(metadata={"ca": certificate_pem("good-ca") + NO_CONSTRAINTS}),
        PREFIX + 'spec.metadata.ca: Invalid value: "<PEM>": certificate 2 (CN=bare) is not a CA '
        "certificate (basicConstraints CA:TRUE) nor the endpoint's own self-signed certificate; put the CA that "
        "signed the endpoint's certificate here",
    ),
    (
        "insecure-not-bool",
        with_spec(metadata={"insecureSkipVerify": "yes"}),
        PREFIX + 'spec.metadata.insecureSkipVerify: Invalid value: "yes": must be true or false',
    ),
    (
        "spec-missing",
        lambda obj: obj.pop("spec"),
        PREFIX + "spec: Required value: must contain trustDomain and metadataEndpoint",
    ),
]


@pytest.mark.parametrize(("change", "message"), [(c, m) for _, c, m in DENIALS], ids=[i for i, _, _ in DENIALS])
def test_denials(change: Callable[[dict[str, Any]], None], message: str) -> None:
    obj = federation()
    change(obj)
    decision = admit(obj)
    assert not decision.allowed
    assert decision.message == message
    assert decision.status is not None
    assert decision.status["code"] == 422
    assert decision.status["reason"] == "Invalid"
    assert "denied" not in decision.message


def test_all_problems_are_reported_at_once_with_causes() -> None:
    obj = federation("Bad_Name", trustDomain="cluster-a.local", metadataEndpoint="http://x.example.com/m/")
    decision = admit(obj)
    assert decision.message == (
        'IstioFederation "Bad_Name" is invalid: ['
        f'metadata.name: Invalid value: "Bad_Name": {LABEL_RULE} (character "B" at position 0 is not allowed), '
        'spec.trustDomain: Invalid value: "cluster-a.local": must differ from this cluster\'s own trust domain: '
        "an IstioFederation points at a remote cluster, "
        'spec.metadataEndpoint: Invalid value: "http://x.example.com/m/": must be an https:// URL (got scheme '
        "'http'); metadata must be fetched over TLS]"
    )
    assert decision.status is not None
    assert [cause["field"] for cause in decision.status["details"]["causes"]] == [
        "metadata.name",
        "spec.trustDomain",
        "spec.metadataEndpoint",
    ]
    assert decision.status["details"]["causes"][1] == {
        "reason": "FieldValueInvalid",
        "message": 'Invalid value: "cluster-a.local": must differ from this cluster\'s own trust domain: '
        "an IstioFederation points at a remote cluster",
        "field": "spec.trustDomain",
    }


@pytest.mark.parametrize(
    ("metadata", "warnings"),
    [
        (
            {"insecureSkipVerify": True},
            ["spec.metadata.insecureSkipVerify: TLS of the metadata endpoint is not verified; set metadata.ca"],
        ),
        (
            {"insecureSkipVerify": True, "ca": certificate_pem("remote-ca")},
            ["spec.metadata.insecureSkipVerify is ignored because spec.metadata.ca is set"],
        ),
        ({"ca": SELF_SIGNED_ENDPOINT}, []),
        ({"ca": certificate_pem("remote-ca") + certificate_pem("next-remote-ca")}, []),
        ({"insecureSkipVerify": False}, []),
    ],
    ids=["insecure", "insecure-with-ca", "endpoint-self-signed", "ca-bundle", "secure"],
)
def test_allowed_with_warnings(metadata: dict[str, Any], warnings: list[str]) -> None:
    decision = admit(federation(metadata=metadata))
    assert decision.allowed
    assert decision.warnings == tuple(warnings)
    assert all(len(w) <= 120 and w.isprintable() for w in decision.warnings)


def test_update_may_not_change_trust_domain() -> None:
    old = federation()
    new = copy.deepcopy(old)
    new["spec"]["trustDomain"] = "cluster-d.local"
    decision = admit(new, operation="UPDATE", old=old)
    assert decision.message == (
        PREFIX + 'spec.trustDomain: Invalid value: "cluster-d.local": field is immutable (was '
        "'cluster-b.local'); create a new IstioFederation for the new trust domain and delete this one"
    )


def test_update_does_not_conflict_with_itself() -> None:
    index = existing_index()
    old = federation()
    index.apply("ADDED", old)
    new = copy.deepcopy(old)
    new["spec"]["metadata"] = {"ca": certificate_pem("remote-ca")}
    assert admit(new, operation="UPDATE", old=old, index=index).allowed


def test_delete_is_allowed_and_warns_with_the_number_of_owned_service_entries() -> None:
    index = existing_index()
    old = federation()
    index.apply("ADDED", old)
    for host in ("a.ns.svc.cluster-b.local", "b.ns.svc.cluster-b.local"):
        index.apply(
            "ADDED",
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "ServiceEntry",
                "metadata": {
                    "name": ownership.managed_name(host),
                    "namespace": "istio-federation",
                    "labels": ownership.ownership_labels("cluster-b"),
                },
                "spec": {"hosts": [host]},
            },
        )
    decision = admit(None, operation="DELETE", old=old, index=index)
    assert decision == AdmissionResponse(
        allowed=True,
        warnings=(
            "IstioFederation cluster-b owns 2 ServiceEntries; the reconciler deletes them with their DestinationRules",
        ),
    )


def test_delete_of_federation_without_objects_has_no_warning() -> None:
    assert admit(None, operation="DELETE", old=federation()) == AdmissionResponse(allowed=True)


# --- control characters: Python's ``$`` matches before a final newline, ``urlsplit`` drops CR, LF and tab --

HOSTILE_VARIANTS = {
    "trailing-lf": lambda value: value + "\n",
    "trailing-crlf": lambda value: value + "\r\n",
    "embedded-cr": lambda value: value[:3] + "\r" + value[3:],
    "embedded-lf": lambda value: value[:3] + "\n" + value[3:],
    "embedded-nul": lambda value: value[:3] + "\x00" + value[3:],
    "embedded-tab": lambda value: value[:3] + "\t" + value[3:],
    "leading-space": lambda value: " " + value,
}


def first_bad(value: str) -> tuple[str, int]:
    position = next(i for i, char in enumerate(value) if not (char.isalnum() or char in ".-:/"))
    char = value[position]
    return (char if char == " " else repr(char)[1:-1]), position


def hostile_name(bad: str) -> str:
    char, position = first_bad(bad)
    quoted = json.dumps(bad)
    return (
        f"IstioFederation {quoted} is invalid: metadata.name: Invalid value: {quoted}: "
        f'{LABEL_RULE} (character "{char}" at position {position} is not allowed)'
    )


def hostile_trust_domain(bad: str) -> str:
    char, position = first_bad(bad)
    return (
        PREFIX + f"spec.trustDomain: Invalid value: {json.dumps(bad)}: "
        f'{SUBDOMAIN_RULE} (character "{char}" at position {position} is not allowed)'
    )


def hostile_endpoint(bad: str) -> str:
    char, position = first_bad(bad)
    return (
        PREFIX + f"spec.metadataEndpoint: Invalid value: {json.dumps(bad)}: must not contain spaces or control "
        f'characters (character "{char}" at position {position})'
    )


HOSTILE_FIELDS: dict[str, tuple[Callable[[dict[str, Any], str], None], str, Callable[[str], str]]] = {
    "name": (lambda obj, bad: obj["metadata"].update(name=bad), "cluster-b", hostile_name),
    "trust-domain": (lambda obj, bad: obj["spec"].update(trustDomain=bad), "cluster-b.local", hostile_trust_domain),
    "endpoint": (lambda obj, bad: obj["spec"].update(metadataEndpoint=bad), ENDPOINT, hostile_endpoint),
}


@pytest.mark.parametrize(
    ("field", "variant"),
    [pytest.param(f, v, id=f"{f}-{v}") for f in HOSTILE_FIELDS for v in HOSTILE_VARIANTS],
)
def test_control_characters_and_spaces_are_refused(field: str, variant: str) -> None:
    change, valid, expected = HOSTILE_FIELDS[field]
    obj = federation()
    bad = HOSTILE_VARIANTS[variant](valid)
    change(obj, bad)
    decision = admit(obj, index=ObjectIndex())
    assert (decision.allowed, decision.message) == (False, expected(bad))


def test_a_trust_domain_with_a_newline_is_not_a_duplicate_of_the_real_one() -> None:
    """The issue's case: ``cluster-c.local\\n`` was allowed beside ``cluster-c.local``."""
    decision = admit(federation(trustDomain="cluster-c.local\n"))
    assert decision.message == PREFIX + (
        'spec.trustDomain: Invalid value: "cluster-c.local\\n": '
        f'{SUBDOMAIN_RULE} (character "\\n" at position 15 is not allowed)'
    )


def test_an_endpoint_longer_than_2048_characters_is_refused_before_parsing() -> None:
    long_endpoint = ENDPOINT + "x" * 2048
    decision = admit(federation(metadataEndpoint=long_endpoint))
    assert decision.message == PREFIX + (
        f'spec.metadataEndpoint: Invalid value: "{long_endpoint[:100]}"…({len(long_endpoint) - 100} more bytes): '
        "must be no more than 2048 characters"
    )


def test_a_huge_trust_domain_is_answered_without_per_label_work() -> None:
    huge = "a." * (256 * 1024) + "local"
    decision = admit(federation(trustDomain=huge))
    assert decision.message == PREFIX + (
        f'spec.trustDomain: Invalid value: "{huge[:100]}"…(524193 more bytes): must be no more than 253 characters'
    )
