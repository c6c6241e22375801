"""AdmissionReview admission.k8s.io/v1, parsed and built here and nowhere else.

Two error channels, as the apiserver expects: a request that is not a well-formed AdmissionReview
gets HTTP 400 (``MalformedReview``); a well-formed review of a bad object gets HTTP 200 with
``allowed: false`` and a Status.  The response always echoes ``uid``, ``apiVersion`` and ``kind``,
and never carries a patch (a validating webhook that returns one is treated as broken).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from federation.validation.attributes import Attributes
from federation.validation.registry import Decision

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
MAX_BODY_BYTES = 3 * 1024 * 1024
OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")


class MalformedReview(ValueError):
    """Not an AdmissionReview we can answer; the message says what is wrong."""


@dataclass(frozen=True)
class Review:
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


def parse(content_type: str | None, body: bytes) -> Review:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise MalformedReview(f"Content-Type must be application/json, got {content_type or 'none'!r}")
    if len(body) > MAX_BODY_BYTES:
        raise MalformedReview(f"body is larger than {MAX_BODY_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedReview(f"body is not UTF-8: {error}") from error
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise MalformedReview(f"body is not valid JSON: {error}") from error
    except RecursionError as error:
        raise MalformedReview("body is nested too deeply to be an AdmissionReview") from error
    if not isinstance(document, dict):
        raise MalformedReview("body must be a JSON object")
    if document.get("apiVersion") != API_VERSION:
        raise MalformedReview(f"apiVersion must be {API_VERSION}, got {document.get('apiVersion')!r}")
    if document.get("kind") != KIND:
        raise MalformedReview(f"kind must be {KIND}, got {document.get('kind')!r}")
    request = document.get("request")
    if not isinstance(request, dict):
        raise MalformedReview("request is missing")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise MalformedReview("request.uid is missing")
    operation = request.get("operation")
    if operation not in OPERATIONS:
        raise MalformedReview(f"request.operation must be one of {', '.join(OPERATIONS)}, got {operation!r}")
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
    return Review(uid=uid, attributes=attributes)


def _envelope(response: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": KIND, "response": response}


def build_response(review: Review, decision: Decision) -> dict[str, Any]:
    response: dict[str, Any] = {"uid": review.uid, "allowed": decision.allowed}
    if not decision.allowed and decision.status:
        response["status"] = {
            key: value for key, value in decision.status.items() if key not in ("kind", "apiVersion", "metadata")
        }
    if decision.warnings:
        response["warnings"] = decision.warnings
    return _envelope(response)


def build_failure(review: Review, *, code: int, message: str, reason: str) -> dict[str, Any]:
    """Fail closed: the webhook could not decide, so the write is refused with this status."""
    status = {"status": "Failure", "code": code, "reason": reason, "message": message}
    return _envelope({"uid": review.uid, "allowed": False, "status": status})
