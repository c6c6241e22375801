"""Warnings as the apiserver will pass them on: one line, no control characters, ≤ 120 characters."""

from __future__ import annotations

MAX_WARNING = 120


def clean(text: str) -> str:
    """Make ``text`` a valid Warning header value; the apiserver silently drops invalid ones."""
    single_line = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    if len(single_line) <= MAX_WARNING:
        return single_line
    return single_line[: MAX_WARNING - 1].rstrip() + "…"


def short(value: str, limit: int = 40) -> str:
    """A value quoted inside a warning, shortened so the sentence around it survives."""
    return value if len(value) <= limit else value[: limit - 1] + "…"
