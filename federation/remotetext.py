"""Text that came from another cluster, made fit for a message: short and printable.

Anything a remote writes (a host name, a port name, an address) may end up in a condition, an
Event or a log line.  Before it does, it is cut to a bounded length and every character that is not
printable (control characters such as ``\\n``, NUL, bidirectional overrides, lone surrogates) is
replaced, so that a remote can neither forge lines nor grow a status without bound.
"""

from __future__ import annotations

from typing import Final

ELLIPSIS: Final = "..."
VALUE_LIMIT: Final = 64
MESSAGE_LIMIT: Final = 1024


def excerpt(text: str, limit: int = VALUE_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when it was longer (not yet escaped:
    :func:`federation.fields.render_value` quotes it, and :func:`printable` cleans a message)."""
    return text if len(text) <= limit else text[:limit] + ELLIPSIS


def printable(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` with every non-printable character replaced by ``?``, cut to ``limit`` characters
    (plus an ellipsis)."""
    cut = excerpt(text, limit)
    if cut.isprintable():  # the usual case, at C speed
        return cut
    return "".join(char if char.isprintable() else "?" for char in cut)
