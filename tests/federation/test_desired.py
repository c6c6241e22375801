"""federation.desired: the objects one federation should own, as a pure function."""

from __future__ import annotations

import pytest

from federation import desired, ownership
from federation.documents.ingress_gateways import IngressGateway
from federation.documents.private import PrivateMetadata
from federation.documents.public_services import PublicService, ServicePort

SETTINGS = desired.FederationSettings(
    federation_name="cluster-b",
    namespace="istio-federation",
    trust_domain="cluster-b.local",
    remote_cluster_uuid="uuid-b",
    local_trust_domain="cluster-a.local",
)
BAR = PublicService(
    "bar.xyz.svc.cluster-b.local", (ServicePort("http", 8080, "HTTP"), ServicePort("grpc", 9090, "HTTP2"))
)
GATEWAYS = (IngressGateway("10.0.0.10", 15443), IngressGateway("10.0.0.11", 15443))


def private(*services: PublicService, gateways: tuple[IngressGateway, ...] = GATEWAYS) -> PrivateMetadata:
    return PrivateMetadata(gateways, tuple(services))


def test_seed_service_entry_and_destination_rule() -> None:
    state = desired.desired_state(private(BAR), SETTINGS)

    rule, entry = state.objects
    meta = {
        "name": "bar-xyz-svc-cluster-b-local-9qv7cmchrxqdhvnv",
        "namespace": "istio-federation",
        "labels": ownership.ownership_labels("cluster-b"),
        "annotations": {ownership.REMOTE_CLUSTER_UUID_ANNOTATION: "uuid-b"},
    }
    assert entry == {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": meta,
        "spec": {
            "hosts": ["bar.xyz.svc.cluster-b.local"],
            "exportTo": ["*"],
            "location": "MESH_INTERNAL",
            "ports": [
                {"name": "http", "number": 8080, "protocol": "HTTP"},
                {"name": "grpc", "number": 9090, "protocol": "HTTP2"},
            ],
            "resolution": "STATIC",
            "endpoints": [
                {"address": "10.0.0.10", "ports": {"http": 15443, "grpc": 15443}},
                {"address": "10.0.0.11", "ports": {"http": 15443, "grpc": 15443}},
            ],
        },
    }
    assert rule == {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": meta,
        "spec": {
            "host": "bar.xyz.svc.cluster-b.local",
            "exportTo": ["*"],
            "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
        },
    }
    assert state.imported == ("bar.xyz.svc.cluster-b.local",)
    assert state.skipped == ()
    assert state.remote_domain is None


def test_export_to_is_explicit_on_both_objects() -> None:
    settings = desired.FederationSettings(**{**SETTINGS.__dict__, "export_to": ("shop", "payments")})
    rule, entry = desired.desired_state(private(BAR), settings).objects
    assert entry["spec"]["exportTo"] == ["shop", "payments"]
    assert rule["spec"]["exportTo"] == ["shop", "payments"]


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        pytest.param(("*",), None, id="everyone"),
        pytest.param((".",), None, id="own-namespace"),
        pytest.param(("shop", "payments"), None, id="namespaces"),
        pytest.param(("~",), None, id="no-one"),
        pytest.param((), "must name at least one namespace, '.', '*' or '~'", id="empty"),
        pytest.param(
            ("*", "shop"),
            "exportTo: Forbidden: cannot have both public (*) and non-public exportTo values for a resource",
            id="star-and-name",
        ),
        pytest.param(
            ("Shop_1",),
            'exportTo[0]: Invalid value: "Shop_1": only .,*, or a valid DNS 1123 label is allowed as exportTo entry',
            id="not-a-namespace",
        ),
        pytest.param(
            (".", "istio-federation"),
            'exportTo[1]: Invalid value: "istio-federation": duplicate entries in exportTo for entry istio-federation',
            id="dot-and-own-namespace",
        ),
    ],
)
def test_export_to_follows_istios_rule(entries: tuple[str, ...], problem: str | None) -> None:
    assert desired.export_to_problem(entries, "istio-federation") == problem


def test_every_host_outside_the_trust_domain_names_the_remotes_domain() -> None:
    services = [
        PublicService(f"{name}.{namespace}.svc.cluster-c.local", (ServicePort("http", 80, "HTTP"),))
        for name, namespace in (("bar", "xyz"), ("foo", "shop"))
    ]
    state = desired.desired_state(private(*services), SETTINGS)
    assert state.imported == ()
    assert state.remote_domain == "cluster-c.local"
    # One host inside the trust domain, or another reason, and spec.trustDomain is not the suspect.
    assert desired.desired_state(private(BAR, *services), SETTINGS).remote_domain is None
    local = PublicService("api.default.svc.cluster-a.local", (ServicePort("http", 80, "HTTP"),))
    assert desired.desired_state(private(local, *services), SETTINGS).remote_domain is None


@pytest.mark.parametrize(
    ("hosts", "domain"),
    [
        pytest.param(("bar.xyz.svc.cluster-c.local",), "cluster-c.local", id="one-service-name"),
        pytest.param(("a.x.svc.c.example", "b.y.svc.c.example"), "c.example", id="service-names"),
        pytest.param(("api.example.com", "www.example.com"), "example.com", id="other-names"),
        pytest.param(("api.example.com",), "example.com", id="one-other-name"),
        pytest.param(("a.example.com", "b.example.org"), "", id="nothing-in-common"),
    ],
)
def test_remote_domain(hosts: tuple[str, ...], domain: str) -> None:
    assert desired.remote_domain(hosts) == domain


