"""``--dry-run`` as a store: every read goes to the real cluster, every write is recorded instead.

The reconciler runs unchanged on top of a :class:`DryRunStore`: it fetches for real, decides
against the cluster as it is and makes its writes, which land here as :class:`IntendedWrite`
records (Events included) and never reach the cluster.  Reads do not see the recorded writes,
exactly as a real pass decides every object against the state it started from.
"""

from __future__ import annotations

import copy
import logging
import threading
from dataclasses import dataclass
from typing import Any

from federation import mergepatch, resources
from federation.index import ObjectIndex
from federation.resources import KubeObject, Resource
from federation.store import EventHandler, ObjectStore, Outage, WriteCounter

log = logging.getLogger(__name__)

CREATE, UPDATE, PATCH_STATUS, DELETE = "create", "update", "patch", "delete"


@dataclass(frozen=True)
class IntendedWrite:
    """One write the reconciler made that a real run would have sent to the cluster."""

    verb: str  # create | update | patch (of the status subresource) | delete
    kind: str
    namespace: str
    name: str
    body: dict[str, Any] | None = None  # the object; for a patch, the merge patch; None for a delete

    @property
    def target(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}"


class DryRunStore:
    """An ObjectStore that reads through to ``inner`` and records writes instead of making them."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.index: ObjectIndex = inner.index
        self.writes = WriteCounter()  # writes this store made: none, ever
        self._intended: list[IntendedWrite] = []
        self._lock = threading.Lock()  # federations are synced concurrently

    @property
    def intended(self) -> list[IntendedWrite]:
        """Every recorded write, in the order it was made."""
        with self._lock:
            return list(self._intended)

    @property
    def events(self) -> list[KubeObject]:
        """The Events a real run would have recorded."""
        return [write.body for write in self.intended if write.kind == resources.EVENT.kind and write.body]

    def _record(self, write: IntendedWrite) -> None:
        log.debug("dry run: not sent: %s %s", write.verb, write.target)
        with self._lock:
            self._intended.append(write)

    # -- reads and lifecycle: the real store's ----------------------------------------------------

    def start(self) -> None:
        self.inner.start()

    def stop(self) -> None:
        self.inner.stop()

    @property
    def synced(self) -> bool:
        return self.inner.synced

    def wait_synced(self, timeout: float) -> bool:
        return self.inner.wait_synced(timeout)

    def outage(self) -> Outage | None:
        return self.inner.outage()

    def subscribe(self, handler: EventHandler) -> None:
        self.inner.subscribe(handler)

    def get(self, resource: Resource, namespace: str, name: str) -> KubeObject | None:
        return self.inner.get(resource, namespace, name)

    def list(
        self, resource: Resource, namespace: str | None = None, label_selector: str | None = None
    ) -> list[KubeObject]:
        return self.inner.list(resource, namespace, label_selector)

    def read(self, resource: Resource, namespace: str, name: str) -> KubeObject | None:
        return self.inner.read(resource, namespace, name)

    # -- writes: recorded, answered as the cluster would ------------------------------------------

    def create(self, obj: KubeObject) -> KubeObject:
        self._record(IntendedWrite(CREATE, str(obj.get("kind")), *_where(obj), body=copy.deepcopy(obj)))
        return copy.deepcopy(obj)

    def update(self, obj: KubeObject) -> KubeObject:
        self._record(IntendedWrite(UPDATE, str(obj.get("kind")), *_where(obj), body=copy.deepcopy(obj)))
        return copy.deepcopy(obj)

    def patch_status(self, resource: Resource, namespace: str, name: str, patch: dict[str, Any]) -> KubeObject:
        self._record(IntendedWrite(PATCH_STATUS, resource.kind, namespace, name, body=copy.deepcopy(patch)))
        current = self.inner.get(resource, namespace, name) or {}
        return dict(mergepatch.apply(current, patch))

    def delete(self, resource: Resource, namespace: str, name: str) -> None:
        self._record(IntendedWrite(DELETE, resource.kind, namespace, name))


def _where(obj: KubeObject) -> tuple[str, str]:
    return resources.namespace_of(obj), resources.name_of(obj)
