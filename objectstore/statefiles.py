"""The state directory's files: YAML objects in, YAML objects out.

Readers take every ``*.yaml``/``*.yml`` file under the directory, recursively (names starting with
a dot are skipped: temporary files, the lock and the journal), several documents per file allowed;
a malformed file is an error naming the file and line, never a silent skip.  Writers put one object
per file at ``<dir>/<namespace or _cluster>/<kind>/<name>.yaml`` and replace files atomically
(write a temporary file, rename it over the old one).  An object's resourceVersion is a hash of its
content, so every process derives the same one (``objectstore.statedir`` builds the store on this).

Speed.  libyaml's C parser and emitter (``yaml.CSafeLoader``/``CSafeDumper``, part of PyYAML's
wheels) are about six times faster than the pure-Python ones; without libyaml the pure-Python ones
are used.  A file the C parser refuses is parsed again by the pure-Python one, whose messages (and
lines) are the ones we print, so an error reads the same either way.

Durability (:func:`atomic_write`, :func:`sync_directories`).  The rename is what keeps readers from
ever seeing half a file, and it always stays.  ``durable=True`` also fsyncs the file before the
rename and its directory after it, so the write survives a power cut once it returns, and a crash
leaves the old or the new file, never a torn one.  ``durable=False`` skips both: the caller makes a
whole batch durable at once with :func:`sync_directories` (``syncfs`` of the file system, then an
fsync of each directory written), one flush instead of two per file.  Until then a power cut (not
a process crash: the kernel holds the data) may lose the batch's writes, and on file systems
without ext4's replace-by-rename ordering leave a new file empty.  ``objectstore.statedir`` only
batches the reconciler's bulk writes, which the next sync rewrites anyway.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import itertools
import json
import os
import re
import stat
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from federation import resources
from federation.resources import KubeObject, ObjectKey

CLUSTER_SCOPE_DIR = "_cluster"
YAML_SUFFIXES = (".yaml", ".yml")

# libyaml when PyYAML was built with it (every manylinux wheel is), else the pure-Python classes.
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_FAST_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

Signature = tuple[int, int, int]
"""What tells us a file changed without reading it: (inode, mtime in ns, size).

The inode is part of it because writers replace files by rename: a rewrite of the same size
within one tick of the kernel's coarse file clock still gets a new inode.
"""


class StateError(Exception):
    """The state directory cannot be read: the message names the file and line."""


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
    if _FAST_LOADER_MEMO is not None:
        try:
            documents = _documents(text, _FAST_LOADER_MEMO)
        except (yaml.YAMLError, _NotSimple):
            pass  # the pure-Python parser below words the error (and counts its line) as we print it
        else:
            return [
                (_check_document(doc, f"{path}:{line}", require_namespace=require_namespace), line)
                for doc, line in documents
            ]
    try:
        documents = _documents(text, yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise StateError(f"{path}{line}: invalid YAML: {error.problem or error}") from error
    except yaml.YAMLError as error:
        raise StateError(f"{path}: invalid YAML: {error}") from error
    return [
        (_check_document(doc, f"{path}:{line}", require_namespace=require_namespace), line) for doc, line in documents
    ]


def _documents(text: str, loader_class: Any) -> list[tuple[Any, int]]:
    """Every non-empty document of ``text`` with its 1-based starting line."""
    documents: list[tuple[Any, int]] = []
    loader = loader_class(text)
    fast = loader_class is _FAST_LOADER_MEMO
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                break
            doc = _build(loader, node) if fast else loader.construct_document(node)
            if doc is not None:
                documents.append((doc, node.start_mark.line + 1))
    finally:
        loader.dispose()
    return documents


# -- a faster reader for the common case ---------------------------------------------------------
#
# Under libyaml's parser PyYAML still resolves every scalar's type and constructs every object in
# Python.  Scalars repeat a great deal (keys, kinds, labels), so their resolution is remembered,
# and the plain tags (mapping, sequence, string, integer, boolean, null) are built directly; any
# other node (a merge key, a timestamp, a float, a binary) goes to PyYAML's own constructor, and
# anything unusual (an unhashable key) raises, so the caller parses the text again the slow way
# and reports exactly what PyYAML reports.

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_INT_TAG = "tag:yaml.org,2002:int"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _MemoLoader(_FAST_LOADER):  # type: ignore[misc]
    """libyaml's parser with PyYAML's safe constructor, and scalar resolution remembered."""

    _resolved: dict[tuple[str, bool], str] = {}  # noqa: RUF012 - shared on purpose: the answer never changes

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0] and isinstance(value, str) and len(value) <= 256:
            key = (value, bool(implicit[1]))
            tag = self._resolved.get(key)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(self._resolved) > 100_000:
                    self._resolved.clear()
                self._resolved[key] = tag
            return tag
        return super().resolve(kind, value, implicit)


_FAST_LOADER_MEMO: Any = _MemoLoader if _FAST_LOADER is not yaml.SafeLoader else None


def _build(loader: Any, node: Any) -> Any:
    tag = node.tag
    if tag == _STR_TAG:
        return node.value
    if tag == _MAP_TAG and isinstance(node, yaml.MappingNode):
        mapping = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                raise _NotSimple(key_node)
            key = _build(loader, key_node)
            if isinstance(key, dict | list):
                raise _NotSimple(key)  # PyYAML's "found unhashable key"
            mapping[key] = _build(loader, value_node)
        return mapping
    if tag == _SEQ_TAG and isinstance(node, yaml.SequenceNode):
        return [_build(loader, item) for item in node.value]
    if tag == _NULL_TAG:
        return None
    if tag == _INT_TAG:
        return loader.construct_yaml_int(node)
    if tag == _BOOL_TAG:
        return loader.construct_yaml_bool(node)
    return loader.construct_object(node, deep=True)


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


_temporary_names = itertools.count()


def atomic_write(path: Path, text: str, *, durable: bool = True) -> None:
    """Replace ``path`` with ``text`` by rename; ``durable`` also fsyncs (see the module docstring)."""
    data = text.encode("utf-8")
    temporary = path.parent / f".{path.name}.{os.getpid()}-{threading.get_ident()}-{next(_temporary_names)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(temporary, flags, 0o644)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(temporary, flags, 0o644)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
            if durable:
                os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    if durable:
        fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make a rename or an unlink in ``directory`` durable."""
    try:
        descriptor = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # gone meanwhile: nothing in it to make durable
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some file systems refuse fsync on a directory; the rename is as durable as they make it
    finally:
        os.close(descriptor)


