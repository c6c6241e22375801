"""Where each desired object goes in the apply step: its kind, key and host, and the hosts' write order.

The apply step (``reconciler.apply``) writes one host's objects in order, ServiceEntry first (if
admission refuses it, its DestinationRule is not created alone), and hosts independently.  Working
out each object's kind, key and host costs microseconds, which at 10,000 objects per federation is
most of a sync in which one service changed.  A plan that keeps the objects of its unchanged
services (``federation.desired``) lets :func:`layout` keep what it worked out for them as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from federation import resources
from federation.istio.hosts import hosts_of
from federation.resources import KubeObject, Resource

MANAGED_KINDS = (resources.SERVICE_ENTRY, resources.DESTINATION_RULE)
_KINDS = {resource.kind: resource for resource in MANAGED_KINDS}

ObjectKey = tuple[str, str, str]  # kind, namespace, name


def hostname_of(obj: KubeObject) -> str:
    """The host a managed object is for (its first host), or its name when it declares none."""
    hosts = hosts_of(obj)
    return hosts[0] if hosts else resources.name_of(obj)


def resource_of(obj: KubeObject) -> Resource:
    kind = str(obj.get("kind"))
    descriptor = _KINDS.get(kind) or resources.by_kind(kind)
    assert descriptor is not None, f"unknown kind {kind}"
    return descriptor


@dataclass(frozen=True)
class Placed:
    """One desired object, and what the apply step keeps asking of it, worked out once."""

    obj: KubeObject
    resource: Resource
    key: ObjectKey
    hostname: str

    @property
    def order(self) -> tuple[str, bool]:
        """Write order: by host, and within a host the ServiceEntry first."""
        return self.hostname, self.key[0] != resources.SERVICE_ENTRY.kind


def place(obj: KubeObject) -> Placed:
    resource = resource_of(obj)
    key = (resource.kind, resources.namespace_of(obj), resources.name_of(obj))
    return Placed(obj, resource, key, hostname_of(obj))


@dataclass(frozen=True)
class Layout:
    """A plan's objects placed: the keys it covers, and its objects by host in write order."""

    desired: Sequence[KubeObject]  # the plan it was made for
    keys: frozenset[ObjectKey]
    by_host: dict[str, list[Placed]]
    # By id() of the object. Each entry holds its object, so no other object can take that id
    # while the entry is kept.
    placed: dict[int, Placed]


def layout(desired: Sequence[KubeObject], last: Layout | None = None) -> Layout:
    """The layout of ``desired``: ``last`` itself for the same plan, else made anew, taking each object
    that ``last`` placed (the very object, not an equal one) from it."""
    if last is not None and last.desired is desired:
        return last
    known = last.placed if last is not None else {}
    placed: dict[int, Placed] = {}
    for obj in desired:
        one = known.get(id(obj))
        placed[id(obj)] = one if one is not None and one.obj is obj else place(obj)
    by_host: dict[str, list[Placed]] = {}
    for one in sorted(placed.values(), key=lambda one: one.order):
        by_host.setdefault(one.hostname, []).append(one)
    return Layout(desired, frozenset(one.key for one in placed.values()), by_host, placed)
