"""The public services of the private document (``publicServices``): one entry and its ports, read or skipped.

Each service and each of its ports is checked on its own; what cannot be imported becomes a
:class:`federation.documents.skips.SkippedService` or :class:`federation.documents.skips.SkippedPort`
and the rest is imported.  An unnamed port gets a derived name (``tcp-80``), a UDP port and a
service without ports are skipped, and a port name must pass both Istio's and Kubernetes' rules
(:func:`port_name_problem`); the package documentation (:mod:`federation.documents`) says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from federation import dns, protocols
from federation.documents.reading import port_number, reported_value, required_string, skip_subject
from federation.documents.skips import (
    SKIP_DUPLICATE_PORT_NAME,
    SKIP_INVALID_HOSTNAME,
    SKIP_INVALID_PORT_NAME,
    SKIP_INVALID_PORT_NUMBER,
    SKIP_INVALID_PORTS,
    SKIP_NO_IMPORTABLE_PORT,
    SKIP_NO_PORTS,
    SKIP_NOT_AN_OBJECT,
    SKIP_TOO_MANY_PORTS,
    SKIP_UNSUPPORTED_PROTOCOL,
    SkippedPort,
    SkippedService,
    skip_message,
)
from federation.fields import FieldError, Path, invalid, json_type, required
from federation.istio import values as istio_values

# Istio's ServiceEntry CRD: spec.ports has maxItems 256.  Beyond it nothing we write would be valid.
MAX_PORTS_PER_SERVICE = 256

# Kubernetes' IsValidPortName (IANA_SVC_NAME, RFC 6335): what a Service port name may be.
MAX_SERVICE_PORT_NAME = 15
_SERVICE_PORT_NAME: Final = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_LETTER: Final = re.compile(r"[a-z]")
PORT_NAME_RULE: Final = (
    "must be a Service port name (IANA_SVC_NAME): 1 to 15 lowercase letters and digits, a letter among them, "
    "and single '-' between them"
)


@dataclass(frozen=True, order=True)
class ServicePort:
    name: str
    port: int
    protocol: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "port": self.port, "protocol": self.protocol}


@dataclass(frozen=True, order=True)
class PublicService:
    hostname: str
    ports: tuple[ServicePort, ...]

    def to_json(self) -> dict[str, Any]:
        return {"hostname": self.hostname, "ports": [port.to_json() for port in self.ports]}


def port_name_problem(name: str) -> str | None:
    """Why ``name`` may not be the name of an imported port, or None.

    Both rules hold: the webhook's (Istio's ``IsDNS1123Label`` for a ServiceEntry port name) and
    Kubernetes' ``IANA_SVC_NAME`` for a Service port name, where a remote's port names come from.
    The second is the stricter one (15 characters, lowercase, a letter), but the first is checked
    too, so the reconciler never writes what its own webhook would refuse.
    """
    if not istio_values.is_dns1123_label(name):
        return "not a DNS-1123 label (Istio's rule for a ServiceEntry port name)"
    return service_port_name_problem(name)


def service_port_name_problem(name: str) -> str | None:
    """Kubernetes' ``IsValidPortName`` (IANA_SVC_NAME), or None when ``name`` passes."""
    if len(name) > MAX_SERVICE_PORT_NAME:
        return f"longer than {MAX_SERVICE_PORT_NAME} characters"
    if not _SERVICE_PORT_NAME.fullmatch(name):
        return "only lowercase letters, digits and single '-' between them"
    if not _LETTER.search(name):
        return "has no letter"
    return None


@dataclass(frozen=True)
class _Port:
    port: ServicePort
    derived_name: bool


def _port(item: Any, path: Path, hostname: str) -> _Port | SkippedPort:
    if isinstance(item, dict):
        # The usual case first, without building field paths: a named port with a valid number.
        number, name, protocol = item.get("port"), item.get("name"), item.get("protocol")
        if (
            type(number) is int
            and 1 <= number <= 65535
            and isinstance(name, str)
            and port_name_problem(name) is None
            and (protocol in (None, "") or (isinstance(protocol, str) and protocol.upper() in protocols.PROTOCOLS))
        ):
            derived = protocol.upper() if protocol else protocols.protocol_for_port_name(name)
            return _Port(ServicePort(name, number, derived), derived_name=False)
    return _checked_port(item, path, hostname)


