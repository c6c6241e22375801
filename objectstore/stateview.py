"""The state directory store's view of the directory: what it knows, kept per file.

Every object by key, by kind and by federation label (what the reconciler lists most), and every
file with its signature (inode, mtime, size) when read and the objects it holds, in order.  A
changed file is read again alone (``objectstore.staterefresh``); an unchanged one is never read
twice.  The store's own writes update the view directly (``objectstore.statewriter``), so the
watcher's event for its own rename finds the signature it recorded and reads nothing
(:meth:`StateView.unchanged`).

The view's objects are shared by everything inside the store: what leaves the store is a
:func:`clone`.  One lock, the store's, guards the view.
"""

from __future__ import annotations

import builtins
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from federation import ownership, resources, selectors
from federation.index import ObjectIndex
from federation.resources import KubeObject, ObjectKey, Resource
from objectstore.statefiles import Entry, Signature, file_signature

Event = tuple[str, KubeObject]


def clone(value: Any) -> Any:
    """A deep copy of a JSON-like value (what YAML and the API give): several times faster than
    ``copy.deepcopy``, which must also handle cycles and arbitrary classes.  Other values (dates,
    numbers, strings) are immutable and shared."""
    if isinstance(value, dict):
        return {key: clone(item) for key, item in value.items()}
    if isinstance(value, list):
        return [clone(item) for item in value]
    if isinstance(value, set):
        return set(value)
    return value


def clone_object(obj: KubeObject) -> KubeObject:
    """:func:`clone` of an object."""
    copied: KubeObject = clone(obj)
    return copied


@dataclass(eq=False)
class KnownFile:
    """What the view holds of one file: its signature when read, and its objects in order."""

    signature: Signature
    keys: list[ObjectKey] = field(default_factory=list)


class StateView:
    """The objects and files of one state directory, as last read or written; see the module docstring."""

    def __init__(self, root: Path, lock: threading.RLock, index: ObjectIndex) -> None:
        self.root = root
        self.lock = lock
        self.index = index
        self.entries: dict[ObjectKey, Entry] = {}
        self._kinds: dict[str, dict[ObjectKey, Entry]] = {}
        # (kind, federation label) -> the objects that carry it: what the reconciler lists most.
        self._owners: dict[tuple[str, str], dict[ObjectKey, Entry]] = {}
        # A listing is remembered until its kind changes: an unchanged sync lists in O(1).
        self._versions: dict[str, int] = {}
        self._listings: dict[tuple[str, str | None, str], tuple[int, builtins.list[KubeObject]]] = {}
        self.files: dict[Path, KnownFile] = {}
        self._signatures: dict[str, Signature] = {}  # str(path) -> the signature in files, for the watcher
        self.broken: dict[Path, tuple[Signature | None, str, bool]] = {}  # signature, error, duplicate?

    def set_file(self, path: Path, file: KnownFile) -> None:
        self.files[path] = file
        self._signatures[str(path)] = file.signature

    def drop_file(self, path: Path) -> KnownFile | None:
        self._signatures.pop(str(path), None)
        return self.files.pop(path, None)

    def unchanged(self, path: str) -> bool:
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

    def forget_file(self, path: Path) -> list[Event]:
        """The file is gone: so are its objects (call with the lock held)."""
        known = self.drop_file(path)
        events: list[Event] = []
        for key in known.keys if known is not None else ():
            if key in self.entries and self.entries[key].file == path:
                obj = self.remove(key)
                self.index.apply("DELETED", obj)
                events.append(("DELETED", obj))
        return events

    def put(self, key: ObjectKey, entry: Entry) -> None:
        self._versions[key.kind] = self._versions.get(key.kind, 0) + 1
        previous = self.entries.get(key)
        if previous is not None:
            self._unindex_owner(key, previous)
        self.entries[key] = entry
        self._kinds.setdefault(key.kind, {})[key] = entry
        owner = resources.labels(entry.obj).get(ownership.FEDERATION_LABEL)
        if isinstance(owner, str):
            self._owners.setdefault((key.kind, owner), {})[key] = entry

    def remove(self, key: ObjectKey) -> KubeObject:
        self._versions[key.kind] = self._versions.get(key.kind, 0) + 1
        entry = self.entries.pop(key)
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

    def replace_all(self, entries: dict[ObjectKey, Entry]) -> list[Event]:
        """Replace the whole view with a fresh load (call with the lock held)."""
        events: list[Event] = []
        for key in sorted(set(self.entries) - set(entries)):
            events.append(("DELETED", self.remove(key)))
        files: dict[Path, KnownFile] = {}
        for key, entry in entries.items():
            previous = self.entries.get(key)
            if previous is None:
                events.append(("ADDED", entry.obj))
            elif resources.meta(previous.obj).get("resourceVersion") != resources.meta(entry.obj).get(
                "resourceVersion"
            ):
                events.append(("MODIFIED", entry.obj))
            self.put(key, entry)
            if entry.file not in files:
                signature = file_signature(entry.file)
                files[entry.file] = KnownFile(signature if signature is not None else (0, 0, 0))
            files[entry.file].keys.append(key)
        self.files = files
        self._signatures = {str(path): file.signature for path, file in files.items()}
        self.broken.clear()
        for event, obj in events:
            self.index.apply(event, obj)
        return events

    def peek_list(
        self, resource: Resource, namespace: str | None = None, label_selector: str | None = None
    ) -> builtins.list[KubeObject]:
        """The objects of ``resource`` (in ``namespace``, matching ``label_selector``) in key order, the
        view's own: never modify what it returns."""
        remembered = (resource.kind, namespace, label_selector or "")
        with self.lock:
            version = self._versions.get(resource.kind, 0)
            cached = self._listings.get(remembered)
            if cached is not None and cached[0] == version:
                return builtins.list(cached[1])
        found = self._peek_list(resource, namespace, label_selector)
        with self.lock:
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
        with self.lock:
            # One federation's objects are found among its own, not among every federation's.
            kind = self._kinds.get(resource.kind, {}) if owner is None else self._owners.get((resource.kind, owner), {})
            chosen = [
                (key, entry.obj)
                for key, entry in kind.items()
                if (namespace is None or key.namespace == namespace) and selector.matches(resources.labels(entry.obj))
            ]
        chosen.sort(key=lambda item: item[0])
        return [obj for _, obj in chosen]
