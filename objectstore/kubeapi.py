"""Requests to the Kubernetes API, as :class:`objectstore.kube.KubernetesStore` and its watch loops
(:mod:`objectstore.kubewatch`) send them: plain calls over the official client's HTTP layer (kubernetes
37's informer fails on custom-object lists, and ``kubernetes.watch.Watch`` hides the resourceVersion
bookkeeping we need).

Here: the connection (TCP keepalive, a pool for concurrent writes and the watch streams, no retries
inside urllib3), the paths of resources, one request answered as status, decoded body and warnings,
and the mapping of the API's Status codes onto :mod:`federation.store` errors.
"""

from __future__ import annotations

import builtins
import json
import re
import socket
from dataclasses import dataclass
from typing import Any

import kubernetes.client
import kubernetes.config
import urllib3

from federation.resources import KubeObject, Resource
from federation.store import Conflict, NotFound, Rejected, StoreError, Unavailable

_WARNING = re.compile(r'^\s*\d{3}\s+\S+\s+"((?:[^"\\]|\\.)*)"')
# A peer that vanished is noticed after KEEPIDLE + KEEPINTVL * KEEPCNT seconds of silence (5 s).
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 2, 1, 3
# Connections kept open to the apiserver: the reconciler's concurrent writes plus the watch streams.
POOL_SIZE = 64


def connect(kubeconfig: str | None, in_cluster: bool) -> kubernetes.client.ApiClient:
    """An API client from the pod's service account or from a kubeconfig file (None: default)."""
    configuration = kubernetes.client.Configuration()
    # The loaders are untyped; Any keeps mypy --strict honest about that without ignores.
    load_incluster: Any = kubernetes.config.load_incluster_config
    load_kubeconfig: Any = kubernetes.config.load_kube_config
    if in_cluster:
        load_incluster(client_configuration=configuration)
    else:
        load_kubeconfig(config_file=kubeconfig, client_configuration=configuration)
    configuration.socket_options = keepalive_socket_options()
    # One connection per write in flight (reconciler run --write-concurrency), and the watches.
    configuration.connection_pool_maxsize = max(int(configuration.connection_pool_maxsize or 0), POOL_SIZE)
    # No retries inside urllib3: it would log a warning per attempt, and every caller already
    # retries with backoff (the watch loop, the reconciler's Retry).
    configuration.retries = 0
    return kubernetes.client.ApiClient(configuration)


def keepalive_socket_options() -> builtins.list[tuple[int, int, int]]:
    """urllib3's defaults (no Nagle) plus TCP keepalive probing after 2 s of silence, where the
    platform has the options."""
    options: builtins.list[tuple[int, int, int]] = list(urllib3.connection.HTTPConnection.default_socket_options)
    options.append((socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1))
    for name, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
        ("TCP_KEEPCNT", KEEPALIVE_COUNT),
    ):
        if hasattr(socket, name):
            options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    return options


def resource_path(resource: Resource, namespace: str | None, name: str = "", subresource: str = "") -> str:
    """``/apis/<group>/<version>[/namespaces/<ns>]/<plural>[/<name>[/<subresource>]]``."""
    base = f"/apis/{resource.group}/{resource.version}" if resource.group else f"/api/{resource.version}"
    if resource.namespaced and namespace:
        base += f"/namespaces/{namespace}"
    path = f"{base}/{resource.plural}"
    if name:
        path += f"/{name}"
        if subresource:
            path += f"/{subresource}"
    return path


def parse_warnings(values: list[str]) -> list[str]:
    """The texts of ``Warning: 299 - "<text>"`` headers, unescaped."""
    texts: list[str] = []
    for value in values:
        match = _WARNING.match(value)
        if match:
            texts.append(re.sub(r"\\(.)", r"\1", match.group(1)))
    return texts


@dataclass
class Response:
    status: int
    body: Any
    warnings: list[str]


def serialize(
    api: kubernetes.client.ApiClient,
    method: str,
    path: str,
    *,
    query: list[tuple[str, str]] | None,
    body: Any,
    content_type: str,
) -> tuple[str, str, dict[str, str], Any, Any]:
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    serialized: tuple[str, str, dict[str, str], Any, Any] = api.param_serialize(
        method,
        path,
        query_params=query or [],
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    return serialized


def call(
    api: kubernetes.client.ApiClient,
    method: str,
    path: str,
    *,
    timeout: float,
    query: list[tuple[str, str]] | None = None,
    body: Any = None,
    content_type: str = "application/json",
) -> Response:
    request = serialize(api, method, path, query=query, body=body, content_type=content_type)
    try:
        raw: Any = api.call_api(*request, _request_timeout=timeout)
        data = raw.read()
        warnings = parse_warnings(list(raw.response.headers.getlist("Warning")))
    except (urllib3.exceptions.HTTPError, OSError, kubernetes.client.ApiException) as error:
        raise Unavailable(f"{method} {path}: cannot reach the Kubernetes API: {error}") from error
    return Response(raw.status, decode_body(data), warnings)


def decode_body(data: bytes) -> Any:
    """An API answer's JSON, or its first 500 characters as a Status-like message when it is not JSON
    (a proxy's error page)."""
    try:
        return json.loads(data) if data else {}
    except ValueError:
        return {"message": data.decode("utf-8", "replace")[:500]}


def with_type(obj: KubeObject, resource: Resource) -> KubeObject:
    """List items and watch objects of built-in kinds lack apiVersion and kind; cached ones never do."""
    if not obj.get("apiVersion"):
        obj["apiVersion"] = resource.api_version
    if not obj.get("kind"):
        obj["kind"] = resource.kind
    return obj


def status_error(response: Response, action: str) -> StoreError:
    body = response.body if isinstance(response.body, dict) else {}
    message = str(body.get("message") or f"{action}: HTTP {response.status}")
    code = response.status
    if code == 404:
        return NotFound(message, code=code, status=body)
    if code == 409:
        return Conflict(message, code=code, status=body)
    if code == 429 or code >= 500:
        return Unavailable(message, code=code, status=body)
    if 400 <= code < 500:
        return Rejected(message, code=code, status=body)
    return StoreError(message, code=code, status=body)
