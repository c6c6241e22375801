"""What a remote document had that could not be imported, summarised so that status stays small.

A peer can publish 30,000 bad services; listing each in an IstioFederation's status made it 5 MB,
and an apiserver refuses objects over about 1.5 MB.  :func:`summarise` keeps the first few skips
(20 by default) with their reasons, counts every skip by reason, and gives the total, so whoever
writes status, conditions or ``check`` output can show the gist in bounded space:

* :meth:`SkipSummary.to_status` is a JSON object for status (at most ``limit`` items, at most
  :data:`MAX_REASONS` reason counters, every string short and printable);
* :meth:`SkipSummary.message` is one line for a condition message or a log line.

Any record with ``path``, ``subject``, ``reason`` and ``message`` can be summarised (the skip
records of :mod:`federation.documents.skips`, for instance).  Pure: no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from federation import remotetext

DEFAULT_LIMIT: Final = 20
# Reasons are a closed set in this project; should a caller pass free text, the counters stay bounded.
MAX_REASONS: Final = 20
OTHER_REASON: Final = "Other"
PATH_LIMIT: Final = 128
SUBJECT_LIMIT: Final = 128
REASON_LIMIT: Final = 64
ITEM_MESSAGE_LIMIT: Final = 400
LINE_LIMIT: Final = 1024


class Skip(Protocol):
    """One skipped entry, as :mod:`federation.documents.skips` reports it."""

    @property
    def path(self) -> str: ...

    @property
    def subject(self) -> str: ...

    @property
    def reason(self) -> str: ...

    @property
    def message(self) -> str: ...


@dataclass(frozen=True)
class SkipItem:
    """One listed skip, every field short and printable."""

    path: str
    subject: str
    reason: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "subject": self.subject, "reason": self.reason, "message": self.message}


@dataclass(frozen=True)
class SkipSummary:
    total: int
    by_reason: tuple[tuple[str, int], ...]  # most frequent first, then by name
    items: tuple[SkipItem, ...]  # the first ones, in the order given

    @property
    def omitted(self) -> int:
        """Skips counted but not listed."""
        return self.total - len(self.items)

    def to_status(self) -> dict[str, Any]:
        """``{"total", "byReason": {reason: count}, "items": [...], "omitted"}``, bounded."""
        return {
            "total": self.total,
            "byReason": dict(self.by_reason),
            "items": [item.to_json() for item in self.items],
            "omitted": self.omitted,
        }

    def message(self, *, what: str = "entries", shown: int = 3, limit: int = LINE_LIMIT) -> str:
        """``3 entries skipped (2 InvalidPortName, 1 NoPorts): <subject>: <message>; ...; and 1 more``.

        Names the first ``shown`` items; empty when nothing was skipped; at most ``limit``
        characters (plus an ellipsis).
        """
        if not self.total:
            return ""
        counts = ", ".join(f"{count} {reason}" for reason, count in self.by_reason)
        text = f"{self.total} {what} skipped ({counts})"
        listed = self.items[: max(shown, 0)]
        if listed:
            text += ": " + "; ".join(
                f"{item.subject}: {item.message}" if item.subject else item.message for item in listed
            )
        if listed and self.total > len(listed):
            text += f"; and {self.total - len(listed)} more"
        return remotetext.printable(text, limit)


EMPTY: Final = SkipSummary(0, (), ())


def summarise(skips: Iterable[Skip], *, limit: int = DEFAULT_LIMIT) -> SkipSummary:
    """The first ``limit`` skips with their reasons, the count per reason and the total."""
    counts: Counter[str] = Counter()
    items: list[SkipItem] = []
    total = 0
    for skip in skips:
        total += 1
        reason = remotetext.printable(skip.reason, REASON_LIMIT)
        counts[reason] += 1
        if len(items) < limit:
            items.append(
                SkipItem(
                    path=remotetext.printable(skip.path, PATH_LIMIT),
                    subject=remotetext.printable(skip.subject, SUBJECT_LIMIT),
                    reason=reason,
                    message=remotetext.printable(skip.message, ITEM_MESSAGE_LIMIT),
                )
            )
    ranked = sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))
    if len(ranked) > MAX_REASONS:
        rest = sum(count for _, count in ranked[MAX_REASONS - 1 :])
        ranked = [*ranked[: MAX_REASONS - 1], (OTHER_REASON, rest)]
    return SkipSummary(total, tuple(ranked), tuple(items))
