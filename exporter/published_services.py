"""The services this cluster exports, derived from cached Services by a pure function.

Public services are Services labelled ``federation.istio.deckhouse.io/public-service`` with an
empty value, in any namespace. A Service or port left out gets a :class:`~exporter.skips.Skip`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from exporter.skips import Skip, object_name
from federation import ownership, protocols, resources
from federation.documents.public_services import PublicService, ServicePort
from federation.resources import KubeObject

# The ingress gateway forwards TLS over TCP (SNI passthrough), so UDP and SCTP ports of a public
# Service could never be reached from another cluster.
_FORWARDABLE_PROTOCOLS = ("TCP",)


@dataclass(frozen=True)
class PublicServices:
    services: tuple[PublicService, ...]
    skips: tuple[Skip, ...]


def public_services(services: Iterable[KubeObject], cluster_domain: str) -> PublicServices:
    """The public services among ``services`` (which may hold others: they are ignored)."""
    exported: list[PublicService] = []
    skips: list[Skip] = []
    for service in services:
        labels = resources.labels(service)
        if ownership.PUBLIC_SERVICE_LABEL not in labels:
            continue
        name = object_name(service)
        value = labels[ownership.PUBLIC_SERVICE_LABEL]
        if value != "":
            # Deckhouse selects "label=" (empty value) only; "true" is the commonest mistake.
            skips.append(
                Skip(
                    "service",
                    "label_value_not_empty",
                    f"Service {name} not exported: label {ownership.PUBLIC_SERVICE_LABEL} has value "
                    f"{value!r}; set it to the empty string to export the Service",
                )
            )
            continue
        spec = resources.spec(service)
        if spec.get("type") == "ExternalName":
            skips.append(
                Skip(
                    "service",
                    "external_name",
                    f"Service {name} not exported: ExternalName Services cannot be federated; "
                    "remove the label or export a Service with a selector",
                )
            )
            continue
        ports, port_skips = _service_ports(name, spec.get("ports"))
        skips.extend(port_skips)
        if not ports:
            skips.append(
                Skip(
                    "service",
                    "no_usable_ports",
                    f"Service {name} not exported: it has no named TCP port (spec.ports)",
                )
            )
            continue
        hostname = f"{resources.name_of(service)}.{resources.namespace_of(service)}.svc.{cluster_domain}"
        exported.append(PublicService(hostname, tuple(sorted(ports, key=lambda port: (port.port, port.name)))))
    return PublicServices(tuple(sorted(exported)), tuple(sorted(skips)))


def _service_ports(name: str, ports: Any) -> tuple[list[ServicePort], list[Skip]]:
    result: list[ServicePort] = []
    skips: list[Skip] = []
    for position, port in enumerate(ports if isinstance(ports, list) else []):
        where = f"Service {name} spec.ports[{position}]"
        if not isinstance(port, dict):
            skips.append(Skip("port", "invalid_port", f"{where} not exported: not an object"))
            continue
        port_name = port.get("name")
        if not isinstance(port_name, str) or not port_name:
            skips.append(
                Skip(
                    "port",
                    "unnamed_port",
                    f"{where} not exported: the port has no name; name it (e.g. http, grpc, tls-…) "
                    "so that peers can derive its protocol",
                )
            )
            continue
        number = port.get("port")
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 65535:
            skips.append(Skip("port", "invalid_port", f"{where} ({port_name}) not exported: port must be 1-65535"))
            continue
        transport = str(port.get("protocol") or "TCP").upper()
        if transport not in _FORWARDABLE_PROTOCOLS:
            skips.append(
                Skip(
                    "port",
                    "not_tcp",
                    f"{where} ({port_name}) not exported: protocol {transport} cannot cross the ingress "
                    "gateway, which forwards TCP only",
                )
            )
            continue
        result.append(ServicePort(port_name, number, protocols.protocol_for_port_name(port_name)))
    return result, skips
