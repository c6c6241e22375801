"""ServiceEntry admission: the federation rules layered on Istio's own validation.

One valid fixture, one change per case; every denial is compared in full.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from federation import ownership
from federation.admission_response import AdmissionResponse
from federation.index import ObjectIndex
from federation.validation import registry
from federation.validation.attributes import DEFAULT_RECONCILER_USERNAME, Attributes, Context

RECONCILER = DEFAULT_RECONCILER_USERNAME
ADMIN = "kubernetes-admin"
MANAGED_HOST = "bar.xyz.svc.cluster-b.local"
MANAGED_NAME = "bar-xyz-svc-cluster-b-local-9qv7cmchrxqdhvnv"
LEGACY_NAME = "bar-xyz-svc-cluster-b-local"  # the name before managed names carried a hash
LABEL_PATH = "metadata.labels[federation.istio.deckhouse.io/federation]"


def service_entry(
    name: str = "payments",
    namespace: str = "shop",
    hosts: list[str] | None = None,
    labels: dict[str, str] | None = None,
    export_to: list[str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "hosts": hosts or ["payments.example.com"],
        "location": "MESH_EXTERNAL",
        "resolution": "DNS",
        "ports": [{"name": "https", "number": 443, "protocol": "TLS"}],
    }
    if export_to is not None:
        spec["exportTo"] = export_to
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels is not None:
        metadata["labels"] = labels
    return {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": metadata, "spec": spec}


def managed_entry(host: str = MANAGED_HOST, federation: str = "cluster-b", name: str | None = None) -> dict[str, Any]:
    obj = service_entry(
        name or ownership.managed_name(host),
        "istio-federation",
        [host],
        ownership.ownership_labels(federation),
    )
    obj["spec"]["location"] = "MESH_INTERNAL"
    obj["spec"]["resolution"] = "STATIC"
    obj["spec"]["endpoints"] = [{"address": "10.0.0.1", "ports": {"https": 15443}}]
    return obj


def federation(name: str = "cluster-b", trust_domain: str = "cluster-b.local") -> dict[str, Any]:
    return {
        "apiVersion": "deckhouse.io/v1alpha1",
        "kind": "IstioFederation",
        "metadata": {"name": name},
        "spec": {"trustDomain": trust_domain, "metadataEndpoint": f"https://{name}.example.com/metadata/"},
    }


def cluster_index(*extra: dict[str, Any]) -> ObjectIndex:
    index = ObjectIndex()
    index.apply("ADDED", federation())
    for obj in extra:
        index.apply("ADDED", obj)
    return index


def admit(
    obj: dict[str, Any] | None,
    *,
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
    username: str = ADMIN,
    index: ObjectIndex | None = None,
    version: str = "v1",
) -> AdmissionResponse:
    subject = obj if obj is not None else old
    assert subject is not None
    attributes = Attributes(
        operation=operation,
        group="networking.istio.io",
        resource="serviceentries",
        kind="ServiceEntry",
        name=subject["metadata"]["name"],
        namespace=subject["metadata"]["namespace"],
        obj=obj,
        old=old,
        username=username,
    )
    assert version in ("v1", "v1beta1", "v1alpha3")
    return registry.admit(attributes, Context(index=index or cluster_index(), local_trust_domain="cluster-a.local"))


def test_valid_fixture_is_allowed() -> None:
    assert admit(service_entry()) == AdmissionResponse(allowed=True)


def test_istio_rules_are_applied_and_reported_together() -> None:
    obj = service_entry()
    obj["spec"]["hosts"] = ["*"]
    obj["spec"]["ports"].append({"name": "https", "number": 8443, "protocol": "TLS"})
    decision = admit(obj)
    assert decision.message == (
        'ServiceEntry "payments" is invalid: [spec.hosts[0]: Invalid value: "*": invalid host *, '
        'spec.ports[1].name: Invalid value: "https": service entry port name "https" already defined, '
        'spec.hosts[0]: Invalid value: "*": hosts must be FQDN or contain only prefix wildcards if no endpoints '
        'are provided for resolution mode DNS, domain name "*" invalid (label "*" invalid)]'
    )
    assert decision.status is not None
    assert decision.status["code"] == 422


RESERVED = (
    'Forbidden: host "{host}" is in trust domain "cluster-b.local", reserved by IstioFederation "cluster-b": only '
    "ServiceEntries that federation manages may declare it; to reach the remote service, export it in the remote "
    "cluster (label federation.istio.deckhouse.io/public-service) instead"
)


@pytest.mark.parametrize(
    "host",
    ["bar.xyz.svc.cluster-b.local", "cluster-b.local", "*.cluster-b.local", "BAR.xyz.svc.Cluster-B.local"],
    ids=["service-host", "domain-itself", "wildcard", "mixed-case"],
)
def test_federated_domain_is_reserved(host: str) -> None:
    obj = service_entry(hosts=["payments.example.com", host])
    obj["spec"]["resolution"] = "NONE"  # Istio itself refuses wildcard hosts with DNS and no endpoints
    decision = admit(obj)
    assert decision.message == 'ServiceEntry "payments" is invalid: spec.hosts[1]: ' + RESERVED.format(host=host)


def test_lookalike_domain_is_not_reserved() -> None:
    assert admit(service_entry(hosts=["bar.notcluster-b.local"])).allowed


DUPLICATE = (
    'ServiceEntry "payments" is invalid: spec.hosts[0]: Duplicate value: "payments.example.com": host is already '
    "declared by ServiceEntry {other}{owned} and both are visible to the same namespaces (Istio would silently "
    "use the older one); {way_out}"
)
WAY_OUT = "remove the host from one of them, or make their exportTo scopes disjoint"


@pytest.mark.parametrize(
    ("existing", "new_export_to", "other"),
    [
        (service_entry("old-payments"), None, "shop/old-payments"),
        (service_entry("old-payments", "billing"), None, "billing/old-payments"),
        (service_entry("old-payments", "billing", export_to=["shop"]), ["."], "billing/old-payments"),
        (service_entry("old-payments", "billing", export_to=["*"]), ["web"], "billing/old-payments"),
    ],
    ids=["same-namespace", "both-public", "exported-to-our-namespace", "public-and-scoped"],
)
def test_duplicate_host_with_overlapping_visibility_is_denied(
    existing: dict[str, Any], new_export_to: list[str] | None, other: str
) -> None:
    decision = admit(service_entry(export_to=new_export_to), index=cluster_index(existing))
    assert decision.message == DUPLICATE.format(other=other, owned="", way_out=WAY_OUT)


def test_duplicate_host_is_case_insensitive() -> None:
    existing = service_entry("old-payments", hosts=["Payments.Example.com"])
    decision = admit(service_entry(), index=cluster_index(existing))
    assert decision.message == DUPLICATE.format(other="shop/old-payments", owned="", way_out=WAY_OUT)


@pytest.mark.parametrize(
    ("existing", "new_export_to"),
    [
        (service_entry("old-payments", "billing", export_to=["."]), ["."]),
        (service_entry("old-payments", "billing", export_to=["~"]), None),
        (service_entry("old-payments", "billing", export_to=["billing"]), ["web"]),
    ],
    ids=["both-private", "other-exported-to-nobody", "disjoint-namespaces"],
)
def test_duplicate_host_with_disjoint_visibility_is_allowed(
    existing: dict[str, Any], new_export_to: list[str] | None
) -> None:
    assert admit(service_entry(export_to=new_export_to), index=cluster_index(existing)).allowed


def test_update_of_itself_is_not_a_duplicate() -> None:
    existing = service_entry()
    changed = copy.deepcopy(existing)
    changed["spec"]["ports"][0]["number"] = 8443
    assert admit(changed, operation="UPDATE", old=existing, index=cluster_index(existing)).allowed


def test_a_host_held_by_a_managed_entry_is_refused_once_as_reserved() -> None:
    existing = managed_entry()
    obj = service_entry(hosts=[MANAGED_HOST], namespace="istio-federation", name="mine")
    decision = admit(obj, index=cluster_index(existing))
    # One error for the one problem: the reserved-domain message already says whose host it is.
    assert decision.message == 'ServiceEntry "mine" is invalid: spec.hosts[0]: ' + RESERVED.format(host=MANAGED_HOST)


def test_duplicate_of_another_federations_managed_entry_names_that_federation() -> None:
    # Trust domains may nest: "east" federates east.cluster-b.local, inside cluster-b.local.
    host = "bar.east.cluster-b.local"
    existing = managed_entry(host, federation="east", name="bar-east-cluster-b-local")  # under its old name
    index = cluster_index(federation("east", "east.cluster-b.local"), existing)
    decision = admit(managed_entry(host), index=index, username=RECONCILER)
    assert decision.message == (
        'ServiceEntry "bar-east-cluster-b-local-47t6v6jxqp2s9z42" is invalid: spec.hosts[0]: Duplicate value: '
        '"bar.east.cluster-b.local": host is already declared by ServiceEntry '
        'istio-federation/bar-east-cluster-b-local, managed by IstioFederation "east" and both '
        "are visible to the same namespaces (Istio would silently use the older one); remove the host here"
    )


def test_a_federations_entry_under_its_old_name_does_not_block_the_new_name() -> None:
    """Upgrade path: the reconciler creates the collision-free name, then deletes the old object."""
    old_named = managed_entry(name=LEGACY_NAME)
    assert admit(managed_entry(), index=cluster_index(old_named), username=RECONCILER) == AdmissionResponse(
        allowed=True
    )
    assert admit(None, operation="DELETE", old=old_named, username=RECONCILER, index=cluster_index(old_named)).allowed


def test_the_upgrade_exemption_is_only_for_the_same_federations_managed_entries() -> None:
    unmanaged = service_entry("squatter", "shop", [MANAGED_HOST])
    decision = admit(managed_entry(), index=cluster_index(unmanaged), username=RECONCILER)
    assert decision.message == (
        f'ServiceEntry "{MANAGED_NAME}" is invalid: spec.hosts[0]: Duplicate value: "{MANAGED_HOST}": host is '
        "already declared by ServiceEntry shop/squatter and both are visible to the same namespaces (Istio would "
        "silently use the older one); remove the host from one of them, or make their exportTo scopes disjoint"
    )


MANAGED_BY_RECONCILER_ONLY = (
    f'ServiceEntry "{MANAGED_NAME}" is invalid: {LABEL_PATH}: Forbidden: ServiceEntry '
    f'istio-federation/{MANAGED_NAME} is managed by IstioFederation "cluster-b" and only the reconciler may '
    "change it; {action}"
)


def test_admin_may_not_create_a_managed_entry() -> None:
    decision = admit(managed_entry())
    assert decision.message == (
        f'ServiceEntry "{MANAGED_NAME}" is invalid: {LABEL_PATH}: Forbidden: the labels '
        "app.kubernetes.io/managed-by and federation.istio.deckhouse.io/federation are reserved for ServiceEntries "
        'the reconciler creates for IstioFederation "cluster-b"; remove them from ServiceEntry '
        f"istio-federation/{MANAGED_NAME}"
    )


def test_admin_may_not_update_a_managed_entry() -> None:
    old = managed_entry()
    new = copy.deepcopy(old)
    new["spec"]["endpoints"][0]["address"] = "10.9.9.9"
    decision = admit(new, operation="UPDATE", old=old, index=cluster_index(old))
    assert decision.message == MANAGED_BY_RECONCILER_ONLY.format(
        action="it is regenerated on every sync; change the remote service or the IstioFederation instead"
    )


def test_admin_may_not_delete_a_managed_entry() -> None:
    old = managed_entry()
    decision = admit(None, operation="DELETE", old=old, index=cluster_index(old))
    assert decision.message == MANAGED_BY_RECONCILER_ONLY.format(
        action="to remove it, stop exporting the service in the remote cluster or delete the federation"
    )


def test_admin_may_not_strip_the_ownership_labels() -> None:
    old = managed_entry()
    new = copy.deepcopy(old)
    del new["metadata"]["labels"]
    decision = admit(new, operation="UPDATE", old=old, index=cluster_index(old))
    stripped = MANAGED_BY_RECONCILER_ONLY.format(
        action="removing its ownership labels would orphan it; delete the IstioFederation instead"
    )
    head, _, first = stripped.partition(" is invalid: ")
    assert (
        decision.message == f"{head} is invalid: [{first}, spec.hosts[0]: " + RESERVED.format(host=MANAGED_HOST) + "]"
    )


def test_admin_may_not_add_ownership_labels_to_an_existing_entry() -> None:
    old = service_entry(hosts=["x.example.com"])
    new = copy.deepcopy(old)
    new["metadata"]["labels"] = {ownership.MANAGED_BY_LABEL: ownership.MANAGED_BY_VALUE}
    decision = admit(new, operation="UPDATE", old=old)
    assert decision.message == (
        'ServiceEntry "payments" is invalid: metadata.labels: Forbidden: the labels app.kubernetes.io/managed-by '
        "and federation.istio.deckhouse.io/federation are reserved for ServiceEntries the reconciler creates for "
        "an IstioFederation; remove them from ServiceEntry shop/payments"
    )


def test_reconciler_may_create_update_and_delete_managed_entries() -> None:
    obj = managed_entry()
    assert admit(obj, username=RECONCILER).allowed
    changed = copy.deepcopy(obj)
    changed["spec"]["endpoints"].append({"address": "10.0.0.2", "ports": {"https": 15443}})
    assert admit(changed, operation="UPDATE", old=obj, username=RECONCILER, index=cluster_index(obj)).allowed
    assert admit(None, operation="DELETE", old=obj, username=RECONCILER, index=cluster_index(obj)).allowed


def test_managed_entry_must_name_an_existing_federation() -> None:
    decision = admit(managed_entry(federation="cluster-x"), username=RECONCILER)
    assert decision.message == (
        f'ServiceEntry "{MANAGED_NAME}" is invalid: {LABEL_PATH}: Invalid value: "cluster-x": IstioFederation '
        '"cluster-x" does not exist; a managed ServiceEntry must name its federation'
    )


def test_managed_entry_hosts_must_be_in_its_trust_domain() -> None:
    obj = managed_entry(host="bar.xyz.svc.cluster-c.local")
    decision = admit(obj, username=RECONCILER)
    assert decision.message == (
        'ServiceEntry "bar-xyz-svc-cluster-c-local-hp2cmvqn7qp4fhqv" is invalid: spec.hosts[0]: Invalid value: '
        '"bar.xyz.svc.cluster-c.local": must be under trust domain "cluster-b.local" of IstioFederation "cluster-b"'
    )


def test_managed_entry_name_is_derived_from_its_host() -> None:
    decision = admit(managed_entry(name="bar"), username=RECONCILER)
    assert decision.message == (
        'ServiceEntry "bar" is invalid: metadata.name: Invalid value: "bar": a managed ServiceEntry must be named '
        f'after its host: expected "{MANAGED_NAME}"'
    )


def test_unmanaged_host_under_local_trust_domain_warns() -> None:
    decision = admit(service_entry(hosts=["api.default.svc.cluster-a.local"]))
    assert decision == AdmissionResponse(
        allowed=True,
        warnings=(
            "spec.hosts[0]: api.default.svc.cluster-a.local is under the local trust domain and shadows a local "
            "Service",
        ),
    )


@pytest.mark.parametrize("operation", ["CONNECT"])
def test_connect_is_allowed(operation: str) -> None:
    assert admit(managed_entry(), operation=operation) == AdmissionResponse(allowed=True)


def test_unknown_resources_are_allowed() -> None:
    attributes = Attributes(
        operation="CREATE",
        group="networking.istio.io",
        resource="destinationrules",
        kind="DestinationRule",
        name="x",
        namespace="shop",
        obj={"metadata": {"name": "x"}},
        old=None,
        username=ADMIN,
    )
    assert registry.admit(attributes, Context(index=ObjectIndex(), local_trust_domain="a.local")).allowed


@pytest.mark.parametrize("suffix", ["\n", "\r\n", "\r", "\x00", "\t"], ids=repr)
def test_control_characters_in_the_ownership_label_or_the_managed_name(suffix: str) -> None:
    shown = json.dumps(suffix)[1:-1]
    label = managed_entry(federation="cluster-b" + suffix)
    decision = admit(label, username=RECONCILER)
    assert decision.message == (
        f'ServiceEntry "{MANAGED_NAME}" is invalid: {LABEL_PATH}: Invalid value: "cluster-b{shown}": IstioFederation '
        f'"cluster-b{shown}" does not exist; a managed ServiceEntry must name its federation'
    )
    name = managed_entry(name=MANAGED_NAME + suffix)
    decision = admit(name, username=RECONCILER)
    assert decision.message == (
        f'ServiceEntry "{MANAGED_NAME}{shown}" is invalid: metadata.name: Invalid value: "{MANAGED_NAME}{shown}": a '
        f'managed ServiceEntry must be named after its host: expected "{MANAGED_NAME}"'
    )
