"""Public services and ingress-gateway discovery, as pure functions of objects.

``exporter.published_services``, ``exporter.published_gateways`` and the ``exporter.skips`` they report.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from exporter import published_gateways, published_services
from exporter.skips import Skip
from federation.documents.ingress_gateways import IngressGateway
from federation.documents.public_services import PublicService, ServicePort
from tests.exporter.fixtures import CLUSTER_DOMAIN, configmap, gateway_pod, gateway_service, node, service

# -- public services -----------------------------------------------------------------------------


def test_labelled_services_are_exported_with_hostname_and_protocols_from_port_names() -> None:
    ports = [
        {"name": "tcp-db", "port": 5432},
        {"name": "http", "port": 9080},
        {"name": "https-admin", "port": 8443},
        {"name": "grpc", "port": 9090},
        {"name": "http2-api", "port": 8081},
        {"name": "mytls", "port": 7443},
    ]
    result = published_services.public_services(
        [service("reviews", ports=ports), service("details", "shop"), service("internal", labels={})], CLUSTER_DOMAIN
    )
    assert result.skips == ()
    assert result.services == (
        PublicService("details.shop.svc.cluster-a.local", (ServicePort("http", 9080, "HTTP"),)),
        PublicService(
            "reviews.bookinfo.svc.cluster-a.local",
            (
                ServicePort("tcp-db", 5432, "TCP"),
                ServicePort("mytls", 7443, "TLS"),
                ServicePort("http2-api", 8081, "HTTP2"),
                ServicePort("https-admin", 8443, "TLS"),
                ServicePort("http", 9080, "HTTP"),
                ServicePort("grpc", 9090, "HTTP2"),
            ),
        ),
    )


SKIPS: list[tuple[str, dict[str, Any], list[Skip], list[str]]] = [
    (
        "label with a value",
        service("reviews", labels={"federation.istio.deckhouse.io/public-service": "true"}),
        [
            Skip(
                "service",
                "label_value_not_empty",
                "Service bookinfo/reviews not exported: label federation.istio.deckhouse.io/public-service has "
                "value 'true'; set it to the empty string to export the Service",
            )
        ],
        [],
    ),
    (
        "ExternalName",
        service("ext", service_type="ExternalName"),
        [
            Skip(
                "service",
                "external_name",
                "Service bookinfo/ext not exported: ExternalName Services cannot be federated; remove the label "
                "or export a Service with a selector",
            )
        ],
        [],
    ),
    (
        "single unnamed port",
        service("reviews", ports=[{"port": 9080}]),
        [
            Skip(
                "port",
                "unnamed_port",
                "Service bookinfo/reviews spec.ports[0] not exported: the port has no name; name it (e.g. http, "
                "grpc, tls-…) so that peers can derive its protocol",
            ),
            Skip(
                "service",
                "no_usable_ports",
                "Service bookinfo/reviews not exported: it has no named TCP port (spec.ports)",
            ),
        ],
        [],
    ),
    (
        "one unnamed port among named ones",
        service("reviews", ports=[{"name": "http", "port": 9080}, {"name": "", "port": 9081}]),
        [
            Skip(
                "port",
                "unnamed_port",
                "Service bookinfo/reviews spec.ports[1] not exported: the port has no name; name it (e.g. http, "
                "grpc, tls-…) so that peers can derive its protocol",
            )
        ],
        ["reviews.bookinfo.svc.cluster-a.local"],
    ),
    (
        "UDP port",
        service("dns", ports=[{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "tcp-dns", "port": 53}]),
        [
            Skip(
                "port",
                "not_tcp",
                "Service bookinfo/dns spec.ports[0] (dns) not exported: protocol UDP cannot cross the ingress "
                "gateway, which forwards TCP only",
            )
        ],
        ["dns.bookinfo.svc.cluster-a.local"],
    ),
    (
        "no ports at all",
        service("headless", ports=[]),
        [
            Skip(
                "service",
                "no_usable_ports",
                "Service bookinfo/headless not exported: it has no named TCP port (spec.ports)",
            )
        ],
        [],
    ),
    (
        "port number out of range",
        service("odd", ports=[{"name": "http", "port": 70000}]),
        [
            Skip(
                "port", "invalid_port", "Service bookinfo/odd spec.ports[0] (http) not exported: port must be 1-65535"
            ),
            Skip(
                "service", "no_usable_ports", "Service bookinfo/odd not exported: it has no named TCP port (spec.ports)"
            ),
        ],
        [],
    ),
]


@pytest.mark.parametrize(("name", "obj", "skips", "exported"), SKIPS, ids=[case[0] for case in SKIPS])
def test_skips_are_reported_with_reason_and_fix(
    name: str, obj: dict[str, Any], skips: list[Skip], exported: list[str]
) -> None:
    result = published_services.public_services([obj], CLUSTER_DOMAIN)
    assert list(result.skips) == sorted(skips)
    assert [found.hostname for found in result.services] == exported


# -- advertise flag --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("203.0.113.10:15443", IngressGateway("203.0.113.10", 15443)),
        ("GW.Example.com.:443", IngressGateway("gw.example.com", 443)),
        ("[2001:db8::1]:15443", IngressGateway("2001:db8::1", 15443)),
    ],
)
def test_advertise_flag_parses(text: str, expected: IngressGateway) -> None:
    assert published_gateways.parse_advertise(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("203.0.113.10", "--advertise '203.0.113.10': expected ADDRESS:PORT (IPv6 as [ADDRESS]:PORT)"),
        ("2001:db8::1:15443", "--advertise '2001:db8::1:15443': expected ADDRESS:PORT (IPv6 as [ADDRESS]:PORT)"),
        ("gw:http", "--advertise 'gw:http': port 'http' must be a number from 1 to 65535"),
        ("gw:0", "--advertise 'gw:0': port must be an integer from 1 to 65535, got 0"),
        ("gw_1:443", "--advertise 'gw_1:443': address 'gw_1' must be an IP address or a DNS name"),
        (":443", "--advertise ':443': address is empty"),
        ("[gw]:443", "--advertise '[gw]:443': 'gw' in brackets must be an IPv6 address"),
    ],
)
def test_advertise_flag_errors_say_what_to_write(text: str, message: str) -> None:
    with pytest.raises(published_gateways.AdvertiseError) as raised:
        published_gateways.parse_advertise(text)
    assert str(raised.value) == message


# -- gateways --------------------------------------------------------------------------------------


def gateways(
    *,
    advertise: tuple[IngressGateway, ...] = (),
    advertise_configmap: dict[str, Any] | None = None,
    inlet: str = published_gateways.INLET_LOAD_BALANCER,
    services: list[dict[str, Any]] | None = None,
    pods: list[dict[str, Any]] | None = None,
    nodes: list[dict[str, Any]] | None = None,
) -> published_gateways.Gateways:
    return published_gateways.ingress_gateways(
        advertise=advertise,
        advertise_configmap=advertise_configmap,
        inlet=inlet,
        services=[gateway_service()] if services is None else services,
        pods=pods or [],
        nodes=nodes or [],
    )


def advertise_cm(key: str, value: Any) -> dict[str, Any]:
    return configmap(
        published_gateways.ADVERTISE_CONFIGMAP, {key: value if isinstance(value, str) else json.dumps(value)}
    )


def test_advertise_flag_wins_over_configmap_and_discovery_and_is_sorted() -> None:
    result = gateways(
        advertise=(IngressGateway("b.example.com", 443), IngressGateway("a.example.com", 443)),
        advertise_configmap=advertise_cm("gateways.json", [{"address": "10.0.0.9", "port": 1}]),
    )
    assert result == published_gateways.Gateways(
        (IngressGateway("a.example.com", 443), IngressGateway("b.example.com", 443)), "flag", ()
    )


def test_configmap_wins_over_discovery() -> None:
    result = gateways(
        advertise_configmap=advertise_cm(
            "gateways.json", [{"address": "gw.example.com", "port": 443}, {"address": "198.51.100.1", "port": 15443}]
        )
    )
    assert result == published_gateways.Gateways(
        (IngressGateway("198.51.100.1", 15443), IngressGateway("gw.example.com", 443)), "configmap", ()
    )


def test_configmap_legacy_key_is_read_and_the_new_key_preferred() -> None:
    legacy = gateways(
        advertise_configmap=advertise_cm("ingressgateways-array.json", [{"address": "1.1.1.1", "port": 1}])
    )
    assert legacy.gateways == (IngressGateway("1.1.1.1", 1),)
    both = configmap(
        published_gateways.ADVERTISE_CONFIGMAP,
        {
            "gateways.json": '[{"address": "2.2.2.2", "port": 2}]',
            "ingressgateways-array.json": '[{"address": "1.1.1.1", "port": 1}]',
        },
    )
    assert gateways(advertise_configmap=both).gateways == (IngressGateway("2.2.2.2", 2),)


def test_configmap_entries_that_are_wrong_are_skipped_by_path() -> None:
    result = gateways(
        advertise_configmap=advertise_cm(
            "gateways.json",
            [
                {"address": "1.1.1.1", "port": 15443},
                {"address": "bad address", "port": 1},
                {"address": "x.io", "port": "1"},
            ],
        )
    )
    assert result.gateways == (IngressGateway("1.1.1.1", 15443),)
    assert [skip.detail for skip in result.skips] == [
        "ConfigMap istio-federation/metadata-exporter-ingressgateway-advertise data[gateways.json][1].address: "
        "address 'bad address' must be an IP address or a DNS name; entry not advertised",
        "ConfigMap istio-federation/metadata-exporter-ingressgateway-advertise data[gateways.json][2].port: "
        "port must be an integer from 1 to 65535, got '1'; entry not advertised",
    ]


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (
            {"other.json": "[]"},
            "ConfigMap istio-federation/metadata-exporter-ingressgateway-advertise ignored: it has no data key "
            "gateways.json (a JSON list of {address, port}); using gateway discovery instead",
        ),
        (
            {"gateways.json": "{not json"},
            "ConfigMap istio-federation/metadata-exporter-ingressgateway-advertise ignored: data[gateways.json] "
            'must be a JSON list of {"address": …, "port": …}; using gateway discovery instead',
        ),
    ],
    ids=["no key", "not JSON"],
)
def test_unusable_configmap_falls_back_to_discovery_with_a_reason(data: dict[str, str], detail: str) -> None:
    result = gateways(advertise_configmap=configmap(published_gateways.ADVERTISE_CONFIGMAP, data))
    assert result.source == "loadbalancer"
    assert result.gateways == (IngressGateway("203.0.113.10", 15443),)
    assert [skip.detail for skip in result.skips] == [detail]


def test_empty_configmap_list_means_no_gateways_on_purpose() -> None:
    assert gateways(advertise_configmap=advertise_cm("gateways.json", [])) == published_gateways.Gateways(
        (), "configmap", ()
    )


def test_load_balancer_ip_first_then_hostname_sorted_and_deduplicated() -> None:
    result = gateways(
        services=[
            gateway_service("b", ingress=[{"hostname": "lb.example.com"}]),
            gateway_service("a", ingress=[{"hostname": "ignored.example.com"}, {"ip": "198.51.100.7"}]),
            gateway_service("c", ingress=[{"ip": "198.51.100.7"}]),
        ]
    )
    assert result == published_gateways.Gateways(
        (IngressGateway("198.51.100.7", 15443), IngressGateway("lb.example.com", 15443)), "loadbalancer", ()
    )


def test_load_balancer_without_address_or_tls_port_is_skipped_with_a_reason() -> None:
    no_tls = gateway_service("notls")
    no_tls["spec"]["ports"][0]["name"] = "https"
    result = gateways(services=[gateway_service("pending", ingress=[]), no_tls])
    assert result.gateways == ()
    assert [(skip.reason, skip.detail) for skip in result.skips] == [
        (
            "no_load_balancer_address",
            "gateway Service istio-federation/pending not advertised: status.loadBalancer.ingress is empty "
            "(is the load balancer provisioned? else use --inlet NodePort or --advertise)",
        ),
        ("no_tls_port", "gateway Service istio-federation/notls not advertised: it has no port named tls"),
    ]


def test_no_gateway_service_is_reported() -> None:
    result = gateways(services=[])
    assert result.gateways == ()
    assert [skip.reason for skip in result.skips] == ["no_gateway_service"]


def test_node_port_uses_ready_schedulable_nodes_running_gateway_pods() -> None:
    result = gateways(
        inlet=published_gateways.INLET_NODE_PORT,
        pods=[
            gateway_pod("gw-1", "node-ext"),
            gateway_pod("gw-2", "node-int"),
            gateway_pod("gw-3", "node-notready"),
            gateway_pod("gw-4", "node-cordoned"),
            gateway_pod("gw-5", "node-tainted"),
            gateway_pod("gw-6", "node-pending", phase="Pending"),
            gateway_pod("gw-7", "node-noaddress"),
        ],
        nodes=[
            node("node-ext", external="192.0.2.1", internal="10.0.0.1"),
            node("node-int", internal="10.0.0.2"),
            node("node-notready", internal="10.0.0.3", ready="False"),
            node("node-cordoned", internal="10.0.0.4", unschedulable=True),
            node(
                "node-tainted",
                internal="10.0.0.5",
                taints=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}],
            ),
            node("node-pending", internal="10.0.0.6"),
            node("node-noaddress", internal=None),
            node("node-without-gateway", internal="10.0.0.8"),
        ],
    )
    assert result.source == "nodeport"
    assert result.gateways == (IngressGateway("10.0.0.2", 30443), IngressGateway("192.0.2.1", 30443))
    assert [(skip.reason, skip.detail) for skip in result.skips] == [
        ("node_not_ready", "node node-notready not advertised: condition Ready is not True"),
        ("node_unschedulable", "node node-cordoned not advertised: it is cordoned (unschedulable)"),
        ("node_unschedulable", "node node-tainted not advertised: it is cordoned (unschedulable)"),
        ("node_without_address", "node node-noaddress not advertised: it has no ExternalIP or InternalIP"),
    ]


def test_node_port_without_a_tls_node_port_is_reported() -> None:
    svc = gateway_service()
    del svc["spec"]["ports"][0]["nodePort"]
    result = gateways(
        inlet=published_gateways.INLET_NODE_PORT, services=[svc], pods=[gateway_pod("gw", "n")], nodes=[node("n")]
    )
    assert result.gateways == ()
    assert [skip.reason for skip in result.skips] == ["no_tls_port"]


def test_matching_narrows_to_namespace_and_selector() -> None:
    found = published_gateways.matching(
        [
            gateway_service("b"),
            gateway_service("a"),
            gateway_service("other-ns", namespace="istio-system"),
            gateway_service("other-app", labels={"app": "istiod"}),
        ],
        "istio-federation",
        "app=ingressgateway",
    )
    assert [obj["metadata"]["name"] for obj in found] == ["a", "b"]
