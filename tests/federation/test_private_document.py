"""``federation.documents.private.parse_private``: per-entry validation, skips with reasons, and bounded output.

A Deckhouse peer publishes services Deckhouse itself only partly supports (unnamed ports, UDP
ports, ExternalName services without ports): the importable ones are imported and the others are
listed with a reason.  Only a broken envelope refuses the whole document.  Every hostile value of
the attack run (issue 14) is here with its exact message.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation import skipsummary
from federation.documents import public_services
from federation.documents.ingress_gateways import IngressGateway
from federation.documents.private import PrivateMetadata, parse_private
from federation.documents.public_services import PublicService, ServicePort
from federation.documents.reading import DocumentError, decode_json
from federation.documents.skips import SkippedPort, SkippedService
from federation.fields import Path

GATEWAY = {"address": "203.0.113.10", "port": 15443}
PORT_NAME_RULE = (
    "must be a Service port name (IANA_SVC_NAME): 1 to 15 lowercase letters and digits, a letter among them, "
    "and single '-' between them"
)


def private(*services: Any, gateways: Any = None) -> PrivateMetadata:
    document = {"ingressGateways": [GATEWAY] if gateways is None else gateways, "publicServices": list(services)}
    # Through the wire: what parse_private sees is what a JSON decoder made.
    return parse_private(decode_json(json.dumps(document).encode(), "private metadata"))


def refused(document: Any) -> str:
    with pytest.raises(DocumentError) as raised:
        parse_private(document)
    return str(raised.value)


# -- the Deckhouse-shaped peer (issue 12, item 1) -------------------------------------------------


def test_deckhouse_peer_with_unnamed_udp_and_external_name_services_imports_the_rest() -> None:
    # As Deckhouse's exporter writes it (json.MarshalIndent, no "protocol"), plus a UDP port as an
    # exporter that sends protocols would write it, and an ExternalName Service both ways (a Go nil
    # slice marshals as null).
    body = json.dumps(
        {
            "ingressGateways": [{"address": "10.0.0.10", "port": 15443}],
            "publicServices": [
                {"hostname": "productpage.bookinfo.svc.cluster-b.local", "ports": [{"name": "http", "port": 9080}]},
                {"hostname": "legacy.bookinfo.svc.cluster-b.local", "ports": [{"name": "", "port": 80}]},
                {
                    "hostname": "dns.infra.svc.cluster-b.local",
                    "ports": [
                        {"name": "dns", "port": 53, "protocol": "UDP"},
                        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                    ],
                },
                {"hostname": "external.bookinfo.svc.cluster-b.local", "ports": []},
                {"hostname": "external2.bookinfo.svc.cluster-b.local", "ports": None},
            ],
        },
        indent=2,
    ).encode()

    parsed = parse_private(decode_json(body, "private metadata"))

    assert parsed.ingress_gateways == (IngressGateway("10.0.0.10", 15443),)
    assert parsed.public_services == (
        PublicService("dns.infra.svc.cluster-b.local", (ServicePort("dns-tcp", 53, "TCP"),)),
        PublicService("legacy.bookinfo.svc.cluster-b.local", (ServicePort("tcp-80", 80, "TCP"),)),
        PublicService("productpage.bookinfo.svc.cluster-b.local", (ServicePort("http", 9080, "HTTP"),)),
    )
    assert parsed.skipped == (
        SkippedPort(
            "dns.infra.svc.cluster-b.local",
            "53",
            "publicServices[2].ports[0]",
            "UnsupportedProtocol",
            'publicServices[2].ports[0].protocol: Invalid value: "UDP": UDP cannot cross the ingress gateway, '
            "which forwards TCP only",
        ),
        SkippedService(
            "external.bookinfo.svc.cluster-b.local",
            "publicServices[3]",
            "NoPorts",
            "publicServices[3].ports: Required value: the remote publishes no ports for this service",
        ),
        SkippedService(
            "external2.bookinfo.svc.cluster-b.local",
            "publicServices[4]",
            "NoPorts",
            "publicServices[4].ports: Required value: the remote publishes no ports for this service",
        ),
    )
    # Status caches only what is imported, in the wire shape.
    assert parsed.to_json()["publicServices"][1] == {
        "hostname": "legacy.bookinfo.svc.cluster-b.local",
        "ports": [{"name": "tcp-80", "port": 80, "protocol": "TCP"}],
    }


@pytest.mark.parametrize(
    ("port", "expected"),
    [
        pytest.param({"name": "", "port": 80}, ServicePort("tcp-80", 80, "TCP"), id="empty name"),
        pytest.param({"port": 8080}, ServicePort("tcp-8080", 8080, "TCP"), id="no name"),
        pytest.param({"name": None, "port": 80}, ServicePort("tcp-80", 80, "TCP"), id="null name"),
        pytest.param({"name": "", "port": 80, "protocol": "HTTP"}, ServicePort("http-80", 80, "HTTP"), id="http"),
        pytest.param({"name": "", "port": 81, "protocol": "http2"}, ServicePort("http2-81", 81, "HTTP2"), id="http2"),
        pytest.param({"name": "", "port": 443, "protocol": "TLS"}, ServicePort("tls-443", 443, "TLS"), id="tls"),
    ],
)
def test_an_unnamed_port_gets_a_name_from_its_protocol_and_number(port: dict[str, Any], expected: ServicePort) -> None:
    parsed = private({"hostname": "a.b.svc.cluster-b.local", "ports": [port]})
    assert parsed.public_services == (PublicService("a.b.svc.cluster-b.local", (expected,)),)
    assert parsed.skipped == ()


def test_an_unnamed_port_whose_derived_name_is_taken_is_skipped() -> None:
    parsed = private(
        {"hostname": "a.b.svc.cluster-b.local", "ports": [{"name": "", "port": 80}, {"name": "tcp-80", "port": 8080}]}
    )
    assert parsed.public_services == (PublicService("a.b.svc.cluster-b.local", (ServicePort("tcp-80", 8080, "TCP"),)),)
    assert parsed.skipped == (
        SkippedPort(
            "a.b.svc.cluster-b.local",
            "80",
            "publicServices[0].ports[0]",
            "DuplicatePortName",
            'publicServices[0].ports[0].name: Invalid value: "": the port has no name, and the name it would get, '
            "tcp-80, is another port's",
        ),
    )


# -- port names: the webhook's rule, and a Service port name's (IANA_SVC_NAME) -------------------------


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        pytest.param("../x", '"../x"', id="dot-dot-slash"),
        pytest.param("a/b", '"a/b"', id="slash"),
        pytest.param("x\x00", '"x\\u0000"', id="NUL"),
        pytest.param("http\nInjected: 1", '"http\\nInjected: 1"', id="newline injection"),
        pytest.param("a" * 64, '"' + "a" * 64 + '"', id="64 characters"),
        pytest.param("-http", '"-http"', id="leading dash"),
        pytest.param("http_x", '"http_x"', id="underscore"),
        pytest.param("h\u202etp", '"h?tp"', id="bidi override"),
        pytest.param("x" * 5000, '"' + "x" * 64 + '..."', id="5,000 characters, cut"),
        pytest.param(7, "7", id="a number"),
        pytest.param(["http"], '"array"', id="a list"),
        # Istio's IsDNS1123Label accepts these, a Kubernetes Service port name does not (the attack run
        # had them written): a remote's port names come from its Services.
        pytest.param("UPPER", '"UPPER"', id="upper case"),
        pytest.param("a" * 16, '"' + "a" * 16 + '"', id="16 characters"),
        pytest.param("a" * 30, '"' + "a" * 30 + '"', id="30 characters"),
        pytest.param("a" * 63, '"' + "a" * 63 + '"', id="63 characters"),
        pytest.param("8080", '"8080"', id="digits only"),
        pytest.param("http--x", '"http--x"', id="double dash"),
    ],
)
def test_a_port_name_a_service_could_not_have_skips_that_port_only(name: Any, shown: str) -> None:
    parsed = private(
        {"hostname": "a.b.svc.cluster-b.local", "ports": [{"name": name, "port": 1}, {"name": "http", "port": 2}]}
    )
    assert parsed.public_services == (PublicService("a.b.svc.cluster-b.local", (ServicePort("http", 2, "HTTP"),)),)
    assert parsed.skipped == (
        SkippedPort(
            "a.b.svc.cluster-b.local",
            "1",
            "publicServices[0].ports[0]",
            "InvalidPortName",
            f"publicServices[0].ports[0].name: Invalid value: {shown}: {PORT_NAME_RULE}",
        ),
    )


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("a" * 15, id="15 characters"),
        pytest.param("grpc-web", id="dash"),
        pytest.param("h2c", id="digit inside"),
        pytest.param("8080-tcp", id="leading digits"),
        pytest.param("x", id="one letter"),
    ],
)
def test_a_service_port_name_is_imported(name: str) -> None:
    parsed = private({"hostname": "a.b.svc.cluster-b.local", "ports": [{"name": name, "port": 1}]})
    assert [port.name for port in parsed.public_services[0].ports] == [name]
    assert parsed.skipped == ()


def test_port_names_follow_the_webhooks_own_rule_function_and_iana_svc_name() -> None:
    from federation.istio import values

    for name in ("UPPER", "a" * 15, "a" * 16, "a" * 63, "a" * 64, "../x", "http\nInjected: 1", "x-", "x", "80", "a-1"):
        parsed = private({"hostname": "a.b.svc.cluster-b.local", "ports": [{"name": name, "port": 1}]})
        # Kubernetes' IsValidPortName, transcribed: 1-15 characters of [-a-z0-9], a letter, no edge or double '-'.
        iana = (
            0 < len(name) <= 15
            and all(char in "abcdefghijklmnopqrstuvwxyz0123456789-" for char in name)
            and any(char.isalpha() for char in name)
            and not name.startswith("-")
            and not name.endswith("-")
            and "--" not in name
        )
        assert bool(parsed.public_services) is (values.is_dns1123_label(name) and iana), name


@pytest.mark.parametrize(
    ("port", "reason", "message"),
    [
        pytest.param(
            {"name": "http", "port": 0},
            "InvalidPortNumber",
            "publicServices[0].ports[0].port: Invalid value: 0: must be from 1 to 65535",
            id="zero",
        ),
        pytest.param(
            {"name": "http", "port": "80"},
            "InvalidPortNumber",
            'publicServices[0].ports[0].port: Invalid value: "80": must be an integer from 1 to 65535',
            id="string",
        ),
        pytest.param(
            {"name": "http", "port": 80.5},
            "InvalidPortNumber",
            "publicServices[0].ports[0].port: Invalid value: 80.5: must be an integer from 1 to 65535",
            id="fraction",
        ),
        pytest.param(
            {"name": "http", "port": 10**30},
            "InvalidPortNumber",
            f"publicServices[0].ports[0].port: Invalid value: {10**30}: must be from 1 to 65535",
            id="31 digits",
        ),
        pytest.param(
            {"name": "x", "port": 1, "protocol": "SCTP"},
            "UnsupportedProtocol",
            'publicServices[0].ports[0].protocol: Invalid value: "SCTP": must be TCP, HTTP, HTTP2 or TLS',
            id="SCTP",
        ),
        pytest.param(
            {"name": "x", "port": 1, "protocol": 6},
            "UnsupportedProtocol",
            "publicServices[0].ports[0].protocol: Invalid value: 6: must be TCP, HTTP, HTTP2 or TLS",
            id="protocol number",
        ),
        pytest.param(
            {"name": "a/b", "port": 0, "protocol": "UDP"},
            "InvalidPortNumber",
            "publicServices[0].ports[0].port: Invalid value: 0: must be from 1 to 65535; "
            'publicServices[0].ports[0].protocol: Invalid value: "UDP": UDP cannot cross the ingress gateway, which '
            "forwards TCP only; "
            f'publicServices[0].ports[0].name: Invalid value: "a/b": {PORT_NAME_RULE}',
            id="everything wrong at once",
        ),
    ],
)
def test_a_bad_port_is_skipped_with_every_problem(port: dict[str, Any], reason: str, message: str) -> None:
    parsed = private({"hostname": "a.b.svc.cluster-b.local", "ports": [port, {"name": "tcp", "port": 9}]})
    assert parsed.public_services[0].ports == (ServicePort("tcp", 9, "TCP"),)
    assert [(skip.reason, skip.message) for skip in parsed.skipped] == [(reason, message)]


# -- services ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "skipped"),
    [
        pytest.param(
            "reviews",
            SkippedService(
                "",
                "publicServices[0]",
                "NotAnObject",
                'publicServices[0]: Invalid value: "string": must be an object with hostname and ports',
            ),
            id="not an object",
        ),
        pytest.param(
            {"ports": [{"name": "http", "port": 1}]},
            SkippedService(
                "",
                "publicServices[0]",
                "InvalidHostname",
                "publicServices[0].hostname: Required value: must be a non-empty string",
            ),
            id="no hostname",
        ),
        pytest.param(
            {"hostname": "bad host!\n", "ports": [{"name": "http", "port": 1}]},
            SkippedService(
                "bad host!?",
                "publicServices[0]",
                "InvalidHostname",
                'publicServices[0].hostname: Invalid value: "bad host!\\n": must be a valid DNS name',
            ),
            id="invalid hostname",
        ),
        pytest.param(
            {"hostname": "a." * 30_000, "ports": [{"name": "http", "port": 1}]},
            SkippedService(
                "a." * 64 + "...",
                "publicServices[0]",
                "InvalidHostname",
                'publicServices[0].hostname: Invalid value: "' + "a." * 32 + '...": must be a valid DNS name',
            ),
            id="60,000-character hostname",
        ),
        pytest.param(
            {"hostname": ["a.b"], "ports": []},
            SkippedService(
                "array",
                "publicServices[0]",
                "InvalidHostname",
                'publicServices[0].hostname: Invalid value: "array": must be a string',
            ),
            id="hostname a list",
        ),
        pytest.param(
            {"hostname": "a.b.svc.cluster-b.local", "ports": {"name": "http"}},
            SkippedService(
                "a.b.svc.cluster-b.local",
                "publicServices[0]",
                "InvalidPorts",
                'publicServices[0].ports: Invalid value: "object": must be a list',
            ),
            id="ports an object",
        ),
        pytest.param(
            {"hostname": "a.b.svc.cluster-b.local", "ports": [{"name": "", "port": n} for n in range(1, 258)]},
            SkippedService(
                "a.b.svc.cluster-b.local",
                "publicServices[0]",
                "TooManyPorts",
                'publicServices[0].ports: Invalid value: "array": has 257 ports; a ServiceEntry holds at most 256',
            ),
            id="257 ports",
        ),
    ],
)
def test_a_bad_service_is_skipped_and_the_others_imported(service: Any, skipped: SkippedService) -> None:
    good = {"hostname": "good.b.svc.cluster-b.local", "ports": [{"name": "http", "port": 80}]}
    parsed = private(service, good)
    assert [s.hostname for s in parsed.public_services] == ["good.b.svc.cluster-b.local"]
    assert parsed.skipped == (skipped,)


def test_a_service_none_of_whose_ports_can_be_imported_is_skipped_with_its_ports() -> None:
    parsed = private(
        {
            "hostname": "A.B.svc.cluster-b.local.",
            "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, "http", {"name": "x", "port": -1}],
        }
    )
    assert parsed.public_services == ()
    assert [(type(skip).__name__, skip.path, skip.reason) for skip in parsed.skipped] == [
        ("SkippedService", "publicServices[0]", "NoImportablePort"),
        ("SkippedPort", "publicServices[0].ports[0]", "UnsupportedProtocol"),
        ("SkippedPort", "publicServices[0].ports[1]", "NotAnObject"),
        ("SkippedPort", "publicServices[0].ports[2]", "InvalidPortNumber"),
    ]
    service_skip = parsed.skipped[0]
    assert (
        service_skip.message == 'publicServices[0].ports: Invalid value: "array": none of its 3 ports can be imported'
    )
    assert service_skip.subject == "a.b.svc.cluster-b.local"  # normalized, as it would have been imported
    assert parsed.skipped[2].subject == "a.b.svc.cluster-b.local"
    assert parsed.skipped[3].subject == "a.b.svc.cluster-b.local port -1"


# -- gateways ---------------------------------------------------------------------------------------

LINK_LOCAL = "is a link-local address, where cloud metadata services listen: it would point into this cluster"
LOOPBACK = "is a loopback address: it would point into this cluster"
UNSPECIFIED = "is an unspecified address: it would point into this cluster"
MULTICAST = "is a multicast address, not a gateway"


@pytest.mark.parametrize(
    ("address", "reason", "message"),
    [
        ("127.0.0.1", "ForbiddenAddress", f"Forbidden: 127.0.0.1 {LOOPBACK}"),
        ("127.1.2.3", "ForbiddenAddress", f"Forbidden: 127.1.2.3 {LOOPBACK}"),
        ("::1", "ForbiddenAddress", f"Forbidden: ::1 {LOOPBACK}"),
        ("::ffff:127.0.0.1", "ForbiddenAddress", f"Forbidden: ::ffff:127.0.0.1 {LOOPBACK}"),
        ("0.0.0.0", "ForbiddenAddress", f"Forbidden: 0.0.0.0 {UNSPECIFIED}"),  # noqa: S104 - the attack's value
        ("0.1.2.3", "ForbiddenAddress", f"Forbidden: 0.1.2.3 {UNSPECIFIED}"),
        ("::", "ForbiddenAddress", f"Forbidden: :: {UNSPECIFIED}"),
        ("169.254.169.254", "ForbiddenAddress", f"Forbidden: 169.254.169.254 {LINK_LOCAL}"),
        ("fe80::1", "ForbiddenAddress", f"Forbidden: fe80::1 {LINK_LOCAL}"),
        ("224.0.0.1", "ForbiddenAddress", f"Forbidden: 224.0.0.1 {MULTICAST}"),
        ("ff02::1", "ForbiddenAddress", f"Forbidden: ff02::1 {MULTICAST}"),
        (
            "2001:db8::1%eth0",
            "InvalidAddress",
            'Invalid value: "2001:db8::1%eth0": 2001:db8::1%eth0 has an IPv6 zone, which means nothing in another '
            "cluster",
        ),
        (
            "localhost",
            "ForbiddenAddress",
            "Forbidden: localhost is a loopback name (RFC 6761): it would point into this cluster",
        ),
        (
            "GW.localhost.",
            "ForbiddenAddress",
            "Forbidden: gw.localhost is a loopback name (RFC 6761): it would point into this cluster",
        ),
        (
            "kubernetes",
            "ForbiddenAddress",
            "Forbidden: kubernetes is a single-label name, which this cluster's DNS search path would resolve to a "
            "local Service: publish a fully qualified name",
        ),
        ("not an address!", "InvalidAddress", 'Invalid value: "not an address!": must be an IP address or a DNS name'),
        ("127.1", "InvalidAddress", 'Invalid value: "127.1": must be an IP address or a DNS name'),
        ("http://gw\n", "InvalidAddress", 'Invalid value: "http://gw\\n": must be an IP address or a DNS name'),
    ],
)
def test_gateways_pointing_inside_this_cluster_are_refused(address: str, reason: str, message: str) -> None:
    parsed = private(gateways=[GATEWAY, {"address": address, "port": 15443}])
    assert parsed.ingress_gateways == (IngressGateway("203.0.113.10", 15443),)
    assert parsed.gateways_published == 2
    (skipped,) = parsed.skipped_gateways
    assert (skipped.path, skipped.reason, skipped.message) == (
        "ingressGateways[1]",
        reason,
        f"ingressGateways[1].address: {message}",
    )
    assert skipped.subject.isprintable()


@pytest.mark.parametrize(
    "address", ["203.0.113.10", "10.0.0.10", "2001:db8::1", "gw.example.com", "GW.Example.com.", "100.64.0.1"]
)
def test_public_and_private_gateway_addresses_are_accepted(address: str) -> None:
    parsed = private(gateways=[{"address": address, "port": 443}])
    assert parsed.ingress_gateways == (IngressGateway(address, 443),)
    assert parsed.skipped_gateways == ()


def test_further_ranges_and_domains_are_refused_when_the_caller_says_so() -> None:
    document = {
        "ingressGateways": [
            {"address": "10.96.0.1", "port": 443},
            {"address": "fd00::5", "port": 443},
            {"address": "api.svc.cluster-a.local", "port": 443},
            {"address": "10.0.0.10", "port": 443},
        ],
        "publicServices": [],
    }
    parsed = parse_private(
        document,
        refused_networks=(ipaddress.ip_network("10.96.0.0/12"), ipaddress.ip_network("fd00::/8")),
        refused_domains=("cluster-a.local",),
    )
    assert parsed.ingress_gateways == (IngressGateway("10.0.0.10", 443),)
    assert [gateway.message for gateway in parsed.skipped_gateways] == [
        "ingressGateways[0].address: Forbidden: 10.96.0.1 is in 10.96.0.0/12, a range of this cluster (refused "
        "networks)",
        "ingressGateways[1].address: Forbidden: fd00::5 is in fd00::/8, a range of this cluster (refused networks)",
        "ingressGateways[2].address: Forbidden: api.svc.cluster-a.local is under cluster-a.local, a domain of this "
        "cluster",
    ]
    # Without them the same document is imported whole.
    assert len(parse_private(document).ingress_gateways) == 4


def test_a_gateway_with_a_bad_port_or_shape_is_skipped() -> None:
    parsed = private(gateways=[GATEWAY, {"address": "203.0.113.11", "port": 70000}, "203.0.113.12", {"port": 1}])
    assert [(g.address, g.reason, g.message) for g in parsed.skipped_gateways] == [
        (
            "203.0.113.11",
            "InvalidPortNumber",
            "ingressGateways[1].port: Invalid value: 70000: must be from 1 to 65535",
        ),
        ("", "NotAnObject", 'ingressGateways[2]: Invalid value: "string": must be an object with address and port'),
        ("", "InvalidAddress", "ingressGateways[3].address: Required value: must be a non-empty string"),
    ]


def test_no_gateway_published_is_told_apart_from_every_gateway_refused() -> None:
    none_published = private(
        {"hostname": "a.b.svc.cluster-b.local", "ports": [{"name": "http", "port": 1}]}, gateways=[]
    )
    assert (none_published.ingress_gateways, none_published.gateways_published) == ((), 0)
    assert len(none_published.public_services) == 1

    # Every published gateway refused: the document parses, with no gateway and each refusal named;
    # the reconciler treats it as "no gateway" (tests/reconciler/test_hostile.py).
    every_refused = private(
        {"hostname": "a.b.svc.cluster-b.local", "ports": [{"name": "http", "port": 1}]},
        gateways=[{"address": "127.0.0.1", "port": 15443}, {"address": "169.254.169.254", "port": 80}],
    )
    assert (every_refused.ingress_gateways, every_refused.gateways_published) == ((), 2)
    assert [(g.address, g.reason, g.message) for g in every_refused.skipped_gateways] == [
        ("127.0.0.1", "ForbiddenAddress", f"ingressGateways[0].address: Forbidden: 127.0.0.1 {LOOPBACK}"),
        (
            "169.254.169.254",
            "ForbiddenAddress",
            f"ingressGateways[1].address: Forbidden: 169.254.169.254 {LINK_LOCAL}",
        ),
    ]


# -- the envelope -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], 'invalid private metadata: Invalid value: "array": must be a JSON object'),
        (
            {},
            "invalid private metadata: ingressGateways: Required value: must be present (an empty list is allowed); "
            "publicServices: Required value: must be present (an empty list is allowed)",
        ),
        (
            {"ingressGateways": [], "publicServices": "x"},
            'invalid private metadata: publicServices: Invalid value: "string": must be a list',
        ),
        (
            {"ingressGateways": [GATEWAY] * 4097, "publicServices": []},
            'invalid private metadata: ingressGateways: Invalid value: "array": has 4097 gateways; a ServiceEntry '
            "holds at most 4096 endpoints",
        ),
        (
            {"ingressGateways": [GATEWAY], "publicServices": [0] * 20_001},
            'invalid private metadata: publicServices: Invalid value: "array": has 20001 services, more than 20000',
        ),
    ],
    ids=["not an object", "keys missing", "services not a list", "4097 gateways", "20,001 services"],
)
def test_a_broken_envelope_refuses_the_whole_document(document: Any, message: str) -> None:
    assert refused(document) == message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            b'{"ingressGateways": ' + b"[" * 100_000 + b"]" * 100_000 + b', "publicServices": []}',
            'invalid private metadata: Invalid value: "<body>": nested deeper than the limit of 32 levels at line 1 '
            "column 52 (char 51)",
            id="100,000 deep",
        ),
        pytest.param(
            b'{"ingressGateways": [{"address": "a.b", "port": ' + b"1" * 5000 + b'}], "publicServices": []}',
            'invalid private metadata: Invalid value: "<body>": number 11111111111111111111... has 5000 characters, '
            "more than the limit of 40",
            id="5,000-digit port",
        ),
        pytest.param(
            b'{"ingressGateways": [{"address": "a.b", "port": NaN}], "publicServices": []}',
            'invalid private metadata: Invalid value: "<body>": NaN is not a JSON number (only finite numbers are)',
            id="NaN port",
        ),
        pytest.param(
            b'{"ingressGateways": [], "publicServices": [' + b"{}," * 30_000 + b"{}]}",
            'invalid private metadata: Invalid value: "<body>": array at publicServices has 30001 members, more '
            "than the limit of 20000",
            id="30,001 services",
        ),
        pytest.param(
            b'{"ingressGateways": [], "publicServices": [{"hostname": "' + b"a" * 100_000 + b'"}]}',
            'invalid private metadata: Invalid value: "<body>": string at publicServices[0].hostname has 100000 '
            "characters, more than the limit of 65536",
            id="100,000-character hostname",
        ),
    ],
)
def test_hostile_bodies_are_refused_by_the_decoder_with_the_limit_named(body: bytes, message: str) -> None:
    with pytest.raises(DocumentError) as raised:
        decode_json(body, "private metadata")
    assert str(raised.value) == message


def test_a_document_error_names_ten_problems_and_counts_the_rest() -> None:
    from federation import fields

    errors = [fields.forbidden(Path("ingressGateways").index(n).child("address"), "no") for n in range(4096)]
    message = str(DocumentError("private metadata", errors))
    assert message.count("Forbidden") == 10
    assert message.endswith("ingressGateways[9].address: Forbidden: no; and 4086 more")
    assert len(message) < 2000


# -- bounded status ---------------------------------------------------------------------------------


def test_twenty_thousand_invalid_services_summarise_into_a_small_status() -> None:
    services: list[Any] = [{"hostname": f"bad host {n}\n", "ports": []} for n in range(19_999)]
    services.append({"hostname": "ok.a.svc.cluster-b.local", "ports": [{"name": "http", "port": 80}]})
    parsed = parse_private({"ingressGateways": [GATEWAY], "publicServices": services})
    assert [service.hostname for service in parsed.public_services] == ["ok.a.svc.cluster-b.local"]
    assert len(parsed.skipped) == 19_999

    summary = skipsummary.summarise(parsed.skipped)
    status = summary.to_status()

    assert (status["total"], status["byReason"], status["omitted"], len(status["items"])) == (
        19_999,
        {"InvalidHostname": 19_999},
        19_979,
        20,
    )
    assert status["items"][0] == {
        "path": "publicServices[0]",
        "subject": "bad host 0?",
        "reason": "InvalidHostname",
        "message": 'publicServices[0].hostname: Invalid value: "bad host 0\\n": must be a valid DNS name',
    }
    assert len(json.dumps(status)) < 10_000
    assert summary.message(what="services") == (
        '19999 services skipped (19999 InvalidHostname): bad host 0?: publicServices[0].hostname: Invalid value: "bad '
        'host 0\\n": must be a valid DNS name; bad host 1?: publicServices[1].hostname: Invalid value: "bad host 1\\n":'
        ' must be a valid DNS name; bad host 2?: publicServices[2].hostname: Invalid value: "bad host 2\\n": must be a'
        " valid DNS name; and 19996 more"
    )


_PORT_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-2, max_value=70_000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "http", "HTTP", "tcp", "udp", "UDP", "grpc-web", "a/b", "x" * 64, "tls", "http2", "Sctp"]),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["name", "port", "protocol", "other"]), _PORT_VALUES, max_size=4))
def test_the_fast_path_for_ports_agrees_with_the_field_by_field_check(item: dict[str, Any]) -> None:
    path = Path("publicServices").index(0).child("ports").index(0)
    assert public_services._port(item, path, "a.b") == public_services._checked_port(item, path, "a.b")
