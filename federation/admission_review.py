"""AdmissionReview ``admission.k8s.io/v1``: the wire format, typed once, parsed and built only here.

Both ends of a review use this module, in the manner of kopf's ``reviews.py``:

* the webhook (``webhook/app.py``) parses a request with :func:`parse_request` and answers with
  :func:`build_response`;
* whoever calls the webhook in the apiserver's place (the state directory's
  ``objectstore/admission.py``, the test double's ``tests/kubeapi/admission.py``) builds a request
  with :func:`build_request` and reads the answer with :func:`read_response`.

The answer itself, on either end, is a :class:`federation.admission_response.AdmissionResponse`,
and a denial's body a metav1.Status (:mod:`federation.api_status`).

Two error channels, as the apiserver expects: a request that is not a well-formed AdmissionReview
gets HTTP 400 (:class:`MalformedReview`); a well-formed review of a bad object gets HTTP 200 with
``allowed: false`` and a Status.  The response always echoes ``uid``, ``apiVersion`` and ``kind``,
and never carries a patch (a validating webhook that returns one is treated as broken:
:class:`InvalidResponse`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Required, TypedDict, cast

from federation import boundedjson
from federation.admission_response import AdmissionResponse
from federation.api_status import Status
from federation.istio.gostrings import shown_repr
from federation.resources import KubeObject, Resource
from federation.validation.attributes import Attributes

API_VERSION: Final = "admission.k8s.io/v1"
KIND: Final = "AdmissionReview"
MAX_BODY_BYTES: Final = 3 * 1024 * 1024
OPERATIONS: Final = ("CREATE", "UPDATE", "DELETE", "CONNECT")

REVIEW_LIMITS: Final = boundedjson.Limits(
    # kube-apiserver sends at most 3 MiB (its own request limit); what it sends is all we read.
    max_bytes=MAX_BODY_BYTES,
    # A ServiceEntry's deepest field sits 8 levels inside the review (review, request, object, spec,
    # endpoints, an endpoint, labels, a label); managedFields mirror the object under 3 more levels
    # (metadata, managedFields, an entry, fieldsV1) and nest a little deeper still.  64 is four times
    # the deepest real review and far below Python's recursion limit (1,000), which json.loads needs.
    max_depth=64,
    # An int64 (or a float's shortest form) is at most 24 characters.  A longer literal cannot be a
    # field of these CRDs: kube-apiserver refuses a port of more than int32 before calling us, so a
    # 5,000-digit port number is a malformed review (HTTP 400), never a field error.
    max_number_chars=40,
    # No string of a ServiceEntry or IstioFederation legitimately comes near 1 MiB (annotations are at
    # most 256 KiB in all, a CA bundle a few dozen KiB); up to it, a string reaches the validators,
    # which answer an over-long host with a field error in bounded time and space.
    max_string_chars=1024 * 1024,
    # 32 times the longest list these CRDs allow (4,096 endpoints).  The validators enforce the CRD's
    # own maxItems with a field error that names the list; this limit is the backstop for containers
    # no schema allows (the 3 MiB limit alone would allow a million members).
    max_members=131_072,
)
"""The limits of an AdmissionReview body, checked before anything recurses (:mod:`federation.boundedjson`)."""

# --- the wire format (kubernetes/api admission/v1/types.go; the Status is federation.api_status) ----------


class GroupVersionKind(TypedDict):
    group: str
    version: str
    kind: str


class GroupVersionResource(TypedDict):
    group: str
    version: str
    resource: str


class UserInfo(TypedDict, total=False):
    username: str
    uid: str
    groups: list[str]
    extra: dict[str, list[str]]


class Request(TypedDict, total=False):
    uid: Required[str]
    kind: Required[GroupVersionKind]
    resource: Required[GroupVersionResource]
    subResource: str
    requestKind: GroupVersionKind
    requestResource: GroupVersionResource
    requestSubResource: str
    name: str
    namespace: str
    operation: Required[str]
    userInfo: Required[UserInfo]
    object: KubeObject | None
    oldObject: KubeObject | None
    dryRun: bool
    options: dict[str, Any]


class Response(TypedDict, total=False):
    uid: Required[str]
    allowed: Required[bool]
    status: Status
    warnings: list[str]


class Review(TypedDict, total=False):
    apiVersion: Required[str]
    kind: Required[str]
    request: Request
    response: Response


# --- the webhook's end --------------------------------------------------------------------------------------


class MalformedReview(ValueError):
    """Not an AdmissionReview we can answer; the message says what is wrong (HTTP 400)."""


@dataclass(frozen=True)
class ParsedRequest:
    uid: str
    attributes: Attributes


def _object(value: Any, field: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MalformedReview(f"request.{field} must be an object or null")
    return value


def _group_version_kind(value: Any, field: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(value.get(key, ""), str) for key in value):
        raise MalformedReview(f"request.{field} must be an object with group, version and kind/resource")
    return {str(key): str(item) for key, item in value.items()}


def _document(content_type: str | None, body: bytes) -> dict[str, Any]:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        shown = repr(content_type[:100]) if content_type else "'none'"
        raise MalformedReview(f"Content-Type must be application/json, got {shown}")
    if len(body) > MAX_BODY_BYTES:
        raise MalformedReview(f"body is larger than {MAX_BODY_BYTES} bytes")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedReview(f"body is not UTF-8: {error}") from error
    try:
        document = boundedjson.loads(body, REVIEW_LIMITS)
    except boundedjson.InvalidJSON as error:
        raise MalformedReview(_json_problem(error)) from error
    if not isinstance(document, dict):
        raise MalformedReview("body must be a JSON object")
    if document.get("apiVersion") != API_VERSION:
        raise MalformedReview(f"apiVersion must be {API_VERSION}, got {shown_repr(document.get('apiVersion'))}")
    if document.get("kind") != KIND:
        raise MalformedReview(f"kind must be {KIND}, got {shown_repr(document.get('kind'))}")
    return document


def _json_problem(error: boundedjson.InvalidJSON) -> str:
    """The 400's message for a body the bounded parser refused (its problem is already bounded)."""
    if error.limit == "max_depth":
        return "body is nested too deeply to be an AdmissionReview"
    if error.limit:
        return f"body is beyond what an AdmissionReview may hold: {error.problem}"
    if error.problem.startswith("not valid JSON"):
        return f"body is {error.problem}"
    return f"body is not valid JSON: {error.problem}"


