"""ServiceEntry endpoints: reading ``spec.endpoints`` and Istio's rules for them.

Read beside istio/istio ``pkg/config/validation/validation.go``: ``validateWorkloadEntry`` (rules
23-30 of the reference table; a STATIC ServiceEntry calls it with FQDN addresses disallowed) and
the endpoint loop of ``ValidateServiceEntry``'s DNS branch (rule 33); the CRD limits are istio/api
``networking/v1alpha3/workload_entry.proto``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from federation import fields, warnings
from federation.fields import FieldError, Path, ValidationResult
from federation.istio import gostrings, netip, values
from federation.istio.jsonreader import JsonReader

_MAX_ENDPOINTS: Final = 4096
_MAX_ENDPOINT_ADDRESS_LEN: Final = 256
_MAX_ENDPOINT_PORTS: Final = 128
MAX_LABELS: Final = 256
_MAX_NETWORK_LEN: Final = 2048
_MAX_SERVICE_ACCOUNT_LEN: Final = 253
_MAX_UINT32: Final = 2**32 - 1
_UNIX_PREFIX: Final = "unix://"


@dataclass(frozen=True)
class Endpoint:
    path: Path
    address: str | None  # None: present with the wrong type (already reported)
    network: str
    ports: list[tuple[str, int]]
    labels: list[tuple[str, str]]
    has_ports: bool


# A list entry with its path; None stands for a JSON null, which Istio reports with its own texts.
EndpointEntry = tuple[Path, Endpoint | None]


def read_endpoints(reader: JsonReader, spec: dict[str, Any]) -> list[EndpointEntry] | None:
    """The endpoints, or None when Go would see a nil list (absent, null, ``[]`` or the wrong type)."""
    pairs = reader.items(Path.of("spec", "endpoints"), spec.get("endpoints"), _MAX_ENDPOINTS, "endpoints")
    if not pairs:
        return None
    entries: list[EndpointEntry] = []
    for path, item in pairs:
        if item is None:
            entries.append((path, None))
        elif not isinstance(item, dict):
            reader.wrong_type(path, item, "must be an object")
        else:
            entries.append((path, _read_endpoint(reader, path, item)))
    return entries


def _read_endpoint(reader: JsonReader, path: Path, item: dict[str, Any]) -> Endpoint:
    address = reader.string(path.child("address"), item.get("address"), max_len=_MAX_ENDPOINT_ADDRESS_LEN)
    network = reader.string(path.child("network"), item.get("network"), max_len=_MAX_NETWORK_LEN) or ""
    reader.string(path.child("locality"), item.get("locality"), max_len=_MAX_NETWORK_LEN)
    reader.string(path.child("serviceAccount"), item.get("serviceAccount"), max_len=_MAX_SERVICE_ACCOUNT_LEN)
    weight = reader.integer(path.child("weight"), item.get("weight"))
    if weight is not None and not 0 <= weight <= _MAX_UINT32:  # uint32 in the CRD schema
        reader.error(fields.invalid(path.child("weight"), weight, f"must be between 0 and {_MAX_UINT32}"))
    ports: list[tuple[str, int]] = []
    raw_ports = item.get("ports")
    ports_path = path.child("ports")
    for name, value in reader.mapping(ports_path, raw_ports, _MAX_ENDPOINT_PORTS, "port numbers"):
        if isinstance(value, int) and not isinstance(value, bool):
            ports.append((name, value))
        else:  # null, or another type: the path is built for the error only
            reader.wrong_type(ports_path.key(name), value, "must be an integer")
    labels = reader.string_map(path.child("labels"), item.get("labels"), MAX_LABELS)
    has_ports = isinstance(raw_ports, dict) and bool(raw_ports)
    return Endpoint(path, address, network, ports, labels, has_ports)


def _port_errors(endpoint: Endpoint, service_ports: set[str]) -> list[FieldError]:
    errors: list[FieldError] = []
    for name, number in endpoint.ports:
        path = endpoint.path.child("ports").key(name)
        if name not in service_ports:  # Istio prints the number here, not the name
            text = f"endpoint port {values.shown_int(number)} is not defined by the service entry"
            errors.append(fields.invalid(path, number, text))
        if not values.is_dns1123_label(name):
            errors.append(fields.invalid(path, name, f"invalid port name: {gostrings.shown_bare(name)}"))
        problem = values.port_problem(number)
        if problem:
            errors.append(fields.invalid(path, number, problem))
    return errors


def _label_errors(endpoint: Endpoint) -> list[FieldError]:
    errors: list[FieldError] = []
    labels_path = endpoint.path.child("labels")
    for key, value in endpoint.labels:
        key_problem = values.tag_key_problem(key)
        value_problem = values.tag_value_problem(value)
        if key_problem or value_problem:  # the path is built only for an error
            path = labels_path.key(key)
            if key_problem:
                errors.append(fields.invalid(path, key, key_problem))
            if value_problem:
                errors.append(fields.invalid(path, value, value_problem))
    return errors


def validate_static_endpoint(endpoint: Endpoint, service_ports: set[str]) -> ValidationResult:
    """Rules 23-30: Istio's ``validateWorkloadEntry`` with FQDN addresses disallowed."""
    path = endpoint.path.child("address")
    address = endpoint.address
    errors: list[FieldError] = []
    found: list[str] = []
    if address == "":
        if not endpoint.network:
            return ValidationResult.of([fields.required(path, "address is required")])  # Istio checks nothing else
        text = warnings.fit_quoted("address is unset with network ", endpoint.network, "")
        found.append(warnings.with_path(path, text))
    unix = address is not None and address.startswith(_UNIX_PREFIX)
    if address is not None and unix:
        problem = values.unix_address_problem(address.removeprefix(_UNIX_PREFIX))
        if problem:
            errors.append(fields.invalid(path, address, problem))
        if endpoint.has_ports:
            text = f"unix endpoint {gostrings.shown_bare(address)} must not include ports"
            errors.append(fields.forbidden(endpoint.path.child("ports"), text))
    elif address and not netip.parses_as_addr(address):
        text = f"endpoint address {gostrings.shown(address)} is not a valid IP address"
        errors.append(fields.invalid(path, address, text))
    errors.extend(_port_errors(endpoint, service_ports))
    errors.extend(_label_errors(endpoint))
    if unix and len(service_ports) != 1:  # a set of names: two ports with one name count once
        errors.append(fields.forbidden(path, "exactly 1 service port required for unix endpoints"))
    return ValidationResult.of(errors, found)


def validate_dns_endpoint(endpoint: Endpoint, service_ports: set[str]) -> ValidationResult:
    """Rule 33, in the DNS branch's own order: address, labels, then ports."""
    errors: list[FieldError] = []
    address = endpoint.address
    if address is not None and not netip.parses_as_addr(address) and values.fqdn_problem(address):
        text = f"endpoint address {gostrings.shown(address)} is not a valid FQDN or an IP address"
        errors.append(fields.invalid(endpoint.path.child("address"), address, text))
    errors.extend(_label_errors(endpoint))
    errors.extend(_port_errors(endpoint, service_ports))
    return ValidationResult.of(errors)
