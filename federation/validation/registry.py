"""Which validator handles which resource, and the decision sent back to the apiserver.

Resources not in the table, and CONNECT, are allowed: the webhook configuration decides what is
sent here, and an unknown resource is a configuration mistake we should not turn into an outage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from federation import fields, resources
from federation.validation import destinationrule, istiofederation, serviceentry, warnings
from federation.validation.attributes import Attributes, Context, Verdict

Validator = Callable[[Attributes, Context], Verdict]

# The names the apiserver prints in "admission webhook "<name>" denied the request"; they must
# match manifests/webhook/validatingwebhookconfiguration.yaml (a test checks it).
WEBHOOK_ISTIO_FEDERATIONS = "istiofederations.istio-federation.deckhouse.io"
WEBHOOK_SERVICE_ENTRIES = "serviceentries.istio-federation.deckhouse.io"
WEBHOOK_DESTINATION_RULES = "destinationrules.istio-federation.deckhouse.io"

_VALIDATORS: dict[tuple[str, str], tuple[Validator, str]] = {
    (resources.ISTIO_FEDERATION.group, resources.ISTIO_FEDERATION.plural): (
        istiofederation.validate,
        WEBHOOK_ISTIO_FEDERATIONS,
    ),
    (resources.SERVICE_ENTRY.group, resources.SERVICE_ENTRY.plural): (serviceentry.validate, WEBHOOK_SERVICE_ENTRIES),
    (resources.DESTINATION_RULE.group, resources.DESTINATION_RULE.plural): (
        destinationrule.validate,
        WEBHOOK_DESTINATION_RULES,
    ),
}


def webhook_name(group: str, resource: str) -> str | None:
    entry = _VALIDATORS.get((group, resource))
    return entry[1] if entry else None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    status: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        return str((self.status or {}).get("message") or "")


def admit(attributes: Attributes, context: Context) -> Decision:
    entry = _VALIDATORS.get((attributes.group, attributes.resource))
    if entry is None or attributes.operation == "CONNECT":
        return Decision(allowed=True)
    validator, _ = entry
    verdict = validator(attributes, context)
    cleaned = list(dict.fromkeys(warnings.clean(text) for text in verdict.warnings))
    if not verdict.errors:
        return Decision(allowed=True, warnings=cleaned)
    status = fields.invalid_status(
        kind=attributes.kind, group=attributes.group, name=attributes.name, errors=verdict.errors
    )
    return Decision(allowed=False, status=status, warnings=cleaned)