_LIBC: Any = None


def _syncfs(root: Path) -> bool:
    """``syncfs(2)`` on the file system holding ``root``: every dirty page of it, one flush."""
    global _LIBC  # noqa: PLW0603 - loaded once, on first use
    if _LIBC is None:
        name = ctypes.util.find_library("c")
        try:
            _LIBC = ctypes.CDLL(name, use_errno=True) if name else False
        except OSError:
            _LIBC = False
    function = getattr(_LIBC, "syncfs", None) if _LIBC else None
    if function is None:
        return False
    descriptor = os.open(root, os.O_RDONLY)
    try:
        return bool(function(descriptor) == 0)
    finally:
        os.close(descriptor)


def sync_directories(root: Path, directories: Iterable[Path]) -> None:
    """Make a batch of ``durable=False`` writes under ``root`` durable: the file system's data, then
    each directory the batch renamed or unlinked in."""
    if not _syncfs(root):
        os.sync()
    for directory in sorted(set(directories)):
        fsync_directory(directory)


def dump(obj: KubeObject) -> str:
    """``obj`` as a YAML document, keys in their order, block style."""
    try:
        return "".join(_block_mapping(obj, 0, []))
    except _NotSimple:
        pass
    text: str = yaml.dump(obj, Dumper=_FAST_DUMPER, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return text


# -- a fast writer for the common case ----------------------------------------------------------
#
# PyYAML's representer is pure Python even under the C emitter, and it dominates a bulk write.
# Objects made only of mappings with string keys, lists, booleans, integers, None and short
# printable ASCII strings (every ServiceEntry and DestinationRule the reconciler writes) are written
# here, in the layout PyYAML itself uses; anything else (a PEM, a multi-line string, a float, a
# non-ASCII character) goes to PyYAML.  A string is written plain only when YAML would read it back
# as that same string (PyYAML's own resolver decides: "true", "1.0", "2024-01-01" and "~" are
# quoted), else single-quoted; ``tests/test_statefiles.py`` checks that every output loads back
# equal.

_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")
_QUOTABLE = re.compile(r"[ -~]*")  # printable ASCII: single quotes need no escape but ''
_ESCAPABLE = re.compile(r"[ -~\t\n\r]*")  # and line breaks, in double quotes with JSON's escapes
_MAX_SIMPLE = 1024
_RESOLVER: Any = yaml.resolver.Resolver()
_STR_TAG = "tag:yaml.org,2002:str"
_scalars: dict[str, str] = {}


class _NotSimple(Exception):
    """The object holds something the fast writer leaves to PyYAML."""


def _string(value: str) -> str:
    cached = _scalars.get(value)
    if cached is not None:
        return cached
    if not _QUOTABLE.fullmatch(value):
        if not _ESCAPABLE.fullmatch(value):
            raise _NotSimple(value)
        # A PEM, a multi-line message: JSON's escapes (\n, \t, \r, \", \\) are YAML's too.
        return json.dumps(value)
    if len(value) > _MAX_SIMPLE:
        return "'" + value.replace("'", "''") + "'"
    plain = _PLAIN.fullmatch(value) and _RESOLVER.resolve(yaml.ScalarNode, value, (True, False)) == _STR_TAG
    text = value if plain else "'" + value.replace("'", "''") + "'"
    if len(_scalars) > 50_000:
        _scalars.clear()
    _scalars[value] = text
    return text


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return _string(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if type(value) is int:
        return str(value)
    if isinstance(value, dict) and not value:
        return "{}"
    if isinstance(value, list) and not value:
        return "[]"
    raise _NotSimple(value)


def _block_mapping(mapping: Any, indent: int, out: list[str]) -> list[str]:
    if not isinstance(mapping, dict) or not mapping:
        raise _NotSimple(mapping)
    pad = " " * indent
    for key, value in mapping.items():
        if not isinstance(key, str):
            raise _NotSimple(key)
        name = _string(key)
        if isinstance(value, dict) and value:
            out.append(f"{pad}{name}:\n")
            _block_mapping(value, indent + 2, out)
        elif isinstance(value, list) and value:
            out.append(f"{pad}{name}:\n")
            _block_sequence(value, indent, out)  # PyYAML does not indent a sequence inside a mapping
        else:
            out.append(f"{pad}{name}: {_scalar(value)}\n")
    return out


def _block_sequence(sequence: list[Any], indent: int, out: list[str]) -> None:
    pad = " " * indent
    for item in sequence:
        if isinstance(item, dict) and item:
            start = len(out)
            _block_mapping(item, indent + 2, out)
            out[start] = f"{pad}- {out[start][indent + 2 :]}"
        elif isinstance(item, list) and item:
            raise _NotSimple(item)
        else:
            out.append(f"{pad}- {_scalar(item)}\n")


def dump_all(objects: Iterable[KubeObject]) -> str:
    return "---\n".join(dump(obj) for obj in objects)
