"""The state directory's file format: YAML documents in, Kubernetes objects out, and back.

Several documents per file are allowed; a malformed file is an error naming the file and line,
never a silent skip (:class:`StateError`).  Each document must be an object with apiVersion, kind
and metadata.name (and metadata.namespace, for a namespaced kind).  Where files live and which are
read is ``objectstore.statefiles``.

Speed.  libyaml's C parser and emitter (``yaml.CSafeLoader``/``CSafeDumper``, part of PyYAML's
wheels) are about six times faster than the pure-Python ones; without libyaml the pure-Python ones
are used.  A file the C parser refuses is parsed again by the pure-Python one, whose messages (and
lines) are the ones we print, so an error reads the same either way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from federation import resources
from federation.resources import KubeObject

# libyaml when PyYAML was built with it (every manylinux wheel is), else the pure-Python classes.
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_FAST_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class StateError(Exception):
    """The state directory cannot be read: the message names the file and line."""


def _check_document(doc: Any, where: str, *, require_namespace: bool = True) -> KubeObject:
    problem = resources.envelope_problem(doc)
    if problem is not None:
        raise StateError(f"{where}: {problem}")
    assert isinstance(doc, dict), "envelope_problem refuses anything but a mapping"
    metadata = doc["metadata"]
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
# quoted), else single-quoted; ``tests/test_statedir_changes.py`` checks that every output loads
# back equal.

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
