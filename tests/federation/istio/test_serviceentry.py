"""Istio's ServiceEntry rules (reference §2.2 / §2.3): one valid fixture, one change per case, exact output.

Case ids start with the rule number of the reference table (``r07-...``) so a failure names the rule.
"""

from __future__ import annotations

import copy
import json
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from federation.istio.gostrings import quote
from federation.istio.hosts import hosts_of
from federation.istio.serviceentry import validate_service_entry
from federation.istio.visibility import PUBLIC, visibilities_overlap, visibility
from federation.warnings import MAX_WARNING

DELETE: Any = object()

FIXTURE: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "ServiceEntry",
    "metadata": {"name": "httpbin", "namespace": "bar"},
    "spec": {
        "hosts": ["httpbin.example.com"],
        "addresses": ["10.10.10.10"],
        "ports": [
            {"number": 443, "name": "https", "protocol": "HTTPS"},
            {"number": 80, "name": "http", "protocol": "HTTP"},
        ],
        "location": "MESH_EXTERNAL",
        "resolution": "STATIC",
        "endpoints": [{"address": "1.1.1.1", "ports": {"https": 8443}, "labels": {"app": "httpbin"}}],
        "exportTo": [".", "other"],
    },
}

HTTPS_ONLY = [{"number": 443, "name": "https", "protocol": "HTTPS"}]
TCP_WARNING = "addresses are required for ports serving TCP (or unset) protocol when IP Autoallocation is not enabled"
SELECTOR_WARNING = (
    "service entry: workload selector specified without labels, will be applied to all services in namespace"
)
FQDN_NEEDED = "hosts must be FQDN or contain only prefix wildcards if no endpoints are provided for resolution mode"
LONG_HOST = ".".join(["a" * 63] * 4)  # 255 bytes: the longest host Istio accepts
LONG_PREFIX_KEY = ".".join(["p" * 60] * 5) + "/x"  # a 304-byte DNS prefix (the limit is 253)


def cut(value: str) -> str:
    """How a value of more than 100 ASCII characters is echoed: quoted, cut, the rest counted."""
    return f'"{value[:100]}"…({len(value) - 100} more bytes)'


@dataclass(frozen=True)
class Case:
    id: str
    spec: dict[str, Any] = field(default_factory=dict)  # top-level spec keys to replace (DELETE removes)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    top: dict[str, Any] = field(default_factory=dict)  # top-level object keys to replace
    ip_autoallocate: bool = False


def build(case: Case) -> dict[str, Any]:
    obj = copy.deepcopy(FIXTURE)
    for target, changes in ((obj["spec"], case.spec), (obj["metadata"], case.metadata), (obj, case.top)):
        for key, value in changes.items():
            if value is DELETE:
                target.pop(key, None)
            else:
                target[key] = copy.deepcopy(value)
    return obj


