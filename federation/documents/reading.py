"""Reading a remote metadata document: its bytes decoded within limits, its fields checked one by one.

A document that must not be used raises :class:`DocumentError`, which names every problem with its
JSON path.  The readers here turn one remote field into its value, or into a
:class:`federation.fields.FieldError` appended to the caller's list, with the remote's value cut
short and made printable (:mod:`federation.remotetext`) whatever it wrote.
"""

from __future__ import annotations

from typing import Any, Final

from federation import boundedjson, remotetext
from federation.fields import FieldError, Path, invalid, json_type, required

MAX_DOCUMENT_BYTES = boundedjson.DOCUMENT_LIMITS.max_bytes
# A DocumentError names at most this many problems, then counts the rest.
MAX_RENDERED_ERRORS = 10
# The longest subject (a hostname, an address, a certificate's subject) a message shows.
SUBJECT_LIMIT: Final = 128


class DocumentError(ValueError):
    """A document that must not be used; ``errors`` says every reason, with its JSON path.

    The message names the first :data:`MAX_RENDERED_ERRORS` problems and counts the rest, and is
    printable whatever the remote wrote.
    """

    def __init__(self, what: str, errors: list[FieldError]) -> None:
        self.what = what
        self.errors = errors
        shown = "; ".join(error.render() for error in errors[:MAX_RENDERED_ERRORS])
        more = len(errors) - MAX_RENDERED_ERRORS
        if more > 0:
            shown += f"; and {more} more"
        super().__init__(remotetext.printable(f"invalid {what}: {shown}", limit=8 * remotetext.MESSAGE_LIMIT))


def decode_json(body: bytes, what: str) -> Any:
    """Decode a response body within the document limits; every problem becomes a DocumentError."""
    if len(body) > MAX_DOCUMENT_BYTES:
        raise DocumentError(what, [invalid(Path(), f"{len(body)} bytes", f"larger than {MAX_DOCUMENT_BYTES} bytes")])
    try:
        return boundedjson.loads(body, boundedjson.DOCUMENT_LIMITS)
    except boundedjson.InvalidJSON as error:
        raise DocumentError(what, [invalid(Path(), "<body>", error.problem)]) from error


def reported_value(value: Any) -> Any:
    """A remote value fit for a FieldError: long strings cut, containers named by their JSON type."""
    if isinstance(value, str):
        return remotetext.excerpt(value)
    if isinstance(value, list | dict):
        return json_type(value)
    return value


def skip_subject(value: Any) -> str:
    """A remote value as a short, printable subject of a skip (hostname, address, port)."""
    return remotetext.printable(value if isinstance(value, str) else str(reported_value(value)), SUBJECT_LIMIT)


def required_string(data: dict[str, Any], key: str, path: Path, errors: list[FieldError]) -> str:
    value = data.get(key)
    if value is None or value == "":
        errors.append(required(path.child(key), "must be a non-empty string"))
        return ""
    if not isinstance(value, str):
        errors.append(invalid(path.child(key), reported_value(value), "must be a string"))
        return ""
    return value


def port_number(value: Any, path: Path, errors: list[FieldError]) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append(invalid(path, reported_value(value), "must be an integer from 1 to 65535"))
        return 0
    if not 1 <= value <= 65535:
        errors.append(invalid(path, value, "must be from 1 to 65535"))
        return 0
    return value
