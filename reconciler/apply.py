"""Make a federation's owned objects match the desired ones, writing only the differences.

Rules, each one a lesson from peers' bug trackers:

* What we own is found by the ownership label selector, never by name alone.  An object without our
  labels (or owned by another federation) is never modified or deleted; a desired object whose name
  is taken by one is reported for that service and skipped.
* Deletions (garbage collection) happen only when the caller says the view is complete: after a
  complete, valid private fetch (or an explicit expiry).
* A write refused by validation or admission (any 4xx Status but 404/409) is recorded for that
  service only; the other services carry on.
* 409/404 are retried with a fresh read, 429/5xx/connection errors with backoff: ``retry.Retry``.
* In dry-run mode the same decisions are made and returned as a plan, and nothing is written.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from federation import ownership, resources
from federation.resources import KubeObject, Resource
from federation.store import NotFound, ObjectStore, Rejected, StoreError, Unavailable
from reconciler.retry import Interrupted, Retry

log = logging.getLogger(__name__)

MANAGED_KINDS = (resources.SERVICE_ENTRY, resources.DESTINATION_RULE)


@dataclass(frozen=True)
class FieldChange:
    path: str
    old: Any
    new: Any


@dataclass(frozen=True)
class Action:
    """One write: planned in dry-run, performed otherwise."""

    verb: str  # create | update | delete
    resource: Resource
    namespace: str
    name: str
    hostname: str
    obj: KubeObject | None = None
    changes: tuple[FieldChange, ...] = ()

    @property
    def target(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.resource.kind} {where}"


@dataclass
class ApplyOutcome:
    actions: list[Action] = field(default_factory=list)
    denied: dict[str, str] = field(default_factory=dict)  # hostname -> apiserver message
    blocked: dict[str, str] = field(default_factory=dict)  # hostname -> why we may not touch the object
    failed: dict[str, str] = field(default_factory=dict)  # hostname -> error after retries
    gc_ran: bool = False

    @property
    def complete(self) -> bool:
        return not self.failed


def field_diff(old: Any, new: Any, path: str = "") -> list[FieldChange]:
    """Leaf-level differences, with Kubernetes-style paths (``spec.endpoints[0].address``)."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[FieldChange] = []
        for key in sorted(set(old) | set(new), key=str):
            child = f"{path}.{key}" if path else str(key)
            if key not in new:
                changes.append(FieldChange(child, old[key], None))
            elif key not in old:
                changes.append(FieldChange(child, None, new[key]))
            else:
                changes.extend(field_diff(old[key], new[key], child))
        return changes
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        changes = []
        for position, (left, right) in enumerate(zip(old, new, strict=True)):
            changes.extend(field_diff(left, right, f"{path}[{position}]"))
        return changes
    return [] if old == new else [FieldChange(path, old, new)]


def hostname_of(obj: KubeObject) -> str:
    spec = resources.spec(obj)
    hosts = spec.get("hosts")
    if isinstance(hosts, list) and hosts and isinstance(hosts[0], str):
        return hosts[0]
    host = spec.get("host")
    return host if isinstance(host, str) else resources.name_of(obj)


def merged_update(current: KubeObject, desired: KubeObject) -> KubeObject | None:
    """``current`` changed to match ``desired`` in the fields we own, or None when it already does.

    Labels and annotations others added are kept: only ours are set.
    """
    current_meta = resources.meta(current)
    desired_meta = resources.meta(desired)
    labels = dict(current_meta.get("labels") or {})
    annotations = dict(current_meta.get("annotations") or {})
    wanted_labels = {**labels, **desired_meta.get("labels", {})}
    wanted_annotations = {**annotations, **desired_meta.get("annotations", {})}
    if current.get("spec") == desired.get("spec") and labels == wanted_labels and annotations == wanted_annotations:
        return None
    updated = copy.deepcopy(current)
    updated["apiVersion"] = desired["apiVersion"]
    updated["spec"] = copy.deepcopy(desired["spec"])
    updated["metadata"]["labels"] = wanted_labels
    updated["metadata"]["annotations"] = wanted_annotations
    return updated


def _compare_view(obj: KubeObject) -> dict[str, Any]:
    """The parts of an object a plan shows a diff of."""
    meta = resources.meta(obj)
    return {
        "metadata": {"labels": meta.get("labels") or {}, "annotations": meta.get("annotations") or {}},
        "spec": obj.get("spec"),
    }


def _resource_of(obj: KubeObject) -> Resource:
    descriptor = resources.by_kind(str(obj.get("kind")))
    assert descriptor is not None, f"unknown kind {obj.get('kind')}"
    return descriptor


def _write_order(obj: KubeObject) -> tuple[str, bool]:
    return hostname_of(obj), obj.get("kind") != resources.SERVICE_ENTRY.kind


class Blocked(Exception):
    """The desired name is taken by an object we must not touch."""


