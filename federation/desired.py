"""The objects one federation should have, as a pure function of its settings and remote metadata.

For each public service of the remote there is a ServiceEntry and a DestinationRule with the same
deterministic name (:func:`federation.ownership.managed_name`).  The function is deterministic:
the same inputs give the same objects in the same order, so the reconciler can diff it against what
it owns and write only the differences.

The security filter lives here too, because what a remote may claim is a domain rule, not an I/O
concern: a remote only ever speaks for names under its own trust domain.  Anything else (a remote
claiming ``*.svc.<local domain>``, or names of another federation's domain) is refused and reported.
When *every* host is refused for being outside ``spec.trustDomain``, the spec is the likely mistake:
:attr:`DesiredState.remote_domain` names the domain the remote's hosts share.

Visibility: every object carries an explicit ``exportTo`` (all namespaces, ``["*"]``, unless the
reconciler's ``--export-to`` or the federation's :data:`EXPORT_TO_ANNOTATION` says otherwise), so
it does not depend on the mesh's ``defaultServiceExportTo``/``defaultDestinationRuleExportTo``.
Deckhouse renders no ``exportTo`` and relies on its objects living in Istio's root namespace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from federation import dns, ownership, resources
from federation.documents.ingress_gateways import IngressGateway
from federation.documents.private import PrivateMetadata
from federation.documents.public_services import PublicService
from federation.fields import Path
from federation.istio import visibility
from federation.resources import KubeObject

# Every service port is reached through the remote ingress gateway's AUTO_PASSTHROUGH port, which
# routes by SNI; so each endpoint maps every port name to the one gateway port.
LOCATION = "MESH_INTERNAL"
TLS_MODE = "ISTIO_MUTUAL"
# Visible in every namespace: what the objects were while they had no exportTo and the mesh kept
# Istio's default.
DEFAULT_EXPORT_TO: Final = ("*",)
# Per federation, on the IstioFederation (an annotation keeps the CRD's spec Deckhouse's):
# comma-separated exportTo entries, e.g. "ns1,ns2" or ".".
EXPORT_TO_ANNOTATION: Final = "federation.istio.deckhouse.io/export-to"


@dataclass(frozen=True, order=True)
class SkippedService:
    """A public service the remote offered that is not imported, and why (for status and Events)."""

    hostname: str
    reason: str
    message: str


@dataclass(frozen=True)
class DesiredState:
    """The objects to own, sorted by (kind, name), and the outcome per offered hostname."""

    objects: tuple[KubeObject, ...]
    imported: tuple[str, ...]
    skipped: tuple[SkippedService, ...]
    # Set when the remote offered hosts and every one was refused for being outside
    # spec.trustDomain: the domain those hosts share ("" when they share none).
    remote_domain: str | None = None
    # What each imported host became, and from what: for ``desired_state(previous=...)`` to reuse.
    made: Mapping[str, Made] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Made:
    """The two objects one imported service became, and everything they were made from."""

    service: PublicService
    gateways: tuple[IngressGateway, ...]
    settings: FederationSettings
    entry: KubeObject
    rule: KubeObject


@dataclass(frozen=True)
class FederationSettings:
    """What the desired state depends on besides the remote document."""

    federation_name: str
    namespace: str
    trust_domain: str
    remote_cluster_uuid: str
    local_trust_domain: str
    # Trust domains of the *other* federations: a host under one of them that is also under ours
    # (nested domains) belongs to the more specific federation, never to us.
    other_trust_domains: tuple[str, ...] = ()
    # exportTo of every object (checked by :func:`export_to_problem`).
    export_to: tuple[str, ...] = DEFAULT_EXPORT_TO


REASON_OUTSIDE_TRUST_DOMAIN = "OutsideTrustDomain"
REASON_LOCAL_DOMAIN = "LocalTrustDomain"
REASON_OTHER_FEDERATION = "OtherFederationDomain"
REASON_NO_PORTS = "NoPorts"
REASON_NO_GATEWAYS = "NoIngressGateways"
REASON_DUPLICATE_PORT = "DuplicatePort"
REASON_NAME_COLLISION = "NameCollision"


def resolution_for(addresses: Iterable[str]) -> str:
    """STATIC only when every gateway address is an IP: Istio rejects names in STATIC endpoints.

    Deckhouse rendered STATIC for FQDN gateway addresses and every such ServiceEntry failed
    validation (their PR #19395); DNS makes Envoy resolve the names instead.
    """
    return "STATIC" if all(dns.is_ip(address) for address in addresses) else "DNS"


def refusal(hostname: str, settings: FederationSettings) -> SkippedService | None:
    """Why the security filter drops ``hostname``, or None when the remote may claim it."""
    if dns.is_under_domain(hostname, settings.local_trust_domain):
        return SkippedService(
            hostname,
            REASON_LOCAL_DOMAIN,
            f"host is under the local trust domain {settings.local_trust_domain}: a remote may not "
            "claim this cluster's own names",
        )
    if not dns.is_under_domain(hostname, settings.trust_domain):
        return SkippedService(
            hostname,
            REASON_OUTSIDE_TRUST_DOMAIN,
            f"host is outside the federation's trust domain {settings.trust_domain}",
        )
    for other in sorted(settings.other_trust_domains):
        nested = dns.is_under_domain(other, settings.trust_domain) and other.lower() != settings.trust_domain.lower()
        if nested and dns.is_under_domain(hostname, other):
            return SkippedService(
                hostname,
                REASON_OTHER_FEDERATION,
                f"host is under trust domain {other}, which another IstioFederation owns",
            )
    return None


def _port_problem(service: PublicService) -> SkippedService | None:
    if not service.ports:
        # A ServiceEntry without ports sends traffic to DNS auto-allocated fake IPs (Deckhouse #12133).
        return SkippedService(service.hostname, REASON_NO_PORTS, "the remote publishes no ports for this service")
    names = [port.name for port in service.ports]
    numbers = [port.port for port in service.ports]
    duplicate_name = next((name for name in names if names.count(name) > 1), None)
    if duplicate_name is not None:
        return SkippedService(service.hostname, REASON_DUPLICATE_PORT, f"port name {duplicate_name!r} is repeated")
    duplicate_number = next((number for number in numbers if numbers.count(number) > 1), None)
    if duplicate_number is not None:
        return SkippedService(service.hostname, REASON_DUPLICATE_PORT, f"port {duplicate_number} is repeated")
    return None


def export_to_problem(entries: Sequence[str], namespace: str) -> str | None:
    """Why ``entries`` cannot be the exportTo of the managed objects in ``namespace``, or None.

    Istio's own rule (``validateExportTo``, what the webhook applies to every ServiceEntry): ``*``,
    ``.``, ``~`` or namespace names, no duplicates, ``*`` and ``~`` alone.
    """
    if not entries:
        return "must name at least one namespace, '.', '*' or '~'"
    path = Path("exportTo")
    result = visibility.validate_export_to(
        path, [(path.index(position), entry) for position, entry in enumerate(entries)], namespace
    )
    if result.errors:
        return "; ".join(error.render() for error in result.errors)
    return None


def parse_export_to(text: str) -> tuple[str, ...]:
    """The entries of a comma-separated exportTo (the annotation's form), blanks dropped."""
    return tuple(entry.strip() for entry in text.split(",") if entry.strip())


def remote_domain(hosts: Sequence[str]) -> str:
    """The domain every one of ``hosts`` is under, as an admin would name it ("" when none).

    Kubernetes service names (``<svc>.<ns>.svc.<cluster domain>``) give their cluster domain; other
    names their longest common parent (``api.example.com``, ``www.example.com``: ``example.com``).
    """
    labels = [host.lower().rstrip(".").split(".") for host in hosts if host]
    if not labels:
        return ""
    common: list[str] = []
    for parts in zip(*(list(reversed(host)) for host in labels), strict=False):
        if any(part != parts[0] for part in parts):
            break
        common.append(parts[0])
    suffix = list(reversed(common))
    if "svc" in suffix:
        suffix = suffix[len(suffix) - suffix[::-1].index("svc") :]
    elif any(len(suffix) == len(host) for host in labels):
        suffix = suffix[1:]  # a host is not its own domain
    return ".".join(suffix)


def _metadata(name: str, settings: FederationSettings) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": settings.namespace,
        "labels": ownership.ownership_labels(settings.federation_name),
        "annotations": {ownership.REMOTE_CLUSTER_UUID_ANNOTATION: settings.remote_cluster_uuid},
    }


def service_entry(service: PublicService, private: PrivateMetadata, settings: FederationSettings) -> KubeObject:
    name = ownership.managed_name(service.hostname)
    gateways = sorted(private.ingress_gateways)
    return {
        "apiVersion": resources.SERVICE_ENTRY.api_version,
        "kind": resources.SERVICE_ENTRY.kind,
        "metadata": _metadata(name, settings),
        "spec": {
            "hosts": [service.hostname],
            "exportTo": list(settings.export_to),
            "location": LOCATION,
            "ports": [
                {"name": port.name, "number": port.port, "protocol": port.protocol}
                for port in sorted(service.ports, key=lambda p: (p.port, p.name))
            ],
            "resolution": resolution_for(gateway.address for gateway in gateways),
            "endpoints": [
                {"address": gateway.address, "ports": {port.name: gateway.port for port in service.ports}}
                for gateway in gateways
            ],
        },
    }


def destination_rule(service: PublicService, settings: FederationSettings) -> KubeObject:
    name = ownership.managed_name(service.hostname)
    return {
        "apiVersion": resources.DESTINATION_RULE.api_version,
        "kind": resources.DESTINATION_RULE.kind,
        "metadata": _metadata(name, settings),
        "spec": {
            "host": service.hostname,
            "exportTo": list(settings.export_to),
            "trafficPolicy": {"tls": {"mode": TLS_MODE}},
        },
    }


def desired_state(
    private: PrivateMetadata, settings: FederationSettings, previous: DesiredState | None = None
) -> DesiredState:
    """Every object to own for ``private``, and what was skipped and why.

    With ``previous`` (the last state of the same federation), a service offered exactly as before,
    with the same gateways and settings, keeps the very objects it had, and a changed service keeps
    each of its objects that came out equal: the same result, but when one of 5,000 services
    changes, only it is decided again, and the apply step recognises every other object by identity
    (``reconciler.apply``) instead of comparing it in full.
    """
    before = previous.made if previous is not None else {}
    skipped: list[SkippedService] = []
    made: dict[str, Made] = {}
    names: dict[str, str] = {}
    gateways = private.ingress_gateways
    for service in sorted(private.public_services, key=lambda s: s.hostname):
        last = before.get(service.hostname)
        if last is not None and (last.service, last.gateways, last.settings) == (service, gateways, settings):
            made_now: Made | None = last  # imported before, from the same inputs: the same outcome
            problem, name = None, resources.name_of(last.entry)
        else:
            made_now = None
            problem = refusal(service.hostname, settings) or _port_problem(service)
            if problem is None and not gateways:
                problem = SkippedService(
                    service.hostname, REASON_NO_GATEWAYS, "the remote publishes no ingress gateway to reach it through"
                )
            name = ownership.managed_name(service.hostname) if problem is None else ""
        if problem is None and name in names:
            # Two hosts can flatten to one name ("a-b.c" and "a.b-c"); the webhook requires exactly
            # that name, so the first host in sorted order keeps it and the other is reported.
            problem = SkippedService(
                service.hostname, REASON_NAME_COLLISION, f"its object name {name} is already used by {names[name]}"
            )
        if problem is not None:
            skipped.append(problem)
            continue
        names[name] = service.hostname
        made[service.hostname] = made_now or _made(service, private, settings, last)
    # DestinationRules sort before ServiceEntries by kind, each kind by name; apply orders writes itself.
    by_name = sorted(names)
    objects = [made[names[name]].rule for name in by_name] + [made[names[name]].entry for name in by_name]
    imported = tuple(made)
    mismatch = None
    if skipped and not imported and all(entry.reason == REASON_OUTSIDE_TRUST_DOMAIN for entry in skipped):
        mismatch = remote_domain([entry.hostname for entry in skipped])
    return DesiredState(tuple(objects), imported, tuple(sorted(skipped)), mismatch, made)


def _made(service: PublicService, private: PrivateMetadata, settings: FederationSettings, last: Made | None) -> Made:
    """The objects of ``service``, each replaced by the previous one of its host when equal to it
    (a changed port leaves the DestinationRule as it was)."""
    entry, rule = service_entry(service, private, settings), destination_rule(service, settings)
    if last is not None:
        entry = last.entry if last.entry == entry else entry
        rule = last.rule if last.rule == rule else rule
    return Made(service, private.ingress_gateways, settings, entry, rule)
