"""metav1.Status of a failure: the body in which an apiserver, or a webhook's denial, says why.

Typed after apimachinery's ``meta/v1`` Status and built the way kube-apiserver serialises it: a
plain failure (:func:`failure_status`) or a validation failure with one cause per field error
(:func:`invalid_status`, HTTP 422 and reason ``Invalid``).  An AdmissionReview response carries
one for a denial (:mod:`federation.admission_review`), and whoever stands in for the apiserver
answers a refused write with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

from federation.fields import MAX_REPORTED_ERRORS, FieldError, invalid_message, more_errors

# --- the wire format (apimachinery meta/v1 Status) ---------------------------------------------------------


class StatusCause(TypedDict, total=False):
    reason: str
    message: str
    field: str


class StatusDetails(TypedDict, total=False):
    name: str
    group: str
    kind: str
    causes: list[StatusCause]


class Status(TypedDict, total=False):
    kind: str
    apiVersion: str
    metadata: dict[str, Any]
    status: str
    message: str
    reason: str
    details: StatusDetails
    code: int


# --- Status bodies --------------------------------------------------------------------------------------


def failure_status(*, code: int, reason: str, message: str, details: Any = None) -> Status:
    """A metav1.Status of a failure, as the apiserver serialises it (``details`` only when given)."""
    status: Status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        status["details"] = details
    return status


def status_cause(error: FieldError) -> StatusCause:
    """One ``details.causes`` entry, as apimachinery's ``NewInvalid`` turns a field error into it."""
    return {"reason": error.type.reason, "message": error.body(), "field": str(error.path)}


def invalid_status(*, kind: str, group: str, name: str, errors: Sequence[FieldError]) -> Status:
    """The Status an apiserver returns for a validation failure (422, reason ``Invalid``).

    The first :data:`federation.fields.MAX_REPORTED_ERRORS` errors become causes, and a last cause
    counts the others (``and M more errors``), so the answer stays small whatever the object holds.
    """
    status = failure_status(code=422, reason="Invalid", message=invalid_message(kind, name, errors))
    causes = [status_cause(error) for error in errors[:MAX_REPORTED_ERRORS]]
    if len(errors) > MAX_REPORTED_ERRORS:
        causes.append({"message": more_errors(len(errors) - MAX_REPORTED_ERRORS)})
    status["details"] = {"name": _echo(name), "group": _echo(group), "kind": _echo(kind), "causes": causes}
    return status


def _echo(text: str) -> str:
    """A request's own string, echoed in a Status: itself, or cut when it is unreasonably long."""
    return text if len(text) <= 253 else text[:253] + "…"
