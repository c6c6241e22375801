"""JSON from the network, parsed within limits that are checked before anything recurses.

Python's :func:`json.loads` recurses once per nesting level, so a 100,000-deep document raises
``RecursionError``; it converts digits with :class:`int`, so a 5,000-digit number raises
``ValueError`` (the int-string limit); and it accepts ``NaN`` and ``Infinity``, which are not JSON
and which break every comparison made with them later.  :func:`loads` closes all three, and bounds
size, strings and container members, so that whatever bytes arrive the only exception is
:class:`InvalidJSON`, whose message names what was exceeded and the limit:

1. the size, in bytes, before anything else;
2. strict UTF-8 (RFC 8259 §8.1; Go's encoder, which Deckhouse uses, writes nothing else);
3. the nesting depth, by an iterative pre-scan that skips over strings (escapes included), before
   :func:`json.loads` is called;
4. numbers, in :func:`json.loads`'s own ``parse_int``/``parse_float``/``parse_constant`` hooks:
   literals longer than the limit, ``NaN``, ``Infinity`` and numbers that overflow a float are refused;
5. strings (object keys too) and the members of each array and object, by an iterative walk of
   the result, which reports the JSON path of the offender.

No I/O; :class:`Limits` is a frozen value, so each caller states its own.
"""

from __future__ import annotations

import json
import math
import re
from array import array
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, Final, TypeAlias

__all__ = ["DOCUMENT_LIMITS", "InvalidJSON", "Limits", "loads"]


@dataclass(frozen=True)
class Limits:
    """How much JSON one document may hold.  Each field is named in the error that exceeds it."""

    max_bytes: int = 4 * 1024 * 1024
    # The metadata documents nest 5 levels deep (document, publicServices, service, ports, port)
    # and a JWT segment 1 or 2; 32 leaves room for growth and stays far below Python's recursion limit.
    max_depth: int = 32
    # An int64 or uint64 has at most 20 characters with its sign, a float's shortest repr at most
    # 24 (-1.7976931348623157e+308).  Nothing legitimate comes near 40.
    max_number_chars: int = 40
    # The longest legitimate string is a PEM bundle of root CAs (public.json rootCA): about 2 KiB
    # per certificate, so 64 Ki characters hold 30 of them.
    max_string_chars: int = 64 * 1024
    # Members of one array or object.  The scale goal is 5,000 public services per peer; 20,000
    # leaves four times that, and the byte limit bounds the total anyway.
    max_members: int = 20_000


DOCUMENT_LIMITS: Final = Limits()
"""The limits of the metadata documents (``public.json``, ``federation.json``)."""


