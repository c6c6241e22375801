"""What a watch is made of in the double: the events kept in its history, and one open watch.

An :class:`Event` is one change (with the object before and after); a :class:`Watcher` is one
client's watch, with its filters and the queue its events wait in until the HTTP layer streams
them.  A watcher that fell too far behind is ``dropped``, and its stream is cut.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from typing import Any

from federation import selectors
from federation.resources import KubeObject, Resource


@dataclass
class Event:
    rv: int
    resource: Resource
    type: str
    old: KubeObject | None
    new: KubeObject | None


@dataclass
class Watcher:
    resource: Resource
    version: str
    namespace: str | None
    labels: selectors.Selector
    field_filter: dict[str, tuple[str, bool]]
    events: queue.Queue[Event] = field(default_factory=queue.Queue)
    dropped: threading.Event = field(default_factory=threading.Event)

    def selects(self, obj: KubeObject | None) -> bool:
        if obj is None:
            return False
        meta = obj.get("metadata") or {}
        if self.namespace is not None and meta.get("namespace", "") != self.namespace:
            return False
        return field_match(self.field_filter, meta) and self.labels.matches(meta.get("labels") or {})


def field_match(filters: dict[str, tuple[str, bool]], meta: dict[str, Any]) -> bool:
    for key, (value, equal) in filters.items():
        actual = str(meta.get(key.removeprefix("metadata.")) or "")
        if (actual == value) != equal:
            return False
    return True
