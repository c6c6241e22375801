"""The ingress gateways of the private document (``ingressGateways``): one entry read, or skipped.

A gateway address must be an IP or a DNS name that does not point into this cluster: loopback,
unspecified, link-local (cloud metadata at 169.254.169.254) and multicast addresses, ``localhost``
and single-label names are refused, and so are the caller's ``refused_networks`` and
``refused_domains`` (:func:`gateway_address_problem`).  A refused gateway becomes a
:class:`federation.documents.skips.SkippedGateway`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from federation import dns
from federation.documents.reading import port_number, reported_value, required_string, skip_subject
from federation.documents.skips import (
    SKIP_FORBIDDEN_ADDRESS,
    SKIP_INVALID_ADDRESS,
    SKIP_INVALID_PORT_NUMBER,
    SKIP_NOT_AN_OBJECT,
    SkippedGateway,
    skip_message,
)
from federation.fields import FieldError, Path, forbidden, invalid, json_type

_THIS_NETWORK: Final = ipaddress.ip_network("0.0.0.0/8")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, order=True)
class IngressGateway:
    address: str
    port: int

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "port": self.port}


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


def read_gateway(
    item: Any, path: Path, refused_networks: tuple[Network, ...], refused_domains: tuple[str, ...]
) -> IngressGateway | SkippedGateway:
    """One entry of ``ingressGateways``: the gateway, or why it is skipped."""
    if not isinstance(item, dict):
        error = invalid(path, json_type(item), "must be an object with address and port")
        return SkippedGateway("", str(path), SKIP_NOT_AN_OBJECT, skip_message([error]))
    errors: list[FieldError] = []
    reason = ""
    address = required_string(item, "address", path, errors)
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
                errors.append(invalid(address_path, reported_value(address), detail))
    port = port_number(item.get("port"), path.child("port"), errors)
    if errors:
        subject = skip_subject(item.get("address")) if item.get("address") is not None else ""
        return SkippedGateway(subject, str(path), reason or SKIP_INVALID_PORT_NUMBER, skip_message(errors))
    return IngressGateway(address, port)
