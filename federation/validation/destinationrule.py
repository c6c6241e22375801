"""Admission rules for DestinationRule: only the ownership of managed ones is checked.

The reconciler writes one DestinationRule (ISTIO_MUTUAL) beside every managed ServiceEntry. The
webhook configuration only sends DestinationRules that carry the managed-by label (objectSelector),
so every other DestinationRule in the cluster is never slowed down or blocked by this webhook.
"""

from __future__ import annotations

from federation.fields import ValidationResult
from federation.validation import managed
from federation.validation.attributes import Attributes, Context


def validate(attributes: Attributes, context: Context) -> ValidationResult:
    return managed.check(managed.DESTINATION_RULE, attributes, context)
