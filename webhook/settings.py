"""The webhook's settings, as given on the command line."""

from __future__ import annotations

from dataclasses import dataclass

from federation.validation.attributes import DEFAULT_RECONCILER_USERNAME
from objectstore.factory import StoreSource

DEFAULT_MAX_CACHE_STALENESS = 5.0


@dataclass(frozen=True)
class WebhookSettings:
    local_trust_domain: str
    source: StoreSource
    reconciler_username: str = DEFAULT_RECONCILER_USERNAME
    ip_autoallocate: bool = True  # Istio 1.31's default (PILOT_ENABLE_IP_AUTOALLOCATE)
    # Seconds a watch may have been failing before /readyz and every review refuse (code 503):
    # beyond it the cache may miss objects, and the cross-object checks would answer from it.
    max_cache_staleness: float = DEFAULT_MAX_CACHE_STALENESS
