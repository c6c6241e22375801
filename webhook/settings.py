"""The webhook's settings, as given on the command line."""

from __future__ import annotations

from dataclasses import dataclass

from federation.validation.attributes import DEFAULT_RECONCILER_USERNAME
from objectstore.factory import StoreSource


@dataclass(frozen=True)
class WebhookSettings:
    local_trust_domain: str
    source: StoreSource
    reconciler_username: str = DEFAULT_RECONCILER_USERNAME
    ip_autoallocate: bool = False
