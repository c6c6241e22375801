"""Which requests each component makes, and whether the shipped RBAC allows exactly those.

A :class:`Request` is one (verb, group, resource, subresource, namespace, name) as the apiserver's
authorizer sees it: ``namespace`` None is a cluster-wide request; for list and watch, ``name`` is
what a ``fieldSelector=metadata.name=…`` names (that is how RBAC matches ``resourceNames``).
Requests come from two places: the watches each component's store is built with (derived from
the code, for every configuration its flags allow), and the apiserver's audit log of a real run.
:func:`allowed` evaluates RBAC's rules (bindings, scope, verbs, groups, resources, resourceNames)
over the objects of ``kubectl kustomize manifests``.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

from federation.store import Watch

FIELD_NAME = "metadata.name="


@dataclass(frozen=True, order=True)
class Request:
    verb: str
    group: str
    resource: str
    subresource: str = ""
    namespace: str | None = None
    name: str | None = None

    def __str__(self) -> str:
        what = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        group = self.group or "core"
        where = f"in {self.namespace}" if self.namespace is not None else "cluster-wide"
        named = f" named {self.name}" if self.name else ""
        return f"{self.verb} {group} {what} {where}{named}"


@dataclass(frozen=True, order=True)
class Grant:
    """One verb on one resource that a binding grants a subject, where (None: every namespace)."""

    verb: str
    group: str
    resource: str
    namespace: str | None
    names: tuple[str, ...] = ()

    def covers(self, request: Request) -> bool:
        resource = f"{request.resource}/{request.subresource}" if request.subresource else request.resource
        if (self.verb, self.group, self.resource) != (request.verb, request.group, resource):
            return False
        if self.namespace is not None and request.namespace != self.namespace:
            return False
        return not self.names or (request.name is not None and request.name in self.names)

    def __str__(self) -> str:
        where = f"in {self.namespace}" if self.namespace is not None else "cluster-wide"
        named = f" named {', '.join(self.names)}" if self.names else ""
        return f"{self.verb} {self.group or 'core'} {self.resource} {where}{named}"


def watch_requests(watch: Watch) -> set[Request]:
    """The list and watch requests a store's list-and-watch loop makes for ``watch``."""
    name = None
    if watch.field_selector and watch.field_selector.startswith(FIELD_NAME):
        name = watch.field_selector.removeprefix(FIELD_NAME)
    resource = watch.resource
    namespace = watch.namespace if resource.namespaced else None
    return {Request(verb, resource.group, resource.plural, "", namespace, name) for verb in ("list", "watch")}


def audit_requests(events: list[dict[str, Any]], username: str) -> set[Request]:
    """What ``username`` asked the apiserver for, from its audit log."""
    found: set[Request] = set()
    for event in events:
        if event.get("user", {}).get("username") != username or "objectRef" not in event:
            continue
        ref = event["objectRef"]
        name = ref.get("name")
        if event["verb"] in ("list", "watch"):
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(event["requestURI"]).query)
            selector = (query.get("fieldSelector") or [""])[0]
            name = selector.removeprefix(FIELD_NAME) if selector.startswith(FIELD_NAME) else None
        found.add(Request(event["verb"], ref.get("apiGroup", ""), ref["resource"], ref.get("subresource", ""),
                          ref.get("namespace"), name))  # fmt: skip
    return found


def grants(objects: list[dict[str, Any]], service_account: str, namespace: str) -> set[Grant]:
    """Everything the bindings among ``objects`` grant the ServiceAccount."""
    roles = {
        (obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"]): obj
        for obj in objects if obj["kind"] in ("Role", "ClusterRole")
    }  # fmt: skip
    found: set[Grant] = set()
    for binding in objects:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        subject = {"kind": "ServiceAccount", "name": service_account, "namespace": namespace}
        if subject not in binding.get("subjects", []):
            continue
        ref = binding["roleRef"]
        scope = binding["metadata"].get("namespace") if binding["kind"] == "RoleBinding" else None
        role = roles[(ref["kind"], scope if ref["kind"] == "Role" else None, ref["name"])]
        for rule in role.get("rules", []):
            for verb in rule["verbs"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        found.add(Grant(verb, group, resource, scope, tuple(rule.get("resourceNames", ()))))
    return found


def allowed(request: Request, granted: set[Grant]) -> bool:
    return any(grant.covers(request) for grant in granted)
