"""Validating admission webhooks, called the way kube-apiserver calls them.

Matching follows ``admissionregistration.k8s.io/v1`` rules (operations, apiGroups, apiVersions,
resources with subresources, scope, matchPolicy, objectSelector); the call is a POST of an
``AdmissionReview`` over HTTP/1.1 and TLS verified against ``caBundle`` with the server name
``<service>.<namespace>.svc``; the answer is checked like ``VerifyAdmissionResponse`` and turned
into the same Status errors and ``Warning`` headers.
"""

from __future__ import annotations

import base64
import copy
import http.client
import json
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from federation import admission_review, selectors
from federation.admission_response import AdmissionResponse
from federation.resources import KubeObject, Resource
from tests.kubeapi.status import ApiError, internal_error, status

DEFAULT_TIMEOUT = 10


@dataclass(frozen=True)
class Request:
    """One write as admission sees it, in the version the client used."""

    resource: Resource  # the storage resource
    version: str  # the version of the request path
    subresource: str
    operation: str
    name: str
    namespace: str
    username: str
    groups: tuple[str, ...]
    obj: KubeObject | None
    old: KubeObject | None
    dry_run: bool
    options: dict[str, Any]


@dataclass
class Outcome:
    warnings: list[str] = field(default_factory=list)
    error: ApiError | None = None


class CallFailed(Exception):
    """The webhook could not be called or answered nonsense; ``reason`` is the apiserver's text."""


def _rule_matches(
    rule: dict[str, Any], request: Request, version: str
) -> bool:
    operations = rule.get("operations") or []
    if "*" not in operations and request.operation not in operations:
        return False
    groups = rule.get("apiGroups") or []
    if "*" not in groups and request.resource.group not in groups:
        return False
    versions = rule.get("apiVersions") or []
    if "*" not in versions and version not in versions:
        return False
    wanted = f"{request.resource.plural}/{request.subresource}" if request.subresource else request.resource.plural
    resource_ok = False
    for entry in rule.get("resources") or []:
        plural, _, sub = str(entry).partition("/")
        same = plural in ("*", request.resource.plural)
        if (same and (sub in ("*", request.subresource) if request.subresource else not sub)) or entry == wanted:
            resource_ok = True
    if not resource_ok:
        return False
    scope = rule.get("scope") or "*"
    if scope == "Cluster":
        return not request.resource.namespaced
    if scope == "Namespaced":
        return request.resource.namespaced
    return True


def match_version(webhook: dict[str, Any], request: Request, served_versions: tuple[str, ...]) -> str | None:
    """The version the webhook gets the request in, or None when it does not apply.

    With ``matchPolicy: Equivalent`` (the default) a request in another served version of the
    same resource matches, converted to the rule's version, as the apiserver does.
    """
    rules = webhook.get("rules") or []
    if any(_rule_matches(rule, request, request.version) for rule in rules):
        return request.version
    if (webhook.get("matchPolicy") or "Equivalent") != "Equivalent":
        return None
    for rule in rules:
        for version in served_versions:
            if version != request.version and _rule_matches(rule, request, version):
                return version
    return None


def _object_selector_matches(webhook: dict[str, Any], request: Request) -> bool:
    selector = webhook.get("objectSelector")
    if not selector:
        return True
    text = _label_selector_text(selector)
    parsed = selectors.parse(text)
    candidates = [obj for obj in (request.obj, request.old) if obj is not None]
    return any(parsed.matches((obj.get("metadata") or {}).get("labels") or {}) for obj in candidates)


def _label_selector_text(selector: dict[str, Any]) -> str:
    parts = [f"{key}={value}" for key, value in sorted((selector.get("matchLabels") or {}).items())]
    operators = {"In": "in", "NotIn": "notin"}
    for expression in selector.get("matchExpressions") or []:
        key = expression["key"]
        operator = expression["operator"]
        if operator in operators:
            parts.append(f"{key} {operators[operator]} ({','.join(expression.get('values') or [])})")
        elif operator == "Exists":
            parts.append(key)
        else:
            parts.append(f"!{key}")
    return ",".join(parts)


def _converted(obj: KubeObject | None, resource: Resource, version: str) -> KubeObject | None:
    if obj is None:
        return None
    result = copy.deepcopy(obj)
    result["apiVersion"] = f"{resource.group}/{version}" if resource.group else version
    return result


def build_review(request: Request, version: str, uid: str) -> admission_review.Review:
    """The review sent to a webhook whose rule matched ``version`` (objects converted to it)."""
    return admission_review.build_request(
        uid=uid,
        resource=request.resource,
        version=version,
        request_version=request.version,
        subresource=request.subresource,
        operation=request.operation,
        name=request.name,
        namespace=request.namespace,
        username=request.username,
        groups=request.groups,
        obj=_converted(request.obj, request.resource, version),
        old=_converted(request.old, request.resource, version),
        dry_run=request.dry_run,
        options=request.options,
    )


Endpoints = dict[tuple[str, str], tuple[str, int]]


