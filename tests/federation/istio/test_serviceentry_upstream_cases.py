"""Istio's own ServiceEntry test table, as facts, checked against our re-implementation.

Source: istio/istio ``pkg/config/validation/validation_test.go`` ``TestValidateServiceEntries`` (the stored
copy at commit 91fbb8149f8f, which already uses ``ServicePort`` and has no DNS warning for selectors, i.e.
a recent 1.2x release; it predates DYNAMIC_DNS, whose cases live in ``test_serviceentry.py``).  Each
case keeps Istio's name and its expected outcome (valid? warning?); the Go structs are rewritten here as
the CRD's YAML/JSON shape.  Istio runs every case in namespace ``bar`` under the name ``foo`` with IP
auto-allocation off, and so do we.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from federation.admission_response import AdmissionResponse
from federation.fields import ValidationResult
from federation.index import ObjectIndex
from federation.istio.serviceentry import validate_service_entry
from federation.validation import registry
from federation.validation.attributes import Attributes, Context


def port(number: int, protocol: str | None, name: str, target_port: int | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"number": number, "name": name}
    if protocol is not None:
        result["protocol"] = protocol
    if target_port is not None:
        result["targetPort"] = target_port
    return result


def endpoint(address: str | None = None, ports: dict[str, int] | None = None, **extra: Any) -> dict[str, Any]:
    result: dict[str, Any] = dict(extra)
    if address is not None:
        result["address"] = address
    if ports is not None:
        result["ports"] = ports
    return result


@dataclass(frozen=True)
class Case:
    name: str
    spec: dict[str, Any]
    valid: bool
    warning: bool = False
    note: str = ""  # why the case depends on a version or feature flag


HTTP2 = [port(80, "http", "http-valid1"), port(8080, "http", "http-valid2")]
LON_IN = [endpoint("lon.google.com", {"http-valid1": 8080}), endpoint("in.google.com", {"http-valid2": 9080})]
TLS_MODE = {"security.istio.io/tlsMode": "istio"}
STATIC_IPS = [endpoint("1.1.1.1", {"http-valid1": 8080}), endpoint("2.2.2.2", {"http-valid2": 9080})]
GRPC1 = [port(6553, "grpc", "grpc-service1")]

CASES = [
    Case(
        "discovery type DNS",
        {"hosts": ["*.google.com"], "ports": HTTP2, "endpoints": LON_IN, "resolution": "DNS"},
        True,
    ),
    Case(
        "discovery type DNS Round Robin",
        {
            "hosts": ["*.istio.io"],
            "ports": HTTP2,
            "endpoints": [endpoint("api-v1.istio.io", {"http-valid1": 8080})],
            "resolution": "DNS_ROUND_ROBIN",
        },
        True,
    ),
    Case(
        "discovery type DNS, label tlsMode: istio",
        {
            "hosts": ["*.google.com"],
            "ports": HTTP2,
            "endpoints": [
                endpoint("lon.google.com", {"http-valid1": 8080}, labels=TLS_MODE),
                endpoint("in.google.com", {"http-valid2": 9080}, labels=TLS_MODE),
            ],
            "resolution": "DNS",
        },
        True,
    ),
    Case(
        "discovery type DNS, one host set with IP address and https port",
        {
            "hosts": ["httpbin.org"],
            "addresses": ["10.10.10.10"],
            "ports": [*HTTP2, port(443, "https", "https")],
            "resolution": "DNS",
        },
        True,
    ),
    Case(
        "discovery type DNS, multi hosts set with IP address and https port",
        {
            "hosts": ["httpbin.org", "wikipedia.org"],
            "addresses": ["10.10.10.10"],
            "ports": [*HTTP2, port(443, "https", "https")],
            "resolution": "DNS",
        },
        True,
        warning=True,
    ),
    Case(
        "discovery type DNS, IP address set",
        {
            "hosts": ["*.google.com"],
            "addresses": ["10.10.10.10"],
            "ports": HTTP2,
            "endpoints": LON_IN,
            "resolution": "DNS",
        },
        True,
    ),
    Case(
        "discovery type DNS, IP in endpoints",
        {
            "hosts": ["*.google.com"],
            "ports": HTTP2,
            "endpoints": [endpoint("1.1.1.1", {"http-valid1": 8080}), endpoint("in.google.com", {"http-valid2": 9080})],
            "resolution": "DNS",
        },
        True,
    ),
    Case(
        "empty hosts",
        {
            "ports": [port(80, "http", "http-valid1")],
            "endpoints": [endpoint("in.google.com", {"http-valid2": 9080})],
            "resolution": "DNS",
        },
        False,
    ),
    Case(
        "bad hosts",
        {
            "hosts": ["-"],
            "ports": [port(80, "http", "http-valid1")],
            "endpoints": [endpoint("in.google.com", {"http-valid2": 9080})],
            "resolution": "DNS",
        },
        False,
    ),
    Case(
        "full wildcard host",
        {
            "hosts": ["foo.com", "*"],
            "ports": [port(80, "http", "http-valid1")],
            "endpoints": [endpoint("in.google.com", {"http-valid2": 9080})],
            "resolution": "DNS",
        },
        False,
    ),
    Case(
        "short name host",
        {
            "hosts": ["foo", "bar.com"],
            "ports": [port(80, "http", "http-valid1")],
            "endpoints": [endpoint("in.google.com", {"http-valid1": 9080})],
            "resolution": "DNS",
        },
        True,
    ),
    Case(
        "undefined endpoint port",
        {
            "hosts": ["google.com"],
            "ports": [port(80, "http", "http-valid1"), port(80, "http", "http-valid2")],
            "endpoints": [
                endpoint("lon.google.com", {"http-valid1": 8080}),
                endpoint("in.google.com", {"http-dne": 9080}),
            ],
            "resolution": "DNS",
        },
        False,
    ),
    Case(
        "discovery type DNS, non-FQDN endpoint",
        {
            "hosts": ["*.google.com"],
            "ports": HTTP2,
            "endpoints": [
                endpoint("*.lon.google.com", {"http-valid1": 8080}),
                endpoint("in.google.com", {"http-dne": 9080}),
            ],
            "resolution": "DNS",
        },
        False,
    ),
    Case("discovery type DNS, non-FQDN host", {"hosts": ["*.google.com"], "ports": HTTP2, "resolution": "DNS"}, False),
    Case("discovery type DNS, no endpoints", {"hosts": ["google.com"], "ports": HTTP2, "resolution": "DNS"}, True),
    Case(
        "discovery type DNS, unix endpoint",
        {
            "hosts": ["*.google.com"],
            "ports": [port(80, "http", "http-valid1")],
            "endpoints": [endpoint("unix:///lon/google/com")],
            "resolution": "DNS",
        },
        False,
    ),
    Case("discovery type none", {"hosts": ["google.com"], "ports": HTTP2, "resolution": "NONE"}, True),
    Case(
        "discovery type none, endpoints provided",
        {
            "hosts": ["google.com"],
            "ports": HTTP2,
            "endpoints": [endpoint("lon.google.com", {"http-valid1": 8080})],
            "resolution": "NONE",
        },
        False,
    ),
    Case(
        "discovery type none, cidr addresses",
        {"hosts": ["google.com"], "addresses": ["172.1.2.16/16"], "ports": HTTP2, "resolution": "NONE"},
        True,
    ),
    Case(
        "discovery type static, cidr addresses with endpoints",
        {
            "hosts": ["google.com"],
            "addresses": ["172.1.2.16/16"],
            "ports": HTTP2,
            "endpoints": STATIC_IPS,
            "resolution": "STATIC",
        },
        True,
    ),
    Case(
        "discovery type static",
        {
            "hosts": ["google.com"],
            "addresses": ["172.1.2.16"],
            "ports": HTTP2,
            "endpoints": STATIC_IPS,
            "resolution": "STATIC",
        },
        True,
    ),
    Case(
        "discovery type static, FQDN in endpoints",
        {
            "hosts": ["google.com"],
            "addresses": ["172.1.2.16"],
            "ports": HTTP2,
            "endpoints": [endpoint("google.com", {"http-valid1": 8080}), endpoint("2.2.2.2", {"http-valid2": 9080})],
            "resolution": "STATIC",
        },
        False,
    ),
    Case(
        "discovery type static, missing endpoints",
        {"hosts": ["google.com"], "addresses": ["172.1.2.16"], "ports": HTTP2, "resolution": "STATIC"},
        True,
    ),
    Case(
        "discovery type static, bad endpoint port name",
        {
            "hosts": ["google.com"],
            "addresses": ["172.1.2.16"],
            "ports": HTTP2,
            "endpoints": [endpoint("1.1.1.1", {"http-valid1": 8080}), endpoint("2.2.2.2", {"http-dne": 9080})],
            "resolution": "STATIC",
        },
        False,
    ),
    Case(
        "discovery type none, conflicting port names",
        {
            "hosts": ["google.com"],
            "ports": [port(80, "http", "http-conflict"), port(8080, "http", "http-conflict")],
            "resolution": "NONE",
        },
        False,
    ),
    Case(
        "discovery type none, conflicting port numbers",
        {
            "hosts": ["google.com"],
            "ports": [port(80, "http", "http-conflict1"), port(80, "http", "http-conflict2")],
            "resolution": "NONE",
        },
        False,
    ),
    Case(
        "unix socket",
        {
            "hosts": ["uds.cluster.local"],
            "ports": GRPC1,
            "resolution": "STATIC",
            "endpoints": [endpoint("unix:///path/to/socket")],
        },
        True,
    ),
    Case(
        "unix socket, relative path",
        {
            "hosts": ["uds.cluster.local"],
            "ports": GRPC1,
            "resolution": "STATIC",
            "endpoints": [endpoint("unix://./relative/path.sock")],
        },
        False,
    ),
    Case(
        "unix socket, endpoint ports",
        {
            "hosts": ["uds.cluster.local"],
            "ports": GRPC1,
            "resolution": "STATIC",
            "endpoints": [endpoint("unix:///path/to/socket", {"grpc-service1": 6553})],
        },
        False,
    ),
    Case(
        "unix socket, multiple service ports",
        {
            "hosts": ["uds.cluster.local"],
            "ports": [*GRPC1, port(80, "http", "http-service2")],
            "resolution": "STATIC",
            "endpoints": [endpoint("unix:///path/to/socket")],
        },
        False,
    ),
    Case(
        "empty protocol",
        {
            "hosts": ["google.com"],
            "addresses": ["172.1.2.16/16"],
            "ports": [port(80, "http", "http-valid1"), port(8080, None, "http-valid2")],
            "resolution": "NONE",
        },
        True,
    ),
    Case(
        "selector",
        {
            "hosts": ["google.com"],
            "workloadSelector": {"labels": {"foo": "bar"}},
            "ports": [port(80, "http", "http-valid1")],
        },
        True,
        warning=True,
    ),
    Case(
        "workload selector without labels",
        {"hosts": ["google.com"], "ports": HTTP2, "workloadSelector": {}},
        True,
        warning=True,
    ),
    Case(
        "selector and endpoints",
        {
            "hosts": ["google.com"],
            "workloadSelector": {"labels": {"foo": "bar"}},
            "ports": [port(80, "http", "http-valid1")],
            "endpoints": [endpoint("1.1.1.1")],
        },
        False,
        warning=True,
    ),
    Case(
        "selector and resolution NONE",
        {
            "hosts": ["google.com"],
            "workloadSelector": {"labels": {"foo": "bar"}},
            "ports": [port(80, "http", "http-valid1")],
            "resolution": "NONE",
        },
        True,
        warning=True,
    ),
    Case(
        "selector and resolution DNS",
        {
            "hosts": ["google.com"],
            "workloadSelector": {"labels": {"foo": "bar"}},
            "ports": [port(80, "http", "http-valid1")],
            "resolution": "DNS",
        },
        True,
        note="Istio <= 1.24 also warned 'workloadSelector should not be set when resolution mode is DNS'",
    ),
    Case(
        "bad selector key",
        {
            "hosts": ["google.com"],
            "workloadSelector": {"labels": {"": "bar"}},
            "ports": [port(80, "http", "http-valid1")],
        },
        False,
    ),
    Case(
        "repeat target port",
        {
            "hosts": ["google.com"],
            "resolution": "DNS",
            "ports": [port(80, "http", "http-valid1", 80), port(81, "http", "http-valid2", 80)],
        },
        True,
    ),
    Case(
        "valid target port",
        {"hosts": ["google.com"], "resolution": "DNS", "ports": [port(80, "http", "http-valid1", 81)]},
        True,
    ),
    Case(
        "invalid target port",
        {"hosts": ["google.com"], "resolution": "DNS", "ports": [port(80, "http", "http-valid1", 65536)]},
        False,
    ),
    Case(
        "warn target port",
        {
            "hosts": ["google.com"],
            "workloadSelector": {"labels": {"key": "bar"}},
            "ports": [port(80, "http", "http-valid1", 1234)],
        },
        True,
        warning=True,
        note="At HEAD the warning is 'workloadSelector should not be set when resolution mode is NONE'; "
        "Istio <= 1.24 also warned 'targetPort has no effect when resolution mode is NONE' unless "
        "PILOT_PASSTHROUGH_TARGET_PORT (feature flag) was on.",
    ),
    Case(
        "valid endpoint port",
        {
            "hosts": ["google.com"],
            "ports": [port(80, "http", "http-valid1", 81)],
            "resolution": "STATIC",
            "endpoints": [endpoint("1.1.1.1", {"http-valid1": 8081})],
        },
        True,
    ),
    Case(
        "invalid endpoint port",
        {
            "hosts": ["google.com"],
            "ports": [port(80, "http", "http-valid1", 81)],
            "resolution": "STATIC",
            "endpoints": [endpoint("1.1.1.1", {"http-valid1": 65536})],
        },
        False,
    ),
    Case(
        "protocol unset for addresses empty",
        {
            "hosts": ["google.com"],
            "addresses": [],
            "ports": [port(80, "http", "http-valid1"), port(8080, None, "http-valid2")],
            "resolution": "NONE",
        },
        True,
        warning=True,
        note="Depends on IP auto-allocation (PILOT_ENABLE_IP_AUTOALLOCATE) being off, as in Istio's test.",
    ),
    Case(
        "protocol is TCP for addresses empty",
        {
            "hosts": ["google.com"],
            "addresses": [],
            "ports": [port(80, "http", "http-valid1"), port(81, "TCP", "tcp-valid1")],
            "resolution": "NONE",
        },
        True,
        warning=True,
        note="Depends on IP auto-allocation (PILOT_ENABLE_IP_AUTOALLOCATE) being off, as in Istio's test.",
    ),
    Case(
        "dns round robin with more than one endpoint",
        {
            "hosts": ["google.com"],
            "addresses": [],
            "ports": [port(8081, "http", "http-valid1")],
            "endpoints": [
                endpoint("api-v1.istio.io", {"http-valid1": 8081}),
                endpoint("1.1.1.2", {"http-valid1": 8081}),
            ],
            "resolution": "DNS_ROUND_ROBIN",
        },
        False,
    ),
    Case(
        "dns round robin with 0 endpoints",
        {
            "hosts": ["google.com"],
            "addresses": [],
            "ports": [port(8081, "http", "http-valid1")],
            "endpoints": [],
            "resolution": "DNS_ROUND_ROBIN",
        },
        True,
    ),
    Case(
        "partial wildcard hosts",
        {
            "hosts": ["*.nytimes.com", "*washingtonpost.com"],
            "addresses": [],
            "ports": [port(443, "HTTPS", "https-nytimes")],
            "endpoints": [],
            "resolution": "NONE",
        },
        True,
        warning=True,
    ),
    Case(
        "network set with no address on endpoint",
        {
            "hosts": ["www.example.com"],
            "addresses": [],
            "ports": [port(443, "HTTPS", "https-example")],
            "endpoints": [{"network": "cluster-1"}],
            "resolution": "STATIC",
        },
        True,
        warning=True,
    ),
]


def test_every_upstream_case_is_transcribed_once() -> None:
    names = [case.name for case in CASES]
    assert len(names) == len(set(names)) == 49


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_agrees_with_istio(case: Case) -> None:
    obj = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "foo", "namespace": "bar"},
        "spec": case.spec,
    }
    result = validate_service_entry(obj, ip_autoallocate=False)
    rendered = [error.render() for error in result.errors]
    assert (not result.errors) == case.valid, rendered
    assert bool(result.warnings) == case.warning, result.warnings


@pytest.mark.parametrize(
    "case",
    [case for case in CASES if "PILOT_ENABLE_IP_AUTOALLOCATE" in case.note],
    ids=lambda case: case.name,
)
def test_autoallocation_flag_never_applies_to_resolution_none(case: Case) -> None:
    """Istio never auto-allocates for resolution NONE, so these stay warnings even with the flag on."""
    obj = {"metadata": {"name": "foo", "namespace": "bar"}, "spec": case.spec}
    assert validate_service_entry(obj, ip_autoallocate=True).warnings
    as_dns = {**case.spec, "resolution": "DNS"}
    assert not validate_service_entry({"metadata": {"namespace": "bar"}, "spec": as_dns}, ip_autoallocate=True).warnings


def admit_with_webhook_defaults(spec: dict[str, Any]) -> AdmissionResponse:
    """The webhook's answer with every setting at its default (as ``webhook serve`` starts without flags)."""
    obj = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "foo", "namespace": "bar"},
        "spec": spec,
    }
    attributes = Attributes(
        operation="CREATE",
        group="networking.istio.io",
        resource="serviceentries",
        kind="ServiceEntry",
        name="foo",
        namespace="bar",
        obj=obj,
        old=None,
        username="kubernetes-admin",
    )
    return registry.admit(attributes, Context(index=ObjectIndex(), local_trust_domain="cluster-a.local"))


