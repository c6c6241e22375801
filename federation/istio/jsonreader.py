"""Reading JSON the way Go's decoder fills Istio's structs, reporting what it could not read.

Istio's webhook decodes an object into Go structs before any rule runs: a field of the wrong JSON
type fails the decode, an absent or null field is Go's zero value, and strings lose invalid UTF-16.
The apiserver, before that, enforces the CRD's limits (MaxItems, MaxLength, MaxProperties).

A :class:`JsonReader` reads one object for one validation: each reader method returns the value
Go would see (or None when it cannot, after recording a field error that names the JSON type), so
the rest of the object is still checked and every problem is reported at once.  The errors it
collected are in :attr:`JsonReader.errors`, in reading order.
"""

from __future__ import annotations

from typing import Any

from federation import fields
from federation.fields import FieldError, Path
from federation.istio import gostrings


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class JsonReader:
    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def error(self, error: FieldError) -> None:
        self.errors.append(error)

    def wrong_type(self, path: Path, value: Any, expected: str) -> None:
        # The value shown is the JSON type name, as in the apiserver's schema errors: bounded and readable.
        self.error(fields.invalid(path, fields.json_type(value), expected))

    def string(self, path: Path, value: Any, *, max_len: int | None = None) -> str | None:
        """A string field; absent or null reads as Go's zero value ``""``."""
        if value is None:
            return ""
        if not isinstance(value, str):
            self.wrong_type(path, value, "must be a string")
            return None
        if max_len is not None and len(value) > max_len:
            self.error(fields.too_long(path, max_len))
        return gostrings.decoded(value)

    def integer(self, path: Path, value: Any) -> int | None:
        """An integer field; absent or null reads as Go's zero value ``0``."""
        if value is None:
            return 0
        if not _is_int(value):
            self.wrong_type(path, value, "must be an integer")
            return None
        return int(value)

    def items(self, path: Path, value: Any, max_items: int | None, what: str) -> list[tuple[Path, Any]] | None:
        """A JSON list as (path, item) pairs; None when absent, null or of the wrong type."""
        if value is None:
            return None
        if not isinstance(value, list):
            self.wrong_type(path, value, f"must be a list of {what}")
            return None
        if max_items is not None and len(value) > max_items:
            # The apiserver rejects such a list outright; only the items it could have allowed are checked.
            self.error(fields.invalid(path, len(value), f"must have at most {max_items} items"))
            value = value[:max_items]
        return [(path.index(position), item) for position, item in enumerate(value)]

    def strings(
        self, path: Path, value: Any, max_items: int | None, *, max_len: int | None = None
    ) -> list[tuple[Path, str]]:
        result: list[tuple[Path, str]] = []
        for item_path, item in self.items(path, value, max_items, "strings") or []:
            if isinstance(item, str):
                if max_len is not None and len(item) > max_len:
                    self.error(fields.too_long(item_path, max_len))
                result.append((item_path, gostrings.decoded(item)))
            else:
                self.wrong_type(item_path, item, "must be a string")
        return result

    def mapping(self, path: Path, value: Any, max_props: int | None, what: str) -> list[tuple[str, Any]]:
        """A JSON object as (key, item) pairs, keys as Go decodes them; [] when absent, null or of the
        wrong type.  An item's path, ``path.key(key)``, is built by whoever reports an error about it
        (building one per item would cost more than checking it)."""
        if value is None:
            return []
        if not isinstance(value, dict):
            self.wrong_type(path, value, f"must be a map of {what}")
            return []
        entries = list(value.items())
        if max_props is not None and len(entries) > max_props:
            self.error(fields.invalid(path, len(entries), f"must have at most {max_props} items"))
            entries = entries[:max_props]
        return [(gostrings.decoded(str(key)), item) for key, item in entries]

    def string_map(
        self, path: Path, value: Any, max_props: int | None, *, max_value_len: int | None = None
    ) -> list[tuple[str, str]]:
        """A map of strings as (key, value) pairs; an item that is not a string (null included) is
        reported at ``path.key(key)`` and left out."""
        result: list[tuple[str, str]] = []
        for key, item in self.mapping(path, value, max_props, "strings"):
            if not isinstance(item, str):
                self.wrong_type(path.key(key), item, "must be a string")
                continue
            if max_value_len is not None and len(item) > max_value_len:
                self.error(fields.too_long(path.key(key), max_value_len))
            result.append((key, gostrings.decoded(item)))
        return result