class InvalidJSON(ValueError):
    """Bytes that are not JSON, or JSON beyond a limit.

    ``problem`` is the message (printable, bounded); ``limit`` names the :class:`Limits` field that
    was exceeded, or is empty when the bytes are simply not JSON.
    """

    def __init__(self, problem: str, *, limit: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.limit = limit


# A complete string (escapes included; "unrolled" so that matching is linear), a lone quote that
# starts an unterminated string, or a bracket: the exact, slow scan that locates a depth error.
_SCAN: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|["\[\]{}]', re.DOTALL)
_OPENERS: Final = frozenset("[{")
# bytes.translate tables for the fast pre-scan, over UTF-8 bytes (a multi-byte sequence never holds
# an ASCII byte, so the quotes, backslashes and brackets found in the bytes are exactly the text's):
# keep only brackets, openers becoming +1 and closers -1 (as signed bytes) ...
_LEVELS: Final = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS: Final = bytes(byte for byte in range(256) if byte not in b"[]{}")
# ... and keep only the characters of numbers, everything else becoming a space.
_NUMBERS: Final = bytes(byte if byte in b"0123456789+-.eE" else 0x20 for byte in range(256))
_SIMPLE_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,62}")
_SHOWN: Final = 20
_CONTAINERS: Final = (list, dict)


def _where(text: str, position: int) -> str:
    """``line 1 column 33 (char 32)``, as :class:`json.JSONDecodeError` says it."""
    line = text.count("\n", 0, position) + 1
    column = position - text.rfind("\n", 0, position)
    return f"line {line} column {column} (char {position})"


def _shown(text: str) -> str:
    """A bounded, printable ASCII excerpt of remote text."""
    head = text[:_SHOWN].encode("ascii", "backslashreplace").decode("ascii")
    head = "".join(char if char.isprintable() else "?" for char in head)
    return head + ("..." if len(text) > _SHOWN else "")


def _depth_error(text: str, max_depth: int) -> InvalidJSON:
    """The error at the first bracket deeper than ``max_depth``, found token by token (slow, exact)."""
    depth = 0
    for match in _SCAN.finditer(text):
        token = match.group()
        if token in _OPENERS:
            depth += 1
            if depth > max_depth:
                where = _where(text, match.start())
                return InvalidJSON(f"nested deeper than the limit of {max_depth} levels at {where}", limit="max_depth")
        elif token in ("]", "}"):
            depth -= 1
        elif token == '"':
            break  # an unterminated string (the fast scan stopped there too)
    return InvalidJSON(f"nested deeper than the limit of {max_depth} levels", limit="max_depth")


@dataclass(frozen=True)
class _Prescan:
    """What the pre-scan proved, so that the slower exact checks can be skipped."""

    strings_fit: bool
    numbers_fit: bool
    members_fit: bool


def _prescan(raw: bytes, text: str, limits: Limits) -> _Prescan:
    """Refuse a document nested deeper than the limit, without recursion and at C speed.

    Escaped backslashes and escaped quotes are masked (with two bytes, keeping lengths), so every
    quote left delimits a string; splitting at the quotes separates the text outside strings
    (even pieces) from the strings' raw contents (odd pieces; an unterminated string is the
    last, odd piece, and json.loads refuses it without descending further).  The nesting depth is
    the highest running sum of +1 per opener and -1 per closer outside strings.  The same pass
    bounds every string's length by its raw bytes, and every number's by the runs of number
    characters outside strings, and every container's members by the commas outside strings.
    """
    small = len(raw) <= min(limits.max_string_chars, limits.max_number_chars)
    if small and raw.count(b"[") + raw.count(b"{") <= limits.max_depth:
        return _Prescan(strings_fit=True, numbers_fit=True, members_fit=raw.count(b",") < limits.max_members)
    pieces = raw.replace(b"\\\\", b"__").replace(b'\\"', b"__").split(b'"')
    outside = b"".join(pieces[0::2])
    if outside.count(b"[") + outside.count(b"{") > limits.max_depth:
        levels = outside.translate(_LEVELS, _NOT_BRACKETS)
        if max(accumulate(array("b", levels)), default=0) > limits.max_depth:
            raise _depth_error(text, limits.max_depth)
    longest_string = max(map(len, pieces[1::2]), default=0)
    longest_number = max(map(len, outside.translate(_NUMBERS).split()), default=0)
    return _Prescan(
        strings_fit=longest_string <= limits.max_string_chars,
        numbers_fit=longest_number <= limits.max_number_chars,
        # A container has at most one member more than the commas outside strings.
        members_fit=outside.count(b",") < limits.max_members,
    )


def _hooks(limits: Limits, *, check_ints: bool) -> dict[str, Any]:
    def number_text(text: str) -> None:
        if len(text) > limits.max_number_chars:
            raise InvalidJSON(
                f"number {_shown(text)} has {len(text)} characters, more than the limit of {limits.max_number_chars}",
                limit="max_number_chars",
            )

    def parse_int(text: str) -> int:
        number_text(text)
        return int(text)

    def parse_float(text: str) -> float:
        number_text(text)
        value = float(text)
        if not math.isfinite(value):
            raise InvalidJSON(f"number {_shown(text)} is out of range (not a finite number)", limit="max_number_chars")
        return value

    def parse_constant(name: str) -> Any:
        raise InvalidJSON(f"{name} is not a JSON number (only finite numbers are)")

    hooks: dict[str, Any] = {"parse_float": parse_float, "parse_constant": parse_constant}
    if check_ints:
        hooks["parse_int"] = parse_int
    return hooks


_PathLink: TypeAlias = "tuple[_PathLink, str | int] | None"


def _render_path(link: _PathLink) -> str:
    parts: list[str | int] = []
    while link is not None:
        link, key = link
        parts.append(key)
    text = ""
    for key in reversed(parts):
        if isinstance(key, int):
            text += f"[{key}]"
        elif _SIMPLE_KEY.fullmatch(key):
            text += f".{key}" if text else key
        else:
            text += "[" + json.dumps(_shown(key)) + "]"
    return text or "the top level"


def _members_fit(document: Any, max_members: int) -> bool:
    """True when no array or object has more than ``max_members`` (fast: containers only, no paths)."""
    stack = [document] if isinstance(document, _CONTAINERS) else []
    while stack:
        value = stack.pop()
        if len(value) > max_members:
            return False
        children = value.values() if isinstance(value, dict) else value
        stack.extend([child for child in children if isinstance(child, _CONTAINERS)])
    return True


def _check_sizes(document: Any, limits: Limits) -> None:
    """Strings, keys and member counts, with the JSON path of the first offender (slow, exact)."""
    max_string, max_members = limits.max_string_chars, limits.max_members

    def too_long(what: str, value: str, link: _PathLink) -> InvalidJSON:
        return InvalidJSON(
            f"{what} at {_render_path(link)} has {len(value)} characters, more than the limit of {max_string}",
            limit="max_string_chars",
        )

    if isinstance(document, str) and len(document) > max_string:
        raise too_long("string", document, None)
    stack: list[tuple[Any, _PathLink]] = [(document, None)]
    while stack:
        value, link = stack.pop()
        if isinstance(value, list):
            items: Any = enumerate(value)
            kind = "array"
        elif isinstance(value, dict):
            items = value.items()
            kind = "object"
        else:
            continue
        if len(value) > max_members:
            raise InvalidJSON(
                f"{kind} at {_render_path(link)} has {len(value)} members, more than the limit of {max_members}",
                limit="max_members",
            )
        for key, item in items:
            if isinstance(key, str) and len(key) > max_string:
                raise too_long("object key", key, link)
            if isinstance(item, str):
                if len(item) > max_string:
                    raise too_long("string", item, (link, key))
            elif isinstance(item, _CONTAINERS):
                stack.append((item, (link, key)))


def loads(data: bytes | bytearray | str, limits: Limits = DOCUMENT_LIMITS) -> Any:
    """Decode one JSON document within ``limits``; anything else raises :class:`InvalidJSON`."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if len(raw) > limits.max_bytes:
        raise InvalidJSON(f"{len(raw)} bytes is larger than the limit of {limits.max_bytes} bytes", limit="max_bytes")
    if isinstance(data, str):
        text = data
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidJSON(f"not valid UTF-8 at byte {error.start}") from None
    proved = _prescan(raw, text, limits)
    try:
        document = json.loads(text, **_hooks(limits, check_ints=not proved.numbers_fit))
    except json.JSONDecodeError as error:
        raise InvalidJSON(f"not valid JSON: {error}") from None
    except RecursionError:
        # Only reachable when a caller sets max_depth near Python's own recursion limit.
        raise InvalidJSON(f"nested too deeply for this parser (limit {limits.max_depth})", limit="max_depth") from None
    if not proved.strings_fit or not (proved.members_fit or _members_fit(document, limits.max_members)):
        _check_sizes(document, limits)
    return document