SILENT = [case for case in CASES if case.valid and not case.warning]


@pytest.mark.parametrize("case", SILENT, ids=[case.name for case in SILENT])
def test_what_istio_accepts_silently_is_accepted_silently_with_default_settings(case: Case) -> None:
    """Issue 12: a default Istio 1.31 allocates IPs, and so do our defaults: no extra warning."""
    obj = {"metadata": {"name": "foo", "namespace": "bar"}, "spec": case.spec}
    assert validate_service_entry(obj) == ValidationResult()
    assert admit_with_webhook_defaults(case.spec) == AdmissionResponse(allowed=True)


TCP_WITHOUT_ADDRESSES = {
    "hosts": ["db.example.com"],
    "ports": [port(5432, "TCP", "tcp-db"), port(6379, None, "redis")],
    "resolution": "DNS",
}


def test_tcp_ports_without_addresses_warn_only_when_autoallocation_is_off() -> None:
    """Istio 1.31 allocates a VIP for this DNS entry by default, so it says nothing; with the flag off it warns."""
    assert admit_with_webhook_defaults(TCP_WITHOUT_ADDRESSES) == AdmissionResponse(allowed=True)
    obj = {"metadata": {"name": "foo", "namespace": "bar"}, "spec": TCP_WITHOUT_ADDRESSES}
    warning = "addresses are required for ports serving TCP (or unset) protocol when IP Autoallocation is not enabled"
    assert validate_service_entry(obj, ip_autoallocate=False).warnings == (warning, warning)  # one per port
