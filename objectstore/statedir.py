"""The state-directory backend: a cluster's objects as YAML files.

Readers take every ``*.yaml``/``*.yml`` file under the directory, recursively, several documents
per file allowed; a malformed file is an error naming the file and line, never a silent skip.
Writers put one object per file at ``<dir>/<namespace or _cluster>/<kind>/<name>.yaml`` and
replace files atomically (write, rename) under a lock, so several processes (webhook, exporter,
reconciler of one local cluster) can share a directory.

There is no server to hand out resourceVersions, so an object's resourceVersion is a hash of its
content: every process derives the same one, and an update made from a stale copy is refused with
the apiserver's Conflict message.

Cost proportional to change, not to the number of objects:

* The view is kept per file: each file's signature (inode, mtime, size) and the objects it holds.
  A changed file is read again alone; an unchanged one is never read twice (``objectstore.stateview``,
  ``objectstore.staterefresh``).
* Changes are noticed by inotify, backed up by a slow sweep, or by polling where inotify is
  unavailable (``objectstore.statewatch``).
* The store's own writes update its view directly: the event for its own rename finds the
  signature it recorded and reads nothing (``objectstore.statewriter``).
* Writers of other processes are seen exactly, without a sweep: a writer taking the lock (or a fresh
  :meth:`read`) first reads what the others appended to the journal since it last looked
  (``objectstore.statejournal``).
* A file that does not parse keeps its last good content in the view, and the error is logged once.

Durability: a write is durable when it returns, except inside :meth:`StateDirStore.batch`, where
the reconciler applies many objects: there the batch is flushed once at its end (and every
``BATCH_FLUSH`` writes, ``objectstore.statewriter``).

The file format is ``objectstore.stateformat``; the apiserver's refusals are ``objectstore.apierrors``.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from federation import mergepatch, resources
from federation.index import ObjectIndex
from federation.resources import KubeObject, ObjectKey, Resource
from federation.store import (
    EventHandler,
    Outage,
    Rejected,
    Watch,
    WriteCounter,
)
from federation.timestamps import format_time
from objectstore import apierrors
from objectstore.admissionhook import AdmissionHook
from objectstore.statefiles import Entry, canonical_path, load_state
from objectstore.statejournal import Journal
from objectstore.staterefresh import Refresher
from objectstore.stateview import Event, StateView, clone, clone_object
from objectstore.statewatch import Watcher
from objectstore.statewriter import StateWriter

log = logging.getLogger(__name__)

# Kinds whose status lives behind a status subresource: a plain update must not change it.
_STATUS_SUBRESOURCE_KINDS = {resources.ISTIO_FEDERATION.kind}


def _now() -> str:
    return format_time(datetime.now(UTC))


class StateDirStore:
    """ObjectStore over a directory; see the module docstring."""

    def __init__(
        self,
        root: Path,
        watches: list[Watch] | None = None,
        *,
        poll_interval: float = 1.0,
        rescan_interval: float = 300.0,
        admission: AdmissionHook | None = None,
        username: str = "kubernetes-admin",
        use_inotify: bool = True,
    ) -> None:
        self.root = Path(root)
        self.watches = list(watches or [])
        self.poll_interval = poll_interval
        self.rescan_interval = rescan_interval
        self.admission = admission
        self.username = username
        self.use_inotify = use_inotify
        self.index = ObjectIndex()
        self.writes = WriteCounter()
        self.last_warnings: tuple[str, ...] = ()
        self._lock = threading.RLock()  # guards the view, the batch and the open files
        self._handlers: list[EventHandler] = []
        self._synced = threading.Event()
        self._view = StateView(self.root, self._lock, self.index)
        self._refresher = Refresher(self._view, self._emit)
        self._journal = Journal(self.root)
        self._writer = StateWriter(self._view, self._journal)
        self._watcher = Watcher(
            self.root,
            poll_interval=poll_interval,
            rescan_interval=rescan_interval,
            use_inotify=use_inotify,
            sweep=self._refresher.sweep_logged,
            refresh=self._refresher.refresh_logged,
            unchanged=self._view.unchanged,
        )

    @property
    def files_read(self) -> int:
        """Files parsed since start: what change detection costs (for tests, benchmarks)."""
        return self._refresher.files_read

    @property
    def watching(self) -> str:
        """How changes are noticed, "inotify" or "polling", once the background thread runs ("" before)."""
        return self._watcher.watching

    @property
    def last_error(self) -> str | None:
        """Why the last look at the directory kept the last good view, or None when it did not."""
        return self._refresher.last_error

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Load everything now (raising StateError if the directory or a file is unreadable), then
        keep the view current in a background thread (unless ``poll_interval`` is 0)."""
        journal = self._journal.position()
        entries = load_state(self.root)
        with self._lock:
            events = self._view.replace_all(entries)
            self._journal.seen = journal
        self._synced.set()
        self._emit(events)
        if self.poll_interval > 0:
            self._watcher.start()

    def stop(self) -> None:
        self._watcher.stop()
        self.close()

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def wait_synced(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    def outage(self) -> Outage | None:
        """Never: the directory is read directly (a broken edit keeps the last good view, and is logged)."""
        return None

    def subscribe(self, handler: EventHandler) -> None:
        self._handlers.append(handler)

    # -- what changed on disk ------------------------------------------------------------------

    def reload(self) -> None:
        """Look at every file now and read those that changed (raises the first file's error, after
        applying what could be read)."""
        self._refresher.apply(self._refresher.sweep())

    def _emit(self, events: list[Event]) -> None:
        if not self._handlers:
            return
        for event, obj in events:
            for handler in list(self._handlers):
                try:
                    handler(event, clone(obj))
                except Exception:
                    log.exception("event handler failed for %s %s", event, ObjectKey.of(obj))

    def _catch_up(self) -> None:
        """Read again what other processes wrote since we last looked (their journal lines)."""
        paths = self._journal.unread()
        if paths is None:
            self._refresher.apply_quietly(self._refresher.sweep())
        elif paths:
            self._refresher.apply_quietly(self._refresher.refresh(paths))

    # -- reads -------------------------------------------------------------------------------

    def get(self, resource: Resource, namespace: str, name: str) -> KubeObject | None:
        found = self.peek(resource, namespace, name)
        return clone(found) if found is not None else None

    def peek(self, resource: Resource, namespace: str, name: str) -> KubeObject | None:
        """:meth:`get` without the copy, for callers that only look: never modify what it returns."""
        entry = self._view.entries.get(ObjectKey(resource.kind, namespace if resource.namespaced else "", name))
        return entry.obj if entry is not None else None

    def read(self, resource: Resource, namespace: str, name: str) -> KubeObject | None:
        """A fresh read: other processes' writes first, then the object's own file again (so a 409
        retry, or a hand edit of that file, is seen without waiting for the watcher)."""
        key = ObjectKey(resource.kind, namespace if resource.namespaced else "", name)
        self._catch_up()
        with self._lock:
            entry = self._view.entries.get(key)
        candidates = {entry.file} if entry is not None else set()
        where = {"kind": key.kind, "metadata": {"name": name, "namespace": key.namespace}}
        candidates.add(canonical_path(self.root, where))
        if self.poll_interval <= 0:
            # Nothing watches: look at every file, read the changed.
            self._refresher.apply_quietly(self._refresher.sweep())
        else:
            self._refresher.apply_quietly(self._refresher.refresh(candidates))
        return self.get(resource, namespace, name)

    def list(
        self, resource: Resource, namespace: str | None = None, label_selector: str | None = None
    ) -> builtins.list[KubeObject]:
        return [clone(obj) for obj in self.peek_list(resource, namespace, label_selector)]

    def peek_list(
        self, resource: Resource, namespace: str | None = None, label_selector: str | None = None
    ) -> builtins.list[KubeObject]:
        """:meth:`list` without the copies, for callers that only look: never modify what it returns."""
        return self._view.peek_list(resource, namespace, label_selector)

    # -- writes ------------------------------------------------------------------------------

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """Writes inside are made durable together when the outermost batch (of any thread) ends,
        or every ``BATCH_FLUSH`` writes: one flush for many files instead of two fsyncs per file."""
        return self._writer.batch()

    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[None]:
        with self._lock, self._writer.locked():
            # Another process may have written since our last look: decide on the disk's view.
            self._catch_up()
            yield

    def close(self) -> None:
        """Close the lock and journal files (``stop`` does too); the store opens them again if used."""
        with self._lock:
            self._writer.close()
            self._journal.close()

    def _admit(self, operation: str, obj: KubeObject | None, old: KubeObject | None) -> None:
        self.last_warnings = ()
        if self.admission is None:
            return
        subject = obj if obj is not None else old
        assert subject is not None
        descriptor = resources.by_kind(str(subject.get("kind")))
        if descriptor is None:
            return
        verdict = self.admission.review(
            operation=operation, resource=descriptor, obj=obj, old=old, username=self.username
        )
        if verdict is None:
            return
        self.last_warnings = verdict.warnings
        for warning in verdict.warnings:
            log.warning("admission warning for %s: %s", ObjectKey.of(subject), warning)
        if not verdict.allowed:
            raise Rejected(verdict.message, code=verdict.code or 400, status=verdict.status)

    def _store(self, stored: KubeObject, previous: Entry | None) -> KubeObject:
        """Write ``stored`` (the store's own copy from now on) and tell the handlers."""
        event = self._writer.write(stored, previous)
        self._emit([(event, stored)])
        return clone_object(stored)

    def create(self, obj: KubeObject) -> KubeObject:
        key = ObjectKey.of(obj)
        with self._write_lock():
            if key in self._view.entries:
                raise apierrors.already_exists(key)
            new = clone(obj)
            metadata = new.setdefault("metadata", {})
            metadata.pop("resourceVersion", None)
            metadata.setdefault("uid", str(uuid.uuid4()))
            metadata.setdefault("creationTimestamp", _now())
            metadata["generation"] = 1
            self._admit("CREATE", new, None)
            stored = self._store(new, None)
        self.writes.add("create")
        return stored

    def update(self, obj: KubeObject) -> KubeObject:
        key = ObjectKey.of(obj)
        with self._write_lock():
            current = self._require(key)
            self._check_version(obj, current.obj, key)
            new = clone(obj)
            if key.kind in _STATUS_SUBRESOURCE_KINDS:
                new.pop("status", None)
                if "status" in current.obj:
                    new["status"] = clone(current.obj["status"])
            metadata = new.setdefault("metadata", {})
            old_metadata = resources.meta(current.obj)
            for preserved in ("uid", "creationTimestamp"):
                if preserved in old_metadata:
                    metadata[preserved] = old_metadata[preserved]
            generation = int(old_metadata.get("generation") or 1)
            metadata["generation"] = generation + (1 if new.get("spec") != current.obj.get("spec") else 0)
            self._admit("UPDATE", new, current.obj)
            stored = self._store(new, current)
        self.writes.add("update")
        return stored

    def patch_status(self, resource: Resource, namespace: str, name: str, patch: dict[str, Any]) -> KubeObject:
        key = ObjectKey(resource.kind, namespace if resource.namespaced else "", name)
        with self._write_lock():
            current = self._require(key)
            new = clone(current.obj)
            new["status"] = mergepatch.apply(current.obj.get("status"), patch.get("status"))
            if new.get("status") is None:
                new.pop("status", None)
            stored = self._store(new, current)
        self.writes.add("patch")
        return stored

    def delete(self, resource: Resource, namespace: str, name: str) -> None:
        key = ObjectKey(resource.kind, namespace if resource.namespaced else "", name)
        with self._write_lock():
            current = self._require(key)
            self._admit("DELETE", None, current.obj)
            self._writer.remove(key, current)
            self._emit([("DELETED", current.obj)])
        self.writes.add("delete")

    def _require(self, key: ObjectKey) -> Entry:
        entry = self._view.entries.get(key)
        if entry is None:
            raise apierrors.not_found(key)
        return entry

    @staticmethod
    def _check_version(obj: KubeObject, current: KubeObject, key: ObjectKey) -> None:
        wanted = resources.meta(obj).get("resourceVersion")
        if wanted and wanted != resources.meta(current).get("resourceVersion"):
            raise apierrors.stale_version(key)
