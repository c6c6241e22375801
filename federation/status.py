"""An IstioFederation's status after one sync: a pure function of the old status, what the metadata
exchange produced and what applying the desired objects did.

:func:`next_status` is the only place that decides conditions, the metadata cache, the per-service
outcomes, the trusted remote roots and ``lastSuccessfulSyncTime``; adding a condition means changing
it (and ``federation.conditions`` for the condition's own text) and its table of cases in
``tests/federation/test_status.py``.  The reconciler gathers the inputs (``reconciler.observe``,
``reconciler.apply``) and writes the result; nothing here does I/O or reads a clock.

A failed stage never clears anything: the last good metadata and trusted roots stay, and ``Stale``
turns True once the last success is older than ``stale_after``.  (One exception: a cached public
document whose clusterUUID another IstioFederation holds is dropped, because the exporter would
distrust that cluster while two federations claim it.)  An unchanged sync returns the old status
unchanged (``lastSuccessfulSyncTime`` is refreshed only every ``heartbeat``), so it costs no write.
A sync that failed unexpectedly gets a status too (:func:`internal_error_status`).

**Bounded.**  A remote decides how much it publishes, and an apiserver refuses objects over about
1.5 MB, so nothing here grows with the remote's document:

* ``status.services`` lists at most :data:`federation.service_states.MAX_LISTED_SERVICES` hosts
  (the ones not imported first, since those are what an admin must look at; the imported ones are
  the ServiceEntries), each message cut short; ``status.servicesSummary`` counts every host by state;
* ``status.metadataCache.private`` holds the imported gateways and services (Deckhouse's shape)
  up to a byte budget, and ``status.metadataCache.privateOmitted`` counts what was left out;
* ``status.skippedEntries`` summarises what the private document had that cannot be imported
  (:mod:`federation.skipsummary`: counts by reason, the first entries with their reasons);
* every condition message is cut (:data:`federation.conditions.MESSAGE_LIMIT`), and at most
  :data:`federation.meshconfig.MAX_RETIRED_ROOTS` retired roots are kept.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from federation import conditions, meshconfig, skipsummary
from federation.conditions import Condition
from federation.documents.private import PrivateMetadata
from federation.documents.public import PublicMetadata
from federation.meshconfig import TrustedCA
from federation.service_states import (
    STATE_CONFLICT,
    STATE_DENIED,
    STATE_FAILED,
    STATE_IMPORTED,
    STATE_REFUSED,
    ServiceState,
    listed_services,
    services_summary,
)
from federation.skipsummary import SkipSummary
from federation.timestamps import format_time, parse_time

STAGE_PUBLIC = "public"
STAGE_PRIVATE = "private"
STAGE_APPLY = "apply"
STAGE_INTERNAL = "internal"  # the sync raised: a bug, or input nothing foresaw

# Bounds of what status holds, whatever the remote publishes (see the module documentation).
CACHED_SERVICES_BUDGET: Final = 32 * 1024  # bytes of JSON in metadataCache.private.publicServices
CACHED_GATEWAYS_BUDGET: Final = 8 * 1024  # bytes of JSON in metadataCache.private.ingressGateways
# Parse skips named in the PrivateMetadataExchangeReady message (status.skippedEntries has more).
SKIPS_IN_CONDITION: Final = 3


def skip_noun(count: int, noun: str = "entry") -> str:
    """``entry``/``entries``, ``gateway``/``gateways``: what a skip summary counts, in its number."""
    if count == 1:
        return noun
    return noun[:-1] + "ies" if noun.endswith("y") and noun[-2:-1] not in "aeiou" else noun + "s"


def cached_private(private: PrivateMetadata) -> tuple[dict[str, Any], dict[str, int]]:
    """``metadataCache.private`` within its byte budgets, and how many entries were left out."""
    gateways = _within_budget([gateway.to_json() for gateway in private.ingress_gateways], CACHED_GATEWAYS_BUDGET)
    services = _within_budget((service.to_json() for service in private.public_services), CACHED_SERVICES_BUDGET)
    omitted = {
        "ingressGateways": len(private.ingress_gateways) - len(gateways),
        "publicServices": len(private.public_services) - len(services),
    }
    return {"ingressGateways": gateways, "publicServices": services}, omitted


def _within_budget(items: Iterable[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    kept: list[dict[str, Any]] = []
    used = 0
    for item in items:
        used += len(json.dumps(item, separators=(",", ":"))) + 1
        if used > budget:
            break
        kept.append(item)
    return kept


@dataclass(frozen=True)
class StageFailure:
    """Why a metadata stage did not succeed: the condition reason (Deckhouse's) and message.

    ``skipped`` summarises what the refused document could not import, when that is why it was
    refused (every gateway refused).  ``disowned_uuid`` is a clusterUUID the public document
    claimed that another IstioFederation holds: a cached public document with it is dropped.
    """

    reason: str
    message: str
    skipped: SkipSummary | None = None
    disowned_uuid: str = ""


@dataclass(frozen=True)
class MetadataExchange:
    """What the exchange with the remote produced: each document, or why there is none.

    ``private`` is None when it was not attempted because the public stage failed.
    """

    public: PublicMetadata | StageFailure
    private: PrivateMetadata | StageFailure | None = None


@dataclass(frozen=True)
class Applied:
    """What applying this sync's objects did, as status reports it."""

    services: tuple[ServiceState, ...]
    complete: bool  # no write failed after retries
    expired: bool = False  # --expire-after removed the objects; no metadata was applied
    # (spec.trustDomain, the remote hosts' domain) when every offered host was outside the former.
    trust_domain_mismatch: tuple[str, str] | None = None


@dataclass(frozen=True)
class History:
    """What the process remembers between syncs; status is the fallback after a restart."""

    first_attempt: datetime
    last_success: datetime | None = None


@dataclass(frozen=True)
class StatusSettings:
    stale_after: timedelta = timedelta(minutes=5)
    expire_after: timedelta | None = None
    ca_overlap: timedelta = timedelta(hours=24)
    # lastSuccessfulSyncTime is refreshed at most this often when nothing else changed, so an
    # unchanged sync writes nothing; the exact time is in the last-success metric.
    heartbeat: timedelta = timedelta(minutes=2, seconds=30)


@dataclass(frozen=True)
class NextStatus:
    """The new status, and the verdict on the sync that the caller logs, reports and returns."""

    status: dict[str, Any]
    succeeded: bool
    failed_stage: str  # STAGE_*, or "" when nothing failed
    failure: str  # the message of the failed stage
    imported: int
    stale: bool
    trusted_pems: tuple[str, ...]
    # What this sync found it could not import from the private document (None: not read this time).
    skipped: SkipSummary | None = None


def last_success(old: Mapping[str, Any], history: History) -> datetime | None:
    return history.last_success or parse_time(str(old.get("lastSuccessfulSyncTime") or ""))


def expiry_due(old: Mapping[str, Any], history: History, *, now: datetime, expire_after: timedelta | None) -> bool:
    """True when ``--expire-after`` says a federation's objects must go: its last success is that old."""
    if expire_after is None:
        return False
    last = last_success(old, history)
    return last is not None and now - last >= expire_after


def next_status(
    old: Mapping[str, Any],
    exchange: MetadataExchange,
    applied: Applied | None,
    *,
    now: datetime,
    settings: StatusSettings,
    history: History,
    generation: int | None,
) -> NextStatus:
    """The status to write after a sync; ``applied`` is None when nothing was applied."""
    public = exchange.public if isinstance(exchange.public, PublicMetadata) else None
    private = exchange.private if public is not None and isinstance(exchange.private, PrivateMetadata) else None
    skips = skipsummary.summarise(private.skipped) if private is not None else None
    updates, failed_stage, failure = _exchange_conditions(exchange, skips)

    imported = _count(old.get("importedServices"))
    services: tuple[ServiceState, ...] | None = None
    if private is not None:
        assert applied is not None, "the desired objects are applied whenever the private document is valid"
        services = applied.services
        imported = sum(1 for service in services if service.state == STATE_IMPORTED)
        failed = [s.hostname for s in services if s.state == STATE_FAILED]
        updates.append(
            conditions.synced(
                imported=imported,
                skipped=[s.hostname for s in services if s.state in (STATE_REFUSED, STATE_CONFLICT)],
                denied=[s.hostname for s in services if s.state == STATE_DENIED],
                failed=failed,
                trust_domain_mismatch=applied.trust_domain_mismatch,
            )
        )
        if failed:
            failed_stage, failure = STAGE_APPLY, f"could not apply {conditions.named(failed)}"
    else:
        updates.append(conditions.synced_awaiting())
        if applied is not None and applied.expired:
            services, imported = (), 0

    succeeded = private is not None and applied is not None and applied.complete and not failed_stage
    last = now if succeeded else last_success(old, history)
    stale = conditions.stale(
        last_success=format_time(last) if last else None,
        age=(now - last) if last else (now - history.first_attempt),
        stale_after=settings.stale_after,
        expire_after=settings.expire_after,
    )
    updates.append(stale)
    updates.append(conditions.ready(updates, imported=imported))

    trusted = [entry for entry in (TrustedCA.from_json(x) for x in old.get("trustedRootCAs") or []) if entry]
    if public is not None:
        trusted = meshconfig.rotate(trusted, public.root_ca, now, settings.ca_overlap)
    else:
        trusted = meshconfig.expire(trusted, now, settings.ca_overlap)

    new: dict[str, Any] = copy.deepcopy(dict(old))
    # A metadataCache someone replaced with a non-mapping is left alone rather than overwritten.
    cache = new.setdefault("metadataCache", {}) if public is not None else new.get("metadataCache")
    if public is not None and isinstance(cache, dict):
        cache["public"] = public.to_json()
    if isinstance(exchange.public, StageFailure) and exchange.public.disowned_uuid and isinstance(cache, dict):
        _disown(cache, exchange.public.disowned_uuid)
    if private is not None and isinstance(cache, dict):
        cache["private"], omitted = cached_private(private)
        if any(omitted.values()):
            cache["privateOmitted"] = omitted
        else:
            cache.pop("privateOmitted", None)
    skipped_summary = skips if skips is not None else _failure_skips(exchange)
    if skipped_summary is not None:
        if skipped_summary.total:
            new["skippedEntries"] = skipped_summary.to_status()
        else:
            new.pop("skippedEntries", None)
    if services is not None:
        listed = listed_services(services)
        new["services"] = [service.to_json() for service in listed]
        new["servicesSummary"] = services_summary(services, len(listed))
        new["importedServices"] = imported
    if trusted:
        new["trustedRootCAs"] = [entry.to_json() for entry in trusted]
    else:
        new.pop("trustedRootCAs", None)
    new["conditions"] = conditions.merge(
        old.get("conditions") or [], updates, now=format_time(now), generation=generation
    )
    if succeeded:
        previous = parse_time(str(old.get("lastSuccessfulSyncTime") or ""))
        if previous is None or new != old or now - previous >= settings.heartbeat:
            new["lastSuccessfulSyncTime"] = format_time(now)

    return NextStatus(
        status=new,
        succeeded=succeeded,
        failed_stage="" if succeeded else failed_stage or STAGE_APPLY,
        failure="" if succeeded else failure,
        imported=imported,
        stale=stale.status == conditions.TRUE,
        trusted_pems=tuple(entry.pem for entry in trusted),
        skipped=skipped_summary,
    )


def internal_error_status(
    old: Mapping[str, Any],
    *,
    stage: str,
    detail: str,
    now: datetime,
    settings: StatusSettings,
    history: History,
    generation: int | None,
) -> NextStatus:
    """The status after a sync that raised in ``stage``: ``Synced=False`` (``InternalError``),
    ``Stale`` from the last success, ``Ready=False``; everything else as it was.

    ``detail`` is the exception's type and text; the traceback is in the log, never in status.
    """
    synced = conditions.internal_error(stage, detail)
    last = last_success(old, history)
    stale = conditions.stale(
        last_success=format_time(last) if last else None,
        age=(now - last) if last else (now - history.first_attempt),
        stale_after=settings.stale_after,
        expire_after=settings.expire_after,
    )
    updates = [synced, stale]
    updates.append(conditions.ready(updates, imported=_count(old.get("importedServices"))))
    new: dict[str, Any] = copy.deepcopy(dict(old))
    new["conditions"] = conditions.merge(
        _list(old.get("conditions")),
        updates,
        now=format_time(now),
        generation=generation,
    )
    trusted = [entry for entry in (TrustedCA.from_json(x) for x in _list(old.get("trustedRootCAs"))) if entry]
    return NextStatus(
        status=new,
        succeeded=False,
        failed_stage=STAGE_INTERNAL,
        failure=synced.message,
        imported=_count(old.get("importedServices")),
        stale=stale.status == conditions.TRUE,
        trusted_pems=tuple(entry.pem for entry in trusted),
    )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _disown(cache: dict[str, Any], cluster_uuid: str) -> None:
    cached = cache.get("public")
    if isinstance(cached, dict) and cached.get("clusterUUID") == cluster_uuid:
        del cache["public"]


def _failure_skips(exchange: MetadataExchange) -> SkipSummary | None:
    failure = exchange.private if isinstance(exchange.public, PublicMetadata) else None
    return failure.skipped if isinstance(failure, StageFailure) else None


def _exchange_conditions(exchange: MetadataExchange, skips: SkipSummary | None) -> tuple[list[Condition], str, str]:
    """The two metadata-exchange conditions, and the stage that failed with its message."""
    if isinstance(exchange.public, StageFailure):
        failure = exchange.public
        return (
            [
                Condition(conditions.PUBLIC, conditions.FALSE, failure.reason, failure.message),
                conditions.private_awaiting_public(),
            ],
            STAGE_PUBLIC,
            failure.message,
        )
    updates = [conditions.public_succeeded()]
    if isinstance(exchange.private, StageFailure):
        failure = exchange.private
        updates.append(Condition(conditions.PRIVATE, conditions.FALSE, failure.reason, failure.message))
        return updates, STAGE_PRIVATE, failure.message
    if exchange.private is not None:
        summary = skips.message(what=skip_noun(skips.total), shown=SKIPS_IN_CONDITION) if skips is not None else ""
        updates.append(conditions.private_succeeded(summary))
    return updates, "", ""