class Applier:
    def __init__(
        self,
        store: ObjectStore,
        retry: Retry,
        *,
        on_write: Callable[[str, str], None] | None = None,
    ) -> None:
        self.store = store
        self.retry = retry
        self.on_write = on_write  # (federation, verb): metrics

    def owned(self, federation: str) -> list[KubeObject]:
        """Every object of ``federation``, in any namespace, found only through the ownership selector."""
        objects: list[KubeObject] = []
        for resource in MANAGED_KINDS:
            objects.extend(
                obj
                for obj in self.store.list(resource, None, ownership.selector(federation))
                if ownership.owning_federation(obj) == federation
            )
        return objects

    def apply(
        self, federation: str, desired: Sequence[KubeObject], *, gc: bool, dry_run: bool = False
    ) -> ApplyOutcome:
        outcome = ApplyOutcome()
        wanted_keys = {(_resource_of(obj).kind, resources.namespace_of(obj), resources.name_of(obj)) for obj in desired}
        # ServiceEntry first: if admission refuses it, its DestinationRule is not created alone.
        ordered = sorted(desired, key=_write_order)
        for obj in ordered:
            hostname = hostname_of(obj)
            if hostname in outcome.denied or hostname in outcome.blocked or hostname in outcome.failed:
                continue
            try:
                action = self._ensure(federation, obj, hostname, dry_run=dry_run)
            except Rejected as error:
                outcome.denied[hostname] = str(error)
                log.warning(
                    "denied %s %s/%s federation=%s host=%s: %s",
                    obj["kind"], resources.namespace_of(obj), resources.name_of(obj), federation, hostname, error,
                )
                continue
            except Blocked as error:
                outcome.blocked[hostname] = str(error)
                log.warning("skipped %s federation=%s host=%s: %s", obj["kind"], federation, hostname, error)
                continue
            except (Unavailable, StoreError) as error:
                outcome.failed[hostname] = str(error)
                log.error("failed %s federation=%s host=%s: %s", obj["kind"], federation, hostname, error)
                continue
            if action is not None:
                outcome.actions.append(action)
        if not gc:
            return outcome
        for obj in sorted(self.owned(federation), key=_write_order):
            resource = _resource_of(obj)
            key = (resource.kind, resources.namespace_of(obj), resources.name_of(obj))
            if key in wanted_keys:
                continue
            hostname = hostname_of(obj)
            action = Action("delete", resource, key[1], key[2], hostname)
            if not dry_run:
                try:
                    self._delete(federation, action)
                except Rejected as error:
                    outcome.denied[hostname] = str(error)
                    log.warning("denied delete of %s federation=%s: %s", action.target, federation, error)
                    continue
                except StoreError as error:
                    outcome.failed[hostname] = str(error)
                    log.error("failed delete of %s federation=%s: %s", action.target, federation, error)
                    continue
            outcome.actions.append(action)
        outcome.gc_ran = True
        return outcome

    def _ensure(self, federation: str, desired: KubeObject, hostname: str, *, dry_run: bool) -> Action | None:
        resource = _resource_of(desired)
        namespace, name = resources.namespace_of(desired), resources.name_of(desired)

        def attempt(fresh: bool) -> Action | None:
            self.retry.check_stop()
            current = self.store.read(resource, namespace, name) if fresh else self.store.get(resource, namespace, name)
            if current is None:
                action = Action("create", resource, namespace, name, hostname, desired)
                if not dry_run:
                    self.store.create(copy.deepcopy(desired))
                    self._written(federation, action)
                return action
            owner = ownership.owning_federation(current)
            if owner != federation:
                who = f"IstioFederation {owner}" if owner else "nobody we know (it has no istio-federation labels)"
                raise Blocked(
                    f"{resource.kind} {namespace}/{name} already exists and is managed by {who}; "
                    "it is left untouched: remove it or rename it to let this federation import the service"
                )
            updated = merged_update(current, desired)
            if updated is None:
                return None
            changes = tuple(field_diff(_compare_view(current), _compare_view(updated)))
            action = Action("update", resource, namespace, name, hostname, updated, changes)
            if not dry_run:
                self.store.update(updated)
                self._written(federation, action)
            return action

        return self.retry.run(attempt, what=f"{resource.kind} {namespace}/{name}")

    def _delete(self, federation: str, action: Action) -> None:
        def attempt(fresh: bool) -> None:
            self.retry.check_stop()
            current = self.store.read(action.resource, action.namespace, action.name) if fresh else None
            if fresh and (current is None or ownership.owning_federation(current) != federation):
                return  # gone, or no longer ours: nothing to delete
            try:
                self.store.delete(action.resource, action.namespace, action.name)
            except NotFound:
                return
            self._written(federation, action)

        self.retry.run(attempt, what=f"delete {action.target}")

    def _written(self, federation: str, action: Action) -> None:
        past = action.verb.removesuffix("e") + "ed"
        log.info("%s %s federation=%s host=%s", past, action.target, federation, action.hostname)
        if self.on_write is not None:
            self.on_write(federation, action.verb)


__all__ = ["Action", "Applier", "ApplyOutcome", "Blocked", "FieldChange", "Interrupted", "field_diff"]
