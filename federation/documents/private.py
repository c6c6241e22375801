"""The private metadata document (``/metadata/private/federation.json``): what it imports, what it skips.

``{"ingressGateways": [{"address", "port"}],
"publicServices": [{"hostname", "ports": [{"name", "port", "protocol"}]}]}``

The document is refused whole (:class:`federation.documents.reading.DocumentError`) only when its
**envelope** is broken: not an object, ``ingressGateways`` or ``publicServices`` missing or not
lists, or more entries than a ServiceEntry can hold.  Otherwise each gateway
(:mod:`federation.documents.ingress_gateways`) and each service and its ports
(:mod:`federation.documents.public_services`) is read on its own: what cannot be imported is skipped
with a reason (:mod:`federation.documents.skips`) and the rest is imported.  When no gateway is left
(none published, or every one refused) the document still parses, with no ``ingress_gateways``:
whether that is usable is the caller's policy (the reconciler keeps its last known objects, since
nothing could reach them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from federation import boundedjson
from federation.documents.ingress_gateways import IngressGateway, Network, read_gateway
from federation.documents.public_services import PublicService, read_service
from federation.documents.reading import DocumentError
from federation.documents.skips import Skipped, SkippedGateway, SkippedPort, SkippedService
from federation.fields import FieldError, Path, invalid, json_type, required

# Istio's ServiceEntry CRD: spec.endpoints has maxItems 4096 (every imported ServiceEntry gets one
# endpoint per gateway).  Beyond it nothing we write would be valid.
MAX_GATEWAYS = 4096
MAX_SERVICES = boundedjson.DOCUMENT_LIMITS.max_members


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


def _list(data: dict[str, Any], key: str, path: Path, errors: list[FieldError]) -> list[Any]:
    value = data.get(key)
    if value is None:
        errors.append(required(path.child(key), "must be present (an empty list is allowed)"))
        return []
    if not isinstance(value, list):
        errors.append(invalid(path.child(key), json_type(value), "must be a list"))
        return []
    return value


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
        outcome = read_gateway(item, Path("ingressGateways").index(position), networks, domains)
        if isinstance(outcome, IngressGateway):
            gateways.append(outcome)
        else:
            skipped_gateways.append(outcome)

    services: list[PublicService] = []
    skipped_services: list[SkippedService] = []
    skipped_ports: list[SkippedPort] = []
    for position, item in enumerate(service_items):
        service, service_skips, port_skips = read_service(item, Path("publicServices").index(position))
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