def parse_request(content_type: str | None, body: bytes) -> ParsedRequest:
    """The request of an AdmissionReview body, or :class:`MalformedReview` saying what is wrong."""
    request = _document(content_type, body).get("request")
    if not isinstance(request, dict):
        raise MalformedReview("request is missing")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise MalformedReview("request.uid is missing")
    operation = request.get("operation")
    if operation not in OPERATIONS:
        raise MalformedReview(f"request.operation must be one of {', '.join(OPERATIONS)}, got {shown_repr(operation)}")
    kind = _group_version_kind(request.get("kind"), "kind")
    resource = _group_version_kind(request.get("resource"), "resource")
    obj = _object(request.get("object"), "object")
    old = _object(request.get("oldObject"), "oldObject")
    if operation in ("CREATE", "UPDATE") and obj is None:
        raise MalformedReview(f"request.object is required for {operation}")
    user_info = request.get("userInfo") or {}
    if not isinstance(user_info, dict):
        raise MalformedReview("request.userInfo must be an object")
    subject = obj if obj is not None else (old or {})
    raw_metadata = subject.get("metadata")
    metadata: dict[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
    name = request.get("name") or metadata.get("name") or metadata.get("generateName") or ""
    namespace = request.get("namespace") or metadata.get("namespace") or ""
    if not isinstance(name, str) or not isinstance(namespace, str):
        raise MalformedReview("request.name and request.namespace must be strings")
    attributes = Attributes(
        operation=operation,
        group=resource.get("group", ""),
        resource=resource.get("resource", ""),
        kind=kind.get("kind", ""),
        name=name,
        namespace=namespace,
        obj=obj,
        old=old,
        username=str(user_info.get("username") or ""),
        dry_run=bool(request.get("dryRun")),
    )
    return ParsedRequest(uid=uid, attributes=attributes)


def build_response(uid: str, answer: AdmissionResponse) -> Review:
    """The AdmissionReview that answers request ``uid``: a Status only for a denial, never a patch."""
    response: Response = {"uid": uid, "allowed": answer.allowed}
    if not answer.allowed and answer.status:
        status = answer.status.copy()  # the apiserver reads only the Status fields, not its type
        status.pop("kind", None)
        status.pop("apiVersion", None)
        status.pop("metadata", None)
        response["status"] = status
    if answer.warnings:
        response["warnings"] = list(answer.warnings)
    return {"apiVersion": API_VERSION, "kind": KIND, "response": response}


# --- the caller's end (the apiserver, or what stands in for it) ------------------------------------------------


def build_request(
    *,
    uid: str,
    resource: Resource,
    version: str,
    operation: str,
    name: str,
    namespace: str,
    username: str,
    groups: Sequence[str],
    obj: KubeObject | None,
    old: KubeObject | None,
    request_version: str | None = None,
    subresource: str = "",
    dry_run: bool = False,
    options: dict[str, Any] | None = None,
) -> Review:
    """An AdmissionReview request as kube-apiserver sends it, in ``version`` of ``resource``.

    ``request_version`` is the version the client wrote in (``requestKind``), when a
    ``matchPolicy: Equivalent`` rule converted the request; empty names and namespaces are left
    out, as Go's ``omitempty`` does.
    """
    original = request_version or version
    request: Request = {
        "uid": uid,
        "kind": {"group": resource.group, "version": version, "kind": resource.kind},
        "resource": {"group": resource.group, "version": version, "resource": resource.plural},
        "requestKind": {"group": resource.group, "version": original, "kind": resource.kind},
        "requestResource": {"group": resource.group, "version": original, "resource": resource.plural},
        "operation": operation,
        "userInfo": {"username": username, "groups": list(groups)},
        "object": obj,
        "oldObject": old,
        "dryRun": dry_run,
    }
    if subresource:
        request["subResource"] = subresource
        request["requestSubResource"] = subresource
    if name:
        request["name"] = name
    if namespace:
        request["namespace"] = namespace
    if options is not None:
        request["options"] = options
    return {"kind": KIND, "apiVersion": API_VERSION, "request": request}


def request_uid(review: Review) -> str:
    return review["request"]["uid"]


class InvalidResponse(ValueError):
    """The webhook answered something kube-apiserver's ``VerifyAdmissionResponse`` refuses."""


def read_response(document: Any, uid: str) -> AdmissionResponse:
    """The webhook's answer to request ``uid``, verified as kube-apiserver verifies it."""

    def invalid(reason: str) -> InvalidResponse:
        return InvalidResponse(f"received invalid webhook response: {reason}")

    if not isinstance(document, dict):
        raise invalid("webhook response was absent")
    api_version, kind = document.get("apiVersion"), document.get("kind")
    if api_version != API_VERSION or kind != KIND:
        raise invalid(f"expected webhook response of {API_VERSION}, Kind={KIND}, got {api_version}, Kind={kind}")
    response = document.get("response")
    if not isinstance(response, dict):
        raise invalid("webhook response was absent")
    if response.get("uid") != uid:
        raise invalid(f'expected response.uid="{uid}", got "{response.get("uid") or ""}"')
    if response.get("patch"):
        raise invalid("validating webhook may not return response.patch")
    if response.get("patchType"):
        raise invalid("validating webhook may not return response.patchType")
    status = response.get("status")
    warnings = response.get("warnings")
    return AdmissionResponse(
        allowed=response.get("allowed") is True,
        status=cast(Status, status) if isinstance(status, dict) else None,
        warnings=tuple(str(warning) for warning in warnings) if isinstance(warnings, list) else (),
    )
