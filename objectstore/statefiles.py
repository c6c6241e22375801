"""The state directory's files: which are read, where an object is written, and loading them all.

Readers take every ``*.yaml``/``*.yml`` file under the directory, recursively (names starting with
a dot are skipped: temporary files, the lock and the journal), several documents per file allowed
(the format is ``objectstore.stateformat``).  Writers put one object per file at
``<dir>/<namespace or _cluster>/<kind>/<name>.yaml`` and replace files atomically
(``objectstore.atomicfiles``).  An object's resourceVersion is a hash of its content, so every
process derives the same one (``objectstore.statedir`` builds the store on this).  A file's
:data:`Signature` tells that it changed without reading it.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from federation import resources
from federation.resources import KubeObject, ObjectKey
from objectstore.stateformat import StateError, load_file

CLUSTER_SCOPE_DIR = "_cluster"
YAML_SUFFIXES = (".yaml", ".yml")

Signature = tuple[int, int, int]
"""What tells us a file changed without reading it: (inode, mtime in ns, size).

The inode is part of it because writers replace files by rename: a rewrite of the same size
within one tick of the kernel's coarse file clock still gets a new inode.
"""


@dataclass
class Entry:
    obj: KubeObject
    file: Path
    document: int  # position of the document in its file, for multi-document files


def resource_version(obj: KubeObject) -> str:
    """A content hash: the same object gives the same version in every process."""
    metadata = obj.get("metadata")
    body = obj
    if isinstance(metadata, dict) and "resourceVersion" in metadata:
        body = {**obj, "metadata": {key: value for key, value in metadata.items() if key != "resourceVersion"}}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def canonical_path(root: Path, obj: KubeObject) -> Path:
    namespace = resources.namespace_of(obj) or CLUSTER_SCOPE_DIR
    return root / namespace / str(obj.get("kind", "")).lower() / f"{resources.name_of(obj)}.yaml"


def is_state_file(root: Path, path: Path) -> bool:
    """A YAML file the store reads: suffix .yaml/.yml, no part of its path under ``root`` hidden."""
    if not path.name.endswith(YAML_SUFFIXES):
        return False
    base, text = str(root).rstrip("/") + "/", str(path)
    if not text.startswith(base):
        return False
    return not any(part.startswith(".") for part in text[len(base) :].split("/"))


def yaml_files(root: Path) -> list[Path]:
    """Every state file under ``root`` (or under one of its subdirectories), sorted.

    ``os.scandir`` tells files from directories without a ``stat`` of each (symbolic links are
    followed, as before)."""
    found: list[Path] = []
    pending = [str(root)]
    while pending:
        try:
            entries = os.scandir(pending.pop())
        except OSError:
            continue  # gone, or unreadable: as os.walk, skip it
        with entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                try:
                    if entry.is_dir():
                        pending.append(entry.path)
                    elif entry.name.endswith(YAML_SUFFIXES) and entry.is_file():
                        found.append(Path(entry.path))
                except OSError:
                    continue
    return sorted(found)


def file_signature(path: Path) -> Signature | None:
    """The file's signature, or None when it is gone (or is not a regular file)."""
    try:
        found = path.stat()
    except OSError:
        return None
    if not stat.S_ISREG(found.st_mode):
        return None
    return (found.st_ino, found.st_mtime_ns, found.st_size)


def load_state(root: Path) -> dict[ObjectKey, Entry]:
    """Every object under ``root``: the first error (a malformed file, one object twice) is raised."""
    if not root.is_dir():
        raise StateError(f"{root}: state directory does not exist (create it, or point --state at it)")
    entries: dict[ObjectKey, Entry] = {}
    for path in yaml_files(root):
        for document, (obj, line) in enumerate(load_file(path)):
            key = ObjectKey.of(obj)
            if key in entries:
                first = entries[key]
                raise StateError(f"{path}:{line}: {key} is also defined in {first.file}; keep one of them")
            obj.setdefault("metadata", {})["resourceVersion"] = resource_version(obj)
            entries[key] = Entry(obj, path, document)
    return entries


def signature(root: Path) -> tuple[tuple[str, int, int, int], ...]:
    """The signature of every state file under ``root`` (a whole-directory comparison, for tools)."""
    found = []
    for path in yaml_files(root):
        current = file_signature(path)
        if current is not None:
            found.append((str(path), *current))
    return tuple(found)
