"""The Kubernetes resources this project reads and writes, described once.

Objects themselves travel as plain dicts, exactly as the API serves them; these descriptors only
say where a kind lives (group, version, plural) and whether it is namespaced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

KubeObject = dict[str, Any]


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``serviceentries.networking.istio.io``, the form the apiserver uses in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


ISTIO_FEDERATION = Resource("deckhouse.io", "v1alpha1", "istiofederations", "IstioFederation", False)
SERVICE_ENTRY = Resource("networking.istio.io", "v1", "serviceentries", "ServiceEntry", True)
DESTINATION_RULE = Resource("networking.istio.io", "v1", "destinationrules", "DestinationRule", True)
CONFIG_MAP = Resource("", "v1", "configmaps", "ConfigMap", True)
SECRET = Resource("", "v1", "secrets", "Secret", True)
SERVICE = Resource("", "v1", "services", "Service", True)
POD = Resource("", "v1", "pods", "Pod", True)
NODE = Resource("", "v1", "nodes", "Node", False)
EVENT = Resource("", "v1", "events", "Event", True)
LEASE = Resource("coordination.k8s.io", "v1", "leases", "Lease", True)

ALL = (
    ISTIO_FEDERATION,
    SERVICE_ENTRY,
    DESTINATION_RULE,
    CONFIG_MAP,
    SECRET,
    SERVICE,
    POD,
    NODE,
    EVENT,
    LEASE,
)

# ServiceEntry is served as v1, v1beta1 and v1alpha3; they are one resource with one schema.
SERVICE_ENTRY_VERSIONS = ("v1", "v1beta1", "v1alpha3")


def by_kind(kind: str) -> Resource | None:
    for resource in ALL:
        if resource.kind == kind:
            return resource
    return None


@dataclass(frozen=True, order=True)
class ObjectKey:
    """Identifies one object: its kind, namespace ("" when cluster-scoped) and name."""

    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: KubeObject) -> ObjectKey:
        meta = obj.get("metadata") or {}
        return cls(str(obj.get("kind", "")), str(meta.get("namespace") or ""), str(meta.get("name") or ""))

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"


def meta(obj: KubeObject) -> dict[str, Any]:
    value = obj.get("metadata")
    return value if isinstance(value, dict) else {}


def labels(obj: KubeObject) -> dict[str, str]:
    value = meta(obj).get("labels")
    return value if isinstance(value, dict) else {}


def annotations_of(obj: KubeObject) -> dict[str, str]:
    value = meta(obj).get("annotations")
    return value if isinstance(value, dict) else {}


def name_of(obj: KubeObject) -> str:
    return str(meta(obj).get("name") or "")


def namespace_of(obj: KubeObject) -> str:
    return str(meta(obj).get("namespace") or "")


def spec(obj: KubeObject) -> dict[str, Any]:
    value = obj.get("spec")
    return value if isinstance(value, dict) else {}


def envelope_problem(doc: Any) -> str | None:
    """Why ``doc`` read from a file is not a Kubernetes object (a mapping with apiVersion, kind and
    metadata.name), in words for the person who wrote the file; None when it is one."""
    if not isinstance(doc, dict):
        return f"expected a Kubernetes object (a mapping), got {type(doc).__name__}"
    missing = [key for key in ("apiVersion", "kind") if not isinstance(doc.get(key), str) or not doc.get(key)]
    if missing:
        return f"object has no {' or '.join(missing)}; every object needs apiVersion and kind"
    metadata = doc.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str) or not metadata["name"]:
        return f"{doc['kind']} has no metadata.name"
    return None
