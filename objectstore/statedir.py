"""The state-directory backend: a cluster's objects as YAML files.

Readers take every ``*.yaml``/``*.yml`` file under the directory, recursively, several documents
per file allowed; a malformed file is an error naming the file and line, never a silent skip.
Writers put one object per file at ``<dir>/<namespace or _cluster>/<kind>/<name>.yaml`` and
replace files atomically (write, fsync, rename) under a lock, so several processes (webhook,
exporter, reconciler of one local cluster) can share a directory.

There is no server to hand out resourceVersions, so an object's resourceVersion is a hash of its
content: every process derives the same one, and an update made from a stale copy is refused with
the apiserver's Conflict message.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import fcntl
import hashlib
import json
import logging
import os
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from federation import resources, selectors
from federation.index import ObjectIndex
from federation.resources import KubeObject, ObjectKey, Resource
from federation.store import (
    Conflict,
    EventHandler,
    NotFound,
    Rejected,
    StoreError,
    Watch,
    WriteCounter,
)

log = logging.getLogger(__name__)

CLUSTER_SCOPE_DIR = "_cluster"
LOCK_FILE = ".lock"
# Kinds whose status lives behind a status subresource: a plain update must not change it.
_STATUS_SUBRESOURCE_KINDS = {resources.ISTIO_FEDERATION.kind}


class StateError(Exception):
    """The state directory cannot be read: the message names the file and line."""


@dataclass(frozen=True)
class AdmissionOutcome:
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
    ) -> AdmissionOutcome | None:
        """None when no webhook applies to this resource."""


@dataclass
class _Entry:
    obj: KubeObject
    file: Path
    document: int  # position of the document in its file, for multi-document files


def resource_version(obj: KubeObject) -> str:
    """A content hash: the same object gives the same version in every process."""
    body = copy.deepcopy(obj)
    body.get("metadata", {}).pop("resourceVersion", None)
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def canonical_path(root: Path, obj: KubeObject) -> Path:
    namespace = resources.namespace_of(obj) or CLUSTER_SCOPE_DIR
    return root / namespace / str(obj.get("kind", "")).lower() / f"{resources.name_of(obj)}.yaml"


def _yaml_files(root: Path) -> list[Path]:
    files = [
        path
        for pattern in ("*.yaml", "*.yml")
        for path in root.rglob(pattern)
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(root).parts)
    ]
    return sorted(files)


def _check_document(doc: Any, where: str, *, require_namespace: bool = True) -> KubeObject:
    if not isinstance(doc, dict):
        raise StateError(f"{where}: expected a Kubernetes object (a mapping), got {type(doc).__name__}")
    missing = [key for key in ("apiVersion", "kind") if not isinstance(doc.get(key), str) or not doc.get(key)]
    if missing:
        raise StateError(f"{where}: object has no {' or '.join(missing)}; every document needs apiVersion and kind")
    metadata = doc.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str) or not metadata["name"]:
        raise StateError(f"{where}: {doc['kind']} has no metadata.name")
    descriptor = resources.by_kind(doc["kind"])
    if require_namespace and descriptor is not None and descriptor.namespaced and not metadata.get("namespace"):
        raise StateError(f"{where}: {doc['kind']} {metadata['name']!r} is namespaced but has no metadata.namespace")
    return doc


def load_file(path: Path, *, require_namespace: bool = True) -> list[tuple[KubeObject, int]]:
    """The objects in one file with their 1-based starting lines."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise StateError(f"{path}: cannot read: {error}") from error
    return load_text(text, str(path), require_namespace=require_namespace)


def load_text(text: str, path: str, *, require_namespace: bool = True) -> list[tuple[KubeObject, int]]:
    """The objects in YAML ``text`` (from ``path``, for messages) with their 1-based starting lines."""
    objects: list[tuple[KubeObject, int]] = []
    loader = yaml.SafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                break
            line = node.start_mark.line + 1
            doc = loader.construct_document(node)
            if doc is None:
                continue
            objects.append((_check_document(doc, f"{path}:{line}", require_namespace=require_namespace), line))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise StateError(f"{path}{line}: invalid YAML: {error.problem or error}") from error
    except yaml.YAMLError as error:
        raise StateError(f"{path}: invalid YAML: {error}") from error
    finally:
        loader.dispose()
    return objects


def load_state(root: Path) -> dict[ObjectKey, _Entry]:
    if not root.is_dir():
        raise StateError(f"{root}: state directory does not exist (create it, or point --state at it)")
    entries: dict[ObjectKey, _Entry] = {}
    for path in _yaml_files(root):
        for document, (obj, line) in enumerate(load_file(path)):
            key = ObjectKey.of(obj)
            if key in entries:
                first = entries[key]
                raise StateError(f"{path}:{line}: {key} is also defined in {first.file}; keep one of them")
            obj.setdefault("metadata", {})["resourceVersion"] = resource_version(obj)
            entries[key] = _Entry(obj, path, document)
    return entries


