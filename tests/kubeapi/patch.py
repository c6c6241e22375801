"""JSON merge patch (RFC 7386) and JSON patch (RFC 6902), as the apiserver applies them."""

from __future__ import annotations

import copy
from typing import Any


class PatchError(ValueError):
    pass


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _split(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"invalid JSON pointer: {pointer!r}")
    return [_unescape(token) for token in pointer[1:].split("/")]


def _parent(document: Any, tokens: list[str], pointer: str) -> Any:
    node = document
    for token in tokens[:-1]:
        node = _child(node, token, pointer)
    return node


def _child(node: Any, token: str, pointer: str) -> Any:
    if isinstance(node, dict):
        if token not in node:
            raise PatchError(f"doc is missing path: \"{pointer}\": missing value")
        return node[token]
    if isinstance(node, list):
        index = _index(token, len(node) - 1, pointer)
        return node[index]
    raise PatchError(f"doc is missing path: \"{pointer}\": missing value")


def _index(token: str, limit: int, pointer: str) -> int:
    if not token.isdigit():
        raise PatchError(f"invalid array index {token!r} in \"{pointer}\"")
    index = int(token)
    if index > limit:
        raise PatchError(f"Unable to access invalid index: {index}: invalid index referenced")
    return index


def _get(document: Any, pointer: str) -> Any:
    node = document
    for token in _split(pointer):
        node = _child(node, token, pointer)
    return node


def _remove(document: Any, pointer: str) -> Any:
    tokens = _split(pointer)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _parent(document, tokens, pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"Unable to remove nonexistent key: {last}: missing value")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(last, len(parent) - 1, pointer))
    raise PatchError(f"doc is missing path: \"{pointer}\": missing value")


def _add(document: Any, pointer: str, value: Any, *, replace: bool = False) -> Any:
    tokens = _split(pointer)
    if not tokens:
        return value
    parent = _parent(document, tokens, pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError(f"replace operation does not apply: doc is missing key: {pointer}: missing value")
        parent[last] = value
    elif isinstance(parent, list):
        if replace:
            parent[_index(last, len(parent) - 1, pointer)] = value
        elif last == "-":
            parent.append(value)
        else:
            parent.insert(_index(last, len(parent), pointer), value)
    else:
        raise PatchError(f"doc is missing path: \"{pointer}\": missing value")
    return document


def json_patch(target: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    document = copy.deepcopy(target)
    for operation in operations:
        if not isinstance(operation, dict):
            raise PatchError("invalid JSON patch operation")
        op = operation.get("op")
        path = str(operation.get("path", ""))
        if op == "add":
            document = _add(document, path, copy.deepcopy(operation.get("value")))
        elif op == "remove":
            _remove(document, path)
        elif op == "replace":
            document = _add(document, path, copy.deepcopy(operation.get("value")), replace=True)
        elif op in ("move", "copy"):
            source = str(operation.get("from", ""))
            value = _remove(document, source) if op == "move" else copy.deepcopy(_get(document, source))
            document = _add(document, path, value)
        elif op == "test":
            if _get(document, path) != operation.get("value"):
                raise PatchError(f"testing value {path} failed: test failed")
        else:
            raise PatchError(f"Unexpected kind: {op}")
    return document