CASES = [
    Case("valid-fixture"),
    # --- workloadSelector (1-4) -------------------------------------------------------------------------
    Case(
        "r01-selector-empty-key-aborts",
        spec={"workloadSelector": {"labels": {"": "v"}}, "hosts": ["*"]},
        errors=['spec.workloadSelector.labels[]: Invalid value: "": empty key is not supported in selector: "=v"'],
    ),
    Case(
        "r02-selector-wildcard-value-aborts",
        spec={"workloadSelector": {"labels": {"app": "web-*"}}},
        errors=[
            'spec.workloadSelector.labels[app]: Invalid value: "web-*": wildcard is not supported in '
            'selector: "app=web-*"'
        ],
    ),
    Case(
        "r02-selector-wildcard-key-and-empty-key-both-reported",
        spec={"workloadSelector": {"labels": {"*": "x", "": "*"}}},
        errors=[
            'spec.workloadSelector.labels[*]: Invalid value: "*": wildcard is not supported in selector: "*=x"',
            'spec.workloadSelector.labels[]: Invalid value: "": empty key is not supported in selector: "=*"',
            'spec.workloadSelector.labels[]: Invalid value: "*": wildcard is not supported in selector: "=*"',
        ],
    ),
    Case(
        "r03-selector-without-labels", spec={"workloadSelector": {}, "endpoints": DELETE}, warnings=[SELECTOR_WARNING]
    ),
    Case(
        "r03-selector-with-empty-labels",
        spec={"workloadSelector": {"labels": {}}, "endpoints": DELETE},
        warnings=[SELECTOR_WARNING],
    ),
    Case("r03-selector-with-labels", spec={"workloadSelector": {"labels": {"app": "web"}}, "endpoints": DELETE}),
    Case(
        "r04-selector-and-endpoints",
        spec={"workloadSelector": {"labels": {"app": "web"}}},
        errors=["spec.endpoints: Forbidden: only one of WorkloadSelector or Endpoints is allowed in Service Entry"],
    ),
    Case("r04-selector-and-empty-endpoints-is-nil", spec={"workloadSelector": {"labels": {"a": "b"}}, "endpoints": []}),
    # --- hosts (5-9) -----------------------------------------------------------------------------------
    Case(
        "r05-no-hosts",
        spec={"hosts": DELETE},
        errors=["spec.hosts: Required value: service entry must have at least one host"],
    ),
    Case(
        "r05-empty-hosts",
        spec={"hosts": []},
        errors=["spec.hosts: Required value: service entry must have at least one host"],
    ),
    Case("r06-full-wildcard", spec={"hosts": ["*"]}, errors=['spec.hosts[0]: Invalid value: "*": invalid host *']),
    Case(
        "r07-too-long",
        spec={"hosts": ["x" + LONG_HOST]},
        errors=[
            f"spec.hosts[0]: Invalid value: {cut('x' + LONG_HOST)}: "
            f"domain name {cut('x' + LONG_HOST)} too long (max 255)"
        ],
    ),
    Case("r07-longest-accepted", spec={"hosts": [LONG_HOST]}),
    Case("r07-empty", spec={"hosts": [""]}, errors=['spec.hosts[0]: Invalid value: "": empty domain name not allowed']),
    Case(
        "r07-bad-label",
        spec={"hosts": ["ok.com", "foo_bar.com"]},
        errors=[
            'spec.hosts[1]: Invalid value: "foo_bar.com": domain name "foo_bar.com" invalid (label "foo_bar" invalid)'
        ],
    ),
    # Quirk: after the first label Istio checks only the rest of the name, so the message names the rest.
    Case(
        "r07-numeric-tld",
        spec={"hosts": ["example.123"]},
        errors=[
            'spec.hosts[0]: Invalid value: "example.123": '
            'domain name "123" invalid (top level domain "123" cannot be all-numeric)'
        ],
    ),
    Case(
        "r07-quirk-signed-tld-counts-as-numeric",
        spec={"hosts": ["www.example.+1"]},
        errors=[
            'spec.hosts[0]: Invalid value: "www.example.+1": '
            'domain name "example.+1" invalid (top level domain "+1" cannot be all-numeric)'
        ],
    ),
    Case("r07-quirk-tld-too-big-for-int64-is-not-numeric", spec={"hosts": ["example.99999999999999999999"]}),
    Case("r07-quirk-numeric-short-name-allowed", spec={"hosts": ["123"]}),
    Case("r07-trailing-dot", spec={"hosts": ["httpbin.example.com."]}),
    Case(
        "r07-inner-wildcard-names-the-rest-only",
        spec={"hosts": ["foo.*.com"]},
        errors=['spec.hosts[0]: Invalid value: "foo.*.com": domain name "*.com" invalid (label "*" invalid)'],
        warnings=['spec.hosts[0]: partial wildcard "foo.*.com" not allowed'],
    ),
    Case(
        "r07-label-over-63",
        spec={"hosts": ["a" * 64 + ".com"]},
        errors=[
            f'spec.hosts[0]: Invalid value: "{"a" * 64}.com": domain name "{"a" * 64}.com" invalid (label '
            f'"{"a" * 64}" invalid)'
        ],
    ),
    Case(
        "r07-control-character-quoted-go-style",
        spec={"hosts": ["a\tb.com"]},
        errors=['spec.hosts[0]: Invalid value: "a\\tb.com": domain name "a\\tb.com" invalid (label "a\\tb" invalid)'],
    ),
    Case(
        "r08-partial-wildcard-is-a-warning",
        spec={"hosts": ["*foo.example.com"]},
        warnings=['spec.hosts[0]: partial wildcard "*foo.example.com" not allowed'],
    ),
    Case("r08-prefix-wildcard", spec={"hosts": ["*.example.com"]}),
    Case(
        "r08-long-partial-wildcard-shortened",
        spec={"hosts": ["*x." + "b" * 60 + "." + "c" * 60 + ".com"]},
        warnings=['partial wildcard "*x.' + "b" * 60 + "." + "c" * 24 + '…" not allowed'],  # exactly 120
    ),
    Case("r09-short-name", spec={"hosts": ["httpbin"]}),
    # --- addresses (10-11) ---------------------------------------------------------------------------
    Case("r10-ipv6", spec={"addresses": ["2001:db8::1", "fe80::1%eth0", "10.0.0.0/8", "2001:db8::/32"]}),
    Case(
        "r10-bad-ip",
        spec={"addresses": ["10.0.0.300"]},
        errors=['spec.addresses[0]: Invalid value: "10.0.0.300": 10.0.0.300 is not a valid IP'],
    ),
    Case(
        "r10-leading-zero",
        spec={"addresses": ["010.0.0.1"]},
        errors=['spec.addresses[0]: Invalid value: "010.0.0.1": 010.0.0.1 is not a valid IP'],
    ),
    Case(
        "r10-bad-cidr",
        spec={"addresses": ["10.0.0.0/8", "10.0.0.0/33"]},
        errors=['spec.addresses[1]: Invalid value: "10.0.0.0/33": 10.0.0.0/33 is not a valid CIDR block'],
    ),
    Case(
        "r10-two-slashes-is-not-cidr",
        spec={"addresses": ["10.0.0.0/8/8"]},
        errors=['spec.addresses[0]: Invalid value: "10.0.0.0/8/8": 10.0.0.0/8/8 is not a valid IP'],
    ),
    Case(
        "r11-cidr-with-dns",
        spec={"resolution": "DNS", "addresses": ["10.0.0.0/24"]},
        errors=["spec.addresses[0]: Forbidden: CIDR addresses are allowed only for NONE/STATIC resolution types"],
    ),
    Case("r11-cidr-with-none", spec={"resolution": "NONE", "addresses": ["10.0.0.0/24"], "endpoints": DELETE}),
    # --- ports (12-19) -----------------------------------------------------------------------------------
    Case(
        "r12-null-port",
        spec={"ports": [None, *HTTPS_ONLY]},
        errors=["spec.ports[0]: Required value: service entry port may not be null"],
    ),
    Case(
        "r13-duplicate-name",
        spec={"ports": [*HTTPS_ONLY, {"number": 8443, "name": "https", "protocol": "HTTPS"}]},
        errors=['spec.ports[1].name: Invalid value: "https": service entry port name "https" already defined'],
    ),
    Case(
        "r14-duplicate-number",
        spec={"ports": [*HTTPS_ONLY, {"number": 443, "name": "tls", "protocol": "TLS"}]},
        errors=["spec.ports[1].number: Invalid value: 443: service entry port 443 already defined"],
    ),
    Case(
        "r15-target-port-out-of-range",
        spec={"ports": [{"number": 443, "name": "https", "protocol": "HTTPS", "targetPort": 70000}]},
        errors=["spec.ports[0].targetPort: Invalid value: 70000: port number 70000 must be in the range 1..65535"],
    ),
    Case(
        "r15-target-port-zero-is-unset",
        spec={"ports": [{"number": 443, "name": "https", "protocol": "HTTPS", "targetPort": 0}]},
    ),
    Case(
        "r16-number-out-of-range",
        spec={"ports": [*HTTPS_ONLY, {"number": 65536, "name": "http", "protocol": "HTTP"}]},
        errors=["spec.ports[1].number: Invalid value: 65536: port number 65536 must be in the range 1..65535"],
    ),
    Case(
        "r16-number-missing",
        spec={"ports": [*HTTPS_ONLY, {"name": "http", "protocol": "HTTP"}]},
        errors=["spec.ports[1].number: Required value: port number 0 must be in the range 1..65535"],
    ),
    Case(
        "r17-bad-name",
        spec={"ports": [*HTTPS_ONLY, {"number": 80, "name": "HTTP_1", "protocol": "HTTP"}]},
        errors=['spec.ports[1].name: Invalid value: "HTTP_1": invalid port name: HTTP_1'],
    ),
    Case(
        "r17-missing-name",
        spec={"ports": [*HTTPS_ONLY, {"number": 80, "protocol": "HTTP"}]},
        errors=["spec.ports[1].name: Required value: invalid port name: "],
    ),
    Case(
        "r18-unsupported-protocol",
        spec={"ports": [*HTTPS_ONLY, {"number": 9092, "name": "kafka", "protocol": "kafka"}]},
        errors=['spec.ports[1].protocol: Invalid value: "kafka": unsupported protocol: kafka'],
    ),
    Case(
        "r18-quirk-hbone-is-not-a-protocol",
        spec={"ports": [*HTTPS_ONLY, {"number": 15008, "name": "hbone", "protocol": "HBONE"}]},
        errors=['spec.ports[1].protocol: Invalid value: "HBONE": unsupported protocol: HBONE'],
    ),
    Case("r18-case-insensitive", spec={"ports": [*HTTPS_ONLY, {"number": 80, "name": "web", "protocol": "grpc-WEB"}]}),
    Case(
        "r19-tcp-and-unset-without-addresses",
        spec={
            "addresses": DELETE,
            "ports": [
                *HTTPS_ONLY,
                {"number": 5432, "name": "pg", "protocol": "TCP"},
                {"number": 9000, "name": "sniffed"},
                {"number": 6379, "name": "lower", "protocol": "tcp"},  # case-sensitive in Istio: no warning
            ],
        },
        warnings=[TCP_WARNING, TCP_WARNING],
    ),
    Case(
        "r19-autoallocation-silences",
        spec={"addresses": DELETE, "ports": [*HTTPS_ONLY, {"number": 5432, "name": "pg", "protocol": "TCP"}]},
        ip_autoallocate=True,
    ),
    Case(
        "r19-autoallocation-opt-out-label",
        spec={"addresses": DELETE, "ports": [*HTTPS_ONLY, {"number": 5432, "name": "pg", "protocol": "TCP"}]},
        metadata={"labels": {"networking.istio.io/enable-autoallocate-ip": "false"}},
        warnings=[TCP_WARNING],
        ip_autoallocate=True,
    ),
    # --- NONE (20-21) ---------------------------------------------------------------------------------------
    Case(
        "r20-none-with-endpoints",
        spec={"resolution": "NONE"},
        errors=["spec.endpoints: Forbidden: no endpoints should be provided for resolution type none"],
    ),
    Case(
        "r21-none-with-selector",
        spec={"resolution": "NONE", "endpoints": DELETE, "workloadSelector": {"labels": {"app": "web"}}},
        warnings=["spec.workloadSelector: workloadSelector should not be set when resolution mode is NONE"],
    ),
    Case("r20-default-resolution-is-none", spec={"resolution": DELETE, "endpoints": DELETE}),
    # --- STATIC endpoints (22-30) --------------------------------------------------------------------------
    Case(
        "r22-null-endpoint",
        spec={"endpoints": [None]},
        errors=["spec.endpoints[0]: Required value: endpoint cannot be nil"],
    ),
    Case(
        "r23-fqdn-endpoint-in-static",
        spec={"endpoints": [{"address": "httpbin.org"}]},
        errors=[
            'spec.endpoints[0].address: Invalid value: "httpbin.org": endpoint address "httpbin.org" is not '
            "a valid IP address"
        ],
    ),
    Case(
        "r24-address-required-stops-that-endpoint",
        spec={"endpoints": [{"ports": {"nope": 1}, "labels": {"bad key": "v"}}]},
        errors=["spec.endpoints[0].address: Required value: address is required"],
    ),
    Case(
        "r25-network-without-address",
        spec={"endpoints": [{"network": "cluster-1"}]},
        warnings=['spec.endpoints[0].address: address is unset with network "cluster-1"'],
    ),
    Case(
        "r25-long-network-shortened-never-cut",
        spec={"endpoints": [{"network": "n" * 200}]},
        warnings=['address is unset with network "' + "n" * 87 + '…"'],  # exactly 120
    ),
    Case("r26-unix-abs", spec={"ports": HTTPS_ONLY, "endpoints": [{"address": "unix:///var/run/app.sock"}]}),
    Case("r26-unix-abstract", spec={"ports": HTTPS_ONLY, "endpoints": [{"address": "unix://@app"}]}),
    Case(
        "r26-unix-empty",
        spec={"ports": HTTPS_ONLY, "endpoints": [{"address": "unix://"}]},
        errors=['spec.endpoints[0].address: Invalid value: "unix://": unix address must not be empty'],
    ),
    Case(
        "r26-unix-relative",
        spec={"ports": HTTPS_ONLY, "endpoints": [{"address": "unix://run/app.sock"}]},
        errors=[
            'spec.endpoints[0].address: Invalid value: "unix://run/app.sock": run/app.sock is not an '
            "absolute path to a file"
        ],
    ),
    Case(
        "r26-unix-directory",
        spec={"ports": HTTPS_ONLY, "endpoints": [{"address": "unix:///run/"}]},
        errors=['spec.endpoints[0].address: Invalid value: "unix:///run/": /run/ is not an absolute path to a file'],
    ),
    Case(
        "r27-unix-with-ports",
        spec={"ports": HTTPS_ONLY, "endpoints": [{"address": "unix:///run/app.sock", "ports": {"https": 1}}]},
        errors=["spec.endpoints[0].ports: Forbidden: unix endpoint unix:///run/app.sock must not include ports"],
    ),
    Case(
        "r28-unix-needs-one-service-port",
        spec={"endpoints": [{"address": "unix:///run/app.sock"}]},
        errors=["spec.endpoints[0].address: Forbidden: exactly 1 service port required for unix endpoints"],
    ),
    Case(
        "r28-quirk-duplicate-names-count-once",
        spec={
            "ports": [*HTTPS_ONLY, {"number": 8443, "name": "https", "protocol": "HTTPS"}],
            "endpoints": [{"address": "unix:///run/app.sock"}],
        },
        errors=['spec.ports[1].name: Invalid value: "https": service entry port name "https" already defined'],
    ),
    Case(
        "r29-undefined-port-prints-the-number",
        spec={"endpoints": [{"address": "1.1.1.1", "ports": {"grpc": 9090}}]},
        errors=[
            "spec.endpoints[0].ports[grpc]: Invalid value: 9090: endpoint port 9090 is not defined by the service entry"
        ],
    ),
    Case(
        "r29-port-out-of-range",
        spec={"endpoints": [{"address": "1.1.1.1", "ports": {"https": 70000}}]},
        errors=[
            "spec.endpoints[0].ports[https]: Invalid value: 70000: port number 70000 must be in the range 1..65535"
        ],
    ),
    Case(
        "r29-bad-port-name",
        spec={"endpoints": [{"address": "1.1.1.1", "ports": {"Bad_Name": 1}}]},
        errors=[
            "spec.endpoints[0].ports[Bad_Name]: Invalid value: 1: endpoint port 1 is not defined by the service entry",
            'spec.endpoints[0].ports[Bad_Name]: Invalid value: "Bad_Name": invalid port name: Bad_Name',
        ],
    ),
    Case(
        "r30-bad-label-key-and-value",
        spec={"endpoints": [{"address": "1.1.1.1", "labels": {"bad key": "ok", "k": "bad value"}}]},
        errors=[
            'spec.endpoints[0].labels[bad key]: Invalid value: "bad key": invalid tag key: "bad key"',
            'spec.endpoints[0].labels[k]: Invalid value: "bad value": invalid tag value: "bad value"',
        ],
    ),
    Case(
        "r30-label-name-too-long",
        spec={"endpoints": [{"address": "1.1.1.1", "labels": {"a" * 64: ""}}]},
        errors=[
            f'spec.endpoints[0].labels[{"a" * 64}]: Invalid value: "{"a" * 64}": invalid tag key: '
            f'"{"a" * 64}" (name is too long)'
        ],
    ),
    Case(
        "r30-label-prefix-too-long",
        spec={"endpoints": [{"address": "1.1.1.1", "labels": {LONG_PREFIX_KEY: ""}}]},
        errors=[
            f"spec.endpoints[0].labels[{cut(LONG_PREFIX_KEY)}]: Invalid value: {cut(LONG_PREFIX_KEY)}: "
            f"invalid tag key: {cut(LONG_PREFIX_KEY)} (DNS prefix is too long)"
        ],
    ),
    Case(
        "r30-prefixed-label",
        spec={"endpoints": [{"address": "1.1.1.1", "labels": {"security.istio.io/tlsMode": "istio"}}]},
    ),
    # --- DNS and DNS_ROUND_ROBIN (31-34) ----------------------------------------------------------------------
    Case("r31-dns-fqdn-without-endpoints", spec={"resolution": "DNS", "endpoints": DELETE}),
    Case(
        "r31-dns-wildcard-without-endpoints-reported-once",
        spec={"resolution": "DNS", "endpoints": DELETE, "hosts": ["*.example.com", "*.example.org"]},
        errors=[
            f'spec.hosts[0]: Invalid value: "*.example.com": {FQDN_NEEDED} DNS, '
            'domain name "*.example.com" invalid (label "*" invalid)'
        ],
        warnings=[
            "spec.hosts: service entry can not have more than one host specified simultaneously with address "
            "and tcp port"
        ],
    ),
    Case(
        "r31-dns-round-robin-wildcard-without-endpoints",
        spec={"resolution": "DNS_ROUND_ROBIN", "endpoints": [], "hosts": ["*.example.com"]},
        errors=[
            f'spec.hosts[0]: Invalid value: "*.example.com": {FQDN_NEEDED} DNS_ROUND_ROBIN, '
            'domain name "*.example.com" invalid (label "*" invalid)'
        ],
    ),
    Case(
        "r31-dns-wildcard-with-endpoints",
        spec={"resolution": "DNS", "hosts": ["*.example.com"], "endpoints": [{"address": "lon.example.com"}]},
    ),
    Case(
        "r32-round-robin-two-endpoints",
        spec={"resolution": "DNS_ROUND_ROBIN", "endpoints": [{"address": "a.example.com"}, {"address": "1.1.1.1"}]},
        errors=["spec.endpoints: Forbidden: there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN"],
    ),
    Case(
        "r33-dns-endpoint-not-fqdn-nor-ip",
        spec={"resolution": "DNS", "endpoints": [{"address": "*.lon.example.com"}, {"address": "unix:///run/x"}]},
        errors=[
            'spec.endpoints[0].address: Invalid value: "*.lon.example.com": '
            'endpoint address "*.lon.example.com" is not a valid FQDN or an IP address',
            'spec.endpoints[1].address: Invalid value: "unix:///run/x": '
            'endpoint address "unix:///run/x" is not a valid FQDN or an IP address',
        ],
    ),
    Case(
        "r33-dns-endpoint-order-is-address-labels-ports",
        spec={
            "resolution": "DNS",
            "endpoints": [{"address": "-bad-", "ports": {"grpc": 1}, "labels": {"k": "bad value"}}],
        },
        errors=[
            'spec.endpoints[0].address: Invalid value: "-bad-": endpoint address "-bad-" is not a valid FQDN '
            "or an IP address",
            'spec.endpoints[0].labels[k]: Invalid value: "bad value": invalid tag value: "bad value"',
            "spec.endpoints[0].ports[grpc]: Invalid value: 1: endpoint port 1 is not defined by the service entry",
        ],
    ),
    Case(
        "r34-dns-address-tcp-port-many-hosts",
        spec={"resolution": "DNS", "hosts": ["a.example.com", "b.example.com"]},
        warnings=[
            "spec.hosts: service entry can not have more than one host specified simultaneously with address "
            "and tcp port"
        ],
    ),
    Case(
        "r34-quirk-null-port-reported-again",
        spec={"resolution": "DNS", "ports": [None, *HTTPS_ONLY]},
        errors=[
            "spec.ports[0]: Required value: service entry port may not be null",
            "spec.ports[0]: Required value: ports cannot be nil",
        ],
    ),
    # --- DYNAMIC_DNS (35) -------------------------------------------------------------------------------
    Case(
        "r35-dynamic-dns-valid-and-partial-wildcard-silent",
        spec={
            "resolution": "DYNAMIC_DNS",
            "hosts": ["*.example.com", "*api.example.org"],
            "addresses": DELETE,
            "endpoints": DELETE,
            "ports": [
                {"number": 443, "name": "tls", "protocol": "TLS"},
                {"number": 80, "name": "http", "protocol": "HTTP"},
            ],
        },
    ),
    Case(
        "r35-dynamic-dns-everything-wrong",
        spec={
            "resolution": "DYNAMIC_DNS",
            "hosts": ["example.com"],
            "location": "MESH_INTERNAL",
            "ports": [*HTTPS_ONLY, {"number": 5432, "name": "pg", "protocol": "TCP"}],
        },
        metadata={"labels": {"istio.io/use-waypoint": "waypoint"}},
        errors=[
            'spec.hosts[0]: Invalid value: "example.com": host must be wildcarded for resolution mode DYNAMIC_DNS',
            # Istio's texts whole, quirks included: its Go string concatenations lack a space.
            "spec.addresses: Forbidden: addresses cannot be set for resolution type DYNAMIC_DNS. HTTP route "
            "domains will only be generatedfrom the hosts field values",
            "spec.endpoints: Forbidden: endpoints cannot be set for resolution type DYNAMIC_DNS. Destination IP "
            "address determined from hostsfield values",
            'spec.ports[0].protocol: Invalid value: "HTTPS": '
            "only HTTP, TLS, GRPC, and HTTP2 protocols are supported for resolution type DYNAMIC_DNS",
            'spec.ports[1].protocol: Invalid value: "TCP": '
            "only HTTP, TLS, GRPC, and HTTP2 protocols are supported for resolution type DYNAMIC_DNS",
            "spec.location: Forbidden: location MESH_INTERNAL with resolution type DYNAMIC_DNS is not "
            "supported when using waypoints",
        ],
    ),
    Case(
        "r35-dynamic-dns-null-port-gets-both-of-istios-errors",
        spec={
            "resolution": "DYNAMIC_DNS",
            "hosts": ["*.example.com"],
            "addresses": DELETE,
            "endpoints": DELETE,
            "ports": [None, {"number": 80, "name": "http", "protocol": "HTTP"}],
        },
        errors=[
            "spec.ports[0]: Required value: service entry port may not be null",
            "spec.ports[0]: Required value: port cannot be nil",
        ],
    ),
    Case(
        "r35-dynamic-dns-no-hosts",
        spec={
            "resolution": "DYNAMIC_DNS",
            "hosts": [],
            "addresses": DELETE,
            "endpoints": DELETE,
            "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
        },
        errors=[
            "spec.hosts: Required value: service entry must have at least one host",
            "spec.hosts: Required value: at least one wildcard host must be provided for resolution type DYNAMIC_DNS",
        ],
    ),
    # --- resolution (36), multiple hosts (37) ---------------------------------------------------------------
    Case(
        "r36-unknown-resolution",
        spec={"resolution": "MAGIC"},
        errors=['spec.resolution: Invalid value: "MAGIC": unsupported resolution type MAGIC'],
    ),
    Case(
        "r37-multi-host-tcp",
        spec={
            "hosts": ["a.example.com", "b.example.com"],
            "ports": [*HTTPS_ONLY, {"number": 5432, "name": "pg", "protocol": "TCP"}, {"number": 1, "name": "x"}],
        },
        errors=["spec.ports[1]: Forbidden: multiple hosts provided with non-HTTP, non-TLS ports"],
    ),
    Case(
        "r37-multi-host-unset-protocol-counts-as-non-http",
        spec={
            "hosts": ["a.example.com", "b.example.com"],
            "ports": [{"number": 443, "name": "https"}],
            "endpoints": DELETE,
        },
        errors=["spec.ports[0]: Forbidden: multiple hosts provided with non-HTTP, non-TLS ports"],
    ),
    Case(
        "r37-multi-host-none-is-fine",
        spec={
            "resolution": "NONE",
            "endpoints": DELETE,
            "hosts": ["a.example.com", "b.example.com"],
            "ports": [{"number": 5432, "name": "pg", "protocol": "TCP"}],
        },
    ),
    Case("r37-multi-host-http-and-tls", spec={"hosts": ["a.example.com", "b.example.com"]}),
    # --- exportTo (38-41) ---------------------------------------------------------------------------------
    Case(
        "r38-dot-then-own-namespace",
        spec={"exportTo": [".", "bar"]},
        errors=['spec.exportTo[1]: Invalid value: "bar": duplicate entries in exportTo for entry bar'],
    ),
    Case(
        "r38-own-namespace-then-dot",
        spec={"exportTo": ["bar", "."]},
        errors=['spec.exportTo[1]: Invalid value: ".": duplicate entries in exportTo: . and current namespace bar'],
    ),
    Case(
        "r38-plain-duplicate",
        spec={"exportTo": ["other", "other"]},
        errors=['spec.exportTo[1]: Invalid value: "other": duplicate entries in exportTo for entry other'],
    ),
    Case(
        "r39-not-a-label",
        spec={"exportTo": ["Not_A_Label"]},
        errors=[
            'spec.exportTo[0]: Invalid value: "Not_A_Label": only .,*, or a valid DNS 1123 label is allowed '
            "as exportTo entry"
        ],
    ),
    Case(
        "r40-public-and-more",
        spec={"exportTo": ["*", "other"]},
        errors=["spec.exportTo: Forbidden: cannot have both public (*) and non-public exportTo values for a resource"],
    ),
    Case(
        "r41-none-and-more",
        spec={"exportTo": ["~", "other"]},
        errors=["spec.exportTo: Forbidden: cannot export service entry to no one (~) and someone"],
    ),
    Case("r41-none-alone", spec={"exportTo": ["~"]}),
    Case("r39-public-alone", spec={"exportTo": ["*"]}),
    # --- metadata wrapper and CRD-level rules ---------------------------------------------------------------
    Case(
        "meta-dry-run-annotation-aborts",
        spec={"hosts": ["*"]},
        metadata={"annotations": {"istio.io/dry-run": "true"}},
        errors=[
            "metadata.annotations[istio.io/dry-run]: Forbidden: "
            "bar/httpbin has unsupported annotation istio.io/dry-run, please remove the annotation"
        ],
    ),
    Case(
        "meta-always-reject-annotation",
        metadata={"annotations": {"internal.istio.io/webhook-always-reject": ""}},
        errors=[
            "metadata.annotations[internal.istio.io/webhook-always-reject]: Forbidden: "
            '"internal.istio.io/webhook-always-reject" annotation found, rejecting'
        ],
    ),
    Case(
        "crd-api-version",
        top={"apiVersion": "networking.istio.io/v2"},
        errors=[
            'apiVersion: Unsupported value: "networking.istio.io/v2": supported values: '
            '"networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3"'
        ],
    ),
    Case("crd-v1alpha3", top={"apiVersion": "networking.istio.io/v1alpha3"}),
    Case(
        "crd-location-enum",
        spec={"location": "MESH_OUTSIDE"},
        errors=['spec.location: Unsupported value: "MESH_OUTSIDE": supported values: "MESH_EXTERNAL", "MESH_INTERNAL"'],
    ),
    Case(
        "crd-too-many-hosts",
        spec={"hosts": [f"h{i}.example.com" for i in range(257)]},
        errors=["spec.hosts: Invalid value: 257: must have at most 256 items"],
    ),
    Case(
        "crd-too-many-endpoints",
        spec={"endpoints": [{"address": "1.1.1.1"}] * 4097},
        errors=["spec.endpoints: Invalid value: 4097: must have at most 4096 items"],
    ),
    Case(
        "crd-address-too-long",
        spec={"addresses": ["1" * 65]},
        errors=[
            "spec.addresses[0]: Too long: must have at most 64 bytes",
            f'spec.addresses[0]: Invalid value: "{"1" * 65}": {"1" * 65} is not a valid IP',
        ],
    ),
    Case(
        "crd-selector-value-too-long",
        spec={"endpoints": DELETE, "workloadSelector": {"labels": {"app": "v" * 64}}},
        errors=["spec.workloadSelector.labels[app]: Too long: must have at most 63 bytes"],
    ),
    Case(
        "crd-weight-is-uint32",
        spec={"endpoints": [{"address": "1.1.1.1", "weight": -1}]},
        errors=["spec.endpoints[0].weight: Invalid value: -1: must be between 0 and 4294967295"],
    ),
    # --- garbage types ----------------------------------------------------------------------------------------
    Case("type-spec-not-object", top={"spec": ["hosts"]}, errors=['spec: Invalid value: "array": must be an object']),
    Case(
        "type-spec-missing",
        top={"spec": DELETE},
        errors=["spec.hosts: Required value: service entry must have at least one host"],
    ),
    Case(
        "type-metadata-not-object",
        top={"metadata": "bar"},
        errors=['metadata: Invalid value: "string": must be an object'],
    ),
    Case(
        "type-hosts-not-list",
        spec={"hosts": "a.example.com"},
        errors=['spec.hosts: Invalid value: "string": must be a list of strings'],
    ),
    Case(
        "type-host-entries",
        spec={"hosts": [None, 5, "ok.example.com"]},
        errors=[
            'spec.hosts[0]: Invalid value: "null": must be a string',
            'spec.hosts[1]: Invalid value: "integer": must be a string',
        ],
    ),
    Case(
        "type-port-number-string",
        spec={"ports": [{"number": "443", "name": "https", "protocol": "HTTPS"}]},
        errors=['spec.ports[0].number: Invalid value: "string": must be an integer'],
    ),
    Case(
        "type-port-number-bool-and-float",
        spec={
            "ports": [
                {"number": True, "name": "https", "protocol": "HTTPS"},
                {"number": 80.5, "name": "http", "protocol": "HTTP"},
            ]
        },
        errors=[
            'spec.ports[0].number: Invalid value: "boolean": must be an integer',
            'spec.ports[1].number: Invalid value: "number": must be an integer',
        ],
    ),
    Case(
        "type-port-entry-and-fields",
        spec={"ports": ["443", {"number": 443, "name": 7, "protocol": ["HTTPS"]}]},
        errors=[
            'spec.ports[0]: Invalid value: "string": must be an object',
            'spec.ports[1].name: Invalid value: "integer": must be a string',
            'spec.ports[1].protocol: Invalid value: "array": must be a string',
            "spec.endpoints[0].ports[https]: Invalid value: 8443: endpoint port 8443 is not defined by the "
            "service entry",
        ],
    ),
    Case(
        "type-endpoints-dict",
        spec={"endpoints": {"address": "1.1.1.1"}},
        errors=['spec.endpoints: Invalid value: "object": must be a list of endpoints'],
    ),
    Case(
        "type-endpoint-fields",
        spec={"endpoints": [{"address": 1, "ports": {"https": "8443"}, "labels": ["app"], "network": {}}]},
        errors=[
            'spec.endpoints[0].address: Invalid value: "integer": must be a string',
            'spec.endpoints[0].network: Invalid value: "object": must be a string',
            'spec.endpoints[0].ports[https]: Invalid value: "string": must be an integer',
            'spec.endpoints[0].labels: Invalid value: "array": must be a map of strings',
        ],
    ),
    Case(
        "type-resolution-number",
        spec={"resolution": 1, "addresses": DELETE, "ports": HTTPS_ONLY},
        errors=['spec.resolution: Invalid value: "integer": must be a string'],
    ),
    Case(
        "type-exportto-entries",
        spec={"exportTo": "*"},
        errors=['spec.exportTo: Invalid value: "string": must be a list of strings'],
    ),
    Case(
        "type-selector-labels",
        spec={"endpoints": DELETE, "workloadSelector": {"labels": {"app": None}}},
        errors=['spec.workloadSelector.labels[app]: Invalid value: "null": must be a string'],
    ),
]


