"""AdmissionReview requests as kube-apiserver sends them, for tests (built by the product's module)."""

from __future__ import annotations

import uuid
from typing import Any

from federation import admission_review as wire
from federation import resources


def admission_review(
    obj: dict[str, Any] | None,
    *,
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
    username: str = "kubernetes-admin",
    uid: str | None = None,
) -> dict[str, Any]:
    subject = obj if obj is not None else old
    assert subject is not None
    resource = resources.by_kind(subject["kind"])
    assert resource is not None
    metadata = subject.get("metadata", {})
    review = wire.build_request(
        uid=uid or str(uuid.uuid4()),
        resource=resource,
        version=resource.version,
        operation=operation,
        name=metadata.get("name", ""),
        namespace=metadata.get("namespace", ""),
        username=username,
        groups=("system:masters", "system:authenticated"),
        obj=obj,
        old=old,
        options={"apiVersion": "meta.k8s.io/v1", "kind": f"{operation.title()}Options"},
    )
    return dict(review)


def federation(name: str = "cluster-b", trust_domain: str = "cluster-b.local") -> dict[str, Any]:
    return {
        "apiVersion": "deckhouse.io/v1alpha1",
        "kind": "IstioFederation",
        "metadata": {"name": name},
        "spec": {"trustDomain": trust_domain, "metadataEndpoint": f"https://meta.{trust_domain}.example.com/metadata/"},
    }


def service_entry(name: str, namespace: str, host: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "hosts": [host],
            "location": "MESH_EXTERNAL",
            "resolution": "DNS",
            "ports": [{"name": "https", "number": 443, "protocol": "TLS"}],
        },
    }
