"""``exportTo``: which values Istio accepts, and which namespaces can see a ServiceEntry.

Read beside istio/istio ``pkg/config/validation/validation.go`` ``validateExportTo`` (rules 38-41 of
the reference table; a ServiceEntry may use ``~``), ``pkg/config/visibility/visibility.go``
(``.`` private, ``*`` public, ``~`` no one) and the scoping of istioctl's IST0177 analyzer
(``pkg/config/analysis/analyzers/serviceentry/conflictingserviceentries.go``), which compares
ServiceEntries only within a shared exportTo scope.
"""

from __future__ import annotations

from typing import Any, Final

from federation import fields
from federation.fields import Path, ValidationResult
from federation.istio import gostrings, values

PUBLIC: Final = frozenset({"*"})


def validate_export_to(path: Path, entries: list[tuple[Path, str]], namespace: str) -> ValidationResult:
    """``validateExportTo`` for a ServiceEntry: ``entries`` are the string items of ``path``, read."""
    errors: list[fields.FieldError] = []
    seen: set[str] = set()
    for checked, (item_path, entry) in enumerate(entries, start=1):
        if len(errors) >= fields.ERROR_BUDGET:  # the CRD sets no maxItems: a hostile list is long
            errors.append(fields.stopped(path, len(entries), checked - 1, len(errors)))
            break
        # "." is the own namespace, so ". + own namespace" is a duplicate.  Without a namespace in the
        # object (the apiserver always fills it in) "." stays itself rather than failing as "".
        key = namespace if entry == "." and namespace else entry
        if key in seen:
            text = (
                f"duplicate entries in exportTo: . and current namespace {gostrings.shown_bare(namespace)}"
                if key != entry
                else f"duplicate entries in exportTo for entry {gostrings.shown_bare(entry)}"
            )
            errors.append(fields.invalid(item_path, entry, text))
        elif entry == "~" or key in (".", "*") or values.is_dns1123_label(key):
            seen.add(key)
        else:
            text = "only .,*, or a valid DNS 1123 label is allowed as exportTo entry"
            errors.append(fields.invalid(item_path, entry, text))
    if "*" in seen and len(entries) > 1:
        errors.append(
            fields.forbidden(path, "cannot have both public (*) and non-public exportTo values for a resource")
        )
    if "~" in seen and len(entries) > 1:
        errors.append(fields.forbidden(path, "cannot export service entry to no one (~) and someone"))
    return ValidationResult.of(errors)


def _spec(obj: Any) -> dict[str, Any]:
    spec = obj.get("spec") if isinstance(obj, dict) else None
    return spec if isinstance(spec, dict) else {}


def _namespace(obj: Any) -> str:
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    namespace = metadata.get("namespace") if isinstance(metadata, dict) else None
    return namespace if isinstance(namespace, str) else ""


def visibility(obj: dict[str, Any]) -> frozenset[str]:
    """The namespaces that can see a ServiceEntry, from its ``exportTo``.

    ``*`` (or an absent, empty or unreadable exportTo) is public and returns :data:`PUBLIC`; ``.`` is the
    object's own namespace; ``~`` is no one (it contributes nothing, so ``["~"]`` gives an empty set); any
    other entry is a namespace name.  A public entry wins over names, as it does in Istio.
    """
    export_to = _spec(obj).get("exportTo")
    if not isinstance(export_to, list) or not export_to:
        return PUBLIC
    namespaces = {
        _namespace(obj) if entry == "." else entry for entry in export_to if isinstance(entry, str) and entry != "~"
    }
    return PUBLIC if "*" in namespaces else frozenset(namespaces)


def visibilities_overlap(a_obj: dict[str, Any], b_obj: dict[str, Any]) -> bool:
    """True when some namespace can see both ServiceEntries.

    This follows the scoping of istioctl's IST0177 (ConflictingServiceEntryProtocol): two public entries
    overlap; a public one overlaps any entry visible somewhere; otherwise the resolved namespace sets must
    intersect.  ``~`` overlaps nothing.
    """
    a, b = visibility(a_obj), visibility(b_obj)
    if not a or not b:
        return False
    if PUBLIC in (a, b):
        return True
    return bool(a & b)