WAYPOINT_ERROR = (
    "spec.location: Forbidden: location MESH_INTERNAL with resolution type DYNAMIC_DNS is not supported when "
    "using waypoints"
)


@pytest.mark.parametrize(
    ("labels", "errors"),
    [
        pytest.param({}, [], id="no-label"),
        pytest.param({"istio.io/use-waypoint": ""}, [], id="empty-means-none"),
        pytest.param({"istio.io/use-waypoint": "none"}, [], id="none"),
        pytest.param({"istio.io/use-waypoint": "NONE"}, [], id="NONE"),
        pytest.param({"istio.io/use-waypoint": "None"}, [], id="None"),
        pytest.param({"istio.io/use-waypoint": "waypoint"}, [WAYPOINT_ERROR], id="a-waypoint"),
        pytest.param({"istio.io/use-waypoint": "none-really"}, [WAYPOINT_ERROR], id="a-waypoint-named-like-none"),
        pytest.param({"istio.io/use-waypoint": " none"}, [WAYPOINT_ERROR], id="none-with-a-space-is-a-name"),
    ],
)
def test_dynamic_dns_mesh_internal_is_refused_only_with_a_waypoint(labels: dict[str, str], errors: list[str]) -> None:
    """Istio >= 1.30 reads ``istio.io/use-waypoint: none`` (any case) or an empty value as no waypoint."""
    case = Case(
        "waypoint",
        spec={
            "resolution": "DYNAMIC_DNS",
            "location": "MESH_INTERNAL",
            "hosts": ["*.svc.cluster.local"],
            "addresses": DELETE,
            "endpoints": DELETE,
            "ports": [{"number": 9080, "name": "http", "protocol": "HTTP"}],
        },
        metadata={"labels": labels},
    )
    result = validate_service_entry(build(case))
    assert ([error.render() for error in result.errors], result.warnings) == (errors, ())


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_rule(case: Case) -> None:
    result = validate_service_entry(build(case), ip_autoallocate=case.ip_autoallocate)
    assert [error.render() for error in result.errors] == case.errors
    assert list(result.warnings) == case.warnings


