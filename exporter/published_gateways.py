"""The ingress gateways this cluster publishes, derived from cached objects by pure functions.

In order of precedence: an explicit advertise list (flag or ConfigMap), the load-balancer
addresses of the gateway Services, or the nodes that run gateway pods. A gateway, node or
ConfigMap entry left out gets a :class:`~exporter.skips.Skip`.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from exporter.skips import Skip, object_name
from federation import dns, resources, selectors
from federation.documents.ingress_gateways import IngressGateway
from federation.resources import KubeObject

ADVERTISE_CONFIGMAP = "metadata-exporter-ingressgateway-advertise"
ADVERTISE_KEY = "gateways.json"
ADVERTISE_LEGACY_KEY = "ingressgateways-array.json"
TLS_PORT_NAME = "tls"
INLET_LOAD_BALANCER = "LoadBalancer"
INLET_NODE_PORT = "NodePort"
INLETS = (INLET_LOAD_BALANCER, INLET_NODE_PORT)
DEFAULT_GATEWAY_SELECTOR = "app=ingressgateway"

# Where the published gateway list came from; exported as a metric label and in logs.
SOURCE_FLAG = "flag"
SOURCE_CONFIGMAP = "configmap"
SOURCE_LOAD_BALANCER = "loadbalancer"
SOURCE_NODE_PORT = "nodeport"


@dataclass(frozen=True)
class Gateways:
    gateways: tuple[IngressGateway, ...]
    source: str
    skips: tuple[Skip, ...]


class AdvertiseError(ValueError):
    """An ``ADDRESS:PORT`` that cannot be advertised; the message says what to write instead."""


def _check_address(address: str, where: str) -> str:
    if not address:
        raise AdvertiseError(f"{where}: address is empty")
    if dns.is_ip(address):
        return str(ipaddress.ip_address(address))
    if dns.is_dns_name(address):
        return address.lower().rstrip(".")
    raise AdvertiseError(f"{where}: address {address!r} must be an IP address or a DNS name")


def _check_port(port: Any, where: str) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise AdvertiseError(f"{where}: port must be an integer from 1 to 65535, got {port!r}")
    return port


def parse_advertise(text: str) -> IngressGateway:
    """``1.2.3.4:15443``, ``gw.example.com:15443`` or ``[2001:db8::1]:15443``."""
    where = f"--advertise {text!r}"
    if text.startswith("["):
        address, bracket, rest = text[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise AdvertiseError(f"{where}: write an IPv6 address as [ADDRESS]:PORT")
        port_text = rest[1:]
        if not dns.is_ip(address):
            raise AdvertiseError(f"{where}: {address!r} in brackets must be an IPv6 address")
    else:
        address, colon, port_text = text.rpartition(":")
        if not colon or ":" in address:
            raise AdvertiseError(f"{where}: expected ADDRESS:PORT (IPv6 as [ADDRESS]:PORT)")
    if not port_text.isdigit():
        raise AdvertiseError(f"{where}: port {port_text!r} must be a number from 1 to 65535")
    return IngressGateway(_check_address(address, where), _check_port(int(port_text), where))


def advertised_from_configmap(configmap: KubeObject) -> tuple[tuple[IngressGateway, ...] | None, list[Skip]]:
    """The gateways a ``metadata-exporter-ingressgateway-advertise`` ConfigMap lists.

    None (with a skip) when the ConfigMap is unusable as a whole; then discovery takes over,
    because publishing no gateways would make every peer drop this cluster's services.
    """
    name = f"ConfigMap {object_name(configmap)}"
    data = configmap.get("data")
    data = data if isinstance(data, dict) else {}
    key = ADVERTISE_KEY if ADVERTISE_KEY in data else ADVERTISE_LEGACY_KEY if ADVERTISE_LEGACY_KEY in data else None
    if key is None:
        return None, [
            Skip(
                "gateway",
                "invalid_advertise_configmap",
                f"{name} ignored: it has no data key {ADVERTISE_KEY} (a JSON list of {{address, port}}); "
                "using gateway discovery instead",
            )
        ]
    try:
        entries = json.loads(str(data[key]))
    except ValueError as error:
        entries = error
    if not isinstance(entries, list):
        return None, [
            Skip(
                "gateway",
                "invalid_advertise_configmap",
                f'{name} ignored: data[{key}] must be a JSON list of {{"address": …, "port": …}}; '
                "using gateway discovery instead",
            )
        ]
    gateways: list[IngressGateway] = []
    skips: list[Skip] = []
    for position, entry in enumerate(entries):
        where = f"{name} data[{key}][{position}]"
        try:
            if not isinstance(entry, dict):
                raise AdvertiseError(f"{where}: must be an object with address and port")
            address = entry.get("address")
            gateways.append(
                IngressGateway(
                    _check_address(address if isinstance(address, str) else "", f"{where}.address"),
                    _check_port(entry.get("port"), f"{where}.port"),
                )
            )
        except AdvertiseError as error:
            skips.append(Skip("gateway", "invalid_advertise_entry", f"{error}; entry not advertised"))
    return tuple(gateways), skips


def _first_port(service: KubeObject, field: str) -> int | None:
    ports = resources.spec(service).get("ports")
    for port in ports if isinstance(ports, list) else []:
        if isinstance(port, dict) and port.get("name") == TLS_PORT_NAME:
            value = port.get(field)
            if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
                return value
            return None
    return None


def load_balancer_gateways(services: Sequence[KubeObject]) -> tuple[list[IngressGateway], list[Skip]]:
    gateways: list[IngressGateway] = []
    skips: list[Skip] = []
    for service in services:
        name = f"gateway Service {object_name(service)}"
        port = _first_port(service, "port")
        if port is None:
            skips.append(Skip("gateway", "no_tls_port", f"{name} not advertised: it has no port named {TLS_PORT_NAME}"))
            continue
        status = service.get("status")
        load_balancer = status.get("loadBalancer") if isinstance(status, dict) else None
        ingress = load_balancer.get("ingress") if isinstance(load_balancer, dict) else None
        entries = [entry for entry in ingress if isinstance(entry, dict)] if isinstance(ingress, list) else []
        # Deckhouse's rule: the first entry that has an IP, else the first that has a hostname.
        address = next((str(e["ip"]) for e in entries if e.get("ip")), None) or next(
            (str(e["hostname"]) for e in entries if e.get("hostname")), None
        )
        if address is None:
            skips.append(
                Skip(
                    "gateway",
                    "no_load_balancer_address",
                    f"{name} not advertised: status.loadBalancer.ingress is empty (is the load balancer "
                    "provisioned? else use --inlet NodePort or --advertise)",
                )
            )
            continue
        gateways.append(IngressGateway(address, port))
    return gateways, skips


def _node_ready(node: KubeObject) -> bool:
    status = node.get("status")
    conditions = status.get("conditions") if isinstance(status, dict) else None
    for condition in conditions if isinstance(conditions, list) else []:
        if isinstance(condition, dict) and condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def _node_schedulable(node: KubeObject) -> bool:
    spec = resources.spec(node)
    if spec.get("unschedulable") is True:
        return False
    taints = spec.get("taints")
    return not any(
        isinstance(taint, dict) and taint.get("key") == "node.kubernetes.io/unschedulable"
        for taint in (taints if isinstance(taints, list) else [])
    )


def _node_address(node: KubeObject) -> str | None:
    status = node.get("status")
    addresses = status.get("addresses") if isinstance(status, dict) else None
    entries = [entry for entry in addresses if isinstance(entry, dict)] if isinstance(addresses, list) else []
    for kind in ("ExternalIP", "InternalIP"):
        for entry in entries:
            if entry.get("type") == kind and entry.get("address"):
                return str(entry["address"])
    return None


def node_port_gateways(
    services: Sequence[KubeObject], pods: Sequence[KubeObject], nodes: Sequence[KubeObject]
) -> tuple[list[IngressGateway], list[Skip]]:
    port = next((found for service in services if (found := _first_port(service, "nodePort")) is not None), None)
    if port is None and services:
        return [], [
            Skip(
                "gateway",
                "no_tls_port",
                f"no gateway Service has a port named {TLS_PORT_NAME} with a nodePort; no NodePort gateway advertised",
            )
        ]
    if port is None:
        return [], []
    running_on: set[str] = set()
    for pod in pods:
        status = pod.get("status")
        phase = status.get("phase") if isinstance(status, dict) else None
        node_name = resources.spec(pod).get("nodeName")
        # A pod that is terminating, pending or finished does not accept traffic on its node.
        if phase == "Running" and node_name and not resources.meta(pod).get("deletionTimestamp"):
            running_on.add(str(node_name))
    by_name = {resources.name_of(node): node for node in nodes}
    gateways: list[IngressGateway] = []
    skips: list[Skip] = []
    for node_name in sorted(running_on):
        node = by_name.get(node_name)
        what = f"node {node_name}"
        if node is None:
            skips.append(
                Skip("gateway", "node_unknown", f"{what} not advertised: it runs a gateway pod but is not cached")
            )
        elif not _node_ready(node):
            skips.append(Skip("gateway", "node_not_ready", f"{what} not advertised: condition Ready is not True"))
        elif not _node_schedulable(node):
            skips.append(
                Skip("gateway", "node_unschedulable", f"{what} not advertised: it is cordoned (unschedulable)")
            )
        else:
            address = _node_address(node)
            if address is None:
                skips.append(
                    Skip(
                        "gateway", "node_without_address", f"{what} not advertised: it has no ExternalIP or InternalIP"
                    )
                )
            else:
                gateways.append(IngressGateway(address, port))
    return gateways, skips


def matching(objects: Iterable[KubeObject], namespace: str, selector: str) -> list[KubeObject]:
    """Objects of ``namespace`` whose labels match ``selector``, sorted by name."""
    parsed = selectors.parse(selector)
    found = [
        obj for obj in objects if resources.namespace_of(obj) == namespace and parsed.matches(resources.labels(obj))
    ]
    return sorted(found, key=resources.name_of)


def ingress_gateways(
    *,
    advertise: Sequence[IngressGateway],
    advertise_configmap: KubeObject | None,
    inlet: str,
    services: Sequence[KubeObject],
    pods: Sequence[KubeObject],
    nodes: Sequence[KubeObject],
) -> Gateways:
    """The gateway list to publish, sorted by (address, port) and without duplicates.

    ``services`` and ``pods`` must already be narrowed to the gateway namespace and selector.
    """
    skips: list[Skip] = []
    if advertise:
        return Gateways(tuple(sorted(set(advertise))), SOURCE_FLAG, ())
    if advertise_configmap is not None:
        from_configmap, configmap_skips = advertised_from_configmap(advertise_configmap)
        skips.extend(configmap_skips)
        if from_configmap is not None:
            return Gateways(tuple(sorted(set(from_configmap))), SOURCE_CONFIGMAP, tuple(sorted(skips)))
    if inlet == INLET_NODE_PORT:
        found, discovery_skips = node_port_gateways(services, pods, nodes)
        source = SOURCE_NODE_PORT
    else:
        found, discovery_skips = load_balancer_gateways(services)
        source = SOURCE_LOAD_BALANCER
    skips.extend(discovery_skips)
    if not services:
        skips.append(
            Skip(
                "gateway",
                "no_gateway_service",
                "no gateway Service found: check --gateway-selector and --gateway-namespace, or use --advertise",
            )
        )
    return Gateways(tuple(sorted(set(found))), source, tuple(sorted(skips)))
