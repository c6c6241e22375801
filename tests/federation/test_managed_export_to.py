"""Explicit ``exportTo`` on managed objects (issue 12, item 5), as the webhook sees them.

The reconciler writes ``exportTo`` on every ServiceEntry and DestinationRule it manages (``["*"]``
unless ``--export-to`` or the federation's annotation says otherwise).  What it writes must pass
the webhook (Istio's ``validateExportTo``), and the webhook's duplicate-host rule must read that
``exportTo``: a managed ServiceEntry visible only where another declaration of its host is not
visible does not collide with it.
"""

from __future__ import annotations

from typing import Any

import pytest

from federation import desired, ownership
from federation.documents.ingress_gateways import IngressGateway
from federation.documents.private import PrivateMetadata
from federation.documents.public_services import PublicService, ServicePort
from federation.validation import registry
from federation.validation.attributes import Attributes, Context
from tests.federation.test_validation_serviceentry import (
    MANAGED_HOST,
    RECONCILER,
    admit,
    cluster_index,
    federation,
    service_entry,
)

EXPORT_TO_ANNOTATION = "federation.istio.deckhouse.io/export-to"


def written(export_to: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ServiceEntry and DestinationRule the reconciler writes for MANAGED_HOST."""
    state = desired.desired_state(
        PrivateMetadata(
            (IngressGateway("10.0.0.10", 15443),), (PublicService(MANAGED_HOST, (ServicePort("http", 80, "HTTP"),)),)
        ),
        desired.FederationSettings(
            federation_name="cluster-b",
            namespace="istio-federation",
            trust_domain="cluster-b.local",
            remote_cluster_uuid="uuid-b",
            local_trust_domain="cluster-a.local",
            export_to=export_to,
        ),
    )
    rule, entry = state.objects
    return entry, rule


@pytest.mark.parametrize("export_to", [("*",), (".",), ("shop", "web"), ("~",)], ids=str)
def test_what_the_reconciler_writes_passes_the_webhook(export_to: tuple[str, ...]) -> None:
    entry, rule = written(export_to)
    assert entry["spec"]["exportTo"] == list(export_to)
    assert admit(entry, username=RECONCILER).allowed
    attributes = Attributes(
        operation="CREATE",
        group="networking.istio.io",
        resource="destinationrules",
        kind="DestinationRule",
        name=rule["metadata"]["name"],
        namespace="istio-federation",
        obj=rule,
        old=None,
        username=RECONCILER,
    )
    assert registry.admit(attributes, Context(index=cluster_index(), local_trust_domain="cluster-a.local")).allowed


@pytest.mark.parametrize(
    ("export_to", "allowed"),
    [
        pytest.param(("shop",), True, id="disjoint"),
        pytest.param(("billing",), False, id="exported-where-the-other-is-visible"),
        pytest.param(("*",), False, id="everywhere"),
    ],
)
def test_the_duplicate_host_rule_reads_a_managed_entrys_export_to(export_to: tuple[str, ...], allowed: bool) -> None:
    # An admin's entry for the host, visible in its own namespace only (older than the federation).
    existing = service_entry("legacy", "billing", [MANAGED_HOST], export_to=["."])
    entry, _ = written(export_to)

    decision = admit(entry, index=cluster_index(existing), username=RECONCILER)

    assert decision.allowed is allowed
    if not allowed:
        assert decision.message == (
            f'ServiceEntry "{ownership.managed_name(MANAGED_HOST)}" is invalid: spec.hosts[0]: Duplicate value: '
            f'"{MANAGED_HOST}": host is already declared by ServiceEntry billing/legacy and both are visible to the '
            "same namespaces (Istio would silently use the older one); remove the host from one of them, or make "
            "their exportTo scopes disjoint"
        )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("shop, web", None, id="namespaces"),
        pytest.param(".", None, id="own-namespace"),
        pytest.param(
            "*,shop",
            'IstioFederation "cluster-b" is invalid: metadata.annotations[federation.istio.deckhouse.io/export-to]: '
            'Invalid value: "*,shop": exportTo: Forbidden: cannot have both public (*) and non-public exportTo '
            "values for a resource: use a comma-separated list of namespaces, or '.', '*' or '~'",
            id="public-and-a-namespace",
        ),
        pytest.param(
            "shop_1",
            'IstioFederation "cluster-b" is invalid: metadata.annotations[federation.istio.deckhouse.io/export-to]: '
            'Invalid value: "shop_1": exportTo[0]: Invalid value: "shop_1": only .,*, or a valid DNS 1123 label is '
            "allowed as exportTo entry: use a comma-separated list of namespaces, or '.', '*' or '~'",
            id="not-a-namespace",
        ),
    ],
)
def test_the_webhook_checks_the_export_to_annotation(value: str, message: str | None) -> None:
    obj = federation()
    obj["metadata"]["annotations"] = {EXPORT_TO_ANNOTATION: value}
    attributes = Attributes(
        operation="CREATE",
        group="deckhouse.io",
        resource="istiofederations",
        kind="IstioFederation",
        name="cluster-b",
        namespace="",
        obj=obj,
        old=None,
        username="kubernetes-admin",
    )

    decision = registry.admit(attributes, Context(index=cluster_index(), local_trust_domain="cluster-a.local"))

    assert decision.allowed is (message is None)
    if message is not None:
        assert decision.message == message