def test_case_ids_are_unique() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))


def test_every_reference_rule_has_a_case() -> None:
    covered = {int(case.id[1:3]) for case in CASES if case.id.startswith("r")}
    assert covered == set(range(1, 42))


def test_not_an_object_at_all() -> None:
    garbage: Any = ["not", "an", "object"]
    result = validate_service_entry(garbage)
    assert [error.render() for error in result.errors] == ['spec: Invalid value: "array": must be an object']
    assert result.warnings == ()


def test_lone_surrogate_is_read_as_go_reads_it() -> None:
    obj = build(Case("x", spec={"hosts": ["a\ud800.com"]}))
    errors = validate_service_entry(obj).errors
    assert [error.render() for error in errors] == [
        'spec.hosts[0]: Invalid value: "a\ufffd.com": domain name "a\ufffd.com" invalid (label "a\ufffd" invalid)'
    ]


def test_go_quote() -> None:
    assert quote('a"b\\c\n\x00\x7f\u00a0\u2028é') == '"a\\"b\\\\c\\n\\x00\\x7f\\u00a0\\u2028é"'


# --- cross-object helpers --------------------------------------------------------------------------------


def with_export(export_to: Any, namespace: str = "bar") -> dict[str, Any]:
    return {"metadata": {"namespace": namespace}, "spec": {"hosts": ["a.example.com", 5], "exportTo": export_to}}


