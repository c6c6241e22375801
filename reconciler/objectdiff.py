"""How a managed object compares with what is wanted: the update that makes it match (touching only
the fields we own) and the leaf-level diff a plan shows."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from federation import resources
from federation.resources import KubeObject


@dataclass(frozen=True)
class FieldChange:
    path: str
    old: Any
    new: Any


def field_diff(old: Any, new: Any, path: str = "") -> list[FieldChange]:
    """Leaf-level differences, with Kubernetes-style paths (``spec.endpoints[0].address``)."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[FieldChange] = []
        for key in sorted(set(old) | set(new), key=str):
            child = f"{path}.{key}" if path else str(key)
            if key not in new:
                changes.append(FieldChange(child, old[key], None))
            elif key not in old:
                changes.append(FieldChange(child, None, new[key]))
            else:
                changes.extend(field_diff(old[key], new[key], child))
        return changes
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        changes = []
        for position, (left, right) in enumerate(zip(old, new, strict=True)):
            changes.extend(field_diff(left, right, f"{path}[{position}]"))
        return changes
    return [] if old == new else [FieldChange(path, old, new)]


def merged_update(current: KubeObject, desired: KubeObject) -> KubeObject | None:
    """``current`` changed to match ``desired`` in the fields we own, or None when it already does.

    Labels and annotations others added are kept: only ours are set.
    """
    current_meta = resources.meta(current)
    desired_meta = resources.meta(desired)
    labels = dict(current_meta.get("labels") or {})
    annotations = dict(current_meta.get("annotations") or {})
    wanted_labels = {**labels, **desired_meta.get("labels", {})}
    wanted_annotations = {**annotations, **desired_meta.get("annotations", {})}
    if current.get("spec") == desired.get("spec") and labels == wanted_labels and annotations == wanted_annotations:
        return None
    updated = copy.deepcopy(current)
    updated["apiVersion"] = desired["apiVersion"]
    updated["spec"] = copy.deepcopy(desired["spec"])
    updated["metadata"]["labels"] = wanted_labels
    updated["metadata"]["annotations"] = wanted_annotations
    return updated


def compare_view(obj: KubeObject) -> dict[str, Any]:
    """The parts of an object a plan shows a diff of."""
    meta = resources.meta(obj)
    return {
        "metadata": {"labels": meta.get("labels") or {}, "annotations": meta.get("annotations") or {}},
        "spec": obj.get("spec"),
    }
