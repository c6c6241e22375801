"""One federation, one sync: observe, decide, apply, report.

1. Observe (``reconciler.observe``, shared with ``check``): GET ``<endpoint>/public/public.json``,
   then ``<endpoint>/private/federation.json`` with a fresh EdDSA JWT (Deckhouse's claims).
2. Decide the desired objects (``federation.desired``, which holds the security filter).
3. Apply them (``reconciler.apply``); garbage-collect only after a complete, valid private fetch,
   or, with ``--expire-after``, once the last success is that old.
4. Decide the new status (``federation.status.next_status``, pure) and write it only when it changed.
5. Report: metrics and Events (``reconciler.report``).

A failed stage never clears anything: the last good metadata, objects and trust stay in place,
and ``Stale`` turns True once the last success is older than ``stale_after``.  A peer that publishes
no usable ingress gateway counts as unavailable: nothing could reach its services, so its objects
are kept as they are (no garbage collection) rather than deleted in one sync.

A sync that raises (a bug, or input nothing foresaw) still ends in a status: ``Synced=False`` with
reason ``InternalError`` naming the stage, ``Stale`` and ``Ready`` as for any failure
(``federation.status.internal_error_status``), and ``istio_federation_sync_errors_total{stage}``;
the traceback goes to the log.

Two federations never hold one remote clusterUUID: besides what status says
(``reconciler.observe.cluster_uuid_owners``), the first federation of this process to accept a
UUID claims it, so two syncs running at once cannot both take it.

Nothing here knows about ``--dry-run``: a dry run hands the Syncer a store that records writes instead of
making them (``reconciler.dryrun``), and its plan is the :class:`FederationPlan` every sync returns.
"""

from __future__ import annotations

import copy
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from federation import conditions, desired, mergepatch, resources, status
from federation.documents.private import PrivateMetadata
from federation.documents.public import PublicMetadata
from federation.keys import Keypair
from federation.resources import KubeObject
from federation.service_states import service_states
from federation.status import Applied, History, MetadataExchange, StageFailure, StatusSettings
from federation.store import ObjectStore, StoreError
from federation.timestamps import format_time, parse_time
from reconciler import report
from reconciler.apply import Applier, ApplyOutcome
from reconciler.decisions import DecisionCache
from reconciler.events import EventRecorder
from reconciler.fetch import Fetcher
from reconciler.metrics import SYNC_STAGES, ReconcilerMetrics
from reconciler.objectdiff import field_diff
from reconciler.observation import LocalCluster, Observation, metadata_exchange, uuid_conflict_message
from reconciler.observe import observe
from reconciler.results import FederationPlan, SyncResult
from reconciler.retry import Interrupted, Retry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncSettings:
    local: LocalCluster
    namespace: str = "istio-federation"
    stale_after: timedelta = timedelta(minutes=5)
    expire_after: timedelta | None = None
    ca_overlap: timedelta = timedelta(hours=24)
    # lastSuccessfulSyncTime is refreshed at most this often when nothing else changed (default:
    # half of stale_after), so an unchanged sync writes nothing.
    heartbeat: timedelta | None = None

    @property
    def status(self) -> StatusSettings:
        return StatusSettings(
            stale_after=self.stale_after,
            expire_after=self.expire_after,
            ca_overlap=self.ca_overlap,
            heartbeat=self.heartbeat if self.heartbeat is not None else self.stale_after / 2,
        )


@dataclass
class _Memory:
    """What the process remembers between syncs (status is the fallback after a restart)."""

    first_attempt: datetime | None = None
    last_success: datetime | None = None


@dataclass
class _Progress:
    """Where a sync is, so that one that raises can say in which stage (``SYNC_STAGES``)."""

    stage: str = SYNC_STAGES[0]
    old_status: dict[str, Any] = field(default_factory=dict)
    written: bool = False  # the status of this sync was written (or found unchanged)