def test_hosts_of() -> None:
    assert hosts_of(with_export(None)) == ["a.example.com"]
    assert hosts_of({"spec": {"hosts": "a"}}) == []
    assert hosts_of({}) == []
    assert hosts_of({"kind": "DestinationRule", "spec": {"host": "b.example.com"}}) == ["b.example.com"]
    assert hosts_of({"kind": "DestinationRule", "spec": {"host": ""}}) == []
    assert hosts_of({"kind": "DestinationRule", "spec": {"hosts": ["a.example.com"]}}) == []
    assert hosts_of({"spec": {"host": "b.example.com"}}, kind="DestinationRule") == ["b.example.com"]
    assert hosts_of({"kind": "DestinationRule", "spec": {"hosts": ["a"]}}, kind="ServiceEntry") == ["a"]
    assert hosts_of(["not", "an", "object"]) == []


@pytest.mark.parametrize(
    ("export_to", "expected"),
    [
        pytest.param(None, PUBLIC, id="absent-is-public"),
        pytest.param([], PUBLIC, id="empty-is-public"),
        pytest.param(["*"], PUBLIC, id="star"),
        pytest.param(["."], frozenset({"bar"}), id="dot-is-own-namespace"),
        pytest.param(["~"], frozenset(), id="tilde-is-no-one"),
        pytest.param([".", "ns1"], frozenset({"bar", "ns1"}), id="names"),
        pytest.param("garbage", PUBLIC, id="unreadable-is-public"),
    ],
)
def test_visibility(export_to: Any, expected: frozenset[str]) -> None:
    assert visibility(with_export(export_to)) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        pytest.param(with_export(None), with_export(["*"], "other"), True, id="both-public"),
        pytest.param(with_export(["."]), with_export(["."]), True, id="same-namespace-private"),
        pytest.param(with_export(["."]), with_export(["."], "other"), False, id="different-namespaces-private"),
        pytest.param(with_export(["."]), with_export(["bar"], "other"), True, id="private-and-exported-to-it"),
        pytest.param(with_export(None), with_export(["."], "other"), True, id="public-and-private"),
        pytest.param(with_export(["~"]), with_export(None), False, id="tilde-overlaps-nothing"),
        pytest.param(with_export(["ns1", "ns2"]), with_export(["ns3"]), False, id="disjoint-names"),
    ],
)
def test_visibilities_overlap(a: dict[str, Any], b: dict[str, Any], expected: bool) -> None:
    assert visibilities_overlap(a, b) is expected
    assert visibilities_overlap(b, a) is expected


