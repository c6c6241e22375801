"""What one sync reports back: its result for the loop, metrics and logs, and its plan, which is
what ``--dry-run`` prints."""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.apply import Action
from reconciler.objectdiff import FieldChange


@dataclass
class FederationPlan:
    """What a sync decided for one federation: what ``--dry-run`` prints."""

    name: str
    actions: list[Action] = field(default_factory=list)
    status_changes: list[FieldChange] = field(default_factory=list)
    error: str = ""


@dataclass
class SyncResult:
    federation: str
    ok: bool
    stage: str = ""
    message: str = ""
    duration: float = 0.0
    interrupted: bool = False
    trust_domain: str = ""
    trusted_pems: tuple[str, ...] = ()
    plan: FederationPlan | None = None
