"""metav1.Status bodies, built field by field in the order kube-apiserver serialises them."""

from __future__ import annotations

from typing import Any

from federation import fields
from federation.api_status import status_cause
from federation.resources import Resource


class ApiError(Exception):
    """Raised inside the double to answer a request with a Status body."""

    def __init__(self, status: dict[str, Any]) -> None:
        super().__init__(str(status.get("message", "")))
        self.status = status
        # Admission warnings travel with a denial too: the apiserver sends them either way.
        self.warnings: list[str] = []

    @property
    def code(self) -> int:
        return int(self.status.get("code") or 500)


def status(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
    if message:
        body["message"] = message
    if reason:
        body["reason"] = reason
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


def _details(resource: Resource, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if resource.group:
        details["group"] = resource.group
    details["kind"] = resource.plural
    return details


def not_found(resource: Resource, name: str) -> ApiError:
    return ApiError(
        status(404, "NotFound", f"{resource.group_resource} \"{name}\" not found", _details(resource, name))
    )


def already_exists(resource: Resource, name: str) -> ApiError:
    return ApiError(
        status(409, "AlreadyExists", f"{resource.group_resource} \"{name}\" already exists",
               _details(resource, name))
    )


def conflict(resource: Resource, name: str, why: str) -> ApiError:
    message = f"Operation cannot be fulfilled on {resource.group_resource} \"{name}\": {why}"
    return ApiError(status(409, "Conflict", message, _details(resource, name)))


STALE = "the object has been modified; please apply your changes to the latest version and try again"


def invalid(resource: Resource, name: str, errors: list[fields.FieldError]) -> ApiError:
    qualified = f"{resource.kind}.{resource.group}" if resource.group else resource.kind
    details: dict[str, Any] = {"name": name}
    if resource.group:
        details["group"] = resource.group
    details["kind"] = resource.kind
    details["causes"] = [status_cause(error) for error in errors]
    return ApiError(status(422, "Invalid", fields.invalid_message(qualified, name, errors), details))


def bad_request(message: str) -> ApiError:
    return ApiError(status(400, "BadRequest", message))


def internal_error(message: str) -> ApiError:
    return ApiError(
        status(500, "InternalError", f"Internal error occurred: {message}", {"causes": [{"message": message}]})
    )


def expired(message: str) -> dict[str, Any]:
    return status(410, "Expired", message)


UNAUTHORIZED = status(401, "Unauthorized", "Unauthorized")
NO_RESOURCE = status(404, "NotFound", "the server could not find the requested resource", {})
