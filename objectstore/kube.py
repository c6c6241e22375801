"""The Kubernetes API backend of :class:`federation.store.ObjectStore`.

Each watched resource has one daemon thread running a plain list-then-watch loop over the
official client's HTTP layer (kubernetes 37's informer fails on custom-object lists, and
``kubernetes.watch.Watch`` hides the resourceVersion bookkeeping we need): LIST, replace the
cache, WATCH from the list's resourceVersion, resume from the last seen resourceVersion when a
stream ends normally, and LIST again after 410 Gone or any failure.  Reads come from that cache;
writes go to the API and map its Status codes onto :mod:`federation.store` errors.

Outages: a failing list or watch is retried with exponential backoff and jitter, capped at
``max_backoff`` (1 s), so the cache is current again within about a second of the API server
coming back; the first failure, each change of its cause and the recovery are logged once each,
never every attempt.  TCP keepalive notices a vanished peer within seconds, and a read timeout
on the stream (the server's ``timeoutSeconds`` plus a few seconds) notices a server that stopped
answering.  :meth:`KubernetesStore.outage` tells how long the oldest failure has lasted, so a
component can refuse to claim a fresh cache (the webhook's ``--max-cache-staleness``).
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import json
import logging
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import kubernetes.client
import kubernetes.config
import urllib3

from federation import resources, selectors
from federation.index import ObjectIndex
from federation.resources import KubeObject, Resource
from federation.store import (
    Conflict,
    EventHandler,
    NotFound,
    Outage,
    Rejected,
    StoreError,
    Unavailable,
    Watch,
    WriteCounter,
)

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
# The index only understands these kinds; replace_kind must never be fed anything else.
_INDEXED_KINDS = frozenset({resources.ISTIO_FEDERATION.kind, resources.SERVICE_ENTRY.kind})
_WARNING = re.compile(r'^\s*\d{3}\s+\S+\s+"((?:[^"\\]|\\.)*)"')
# A peer that vanished is noticed after KEEPIDLE + KEEPINTVL * KEEPCNT seconds of silence (5 s).
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 2, 1, 3
# Connections kept open to the apiserver: the reconciler's concurrent writes plus the watch streams.
POOL_SIZE = 64
_UNSEEN = object()


def connect(kubeconfig: str | None, in_cluster: bool) -> kubernetes.client.ApiClient:
    """An API client from the pod's service account or from a kubeconfig file (None: default)."""
    configuration = kubernetes.client.Configuration()
    # The loaders are untyped; Any keeps mypy --strict honest about that without ignores.
    load_incluster: Any = kubernetes.config.load_incluster_config
    load_kubeconfig: Any = kubernetes.config.load_kube_config
    if in_cluster:
        load_incluster(client_configuration=configuration)
    else:
        load_kubeconfig(config_file=kubeconfig, client_configuration=configuration)
    configuration.socket_options = keepalive_socket_options()
    # One connection per write in flight (reconciler run --write-concurrency), and the watches.
    configuration.connection_pool_maxsize = max(int(configuration.connection_pool_maxsize or 0), POOL_SIZE)
    # No retries inside urllib3: it would log a warning per attempt, and every caller already
    # retries with backoff (the watch loop, the reconciler's Retry).
    configuration.retries = 0
    return kubernetes.client.ApiClient(configuration)


def keepalive_socket_options() -> builtins.list[tuple[int, int, int]]:
    """urllib3's defaults (no Nagle) plus TCP keepalive probing after 2 s of silence, where the
    platform has the options."""
    options: builtins.list[tuple[int, int, int]] = list(urllib3.connection.HTTPConnection.default_socket_options)
    options.append((socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1))
    for name, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE), ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL), ("TCP_KEEPCNT", KEEPALIVE_COUNT)
    ):
        if hasattr(socket, name):
            options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    return options


