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
  A changed file is read again alone; an unchanged one is never read twice.
* Changes are noticed by inotify (``watchfiles``, in an ordinary thread: its blocking waits release
  the GIL and never touch a gevent hub), which names the changed paths.  inotify can drop events
  when its queue overflows, so a slow sweep (``rescan_interval``, one ``stat`` per file, reading only
  what changed) backs it up.  Where inotify is unavailable the sweep runs every ``poll_interval``.
* The store's own writes update its view directly: the event for its own rename finds the
  signature it recorded and reads nothing.
* Writers of other processes are seen exactly, without a sweep: every writer appends the path it
  wrote to ``.journal`` under the lock, and a writer taking the lock (or a fresh :meth:`read`) first
  reads what the others appended since it last looked.  The journal is started afresh (a new file)
  once it grows past ``JOURNAL_LIMIT``; a process that finds a new journal sweeps once.
* A file that does not parse (an editor half-way through it, or a file being renamed into place)
  keeps its last good content in the view, and the error is logged once; it is read again when it
  changes.

Durability: a write is durable when it returns (fsync of the file before its rename, and of the
directory after), except inside :meth:`StateDirStore.batch`, where the reconciler applies many
objects: there the batch is flushed once at its end (and every ``BATCH_FLUSH`` writes), with one
``syncfs`` and an fsync per directory.  ``objectstore.statefiles`` explains what a power cut can do.

The file format is ``objectstore.statefiles``; the apiserver's refusals are ``objectstore.apierrors``.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from federation import mergepatch, ownership, resources, selectors
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
from objectstore.statefiles import (
    CLUSTER_SCOPE_DIR,
    YAML_SUFFIXES,
    Entry,
    Signature,
    StateError,
    atomic_write,
    canonical_path,
    clone,
    clone_object,
    dump,
    dump_all,
    file_signature,
    fsync_directory,
    is_state_file,
    load_file,
    load_state,
    load_text,
    resource_version,
    sync_directories,
    yaml_files,
)

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"
JOURNAL_FILE = ".journal"
JOURNAL_LIMIT = 4 * 1024 * 1024
"""Bytes after which a writer starts the journal afresh (about 40,000 writes)."""
BATCH_FLUSH = 2000
"""Writes after which a batch is flushed even before it ends, bounding what a power cut can lose."""
# Kinds whose status lives behind a status subresource: a plain update must not change it.
_STATUS_SUBRESOURCE_KINDS = {resources.ISTIO_FEDERATION.kind}


@dataclass(frozen=True)
class WriteVerdict:
    """The apiserver's verdict on one write, after calling the webhooks that apply to it.

    The webhooks' warnings and, for a refused write, the error its client gets: ``message`` as
    kubectl prints it, the HTTP ``code`` and the Status body.
    """

    allowed: bool
    message: str = ""
    code: int = 0
    status: dict[str, Any] | None = None
    warnings: tuple[str, ...] = ()


class AdmissionHook(Protocol):
    """What the apiserver does before a write: ask the validating webhooks."""

    def review(
        self,
        *,
        operation: str,
        resource: Resource,
        obj: KubeObject | None,
        old: KubeObject | None,
        username: str,
    ) -> WriteVerdict | None:
        """None when no webhook applies to this resource."""


def _now() -> str:
    return format_time(datetime.now(UTC))


@dataclass(eq=False)
class _File:
    """What the view holds of one file: its signature when read, and its objects in order."""

    signature: Signature
    keys: list[ObjectKey] = field(default_factory=list)


@dataclass
class _Batch:
    depth: int = 0
    written: int = 0
    directories: set[Path] = field(default_factory=set)


