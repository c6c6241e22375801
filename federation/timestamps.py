"""Kubernetes timestamps (RFC 3339, UTC, whole seconds): the one format status, Events and the
mesh-trust bookkeeping write, and the lenient parse that reads them (and Deckhouse's) back."""

from __future__ import annotations

from datetime import UTC, datetime


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime | None:
    """The moment ``text`` names, or None when it is empty or not a timestamp (never an error:
    status is written by others too, and a bad value must read as "unknown", not stop a sync)."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
