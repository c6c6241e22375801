"""Where a request goes: the resources the double serves, its discovery documents, and path routing.

Paths follow kube-apiserver's: ``/api/v1/...`` for the core group, ``/apis/<group>/<version>/...``
for the others, ``namespaces/<ns>/`` before namespaced resources, and ``/status`` as the only
subresource (of custom resources).  An unknown path is the apiserver's 404 ``NotFound``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from federation import resources
from federation.resources import Resource
from tests.kubeapi.status import NO_RESOURCE, ApiError

VALIDATING_WEBHOOK_CONFIGURATION = Resource(
    "admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", "ValidatingWebhookConfiguration", False
)
SERVED: tuple[Resource, ...] = (*resources.ALL, VALIDATING_WEBHOOK_CONFIGURATION)
# Custom resources: generation, status subresource, resourceVersion required on update, and
# list items that carry apiVersion and kind (built-in lists do not).
CUSTOM = frozenset({resources.ISTIO_FEDERATION, resources.SERVICE_ENTRY, resources.DESTINATION_RULE})
VERSIONS: dict[Resource, tuple[str, ...]] = {
    resources.SERVICE_ENTRY: resources.SERVICE_ENTRY_VERSIONS,
    resources.DESTINATION_RULE: resources.SERVICE_ENTRY_VERSIONS,
}


@dataclass(frozen=True)
class Route:
    resource: Resource
    version: str
    namespace: str | None
    name: str
    subresource: str


def resolve(path: str) -> Route | dict[str, Any]:
    """Where ``path`` goes: a resource route, or a discovery document to answer as it is."""
    parts = [part for part in path.split("/") if part]
    if parts == ["version"]:
        return {"major": "1", "minor": "33", "gitVersion": "v1.33.0-kube-api-double", "platform": "linux/amd64"}
    if parts == ["api"]:
        return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
    if parts == ["apis"]:
        return group_list()
    if len(parts) < 2 or parts[0] not in ("api", "apis"):
        raise ApiError(NO_RESOURCE)
    if parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    else:
        if len(parts) < 3:
            raise ApiError(NO_RESOURCE)
        group, version, rest = parts[1], parts[2], parts[3:]
    if not rest:
        return resource_list(group, version)
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    if len(rest) > 3:
        raise ApiError(NO_RESOURCE)
    resource = served(group, version, rest[0])
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if resource is None or (namespace is not None and not resource.namespaced):
        raise ApiError(NO_RESOURCE)
    if resource.namespaced and namespace is None and name:
        raise ApiError(NO_RESOURCE)
    if subresource and (subresource != "status" or resource not in CUSTOM):
        raise ApiError(NO_RESOURCE)
    return Route(resource, version, namespace, name, subresource)

def served(group: str, version: str, plural: str) -> Resource | None:
    for resource in SERVED:
        if resource.group == group and resource.plural == plural and version in VERSIONS.get(
            resource, (resource.version,)
        ):
            return resource
    return None

def group_list() -> dict[str, Any]:
    groups: dict[str, list[str]] = {}
    for resource in SERVED:
        if resource.group:
            for version in VERSIONS.get(resource, (resource.version,)):
                if version not in groups.setdefault(resource.group, []):
                    groups[resource.group].append(version)
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {
                "name": group,
                "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
                "preferredVersion": {"groupVersion": f"{group}/{versions[0]}", "version": versions[0]},
            }
            for group, versions in groups.items()
        ],
    }

def resource_list(group: str, version: str) -> dict[str, Any]:
    entries: list[dict[str, Any]] = []
    for resource in SERVED:
        if resource.group != group or version not in VERSIONS.get(resource, (resource.version,)):
            continue
        verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
        entries.append(
            {"name": resource.plural, "singularName": resource.kind.lower(), "namespaced": resource.namespaced,
             "kind": resource.kind, "verbs": verbs}
        )
        if resource in CUSTOM:
            entries.append(
                {"name": f"{resource.plural}/status", "singularName": "", "namespaced": resource.namespaced,
                 "kind": resource.kind, "verbs": ["get", "patch", "update"]}
            )
    if not entries:
        raise ApiError(NO_RESOURCE)
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": api_version_of(group, version),
            "resources": entries}


def api_version_of(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version
