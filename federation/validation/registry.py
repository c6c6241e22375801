"""Which validator handles which resource, and the admission response sent back to the apiserver.

Resources not in the table, and CONNECT, are allowed: the webhook configuration decides what is
sent here, and an unknown resource is a configuration mistake we should not turn into an outage.
"""

from __future__ import annotations

from collections.abc import Callable

from federation import resources, warnings
from federation.admission_response import AdmissionResponse
from federation.api_status import invalid_status
from federation.fields import ValidationResult
from federation.validation import destinationrule, istiofederation, serviceentry
from federation.validation.attributes import Attributes, Context

Validator = Callable[[Attributes, Context], ValidationResult]

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

# The resources the webhook has rules for, in resources.ALL's order.
CHECKED: tuple[resources.Resource, ...] = tuple(
    resource for resource in resources.ALL if (resource.group, resource.plural) in _VALIDATORS
)


def webhook_name(group: str, resource: str) -> str | None:
    entry = _VALIDATORS.get((group, resource))
    return entry[1] if entry else None


def admit(attributes: Attributes, context: Context) -> AdmissionResponse:
    """Run the resource's validator and turn its result into the webhook's answer."""
    entry = _VALIDATORS.get((attributes.group, attributes.resource))
    if entry is None or attributes.operation == "CONNECT":
        return AdmissionResponse(allowed=True)
    validator, _ = entry
    result = validator(attributes, context)
    cleaned = warnings.capped(result.warnings)
    if result.valid:
        return AdmissionResponse(allowed=True, warnings=cleaned)
    status = invalid_status(kind=attributes.kind, group=attributes.group, name=attributes.name, errors=result.errors)
    return AdmissionResponse(allowed=False, status=status, warnings=cleaned)
