"""The apiserver's refusals, as a store without an apiserver raises them: the same exception types
(``federation.store``), messages and Status bodies a client of the Kubernetes API gets, so callers
(the reconciler's retries, the demo's output) cannot tell the backends apart."""

from __future__ import annotations

from typing import TypeVar

from federation import resources
from federation.api_status import failure_status
from federation.resources import ObjectKey
from federation.store import Conflict, NotFound, StoreError

_Error = TypeVar("_Error", bound=StoreError)


def already_exists(key: ObjectKey) -> Conflict:
    return _status_error(Conflict, 409, "AlreadyExists", f'{_group_resource(key)} "{key.name}" already exists', key)


def not_found(key: ObjectKey) -> NotFound:
    return _status_error(NotFound, 404, "NotFound", f'{_group_resource(key)} "{key.name}" not found', key)


def stale_version(key: ObjectKey) -> Conflict:
    message = (
        f'Operation cannot be fulfilled on {_group_resource(key)} "{key.name}": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    return _status_error(Conflict, 409, "Conflict", message, key)


def _status_error(cls: type[_Error], code: int, reason: str, message: str, key: ObjectKey) -> _Error:
    descriptor = resources.by_kind(key.kind)
    details = {
        "name": key.name,
        "group": descriptor.group if descriptor else "",
        "kind": descriptor.plural if descriptor else key.kind,
    }
    status = failure_status(code=code, reason=reason, message=message, details=details)
    return cls(message, code=code, status=dict(status))


def _group_resource(key: ObjectKey) -> str:
    descriptor = resources.by_kind(key.kind)
    return descriptor.group_resource if descriptor else key.kind.lower()
