"""Managed DestinationRules belong to the reconciler, exactly like managed ServiceEntries."""

from __future__ import annotations

import copy
from typing import Any

from federation import ownership
from federation.admission_response import AdmissionResponse
from federation.index import ObjectIndex
from federation.validation import registry
from federation.validation.attributes import DEFAULT_RECONCILER_USERNAME, Attributes, Context
from tests.reviews import federation

HOST = "bar.xyz.svc.cluster-b.local"
NAME = "bar-xyz-svc-cluster-b-local-9qv7cmchrxqdhvnv"
LABEL_PATH = "metadata.labels[federation.istio.deckhouse.io/federation]"


def rule(name: str = NAME, host: str = HOST, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": name, "namespace": "istio-federation", "labels": labels or {}},
        "spec": {"host": host, "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}},
    }


def managed_rule(**changes: Any) -> dict[str, Any]:
    return rule(labels=ownership.ownership_labels("cluster-b"), **changes)


def admit(obj: dict[str, Any] | None, *, operation: str = "CREATE", old: dict[str, Any] | None = None,
          username: str = "kubernetes-admin") -> AdmissionResponse:  # fmt: skip
    subject = obj if obj is not None else old
    assert subject is not None
    index = ObjectIndex()
    index.apply("ADDED", federation())
    attributes = Attributes(
        operation=operation,
        group="networking.istio.io",
        resource="destinationrules",
        kind="DestinationRule",
        name=subject["metadata"]["name"],
        namespace="istio-federation",
        obj=obj,
        old=old,
        username=username,
    )
    return registry.admit(attributes, Context(index=index, local_trust_domain="cluster-a.local"))


def test_unmanaged_rules_are_not_this_webhooks_business() -> None:
    assert admit(rule(name="anything", host="reviews.default.svc.cluster-a.local")) == AdmissionResponse(allowed=True)


def test_the_reconciler_writes_managed_rules() -> None:
    assert admit(managed_rule(), username=DEFAULT_RECONCILER_USERNAME).allowed
    assert admit(None, operation="DELETE", old=managed_rule(), username=DEFAULT_RECONCILER_USERNAME).allowed


def test_an_admin_may_not_change_a_managed_rule() -> None:
    old = managed_rule()
    new = copy.deepcopy(old)
    new["spec"]["trafficPolicy"]["tls"]["mode"] = "DISABLE"
    decision = admit(new, operation="UPDATE", old=old)
    assert decision.message == (
        f'DestinationRule "{NAME}" is invalid: {LABEL_PATH}: Forbidden: DestinationRule istio-federation/{NAME} is '
        'managed by IstioFederation "cluster-b" and only the reconciler may change it; it is regenerated on every '
        "sync; change the remote service or the IstioFederation instead"
    )
    assert registry.webhook_name("networking.istio.io", "destinationrules") == (
        "destinationrules.istio-federation.deckhouse.io"
    )


def test_an_admin_may_not_label_a_rule_as_managed() -> None:
    decision = admit(managed_rule(name="mine"))
    assert decision.message == (
        f'DestinationRule "mine" is invalid: {LABEL_PATH}: Forbidden: the labels app.kubernetes.io/managed-by and '
        "federation.istio.deckhouse.io/federation are reserved for DestinationRules the reconciler creates for "
        'IstioFederation "cluster-b"; remove them from DestinationRule istio-federation/mine'
    )


def test_the_reconciler_keeps_to_the_naming_and_domain_rules() -> None:
    decision = admit(managed_rule(name="bar", host="bar.xyz.svc.cluster-c.local"), username=DEFAULT_RECONCILER_USERNAME)
    assert decision.message == (
        'DestinationRule "bar" is invalid: [spec.host: Invalid value: "bar.xyz.svc.cluster-c.local": must be under '
        'trust domain "cluster-b.local" of IstioFederation "cluster-b", metadata.name: Invalid value: "bar": a '
        'managed DestinationRule must be named after its host: expected "bar-xyz-svc-cluster-c-local-hp2cmvqn7qp4fhqv"]'
    )
