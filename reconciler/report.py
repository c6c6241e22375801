"""The report step of a sync, after apply: metrics, and Events on transitions only.

Events are recorded only when something changed (a host newly refused, a service newly denied,
objects created or deleted, ``Ready`` flipping), never on every sync, so a steady state records
nothing.  An object updated in place (a remote service's ports or gateways changed) is logged with
its field diff and counted in ``istio_federation_writes_total{verb="update"}``, and the remote's new
offer is in ``status.metadataCache``; it gets no Event of its own, so one changed remote service
costs its object's write and the status patch, nothing more.
A sync records at most :data:`MAX_SERVICE_EVENTS` Events about single services, then one that
counts the rest: a remote offering 20,000 hosts outside its trust domain costs 11 Events, not
20,000.  A host that the previous status did not list (it lists a bounded number) counts as
unchanged, so a large refusal does not repeat its Events at every sync.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from federation import conditions
from federation.resources import KubeObject
from federation.service_states import (
    STATE_CONFLICT,
    STATE_DENIED,
    STATE_FAILED,
    STATE_IMPORTED,
    STATE_REFUSED,
    ServiceState,
    services_by_host,
)
from federation.status import NextStatus
from reconciler import events
from reconciler.apply import ApplyOutcome
from reconciler.events import EventRecorder
from reconciler.metrics import ReconcilerMetrics

_SERVICE_EVENT_REASONS = {
    STATE_REFUSED: "HostRefused",
    STATE_DENIED: "ServiceDenied",
    STATE_CONFLICT: "ServiceConflict",
    STATE_FAILED: "ServiceFailed",
}
_PAST = {"create": "created", "update": "updated", "delete": "deleted"}
MAX_SERVICE_EVENTS: Final = 10


def record_metrics(
    metrics: ReconcilerMetrics,
    federation: str,
    *,
    verdict: NextStatus,
    outcome: ApplyOutcome | None,
    endpoint_up: bool,
    now: datetime,
) -> None:
    for action in outcome.written if outcome is not None else ():
        metrics.write(federation, action.verb)
    if not verdict.succeeded:
        metrics.fetch_errors.labels(federation=federation, stage=verdict.failed_stage).inc()
    metrics.endpoint_up.labels(federation=federation).set(1 if endpoint_up else 0)
    metrics.imported_services.labels(federation=federation).set(verdict.imported)
    metrics.stale.labels(federation=federation).set(1 if verdict.stale else 0)
    if verdict.succeeded:
        metrics.last_success.labels(federation=federation).set(now.timestamp())
    if verdict.skipped is not None:
        metrics.set_skipped(federation, dict(verdict.skipped.by_reason))


def record_events(
    recorder: EventRecorder,
    federation: KubeObject,
    *,
    old_status: Mapping[str, Any],
    new_status: Mapping[str, Any],
    services: tuple[ServiceState, ...] | None,
    outcome: ApplyOutcome | None,
    expired: bool,
) -> None:
    previous = services_by_host(old_status)
    summary = old_status.get("servicesSummary")
    # Hosts the previous status left out of its bounded list: their state is unknown, not new.
    truncated = isinstance(summary, dict) and bool(summary.get("omitted"))
    newsworthy: list[ServiceState] = []
    for service in services or ():
        if service.state == STATE_IMPORTED:
            continue
        before = previous.get(service.hostname)
        if before is None and truncated:
            continue
        listed = ServiceState(service.hostname, service.state, service.message).to_json()
        if before is not None and (before.get("state"), before.get("message")) == (listed["state"], listed["message"]):
            continue
        newsworthy.append(service)
    for service in newsworthy[:MAX_SERVICE_EVENTS]:
        recorder.record(
            federation,
            event_type=events.WARNING,
            reason=_SERVICE_EVENT_REASONS.get(service.state, "ServiceSkipped"),
            message=f"{service.hostname}: {service.message}",
        )
    if len(newsworthy) > MAX_SERVICE_EVENTS:
        rest = newsworthy[MAX_SERVICE_EVENTS:]
        states = sorted({service.state for service in rest})
        recorder.record(
            federation,
            event_type=events.WARNING,
            reason="ServicesNotImported",
            message=f"and {len(rest)} more services not imported ({', '.join(states)}): see status.services, "
            "status.servicesSummary and the Synced condition",
        )
    verbs = [action.verb for action in outcome.actions] if outcome is not None else []
    if "create" in verbs or "delete" in verbs:
        summary = ", ".join(f"{verbs.count(verb)} {word}" for verb, word in _PAST.items() if verb in verbs)
        recorder.record(
            federation,
            event_type=events.NORMAL,
            reason="Expired" if expired else "Applied",
            message=f"objects {summary}" + (" (--expire-after reached)" if expired else ""),
        )
    old_ready = conditions.find(old_status.get("conditions") or [], conditions.READY)
    new_ready = conditions.find(new_status.get("conditions") or [], conditions.READY)
    if new_ready is not None and (old_ready is None or old_ready.get("status") != new_ready.get("status")):
        ok = new_ready.get("status") == conditions.TRUE
        recorder.record(
            federation,
            event_type=events.NORMAL if ok else events.WARNING,
            reason="Ready" if ok else str(new_ready.get("reason") or "NotReady"),
            message=str(new_ready.get("message") or ""),
        )
