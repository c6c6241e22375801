"""Istio's ServiceEntry rules that depend on ``spec.resolution``, and the multi-host rule.

Read beside istio/istio ``pkg/config/validation/validation.go`` ``ValidateServiceEntry``: the
``switch serviceEntry.Resolution`` (rules 20-36 of the reference table; DYNAMIC_DNS is new in
Istio 1.28) and the check that follows it for several hosts (rule 37).  Each function takes values
already read from the object and returns what it found.
"""

from __future__ import annotations

from typing import Final

from federation import fields, warnings
from federation.fields import FieldError, Path, ValidationResult
from federation.istio import endpoints, gostrings, values
from federation.istio.endpoints import EndpointEntry
from federation.istio.ports import PortEntry

WAYPOINT_LABEL: Final = "istio.io/use-waypoint"
_NO_WAYPOINT: Final = "none"
_DYNAMIC_DNS_PROTOCOLS: Final = frozenset({"HTTP", "TLS", "GRPC", "HTTP2"})
_MULTI_HOST_TCP_ADDRESS: Final = (
    "service entry can not have more than one host specified simultaneously with address and tcp port"
)
_SPEC: Final = Path.of("spec")


def validate_resolution(
    resolution: str | None,
    *,
    hosts: list[tuple[Path, str]],
    has_addresses: bool,
    ports: list[PortEntry],
    endpoint_entries: list[EndpointEntry] | None,
    service_ports: set[str],
    has_selector: bool,
    location: str,
    labels: dict[str, str],
) -> ValidationResult:
    """Rules 20-36; ``resolution`` None means it had the wrong type (already reported)."""
    if resolution == "NONE":
        errors: list[FieldError] = []
        found: list[str] = []
        if endpoint_entries is not None:
            text = "no endpoints should be provided for resolution type none"
            errors.append(fields.forbidden(_SPEC.child("endpoints"), text))
        if has_selector:
            text = "workloadSelector should not be set when resolution mode is NONE"
            found.append(warnings.with_path(_SPEC.child("workloadSelector"), text))
        return ValidationResult.of(errors, found)
    if resolution == "STATIC":
        return _each_endpoint(endpoint_entries or [], service_ports, dns=False)
    if resolution in ("DNS", "DNS_ROUND_ROBIN"):
        return _dns(
            resolution,
            hosts=hosts,
            has_addresses=has_addresses,
            ports=ports,
            endpoint_entries=endpoint_entries,
            service_ports=service_ports,
        )
    if resolution == "DYNAMIC_DNS":
        return _dynamic_dns(
            hosts, has_addresses, ports, has_endpoints=endpoint_entries is not None, location=location, labels=labels
        )
    if resolution is not None:
        text = f"unsupported resolution type {gostrings.shown_bare(resolution)}"
        return ValidationResult.of([fields.invalid(_SPEC.child("resolution"), resolution, text)])
    return ValidationResult()


def _dns(
    resolution: str,
    *,
    hosts: list[tuple[Path, str]],
    has_addresses: bool,
    ports: list[PortEntry],
    endpoint_entries: list[EndpointEntry] | None,
    service_ports: set[str],
) -> ValidationResult:
    """Rules 31-34."""
    errors: list[FieldError] = []
    found: list[str] = []
    if endpoint_entries is None:
        for path, host in hosts:
            problem = values.fqdn_problem(host)
            if problem:
                text = (
                    "hosts must be FQDN or contain only prefix wildcards if no endpoints are provided "
                    f"for resolution mode {resolution}, {problem}"
                )
                errors.append(fields.invalid(path, host, text))
                break  # Istio reports this once, for the first host that fails
    if resolution == "DNS_ROUND_ROBIN" and endpoint_entries is not None and len(endpoint_entries) > 1:
        text = f"there must only be 0 or 1 endpoint for resolution mode {resolution}"
        errors.append(fields.forbidden(_SPEC.child("endpoints"), text))
    errors.extend(_each_endpoint(endpoint_entries or [], service_ports, dns=True).errors)
    if has_addresses:
        for path, port in ports:
            if port is None:
                errors.append(fields.required(path, "ports cannot be nil"))  # Istio repeats rule 12 here
                continue
            if port.protocol is not None and values.parse_protocol(port.protocol) in values.TCP_PROTOCOLS:
                if len(hosts) > 1:
                    found.append(warnings.with_path(_SPEC.child("hosts"), _MULTI_HOST_TCP_ADDRESS))
                break
    return ValidationResult.of(errors, found)


