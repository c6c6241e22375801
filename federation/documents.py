"""The metadata documents clusters exchange, parsed and built in one place.

Wire format (Deckhouse-compatible):

* ``/metadata/public/public.json``: ``{"clusterUUID", "authnKeyPub", "rootCA"}``
* ``/metadata/private/federation.json``:
  ``{"ingressGateways": [{"address", "port"}],
  "publicServices": [{"hostname", "ports": [{"name", "port", "protocol"}]}]}``

Parsing validates everything a remote could get wrong and reports every problem with its JSON
path, so that a bad document is refused whole and never replaces good data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from federation import dns, keys, protocols
from federation.fields import FieldError, Path, invalid, json_type, required

MAX_DOCUMENT_BYTES = 4 * 1024 * 1024
MAX_CLUSTER_UUID = 253


class DocumentError(ValueError):
    """A document that must not be used; ``errors`` says every reason, with its JSON path."""

    def __init__(self, what: str, errors: list[FieldError]) -> None:
        self.what = what
        self.errors = errors
        super().__init__(f"invalid {what}: " + "; ".join(error.render() for error in errors))


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
class PrivateMetadata:
    ingress_gateways: tuple[IngressGateway, ...]
    public_services: tuple[PublicService, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "ingressGateways": [gateway.to_json() for gateway in self.ingress_gateways],
            "publicServices": [service.to_json() for service in self.public_services],
        }


def decode_json(body: bytes, what: str) -> Any:
    """Decode a response body; size and syntax problems become a DocumentError."""
    if len(body) > MAX_DOCUMENT_BYTES:
        raise DocumentError(what, [invalid(Path(), f"{len(body)} bytes", f"larger than {MAX_DOCUMENT_BYTES} bytes")])
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DocumentError(what, [invalid(Path(), "<body>", f"not valid JSON: {error}")]) from error


def _string(data: dict[str, Any], key: str, path: Path, errors: list[FieldError]) -> str:
    value = data.get(key)
    if value is None or value == "":
        errors.append(required(path.child(key), "must be a non-empty string"))
        return ""
    if not isinstance(value, str):
        errors.append(invalid(path.child(key), value, "must be a string"))
        return ""
    return value


def root_ca_problem(pem: str) -> str | None:
    """Why ``pem`` is not a usable CA certificate, or None."""
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        return "must be a PEM X.509 certificate"
    for certificate in certificates:
        try:
            constraints = certificate.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value
        except x509.ExtensionNotFound:
            return "certificate has no basicConstraints extension: it is not a CA"
        if not isinstance(constraints, x509.BasicConstraints) or not constraints.ca:
            return "certificate is not a CA (basicConstraints CA:FALSE)"
    return None


def parse_public(data: Any) -> PublicMetadata:
    errors: list[FieldError] = []
    if not isinstance(data, dict):
        raise DocumentError("public metadata", [invalid(Path(), json_type(data), "must be a JSON object")])
    root = Path()
    cluster_uuid = _string(data, "clusterUUID", root, errors)
    if cluster_uuid and (len(cluster_uuid) > MAX_CLUSTER_UUID or not cluster_uuid.isprintable()):
        errors.append(invalid(root.child("clusterUUID"), cluster_uuid, "must be printable, at most 253 characters"))
    authn_key_pub = _string(data, "authnKeyPub", root, errors)
    if authn_key_pub:
        try:
            keys.load_public_key(authn_key_pub, "authnKeyPub")
        except keys.InvalidKey as error:
            errors.append(invalid(root.child("authnKeyPub"), "<PEM>", str(error)))
    root_ca = _string(data, "rootCA", root, errors)
    if root_ca:
        problem = root_ca_problem(root_ca)
        if problem:
            errors.append(invalid(root.child("rootCA"), "<PEM>", problem))
    if errors:
        raise DocumentError("public metadata", errors)
    return PublicMetadata(cluster_uuid, authn_key_pub, root_ca)


def _port_number(value: Any, path: Path, errors: list[FieldError]) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append(invalid(path, value, "must be an integer from 1 to 65535"))
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


def parse_private(data: Any) -> PrivateMetadata:
    if not isinstance(data, dict):
        raise DocumentError("private metadata", [invalid(Path(), json_type(data), "must be a JSON object")])
    errors: list[FieldError] = []
    gateways: list[IngressGateway] = []
    gateways_path = Path("ingressGateways")
    for position, item in enumerate(_list(data, "ingressGateways", Path(), errors)):
        path = gateways_path.index(position)
        if not isinstance(item, dict):
            errors.append(invalid(path, item, "must be an object with address and port"))
            continue
        address = _string(item, "address", path, errors)
        if address and not (dns.is_ip(address) or dns.is_dns_name(address)):
            errors.append(invalid(path.child("address"), address, "must be an IP address or a DNS name"))
        port = _port_number(item.get("port"), path.child("port"), errors)
        gateways.append(IngressGateway(address, port))
    services: list[PublicService] = []
    services_path = Path("publicServices")
    for position, item in enumerate(_list(data, "publicServices", Path(), errors)):
        path = services_path.index(position)
        if not isinstance(item, dict):
            errors.append(invalid(path, item, "must be an object with hostname and ports"))
            continue
        hostname = _string(item, "hostname", path, errors)
        if hostname and not dns.is_dns_name(hostname):
            errors.append(invalid(path.child("hostname"), hostname, "must be a valid DNS name"))
        ports: list[ServicePort] = []
        for port_position, port_item in enumerate(_list(item, "ports", path, errors)):
            port_path = path.child("ports").index(port_position)
            if not isinstance(port_item, dict):
                errors.append(invalid(port_path, port_item, "must be an object with name and port"))
                continue
            name = _string(port_item, "name", port_path, errors)
            number = _port_number(port_item.get("port"), port_path.child("port"), errors)
            protocol = port_item.get("protocol")
            if protocol is None or protocol == "":
                protocol = protocols.protocol_for_port_name(name)
            elif not isinstance(protocol, str) or protocol.upper() not in protocols.PROTOCOLS:
                errors.append(invalid(port_path.child("protocol"), protocol, "must be TCP, HTTP, HTTP2 or TLS"))
                protocol = "TCP"
            ports.append(ServicePort(name, number, str(protocol).upper()))
        services.append(PublicService(hostname.lower().rstrip("."), tuple(sorted(ports, key=lambda p: p.port))))
    if errors:
        raise DocumentError("private metadata", errors)
    return PrivateMetadata(tuple(sorted(gateways)), tuple(sorted(services)))
