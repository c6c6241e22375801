"""The list-then-watch loops that keep a :class:`objectstore.kube.KubernetesStore`'s cache current.

Each watched resource has one daemon thread running a plain list-then-watch loop over the
official client's HTTP layer (:mod:`objectstore.kubeapi`): LIST, replace the cache, WATCH from the
list's resourceVersion, resume from the last seen resourceVersion when a stream ends normally, and
LIST again after 410 Gone or any failure.  Every change of the cache updates the
:class:`federation.index.ObjectIndex` and is handed to the subscribers.

Outages: a failing list or watch is retried with exponential backoff and jitter, capped at
``max_backoff`` (1 s), so the cache is current again within about a second of the API server
coming back; the first failure, each change of its cause and the recovery are logged once each,
never every attempt.  TCP keepalive notices a vanished peer within seconds, and a read timeout
on the stream (the server's ``timeoutSeconds`` plus a few seconds) notices a server that stopped
answering.  :meth:`WatchedCache.outage` tells how long the oldest failure has lasted, so a
component can refuse to claim a fresh cache (the webhook's ``--max-cache-staleness``).
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import json
import logging
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import kubernetes.client
import urllib3

from federation import resources
from federation.index import ObjectIndex
from federation.resources import KubeObject
from federation.store import EventHandler, Outage, StoreError, Unavailable, Watch
from objectstore.kubeapi import Response, call, decode_body, resource_path, serialize, status_error, with_type

log = logging.getLogger(__name__)

# The index only understands these kinds; replace_kind must never be fed anything else.
_INDEXED_KINDS = frozenset({resources.ISTIO_FEDERATION.kind, resources.SERVICE_ENTRY.kind})


class _Gone(Exception):
    """The resourceVersion we watch from is compacted away: relist."""


@dataclass
class WatchState:
    """One watch's loop: its cached objects by (namespace, name), where the stream resumes, and its outage."""

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


class WatchedCache:
    """The objects of the watched resources, each watch kept current by its own list-then-watch
    thread; the base of :class:`objectstore.kube.KubernetesStore`, which answers reads from it."""

    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        watches: builtins.list[Watch],
        *,
        name: str,
        watch_timeout: int,
        request_timeout: float,
        min_backoff: float,
        max_backoff: float,
        read_grace: float,
        clock: Callable[[], float],
    ) -> None:
        self.api = api_client
        self.name = name
        self.index = ObjectIndex()
        self.relists = 0
        self.watch_timeout = watch_timeout
        self.request_timeout = request_timeout
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.read_grace = read_grace
        self._clock = clock
        self._states = [WatchState(watch) for watch in watches]
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
            # The kind of failure only (unreachable, read timeout, HTTP 403): this text reaches every
            # user whose write the webhook refuses; the full error is in the log, once per change.
            return Outage(seconds, f"the watch of {_describe(oldest.watch)} is failing ({oldest.failing})")

    def subscribe(self, handler: EventHandler) -> None:
        with self._lock:
            self._handlers.append(handler)

    # -- list and watch ------------------------------------------------------------------------

    def _run(self, state: WatchState) -> None:
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

    def _healthy(self, state: WatchState) -> None:
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

    def _failed(self, state: WatchState, error: Exception) -> None:
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

    def _list_into(self, state: WatchState) -> None:
        watch = state.watch
        response = call(
            self.api,
            "GET",
            resource_path(watch.resource, watch.namespace),
            timeout=self.request_timeout,
            query=self._query(watch),
        )
        if response.status != 200:
            raise status_error(response, f"list {watch.resource.group_resource}")
        items = [_cached_form(with_type(item, watch.resource)) for item in response.body.get("items") or []]
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

    def _watch_once(self, state: WatchState) -> None:
        watch = state.watch
        query = [
            ("watch", "true"),
            ("resourceVersion", state.resource_version),
            ("timeoutSeconds", str(self.watch_timeout)),
            ("allowWatchBookmarks", "true"),
            *self._query(watch),
        ]
        request = serialize(
            self.api, "GET", resource_path(watch.resource, watch.namespace), query=query, body=None, content_type=""
        )
        # The read timeout outlasts the server's timeoutSeconds by read_grace, so a live server
        # always ends the stream first and only a server that stopped answering trips it.
        raw: Any = self.api.call_api(*request, _request_timeout=(5, self.watch_timeout + self.read_grace))
        response = raw.response
        state.response = response
        try:
            if raw.status == 410:
                raise _Gone
            if raw.status != 200:
                body = decode_body(raw.read())
                raise status_error(Response(raw.status, body, []), f"watch {watch.resource.group_resource}")
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

    def _on_event(self, state: WatchState, event: dict[str, Any]) -> None:
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
        obj = _cached_form(with_type(obj, state.watch.resource))
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
                    log.exception(
                        "%s: event handler %r failed on %s %s", self.name, handler, kind, resources.ObjectKey.of(obj)
                    )


MAX_EVENT_BYTES = 16 * 1024 * 1024
"""One watch event (a line of the stream) at most: ten times etcd's 1.5 MiB object limit."""


def _lines(response: Any) -> Iterator[bytes]:
    """The stream's lines (one event each); a line longer than MAX_EVENT_BYTES ends the watch, which
    is then retried like any other failure, instead of growing a buffer without end."""
    buffer = bytearray()
    for chunk in response.stream(amt=65536, decode_content=True):
        searched = len(buffer)
        buffer += chunk
        start = 0
        while (end := buffer.find(b"\n", max(start, searched))) >= 0:
            line = bytes(buffer[start:end])
            if line.strip():
                yield line
            start = end + 1
        del buffer[:start]
        if len(buffer) > MAX_EVENT_BYTES:
            raise ValueError(f"a watch event is longer than {MAX_EVENT_BYTES} bytes")
    if buffer.strip():
        yield bytes(buffer)


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