def _target(webhook: dict[str, Any], endpoints: Endpoints, timeout: int) -> tuple[str, str, int, str, int, str]:
    """(url shown in errors, dial host, dial port, TLS server name, service port, path with query)."""
    config = webhook.get("clientConfig") or {}
    query = f"?timeout={timeout}s"
    service = config.get("service")
    if service:
        name, namespace = service["name"], service["namespace"]
        port = int(service.get("port") or 443)
        path = service.get("path") or "/"
        server_name = f"{name}.{namespace}.svc"
        url = f"https://{server_name}:{port}{path}{query}"
        endpoint = endpoints.get((namespace, name))
        if endpoint is None:
            raise CallFailed(f"failed to call webhook: Post \"{url}\": no endpoints available for service \"{name}\"")
        return url, endpoint[0], endpoint[1], server_name, port, path + query
    parts = urlsplit(str(config.get("url") or ""))
    host = parts.hostname or ""
    url = f"{config.get('url')}{query}"
    return url, host, parts.port or 443, host, parts.port or 443, (parts.path or "/") + query


def _describe(error: BaseException, host: str, port: int) -> str:
    """Go's wording for the common failures, so messages read like a real apiserver's."""
    if isinstance(error, ssl.SSLCertVerificationError):
        if "Hostname mismatch" in str(error) or "IP address mismatch" in str(error):
            return f"tls: failed to verify certificate: x509: {error.verify_message}"
        return "tls: failed to verify certificate: x509: certificate signed by unknown authority"
    if isinstance(error, ConnectionRefusedError):
        return f"dial tcp {host}:{port}: connect: connection refused"
    if isinstance(error, TimeoutError | socket.timeout):
        return "context deadline exceeded"
    return f"{type(error).__name__}: {error}"


def call_webhook(
    webhook: dict[str, Any], review: admission_review.Review, endpoints: Endpoints
) -> AdmissionResponse:
    """POST the review and return the verified answer; raises CallFailed."""
    timeout = int(webhook.get("timeoutSeconds") or DEFAULT_TIMEOUT)
    url, host, port, server_name, service_port, path = _target(webhook, endpoints, timeout)
    config = webhook.get("clientConfig") or {}
    bundle = config.get("caBundle")
    context = ssl.create_default_context()
    if bundle:
        context = ssl.create_default_context(cadata=base64.b64decode(bundle).decode("ascii"))
    context.set_alpn_protocols(["http/1.1"])
    deadline = time.monotonic() + timeout
    payload = json.dumps(review).encode()
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
        try:
            tls = context.wrap_socket(raw, server_hostname=server_name)
        except BaseException:
            raw.close()
            raise
        # Host carries the service's name and port, as a request through the Service would.
        connection = http.client.HTTPConnection(server_name, service_port, timeout=timeout)
        connection.sock = tls
        try:
            connection.request(
                "POST", path, body=payload,
                headers={"Content-Type": "application/json", "Accept": "application/json, */*"},
            )
            tls.settimeout(max(0.01, deadline - time.monotonic()))
            answer = connection.getresponse()
            data = answer.read()
            code = answer.status
        finally:
            connection.close()
    except (OSError, http.client.HTTPException) as error:
        raise CallFailed(f"failed to call webhook: Post \"{url}\": {_describe(error, host, port)}") from error
    if code < 200 or code > 299:
        raise CallFailed(
            f"failed to call webhook: the server responded with the status code {code} "
            "but did not return more information"
        )
    try:
        document = json.loads(data)
    except ValueError as error:
        raise CallFailed(f"failed to call webhook: {error}") from error
    return verify_response(document, admission_review.request_uid(review))


def verify_response(document: Any, uid: str) -> AdmissionResponse:
    """``VerifyAdmissionResponse``: a refused answer is a failed call."""
    try:
        return admission_review.read_response(document, uid)
    except admission_review.InvalidResponse as error:
        raise CallFailed(str(error)) from error


def denial(webhook_name: str, answer: AdmissionResponse) -> ApiError:
    """``ToStatusErr``: the webhook's Status with the apiserver's prefix and a code of at least 400."""
    return ApiError(status(answer.denial_code, answer.reason, answer.denial_message(webhook_name), answer.details))


def run(
    webhooks: list[tuple[str, dict[str, Any]]],
    request: Request,
    served_versions: tuple[str, ...],
    endpoints: Endpoints,
    record: Callable[[admission_review.Review], None],
) -> Outcome:
    """Call every matching webhook; the first error (in configuration order) wins."""
    outcome = Outcome()
    for _configuration, webhook in webhooks:
        version = match_version(webhook, request, served_versions)
        if version is None or not _object_selector_matches(webhook, request):
            continue
        name = str(webhook.get("name"))
        if request.dry_run and webhook.get("sideEffects") in ("Some", "Unknown"):
            if outcome.error is None:
                message = f"admission webhook \"{name}\" does not support dry run"
                outcome.error = ApiError(status(400, "BadRequest", message))
            continue
        review = build_review(request, version, str(uuid.uuid4()))
        record(review)
        try:
            response = call_webhook(webhook, review, endpoints)
        except CallFailed as failure:
            if (webhook.get("failurePolicy") or "Fail") == "Fail" and outcome.error is None:
                outcome.error = internal_error(f"failed calling webhook \"{name}\": {failure}")
            continue
        outcome.warnings.extend(response.warnings)
        if not response.allowed and outcome.error is None:
            outcome.error = denial(name, response)
    return outcome
