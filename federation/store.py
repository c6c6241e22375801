"""The one small interface through which every component reads and writes cluster objects.

Two backends implement it (in ``objectstore/``): the Kubernetes API, fed by list and watch, and a
state directory of YAML files.  Reads are served from an in-memory cache, never by a LIST per
call; cross-object questions are answered by the :class:`federation.index.ObjectIndex` the cache
keeps current.  Objects are plain dicts, as the API serves them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from federation.index import ObjectIndex
from federation.resources import KubeObject, Resource


@dataclass(frozen=True)
class Watch:
    """One resource a store keeps cached: optionally only one namespace, a label selector, or a
    field selector (``metadata.name=istio``: what RBAC needs to authorize a list or watch against a
    rule that names ``resourceNames``)."""

    resource: Resource
    namespace: str | None = None
    label_selector: str | None = None
    field_selector: str | None = None


@dataclass(frozen=True)
class Outage:
    """A watch that has been failing: for how long (seconds, since the failure was noticed) and why."""

    seconds: float
    what: str


class StoreError(Exception):
    """A request the store could not carry out; ``status`` is the API's Status body, if any."""

    def __init__(self, message: str, *, code: int = 0, status: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status or {}

    @property
    def reason(self) -> str:
        return str(self.status.get("reason") or "")


class NotFound(StoreError):
    """404: the object does not exist."""


class Conflict(StoreError):
    """409: a stale resourceVersion, or the object already exists."""


class Rejected(StoreError):
    """Any other 4xx: validation or admission refused the write. Retrying will not help."""


class Unavailable(StoreError):
    """429, 5xx or a connection failure: worth retrying with backoff."""


EventHandler = Callable[[str, KubeObject], None]
"""Called with ``ADDED``, ``MODIFIED`` or ``DELETED`` and the object, after the cache changed."""


@dataclass
class WriteCounter:
    """Counts the writes a store made, by verb; the reconciler's idempotency is measured with it."""

    by_verb: dict[str, int] = field(default_factory=dict)

    def add(self, verb: str) -> None:
        self.by_verb[verb] = self.by_verb.get(verb, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.by_verb.values())


class ObjectStore(Protocol):
    index: ObjectIndex
    writes: WriteCounter

    def start(self) -> None:
        """Begin the initial sync and keep the cache current in the background."""

    def stop(self) -> None:
        """Stop background work; safe to call twice."""

    @property
    def synced(self) -> bool:
        """True once every watched resource has been fully listed at least once."""

    def wait_synced(self, timeout: float) -> bool: ...

    def outage(self) -> Outage | None:
        """The longest-running failure of a watch since it was noticed, or None while every watch
        is current. A cache that was synced once stays readable during an outage, but it may be stale."""

    def subscribe(self, handler: EventHandler) -> None: ...

    def get(self, resource: Resource, namespace: str, name: str) -> KubeObject | None:
        """The cached object, or None. ``namespace`` is "" for cluster-scoped kinds."""

    def list(
        self, resource: Resource, namespace: str | None = None, label_selector: str | None = None
    ) -> list[KubeObject]:
        """Cached objects, sorted by namespace and name. ``namespace`` None means every namespace the
        store watches: a store whose watches of ``resource`` are namespaced answers for those only."""

    def read(self, resource: Resource, namespace: str, name: str) -> KubeObject | None:
        """A fresh read from the source of truth, bypassing the cache (used after a 409)."""

    def create(self, obj: KubeObject) -> KubeObject: ...

    def update(self, obj: KubeObject) -> KubeObject:
        """Replace the object; its ``metadata.resourceVersion`` must be current (else Conflict)."""

    def patch_status(self, resource: Resource, namespace: str, name: str, patch: dict[str, Any]) -> KubeObject:
        """JSON merge patch of ``{"status": …}`` through the status subresource."""

    def delete(self, resource: Resource, namespace: str, name: str) -> None: ...


def look_list(
    store: ObjectStore, resource: Resource, namespace: str | None = None, label_selector: str | None = None
) -> list[KubeObject]:
    """:meth:`ObjectStore.list` for a caller that only looks: the store's own cached objects, without
    copies, where it can lend them (``peek_list``). A sync looks at every owned object and every
    federation; copying them each time was most of an unchanged sync's cost. Never modify the result."""
    peek_list = getattr(store, "peek_list", None)
    found: list[KubeObject] = (peek_list if callable(peek_list) else store.list)(resource, namespace, label_selector)
    return found