Event = tuple[str, KubeObject]


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
        self.last_error: str | None = None
        self.files_read = 0  # files parsed since start: what change detection costs (for tests, benchmarks)
        self.watching = ""  # "inotify" or "polling" once the background thread runs
        self._entries: dict[ObjectKey, Entry] = {}
        self._kinds: dict[str, dict[ObjectKey, Entry]] = {}
        # (kind, federation label) -> the objects that carry it: what the reconciler lists most.
        self._owners: dict[tuple[str, str], dict[ObjectKey, Entry]] = {}
        # A listing is remembered until its kind changes: an unchanged sync lists in O(1).
        self._versions: dict[str, int] = {}
        self._listings: dict[tuple[str, str | None, str], tuple[int, builtins.list[KubeObject]]] = {}
        self._files: dict[Path, _File] = {}
        self._signatures: dict[str, Signature] = {}  # str(path) -> the signature in _files, for the watcher
        self._broken: dict[Path, tuple[Signature | None, str, bool]] = {}  # signature, error, duplicate?
        self._journal: tuple[int, int] = (0, 0)  # inode and offset up to which we have read it
        self._lock = threading.RLock()
        self._lock_fd: int | None = None
        self._journal_fd: tuple[int, int] | None = None  # inode, descriptor
        self._batch = _Batch()
        self._handlers: list[EventHandler] = []
        self._synced = threading.Event()
        self._stopping = threading.Event()
        self._watch_ready = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Load everything now (raising StateError if the directory or a file is unreadable), then
        keep the view current in a background thread (unless ``poll_interval`` is 0)."""
        journal = self._journal_position()
        entries = load_state(self.root)
        with self._lock:
            events = self._replace_all(entries)
            self._journal = journal
        self._synced.set()
        self._emit(events)
        if self._thread is None and self.poll_interval > 0:
            self._stopping.clear()
            self._watch_ready.clear()
            self._thread = threading.Thread(target=self._watch, name=f"statedir:{self.root}", daemon=True)
            self._thread.start()
            # Changes made once start() returned are noticed: the watch is in place (bounded wait).
            self._watch_ready.wait(10)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=self.poll_interval + 5)
            self._thread = None
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

    # -- noticing changes ------------------------------------------------------------------------

    def _watch(self) -> None:
        try:
            if self.use_inotify and self._watch_inotify():
                return
            self.watching = "polling"
            self._sweep_logged()  # what changed while the thread started
        finally:
            self._watch_ready.set()
        while not self._stopping.wait(self.poll_interval):
            self._sweep_logged()

    def _watch_inotify(self) -> bool:
        """Follow inotify until stopped (True), or return False when it cannot be used."""
        try:
            from watchfiles._rust_notify import RustNotify  # watchfiles' documented Rust backend
        except ImportError:
            log.info("watchfiles is not installed: polling %s every %gs", self.root, self.poll_interval)
            return False
        step = max(10, min(50, int(self.poll_interval * 1000)))
        timeout = max(step, min(1000, int(self.rescan_interval * 1000)))
        try:
            notify = RustNotify([str(self.root)], False, False, 0, True, False)
        except (OSError, RuntimeError) as error:
            log.warning("cannot watch %s with inotify (%s): polling every %gs", self.root, error, self.poll_interval)
            return False
        try:
            self.watching = "inotify"
            self._sweep_logged()  # what changed between the first load and the watch
            self._watch_ready.set()
            next_sweep = time.monotonic() + self.rescan_interval
            while not self._stopping.is_set():
                changes = notify.watch(max(step, 500), step, timeout, self._stopping)
                if isinstance(changes, set) and changes:
                    # Our own temporary files are most of the events: drop hidden names before anything else.
                    paths = {
                        path
                        for _, path in changes
                        if not path.rpartition("/")[2].startswith(".") and not self._unchanged(path)
                    }
                    if paths:
                        self._refresh_logged(Path(path) for path in paths)
                if time.monotonic() >= next_sweep:
                    # inotify drops events when its queue overflows: look at every file's signature.
                    self._sweep_logged()
                    next_sweep = time.monotonic() + self.rescan_interval
        except (OSError, RuntimeError) as error:
            if self._stopping.is_set():
                return True
            log.warning("inotify failed on %s (%s): polling every %gs", self.root, error, self.poll_interval)
            return False
        finally:
            notify.close()
        return True

    def _sweep_logged(self) -> None:
        try:
            self._apply(self._sweep())
        except StateError as error:
            self._broken_logged(error)

    def _refresh_logged(self, paths: Iterable[Path]) -> None:
        try:
            self._apply(self._refresh(paths))
        except StateError as error:
            self._broken_logged(error)

    def _broken_logged(self, error: StateError) -> None:
        # Someone may be half-way through editing a file: keep serving its last good content.
        if str(error) != self.last_error:
            log.error("state directory not reloaded, keeping the last good view: %s", error)
        self.last_error = str(error)

    def reload(self) -> None:
        """Look at every file now and read those that changed (raises the first file's error, after
        applying what could be read)."""
        self._apply(self._sweep())

    def _apply(self, result: tuple[list[Event], list[StateError]]) -> None:
        events, errors = result
        self._emit(events)
        if errors:
            raise errors[0]
        self.last_error = None

    def _sweep(self) -> tuple[list[Event], list[StateError]]:
        """Compare every file's signature with the view's; read the changed ones."""
        if not self.root.is_dir():
            error = StateError(f"{self.root}: state directory does not exist (create it, or point --state at it)")
            return [], [error]
        present = set(yaml_files(self.root))
        with self._lock:
            known = set(self._files) | set(self._broken)
        return self._refresh(present | known)

    def _refresh(self, paths: Iterable[Path]) -> tuple[list[Event], list[StateError]]:
        """Bring the view of ``paths`` (files, or directories: everything under them) up to date."""
        files: set[Path] = set()
        for path in paths:
            if path.name.startswith("."):
                continue  # our temporary files, the lock and the journal
            if path.name.endswith(YAML_SUFFIXES) and not path.is_dir():
                files.add(path)
            elif path.is_dir():
                with self._lock:
                    files.update(known for known in self._files if path in known.parents)
                files.update(yaml_files(path))
            elif not path.exists():
                with self._lock:  # a directory that went away
                    files.update(known for known in self._files if path in known.parents)
        signatures = {path: file_signature(path) for path in files if is_state_file(self.root, path)}
        events: list[Event] = []
        errors: list[StateError] = []
        # Files that went away first: an object moved from one file to another is then not its own duplicate.
        for path in sorted(signatures, key=lambda path: (signatures[path] is not None, path)):
            try:
                events.extend(self._refresh_file(path, signatures[path]))
            except StateError as error:
                errors.append(error)
        with self._lock:
            retry = sorted(path for path, (_, _, duplicate) in self._broken.items() if duplicate)
        if retry and any(event == "DELETED" for event, _ in events):
            # A file refused for defining an object another file held may be fine now.
            errors = [error for error in errors if not str(error).startswith(tuple(f"{path}:" for path in retry))]
            for path in retry:
                try:
                    events.extend(self._refresh_file(path, file_signature(path), force=True))
                except StateError as error:
                    errors.append(error)
        return events, errors

    def _refresh_file(self, path: Path, current: Signature | None, *, force: bool = False) -> list[Event]:
        """Read ``path`` again if its signature (``current``, just taken) changed, and update the view
        (StateError: the file is broken, and the view keeps its last good content)."""
        with self._lock:
            known = self._files.get(path)
            broken = self._broken.get(path)
        if current is None:
            with self._lock:
                self._broken.pop(path, None)
                if self._files.get(path) is not known or known is None:
                    return []
                return self._forget_file(path)
        if not force and known is not None and known.signature == current:
            return []
        if not force and broken is not None and broken[0] == current:
            raise StateError(broken[1])  # unchanged since it failed: do not read it again
        try:
            objects = load_file(path)
        except StateError as error:
            with self._lock:
                self._broken[path] = (current, str(error), False)
            raise
        self.files_read += 1
        with self._lock:
            if self._files.get(path) is not known:
                return []  # a writer of this process replaced the file meanwhile: its view is newer
            keys: list[ObjectKey] = []
            for obj, line in objects:
                key = ObjectKey.of(obj)
                holder = self._entries.get(key)
                if key in keys or (holder is not None and holder.file != path):
                    other = path if key in keys else holder.file if holder is not None else path
                    message = f"{path}:{line}: {key} is also defined in {other}; keep one of them"
                    self._broken[path] = (current, message, True)
                    raise StateError(message)
                keys.append(key)
            self._broken.pop(path, None)
            events: list[Event] = []
            old_keys = set(known.keys) if known is not None else set()
            for key in old_keys - set(keys):
                events.append(("DELETED", self._remove(key)))
            for document, ((obj, _line), key) in enumerate(zip(objects, keys, strict=True)):
                obj.setdefault("metadata", {})["resourceVersion"] = resource_version(obj)
                previous = self._entries.get(key)
                self._put(key, Entry(obj, path, document))
                if previous is None:
                    events.append(("ADDED", obj))
                elif resources.meta(previous.obj).get("resourceVersion") != resources.meta(obj).get("resourceVersion"):
                    events.append(("MODIFIED", obj))
            self._set_file(path, _File(current, keys))
            for event, obj in events:
                self.index.apply(event, obj)
            return events

    def _set_file(self, path: Path, file: _File) -> None:
        self._files[path] = file
        self._signatures[str(path)] = file.signature

    def _drop_file(self, path: Path) -> _File | None:
        self._signatures.pop(str(path), None)
        return self._files.pop(path, None)

    def _unchanged(self, path: str) -> bool:
        """Whether the file at ``path`` still has the signature the view holds: the echo of our own
        write, told with one stat and no Path objects (the watcher sees every write we make)."""
        known = self._signatures.get(path)
        if known is None:
            return False
        try:
            found = os.stat(path)
        except OSError:
            return False
        return (found.st_ino, found.st_mtime_ns, found.st_size) == known

    def _forget_file(self, path: Path) -> list[Event]:
        """The file is gone: so are its objects (call with the lock held)."""
        known = self._drop_file(path)
        events: list[Event] = []
        for key in known.keys if known is not None else ():
            if key in self._entries and self._entries[key].file == path:
                obj = self._remove(key)
                self.index.apply("DELETED", obj)
                events.append(("DELETED", obj))
        return events

    def _put(self, key: ObjectKey, entry: Entry) -> None:
        self._versions[key.kind] = self._versions.get(key.kind, 0) + 1
        previous = self._entries.get(key)
        if previous is not None:
            self._unindex_owner(key, previous)
        self._entries[key] = entry
        self._kinds.setdefault(key.kind, {})[key] = entry
        owner = resources.labels(entry.obj).get(ownership.FEDERATION_LABEL)
        if isinstance(owner, str):
            self._owners.setdefault((key.kind, owner), {})[key] = entry

    def _remove(self, key: ObjectKey) -> KubeObject:
        self._versions[key.kind] = self._versions.get(key.kind, 0) + 1
        entry = self._entries.pop(key)
        kind = self._kinds.get(key.kind)
        if kind is not None:
            kind.pop(key, None)
        self._unindex_owner(key, entry)
        return entry.obj

    def _unindex_owner(self, key: ObjectKey, entry: Entry) -> None:
        owner = resources.labels(entry.obj).get(ownership.FEDERATION_LABEL)
        if not isinstance(owner, str):
            return
        group = self._owners.get((key.kind, owner))
        if group is not None:
            group.pop(key, None)
            if not group:
                del self._owners[(key.kind, owner)]

    def _replace_all(self, entries: dict[ObjectKey, Entry]) -> list[Event]:
        """Replace the whole view with a fresh load (call with the lock held)."""
        events: list[Event] = []
        for key in sorted(set(self._entries) - set(entries)):
            events.append(("DELETED", self._remove(key)))
        files: dict[Path, _File] = {}
        for key, entry in entries.items():
            previous = self._entries.get(key)
            if previous is None:
                events.append(("ADDED", entry.obj))
            elif resources.meta(previous.obj).get("resourceVersion") != resources.meta(entry.obj).get(
                "resourceVersion"
            ):
                events.append(("MODIFIED", entry.obj))
            self._put(key, entry)
            if entry.file not in files:
                signature = file_signature(entry.file)
                files[entry.file] = _File(signature if signature is not None else (0, 0, 0))
            files[entry.file].keys.append(key)
        self._files = files
        self._signatures = {str(path): file.signature for path, file in files.items()}
        self._broken.clear()
        for event, obj in events:
            self.index.apply(event, obj)
        return events

    def _emit(self, events: list[Event]) -> None:
        if not self._handlers:
            return
        for event, obj in events:
            for handler in list(self._handlers):
                try:
                    handler(event, clone(obj))
                except Exception:
                    log.exception("event handler failed for %s %s", event, ObjectKey.of(obj))

    # -- the journal: what other processes wrote -----------------------------------------------

    def _journal_position(self) -> tuple[int, int]:
        try:
            stat = os.stat(self.root / JOURNAL_FILE)
        except OSError:
            return (0, 0)
        return (stat.st_ino, stat.st_size)

    def _catch_up(self) -> None:
        """Read again what other processes wrote since we last looked (their journal lines)."""
        path = self.root / JOURNAL_FILE
        inode, offset = self._journal
        if self._journal_position() == (inode, offset):
            return  # nobody wrote since we last looked: one stat, the common case
        try:
            with open(path, "rb") as handle:
                current = os.fstat(handle.fileno()).st_ino
                if current == inode:
                    handle.seek(offset)
                    data = handle.read()
                else:
                    data = b""
        except FileNotFoundError:
            current, data = 0, b""
        if current != inode:
            # A new journal (or the first one): we cannot tell what changed before it, so look at everything.
            size = self._journal_position()[1] if current else 0
            self._journal = (current, size)
            self._apply_quietly(self._sweep())
            return
        complete = data[: data.rfind(b"\n") + 1]  # a line being appended right now is read next time
        if not complete:
            return
        self._journal = (inode, offset + len(complete))
        paths = {self.root / line for line in complete.decode("utf-8", "replace").splitlines() if line}
        self._apply_quietly(self._refresh(paths))

    def _apply_quietly(self, result: tuple[list[Event], list[StateError]]) -> None:
        events, errors = result
        self._emit(events)
        for error in errors:
            self._broken_logged(error)

    def _journal_append(self, paths: Iterable[Path]) -> None:
        """Record our writes for the other processes (called with both locks held, after
        :meth:`_catch_up`, so ``self._journal`` is the journal's current inode and size)."""
        prefix = len(str(self.root)) + 1
        lines = "".join(f"{str(path)[prefix:]}\n" for path in paths).encode()
        path = self.root / JOURNAL_FILE
        inode, offset = self._journal
        if offset > JOURNAL_LIMIT:
            fresh = self.root / f"{JOURNAL_FILE}.new"
            fresh.write_bytes(b"")
            os.replace(fresh, path)
            inode, offset = self._journal_position()
        if self._journal_fd is not None and self._journal_fd[0] != inode:
            os.close(self._journal_fd[1])  # another process (or we) started a new journal
            self._journal_fd = None
        if self._journal_fd is None:
            descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            current = os.fstat(descriptor).st_ino
            if current != inode:
                offset = 0
            inode = current
            self._journal_fd = (inode, descriptor)
        os.write(self._journal_fd[1], lines)
        self._journal = (inode, offset + len(lines))

    # -- reads -------------------------------------------------------------------------------

    def get(self, resource: Resource, namespace: str, name: str) -> KubeObject | None:
        found = self.peek(resource, namespace, name)
        return clone(found) if found is not None else None

    def peek(self, resource: Resource, namespace: str, name: str) -> KubeObject | None:
        """:meth:`get` without the copy, for callers that only look: never modify what it returns."""
        entry = self._entries.get(ObjectKey(resource.kind, namespace if resource.namespaced else "", name))
        return entry.obj if entry is not None else None

    def read(self, resource: Resource, namespace: str, name: str) -> KubeObject | None:
        """A fresh read: other processes' writes first, then the object's own file again (so a 409
        retry, or a hand edit of that file, is seen without waiting for the watcher)."""
        key = ObjectKey(resource.kind, namespace if resource.namespaced else "", name)
        self._catch_up()
        with self._lock:
            entry = self._entries.get(key)
        candidates = {entry.file} if entry is not None else set()
        where = {"kind": key.kind, "metadata": {"name": name, "namespace": key.namespace}}
        candidates.add(canonical_path(self.root, where))
        if self.poll_interval <= 0:
            self._apply_quietly(self._sweep())  # nothing watches: look at every file, read the changed
        else:
            self._apply_quietly(self._refresh(candidates))
        return self.get(resource, namespace, name)

    def list(
        self, resource: Resource, namespace: str | None = None, label_selector: str | None = None
    ) -> builtins.list[KubeObject]:
        return [clone(obj) for obj in self.peek_list(resource, namespace, label_selector)]

    def peek_list(
        self, resource: Resource, namespace: str | None = None, label_selector: str | None = None
    ) -> builtins.list[KubeObject]:
        """:meth:`list` without the copies, for callers that only look: never modify what it returns."""
        remembered = (resource.kind, namespace, label_selector or "")
        with self._lock:
            version = self._versions.get(resource.kind, 0)
            cached = self._listings.get(remembered)
            if cached is not None and cached[0] == version:
                return builtins.list(cached[1])
        found = self._peek_list(resource, namespace, label_selector)
        with self._lock:
            if self._versions.get(resource.kind, 0) == version:
                if len(self._listings) >= 64:
                    self._listings.clear()
                self._listings[remembered] = (version, found)
        return builtins.list(found)

    def _peek_list(
        self, resource: Resource, namespace: str | None, label_selector: str | None
    ) -> builtins.list[KubeObject]:
        selector = selectors.parse(label_selector)
        owner = next(
            (
                requirement.values[0]
                for requirement in selector.requirements
                if requirement.key == ownership.FEDERATION_LABEL
                and requirement.operator == selectors.EQUALS
                and len(requirement.values) == 1
            ),
            None,
        )
        with self._lock:
            # One federation's objects are found among its own, not among every federation's.
            kind = self._kinds.get(resource.kind, {}) if owner is None else self._owners.get((resource.kind, owner), {})
            chosen = [
                (key, entry.obj)
                for key, entry in kind.items()
                if (namespace is None or key.namespace == namespace) and selector.matches(resources.labels(entry.obj))
            ]
        chosen.sort(key=lambda item: item[0])
        return [obj for _, obj in chosen]

    # -- writes ------------------------------------------------------------------------------

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
                    self._batch.written = 0
            if directories:
                sync_directories(self.root, directories)

    def _flush(self) -> None:
        """Make the batch's writes so far durable (call with the lock held)."""
        directories, self._batch.directories = self._batch.directories, set()
        self._batch.written = 0
        if directories:
            sync_directories(self.root, directories)

    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[None]:
        with self._lock:
            if self._lock_fd is None:
                self.root.mkdir(parents=True, exist_ok=True)
                flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
                self._lock_fd = os.open(self.root / LOCK_FILE, flags, 0o644)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                # Another process may have written since our last look: decide on the disk's view.
                self._catch_up()
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the lock and journal files (``stop`` does too); the store opens them again if used."""
        with self._lock:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
            if self._journal_fd is not None:
                os.close(self._journal_fd[1])
                self._journal_fd = None

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

    def _write_file(self, path: Path, objects: builtins.list[KubeObject] | None) -> Signature | None:
        """Write (or, for None, remove) one file, durably unless in a batch; call with the locks held."""
        batched = self._batch.depth > 0
        if objects is None:
            path.unlink(missing_ok=True)
            if not batched:
                fsync_directory(path.parent)
        else:
            text = dump(objects[0]) if len(objects) == 1 else dump_all(objects)
            atomic_write(path, text, durable=not batched)
        self._journal_append([path])
        if batched:
            self._batch.directories.add(path.parent)
            self._batch.written += 1
            if self._batch.written >= BATCH_FLUSH:
                self._flush()
        return file_signature(path) if objects is not None else None

    def _file_objects(
        self, path: Path, replace: dict[ObjectKey, KubeObject | None]
    ) -> tuple[builtins.list[ObjectKey], builtins.list[KubeObject]]:
        """The objects of a file in the view, with some replaced (or, None, removed): what to write."""
        known = self._files.get(path)
        keys: builtins.list[ObjectKey] = []
        objects: builtins.list[KubeObject] = []
        for key in known.keys if known is not None else []:
            if key in replace:
                obj = replace[key]
                if obj is None:
                    continue
            else:
                obj = _without_version(self._entries[key].obj)
            keys.append(key)
            objects.append(obj)
        return keys, objects

    def _store(self, stored: KubeObject, previous: Entry | None) -> KubeObject:
        """Write ``stored`` (the store's own copy from now on) to disk (in place for a file that
        holds more) and update the view."""
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
            self._put(key, Entry(stored, target, keys.index(key)))
            self._set_file(target, _File(signature or (0, 0, 0), keys))
            self._broken.pop(target, None)
            self.index.apply(event, stored)
        self._emit([(event, stored)])
        return clone_object(stored)

    def create(self, obj: KubeObject) -> KubeObject:
        key = ObjectKey.of(obj)
        with self._write_lock():
            if key in self._entries:
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
            keys, objects = self._file_objects(current.file, {key: None})
            signature = self._write_file(current.file, objects or None)
            with self._lock:
                self._remove(key)
                if objects:
                    # Positions of later documents in the same file moved up by one.
                    for position, other in enumerate(keys):
                        self._entries[other].document = position
                    self._set_file(current.file, _File(signature or (0, 0, 0), keys))
                else:
                    self._drop_file(current.file)
                self.index.apply("DELETED", current.obj)
            self._emit([("DELETED", current.obj)])
        self.writes.add("delete")

    def _require(self, key: ObjectKey) -> Entry:
        entry = self._entries.get(key)
        if entry is None:
            raise apierrors.not_found(key)
        return entry

    @staticmethod
    def _check_version(obj: KubeObject, current: KubeObject, key: ObjectKey) -> None:
        wanted = resources.meta(obj).get("resourceVersion")
        if wanted and wanted != resources.meta(current).get("resourceVersion"):
            raise apierrors.stale_version(key)


def _without_version(obj: KubeObject) -> KubeObject:
    """A copy of ``obj`` as it is written to disk: without the derived resourceVersion."""
    copied = clone_object(obj)
    metadata = copied.setdefault("metadata", {})
    metadata.pop("resourceVersion", None)
    return copied


# The file format is the store's interface too: callers reach it through the store that uses it.
__all__ = [
    "CLUSTER_SCOPE_DIR",
    "AdmissionHook",
    "StateDirStore",
    "StateError",
    "WriteVerdict",
    "canonical_path",
    "dump",
    "load_file",
    "load_state",
    "load_text",
    "resource_version",
]
