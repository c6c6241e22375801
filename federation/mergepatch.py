"""RFC 7386 JSON merge patches: computing one (the reconciler's status writes) and applying one
(the state directory's status subresource, and what a dry run reports the store would hold).

Lists are replaced whole and ``null`` removes a key, as the apiserver applies
``application/merge-patch+json``.
"""

from __future__ import annotations

import copy
from typing import Any


def between(old: Any, new: Any) -> Any:
    """The merge patch that turns ``old`` into ``new``."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return copy.deepcopy(new)
    patch: dict[str, Any] = {}
    for key in old:
        if key not in new:
            patch[key] = None
    for key, value in new.items():
        if key not in old:
            patch[key] = copy.deepcopy(value)
        elif old[key] != value:
            patch[key] = between(old[key], value)
    return patch


def apply(target: Any, patch: Any) -> Any:
    """``target`` with ``patch`` applied; neither argument is modified."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply(result.get(key), value)
    return result
