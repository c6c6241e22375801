"""Bringing the state directory store's view up to date from the files that changed.

A sweep compares every file's signature with the view's and reads the changed ones; a refresh
does the same for the paths the watcher (``objectstore.statewatch``) or the journal
(``objectstore.statejournal``) named.  A file is read again alone, and only when its signature
changed.  What changed is handed to the store's event handlers (``emit``) and applied to the
view's object index.

A file that does not parse (an editor half-way through it, or a file being renamed into place)
keeps its last good content in the view, and the error is logged once; it is read again when it
changes.  So is a file that defines an object another file holds: it is read again once the other
copy goes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from federation import resources
from federation.resources import ObjectKey
from objectstore.statefiles import (
    YAML_SUFFIXES,
    Entry,
    Signature,
    file_signature,
    is_state_file,
    resource_version,
    yaml_files,
)
from objectstore.stateformat import StateError, load_file
from objectstore.stateview import Event, KnownFile, StateView

log = logging.getLogger(__name__)


class Refresher:
    """Reads what changed on disk into ``view`` and reports it to ``emit``; see the module docstring."""

    def __init__(self, view: StateView, emit: Callable[[list[Event]], None]) -> None:
        self.view = view
        self._emit = emit
        self.last_error: str | None = None
        self.files_read = 0  # files parsed since start: what change detection costs (for tests, benchmarks)

    def sweep_logged(self) -> None:
        try:
            self.apply(self.sweep())
        except StateError as error:
            self.broken_logged(error)

    def refresh_logged(self, paths: Iterable[Path]) -> None:
        try:
            self.apply(self.refresh(paths))
        except StateError as error:
            self.broken_logged(error)

    def broken_logged(self, error: StateError) -> None:
        # Someone may be half-way through editing a file: keep serving its last good content.
        if str(error) != self.last_error:
            log.error("state directory not reloaded, keeping the last good view: %s", error)
        self.last_error = str(error)

    def apply(self, result: tuple[list[Event], list[StateError]]) -> None:
        events, errors = result
        self._emit(events)
        if errors:
            raise errors[0]
        self.last_error = None

    def apply_quietly(self, result: tuple[list[Event], list[StateError]]) -> None:
        events, errors = result
        self._emit(events)
        for error in errors:
            self.broken_logged(error)

    def sweep(self) -> tuple[list[Event], list[StateError]]:
        """Compare every file's signature with the view's; read the changed ones."""
        if not self.view.root.is_dir():
            error = StateError(f"{self.view.root}: state directory does not exist (create it, or point --state at it)")
            return [], [error]
        present = set(yaml_files(self.view.root))
        with self.view.lock:
            known = set(self.view.files) | set(self.view.broken)
        return self.refresh(present | known)

    def refresh(self, paths: Iterable[Path]) -> tuple[list[Event], list[StateError]]:
        """Bring the view of ``paths`` (files, or directories: everything under them) up to date."""
        files: set[Path] = set()
        for path in paths:
            if path.name.startswith("."):
                continue  # our temporary files, the lock and the journal
            if path.name.endswith(YAML_SUFFIXES) and not path.is_dir():
                files.add(path)
            elif path.is_dir():
                with self.view.lock:
                    files.update(known for known in self.view.files if path in known.parents)
                files.update(yaml_files(path))
            elif not path.exists():
                with self.view.lock:  # a directory that went away
                    files.update(known for known in self.view.files if path in known.parents)
        signatures = {path: file_signature(path) for path in files if is_state_file(self.view.root, path)}
        events: list[Event] = []
        errors: list[StateError] = []
        # Files that went away first: an object moved from one file to another is then not its own duplicate.
        for path in sorted(signatures, key=lambda path: (signatures[path] is not None, path)):
            try:
                events.extend(self._refresh_file(path, signatures[path]))
            except StateError as error:
                errors.append(error)
        with self.view.lock:
            retry = sorted(path for path, (_, _, duplicate) in self.view.broken.items() if duplicate)
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
        with self.view.lock:
            known = self.view.files.get(path)
            broken = self.view.broken.get(path)
        if current is None:
            with self.view.lock:
                self.view.broken.pop(path, None)
                if self.view.files.get(path) is not known or known is None:
                    return []
                return self.view.forget_file(path)
        if not force and known is not None and known.signature == current:
            return []
        if not force and broken is not None and broken[0] == current:
            raise StateError(broken[1])  # unchanged since it failed: do not read it again
        try:
            objects = load_file(path)
        except StateError as error:
            with self.view.lock:
                self.view.broken[path] = (current, str(error), False)
            raise
        self.files_read += 1
        with self.view.lock:
            if self.view.files.get(path) is not known:
                return []  # a writer of this process replaced the file meanwhile: its view is newer
            keys: list[ObjectKey] = []
            for obj, line in objects:
                key = ObjectKey.of(obj)
                holder = self.view.entries.get(key)
                if key in keys or (holder is not None and holder.file != path):
                    other = path if key in keys else holder.file if holder is not None else path
                    message = f"{path}:{line}: {key} is also defined in {other}; keep one of them"
                    self.view.broken[path] = (current, message, True)
                    raise StateError(message)
                keys.append(key)
            self.view.broken.pop(path, None)
            events: list[Event] = []
            old_keys = set(known.keys) if known is not None else set()
            for key in old_keys - set(keys):
                events.append(("DELETED", self.view.remove(key)))
            for document, ((obj, _line), key) in enumerate(zip(objects, keys, strict=True)):
                obj.setdefault("metadata", {})["resourceVersion"] = resource_version(obj)
                previous = self.view.entries.get(key)
                self.view.put(key, Entry(obj, path, document))
                if previous is None:
                    events.append(("ADDED", obj))
                elif resources.meta(previous.obj).get("resourceVersion") != resources.meta(obj).get("resourceVersion"):
                    events.append(("MODIFIED", obj))
            self.view.set_file(path, KnownFile(current, keys))
            for event, obj in events:
                self.view.index.apply(event, obj)
            return events
