"""The metadata documents clusters exchange, parsed and built in one place.

Wire format (Deckhouse-compatible):

* ``/metadata/public/public.json``: ``{"clusterUUID", "authnKeyPub", "rootCA"}``
* ``/metadata/private/federation.json``:
  ``{"ingressGateways": [{"address", "port"}],
  "publicServices": [{"hostname", "ports": [{"name", "port", "protocol"}]}]}``

Bytes from the network are decoded by :func:`decode_json` within :mod:`federation.boundedjson`'s
limits (size, depth, numbers, strings, members), so no document can crash a parser.

The public document is all or nothing: every problem is reported with its JSON path, and a bad
document never replaces good data.

The private document is refused whole only when its **envelope** is broken: not an object,
``ingressGateways`` or ``publicServices`` missing or not lists, or more entries than a
ServiceEntry can hold.  Otherwise each gateway, each service
and each port is checked on its own; what cannot be imported is skipped with a reason
(:class:`SkippedGateway`, :class:`SkippedService`, :class:`SkippedPort`) and the rest is imported.
Deckhouse's exporter publishes what Deckhouse itself only partly supports, so this matters:

* an unnamed port (``{"name": "", "port": 80}``; Kubernetes allows it on a single-port Service)
  is imported under a derived name, ``<protocol>-<number>`` (``tcp-80``).  A ServiceEntry port
  needs a name, but nothing across the federation depends on it: the remote gateway routes by SNI,
  which holds the port number, not the name.  The derived name follows Istio's
  ``<protocol>[-<suffix>]`` convention, so Istio and Deckhouse's name rule both read TCP from it,
  and TCP carries any traffic (without L7 features).  Should it collide with another port's name,
  the unnamed port is skipped instead;
* a port whose protocol is UDP (or anything but TCP, HTTP, HTTP2 and TLS) is skipped: the
  ingress gateway forwards TLS over TCP only;
* a service without ports (an ExternalName Service: ``ports: []`` or ``null``) is skipped;
* a port name must pass the rule the webhook applies to ServiceEntry port names (Istio's
  ``IsDNS1123Label``, :func:`federation.istio.values.is_dns1123_label`), so nothing the reconciler
  writes from it can be refused, or inject text; and, since a remote's port names come from its
  Services, the rule Kubernetes applies to a Service port name (``IANA_SVC_NAME``: at most 15
  lowercase letters, digits and ``-``, at least one letter, no ``-`` at either end or twice in a
  row, :func:`service_port_name_problem`): anything else (``UPPER``, 30 characters) was not written
  by a Kubernetes exporter;
* a gateway address must be an IP or a DNS name that does not point into this cluster: loopback,
  unspecified, link-local (cloud metadata at 169.254.169.254) and multicast addresses,
  ``localhost`` and single-label names are refused, and so are the caller's ``refused_networks``
  and ``refused_domains``.  When no gateway is left (none published, or every one refused) the
  document still parses, with no ``ingress_gateways``: whether that is usable is the caller's
  policy (the reconciler keeps its last known objects, since nothing could reach them).

Deckhouse's exporter sends no ``protocol``, so a Deckhouse peer's UDP port cannot be told from a
TCP one here: it is imported as TCP (its name decides the protocol), and traffic to it fails at
the remote gateway.

All remote text in messages is cut short and made printable (:mod:`federation.remotetext`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from federation import boundedjson, dns, keys, protocols, remotetext
from federation.fields import FieldError, Path, forbidden, invalid, json_type, required
from federation.istio import values as istio_values

MAX_DOCUMENT_BYTES = boundedjson.DOCUMENT_LIMITS.max_bytes
MAX_CLUSTER_UUID = 253
# Istio's ServiceEntry CRD: spec.ports has maxItems 256 and spec.endpoints maxItems 4096 (every
# imported ServiceEntry gets one endpoint per gateway).  Beyond them nothing we write would be valid.
MAX_PORTS_PER_SERVICE = 256
MAX_GATEWAYS = 4096
MAX_SERVICES = boundedjson.DOCUMENT_LIMITS.max_members
# A DocumentError names at most this many problems, then counts the rest.
MAX_RENDERED_ERRORS = 10

# Why an entry of the private document is skipped: a closed set, fit for status and metric labels.
SKIP_NOT_AN_OBJECT: Final = "NotAnObject"
SKIP_INVALID_HOSTNAME: Final = "InvalidHostname"
SKIP_INVALID_PORTS: Final = "InvalidPorts"
SKIP_NO_PORTS: Final = "NoPorts"
SKIP_TOO_MANY_PORTS: Final = "TooManyPorts"
SKIP_NO_IMPORTABLE_PORT: Final = "NoImportablePort"
SKIP_INVALID_PORT_NUMBER: Final = "InvalidPortNumber"
SKIP_INVALID_PORT_NAME: Final = "InvalidPortName"
SKIP_DUPLICATE_PORT_NAME: Final = "DuplicatePortName"
SKIP_UNSUPPORTED_PROTOCOL: Final = "UnsupportedProtocol"
SKIP_INVALID_ADDRESS: Final = "InvalidAddress"
SKIP_FORBIDDEN_ADDRESS: Final = "ForbiddenAddress"
SKIP_REASONS: Final = (
    SKIP_NOT_AN_OBJECT,
    SKIP_INVALID_HOSTNAME,
    SKIP_INVALID_PORTS,
    SKIP_NO_PORTS,
    SKIP_TOO_MANY_PORTS,
    SKIP_NO_IMPORTABLE_PORT,
    SKIP_INVALID_PORT_NUMBER,
    SKIP_INVALID_PORT_NAME,
    SKIP_DUPLICATE_PORT_NAME,
    SKIP_UNSUPPORTED_PROTOCOL,
    SKIP_INVALID_ADDRESS,
    SKIP_FORBIDDEN_ADDRESS,
)

# Kubernetes' IsValidPortName (IANA_SVC_NAME, RFC 6335): what a Service port name may be.
MAX_SERVICE_PORT_NAME = 15
_SERVICE_PORT_NAME: Final = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_LETTER: Final = re.compile(r"[a-z]")
PORT_NAME_RULE: Final = (
    "must be a Service port name (IANA_SVC_NAME): 1 to 15 lowercase letters and digits, a letter among them, "
    "and single '-' between them"
)

_SKIP_MESSAGE_LIMIT: Final = 400
_THIS_NETWORK: Final = ipaddress.ip_network("0.0.0.0/8")
_SUBJECT_LIMIT: Final = 128

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class DocumentError(ValueError):
    """A document that must not be used; ``errors`` says every reason, with its JSON path.

    The message names the first :data:`MAX_RENDERED_ERRORS` problems and counts the rest, and is
    printable whatever the remote wrote.
    """

    def __init__(self, what: str, errors: list[FieldError]) -> None:
        self.what = what
        self.errors = errors
        shown = "; ".join(error.render() for error in errors[:MAX_RENDERED_ERRORS])
        more = len(errors) - MAX_RENDERED_ERRORS
        if more > 0:
            shown += f"; and {more} more"
        super().__init__(remotetext.printable(f"invalid {what}: {shown}", limit=8 * remotetext.MESSAGE_LIMIT))


@dataclass(frozen=True)
class PublicMetadata:
    cluster_uuid: str
    authn_key_pub: str
    root_ca: str

    def to_json(self) -> dict[str, str]:
        return {"clusterUUID": self.cluster_uuid, "authnKeyPub": self.authn_key_pub, "rootCA": self.root_ca}


@dataclass(frozen=True, order=True)
class IngressGateway:
    address: str
    port: int

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "port": self.port}


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


@dataclass(frozen=True)
class SkippedService:
    """A public service of the private document that is not imported, and why.

    ``hostname`` is what the remote wrote (short and printable), empty when it gave none;
    ``path`` (``publicServices[3]``) tells entries apart either way.  ``reason`` is one of
    :data:`SKIP_REASONS`; ``message`` names the field and the problem.
    """

    hostname: str
    path: str
    reason: str
    message: str

    @property
    def subject(self) -> str:
        return self.hostname


@dataclass(frozen=True)
class SkippedPort:
    """A port of an imported (or skipped) service that is left out, and why.

    ``port`` is the port number as the remote wrote it, or its name when the number is unusable.
    """

    hostname: str
    port: str
    path: str
    reason: str
    message: str

    @property
    def subject(self) -> str:
        if not self.port:
            return self.hostname
        return f"{self.hostname} port {self.port}" if self.hostname else f"port {self.port}"


@dataclass(frozen=True)
class SkippedGateway:
    """An ingress gateway the remote published that is not used, and why."""

    address: str
    path: str
    reason: str
    message: str

    @property
    def subject(self) -> str:
        return self.address


Skipped = SkippedService | SkippedPort | SkippedGateway


@dataclass(frozen=True)
class PrivateMetadata:
    """What can be imported from a private document, and what was skipped.

    ``to_json`` holds only what is imported (it is what status caches).  A caller tells "the
    remote publishes no gateway" (``gateways_published == 0``) from "every gateway was refused"
    (no ``ingress_gateways`` but ``skipped_gateways``); either way nothing could reach a service.
    """

    ingress_gateways: tuple[IngressGateway, ...]
    public_services: tuple[PublicService, ...]
    skipped_services: tuple[SkippedService, ...] = ()
    skipped_ports: tuple[SkippedPort, ...] = ()
    skipped_gateways: tuple[SkippedGateway, ...] = ()

    @property
    def gateways_published(self) -> int:
        """How many gateways the remote published, usable or not."""
        return len(self.ingress_gateways) + len(self.skipped_gateways)

    @property
    def skipped(self) -> tuple[Skipped, ...]:
        """Every skip: gateways first, then services and their ports in document order."""
        entries: list[SkippedService | SkippedPort] = [*self.skipped_services, *self.skipped_ports]
        return (*self.skipped_gateways, *sorted(entries, key=lambda entry: _document_position(entry.path)))

    def to_json(self) -> dict[str, Any]:
        return {
            "ingressGateways": [gateway.to_json() for gateway in self.ingress_gateways],
            "publicServices": [service.to_json() for service in self.public_services],
        }


_POSITION = re.compile(r"\[(\d+)\]")


def _document_position(path: str) -> tuple[int, ...]:
    """``publicServices[3].ports[1]`` sorts as (3, 1), after ``publicServices[3]`` (3,)."""
    return tuple(int(number) for number in _POSITION.findall(path))


def decode_json(body: bytes, what: str) -> Any:
    """Decode a response body within the document limits; every problem becomes a DocumentError."""
    if len(body) > MAX_DOCUMENT_BYTES:
        raise DocumentError(what, [invalid(Path(), f"{len(body)} bytes", f"larger than {MAX_DOCUMENT_BYTES} bytes")])
    try:
        return boundedjson.loads(body, boundedjson.DOCUMENT_LIMITS)
    except boundedjson.InvalidJSON as error:
        raise DocumentError(what, [invalid(Path(), "<body>", error.problem)]) from error


def _value(value: Any) -> Any:
    """A remote value fit for a FieldError: long strings cut, containers named by their JSON type."""
    if isinstance(value, str):
        return remotetext.excerpt(value)
    if isinstance(value, list | dict):
        return json_type(value)
    return value


def _shown(value: Any) -> str:
    """A remote value as a short, printable subject of a skip (hostname, address, port)."""
    return remotetext.printable(value if isinstance(value, str) else str(_value(value)), _SUBJECT_LIMIT)


def _string(data: dict[str, Any], key: str, path: Path, errors: list[FieldError]) -> str:
    value = data.get(key)
    if value is None or value == "":
        errors.append(required(path.child(key), "must be a non-empty string"))
        return ""
    if not isinstance(value, str):
        errors.append(invalid(path.child(key), _value(value), "must be a string"))
        return ""
    return value


# How far ahead of our clock a root's notBefore may be and still count as valid now.
NOT_YET_VALID_LEEWAY = timedelta(minutes=5)


def root_ca_problem(pem: str, *, now: datetime | None = None) -> str | None:
    """Why ``pem`` is not a usable CA certificate, or None.

    With ``now``, a certificate that has expired is refused too: Envoy would refuse every chain
    that ends in it, and trusting it in the mesh helps nobody.  A certificate not valid yet is
    accepted beside one that is valid now (a remote may publish its next root before it signs with
    it), but not alone: after the rotation overlap it would be the only root trusted for that
    domain, and every connection to the remote, still signed by today's root, would fail.
    """
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        return "must be a PEM X.509 certificate"
    if now is not None and certificates:
        # Clocks of two clusters differ: a root made a few minutes "in the future" is today's root.
        soon = now.astimezone(UTC) + NOT_YET_VALID_LEEWAY
        if all(certificate.not_valid_before_utc > soon for certificate in certificates):
            first = min(certificates, key=lambda certificate: certificate.not_valid_before_utc)
            subject = remotetext.printable(first.subject.rfc4514_string(), _SUBJECT_LIMIT) or "(no subject)"
            start = first.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
            return (
                f"certificate {subject} is not valid before {start} and no certificate in rootCA is valid now: "
                "the remote must publish the root CA it signs with today (beside its next one)"
            )
    for certificate in certificates:
        if now is not None and certificate.not_valid_after_utc < now.astimezone(UTC):
            subject = remotetext.printable(certificate.subject.rfc4514_string(), _SUBJECT_LIMIT) or "(no subject)"
            expired = certificate.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
            return f"certificate {subject} expired at {expired}: the remote must publish its current root CA"
        try:
            constraints = certificate.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value
        except x509.ExtensionNotFound:
            return "certificate has no basicConstraints extension: it is not a CA"
        if not isinstance(constraints, x509.BasicConstraints) or not constraints.ca:
            return "certificate is not a CA (basicConstraints CA:FALSE)"
    return None


def parse_public(data: Any, *, now: datetime | None = None) -> PublicMetadata:
    """The public document, all or nothing; with ``now``, an expired rootCA is refused."""
    errors: list[FieldError] = []
    if not isinstance(data, dict):
        raise DocumentError("public metadata", [invalid(Path(), json_type(data), "must be a JSON object")])
    root = Path()
    cluster_uuid = _string(data, "clusterUUID", root, errors)
    if cluster_uuid and (len(cluster_uuid) > MAX_CLUSTER_UUID or not cluster_uuid.isprintable()):
        errors.append(
            invalid(root.child("clusterUUID"), _value(cluster_uuid), "must be printable, at most 253 characters")
        )
    authn_key_pub = _string(data, "authnKeyPub", root, errors)
    if authn_key_pub:
        try:
            keys.load_public_key(authn_key_pub, "authnKeyPub")
        except keys.InvalidKey as error:
            errors.append(invalid(root.child("authnKeyPub"), "<PEM>", str(error)))
    root_ca = _string(data, "rootCA", root, errors)
    if root_ca:
        problem = root_ca_problem(root_ca, now=now)
        if problem:
            errors.append(invalid(root.child("rootCA"), "<PEM>", problem))
    if errors:
        raise DocumentError("public metadata", errors)
    return PublicMetadata(cluster_uuid, authn_key_pub, root_ca)


def _port_number(value: Any, path: Path, errors: list[FieldError]) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append(invalid(path, _value(value), "must be an integer from 1 to 65535"))
        return 0
    if not 1 <= value <= 65535:
        errors.append(invalid(path, value, "must be from 1 to 65535"))
        return 0
    return value


def _list(data: dict[str, Any], key: str, path: Path, errors: list[FieldError]) -> list[Any]:
    value = data.get(key)
    if value is None:
        errors.append(required(path.child(key), "must be present (an empty list is allowed)"))
        return []
    if not isinstance(value, list):
        errors.append(invalid(path.child(key), json_type(value), "must be a list"))
        return []
    return value


def _skip_message(errors: list[FieldError]) -> str:
    return remotetext.printable("; ".join(error.render() for error in errors), _SKIP_MESSAGE_LIMIT)


# -- gateways ------------------------------------------------------------------------------------


def gateway_address_problem(
    address: str, *, refused_networks: Iterable[Network] = (), refused_domains: Iterable[str] = ()
) -> tuple[str, str] | None:
    """Why ``address`` may not be an ingress gateway of a remote, as ``(reason, detail)``, or None."""
    if dns.is_ip(address):
        ip = ipaddress.ip_address(address)
        if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
            return SKIP_INVALID_ADDRESS, f"{address} has an IPv6 zone, which means nothing in another cluster"
        candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)
        for candidate in candidates:
            problem = _forbidden_ip(candidate, refused_networks)
            if problem:
                return SKIP_FORBIDDEN_ADDRESS, f"{address} {problem}"
        return None
    if not dns.is_dns_name(address):
        return SKIP_INVALID_ADDRESS, "must be an IP address or a DNS name"
    name = address.lower().rstrip(".")
    if dns.is_under_domain(name, "localhost"):
        return SKIP_FORBIDDEN_ADDRESS, f"{name} is a loopback name (RFC 6761): it would point into this cluster"
    if "." not in name:
        return (
            SKIP_FORBIDDEN_ADDRESS,
            f"{name} is a single-label name, which this cluster's DNS search path would resolve to a local "
            "Service: publish a fully qualified name",
        )
    for domain in refused_domains:
        if dns.is_under_domain(name, domain):
            return SKIP_FORBIDDEN_ADDRESS, f"{name} is under {domain}, a domain of this cluster"
    return None


def _forbidden_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, refused_networks: Iterable[Network]) -> str:
    if ip.is_loopback:
        return "is a loopback address: it would point into this cluster"
    if ip.is_unspecified or (isinstance(ip, ipaddress.IPv4Address) and ip in _THIS_NETWORK):
        return "is an unspecified address: it would point into this cluster"
    if ip.is_link_local:
        return "is a link-local address, where cloud metadata services listen: it would point into this cluster"
    if ip.is_multicast:
        return "is a multicast address, not a gateway"
    for network in refused_networks:
        if network.version == ip.version and ip in network:
            return f"is in {network}, a range of this cluster (refused networks)"
    return ""


def _gateway(
    item: Any, path: Path, refused_networks: tuple[Network, ...], refused_domains: tuple[str, ...]
) -> IngressGateway | SkippedGateway:
    if not isinstance(item, dict):
        error = invalid(path, json_type(item), "must be an object with address and port")
        return SkippedGateway("", str(path), SKIP_NOT_AN_OBJECT, _skip_message([error]))
    errors: list[FieldError] = []
    reason = ""
    address = _string(item, "address", path, errors)
    if errors:
        reason = SKIP_INVALID_ADDRESS
    elif address:
        problem = gateway_address_problem(address, refused_networks=refused_networks, refused_domains=refused_domains)
        if problem is not None:
            reason, detail = problem
            address_path = path.child("address")
            if reason == SKIP_FORBIDDEN_ADDRESS:
                errors.append(forbidden(address_path, detail))
            else:
                errors.append(invalid(address_path, _value(address), detail))
    port = _port_number(item.get("port"), path.child("port"), errors)
    if errors:
        subject = _shown(item.get("address")) if item.get("address") is not None else ""
        return SkippedGateway(subject, str(path), reason or SKIP_INVALID_PORT_NUMBER, _skip_message(errors))
    return IngressGateway(address, port)


# -- services and ports --------------------------------------------------------------------------


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
        return SkippedPort(hostname, "", str(path), SKIP_NOT_AN_OBJECT, _skip_message([error]))
    errors: list[FieldError] = []
    reasons: list[str] = []
    number = _port_number(item.get("port"), path.child("port"), errors)
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
            errors.append(invalid(path.child("protocol"), _value(protocol), detail))
            reasons.append(SKIP_UNSUPPORTED_PROTOCOL)
        protocol = upper
    name = item.get("name")
    derived = name is None or name == ""
    if derived:
        name = f"{(protocol or 'TCP').lower()}-{number}"
    elif not isinstance(name, str) or port_name_problem(name) is not None:
        errors.append(invalid(path.child("name"), _value(name), PORT_NAME_RULE))
        reasons.append(SKIP_INVALID_PORT_NAME)
    if errors:
        raw_number = item.get("port")
        shown = _shown(raw_number) if raw_number is not None else _shown(name)
        return SkippedPort(hostname, shown, str(path), reasons[0], _skip_message(errors))
    assert isinstance(name, str)
    protocol = protocol or protocols.protocol_for_port_name(name)
    return _Port(ServicePort(name, number, str(protocol)), derived)


def _service(item: Any, path: Path) -> tuple[PublicService | None, list[SkippedService], list[SkippedPort]]:
    if not isinstance(item, dict):
        error = invalid(path, json_type(item), "must be an object with hostname and ports")
        return None, [SkippedService("", str(path), SKIP_NOT_AN_OBJECT, _skip_message([error]))], []
    errors: list[FieldError] = []
    hostname = _string(item, "hostname", path, errors)
    if hostname and not dns.is_dns_name(hostname):
        errors.append(invalid(path.child("hostname"), _value(hostname), "must be a valid DNS name"))
    if errors:
        raw = item.get("hostname")
        subject = _shown(raw) if raw is not None else ""
        return None, [SkippedService(subject, str(path), SKIP_INVALID_HOSTNAME, _skip_message(errors))], []
    hostname = hostname.lower().rstrip(".")
    ports_path = path.child("ports")
    raw_ports = item.get("ports")

    def skip(reason: str, error: FieldError) -> tuple[None, list[SkippedService], list[SkippedPort]]:
        return None, [SkippedService(hostname, str(path), reason, _skip_message([error]))], []

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
                    hostname, str(entry.port.port), str(port_path), SKIP_DUPLICATE_PORT_NAME, _skip_message([error])
                )
            )
            continue
        ports.append(entry.port)
    if not ports:
        error = invalid(ports_path, "array", f"none of its {len(raw_ports)} ports can be imported")
        return (
            None,
            [SkippedService(hostname, str(path), SKIP_NO_IMPORTABLE_PORT, _skip_message([error]))],
            skipped_ports,
        )
    return PublicService(hostname, tuple(sorted(ports, key=lambda p: p.port))), [], skipped_ports


def parse_private(
    data: Any, *, refused_networks: Iterable[Network] = (), refused_domains: Iterable[str] = ()
) -> PrivateMetadata:
    """The importable part of a private document, and every skipped entry with its reason.

    ``refused_networks`` and ``refused_domains`` are refused as gateway addresses on top of the
    built-in ones (for example this cluster's service and pod CIDRs, and its cluster domain).
    Raises DocumentError when the envelope is broken (see the module documentation); a document
    whose every gateway is refused parses, with no ``ingress_gateways``.
    """
    if not isinstance(data, dict):
        raise DocumentError("private metadata", [invalid(Path(), json_type(data), "must be a JSON object")])
    errors: list[FieldError] = []
    gateway_items = _list(data, "ingressGateways", Path(), errors)
    service_items = _list(data, "publicServices", Path(), errors)
    if len(gateway_items) > MAX_GATEWAYS:
        errors.append(
            invalid(
                Path("ingressGateways"),
                "array",
                f"has {len(gateway_items)} gateways; a ServiceEntry holds at most {MAX_GATEWAYS} endpoints",
            )
        )
    if len(service_items) > MAX_SERVICES:
        errors.append(
            invalid(Path("publicServices"), "array", f"has {len(service_items)} services, more than {MAX_SERVICES}")
        )
    if errors:
        raise DocumentError("private metadata", errors)

    networks = tuple(refused_networks)
    domains = tuple(refused_domains)
    gateways: list[IngressGateway] = []
    skipped_gateways: list[SkippedGateway] = []
    for position, item in enumerate(gateway_items):
        outcome = _gateway(item, Path("ingressGateways").index(position), networks, domains)
        if isinstance(outcome, IngressGateway):
            gateways.append(outcome)
        else:
            skipped_gateways.append(outcome)

    services: list[PublicService] = []
    skipped_services: list[SkippedService] = []
    skipped_ports: list[SkippedPort] = []
    for position, item in enumerate(service_items):
        service, service_skips, port_skips = _service(item, Path("publicServices").index(position))
        if service is not None:
            services.append(service)
        skipped_services.extend(service_skips)
        skipped_ports.extend(port_skips)
    return PrivateMetadata(
        tuple(sorted(gateways)),
        tuple(sorted(services)),
        tuple(skipped_services),
        tuple(skipped_ports),
        tuple(skipped_gateways),
    )