# --- properties ----------------------------------------------------------------------------------------------

JSON_SCALARS = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=300)
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)
HOSTISH = st.sampled_from(["*", "*.a.com", "a*.com", "a.com", "", "a..b", "1.2.3.4", "x" * 300, "é.com", "\n"])
PORT = st.fixed_dictionaries(
    {},
    optional={
        "number": st.integers(-1, 70000) | JSON,
        "name": st.sampled_from(["http", "tcp", "", "Bad_Name"]) | JSON,
        "protocol": st.sampled_from(["HTTP", "TCP", "", "tls", "kafka"]) | JSON,
        "targetPort": st.integers(0, 70000) | JSON,
    },
)
ENDPOINT = st.fixed_dictionaries(
    {},
    optional={
        "address": st.sampled_from(["1.1.1.1", "a.com", "unix:///x", "unix://", ""]) | st.text(max_size=300) | JSON,
        "network": st.text(max_size=300) | JSON,
        "ports": st.dictionaries(st.sampled_from(["http", "tcp", "x y"]), st.integers(-1, 70000) | JSON, max_size=3)
        | JSON,
        "labels": st.dictionaries(st.text(max_size=20), st.text(max_size=20) | JSON, max_size=3) | JSON,
    },
)
SPEC = st.fixed_dictionaries(
    {},
    optional={
        "hosts": st.lists(HOSTISH | st.text(max_size=300) | JSON, max_size=4) | JSON,
        "addresses": st.lists(st.sampled_from(["1.2.3.4", "10.0.0.0/8", "::1", "x"]) | JSON, max_size=3) | JSON,
        "ports": st.lists(st.none() | PORT | JSON, max_size=4) | JSON,
        "endpoints": st.lists(st.none() | ENDPOINT | JSON, max_size=4) | JSON,
        "resolution": st.sampled_from(["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS", "X"]) | JSON,
        "location": st.sampled_from(["MESH_EXTERNAL", "MESH_INTERNAL"]) | JSON,
        "workloadSelector": st.fixed_dictionaries(
            {}, optional={"labels": st.dictionaries(st.text(max_size=5), st.text(max_size=5))}
        )
        | JSON,
        "exportTo": st.lists(st.sampled_from([".", "*", "~", "bar", "Bad"]) | JSON, max_size=3) | JSON,
    },
)
OBJECT = st.fixed_dictionaries(
    {"spec": SPEC | JSON},
    optional={
        "metadata": st.fixed_dictionaries(
            {}, optional={"namespace": st.text(max_size=10) | JSON, "labels": JSON, "annotations": JSON}
        )
        | JSON
    },
)