def _checked_port(item: Any, path: Path, hostname: str) -> _Port | SkippedPort:
    """A port checked field by field, with every problem named (or the name derived)."""
    if not isinstance(item, dict):
        error = invalid(path, json_type(item), "must be an object with name and port")
        return SkippedPort(hostname, "", str(path), SKIP_NOT_AN_OBJECT, skip_message([error]))
    errors: list[FieldError] = []
    reasons: list[str] = []
    number = port_number(item.get("port"), path.child("port"), errors)
    if errors:
        reasons.append(SKIP_INVALID_PORT_NUMBER)
    protocol = item.get("protocol")
    if protocol is not None and protocol != "":
        upper = protocol.upper() if isinstance(protocol, str) else ""
        if upper not in protocols.PROTOCOLS:
            detail = (
                "UDP cannot cross the ingress gateway, which forwards TCP only"
                if upper == "UDP"
                else "must be TCP, HTTP, HTTP2 or TLS"
            )
            errors.append(invalid(path.child("protocol"), reported_value(protocol), detail))
            reasons.append(SKIP_UNSUPPORTED_PROTOCOL)
        protocol = upper
    name = item.get("name")
    derived = name is None or name == ""
    if derived:
        name = f"{(protocol or 'TCP').lower()}-{number}"
    elif not isinstance(name, str) or port_name_problem(name) is not None:
        errors.append(invalid(path.child("name"), reported_value(name), PORT_NAME_RULE))
        reasons.append(SKIP_INVALID_PORT_NAME)
    if errors:
        raw_number = item.get("port")
        shown = skip_subject(raw_number) if raw_number is not None else skip_subject(name)
        return SkippedPort(hostname, shown, str(path), reasons[0], skip_message(errors))
    assert isinstance(name, str)
    protocol = protocol or protocols.protocol_for_port_name(name)
    return _Port(ServicePort(name, number, str(protocol)), derived)


def read_service(item: Any, path: Path) -> tuple[PublicService | None, list[SkippedService], list[SkippedPort]]:
    """One entry of ``publicServices``: the service (None when skipped), and what was skipped of it."""
    if not isinstance(item, dict):
        error = invalid(path, json_type(item), "must be an object with hostname and ports")
        return None, [SkippedService("", str(path), SKIP_NOT_AN_OBJECT, skip_message([error]))], []
    errors: list[FieldError] = []
    hostname = required_string(item, "hostname", path, errors)
    if hostname and not dns.is_dns_name(hostname):
        errors.append(invalid(path.child("hostname"), reported_value(hostname), "must be a valid DNS name"))
    if errors:
        raw = item.get("hostname")
        subject = skip_subject(raw) if raw is not None else ""
        return None, [SkippedService(subject, str(path), SKIP_INVALID_HOSTNAME, skip_message(errors))], []
    hostname = hostname.lower().rstrip(".")
    ports_path = path.child("ports")
    raw_ports = item.get("ports")

    def skip(reason: str, error: FieldError) -> tuple[None, list[SkippedService], list[SkippedPort]]:
        return None, [SkippedService(hostname, str(path), reason, skip_message([error]))], []

    if raw_ports is None or raw_ports == []:
        # Deckhouse's exporter sends an ExternalName Service (or one without spec.ports) like this;
        # a ServiceEntry without ports sends traffic to DNS auto-allocated fake IPs (Deckhouse #12133).
        return skip(SKIP_NO_PORTS, required(ports_path, "the remote publishes no ports for this service"))
    if not isinstance(raw_ports, list):
        return skip(SKIP_INVALID_PORTS, invalid(ports_path, json_type(raw_ports), "must be a list"))
    if len(raw_ports) > MAX_PORTS_PER_SERVICE:
        detail = f"has {len(raw_ports)} ports; a ServiceEntry holds at most {MAX_PORTS_PER_SERVICE}"
        return skip(SKIP_TOO_MANY_PORTS, invalid(ports_path, "array", detail))
    parsed: list[tuple[Path, _Port]] = []
    skipped_ports: list[SkippedPort] = []
    for position, port_item in enumerate(raw_ports):
        port_path = ports_path.index(position)
        outcome = _port(port_item, port_path, hostname)
        if isinstance(outcome, SkippedPort):
            skipped_ports.append(outcome)
        else:
            parsed.append((port_path, outcome))
    explicit = {entry.port.name for _, entry in parsed if not entry.derived_name}
    ports: list[ServicePort] = []
    for port_path, entry in parsed:
        if entry.derived_name and entry.port.name in explicit:
            error = invalid(
                port_path.child("name"),
                "",
                f"the port has no name, and the name it would get, {entry.port.name}, is another port's",
            )
            skipped_ports.append(
                SkippedPort(
                    hostname, str(entry.port.port), str(port_path), SKIP_DUPLICATE_PORT_NAME, skip_message([error])
                )
            )
            continue
        ports.append(entry.port)
    if not ports:
        error = invalid(ports_path, "array", f"none of its {len(raw_ports)} ports can be imported")
        return (
            None,
            [SkippedService(hostname, str(path), SKIP_NO_IMPORTABLE_PORT, skip_message([error]))],
            skipped_ports,
        )
    return PublicService(hostname, tuple(sorted(ports, key=lambda p: p.port))), [], skipped_ports
