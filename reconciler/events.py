"""Kubernetes Events on an IstioFederation: one line per thing an admin should notice.

Events are emitted only on transitions (a host newly refused, a service newly denied, a fetch that
starts or stops failing), never on every sync, so a steady state writes nothing.  An Event that
cannot be written is logged and forgotten: it must never fail a sync.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from federation import resources
from federation.meshconfig import format_time
from federation.resources import KubeObject
from federation.store import ObjectStore, StoreError

log = logging.getLogger(__name__)

COMPONENT = "istio-federation-reconciler"
NORMAL = "Normal"
WARNING = "Warning"
MAX_MESSAGE = 1024  # the apiserver truncates longer Event messages anyway


class EventRecorder:
    def __init__(
        self,
        store: ObjectStore,
        namespace: str,
        *,
        clock: Callable[[], datetime] | None = None,
        dry_run: bool = False,
    ) -> None:
        self.store = store
        self.namespace = namespace
        self.clock = clock or (lambda: datetime.now(UTC))
        self.dry_run = dry_run

    def record(self, federation: KubeObject, *, event_type: str, reason: str, message: str) -> None:
        name = resources.name_of(federation)
        log.log(
            logging.WARNING if event_type == WARNING else logging.INFO,
            "event %s federation=%s: %s",
            reason,
            name,
            message,
        )
        if self.dry_run:
            return
        stamp = format_time(self.clock())
        meta = resources.meta(federation)
        # A cluster-scoped object's Events may live in any namespace; `kubectl describe` finds them
        # through involvedObject, and our RBAC only allows our own namespace.
        event: KubeObject = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{name}.{uuid.uuid4().hex[:16]}", "namespace": self.namespace},
            "involvedObject": {
                "apiVersion": resources.ISTIO_FEDERATION.api_version,
                "kind": resources.ISTIO_FEDERATION.kind,
                "name": name,
                **({"uid": meta["uid"]} if meta.get("uid") else {}),
                **({"resourceVersion": meta["resourceVersion"]} if meta.get("resourceVersion") else {}),
            },
            "reason": reason,
            "message": message[:MAX_MESSAGE],
            "type": event_type,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            self.store.create(event)
        except StoreError as error:
            log.warning("could not record event %s for federation=%s: %s", reason, name, error)