def resource_path(resource: Resource, namespace: str | None, name: str = "", subresource: str = "") -> str:
    """``/apis/<group>/<version>[/namespaces/<ns>]/<plural>[/<name>[/<subresource>]]``."""
    base = f"/apis/{resource.group}/{resource.version}" if resource.group else f"/api/{resource.version}"
    if resource.namespaced and namespace:
        base += f"/namespaces/{namespace}"
    path = f"{base}/{resource.plural}"
    if name:
        path += f"/{name}"
        if subresource:
            path += f"/{subresource}"
    return path


def parse_warnings(values: list[str]) -> list[str]:
    """The texts of ``Warning: 299 - "<text>"`` headers, unescaped."""
    texts: list[str] = []
    for value in values:
        match = _WARNING.match(value)
        if match:
            texts.append(re.sub(r"\\(.)", r"\1", match.group(1)))
    return texts


class _Gone(Exception):
    """The resourceVersion we watch from is compacted away: relist."""


@dataclass
class _Response:
    status: int
    body: Any
    warnings: list[str]


@dataclass
class _WatchState:
    watch: Watch
    cache: dict[tuple[str, str], KubeObject] = field(default_factory=dict)
    resource_version: str = ""
    listed: bool = False
    need_list: bool = True
    # The current outage: its cause as last logged, when it was noticed, attempts since.
    failing: str | None = None
    failing_text: str = ""
    broken_since: float | None = None
    attempts: int = 0
    response: Any = None
    thread: threading.Thread | None = None


