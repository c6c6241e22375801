"""AdmissionReview requests as kube-apiserver sends them, for tests."""

from __future__ import annotations

import uuid
from typing import Any

GROUP_VERSION = {
    "IstioFederation": ("deckhouse.io", "v1alpha1", "istiofederations"),
    "ServiceEntry": ("networking.istio.io", "v1", "serviceentries"),
}


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
    group, version, plural = GROUP_VERSION[subject["kind"]]
    metadata = subject.get("metadata", {})
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid or str(uuid.uuid4()),
            "kind": {"group": group, "version": version, "kind": subject["kind"]},
            "resource": {"group": group, "version": version, "resource": plural},
            "requestKind": {"group": group, "version": version, "kind": subject["kind"]},
            "requestResource": {"group": group, "version": version, "resource": plural},
            "name": metadata.get("name", ""),
            "namespace": metadata.get("namespace", ""),
            "operation": operation,
            "userInfo": {"username": username, "groups": ["system:masters", "system:authenticated"]},
            "object": obj,
            "oldObject": old,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": f"{operation.title()}Options"},
        },
    }


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
