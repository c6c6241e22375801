"""IstioFederation status conditions, with Kubernetes semantics and Deckhouse's types and reasons.

Kubernetes convention (``meta.SetStatusCondition``): ``lastTransitionTime`` changes only when the
status changes; reason, message and ``observedGeneration`` are simply updated.  Conditions of types
this module does not write (Deckhouse's ``DataplaneConnectionReady``, say) are kept as they are.

Types and reasons:

* ``PublicMetadataExchangeReady`` / ``PrivateMetadataExchangeReady``: Deckhouse's exactly
  (``Succeeded``, ``FetchFailed``, ``NonOKResponse``, ``InvalidJSON``, ``InvalidPublicMetadata``,
  ``InvalidPrivateMetadata``, ``AwaitingPublic``, ``TokenGenerationFailed``), so dashboards and
  runbooks written for Deckhouse keep working.
  Ours besides: ``ConfigurationError`` (the spec cannot work), ``ClusterUUIDConflict`` (the
  remote claims a cluster another IstioFederation already names), ``NoIngressGateways`` (nothing
  could reach the remote's services, so its last known objects are kept).
* ``Synced``: whether the objects match the remote's offer, with counts; ``InternalError`` when the
  sync itself failed unexpectedly (a bug: the reconciler's log has the traceback).
* ``Stale``: True when the last successful sync is older than the threshold, with its age.
* ``Ready``: the one line summary read by the ``Ready`` printer column.

Messages are built from stable facts only (counts, reasons, ages rounded to minutes), so an
unchanged sync produces an identical status and therefore no write.  Every message is cut to
:data:`MESSAGE_LIMIT` characters and made printable, and names at most :data:`NAMED_HOSTS` hosts
(then counts the rest), whatever a remote publishes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from federation import remotetext

TRUE = "True"
FALSE = "False"
UNKNOWN = "Unknown"

PUBLIC = "PublicMetadataExchangeReady"
PRIVATE = "PrivateMetadataExchangeReady"
SYNCED = "Synced"
STALE = "Stale"
READY = "Ready"

# Deckhouse's reasons (federation_discovery.go, PR #19299).
SUCCEEDED = "Succeeded"
FETCH_FAILED = "FetchFailed"
NON_OK_RESPONSE = "NonOKResponse"
INVALID_JSON = "InvalidJSON"
INVALID_PUBLIC = "InvalidPublicMetadata"
INVALID_PRIVATE = "InvalidPrivateMetadata"
AWAITING_PUBLIC = "AwaitingPublic"
TOKEN_GENERATION_FAILED = "TokenGenerationFailed"

# Ours.
CONFIGURATION_ERROR = "ConfigurationError"
CLUSTER_UUID_CONFLICT = "ClusterUUIDConflict"
NO_INGRESS_GATEWAYS = "NoIngressGateways"
INTERNAL_ERROR = "InternalError"
SYNC_SUCCEEDED = "Synced"
HOSTS_REFUSED = "HostsRefused"
TRUST_DOMAIN_MISMATCH = "TrustDomainMismatch"
SERVICES_DENIED = "ServicesDenied"
APPLY_FAILED = "ApplyFailed"
AWAITING_METADATA = "AwaitingMetadata"
FRESH = "Fresh"
STALE_REASON = "LastSyncTooOld"
NEVER_SYNCED = "NeverSynced"
AWAITING_FIRST_SYNC = "AwaitingFirstSync"
READY_REASON = "Ready"

PUBLIC_SUCCEEDED_MESSAGE = "Public metadata exchange succeeded."
PRIVATE_SUCCEEDED_MESSAGE = "Private metadata exchange succeeded."
AWAITING_PUBLIC_MESSAGE = "Public metadata exchange has not succeeded yet."

# kubectl describe shows a message on one line; metav1.Condition allows 32 KiB, far more than
# anyone reads.  A remote controls much of what goes in (host names, its 401 text).
MESSAGE_LIMIT: Final = 1024
# Hosts named in one message; the rest are counted.
NAMED_HOSTS: Final = 5


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str
    message: str


def find(conditions: Sequence[dict[str, Any]], condition_type: str) -> dict[str, Any] | None:
    return next((c for c in conditions if isinstance(c, dict) and c.get("type") == condition_type), None)


def merge(
    existing: Sequence[dict[str, Any]], updates: Iterable[Condition], *, now: str, generation: int | None
) -> list[dict[str, Any]]:
    """``existing`` with ``updates`` applied; positions of existing types are kept, new ones appended."""
    result = [dict(c) for c in existing if isinstance(c, dict)]
    for update in updates:
        current = find(result, update.type)
        entry: dict[str, Any] = {
            "type": update.type,
            "status": update.status,
            "reason": update.reason,
            "message": remotetext.printable(update.message, MESSAGE_LIMIT),
            "lastTransitionTime": now,
        }
        if generation is not None:
            entry["observedGeneration"] = generation
        if current is None:
            result.append(entry)
            continue
        if current.get("status") == update.status and current.get("lastTransitionTime"):
            entry["lastTransitionTime"] = current["lastTransitionTime"]
        # Deckhouse also writes lastProbeTime; keeping whatever is there costs nothing.
        if "lastProbeTime" in current:
            entry["lastProbeTime"] = current["lastProbeTime"]
        current.clear()
        current.update(entry)
    return result


def format_age(age: timedelta) -> str:
    """``3d4h``, ``2h5m``, ``7m``: whole minutes, so the message changes at most once a minute."""
    minutes = max(0, int(age.total_seconds() // 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    return f"{minutes}m"


def format_duration(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    if seconds % 3600 == 0 and seconds >= 3600:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0 and seconds >= 60:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def public_succeeded() -> Condition:
    return Condition(PUBLIC, TRUE, SUCCEEDED, PUBLIC_SUCCEEDED_MESSAGE)


def private_succeeded(skipped: str = "") -> Condition:
    """Succeeded; ``skipped`` is the summary of what the document had that cannot be imported."""
    message = f"{PRIVATE_SUCCEEDED_MESSAGE} {skipped}" if skipped else PRIVATE_SUCCEEDED_MESSAGE
    return Condition(PRIVATE, TRUE, SUCCEEDED, message)


def private_awaiting_public() -> Condition:
    return Condition(PRIVATE, UNKNOWN, AWAITING_PUBLIC, AWAITING_PUBLIC_MESSAGE)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def named(hosts: Sequence[str], limit: int = NAMED_HOSTS) -> str:
    """``a, b, c`` or ``a, b, c and 7 more``: at most ``limit`` hosts, each short and printable."""
    shown = ", ".join(remotetext.printable(host, remotetext.VALUE_LIMIT) for host in hosts[:limit])
    more = len(hosts) - limit
    return f"{shown} and {more} more" if more > 0 else shown


def synced(
    *,
    imported: int,
    skipped: Sequence[str],
    denied: Sequence[str],
    failed: Sequence[str] = (),
    trust_domain_mismatch: tuple[str, str] | None = None,
) -> Condition:
    """``Synced`` with counts; the first hosts named so that ``kubectl describe`` says what to look at.

    ``trust_domain_mismatch`` is ``(spec.trustDomain, the remote hosts' domain)`` when every host
    the remote offers was refused for being outside ``spec.trustDomain``: then the spec is the
    likely mistake, and the message says so.
    """
    counts = f"Imported {_plural(imported, 'service')}, skipped {len(skipped)}, denied {len(denied)}."
    if failed:
        return Condition(SYNCED, FALSE, APPLY_FAILED, f"{counts} Could not apply: {named(failed)}.")
    if denied:
        return Condition(SYNCED, FALSE, SERVICES_DENIED, f"{counts} Denied by admission: {named(denied)}.")
    if trust_domain_mismatch is not None:
        spec_domain, remote_domain = trust_domain_mismatch
        where = f"under {remote_domain}" if remote_domain else "in no common domain"
        return Condition(
            SYNCED,
            FALSE,
            TRUST_DOMAIN_MISMATCH,
            f"{counts} Every host the remote offers is outside spec.trustDomain {spec_domain}: its hosts are "
            f"{where}, so spec.trustDomain probably does not match the remote's real trust domain "
            f"(create an IstioFederation with the right trustDomain; it is immutable). Refused: {named(skipped)}.",
        )
    if skipped:
        return Condition(SYNCED, FALSE, HOSTS_REFUSED, f"{counts} Refused: {named(skipped)}.")
    return Condition(SYNCED, TRUE, SYNC_SUCCEEDED, counts)


def internal_error(stage: str, detail: str) -> Condition:
    """``Synced`` after a sync that failed unexpectedly (a bug, or input nothing foresaw)."""
    return Condition(
        SYNCED,
        FALSE,
        INTERNAL_ERROR,
        f"The sync failed unexpectedly in its {stage} stage ({remotetext.printable(detail, 200)}); "
        "the last known objects are kept; the reconciler's log has the traceback.",
    )


def synced_awaiting(reason: str = AWAITING_METADATA) -> Condition:
    return Condition(SYNCED, UNKNOWN, reason, "Objects are kept as they are until metadata is fetched successfully.")


def stale(
    *, last_success: str | None, age: timedelta | None, stale_after: timedelta, expire_after: timedelta | None
) -> Condition:
    """``Stale`` from the age of the last success (None: never succeeded, age since first seen)."""
    threshold = format_duration(stale_after)
    expiry = f" Objects are removed after {format_duration(expire_after)}." if expire_after else ""
    if last_success is None:
        if age is not None and age >= stale_after:
            return Condition(
                STALE, TRUE, NEVER_SYNCED, f"No successful sync in {format_age(age)} since first attempt.{expiry}"
            )
        return Condition(STALE, UNKNOWN, AWAITING_FIRST_SYNC, "No successful sync yet.")
    if age is not None and age >= stale_after:
        return Condition(
            STALE,
            TRUE,
            STALE_REASON,
            f"Last successful sync {format_age(age)} ago ({last_success}), more than {threshold}; "
            f"the last known objects are kept.{expiry}",
        )
    return Condition(STALE, FALSE, FRESH, f"Last successful sync is less than {threshold} old.")


def ready(conditions: Sequence[Condition], *, imported: int) -> Condition:
    """True only when metadata, sync and freshness are all fine; else the first problem, named."""
    by_type = {c.type: c for c in conditions}
    for condition_type in (PUBLIC, PRIVATE, SYNCED):
        condition = by_type.get(condition_type)
        if condition is not None and condition.status != TRUE:
            return Condition(READY, FALSE, condition.reason, f"{condition_type}: {condition.message}")
    staleness = by_type.get(STALE)
    if staleness is not None and staleness.status == TRUE:
        return Condition(READY, FALSE, staleness.reason, f"{STALE}: {staleness.message}")
    return Condition(READY, TRUE, READY_REASON, f"Federation is synced: {_plural(imported, 'service')} imported.")