def assert_well_formed(obj: Any, ip_autoallocate: bool) -> None:
    result = validate_service_entry(obj, ip_autoallocate=ip_autoallocate)
    for error in result.errors:
        assert error.render()
    for warning in result.warnings:
        assert 0 < len(warning) <= MAX_WARNING, warning
        assert not any(unicodedata.category(char) == "Cc" for char in warning), warning


@settings(max_examples=400, deadline=None)
@given(OBJECT, st.booleans())
def test_structured_garbage_never_raises(obj: dict[str, Any], ip_autoallocate: bool) -> None:
    assert_well_formed(obj, ip_autoallocate)


@settings(max_examples=200, deadline=None)
@given(JSON)
def test_any_json_never_raises(obj: Any) -> None:
    assert_well_formed(obj, ip_autoallocate=False)


# --- control characters in every string field Istio validates ---------------------------------------------
# Python's ``$`` matches before a final newline; Istio's (Go's) does not.  Every field gets each hostile
# variant of its valid value, and must be refused with Istio's text for it (a value that is not printable is
# echoed Go-quoted where Istio prints it bare).

VARIANTS = {
    "trailing-lf": lambda value: value + "\n",
    "trailing-crlf": lambda value: value + "\r\n",
    "embedded-cr": lambda value: value[:3] + "\r" + value[3:],
    "embedded-lf": lambda value: value[:3] + "\n" + value[3:],
    "embedded-nul": lambda value: value[:3] + "\x00" + value[3:],
    "embedded-tab": lambda value: value[:3] + "\t" + value[3:],
}


