"""The hosts an Istio object declares, read one way everywhere.

A ServiceEntry lists them in ``spec.hosts``; a DestinationRule names one in ``spec.host``.  Whoever
needs them (the object index, admission, Istio's rules, visibility) reads them with :func:`hosts_of`.
"""

from __future__ import annotations

from typing import Any

DESTINATION_RULE = "DestinationRule"


def hosts_of(obj: Any, *, kind: str | None = None) -> list[str]:
    """The string hosts of ``obj``, in order; anything that is not a string is skipped.

    ``kind`` defaults to the object's own ``kind``.  A DestinationRule gives its ``spec.host`` (when
    it is a non-empty string); any other kind, a ServiceEntry, its ``spec.hosts``.
    """
    spec = obj.get("spec") if isinstance(obj, dict) else None
    if not isinstance(spec, dict):
        return []
    if (kind if kind is not None else obj.get("kind")) == DESTINATION_RULE:
        host = spec.get("host")
        return [host] if isinstance(host, str) and host else []
    hosts = spec.get("hosts")
    return [host for host in hosts if isinstance(host, str)] if isinstance(hosts, list) else []
