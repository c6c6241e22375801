"""What the exporter leaves out, and why: one :class:`Skip` per object or port not exported.

Every object or port left out gets a :class:`Skip` with a fixed ``reason`` (a metric label) and a
sentence naming the object and the fix (a log line): nothing is dropped silently, and nothing is
exported half-broken.
"""

from __future__ import annotations

from dataclasses import dataclass

from federation import resources
from federation.resources import KubeObject


@dataclass(frozen=True, order=True)
class Skip:
    """One thing not exported. ``reason`` is a fixed word; ``detail`` is the log sentence."""

    kind: str
    reason: str
    detail: str


def object_name(obj: KubeObject) -> str:
    """``namespace/name``, as a skip's sentence names the object it is about."""
    return f"{resources.namespace_of(obj)}/{resources.name_of(obj)}"