def j(value: str) -> str:
    """How a field error shows its value (JSON-quoted, as the rest of the project renders values)."""
    return json.dumps(value, ensure_ascii=False)


def host_label(host: str) -> str:
    return next(label for label in host.split(".") if not label.isalnum())


def host_domain(host: str) -> str:
    """Istio's ValidateWildcardDomain quirk: past the first label it names only the rest of the host."""
    first, _, rest = host.partition(".")
    return host if not first.isalnum() else rest


FIELDS: dict[str, tuple[Callable[[dict[str, Any], str], None], str, Callable[[str], list[str]]]] = {
    "hosts": (
        lambda obj, bad: obj["spec"].update(hosts=[bad]),
        "httpbin.example.com",
        lambda bad: [
            f"spec.hosts[0]: Invalid value: {j(bad)}: domain name {quote(host_domain(bad))} invalid "
            f"(label {quote(host_label(bad))} invalid)"
        ],
    ),
    "addresses": (
        lambda obj, bad: obj["spec"].update(addresses=[bad]),
        "10.10.10.10",
        lambda bad: [f"spec.addresses[0]: Invalid value: {j(bad)}: {quote(bad)} is not a valid IP"],
    ),
    "port-name": (
        lambda obj, bad: obj["spec"]["ports"][1].update(name=bad),
        "http",
        lambda bad: [f"spec.ports[1].name: Invalid value: {j(bad)}: invalid port name: {quote(bad)}"],
    ),
    "port-protocol": (
        lambda obj, bad: obj["spec"]["ports"][1].update(protocol=bad),
        "HTTP",
        lambda bad: [f"spec.ports[1].protocol: Invalid value: {j(bad)}: unsupported protocol: {quote(bad)}"],
    ),
    "endpoint-address": (
        lambda obj, bad: obj["spec"]["endpoints"][0].update(address=bad),
        "1.1.1.1",
        lambda bad: [
            f"spec.endpoints[0].address: Invalid value: {j(bad)}: endpoint address {quote(bad)} is not a valid IP "
            "address"
        ],
    ),
    "endpoint-port-name": (
        lambda obj, bad: obj["spec"]["endpoints"][0].update(ports={bad: 8443}),
        "https",
        lambda bad: [
            f"spec.endpoints[0].ports[{j(bad)}]: Invalid value: 8443: endpoint port 8443 is not defined by the "
            "service entry",
            f"spec.endpoints[0].ports[{j(bad)}]: Invalid value: {j(bad)}: invalid port name: {quote(bad)}",
        ],
    ),
    "endpoint-label-key": (
        lambda obj, bad: obj["spec"]["endpoints"][0].update(labels={bad: "httpbin"}),
        "app",
        lambda bad: [f"spec.endpoints[0].labels[{j(bad)}]: Invalid value: {j(bad)}: invalid tag key: {quote(bad)}"],
    ),
    "endpoint-label-value": (
        lambda obj, bad: obj["spec"]["endpoints"][0].update(labels={"app": bad}),
        "httpbin",
        lambda bad: [f"spec.endpoints[0].labels[app]: Invalid value: {j(bad)}: invalid tag value: {quote(bad)}"],
    ),
    "export-to": (
        lambda obj, bad: obj["spec"].update(exportTo=[".", bad]),
        "other",
        lambda bad: [
            f"spec.exportTo[1]: Invalid value: {j(bad)}: only .,*, or a valid DNS 1123 label is allowed as "
            "exportTo entry"
        ],
    ),
    "resolution": (
        lambda obj, bad: obj["spec"].update(resolution=bad),
        "STATIC",
        lambda bad: [f"spec.resolution: Invalid value: {j(bad)}: unsupported resolution type {quote(bad)}"],
    ),
    "location": (
        lambda obj, bad: obj["spec"].update(location=bad),
        "MESH_EXTERNAL",
        lambda bad: [
            f'spec.location: Unsupported value: {j(bad)}: supported values: "MESH_EXTERNAL", "MESH_INTERNAL"'
        ],
    ),
}
HOSTILE = [
    pytest.param(field, variant, id=f"{field}-{variant}") for field in FIELDS for variant in VARIANTS
]


@pytest.mark.parametrize(("field", "variant"), HOSTILE)
def test_control_characters_are_refused_in_every_validated_field(field: str, variant: str) -> None:
    change, valid, expected = FIELDS[field]
    obj = copy.deepcopy(FIXTURE)
    change(obj, valid)
    assert validate_service_entry(obj).errors == (), "the unchanged value must be valid"
    bad = VARIANTS[variant](valid)
    change(obj, bad)
    result = validate_service_entry(obj)
    assert [error.render() for error in result.errors] == expected(bad)
    assert result.warnings == ()


# --- hostile lists: checked up to an error budget, then the rest is named as unchecked -----------------------


def test_endpoints_are_checked_until_1000_errors() -> None:
    bad_labels = {f"k{number}_": "" for number in range(256)}  # 256 invalid tag keys per endpoint
    obj = build(Case("x", spec={"endpoints": [{"address": "1.1.1.1", "labels": bad_labels}] * 10}))
    errors = [error.render() for error in validate_service_entry(obj).errors]
    assert len(errors) == 4 * 256 + 1
    assert errors[0] == 'spec.endpoints[0].labels[k0_]: Invalid value: "k0_": invalid tag key: "k0_"'
    assert errors[-1] == (
        "spec.endpoints: Invalid value: 10: validation stopped after 1024 errors in the first 4 entries; the other "
        "6 were not checked"
    )


def test_export_to_is_checked_until_1000_errors() -> None:
    obj = build(Case("x", spec={"exportTo": ["Not_A_Namespace"] * 2000}))
    errors = [error.render() for error in validate_service_entry(obj).errors]
    assert len(errors) == 1001
    assert errors[-1] == (
        "spec.exportTo: Invalid value: 2000: validation stopped after 1000 errors in the first 1000 entries; the "
        "other 1000 were not checked"
    )
