"""What a validator sees: the admission request's attributes and the context around it."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from federation.index import ObjectIndex
from federation.resources import KubeObject

DEFAULT_RECONCILER_USERNAME = "system:serviceaccount:istio-federation:istio-federation-reconciler"


@dataclass(frozen=True)
class Attributes:
    operation: str  # CREATE, UPDATE, DELETE or CONNECT
    group: str
    resource: str  # plural, e.g. "serviceentries"
    kind: str
    name: str
    namespace: str
    obj: KubeObject | None
    old: KubeObject | None
    username: str
    dry_run: bool = False

    @property
    def subject(self) -> KubeObject:
        """The object the request is about: the new one, or the old one for DELETE."""
        return self.obj if self.obj is not None else (self.old or {})


@dataclass(frozen=True)
class Context:
    index: ObjectIndex
    local_trust_domain: str
    reconciler_username: str = DEFAULT_RECONCILER_USERNAME
    # Istio 1.31 allocates VIPs for every resolution but NONE by default (PILOT_ENABLE_IP_AUTOALLOCATE).
    ip_autoallocate: bool = True
    now: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(datetime.UTC))
