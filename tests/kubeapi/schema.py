"""A small structural-schema check of custom resources, as the apiextensions apiserver does it.

It covers what our CRD uses: ``type``, ``required``, ``properties``, ``items``, ``pattern``,
``enum`` and ``default``, plus pruning of unknown fields.  Messages are kube-openapi's, e.g.
``spec.trustDomain in body should match '^[0-9a-zA-Z._-]+$'``.
"""

from __future__ import annotations

import re
from pathlib import Path as FilePath
from typing import Any

import yaml

from federation import fields
from federation.fields import FieldError, Path

REPO = FilePath(__file__).resolve().parents[2]


def load_crd_schema(path: FilePath, version: str) -> dict[str, Any]:
    crd = yaml.safe_load(path.read_text(encoding="utf-8"))
    for served in crd["spec"]["versions"]:
        if served["name"] == version:
            schema = served["schema"]["openAPIV3Schema"]
            assert isinstance(schema, dict)
            return schema
    raise KeyError(f"{path} has no version {version}")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_ok(expected: str, value: Any) -> bool:
    actual = _type_name(value)
    return actual == expected or (expected == "number" and actual == "integer")


def prune_and_default(schema: dict[str, Any], value: Any) -> Any:
    """Drop unknown fields and nulls, fill in defaults; returns the cleaned value."""
    if isinstance(value, dict) and schema.get("type") == "object":
        properties: dict[str, Any] = schema.get("properties") or {}
        keep_unknown = bool(schema.get("x-kubernetes-preserve-unknown-fields")) or not properties
        result: dict[str, Any] = {}
        for key, item in value.items():
            if item is None and not (properties.get(key) or {}).get("nullable"):
                continue
            if key in properties:
                result[key] = prune_and_default(properties[key], item)
            elif keep_unknown:
                result[key] = item
        for key, sub in properties.items():
            if key not in result and "default" in sub:
                result[key] = sub["default"]
        return result
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [prune_and_default(schema["items"], item) for item in value]
    return value


def validate(schema: dict[str, Any], value: Any, path: Path) -> list[FieldError]:
    errors: list[FieldError] = []
    expected = schema.get("type")
    if isinstance(expected, str) and not _type_ok(expected, value):
        actual = _type_name(value)
        return [fields.invalid(path, actual, f"{path} in body must be of type {expected}: \"{actual}\"")]
    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        errors.append(fields.not_supported(path, value, [str(item) for item in enum]))
    pattern = schema.get("pattern")
    if isinstance(pattern, str) and isinstance(value, str) and not re.search(pattern, value):
        errors.append(fields.invalid(path, value, f"{path} in body should match '{pattern}'"))
    if isinstance(value, dict):
        for key in schema.get("required") or []:
            if key not in value:
                errors.append(fields.required(path.child(key), ""))
        for key, sub in (schema.get("properties") or {}).items():
            if key in value:
                errors.extend(validate(sub, value[key], path.child(key)))
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for position, item in enumerate(value):
            errors.extend(validate(schema["items"], item, path.index(position)))
    return errors


def validate_object(schema: dict[str, Any], obj: dict[str, Any]) -> list[FieldError]:
    """Validate the body below the root; metadata, apiVersion and kind are checked elsewhere."""
    errors: list[FieldError] = []
    for key in schema.get("required") or []:
        if key not in obj:
            errors.append(fields.required(Path(key), ""))
    for key, sub in (schema.get("properties") or {}).items():
        if key in obj and key not in ("metadata", "apiVersion", "kind"):
            errors.extend(validate(sub, obj[key], Path(key)))
    return errors
