"""Warnings as the apiserver passes them on: one line, no control characters, at most 120 characters.

kube-apiserver recommends at most :data:`MAX_WARNING` characters per warning and silently drops a
warning that is not a valid header value.  Our own warnings are written to fit and go through
:func:`clean`; Istio's warnings keep Istio's text whole and shorten only a quoted user value
(:func:`fit_quoted`), with the field path put in front only when the whole still fits
(:func:`with_path`).  kube-apiserver keeps at most 4,096 characters of warnings per request, so
one answer carries at most :data:`MAX_WARNINGS` of them, and a last one counts the rest
(:func:`capped`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from federation.fields import Path
from federation.istio import gostrings

MAX_WARNING: Final = 120
MAX_WARNINGS: Final = 20


def clean(text: str) -> str:
    """Make ``text`` a valid Warning header value; the apiserver silently drops invalid ones."""
    text = text[: 4 * MAX_WARNING]  # whatever follows is cut anyway; the work stays bounded
    single_line = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    if len(single_line) <= MAX_WARNING:
        return single_line
    return single_line[: MAX_WARNING - 1].rstrip() + "…"


def short(value: str, limit: int = 40) -> str:
    """A value quoted inside a warning, shortened so the sentence around it survives."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


def fit_quoted(before: str, value: str, after: str) -> str:
    """``before + %q(value) + after``, shortening the Go-quoted value with an ellipsis to fit MAX_WARNING.

    Only the part of ``value`` that can be shown is ever quoted, so the cost is bounded by
    MAX_WARNING whatever the length of ``value``.
    """
    room = MAX_WARNING - len(before) - len(after) - len('""')
    pieces: list[str] = []
    used = 0
    for char in value:
        piece = gostrings.quote_rune(char)
        if used + len(piece) > room:
            break
        pieces.append(piece)
        used += len(piece)
    else:
        return before + '"' + "".join(pieces) + '"' + after  # the whole value fits
    budget = room - len("…")
    while used > budget:
        used -= len(pieces.pop())
    return before + '"' + "".join(pieces) + '…"' + after


def with_path(path: Path, text: str) -> str:
    """``<path>: <text>`` when that fits MAX_WARNING and the path is printable, else ``text`` alone."""
    prefixed = f"{path}: {text}"
    if len(prefixed) <= MAX_WARNING and str(path).isprintable():
        return prefixed
    return text


def more_warnings(count: int) -> str:
    return f"and {count} more warning{'' if count == 1 else 's'}"


def capped(texts: Iterable[str]) -> tuple[str, ...]:
    """Warnings fit for an answer: cleaned, each once, at most :data:`MAX_WARNINGS` and then one
    that counts the rest (``and 3 more warnings``)."""
    unique = tuple(dict.fromkeys(clean(text) for text in texts))
    if len(unique) <= MAX_WARNINGS:
        return unique
    return (*unique[:MAX_WARNINGS], more_warnings(len(unique) - MAX_WARNINGS))
