"""Go's string handling, as Istio's messages and Istio's JSON decoding see it.

Istio formats values with ``fmt.Sprintf("%q", …)``, measures strings with ``len`` (UTF-8 bytes),
decodes JSON with Go's ``encoding/json`` and parses numbers with ``strconv.Atoi``.  Each function
here reproduces one of those, so that our texts and limits match Istio's byte for byte:

* :func:`quote` is ``strconv.Quote`` (what ``%q`` prints), :func:`quote_rune` one rune of it;
* :func:`shown` and :func:`shown_bare` are ``%q`` and ``%s`` of a value echoed in a message, cut
  after :data:`SHOWN_LIMIT` characters (the rest counted as ``…(N more bytes)``), so that a message
  costs time and space bounded by the limit, not by the value: this is the one place we differ from
  Istio's texts, and only for values longer than the limit (or, for ``%s``, not printable);
* :func:`byte_len` is ``len(string)``;
* :func:`decoded` is what ``encoding/json`` makes of a string (invalid UTF-16 becomes U+FFFD);
* :func:`atoi_accepts` says whether ``strconv.Atoi`` parses a text.
"""

from __future__ import annotations

import re
from typing import Any, Final

_ATOI_RE: Final = re.compile(r"[+-]?[0-9]+")
_LONE_SURROGATE_RE: Final = re.compile("[\ud800-\udfff]")
_ESCAPES: Final = {"\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r", "\t": r"\t", "\v": r"\v"}

SHOWN_LIMIT: Final = 100
"""The most characters of a user's value echoed in one message (between the quotes, escapes included)."""


def quote_rune(char: str) -> str:
    """One rune as Go's ``strconv.Quote`` prints it inside the quotes."""
    if char in ('"', "\\"):
        return "\\" + char
    if char in _ESCAPES:
        return _ESCAPES[char]
    if char.isprintable():  # Python's isprintable matches Go's unicode.IsPrint: L, M, N, P, S and ' '
        return char
    code = ord(char)
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _plain(value: str) -> bool:
    """True when %q leaves every character as it is (checked at C speed)."""
    return value.isprintable() and '"' not in value and "\\" not in value


def quote(value: str) -> str:
    """``fmt.Sprintf("%q", value)``: the quoted form Istio puts in its messages."""
    if _plain(value):
        return '"' + value + '"'
    return '"' + "".join(quote_rune(char) for char in value) + '"'


def more_bytes(rest: str) -> str:
    """What is left of a cut value: ``…(N more bytes)``, N counted in UTF-8 as Go counts."""
    return f"…({byte_len(rest)} more bytes)"


def shown_repr(value: Any, limit: int = SHOWN_LIMIT) -> str:
    """Python's ``repr`` of a value echoed in a message that is not Istio's: a string cut after
    ``limit`` characters and followed by ``…(N more bytes)``; anything else cut with ``…``."""
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + more_bytes(value[limit:])
    text = repr(value)  # a scalar or a small container (callers bound the depth)
    return text if len(text) <= limit else text[:limit] + "…"


def shown(value: str, limit: int = SHOWN_LIMIT) -> str:
    """``%q`` of a value echoed in a message, at most ``limit`` characters between the quotes.

    A longer value is cut after the last whole escape that fits and followed, outside the quotes, by
    ``…(N more bytes)``: ``"a.a.a"…(524282 more bytes)``.  The work is bounded by ``limit``, whatever
    the length of ``value`` (only the length of the rest is measured).
    """
    if len(value) <= limit and _plain(value):  # the usual case
        return '"' + value + '"'
    pieces: list[str] = []
    used = 0
    for position, char in enumerate(value):
        piece = quote_rune(char)
        used += len(piece)
        if used > limit:
            return '"' + "".join(pieces) + '"' + more_bytes(value[position:])
        pieces.append(piece)
    return '"' + "".join(pieces) + '"'


def shown_bare(value: str, limit: int = SHOWN_LIMIT) -> str:
    """``%s`` of a value echoed in a message: the value itself when it is printable and at most
    ``limit`` characters long, else :func:`shown` (a message never carries a raw newline or NUL)."""
    if len(value) <= limit and value.isprintable():
        return value
    return shown(value, limit)


def byte_len(value: str) -> int:
    """Go's ``len(string)``: UTF-8 bytes."""
    return len(value.encode("utf-8", "surrogatepass"))


def decoded(value: str) -> str:
    """What Go's JSON decoder makes of a string: lone surrogates become U+FFFD."""
    if value.isascii():  # the usual case, at C speed
        return value
    return _LONE_SURROGATE_RE.sub("\ufffd", value)


def atoi_accepts(text: str) -> bool:
    """True when Go's ``strconv.Atoi`` parses ``text`` (optional sign, decimal digits, fits int64)."""
    if not _ATOI_RE.fullmatch(text):
        return False
    digits = text.lstrip("+-").lstrip("0") or "0"
    if len(digits) > 19:  # an int64 has at most 19 digits (Python's int() refuses over 4,300)
        return False
    value = -int(digits) if text.startswith("-") else int(digits)
    return -(2**63) <= value <= 2**63 - 1