def _each_endpoint(entries: list[EndpointEntry], service_ports: set[str], *, dns: bool) -> ValidationResult:
    """Each endpoint's rules (23-30 for STATIC, 33 for DNS), until :data:`fields.ERROR_BUDGET` errors.

    An endpoint has up to 256 labels and 128 ports, so 4,096 hostile endpoints could produce hundreds of
    thousands of errors; past the budget the other endpoints are not checked, and the last error says so.
    """
    errors: list[FieldError] = []
    found: list[str] = []
    for checked, (path, endpoint) in enumerate(entries, start=1):
        if endpoint is None:
            errors.append(fields.required(path, "endpoint cannot be nil"))
        else:
            check = endpoints.validate_dns_endpoint if dns else endpoints.validate_static_endpoint
            result = check(endpoint, service_ports)
            errors.extend(result.errors)
            found.extend(result.warnings)
        if len(errors) >= fields.ERROR_BUDGET and checked < len(entries):
            errors.append(fields.stopped(_SPEC.child("endpoints"), len(entries), checked, len(errors)))
            break
    return ValidationResult.of(errors, found)


def _dynamic_dns(
    hosts: list[tuple[Path, str]],
    has_addresses: bool,
    ports: list[PortEntry],
    *,
    has_endpoints: bool,
    location: str,
    labels: dict[str, str],
) -> ValidationResult:
    """Rule 35 (new in Istio 1.28), with Istio's texts whole, quirks included.

    The two "cannot be set" texts are Istio's two-sentence messages, whose Go string concatenation
    lacks a space ("generatedfrom", "hostsfield"); a null port draws Istio's own "port cannot be nil"
    here, after the port loop's "service entry port may not be null" (rule 12).
    """
    mode = "DYNAMIC_DNS"
    errors: list[FieldError] = []
    if not hosts:
        text = f"at least one wildcard host must be provided for resolution type {mode}"
        errors.append(fields.required(_SPEC.child("hosts"), text))
    for path, host in hosts:
        if not host.startswith("*"):
            errors.append(fields.invalid(path, host, f"host must be wildcarded for resolution mode {mode}"))
    if has_addresses:
        text = (
            f"addresses cannot be set for resolution type {mode}. HTTP route domains will only be generated"
            "from the hosts field values"
        )
        errors.append(fields.forbidden(_SPEC.child("addresses"), text))
    if has_endpoints:
        text = (
            f"endpoints cannot be set for resolution type {mode}. Destination IP address determined from hosts"
            "field values"
        )
        errors.append(fields.forbidden(_SPEC.child("endpoints"), text))
    text = f"only HTTP, TLS, GRPC, and HTTP2 protocols are supported for resolution type {mode}"
    for path, port in ports:
        if port is None:
            errors.append(fields.required(path, "port cannot be nil"))
        elif port.protocol is not None and values.parse_protocol(port.protocol) not in _DYNAMIC_DNS_PROTOCOLS:
            errors.append(fields.invalid(path.child("protocol"), port.protocol, text))
    if location == "MESH_INTERNAL" and uses_waypoint(labels):
        text = f"location MESH_INTERNAL with resolution type {mode} is not supported when using waypoints"
        errors.append(fields.forbidden(_SPEC.child("location"), text))
    return ValidationResult.of(errors)


def uses_waypoint(labels: dict[str, str]) -> bool:
    """Istio's ``usesWaypoint`` (>= 1.30): the label names a waypoint; empty or ``none`` (any case) does not."""
    value = labels.get(WAYPOINT_LABEL, "")
    return value != "" and value.lower() != _NO_WAYPOINT


def validate_multi_host(ports: list[PortEntry]) -> ValidationResult:
    """Rule 37: without an HTTP Host header or a TLS SNI, one port cannot tell several hosts apart."""
    errors: list[FieldError] = []
    for path, port in ports:
        if port is None:
            errors.append(fields.required(path, "ports cannot be nil"))  # Istio repeats rule 12 here
            continue
        if port.protocol is None:
            continue  # the wrong type, already reported
        canonical = values.parse_protocol(port.protocol)  # an empty protocol (sniffing) counts as non-HTTP
        if canonical not in values.HTTP_PROTOCOLS and canonical not in values.TLS_PROTOCOLS:
            errors.append(fields.forbidden(path, "multiple hosts provided with non-HTTP, non-TLS ports"))
            break
    return ValidationResult.of(errors)
