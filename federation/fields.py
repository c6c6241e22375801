"""Field errors in the language every kubectl user already reads.

This mirrors k8s.io/apimachinery ``util/validation/field``: an error has a path such as
``spec.hosts[1]``, a type (``Invalid value``, ``Required value``…) and a detail, and a list of them
renders as ``<Kind> "<name>" is invalid: [e1, e2]`` with HTTP 422 and reason ``Invalid``.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Path:
    """A Kubernetes field path: ``Path("spec").child("hosts").index(1)`` prints ``spec.hosts[1]``."""

    text: str = ""

    @classmethod
    def of(cls, *names: str) -> Path:
        path = cls()
        for name in names:
            path = path.child(name)
        return path

    def child(self, name: str) -> Path:
        return Path(f"{self.text}.{name}" if self.text else name)

    def index(self, position: int) -> Path:
        return Path(f"{self.text}[{position}]")

    def key(self, key: str) -> Path:
        return Path(f"{self.text}[{key}]")

    def __str__(self) -> str:
        return self.text


class ErrorType(enum.Enum):
    """The error types of apimachinery, with their rendered text and their ``causes[].reason``."""

    REQUIRED = ("Required value", "FieldValueRequired")
    INVALID = ("Invalid value", "FieldValueInvalid")
    FORBIDDEN = ("Forbidden", "FieldValueForbidden")
    NOT_SUPPORTED = ("Unsupported value", "FieldValueNotSupported")
    DUPLICATE = ("Duplicate value", "FieldValueDuplicate")
    TOO_LONG = ("Too long", "FieldValueTooLong")

    @property
    def text(self) -> str:
        return self.value[0]

    @property
    def reason(self) -> str:
        return self.value[1]


_NO_VALUE = object()


@dataclass(frozen=True)
class FieldError:
    path: Path
    type: ErrorType
    detail: str
    value: Any = _NO_VALUE

    def body(self) -> str:
        """The error without its path: ``Invalid value: "x": must be ...`` (apimachinery's ErrorBody)."""
        head = self.type.text
        if self.value is not _NO_VALUE and self.type in (
            ErrorType.INVALID,
            ErrorType.NOT_SUPPORTED,
            ErrorType.DUPLICATE,
        ):
            head += f": {render_value(self.value)}"
        return f"{head}: {self.detail}" if self.detail else head

    def render(self) -> str:
        """``spec.hosts[0]: Invalid value: "x": must be ...``, exactly as apimachinery prints it.

        An error about a whole document has no path, and then none is printed.
        """
        return f"{self.path}: {self.body()}" if self.path.text else self.body()

    def cause(self) -> dict[str, str]:
        return {"reason": self.type.reason, "message": self.body(), "field": str(self.path)}


def render_value(value: Any) -> str:
    """Render a value as apimachinery does: strings quoted, numbers and booleans bare."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def json_type(value: Any) -> str:
    """The JSON type name of a decoded value, as schema errors name it (never a Python class name)."""
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
    if isinstance(value, list | tuple):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def required(path: Path, detail: str = "") -> FieldError:
    return FieldError(path, ErrorType.REQUIRED, detail)


def invalid(path: Path, value: Any, detail: str) -> FieldError:
    return FieldError(path, ErrorType.INVALID, detail, value)


def forbidden(path: Path, detail: str) -> FieldError:
    return FieldError(path, ErrorType.FORBIDDEN, detail)


def not_supported(path: Path, value: Any, supported: list[str]) -> FieldError:
    detail = "supported values: " + ", ".join(json.dumps(s) for s in supported)
    return FieldError(path, ErrorType.NOT_SUPPORTED, detail, value)


def duplicate(path: Path, value: Any, detail: str = "") -> FieldError:
    return FieldError(path, ErrorType.DUPLICATE, detail, value)


def too_long(path: Path, limit: int) -> FieldError:
    return FieldError(path, ErrorType.TOO_LONG, f"must have at most {limit} bytes")


def invalid_message(kind: str, name: str, errors: list[FieldError]) -> str:
    """``<Kind> "<name>" is invalid: [e1, e2]``; a single error is printed without brackets."""
    rendered = [error.render() for error in errors]
    body = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    return f"{kind} {json.dumps(name)} is invalid: {body}"


def invalid_status(*, kind: str, group: str, name: str, errors: list[FieldError]) -> dict[str, Any]:
    """The metav1.Status an apiserver returns for a validation failure (422, reason Invalid)."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": invalid_message(kind, name, errors),
        "reason": "Invalid",
        "details": {
            "name": name,
            "group": group,
            "kind": kind,
            "causes": [error.cause() for error in errors],
        },
        "code": 422,
    }