def _signature(root: Path) -> tuple[tuple[str, int, int, int], ...]:
    """What tells us the directory changed without parsing it.

    The inode is part of it because writers replace files by rename: a rewrite of the same size
    within one tick of the kernel's coarse file clock still gets a new inode.
    """
    signature = []
    for path in _yaml_files(root):
        with contextlib.suppress(OSError):
            stat = path.stat()
            signature.append((str(path), stat.st_ino, stat.st_mtime_ns, stat.st_size))
    return tuple(signature)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def dump(obj: KubeObject) -> str:
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, allow_unicode=True)


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _status_error(cls: type[StoreError], code: int, reason: str, message: str, key: ObjectKey) -> StoreError:
    descriptor = resources.by_kind(key.kind)
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": {
            "name": key.name,
            "group": descriptor.group if descriptor else "",
            "kind": descriptor.plural if descriptor else key.kind,
        },
        "code": code,
    }
    return cls(message, code=code, status=status)


class StateDirStore:
    """ObjectStore over a directory; see the module docstring."""

    def __init__(
        self,
        root: Path,
        watches: list[Watch] | None = None,
        *,
        poll_interval: float = 1.0,
        admission: AdmissionHook | None = None,
        username: str = "kubernetes-admin",
    ) -> None:
        self.root = Path(root)
        self.watches = list(watches or [])
        self.poll_interval = poll_interval
        self.admission = admission
        self.username = username
        self.index = ObjectIndex()
        self.writes = WriteCounter()
        self.last_warnings: tuple[str, ...] = ()
        self.last_error: str | None = None
        self._entries: dict[ObjectKey, _Entry] = {}
        self._signature: tuple[tuple[str, int, int, int], ...] = ()
        self._lock = threading.RLock()
        self._handlers: list[EventHandler] = []
        self._synced = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Load everything now (raising StateError if the directory is unreadable), then poll."""
        self.reload()
        if self._thread is None and self.poll_interval > 0:
            self._thread = threading.Thread(target=self._poll, name=f"statedir:{self.root}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=self.poll_interval + 5)
            self._thread = None

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def wait_synced(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    def subscribe(self, handler: EventHandler) -> None:
        self._handlers.append(handler)

    def _poll(self) -> None:
        while not self._stopping.wait(self.poll_interval):
            if _signature(self.root) == self._signature:
                continue
            try:
                self.reload()
            except StateError as error:
                # Someone may be half-way through editing a file: keep serving the last good view.
                if str(error) != self.last_error:
                    log.error("state directory not reloaded, keeping the last good view: %s", error)
                self.last_error = str(error)

    def reload(self) -> None:
        signature = _signature(self.root)
        entries = load_state(self.root)
        with self._lock:
            events = self._diff(self._entries, entries)
            self._entries = entries
            self._signature = signature
            for event, obj in events:
                self.index.apply(event, obj)
        self.last_error = None
        self._synced.set()
        self._emit(events)

    @staticmethod
    def _diff(old: dict[ObjectKey, _Entry], new: dict[ObjectKey, _Entry]) -> list[tuple[str, KubeObject]]:
        events: list[tuple[str, KubeObject]] = []
        for key in sorted(set(old) | set(new)):
            if key not in new:
                events.append(("DELETED", old[key].obj))
            elif key not in old:
                events.append(("ADDED", new[key].obj))
            elif resources.meta(old[key].obj).get("resourceVersion") != resources.meta(new[key].obj).get(
                "resourceVersion"
            ):
                events.append(("MODIFIED", new[key].obj))
        return events

    def _emit(self, events: list[tuple[str, KubeObject]]) -> None:
        for event, obj in events:
            for handler in list(self._handlers):
                try:
                    handler(event, copy.deepcopy(obj))
                except Exception:
                    log.exception("event handler failed for %s %s", event, ObjectKey.of(obj))

    # -- reads -------------------------------------------------------------------------------

    def get(self, resource: Resource, namespace: str, name: str) -> KubeObject | None:
        with self._lock:
            entry = self._entries.get(ObjectKey(resource.kind, namespace if resource.namespaced else "", name))
            return copy.deepcopy(entry.obj) if entry else None

    def read(self, resource: Resource, namespace: str, name: str) -> KubeObject | None:
        """A fresh read: reload from disk first, so a 409 retry sees other processes' writes."""
        with contextlib.suppress(StateError):
            self.reload()
        return self.get(resource, namespace, name)

    def list(
        self, resource: Resource, namespace: str | None = None, label_selector: str | None = None
    ) -> list[KubeObject]:
        selector = selectors.parse(label_selector)
        with self._lock:
            return [
                copy.deepcopy(entry.obj)
                for key, entry in sorted(self._entries.items())
                if key.kind == resource.kind
                and (namespace is None or key.namespace == namespace)
                and selector.matches(resources.labels(entry.obj))
            ]

    # -- writes ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / LOCK_FILE, "a+", encoding="utf-8") as handle, self._lock:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                # Another process may have written since our last look: decide on the disk's view.
                # Re-parsing only when the directory changed keeps a burst of writes linear.
                if _signature(self.root) != self._signature:
                    with contextlib.suppress(StateError):
                        self.reload()
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _admit(self, operation: str, obj: KubeObject | None, old: KubeObject | None) -> None:
        self.last_warnings = ()
        if self.admission is None:
            return
        subject = obj if obj is not None else old
        assert subject is not None
        descriptor = resources.by_kind(str(subject.get("kind")))
        if descriptor is None:
            return
        outcome = self.admission.review(
            operation=operation, resource=descriptor, obj=obj, old=old, username=self.username
        )
        if outcome is None:
            return
        self.last_warnings = outcome.warnings
        for warning in outcome.warnings:
            log.warning("admission warning for %s: %s", ObjectKey.of(subject), warning)
        if not outcome.allowed:
            raise Rejected(outcome.message, code=outcome.code or 400, status=outcome.status)

    def _store(self, obj: KubeObject, previous: _Entry | None) -> KubeObject:
        """Write ``obj`` to disk (in place for a file that holds only it) and update the cache."""
        stored = copy.deepcopy(obj)
        stored.setdefault("metadata", {}).pop("resourceVersion", None)
        if previous is not None and self._documents_in(previous.file) > 1:
            documents = [doc for doc, _ in load_file(previous.file)]
            documents[previous.document] = stored
            text = "---\n".join(dump(doc) for doc in documents)
            target, document = previous.file, previous.document
        else:
            target = previous.file if previous is not None else canonical_path(self.root, stored)
            text, document = dump(stored), 0
        _atomic_write(target, text)
        stored["metadata"]["resourceVersion"] = resource_version(stored)
        key = ObjectKey.of(stored)
        event = "MODIFIED" if previous is not None else "ADDED"
        with self._lock:
            self._entries[key] = _Entry(stored, target, document)
            self._signature = _signature(self.root)
            self.index.apply(event, stored)
        self._emit([(event, stored)])
        return copy.deepcopy(stored)

    @staticmethod
    def _documents_in(path: Path) -> int:
        try:
            return len(load_file(path))
        except StateError:
            return 1

    def create(self, obj: KubeObject) -> KubeObject:
        key = ObjectKey.of(obj)
        with self._write_lock():
            if key in self._entries:
                raise _status_error(
                    Conflict, 409, "AlreadyExists", f'{_group_resource(key)} "{key.name}" already exists', key
                )
            new = copy.deepcopy(obj)
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
            new = copy.deepcopy(obj)
            if key.kind in _STATUS_SUBRESOURCE_KINDS:
                new.pop("status", None)
                if "status" in current.obj:
                    new["status"] = copy.deepcopy(current.obj["status"])
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
            new = copy.deepcopy(current.obj)
            new["status"] = _merge_patch(current.obj.get("status"), patch.get("status"))
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
            if self._documents_in(current.file) > 1:
                documents = [
                    doc for position, (doc, _) in enumerate(load_file(current.file)) if position != current.document
                ]
                _atomic_write(current.file, "---\n".join(dump(doc) for doc in documents))
            else:
                current.file.unlink(missing_ok=True)
            with self._lock:
                del self._entries[key]
                # Positions of later documents in the same file moved up by one.
                for entry in self._entries.values():
                    if entry.file == current.file and entry.document > current.document:
                        entry.document -= 1
                self._signature = _signature(self.root)
                self.index.apply("DELETED", current.obj)
            self._emit([("DELETED", current.obj)])
        self.writes.add("delete")

    def _require(self, key: ObjectKey) -> _Entry:
        entry = self._entries.get(key)
        if entry is None:
            raise _status_error(NotFound, 404, "NotFound", f'{_group_resource(key)} "{key.name}" not found', key)
        return entry

    @staticmethod
    def _check_version(obj: KubeObject, current: KubeObject, key: ObjectKey) -> None:
        wanted = resources.meta(obj).get("resourceVersion")
        if wanted and wanted != resources.meta(current).get("resourceVersion"):
            message = (
                f'Operation cannot be fulfilled on {_group_resource(key)} "{key.name}": the object has been '
                "modified; please apply your changes to the latest version and try again"
            )
            raise _status_error(Conflict, 409, "Conflict", message, key)


def _group_resource(key: ObjectKey) -> str:
    descriptor = resources.by_kind(key.kind)
    return descriptor.group_resource if descriptor else key.kind.lower()
