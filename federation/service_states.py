"""Per offered host, what a sync did with it, as ``status.services`` and ``status.servicesSummary`` say.

Each host the remote offers is imported, or refused by the security filter, denied by admission,
blocked by an object we do not own, or failed after retries (:data:`STATE_IMPORTED` and the
other states).  A remote decides how many hosts it offers, so ``status.services`` lists at most
:data:`MAX_LISTED_SERVICES` of them within :data:`LISTED_SERVICES_BUDGET` bytes (the ones not
imported first, since those are what an admin must look at; the imported ones are the
ServiceEntries), each message cut short, and ``status.servicesSummary`` counts every host by state.
Pure: :func:`federation.status.next_status` writes what these functions return.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from federation import conditions, remotetext
from federation.desired import DesiredState

STATE_IMPORTED = "Imported"
STATE_REFUSED = "Refused"  # the security filter (federation.desired) did not import the host
STATE_DENIED = "Denied"  # admission refused the write
STATE_CONFLICT = "Conflict"  # the object's name is taken by an object we do not own
STATE_FAILED = "Failed"  # the write failed after retries

# Bounds of status.services, whatever the remote publishes.
MAX_LISTED_SERVICES: Final = 50
LISTED_SERVICES_BUDGET: Final = 32 * 1024  # bytes of JSON in status.services
SERVICE_MESSAGE_LIMIT: Final = conditions.MESSAGE_LIMIT


@dataclass(frozen=True)
class ServiceState:
    """One offered host in ``status.services``: imported, or why not."""

    hostname: str
    state: str
    message: str = ""

    def to_json(self) -> dict[str, str]:
        return {
            "hostname": remotetext.printable(self.hostname, 253),
            "state": self.state,
            "message": remotetext.printable(self.message, SERVICE_MESSAGE_LIMIT),
        }


def service_states(
    plan: DesiredState,
    *,
    denied: Mapping[str, str],
    blocked: Mapping[str, str],
    failed: Mapping[str, str],
) -> tuple[ServiceState, ...]:
    """Per offered host, sorted: refused by the filter, else what the write of its objects met."""
    states: list[ServiceState] = []
    for hostname in plan.imported:
        if hostname in denied:
            states.append(ServiceState(hostname, STATE_DENIED, denied[hostname]))
        elif hostname in blocked:
            states.append(ServiceState(hostname, STATE_CONFLICT, blocked[hostname]))
        elif hostname in failed:
            states.append(ServiceState(hostname, STATE_FAILED, failed[hostname]))
        else:
            states.append(ServiceState(hostname, STATE_IMPORTED))
    states.extend(ServiceState(skipped.hostname, STATE_REFUSED, skipped.message) for skipped in plan.skipped)
    return tuple(sorted(states, key=lambda state: state.hostname))


def services_by_host(status: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``status.services`` as written before, by hostname (entries someone mangled are ignored)."""
    services = status.get("services")
    if not isinstance(services, list):
        return {}
    return {str(entry.get("hostname")): entry for entry in services if isinstance(entry, dict)}


def listed_services(states: Iterable[ServiceState], limit: int = MAX_LISTED_SERVICES) -> tuple[ServiceState, ...]:
    """At most ``limit`` of ``states`` within :data:`LISTED_SERVICES_BUDGET`, sorted by hostname:
    those not imported first in line."""
    ordered = sorted(states, key=lambda state: (state.state == STATE_IMPORTED, state.hostname))
    kept: list[ServiceState] = []
    used = 0
    for state in ordered[:limit]:
        used += len(json.dumps(state.to_json(), separators=(",", ":"))) + 1
        if used > LISTED_SERVICES_BUDGET:
            break
        kept.append(state)
    return tuple(sorted(kept, key=lambda state: state.hostname))


def services_summary(states: Iterable[ServiceState], listed: int) -> dict[str, Any]:
    """``{"total", "byState": {state: count}, "omitted"}``: every offered host, counted."""
    counts = Counter(state.state for state in states)
    total = sum(counts.values())
    return {"total": total, "byState": dict(sorted(counts.items())), "omitted": total - listed}