@pytest.mark.parametrize(
    ("addresses", "resolution"),
    [
        pytest.param(("10.0.0.1", "10.0.0.2"), "STATIC", id="all-ipv4"),
        pytest.param(("fd00::1",), "STATIC", id="ipv6"),
        pytest.param(("10.0.0.1", "gw.example.com"), "DNS", id="one-name"),
        pytest.param(("gw.example.com",), "DNS", id="name"),
    ],
)
def test_resolution_is_static_only_for_ip_gateways(addresses: tuple[str, ...], resolution: str) -> None:
    gateways = tuple(IngressGateway(address, 15443) for address in addresses)
    (_, entry) = desired.desired_state(private(BAR, gateways=gateways), SETTINGS).objects
    assert entry["spec"]["resolution"] == resolution


def test_deterministic_and_sorted_whatever_the_input_order() -> None:
    foo = PublicService("foo.a.svc.cluster-b.local", (ServicePort("tcp", 1, "TCP"),))
    one = desired.desired_state(private(BAR, foo), SETTINGS)
    two = desired.desired_state(private(foo, BAR), SETTINGS)
    assert one == two
    assert [(o["kind"], o["metadata"]["name"]) for o in one.objects] == [
        ("DestinationRule", "bar-xyz-svc-cluster-b-local-9qv7cmchrxqdhvnv"),
        ("DestinationRule", "foo-a-svc-cluster-b-local-fqwntknn6r6qwdqs"),
        ("ServiceEntry", "bar-xyz-svc-cluster-b-local-9qv7cmchrxqdhvnv"),
        ("ServiceEntry", "foo-a-svc-cluster-b-local-fqwntknn6r6qwdqs"),
    ]


@pytest.mark.parametrize(
    ("hostname", "reason", "message"),
    [
        pytest.param(
            "api.default.svc.cluster-a.local",
            "LocalTrustDomain",
            "host is under the local trust domain cluster-a.local: a remote may not claim this cluster's own names",
            id="local-domain",
        ),
        pytest.param(
            "db.svc.cluster-c.local",
            "OutsideTrustDomain",
            "host is outside the federation's trust domain cluster-b.local",
            id="other-domain",
        ),
        pytest.param(
            "x.svc.team.cluster-b.local",
            "OtherFederationDomain",
            "host is under trust domain team.cluster-b.local, which another IstioFederation owns",
            id="nested-federation",
        ),
    ],
)
def test_security_filter(hostname: str, reason: str, message: str) -> None:
    settings = desired.FederationSettings(**{**SETTINGS.__dict__, "other_trust_domains": ("team.cluster-b.local",)})
    service = PublicService(hostname, (ServicePort("http", 80, "HTTP"),))
    state = desired.desired_state(private(BAR, service), settings)
    assert state.imported == ("bar.xyz.svc.cluster-b.local",)
    assert state.skipped == (desired.SkippedService(hostname, reason, message),)


def test_services_without_ports_or_gateways_are_skipped_with_reasons() -> None:
    empty = PublicService("empty.a.svc.cluster-b.local", ())
    assert desired.desired_state(private(empty), SETTINGS).skipped == (
        desired.SkippedService(empty.hostname, "NoPorts", "the remote publishes no ports for this service"),
    )
    no_gateways = desired.desired_state(private(BAR, gateways=()), SETTINGS)
    assert no_gateways.objects == ()
    assert no_gateways.skipped[0].reason == "NoIngressGateways"


def test_name_collision_keeps_the_first_host(monkeypatch: pytest.MonkeyPatch) -> None:
    # Managed names carry a hash of the host, so these two no longer collide (tests/federation/test_ownership.py);
    # the guard is kept, and checked here under the old, dashes-only names.
    monkeypatch.setattr(ownership, "managed_name", lambda host: host.replace(".", "-"))
    first = PublicService("a-b.c.cluster-b.local", (ServicePort("tcp", 1, "TCP"),))
    second = PublicService("a.b-c.cluster-b.local", (ServicePort("tcp", 1, "TCP"),))
    state = desired.desired_state(private(second, first), SETTINGS)
    assert state.imported == ("a-b.c.cluster-b.local",)
    assert state.skipped == (
        desired.SkippedService(
            "a.b-c.cluster-b.local", "NameCollision", "its object name a-b-c-cluster-b-local is already used by "
            "a-b.c.cluster-b.local"
        ),
    )


def test_long_hosts_get_the_webhooks_hashed_name() -> None:
    host = "a-very-long-service-name-that-goes-on.and-a-long-namespace-too.svc.cluster-b.local"
    service = PublicService(host, (ServicePort("tcp", 1, "TCP"),))
    (_, entry) = desired.desired_state(private(service), SETTINGS).objects
    assert entry["metadata"]["name"] == ownership.managed_name(host)
    assert len(entry["metadata"]["name"]) <= 63
