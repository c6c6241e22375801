"""A test double of kube-apiserver: the REST API over HTTPS on loopback, for the resources we use.

Fidelity is the point: paths, verbs, Status bodies, resourceVersion and generation rules, the
status subresource, label and field selectors, list and watch (with a bounded event history and
410 Expired), bearer-token users and validating admission webhooks behave as kube-apiserver's
do, so code that passes against the double behaves the same against a cluster.

Not modelled: RBAC (every known user may do everything), namespaces as objects (any namespace
exists), finalizers and graceful deletion, server-side apply (415), strategic merge beyond
merge-patch semantics (built-in kinds only; custom resources get 415 as from a real cluster), and
conversion beyond rewriting ``apiVersion`` (our multi-version kinds share one schema).

This module holds the double's state and the API's semantics; :mod:`tests.kubeapi.transport` is its
HTTP layer, :mod:`tests.kubeapi.routing` its paths and discovery, :mod:`tests.kubeapi.watch` its
watch events, and :mod:`tests.kubeapi.admission` its calls to validating webhooks.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import secrets
import ssl
import threading
import uuid
from collections import deque
from datetime import UTC, datetime
from pathlib import Path as FilePath
from typing import Any

import trustme
import yaml

from federation import admission_review, fields, resources, selectors
from federation.fields import FieldError, Path
from federation.resources import KubeObject, Resource
from tests.kubeapi import admission, patch, schema
from tests.kubeapi.routing import CUSTOM, SERVED, VALIDATING_WEBHOOK_CONFIGURATION, VERSIONS, Route
from tests.kubeapi.status import (
    STALE,
    ApiError,
    already_exists,
    bad_request,
    conflict,
    expired,
    invalid,
    not_found,
    status,
)
from tests.kubeapi.transport import Handler, Server, User
from tests.kubeapi.watch import Event, Watcher, field_match

ADMIN = "kubernetes-admin"
# Kinds whose DELETE answers with the deleted object rather than a Success Status.
RETURNS_DELETED = CUSTOM | {resources.POD}

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation "
    "is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_VALUE_MESSAGE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
    "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


class _RawInvalid(FieldError):
    """An Invalid error whose value Go prints with %#v (e.g. ``0x0``), not as JSON."""

    def render(self) -> str:
        return f"{self.path}: Invalid value: {self.value}: {self.detail}"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta(obj: KubeObject) -> dict[str, Any]:
    value = obj.get("metadata")
    if not isinstance(value, dict):
        value = {}
        obj["metadata"] = value
    return value


def _api_version(resource: Resource, version: str) -> str:
    return f"{resource.group}/{version}" if resource.group else version


