"""ServiceEntry ports: reading ``spec.ports`` and Istio's port rules (rules 12-19 of the reference table).

Read beside istio/istio ``pkg/config/validation/validation.go`` ``ValidateServiceEntry``, the loop
over ``serviceEntry.Ports`` (with ``ValidatePort`` and ``ValidatePortName``), and the CRD limits of
istio/api ``networking/v1alpha3/service_entry.proto`` (``ServicePort``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from federation import fields, warnings
from federation.fields import FieldError, Path, ValidationResult
from federation.istio import gostrings, values
from federation.istio.jsonreader import JsonReader

MAX_PORTS: Final = 256
_MAX_PORT_STRING_LEN: Final = 256

TCP_NEEDS_ADDRESS: Final = (
    "addresses are required for ports serving TCP (or unset) protocol when IP Autoallocation is not enabled"
)


@dataclass(frozen=True)
class Port:
    path: Path
    number: int | None  # None: present with the wrong type (already reported)
    name: str | None
    protocol: str | None
    target_port: int | None


# A list entry with its path; None stands for a JSON null, which Istio reports with its own texts.
PortEntry = tuple[Path, Port | None]


def read_ports(reader: JsonReader, spec: dict[str, Any]) -> list[PortEntry]:
    """The ports as Go decodes them; values of the wrong type are reported to ``reader``."""
    entries: list[PortEntry] = []
    for path, item in reader.items(Path.of("spec", "ports"), spec.get("ports"), MAX_PORTS, "ports") or []:
        if item is None:
            entries.append((path, None))
        elif not isinstance(item, dict):
            reader.wrong_type(path, item, "must be an object")
        else:
            number = reader.integer(path.child("number"), item.get("number"))
            target = reader.integer(path.child("targetPort"), item.get("targetPort"))
            name = reader.string(path.child("name"), item.get("name"), max_len=_MAX_PORT_STRING_LEN)
            protocol = reader.string(path.child("protocol"), item.get("protocol"), max_len=_MAX_PORT_STRING_LEN)
            entries.append((path, Port(path, number, name, protocol, target)))
    return entries


def service_port_names(ports: list[PortEntry]) -> set[str]:
    """Istio's ``servicePorts``: the set of port names (two ports with one name count once)."""
    return {port.name for _, port in ports if port is not None and port.name is not None}


def validate_ports(ports: list[PortEntry], *, warn_tcp: bool) -> ValidationResult:
    """Rules 12-19, in Istio's order for each port."""
    errors: list[FieldError] = []
    found: list[str] = []
    names: set[str] = set()
    numbers: set[int] = set()
    for path, port in ports:
        if port is None:
            errors.append(fields.required(path, "service entry port may not be null"))
            continue
        name_path, number_path = path.child("name"), path.child("number")
        if port.name is not None:
            if port.name in names:
                text = f"service entry port name {gostrings.shown(port.name)} already defined"
                errors.append(fields.invalid(name_path, port.name, text))
            names.add(port.name)
        if port.number is not None:
            if port.number in numbers:
                text = f"service entry port {values.shown_int(port.number)} already defined"
                errors.append(fields.invalid(number_path, port.number, text))
            numbers.add(port.number)
        if port.target_port:
            problem = values.port_problem(port.target_port)
            if problem:
                errors.append(fields.invalid(path.child("targetPort"), port.target_port, problem))
        if warn_tcp and port.protocol in ("", "TCP"):  # case-sensitive in Istio: "tcp" does not warn
            found.append(warnings.with_path(path.child("protocol"), TCP_NEEDS_ADDRESS))
        if port.name is not None and not values.is_dns1123_label(port.name):
            text = f"invalid port name: {gostrings.shown_bare(port.name)}"
            errors.append(
                fields.invalid(name_path, port.name, text) if port.name else fields.required(name_path, text)
            )
        if port.protocol and values.parse_protocol(port.protocol) is None:
            text = f"unsupported protocol: {gostrings.shown_bare(port.protocol)}"
            errors.append(fields.invalid(path.child("protocol"), port.protocol, text))
        if port.number is not None:
            problem = values.port_problem(port.number)
            if problem and port.number:
                errors.append(fields.invalid(number_path, port.number, problem))
            elif problem:
                errors.append(fields.required(number_path, problem))
    return ValidationResult.of(errors, found)
