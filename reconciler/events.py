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
from federation.resources import KubeObject
from federation.store import ObjectStore, StoreError
from federation.timestamps import format_time

log = logging.getLogger(__name__)

COMPONENT = "istio-federation-reconciler"
NORMAL = "Normal"
WARNING = "Warning"
MAX_MESSAGE = 1024  # the apiserver truncates longer Event messages anyway


# The apiserver accepts an Event about a cluster-scoped object only in namespace `default` (or
# none) with an empty involvedObject.namespace; anywhere else it answers "involvedObject.namespace:
# Invalid value: \"\": does not match event.namespace". The reconciler's RBAC grants exactly that.
CLUSTER_SCOPED_EVENT_NAMESPACE = "default"


class EventRecorder:
    """Records Events about IstioFederations, which are cluster-scoped, in namespace ``default``."""

    def __init__(
        self,
        store: ObjectStore,
        namespace: str,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self.namespace = namespace
        self.clock = clock or (lambda: datetime.now(UTC))

    def record(self, federation: KubeObject, *, event_type: str, reason: str, message: str) -> None:
        name = resources.name_of(federation)
        log.log(
            logging.WARNING if event_type == WARNING else logging.INFO,
            "event %s federation=%s: %s",
            reason,
            name,
            message,
        )
        stamp = format_time(self.clock())
        meta = resources.meta(federation)
        # `kubectl describe istiofederation NAME` finds them there through involvedObject.
        event: KubeObject = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{name}.{uuid.uuid4().hex[:16]}", "namespace": CLUSTER_SCOPED_EVENT_NAMESPACE},
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
