"""The admission step a state directory store takes before each write, in place of an apiserver's.

A store given an :class:`AdmissionHook` asks it about every write of a resource it knows, and
refuses the write as the apiserver would when the verdict says so.  The hook that calls the real
webhook over HTTPS is ``objectstore.admission``; tests pass their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from federation.resources import KubeObject, Resource


@dataclass(frozen=True)
class WriteVerdict:
    """The apiserver's verdict on one write, after calling the webhooks that apply to it.

    The webhooks' warnings and, for a refused write, the error its client gets: ``message`` as
    kubectl prints it, the HTTP ``code`` and the Status body.
    """

    allowed: bool
    message: str = ""
    code: int = 0
    status: dict[str, Any] | None = None
    warnings: tuple[str, ...] = ()


class AdmissionHook(Protocol):
    """What the apiserver does before a write: ask the validating webhooks."""

    def review(
        self,
        *,
        operation: str,
        resource: Resource,
        obj: KubeObject | None,
        old: KubeObject | None,
        username: str,
    ) -> WriteVerdict | None:
        """None when no webhook applies to this resource."""