class KubernetesStore:
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
        self.api = api_client
        self.name = name
        self.index = ObjectIndex()
        self.writes = WriteCounter()
        self.relists = 0
        self.last_warnings: builtins.list[str] = []
        self.watch_timeout = watch_timeout
        self.request_timeout = request_timeout
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.read_grace = read_grace
        self._clock = clock
        self._states = [_WatchState(watch) for watch in watches]
        self._lock = threading.RLock()
        self._handlers: builtins.list[EventHandler] = []
        self._stop = threading.Event()
        self._synced = threading.Event()
        self._random = random.Random()  # noqa: S311 - backoff jitter, not security

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        if not self._states:
            self._synced.set()
        for state in self._states:
            if state.thread is not None:
                continue
            watch = state.watch
            label = f"{self.name}-{watch.resource.plural}" + (f"-{watch.namespace}" if watch.namespace else "")
            state.thread = threading.Thread(target=self._run, args=(state,), name=label, daemon=True)
            state.thread.start()

    def stop(self) -> None:
        self._stop.set()
        for state in self._states:
            response = state.response
            if response is not None:
                # Unblocks a read parked on the watch socket; the thread then sees _stop.
                with contextlib.suppress(Exception):
                    response.shutdown()
                with contextlib.suppress(Exception):
                    response.release_conn()
        for state in self._states:
            if state.thread is not None and state.thread is not threading.current_thread():
                state.thread.join(timeout=5)

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def wait_synced(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    def outage(self) -> Outage | None:
        now = self._clock()
        with self._lock:
            broken = [state for state in self._states if state.broken_since is not None]
            if not broken:
                return None
            oldest = min(broken, key=lambda state: state.broken_since or now)
            seconds = max(0.0, now - (oldest.broken_since or now))
            return Outage(seconds, f"the watch of {_describe(oldest.watch)} is failing: {oldest.failing_text}")

    def subscribe(self, handler: EventHandler) -> None:
        with self._lock:
            self._handlers.append(handler)

    # -- reads ---------------------------------------------------------------------------------

    def _covering(self, resource: Resource, namespace: str | None) -> builtins.list[_WatchState]:
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
        selector = selectors.parse(label_selector)
        # namespace None: every namespace this store watches (see ObjectStore.list).
        states = [
            state for state in self._states
            if _same_resource(state.watch.resource, resource)
            and (namespace is None or state.watch.namespace is None or state.watch.namespace == namespace)
        ]
        if not states:
            return self._live_list(resource, namespace, label_selector)
        return [copy.deepcopy(obj) for obj in self._cached_list(states, resource, namespace, selector)]

    def peek_list(
        self, resource: Resource, namespace: str | None = None, label_selector: str | None = None
    ) -> builtins.list[KubeObject]:
        """:meth:`list` without the copies, for callers that only look: never modify what it returns."""
        selector = selectors.parse(label_selector)
        states = [
            state for state in self._states
            if _same_resource(state.watch.resource, resource)
            and (namespace is None or state.watch.namespace is None or state.watch.namespace == namespace)
        ]
        if not states:
            return self._live_list(resource, namespace, label_selector)
        return self._cached_list(states, resource, namespace, selector)

    def _cached_list(
        self,
        states: builtins.list[_WatchState],
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
        response = self._call("GET", resource_path(resource, namespace), query=query)
        if response.status != 200:
            raise _error(response, f"list {resource.group_resource}")
        items = [_with_type(item, resource) for item in response.body.get("items") or []]
        return sorted(items, key=lambda obj: (resources.namespace_of(obj), resources.name_of(obj)))

    def read(self, resource: Resource, namespace: str, name: str) -> KubeObject | None:
        response = self._call("GET", resource_path(resource, namespace, name))
        if response.status == 404:
            return None
        if response.status != 200:
            raise _error(response, f"get {resource.group_resource} {name!r}")
        return _with_type(response.body, resource)

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
        self, verb: str, method: str, path: str, body: Any, *, resource: Resource, name: str,
        content_type: str = "application/json",
    ) -> KubeObject:
        response = self._call(method, path, body=body, content_type=content_type)
        self.last_warnings = response.warnings
        for warning in response.warnings:
            log.warning(
                "%s: %s %s %r: warning from the API: %s", self.name, verb, resource.group_resource, name, warning
            )
        if response.status not in (200, 201, 202):
            raise _error(response, f"{verb} {resource.group_resource} {name!r}")
        self.writes.add(verb)
        body_out = response.body if isinstance(response.body, dict) else {}
        if body_out.get("kind") == "Status":
            return body_out
        return _with_type(body_out, resource)

    # -- HTTP ----------------------------------------------------------------------------------

    def _serialize(
        self, method: str, path: str, query: builtins.list[tuple[str, str]] | None, body: Any, content_type: str
    ) -> tuple[str, str, dict[str, str], Any, Any]:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        serialized: tuple[str, str, dict[str, str], Any, Any] = self.api.param_serialize(
            method, path, query_params=query or [], header_params=headers, body=body,
            auth_settings=["BearerToken"],
        )
        return serialized

    def _call(
        self, method: str, path: str, *, query: builtins.list[tuple[str, str]] | None = None, body: Any = None,
        content_type: str = "application/json",
    ) -> _Response:
        request = self._serialize(method, path, query, body, content_type)
        try:
            raw: Any = self.api.call_api(*request, _request_timeout=self.request_timeout)
            data = raw.read()
            warnings = parse_warnings(list(raw.response.headers.getlist("Warning")))
        except (urllib3.exceptions.HTTPError, OSError, kubernetes.client.ApiException) as error:
            raise Unavailable(f"{method} {path}: cannot reach the Kubernetes API: {error}") from error
        try:
            decoded = json.loads(data) if data else {}
        except ValueError:
            decoded = {"message": data.decode("utf-8", "replace")[:500]}
        return _Response(raw.status, decoded, warnings)

    # -- list and watch ------------------------------------------------------------------------

    def _run(self, state: _WatchState) -> None:
        while not self._stop.is_set():
            try:
                if state.need_list:
                    self._list_into(state)
                self._watch_once(state)
            except _Gone:
                log.info("%s: %s watch expired (410 Gone); relisting", self.name, _describe(state.watch))
                state.need_list = True
            except Exception as error:  # the loop must outlive any one failure
                if self._stop.is_set():
                    return
                # After any failure the next success is a fresh LIST: the cache is current again as
                # soon as it returns, without resuming from a resourceVersion the server may have lost.
                state.need_list = True
                self._failed(state, error)
                self._stop.wait(self._backoff(state.attempts))

    def _backoff(self, attempts: int) -> float:
        """Exponential from min_backoff, capped at max_backoff, with jitter (half to all of it)."""
        delay = min(self.max_backoff, self.min_backoff * (2 ** min(attempts - 1, 30)))
        return self._random.uniform(delay / 2, delay)

    def _healthy(self, state: _WatchState) -> None:
        """The server answered a list or opened a watch: whatever outage there was is over."""
        with self._lock:
            if state.broken_since is None:
                return
            lasted = self._clock() - state.broken_since
            attempts = state.attempts
            state.failing, state.failing_text, state.broken_since, state.attempts = None, "", None, 0
        log.info(
            "%s: %s: recovered after %.1fs (%d failed attempts)", self.name, _describe(state.watch), lasted, attempts
        )

    def _failed(self, state: _WatchState, error: Exception) -> None:
        cause = _cause(error)
        text = f"{type(error).__name__}: {error}"
        with self._lock:
            state.attempts += 1
            state.failing_text = text
            if state.broken_since is None:
                state.broken_since = self._clock()
            changed = cause != state.failing
            state.failing = cause
        if changed:
            log.warning(
                "%s: %s: %s (retrying every %.1fs at most, with backoff; the next log line is the recovery "
                "or a different failure)",
                self.name, _describe(state.watch), text, self.max_backoff,
            )  # fmt: skip

    def _query(self, watch: Watch) -> builtins.list[tuple[str, str]]:
        query = [("labelSelector", watch.label_selector)] if watch.label_selector else []
        if watch.field_selector:
            query.append(("fieldSelector", watch.field_selector))
        return query

    def _list_into(self, state: _WatchState) -> None:
        watch = state.watch
        response = self._call("GET", resource_path(watch.resource, watch.namespace), query=self._query(watch))
        if response.status != 200:
            raise _error(response, f"list {watch.resource.group_resource}")
        items = [_cached_form(_with_type(item, watch.resource)) for item in response.body.get("items") or []]
        fresh = {(resources.namespace_of(obj), resources.name_of(obj)): obj for obj in items}
        events: builtins.list[tuple[str, KubeObject]] = []
        with self._lock:
            if state.listed:
                self.relists += 1
            old = state.cache
            for key, obj in old.items():
                if key not in fresh:
                    events.append(("DELETED", obj))
            for key, obj in sorted(fresh.items()):
                previous = old.get(key)
                if previous is None:
                    events.append(("ADDED", obj))
                elif previous != obj:
                    events.append(("MODIFIED", obj))
            state.cache = fresh
            state.resource_version = str((response.body.get("metadata") or {}).get("resourceVersion") or "")
            state.need_list = False
            state.listed = True
            kind = watch.resource.kind
            if kind in _INDEXED_KINDS:
                same_kind = [
                    obj for other in self._states if other.watch.resource.kind == kind for obj in other.cache.values()
                ]
                self.index.replace_kind(kind, same_kind)
            if all(other.listed for other in self._states):
                self._synced.set()
        self._healthy(state)
        self._notify(events)

    def _watch_once(self, state: _WatchState) -> None:
        watch = state.watch
        query = [
            ("watch", "true"),
            ("resourceVersion", state.resource_version),
            ("timeoutSeconds", str(self.watch_timeout)),
            ("allowWatchBookmarks", "true"),
            *self._query(watch),
        ]
        request = self._serialize("GET", resource_path(watch.resource, watch.namespace), query, None, "")
        # The read timeout outlasts the server's timeoutSeconds by read_grace, so a live server
        # always ends the stream first and only a server that stopped answering trips it.
        raw: Any = self.api.call_api(*request, _request_timeout=(5, self.watch_timeout + self.read_grace))
        response = raw.response
        state.response = response
        try:
            if raw.status == 410:
                raise _Gone
            if raw.status != 200:
                data = raw.read()
                try:
                    body = json.loads(data)
                except ValueError:
                    body = {"message": data.decode("utf-8", "replace")[:500]}
                raise _error(_Response(raw.status, body, []), f"watch {watch.resource.group_resource}")
            self._healthy(state)
            try:
                for line in _lines(response):
                    if self._stop.is_set():
                        return
                    self._on_event(state, json.loads(line))
            except urllib3.exceptions.ProtocolError as error:
                # A cut connection: resume from the last resourceVersion; if the server is gone, that
                # attempt fails and the failure path (backoff, relist) takes over.
                log.debug("%s: %s watch stream dropped: %s", self.name, _describe(watch), error)
        finally:
            state.response = None
            with contextlib.suppress(Exception):
                response.release_conn()

    def _on_event(self, state: _WatchState, event: dict[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _Gone
            raise StoreError(str(obj.get("message") or "watch error"), code=int(obj.get("code") or 0), status=obj)
        version = str(resources.meta(obj).get("resourceVersion") or "")
        if kind == "BOOKMARK":
            if version:
                state.resource_version = version
            return
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            return
        obj = _cached_form(_with_type(obj, state.watch.resource))
        key = (resources.namespace_of(obj), resources.name_of(obj))
        with self._lock:
            if kind == "DELETED":
                state.cache.pop(key, None)
            else:
                state.cache[key] = obj
            if version:
                state.resource_version = version
            self.index.apply(kind, obj)
        self._notify([(kind, obj)])

    def _notify(self, events: builtins.list[tuple[str, KubeObject]]) -> None:
        with self._lock:
            handlers = list(self._handlers)
        for kind, obj in events:
            for handler in handlers:
                try:
                    handler(kind, copy.deepcopy(obj))
                except Exception:
                    log.exception("%s: event handler %r failed on %s %s", self.name, handler, kind,
                                  resources.ObjectKey.of(obj))


def _lines(response: Any) -> Iterator[bytes]:
    buffer = b""
    for chunk in response.stream(amt=65536, decode_content=True):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer


def _sees(watch: Watch, name: str) -> bool:
    """Whether the watch's cache holds every object of its scope named ``name``."""
    if watch.label_selector is not None:
        return False
    if watch.field_selector is None:
        return True
    return watch.field_selector == f"metadata.name={name}"


def _cause(error: Exception) -> str:
    """What kind of failure this is, for logging once per change: the server unreachable (whether
    the list or the watch noticed), silent (read timeout), or answering with an HTTP code; not the
    text, which varies from attempt to attempt."""
    text = str(error)
    if isinstance(error, urllib3.exceptions.ReadTimeoutError) or "Read timed out" in text:
        return "read timeout"
    if isinstance(error, urllib3.exceptions.HTTPError | OSError) or (
        isinstance(error, Unavailable) and error.code == 0
    ):
        return "unreachable"
    if isinstance(error, StoreError):
        return f"HTTP {error.code}"
    if isinstance(error, kubernetes.client.ApiException):
        return f"HTTP {error.status}"
    return type(error).__name__


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


def _with_type(obj: KubeObject, resource: Resource) -> KubeObject:
    """List items and watch objects of built-in kinds lack apiVersion and kind; cached ones never do."""
    if not obj.get("apiVersion"):
        obj["apiVersion"] = resource.api_version
    if not obj.get("kind"):
        obj["kind"] = resource.kind
    return obj


def _cached_form(obj: KubeObject) -> KubeObject:
    """What the cache keeps of an object: all but ``metadata.managedFields`` (server-side apply's
    bookkeeping, often the larger part of a small object, and read by nobody here).  An update sent
    without it leaves the server's managedFields as they are."""
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)
    return obj


def _describe(watch: Watch) -> str:
    where = f" in {watch.namespace}" if watch.namespace else ""
    chosen = [selector for selector in (watch.label_selector, watch.field_selector) if selector]
    selector = f" ({', '.join(chosen)})" if chosen else ""
    return f"{watch.resource.group_resource}{where}{selector}"


def _error(response: _Response, action: str) -> StoreError:
    body = response.body if isinstance(response.body, dict) else {}
    message = str(body.get("message") or f"{action}: HTTP {response.status}")
    code = response.status
    if code == 404:
        return NotFound(message, code=code, status=body)
    if code == 409:
        return Conflict(message, code=code, status=body)
    if code == 429 or code >= 500:
        return Unavailable(message, code=code, status=body)
    if 400 <= code < 500:
        return Rejected(message, code=code, status=body)
    return StoreError(message, code=code, status=body)
