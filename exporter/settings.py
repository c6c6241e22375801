"""The exporter's settings (from the command line) and the objects it therefore watches."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from exporter import published_gateways
from federation import ownership, resources, tokens
from federation.documents.ingress_gateways import IngressGateway
from federation.spiffe import DEFAULT_REFRESH_HINT_SECONDS
from federation.store import Watch

DEFAULT_NAMESPACE = "istio-federation"


@dataclass(frozen=True, kw_only=True)
class Settings:
    cluster_uuid: str
    cluster_domain: str
    namespace: str = DEFAULT_NAMESPACE
    gateway_namespace: str = DEFAULT_NAMESPACE
    gateway_selector: str = published_gateways.DEFAULT_GATEWAY_SELECTOR
    inlet: str = published_gateways.INLET_LOAD_BALANCER
    advertise: tuple[IngressGateway, ...] = ()
    keypair_dir: Path | None = None
    token_leeway: int = tokens.DEFAULT_LEEWAY_SECONDS
    spiffe_refresh_hint: int = DEFAULT_REFRESH_HINT_SECONDS


def watches(settings: Settings) -> list[Watch]:
    """Exactly what the documents are built from, so RBAC and caches stay as small as possible."""
    result = [
        # Existence, not "=": a Service labelled with a non-empty value is then seen and reported.
        Watch(resources.SERVICE, None, ownership.PUBLIC_SERVICE_LABEL),
        Watch(resources.CONFIG_MAP, settings.namespace),
        Watch(resources.ISTIO_FEDERATION),
    ]
    if not settings.advertise:
        result.append(Watch(resources.SERVICE, settings.gateway_namespace, settings.gateway_selector))
        if settings.inlet == published_gateways.INLET_NODE_PORT:
            result.append(Watch(resources.POD, settings.gateway_namespace, settings.gateway_selector))
            result.append(Watch(resources.NODE))
    if settings.keypair_dir is None:
        result.append(Watch(resources.SECRET, settings.namespace))
    return result
