"""The state directory store's own writes, to disk and into its view.

An object is written to the file that holds it, beside any other objects that file holds (a new
one at its canonical path, ``objectstore.statefiles``), by replacing the whole file atomically
(``objectstore.atomicfiles``), under an exclusive lock on ``.lock`` that every process writing the
directory takes, so several processes (webhook, exporter, reconciler of one local cluster) can
share it.  Each write is appended to the journal for the other processes
(``objectstore.statejournal``) and recorded in the view with the file's new signature, so the
watcher's event for it reads nothing.

Durability: a write is durable when it returns (fsync of the file before its rename, and of the
directory after), except inside :meth:`StateWriter.batch`, where the reconciler applies many
objects: there the batch is flushed once at its end (and every ``BATCH_FLUSH`` writes), with one
``syncfs`` and an fsync per directory.  The first ``EAGER_WRITES`` writes of a batch are made durable
one by one all the same: ``syncfs`` waits for every dirty page of the file system, whoever wrote it,
which a sync that changed one object should not pay for.  ``objectstore.atomicfiles`` explains what a
power cut can do.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from federation.resources import KubeObject, ObjectKey
from objectstore.atomicfiles import atomic_write, fsync_directory, sync_directories
from objectstore.statefiles import Entry, Signature, canonical_path, file_signature, resource_version
from objectstore.stateformat import dump, dump_all
from objectstore.statejournal import Journal
from objectstore.stateview import KnownFile, StateView, clone_object

LOCK_FILE = ".lock"
BATCH_FLUSH = 2000
"""Writes after which a batch is flushed even before it ends, bounding what a power cut can lose."""
EAGER_WRITES = 16
"""Writes of a batch made durable one by one (two fsyncs each) before the rest wait for its flush."""


@dataclass
class _Batch:
    depth: int = 0
    written: int = 0  # deferred to the next flush
    seen: int = 0  # in this batch, durable or deferred
    directories: set[Path] = field(default_factory=set)


class StateWriter:
    """Writes objects of ``view`` to its directory, journaled in ``journal``; see the module docstring.

    Uses the view's lock: the batch, the lock file and the journal are guarded by it too.
    """

    def __init__(self, view: StateView, journal: Journal) -> None:
        self.root = view.root
        self._view = view
        self._lock = view.lock
        self._journal = journal
        self._lock_fd: int | None = None
        self._batch = _Batch()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the directory's lock, which other processes' writers take too (call with the view's
        lock held)."""
        if self._lock_fd is None:
            self.root.mkdir(parents=True, exist_ok=True)
            flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
            self._lock_fd = os.open(self.root / LOCK_FILE, flags, 0o644)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the lock file (call with the view's lock held); :meth:`locked` opens it again."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Writes inside are made durable together when the outermost batch (of any thread) ends,
        or every ``BATCH_FLUSH`` writes: one flush for many files instead of two fsyncs per file."""
        with self._lock:
            self._batch.depth += 1
        try:
            yield
        finally:
            directories: set[Path] = set()
            with self._lock:
                self._batch.depth -= 1
                if self._batch.depth == 0:
                    directories, self._batch.directories = self._batch.directories, set()
                    self._batch.written = self._batch.seen = 0
            if directories:
                sync_directories(self.root, directories)

    def _flush(self) -> None:
        """Make the batch's writes so far durable (call with the lock held)."""
        directories, self._batch.directories = self._batch.directories, set()
        self._batch.written = 0
        if directories:
            sync_directories(self.root, directories)

    def _write_file(self, path: Path, objects: list[KubeObject] | None) -> Signature | None:
        """Write (or, for None, remove) one file, durably unless in a batch; call with the locks held."""
        if self._batch.depth > 0:
            self._batch.seen += 1
        batched = self._batch.depth > 0 and self._batch.seen > EAGER_WRITES
        if objects is None:
            path.unlink(missing_ok=True)
            if not batched:
                fsync_directory(path.parent)
        else:
            text = dump(objects[0]) if len(objects) == 1 else dump_all(objects)
            atomic_write(path, text, durable=not batched)
        self._journal.append([path])
        if batched:
            self._batch.directories.add(path.parent)
            self._batch.written += 1
            if self._batch.written >= BATCH_FLUSH:
                self._flush()
        return file_signature(path) if objects is not None else None

    def _file_objects(
        self, path: Path, replace: dict[ObjectKey, KubeObject | None]
    ) -> tuple[list[ObjectKey], list[KubeObject]]:
        """The objects of a file in the view, with some replaced (or, None, removed): what to write."""
        known = self._view.files.get(path)
        keys: list[ObjectKey] = []
        objects: list[KubeObject] = []
        for key in known.keys if known is not None else []:
            if key in replace:
                obj = replace[key]
                if obj is None:
                    continue
            else:
                obj = _without_version(self._view.entries[key].obj)
            keys.append(key)
            objects.append(obj)
        return keys, objects

    def write(self, stored: KubeObject, previous: Entry | None) -> str:
        """Write ``stored`` (the store's own copy from now on) to disk (in place for a file that
        holds more) and update the view; the event, ADDED or MODIFIED (call with the locks held)."""
        key = ObjectKey.of(stored)
        stored.setdefault("metadata", {}).pop("resourceVersion", None)
        if previous is not None:
            target = previous.file
            keys, objects = self._file_objects(target, {key: stored})
        else:
            # A hand-written file may already hold other objects at this path: they stay beside it.
            target = canonical_path(self.root, stored)
            keys, objects = self._file_objects(target, {})
            keys.append(key)
            objects.append(stored)
        signature = self._write_file(target, objects)
        stored["metadata"]["resourceVersion"] = resource_version(stored)
        event = "MODIFIED" if previous is not None else "ADDED"
        with self._lock:
            self._view.put(key, Entry(stored, target, keys.index(key)))
            self._view.set_file(target, KnownFile(signature or (0, 0, 0), keys))
            self._view.broken.pop(target, None)
            self._view.index.apply(event, stored)
        return event

    def remove(self, key: ObjectKey, current: Entry) -> None:
        """Remove ``current`` from its file (the file too, when it held nothing else) and from the
        view (call with the locks held)."""
        keys, objects = self._file_objects(current.file, {key: None})
        signature = self._write_file(current.file, objects or None)
        with self._lock:
            self._view.remove(key)
            if objects:
                # Positions of later documents in the same file moved up by one.
                for position, other in enumerate(keys):
                    self._view.entries[other].document = position
                self._view.set_file(current.file, KnownFile(signature or (0, 0, 0), keys))
            else:
                self._view.drop_file(current.file)
            self._view.index.apply("DELETED", current.obj)


def _without_version(obj: KubeObject) -> KubeObject:
    """A copy of ``obj`` as it is written to disk: without the derived resourceVersion."""
    copied = clone_object(obj)
    metadata = copied.setdefault("metadata", {})
    metadata.pop("resourceVersion", None)
    return copied
