"""Field errors in the language every kubectl user already reads.

This mirrors k8s.io/apimachinery ``util/validation/field``: an error has a path such as
``spec.hosts[1]``, a type (``Invalid value``, ``Required value``…) and a detail, and a list of them
renders as ``<Kind> "<name>" is invalid: [e1, e2]`` (the Status that carries it, with HTTP 422
and reason ``Invalid``, is built by :mod:`federation.api_status`).

Every validator returns a :class:`ValidationResult`: its field errors and its warnings, as
controller-runtime's validators return ``(warnings, error)``; results compose with ``+``.

Whatever a client sends, rendering stays bounded: a value echoed in an error (and a map key in a
path) shows at most :data:`SHOWN_LIMIT` characters followed by ``…(N more bytes)``, and a list of
errors renders the first :data:`MAX_REPORTED_ERRORS` followed by ``and M more errors``.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from federation.istio.gostrings import SHOWN_LIMIT, more_bytes

MAX_REPORTED_ERRORS: Final = 20
"""The most errors one denial renders (in its message and in ``details.causes``); the rest are counted."""

ERROR_BUDGET: Final = 1000
"""The errors a long list (endpoints, exportTo) may produce before its other entries go unchecked
(:func:`stopped`): enough to fix an object, while a hostile one costs no more than that."""


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
        """``[key]``, as apimachinery prints a map key: bare, unless it is long or not printable,
        when it is quoted and cut like a value (:func:`render_value`)."""
        shown = key if len(key) <= SHOWN_LIMIT and key.isprintable() else render_value(key)
        return Path(f"{self.text}[{shown}]")

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


def _quoted(text: str, limit: int) -> str:
    """``text`` as a JSON string, at most ``limit`` characters between the quotes, then ``…(N more bytes)``."""
    if len(text) * 6 <= limit:  # no escape is longer than \uXXXX: the whole fits, at C speed
        return json.dumps(text, ensure_ascii=False)
    pieces: list[str] = []
    used = 0
    for position, char in enumerate(text):  # stops after ``limit`` characters of output
        piece = json.dumps(char, ensure_ascii=False)[1:-1]
        used += len(piece)
        if used > limit:
            return '"' + "".join(pieces) + '"' + more_bytes(text[position:])
        pieces.append(piece)
    return '"' + "".join(pieces) + '"'


def _cut(text: str, limit: int) -> str:
    """Already rendered text, cut to ``limit`` characters with the rest counted."""
    return text if len(text) <= limit else text[:limit] + more_bytes(text[limit:])


def object_place(namespace: str, name: str) -> str:
    """``namespace/name`` of a stored object in a message, rendered as a value when absurdly long
    or unprintable (the apiserver bounds both parts; a state directory or a test may not)."""
    where = f"{namespace}/{name}"
    return where if len(where) <= 2 * 253 + 1 and where.isprintable() else render_value(where)


def render_value(value: Any, limit: int = SHOWN_LIMIT) -> str:
    """Render a value as apimachinery does: strings quoted, numbers and booleans bare; anything
    else as JSON.  At most ``limit`` characters of it are shown, then ``…(N more bytes)``."""
    if isinstance(value, str):
        return _quoted(value, limit)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if value.bit_length() > 4 * limit:  # beyond the limit in any case; str() is quadratic
            return f"(an integer of {value.bit_length()} bits)"
        return _cut(str(value), limit)
    if isinstance(value, float):
        return str(value)
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):  # keys of mixed types, or a value JSON cannot hold
        text = json.dumps(str(value)[: limit + 1], ensure_ascii=False)
    return _cut(text, limit)


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


def stopped(path: Path, entries: int, checked: int, errors: int) -> FieldError:
    """The last error of a list whose check stopped at :data:`ERROR_BUDGET`, as apimachinery's CEL
    validation reports running out of its cost budget: an Invalid value naming what was left."""
    return invalid(
        path,
        entries,
        f"validation stopped after {errors} errors in the first {checked} entries; the other "
        f"{entries - checked} were not checked",
    )


def more_errors(count: int) -> str:
    """The last entry of a capped list of errors: ``and 3 more errors``."""
    return f"and {count} more error{'' if count == 1 else 's'}"


def invalid_message(kind: str, name: str, errors: Sequence[FieldError]) -> str:
    """``<Kind> "<name>" is invalid: [e1, e2]``; a single error is printed without brackets.

    At most :data:`MAX_REPORTED_ERRORS` are rendered, followed by ``and M more errors``; the kind
    and the name (both from the request) are cut like any echoed value.
    """
    rendered = [error.render() for error in errors[:MAX_REPORTED_ERRORS]]
    if len(errors) > MAX_REPORTED_ERRORS:
        rendered.append(more_errors(len(errors) - MAX_REPORTED_ERRORS))
    body = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    shown_kind = kind if len(kind) <= SHOWN_LIMIT and kind.isprintable() else render_value(kind)
    return f"{shown_kind} {render_value(name)} is invalid: {body}"


@dataclass(frozen=True)
class ValidationResult:
    """What a validator returns: every field error and every warning it found, in order.

    Validators never receive a result to fill in; they return one, and callers add them up:
    ``first + second`` (or :meth:`merge`) keeps the errors and the warnings of both, in order.
    """

    errors: tuple[FieldError, ...] = ()
    warnings: tuple[str, ...] = ()

    @classmethod
    def of(cls, errors: Iterable[FieldError] = (), warnings: Iterable[str] = ()) -> ValidationResult:
        return cls(tuple(errors), tuple(warnings))

    @classmethod
    def merge(cls, results: Iterable[ValidationResult]) -> ValidationResult:
        errors: list[FieldError] = []
        warnings: list[str] = []
        for result in results:
            errors.extend(result.errors)
            warnings.extend(result.warnings)
        return cls(tuple(errors), tuple(warnings))

    def __add__(self, other: ValidationResult) -> ValidationResult:
        return ValidationResult(self.errors + other.errors, self.warnings + other.warnings)

    @property
    def valid(self) -> bool:
        """True when there is no error (warnings never block anything)."""
        return not self.errors


VALID = ValidationResult()
"""The result with nothing to report."""