class Syncer:
    def __init__(
        self,
        store: ObjectStore,
        settings: SyncSettings,
        keypair: Keypair,
        *,
        fetcher: Fetcher | None = None,
        retry: Retry | None = None,
        metrics: ReconcilerMetrics | None = None,
        events_recorder: EventRecorder | None = None,
        clock: Callable[[], datetime] | None = None,
        write_concurrency: int = 1,
    ) -> None:
        self.store = store
        self.settings = settings
        self.keypair = keypair
        self.fetcher = fetcher or Fetcher()
        self.retry = retry or Retry()
        self.metrics = metrics or ReconcilerMetrics()
        self.events = events_recorder or EventRecorder(store, settings.namespace)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.applier = Applier(store, self.retry, concurrency=write_concurrency)
        self._memory: dict[str, _Memory] = {}
        self.decisions = DecisionCache()
        # federation name -> the remote clusterUUID it accepted in this process.
        self._claims: dict[str, str] = {}
        self._lock = threading.Lock()

    def forget(self, name: str) -> None:
        with self._lock:
            self._memory.pop(name, None)
            self._claims.pop(name, None)
        self.decisions.forget(name)
        self.applier.forget(name)

    def sync(self, federation: KubeObject) -> SyncResult:
        started = time.monotonic()
        name = resources.name_of(federation)
        progress = _Progress()
        try:
            result = self._sync(federation, progress)
        except Interrupted:
            log.info("sync interrupted by shutdown federation=%s", name)
            result = SyncResult(name, ok=False, stage="interrupted", message="shutdown", interrupted=True)
        except Exception as error:  # every failure ends in a status and a metric, a bug's too
            log.exception("sync failed unexpectedly federation=%s stage=%s", name, progress.stage)
            result = self._crashed(federation, progress, error)
        result.duration = time.monotonic() - started
        self.metrics.sync_duration.labels(federation=name).observe(result.duration)
        level = logging.INFO if result.ok else logging.WARNING
        log.log(
            level,
            "synced federation=%s ok=%s stage=%s duration=%.3fs%s",
            name,
            result.ok,
            result.stage or "-",
            result.duration,
            f": {result.message}" if result.message else "",
        )
        return result

    def _sync(self, federation: KubeObject, progress: _Progress) -> SyncResult:
        name = resources.name_of(federation)
        raw_status = federation.get("status")
        old_status: dict[str, Any] = copy.deepcopy(raw_status) if isinstance(raw_status, dict) else {}
        progress.old_status = old_status
        now = self.clock()
        history = self._history(federation, now)

        progress.stage = "observe"
        observation = observe(
            federation,
            store=self.store,
            fetcher=self.fetcher,
            keypair=self.keypair,
            local=self.settings.local,
            now=now,
            namespace=self.settings.namespace,
        )
        progress.stage = "decide"
        reader = functools.partial(self.decisions.read_private, name)
        exchange = self._claim(name, metadata_exchange(observation, local=self.settings.local, private_reader=reader))
        outcome, applied = self._apply(observation, exchange, old_status, history, progress)
        progress.stage = "decide"
        generation = resources.meta(federation).get("generation")
        verdict = status.next_status(
            old_status,
            exchange,
            applied,
            now=now,
            settings=self.settings.status,
            history=history,
            generation=generation if isinstance(generation, int) else None,
        )
        result = SyncResult(
            name,
            ok=verdict.succeeded,
            stage=verdict.failed_stage,
            message=verdict.failure,
            trust_domain=str(resources.spec(federation).get("trustDomain") or "").lower(),
            trusted_pems=verdict.trusted_pems,
            plan=FederationPlan(
                name,
                actions=list(outcome.actions) if outcome else [],
                status_changes=field_diff(old_status, verdict.status, "status"),
                error=verdict.failure,
            ),
        )
        # Metrics before the status write, as they always were: a scrape that sees the objects
        # sees their counts too.
        progress.stage = "report"
        report.record_metrics(
            self.metrics,
            name,
            verdict=verdict,
            outcome=outcome,
            endpoint_up=isinstance(exchange.private, PrivateMetadata),
            now=now,
        )
        progress.stage = "status"
        if self._write_status(name, old_status, verdict.status, result):
            self.metrics.write(name, "patch")
        progress.written = True
        if result.ok:  # a success is a sync whose status is written
            with self._lock:
                memory = self._memory.get(name)  # None once the federation was deleted meanwhile
                if memory is not None:
                    memory.last_success = now
        progress.stage = "report"
        report.record_events(
            self.events,
            federation,
            old_status=old_status,
            new_status=verdict.status,
            services=applied.services if applied is not None else None,
            outcome=outcome,
            expired=applied is not None and applied.expired,
        )
        return result

    def _history(self, federation: KubeObject, now: datetime) -> History:
        with self._lock:
            memory = self._memory.setdefault(resources.name_of(federation), _Memory())
            if memory.first_attempt is None:
                created = str(resources.meta(federation).get("creationTimestamp") or "")
                memory.first_attempt = parse_time(created) or now
            return History(memory.first_attempt, memory.last_success)

    def _claim(self, name: str, exchange: MetadataExchange) -> MetadataExchange:
        """Refuse a clusterUUID another federation of this process accepted first; else claim it."""
        public = exchange.public
        if not isinstance(public, PublicMetadata):
            return exchange
        with self._lock:
            claimed = sorted(other for other, uuid in self._claims.items() if uuid == public.cluster_uuid)
            owner = next((other for other in claimed if other != name), None)
            if owner is None:
                self._claims[name] = public.cluster_uuid
                return exchange
        failure = StageFailure(
            conditions.CLUSTER_UUID_CONFLICT,
            uuid_conflict_message(public.cluster_uuid, owner),
            disowned_uuid=public.cluster_uuid,
        )
        return MetadataExchange(failure)

    def _apply(
        self,
        observation: Observation,
        exchange: MetadataExchange,
        old_status: dict[str, Any],
        history: History,
        progress: _Progress,
    ) -> tuple[ApplyOutcome | None, Applied | None]:
        """Make the owned objects match the remote's offer; else, past --expire-after, remove them."""
        name = resources.name_of(observation.federation)
        if isinstance(exchange.public, PublicMetadata) and isinstance(exchange.private, PrivateMetadata):
            trust_domain = str(resources.spec(observation.federation).get("trustDomain") or "").lower()
            plan = self.decisions.desired_state(
                name,
                exchange.private,
                desired.FederationSettings(
                    federation_name=name,
                    namespace=self.settings.namespace,
                    trust_domain=trust_domain,
                    remote_cluster_uuid=exchange.public.cluster_uuid,
                    local_trust_domain=self.settings.local.trust_domain,
                    other_trust_domains=observation.other_trust_domains,
                    export_to=observation.export_to,
                ),
            )
            progress.stage = "apply"
            outcome = self.applier.apply(name, plan.objects, gc=True)
            progress.stage = "decide"
            services = service_states(
                plan, denied=outcome.denied, blocked=outcome.blocked, failed=outcome.failed
            )
            mismatch = (trust_domain, plan.remote_domain) if plan.remote_domain is not None else None
            return outcome, Applied(services, complete=outcome.complete, trust_domain_mismatch=mismatch)
        now = observation.now
        if not status.expiry_due(old_status, history, now=now, expire_after=self.settings.expire_after):
            return None, None
        progress.stage = "apply"
        if not self.applier.owned(name):
            return None, None
        last = status.last_success(old_status, history)
        log.warning("expiring objects federation=%s: last successful sync %s", name, format_time(last or now))
        outcome = self.applier.apply(name, [], gc=True)
        return outcome, Applied((), complete=outcome.complete, expired=True)

    def _crashed(self, federation: KubeObject, progress: _Progress, error: Exception) -> SyncResult:
        """A sync raised: say so in status (unless its own status was written), a metric and the result.

        Best effort throughout: whatever fails here is logged, never raised, so one federation's
        crash never stops the loop.
        """
        name = resources.name_of(federation)
        stage = progress.stage
        detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        # No trust domain until the trusted roots are known: the loop then keeps the mesh trust it
        # had for this federation, rather than an empty set.
        result = SyncResult(
            name, ok=False, stage=status.STAGE_INTERNAL, message=f"failed unexpectedly in stage {stage}: {detail}"
        )
        try:
            self.metrics.sync_errors.labels(federation=name, stage=stage).inc()
            self.metrics.fetch_errors.labels(federation=name, stage=status.STAGE_INTERNAL).inc()
        except Exception:  # a metric must never hide the failure it counts
            log.exception("could not count the failed sync federation=%s", name)
        if progress.written:
            return result  # the sync's own status is written: the log and the metric say the rest
        try:
            now = self.clock()
            generation = resources.meta(federation).get("generation")
            verdict = status.internal_error_status(
                progress.old_status,
                stage=stage,
                detail=detail,
                now=now,
                settings=self.settings.status,
                history=self._history(federation, now),
                generation=generation if isinstance(generation, int) else None,
            )
            result.trusted_pems = verdict.trusted_pems
            result.trust_domain = str(resources.spec(federation).get("trustDomain") or "").lower()
            result.plan = FederationPlan(
                name, status_changes=field_diff(progress.old_status, verdict.status, "status"), error=result.message
            )
            self.metrics.stale.labels(federation=name).set(1 if verdict.stale else 0)
            if self._write_status(name, progress.old_status, verdict.status, result):
                self.metrics.write(name, "patch")
            result.stage, result.message = status.STAGE_INTERNAL, f"failed unexpectedly in stage {stage}: {detail}"
            report.record_events(
                self.events,
                federation,
                old_status=progress.old_status,
                new_status=verdict.status,
                services=None,
                outcome=None,
                expired=False,
            )
        except Interrupted:
            result.interrupted = True
        except Exception:  # reported above; the loop carries on
            log.exception("could not report the failed sync in status federation=%s", name)
        return result

    def _write_status(self, name: str, old: dict[str, Any], new: dict[str, Any], result: SyncResult) -> bool:
        """Patch the status subresource when the status changed; a failure fails the sync."""
        if new == old:
            return False
        patch = mergepatch.between(old, new)
        try:
            self.retry.run(
                lambda _fresh: self.store.patch_status(resources.ISTIO_FEDERATION, "", name, {"status": patch}),
                what=f"status of IstioFederation {name}",
            )
        except StoreError as error:
            log.error("could not write status federation=%s: %s", name, error)
            result.ok = False
            result.stage, result.message = result.stage or "apply", f"status write failed: {error}"
            return False
        return True