class KubeApiDouble:
    """Start with :meth:`start`, always :meth:`stop`; ``url`` and ``ca_pem`` reach it."""

    def __init__(
        self,
        *,
        history_limit: int = 1000,
        bookmark_interval: float = 1.0,
        default_watch_timeout: float = 60.0,
    ) -> None:
        self.ca = trustme.CA()
        self._server_cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._server_cert.configure_cert(self._tls)
        self._tls.set_alpn_protocols(["http/1.1"])
        self._lock = threading.RLock()
        self._objects: dict[Resource, dict[tuple[str, str], KubeObject]] = {r: {} for r in SERVED}
        self._rv = 1
        self._history: deque[Event] = deque()
        self._history_limit = history_limit
        self._compacted = 0
        self._watchers: list[Watcher] = []
        self._users: dict[str, User] = {}
        self._stopping = threading.Event()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._endpoints: admission.Endpoints = {}
        self._crd_schema = schema.load_crd_schema(
            schema.REPO / "manifests" / "crd" / "istiofederation.yaml", resources.ISTIO_FEDERATION.version
        )
        self.bookmark_interval = bookmark_interval
        self.default_watch_timeout = default_watch_timeout
        self.admission_log: list[dict[str, Any]] = []
        self.request_log: list[tuple[str, str]] = []
        self.admin_token = self.add_user(ADMIN, ("system:masters",))

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def ca_pem(self) -> bytes:
        return self.ca.cert_pem.bytes()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the double first"
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._server = Server(("127.0.0.1", 0), Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="kube-api-double", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        self.drop_watches()
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    @property
    def tls_context(self) -> ssl.SSLContext:
        return self._tls

    def log_request(self, method: str, path: str) -> None:
        with self._lock:
            self.request_log.append((method, path))

    # -- users ---------------------------------------------------------------------------------

    def add_user(self, username: str, groups: tuple[str, ...] = ()) -> str:
        token = secrets.token_urlsafe(24)
        self._users[token] = User(username, (*groups, "system:authenticated"))
        return token

    def token_for(self, username: str) -> str:
        for token, user in self._users.items():
            if user.name == username:
                return token
        return self.add_user(username)

    def kubeconfig(self, username: str = ADMIN) -> dict[str, Any]:
        cluster = "kube-api-double"
        context = f"{username}@{cluster}"
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": cluster,
                    "cluster": {
                        "server": self.url,
                        "certificate-authority-data": base64.b64encode(self.ca_pem).decode("ascii"),
                    },
                }
            ],
            "users": [{"name": username, "user": {"token": self.token_for(username)}}],
            "contexts": [{"name": context, "context": {"cluster": cluster, "user": username, "namespace": "default"}}],
            "current-context": context,
        }

    def write_kubeconfig(self, path: str | FilePath, username: str = ADMIN) -> None:
        FilePath(path).write_text(yaml.safe_dump(self.kubeconfig(username)), encoding="utf-8")

    # -- admission -----------------------------------------------------------------------------

    def register_webhooks(
        self, vwc: dict[str, Any], service_endpoints: dict[tuple[str, str], tuple[str, int]]
    ) -> KubeObject:
        """Store the configuration (as the cluster would have it) and route its services."""
        self._endpoints.update(service_endpoints)
        obj = copy.deepcopy(vwc)
        name = resources.name_of(obj)
        with self._lock:
            existing = self._objects[VALIDATING_WEBHOOK_CONFIGURATION].get(("", name))
        if existing is not None:
            _meta(obj)["resourceVersion"] = _meta(existing)["resourceVersion"]
        return self.seed(obj)

    def _webhooks(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            configurations = sorted(self._objects[VALIDATING_WEBHOOK_CONFIGURATION].items())
            return [
                (key[1], copy.deepcopy(webhook))
                for key, configuration in configurations
                for webhook in configuration.get("webhooks") or []
            ]

    # -- direct access for tests ---------------------------------------------------------------

    def objects(self, resource: Resource) -> list[KubeObject]:
        with self._lock:
            stored = self._objects[self._storage(resource)]
            return [copy.deepcopy(stored[key]) for key in sorted(stored)]

    def get_object(self, resource: Resource, namespace: str, name: str) -> KubeObject | None:
        with self._lock:
            obj = self._objects[self._storage(resource)].get((namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def seed(self, obj: KubeObject) -> KubeObject:
        """Write an object directly (no validation, no admission), emitting the watch event."""
        obj = copy.deepcopy(obj)
        resource = next(
            (r for r in SERVED if r.kind == obj.get("kind") and r.group == _group_of(obj)),
            None,
        )
        if resource is None:
            raise ValueError(f"the double does not serve {obj.get('apiVersion')} {obj.get('kind')}")
        meta = _meta(obj)
        if not resource.namespaced:
            meta.pop("namespace", None)
        elif not meta.get("namespace"):
            meta["namespace"] = "default"
        obj["apiVersion"] = resource.api_version
        key = (str(meta.get("namespace") or ""), str(meta["name"]))
        with self._lock:
            old = self._objects[resource].get(key)
            meta.setdefault("uid", str(uuid.uuid4()) if old is None else _meta(old)["uid"])
            meta.setdefault("creationTimestamp", _now() if old is None else _meta(old)["creationTimestamp"])
            if resource in CUSTOM:
                meta.setdefault("generation", 1)
            return copy.deepcopy(self._commit(resource, key, old, obj))

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._rv

    def compact(self) -> None:
        """Forget the event history, like an etcd compaction: older watches now get 410."""
        with self._lock:
            self._compacted = self._rv
            self._history.clear()

    def drop_watches(self) -> None:
        """Cut every open watch connection without a clean end, as a network failure would."""
        with self._lock:
            for watcher in self._watchers:
                watcher.dropped.set()

    @property
    def watch_count(self) -> int:
        with self._lock:
            return len(self._watchers)

    def count_requests(self, method: str, path_contains: str = "", query_contains: str = "") -> int:
        with self._lock:
            return sum(
                1
                for logged_method, target in self.request_log
                if logged_method == method
                and path_contains in target.partition("?")[0]
                and query_contains in target.partition("?")[2]
            )

    # -- storage -------------------------------------------------------------------------------

    @staticmethod
    def _storage(resource: Resource) -> Resource:
        for served in SERVED:
            if served.group == resource.group and served.plural == resource.plural:
                return served
        raise ValueError(f"not served: {resource.group_resource}")

    def _commit(
        self, resource: Resource, key: tuple[str, str], old: KubeObject | None, new: KubeObject | None
    ) -> KubeObject:
        """Store one change with the next resourceVersion and fan it out; caller holds the lock."""
        self._rv += 1
        event_type = "DELETED" if new is None else ("ADDED" if old is None else "MODIFIED")
        if new is None:
            assert old is not None
            del self._objects[resource][key]
            shown = copy.deepcopy(old)
        else:
            self._objects[resource][key] = new
            shown = new
        _meta(shown)["resourceVersion"] = str(self._rv)
        event = Event(self._rv, resource, event_type, copy.deepcopy(old), copy.deepcopy(shown))
        self._history.append(event)
        while len(self._history) > self._history_limit:
            self._compacted = self._history.popleft().rv
        for watcher in self._watchers:
            if watcher.resource == resource:
                watcher.events.put(event)
        return shown

    def _present(self, obj: KubeObject, resource: Resource, version: str) -> KubeObject:
        result = copy.deepcopy(obj)
        result["apiVersion"] = _api_version(resource, version)
        return result

    # -- request handling (called by the handler thread) ----------------------------------------

    def authenticate(self, header: str | None) -> User | None:
        if not header or not header.startswith("Bearer "):
            return None
        return self._users.get(header.removeprefix("Bearer ").strip())

    # -- reads ---------------------------------------------------------------------------------

    def get(self, route: Route) -> KubeObject:
        with self._lock:
            obj = self._objects[route.resource].get((route.namespace or "", route.name))
            if obj is None:
                raise not_found(route.resource, route.name)
            return self._present(obj, route.resource, route.version)

    def list_objects(self, route: Route, query: dict[str, str]) -> KubeObject:
        label_filter = _parse_labels(query.get("labelSelector"))
        field_filter = _parse_fields(route.resource, query.get("fieldSelector"))
        with self._lock:
            items = [
                self._list_item(obj, route)
                for key, obj in sorted(self._objects[route.resource].items())
                if (route.namespace is None or key[0] == route.namespace)
                and field_match(field_filter, obj.get("metadata") or {})
                and label_filter.matches((obj.get("metadata") or {}).get("labels") or {})
            ]
            version = str(self._rv)
        return {
            "kind": f"{route.resource.kind}List",
            "apiVersion": _api_version(route.resource, route.version),
            "metadata": {"resourceVersion": version},
            "items": items,
        }

    def _list_item(self, obj: KubeObject, route: Route) -> KubeObject:
        item = self._present(obj, route.resource, route.version)
        if route.resource not in CUSTOM:
            item.pop("apiVersion", None)
            item.pop("kind", None)
        return item

    def open_watch(
        self, route: Route, query: dict[str, str]
    ) -> tuple[Watcher | None, list[Event], KubeObject | None]:
        """Register a watcher; returns it with its backlog, or an ERROR object when too old."""
        watcher = Watcher(
            route.resource,
            route.version,
            route.namespace,
            _parse_labels(query.get("labelSelector")),
            _parse_fields(route.resource, query.get("fieldSelector")),
        )
        requested = query.get("resourceVersion", "")
        with self._lock:
            if requested in ("", "0"):
                # "Get state and start at most recent": synthetic ADDED for what exists now.
                backlog = [
                    Event(self._rv, route.resource, "ADDED", None, copy.deepcopy(obj))
                    for _, obj in sorted(self._objects[route.resource].items())
                ]
            else:
                try:
                    since = int(requested)
                except ValueError as error:
                    raise bad_request(f"invalid resource version: {requested}") from error
                if since < self._compacted:
                    return None, [], expired(f"too old resource version: {since} ({self._compacted})")
                backlog = [e for e in self._history if e.rv > since and e.resource == route.resource]
            self._watchers.append(watcher)
        return watcher, backlog, None

    def close_watch(self, watcher: Watcher) -> None:
        with self._lock:
            if watcher in self._watchers:
                self._watchers.remove(watcher)

    def translate(self, watcher: Watcher, event: Event) -> dict[str, Any] | None:
        """The event as this watcher sees it, including selector transitions."""
        old_in = watcher.selects(event.old)
        new_in = watcher.selects(event.new)
        if event.type == "ADDED":
            kind, obj = ("ADDED", event.new) if new_in else (None, None)
        elif event.type == "DELETED":
            kind, obj = ("DELETED", event.new) if new_in else (None, None)
        elif old_in and new_in:
            kind, obj = "MODIFIED", event.new
        elif new_in:
            kind, obj = "ADDED", event.new
        elif old_in and event.old is not None:
            obj = copy.deepcopy(event.old)
            _meta(obj)["resourceVersion"] = str(event.rv)
            kind = "DELETED"
        else:
            kind, obj = None, None
        if kind is None or obj is None:
            return None
        return {"type": kind, "object": self._present(obj, watcher.resource, watcher.version)}

    def bookmark(self, watcher: Watcher) -> dict[str, Any] | None:
        with self._lock:
            if not watcher.events.empty():
                return None
            return {
                "type": "BOOKMARK",
                "object": {
                    "kind": watcher.resource.kind,
                    "apiVersion": _api_version(watcher.resource, watcher.version),
                    "metadata": {"resourceVersion": str(self._rv)},
                },
            }

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    # -- writes --------------------------------------------------------------------------------

    def create(self, route: Route, body: Any, user: User, query: dict[str, str]) -> tuple[KubeObject, list[str]]:
        resource = route.resource
        obj = self._decode_body(body, route)
        meta = _meta(obj)
        if route.namespace is not None:
            if meta.get("namespace") and meta["namespace"] != route.namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = route.namespace
        else:
            meta.pop("namespace", None)
        if meta.get("resourceVersion"):
            raise bad_request("resourceVersion should not be set on objects to be created")
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = str(meta["generateName"]) + secrets.token_hex(3)[:5]
        for server_field in ("uid", "creationTimestamp", "generation", "deletionTimestamp", "managedFields"):
            meta.pop(server_field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        if resource in CUSTOM:
            meta["generation"] = 1
            obj.pop("status", None)
        obj = self._validate(resource, obj)
        name = str(meta.get("name") or "")
        dry_run = query.get("dryRun") == "All"
        options = {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
        warnings = self._admit(
            route, "CREATE", name=name, user=user, obj=obj, old=None, dry_run=dry_run, options=options
        )
        key = (route.namespace or "", name)
        with self._lock:
            if key in self._objects[resource]:
                raise already_exists(resource, name)
            if dry_run:
                return self._present(obj, resource, route.version), warnings
            stored = self._commit(resource, key, None, self._stored_form(obj, resource))
            return self._present(stored, resource, route.version), warnings

    def update(
        self, route: Route, body: Any, user: User, query: dict[str, str], *, from_patch: bool = False,
        base_rv: str = "",
    ) -> tuple[KubeObject, list[str]]:
        resource = route.resource
        key = (route.namespace or "", route.name)
        with self._lock:
            existing = copy.deepcopy(self._objects[resource].get(key))
        if existing is None:
            raise not_found(resource, route.name)
        obj = self._decode_body(body, route)
        meta = _meta(obj)
        if meta.get("name") != route.name:
            raise bad_request(
                f"the name of the object ({meta.get('name', '')}) does not match the name on the URL ({route.name})"
            )
        if route.namespace is not None:
            if meta.get("namespace") and meta["namespace"] != route.namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = route.namespace
        current_rv = str(_meta(existing).get("resourceVersion"))
        requested_rv = str(meta.get("resourceVersion") or "")
        if not requested_rv and resource in CUSTOM and not from_patch:
            raise invalid(
                resource, route.name,
                [_RawInvalid(Path.of("metadata", "resourceVersion"), fields.ErrorType.INVALID,
                             "must be specified for an update", "0x0")],
            )
        if requested_rv and requested_rv != current_rv:
            raise conflict(resource, route.name, STALE)
        new = self._merge_for_update(resource, existing, obj, route.subresource)
        new = self._validate(resource, new)
        dry_run = query.get("dryRun") == "All"
        options = {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"}
        warnings = self._admit(
            route, "UPDATE", name=route.name, user=user, obj=new, old=existing, dry_run=dry_run, options=options
        )
        with self._lock:
            latest = self._objects[resource].get(key)
            if latest is None:
                raise not_found(resource, route.name)
            if str(_meta(latest).get("resourceVersion")) != current_rv:
                raise conflict(resource, route.name, STALE)
            unchanged = _without_rv(new) == _without_rv(existing)
            if dry_run or unchanged:
                # Writing identical bytes is a no-op: no new resourceVersion, no watch event.
                result = existing if unchanged else new
                return self._present(result, resource, route.version), warnings
            stored = self._commit(resource, key, latest, self._stored_form(new, resource))
            return self._present(stored, resource, route.version), warnings

    def patch(
        self, route: Route, raw: bytes, content_type: str, user: User, query: dict[str, str]
    ) -> tuple[KubeObject, list[str]]:
        media = content_type.split(";", maxsplit=1)[0].strip().lower()
        if media == STRATEGIC_MERGE_PATCH and route.resource not in CUSTOM:
            # Built-in kinds accept strategic merge (CoreV1Api sends it). For the maps-only kinds
            # we patch it equals a merge patch; list merge keys and $patch are not modelled.
            media = MERGE_PATCH
        if media not in (MERGE_PATCH, JSON_PATCH):
            raise ApiError(
                status(
                    415, "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types include: "
                    f"{JSON_PATCH}, {MERGE_PATCH}",
                )
            )
        with self._lock:
            existing = self._objects[route.resource].get((route.namespace or "", route.name))
            if existing is None:
                raise not_found(route.resource, route.name)
            base = self._present(existing, route.resource, route.version)
        try:
            document = json.loads(raw or b"null")
        except ValueError as error:
            raise bad_request(f"error decoding patch: {error}") from error
        try:
            if media == MERGE_PATCH:
                if not isinstance(document, dict):
                    raise patch.PatchError("json: cannot unmarshal array into Go value of type map[string]interface {}")
                patched = patch.merge_patch(base, document)
            else:
                patched = patch.json_patch(base, document)
        except patch.PatchError as error:
            raise ApiError(status(422, "Invalid", str(error))) from error
        if not isinstance(patched, dict):
            raise bad_request("the patched object is not a JSON object")
        return self.update(route, patched, user, query, from_patch=True)

    def delete(self, route: Route, body: Any, user: User, query: dict[str, str]) -> tuple[KubeObject, list[str]]:
        resource = route.resource
        key = (route.namespace or "", route.name)
        with self._lock:
            existing = copy.deepcopy(self._objects[resource].get(key))
        if existing is None:
            raise not_found(resource, route.name)
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1"}
        preconditions: dict[str, Any] = {}
        if isinstance(body, dict):
            preconditions = body.get("preconditions") or {}
            if body.get("propagationPolicy"):
                options["propagationPolicy"] = body["propagationPolicy"]
        meta = _meta(existing)
        if preconditions.get("uid") and preconditions["uid"] != meta.get("uid"):
            raise conflict(
                resource, route.name,
                f"Precondition failed: UID in precondition: {preconditions['uid']}, "
                f"UID in object meta: {meta.get('uid')}",
            )
        wanted_rv = preconditions.get("resourceVersion")
        if wanted_rv and wanted_rv != meta.get("resourceVersion"):
            raise conflict(
                resource, route.name,
                f"Precondition failed: ResourceVersion in precondition: {wanted_rv}, "
                f"ResourceVersion in object meta: {meta.get('resourceVersion')}",
            )
        dry_run = query.get("dryRun") == "All"
        warnings = self._admit(
            route, "DELETE", name=route.name, user=user, obj=None, old=existing, dry_run=dry_run, options=options
        )
        with self._lock:
            latest = self._objects[resource].get(key)
            if latest is None:
                raise not_found(resource, route.name)
            shown = existing if dry_run else self._commit(resource, key, latest, None)
        if resource in RETURNS_DELETED:
            return self._present(shown, resource, route.version), warnings
        details: dict[str, Any] = {"name": route.name}
        if resource.group:
            details["group"] = resource.group
        details["kind"] = resource.plural
        details["uid"] = meta.get("uid")
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}, warnings

    # -- write helpers -------------------------------------------------------------------------

    def _decode_body(self, body: Any, route: Route) -> KubeObject:
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON object")
        obj = copy.deepcopy(body)
        expected = _api_version(route.resource, route.version)
        if obj.get("apiVersion") not in (None, expected) or obj.get("kind") not in (None, route.resource.kind):
            raise bad_request(
                f"the API version in the data ({obj.get('apiVersion')}) does not match the expected API "
                f"version ({expected})"
                if obj.get("apiVersion") != expected
                else f"the kind in the data ({obj.get('kind')}) does not match the expected kind "
                f"({route.resource.kind})"
            )
        obj["apiVersion"] = expected
        obj["kind"] = route.resource.kind
        _meta(obj)
        return obj

    @staticmethod
    def _stored_form(obj: KubeObject, resource: Resource) -> KubeObject:
        stored = copy.deepcopy(obj)
        stored["apiVersion"] = resource.api_version
        return stored

    @staticmethod
    def _merge_for_update(resource: Resource, existing: KubeObject, obj: KubeObject, subresource: str) -> KubeObject:
        old_meta = _meta(existing)
        if subresource == "status":
            # The status subresource changes status only; everything else stays as stored.
            new = copy.deepcopy(existing)
            new["apiVersion"] = obj["apiVersion"]
            if "status" in obj:
                new["status"] = copy.deepcopy(obj["status"])
            else:
                new.pop("status", None)
            return new
        new = copy.deepcopy(obj)
        meta = _meta(new)
        for kept in ("uid", "creationTimestamp", "generation", "deletionTimestamp"):
            if kept in old_meta:
                meta[kept] = old_meta[kept]
            else:
                meta.pop(kept, None)
        meta["resourceVersion"] = old_meta.get("resourceVersion")
        if resource in CUSTOM:
            if "status" in existing:
                new["status"] = copy.deepcopy(existing["status"])
            else:
                new.pop("status", None)
            if _spec_part(new) != _spec_part(existing):
                meta["generation"] = int(old_meta.get("generation") or 1) + 1
        return new

    def _validate(self, resource: Resource, obj: KubeObject) -> KubeObject:
        meta = _meta(obj)
        name = str(meta.get("name") or "")
        errors: list[FieldError] = []
        if not name:
            errors.append(fields.required(Path.of("metadata", "name"), "name or generateName is required"))
        elif not _SUBDOMAIN.match(name) or len(name) > 253:
            errors.append(fields.invalid(Path.of("metadata", "name"), name, _SUBDOMAIN_MESSAGE))
        labels = meta.get("labels") or {}
        if isinstance(labels, dict):
            for key, value in labels.items():
                if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
                    errors.append(fields.invalid(Path.of("metadata", "labels"), value, _LABEL_VALUE_MESSAGE))
                try:
                    selectors.parse(str(key))
                except selectors.SelectorError as error:
                    errors.append(fields.invalid(Path.of("metadata", "labels"), key, str(error)))
        if resource == resources.ISTIO_FEDERATION:
            body = {key: value for key, value in obj.items() if key not in ("apiVersion", "kind", "metadata")}
            cleaned = schema.prune_and_default(self._crd_schema, body)
            obj = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": meta, **cleaned}
            errors.extend(schema.validate_object(self._crd_schema, obj))
        if errors:
            raise invalid(resource, name, errors)
        return obj

    def _admit(
        self, route: Route, operation: str, *, name: str, user: User, obj: KubeObject | None,
        old: KubeObject | None, dry_run: bool, options: dict[str, Any],
    ) -> list[str]:
        if route.resource == VALIDATING_WEBHOOK_CONFIGURATION:
            return []  # never admitted by webhooks, so a broken webhook cannot lock itself in
        request = admission.Request(
            resource=route.resource, version=route.version, subresource=route.subresource, operation=operation,
            name=name, namespace=route.namespace or "", username=user.name, groups=user.groups,
            obj=self._present(obj, route.resource, route.version) if obj is not None else None,
            old=self._present(old, route.resource, route.version) if old is not None else None,
            dry_run=dry_run, options=options,
        )

        def record(review: admission_review.Review) -> None:
            with self._lock:
                self.admission_log.append(copy.deepcopy(dict(review)))

        outcome = admission.run(
            self._webhooks(), request, VERSIONS.get(route.resource, (route.resource.version,)),
            dict(self._endpoints), record,
        )
        if outcome.error is not None:
            outcome.error.warnings = outcome.warnings
            raise outcome.error
        return outcome.warnings


def _group_of(obj: KubeObject) -> str:
    return str(obj.get("apiVersion") or "").rpartition("/")[0]


def _without_rv(obj: KubeObject) -> KubeObject:
    copied = copy.deepcopy(obj)
    _meta(copied).pop("resourceVersion", None)
    copied.pop("apiVersion", None)
    return copied


def _spec_part(obj: KubeObject) -> KubeObject:
    return {key: value for key, value in obj.items() if key not in ("metadata", "status", "apiVersion", "kind")}


def _parse_labels(text: str | None) -> selectors.Selector:
    try:
        return selectors.parse(text)
    except selectors.SelectorError as error:
        raise bad_request(f"unable to parse requirement: {error}") from error


def _parse_fields(resource: Resource, text: str | None) -> dict[str, tuple[str, bool]]:
    result: dict[str, tuple[str, bool]] = {}
    for raw_term in (text or "").split(","):
        term = raw_term.strip()
        if not term:
            continue
        match = re.fullmatch(r"([^=!]+)(==|=|!=)(.*)", term)
        if match is None:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
        key, operator, value = match.group(1).strip(), match.group(2), match.group(3).strip()
        if key not in ("metadata.name", "metadata.namespace"):
            raise bad_request(
                f"\"{key}\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
                if resource in CUSTOM
                else f"field label not supported: {key}"
            )
        result[key] = (value, operator != "!=")
    return result
