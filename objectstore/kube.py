"""The Kubernetes API backend of :class:`federation.store.ObjectStore`.

Reads come from the cache that the list-then-watch loops keep current (:mod:`objectstore.kubewatch`,
which also tracks outages); a resource nobody watches is read with a LIST or GET per call.  Writes
go to the API (:mod:`objectstore.kubeapi`) and map its Status codes onto :mod:`federation.store`
errors.
"""

from __future__ import annotations

import builtins
import copy
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import kubernetes.client

from federation import resources, selectors
from federation.resources import KubeObject, Resource
from federation.store import Rejected, Watch, WriteCounter
from objectstore.kubeapi import call, resource_path, status_error, with_type
from objectstore.kubewatch import WatchedCache, WatchState

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
_UNSEEN = object()


@dataclass(frozen=True)
class _Listing:
    objects: builtins.list[KubeObject]
    live: bool  # fetched now for this caller, not the cache's own objects


class KubernetesStore(WatchedCache):
    """An :class:`~federation.store.ObjectStore` over the Kubernetes API, fed by list and watch."""

    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        watches: builtins.list[Watch],
        *,
        name: str = "store",
        watch_timeout: int = 10,
        request_timeout: float = 30.0,
        min_backoff: float = 0.1,
        max_backoff: float = 1.0,
        read_grace: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            api_client,
            watches,
            name=name,
            watch_timeout=watch_timeout,
            request_timeout=request_timeout,
            min_backoff=min_backoff,
            max_backoff=max_backoff,
            read_grace=read_grace,
            clock=clock,
        )
        self.writes = WriteCounter()
        # Per thread: the reconciler's writes run concurrently, and each caller asks about its own.
        self._last_write = threading.local()

    @property
    def last_warnings(self) -> builtins.list[str]:
        """The API's warnings about the last write made by the calling thread."""
        warnings: builtins.list[str] = getattr(self._last_write, "warnings", [])
        return builtins.list(warnings)

    # -- reads ---------------------------------------------------------------------------------

    def _covering(self, resource: Resource, namespace: str | None) -> builtins.list[WatchState]:
        return [
            state
            for state in self._states
            if _same_resource(state.watch.resource, resource)
            and (state.watch.namespace is None or state.watch.namespace == namespace)
        ]

    def get(self, resource: Resource, namespace: str, name: str) -> KubeObject | None:
        found = self._cached(resource, namespace, name)
        if found is _UNSEEN:
            return self.read(resource, namespace, name)
        return copy.deepcopy(found) if isinstance(found, dict) else None

    def peek(self, resource: Resource, namespace: str, name: str) -> KubeObject | None:
        """The cached object, without a copy (never modify it) and without asking the API: None also
        when no watch covers the name (an object outside our label selector).  For a writer that
        handles the 409 of a create by reading fresh (the Applier), that saves a GET per create."""
        found = self._cached(resource, namespace, name)
        return found if isinstance(found, dict) else None

    def _cached(self, resource: Resource, namespace: str, name: str) -> KubeObject | object | None:
        """The cached object, None for a known miss, or _UNSEEN when no watch can tell."""
        states = self._covering(resource, namespace if resource.namespaced else None)
        key = (namespace if resource.namespaced else "", name)
        with self._lock:
            for state in states:
                if key in state.cache:
                    return state.cache[key]
            # A watch that sees every object (or exactly this name) answers with a miss too.
            if any(state.listed and _sees(state.watch, name) for state in states):
                return None
        return _UNSEEN

    def list(
        self, resource: Resource, namespace: str | None = None, label_selector: str | None = None
    ) -> builtins.list[KubeObject]:
        found = self._listed(resource, namespace, label_selector)
        return found.objects if found.live else [copy.deepcopy(obj) for obj in found.objects]

    def peek_list(
        self, resource: Resource, namespace: str | None = None, label_selector: str | None = None
    ) -> builtins.list[KubeObject]:
        """:meth:`list` without the copies, for callers that only look: never modify what it returns."""
        return self._listed(resource, namespace, label_selector).objects

    def _listed(self, resource: Resource, namespace: str | None, label_selector: str | None) -> _Listing:
        """From the cache of the watches that cover it, else a live LIST (its objects are fresh)."""
        selector = selectors.parse(label_selector)
        # namespace None: every namespace this store watches (see ObjectStore.list).
        states = [
            state
            for state in self._states
            if _same_resource(state.watch.resource, resource)
            and (namespace is None or state.watch.namespace is None or state.watch.namespace == namespace)
        ]
        if not states:
            return _Listing(self._live_list(resource, namespace, label_selector), live=True)
        return _Listing(self._cached_list(states, resource, namespace, selector), live=False)

    def _cached_list(
        self,
        states: builtins.list[WatchState],
        resource: Resource,
        namespace: str | None,
        selector: selectors.Selector,
    ) -> builtins.list[KubeObject]:
        found: dict[tuple[str, str], KubeObject] = {}
        with self._lock:
            for state in states:
                for key, obj in state.cache.items():
                    if namespace is not None and resource.namespaced and key[0] != namespace:
                        continue
                    if selector.matches(resources.labels(obj)):
                        found[key] = obj
            return [found[key] for key in sorted(found)]

    def _live_list(
        self, resource: Resource, namespace: str | None, label_selector: str | None
    ) -> builtins.list[KubeObject]:
        """For resources nobody watches: correct, but a LIST per call, so watch what you read often."""
        query = [("labelSelector", label_selector)] if label_selector else []
        response = call(self.api, "GET", resource_path(resource, namespace), timeout=self.request_timeout, query=query)
        if response.status != 200:
            raise status_error(response, f"list {resource.group_resource}")
        items = [with_type(item, resource) for item in response.body.get("items") or []]
        return sorted(items, key=lambda obj: (resources.namespace_of(obj), resources.name_of(obj)))

    def read(self, resource: Resource, namespace: str, name: str) -> KubeObject | None:
        response = call(self.api, "GET", resource_path(resource, namespace, name), timeout=self.request_timeout)
        if response.status == 404:
            return None
        if response.status != 200:
            raise status_error(response, f"get {resource.group_resource} {name!r}")
        return with_type(response.body, resource)

    # -- writes --------------------------------------------------------------------------------

    def create(self, obj: KubeObject) -> KubeObject:
        resource = _resource_of(obj)
        path = resource_path(resource, resources.namespace_of(obj))
        return self._write("create", "POST", path, obj, resource=resource, name=resources.name_of(obj))

    def update(self, obj: KubeObject) -> KubeObject:
        resource = _resource_of(obj)
        name = resources.name_of(obj)
        path = resource_path(resource, resources.namespace_of(obj), name)
        return self._write("update", "PUT", path, obj, resource=resource, name=name)

    def patch_status(self, resource: Resource, namespace: str, name: str, patch: dict[str, Any]) -> KubeObject:
        path = resource_path(resource, namespace, name, "status")
        return self._write("patch", "PATCH", path, patch, resource=resource, name=name, content_type=MERGE_PATCH)

    def delete(self, resource: Resource, namespace: str, name: str) -> None:
        self._write("delete", "DELETE", resource_path(resource, namespace, name), None, resource=resource, name=name)

    def _write(
        self,
        verb: str,
        method: str,
        path: str,
        body: Any,
        *,
        resource: Resource,
        name: str,
        content_type: str = "application/json",
    ) -> KubeObject:
        response = call(self.api, method, path, timeout=self.request_timeout, body=body, content_type=content_type)
        self._last_write.warnings = response.warnings
        for warning in response.warnings:
            log.warning(
                "%s: %s %s %r: warning from the API: %s", self.name, verb, resource.group_resource, name, warning
            )
        if response.status not in (200, 201, 202):
            raise status_error(response, f"{verb} {resource.group_resource} {name!r}")
        self.writes.add(verb)
        body_out = response.body if isinstance(response.body, dict) else {}
        if body_out.get("kind") == "Status":
            return body_out
        return with_type(body_out, resource)


def _sees(watch: Watch, name: str) -> bool:
    """Whether the watch's cache holds every object of its scope named ``name``."""
    if watch.label_selector is not None:
        return False
    if watch.field_selector is None:
        return True
    return watch.field_selector == f"metadata.name={name}"


def _same_resource(left: Resource, right: Resource) -> bool:
    return left.group == right.group and left.plural == right.plural


def _resource_of(obj: KubeObject) -> Resource:
    kind = str(obj.get("kind") or "")
    resource = resources.by_kind(kind)
    if resource is None:
        raise Rejected(f"unknown kind {kind!r}: the store handles {', '.join(r.kind for r in resources.ALL)}")
    group, _, version = str(obj.get("apiVersion") or "").rpartition("/")
    if group == resource.group and version and version != resource.version:
        # Keep the version the caller wrote in, since the body's apiVersion must match the path.
        return Resource(resource.group, version, resource.plural, resource.kind, resource.namespaced)
    return resource
