"""Run syncs: once (``--once``/``--dry-run``) or forever, every interval and on change.

* Each federation has its own due time, ``interval`` apart with ±``jitter`` so that many
  reconcilers do not hit a remote in step.  A created federation, or one whose spec changed, is
  synced at once (watch events); status-only changes (our own writes) do not trigger a sync.
* Syncs run on a bounded thread pool; each federation is synced by at most one worker at a time,
  and a failure or a slow remote in one never holds up the others beyond the pool bound.
* Objects labelled for a federation that no longer exists are deleted (the federation's deletion is
  the explicit intent), but only once the store has listed everything, never on a partial view.
* Shutdown (SIGTERM) sets ``stop``: workers finish the write in progress and return, the pool
  drains, the Lease is released.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from federation import ownership, resources
from federation.resources import KubeObject
from federation.store import NotFound, ObjectStore, StoreError, look_list
from reconciler.apply import MANAGED_KINDS, Action
from reconciler.heap import Heap
from reconciler.leader import LeaderElector
from reconciler.meshtrust import MeshTrust
from reconciler.metrics import ReconcilerMetrics
from reconciler.placement import hostname_of
from reconciler.results import SyncResult
from reconciler.retry import Interrupted, Retry
from reconciler.sync import Syncer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoopSettings:
    interval: float = 60.0
    jitter: float = 0.1
    concurrency: int = 4
    # How long the main loop sleeps at most between looking at due times and events.
    tick: float = 1.0


@dataclass
class RunReport:
    """The outcome of one pass over every federation (``--once``/``--dry-run``): also the plan."""

    results: list[SyncResult] = field(default_factory=list)
    orphan_actions: list[Action] = field(default_factory=list)
    mesh_action: Action | None = None
    mesh_error: str = ""

    @property
    def ok(self) -> bool:
        return all(result.ok for result in self.results) and not self.mesh_error


class Reconciler:
    def __init__(
        self,
        store: ObjectStore,
        syncer: Syncer,
        *,
        mesh_trust: MeshTrust | None,
        settings: LoopSettings | None = None,
        leader: LeaderElector | None = None,
        stop: threading.Event | None = None,
        metrics: ReconcilerMetrics | None = None,
        retry: Retry | None = None,
        heap: Heap | None = None,
    ) -> None:
        self.store = store
        self.heap = heap
        self.syncer = syncer
        self.mesh_trust = mesh_trust
        self.settings = settings or LoopSettings()
        self.leader = leader
        self.stop = stop or threading.Event()
        self.metrics = metrics or syncer.metrics
        self.retry = retry or syncer.retry
        self.healthy = threading.Event()
        self.rounds = 0  # syncs finished, for tests and logs
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._triggered: set[str] = set()
        self._deleted: set[str] = set()
        self._collecting: set[str] = set()  # deleted federations whose objects are being deleted
        self._seen_specs: dict[str, Any] = {}
        self._in_flight: set[str] = set()
        self._again: set[str] = set()
        self._next_due: dict[str, float] = {}
        # The mesh trust is reconciled after each sync, and also on its own: when a managed
        # ServiceEntry is deleted, and every interval, since with no federation left (or none due)
        # no sync comes to drop a root that only a since-deleted object kept trusted.
        self._mesh_due = False
        # Not before the syncs of a start have remembered the federations' roots.
        self._next_mesh_check = time.monotonic() + self.settings.interval
        self._random = random.Random()  # noqa: S311 - scheduling jitter, not security

    # -- one pass ------------------------------------------------------------------------------

    def sync_once(self) -> RunReport:
        """Sync every federation once (concurrently, bounded), then orphans and mesh trust."""
        report = RunReport()
        federations = self.store.list(resources.ISTIO_FEDERATION)
        with ThreadPoolExecutor(max_workers=self.settings.concurrency, thread_name_prefix="sync") as pool:
            futures = [pool.submit(self._sync_safely, federation) for federation in federations]
            report.results = [future.result() for future in futures]
        if self.stop.is_set():
            return report
        report.orphan_actions = self.collect_orphans()
        if self.mesh_trust is not None:
            outcome = self.mesh_trust.reconcile()
            report.mesh_action, report.mesh_error = outcome.action, outcome.error
        return report

    def _sync_safely(self, federation: KubeObject) -> SyncResult:
        name = resources.name_of(federation)
        try:
            result = self.syncer.sync(federation)
        except Exception as error:  # a bug in one federation's sync must not stop the others
            log.exception("sync crashed federation=%s", name)
            result = SyncResult(name, ok=False, stage="crash", message=f"{type(error).__name__}: {error}")
        if self.heap is not None:
            self.heap.after_sync()
        if self.mesh_trust is not None and result.trust_domain and not result.interrupted:
            self.mesh_trust.remember(name, result.trust_domain, result.trusted_pems)
        return result

    def collect_orphans(self) -> list[Action]:
        """Delete managed objects whose IstioFederation is gone (only on a fully listed store)."""
        if not self.store.synced:
            return []
        existing = {resources.name_of(f) for f in self.store.list(resources.ISTIO_FEDERATION)}
        actions: list[Action] = []
        for resource in MANAGED_KINDS:
            # Every managed object is looked at, few are deleted: no copies.
            for obj in look_list(self.store, resource, None, ownership.selector()):
                owner = ownership.owning_federation(obj)
                if owner is None or owner in existing:
                    continue
                namespace, name = resources.namespace_of(obj), resources.name_of(obj)
                action = Action("delete", resource, namespace, name, hostname_of(obj))
                try:
                    self.retry.check_stop()
                    self.retry.run(
                        self._orphan_deleter(resource, namespace, name), what=f"delete orphan {action.target}"
                    )
                except Interrupted:
                    return actions
                except StoreError as error:
                    log.error("could not delete orphan %s federation=%s: %s", action.target, owner, error)
                    continue
                log.info("deleted %s federation=%s (IstioFederation deleted)", action.target, owner)
                self.metrics.write(owner, "delete")
                actions.append(action)
        return actions

    def _orphan_deleter(self, resource: resources.Resource, namespace: str, name: str) -> Callable[[bool], None]:
        def delete(_fresh: bool) -> None:
            try:
                self.store.delete(resource, namespace, name)
            except NotFound:
                return

        return delete

    # -- forever -------------------------------------------------------------------------------

    def on_event(self, event: str, obj: KubeObject) -> None:
        """Store callback: trigger a sync on create or spec change, cleanup on delete; and the mesh
        trust when a managed ServiceEntry is gone (it may have been what kept a root trusted)."""
        if obj.get("kind") == resources.SERVICE_ENTRY.kind:
            if event == "DELETED" and ownership.is_managed(obj):
                with self._lock:
                    self._mesh_due = True
                self._wake.set()
            return
        if obj.get("kind") != resources.ISTIO_FEDERATION.kind:
            return
        name = resources.name_of(obj)
        with self._lock:
            if event == "DELETED":
                self._seen_specs.pop(name, None)
                self._deleted.add(name)
            else:
                spec = obj.get("spec")
                if self._seen_specs.get(name) == spec and name in self._seen_specs:
                    return
                self._seen_specs[name] = spec
                self._triggered.add(name)
        self._wake.set()

    def run(self) -> None:
        """Sync until ``stop`` is set. Returns after in-flight syncs have finished."""
        self.store.subscribe(self.on_event)
        pool = ThreadPoolExecutor(max_workers=self.settings.concurrency, thread_name_prefix="sync")
        next_election = 0.0
        try:
            while not self.stop.is_set():
                if not self.store.synced:
                    self.store.wait_synced(self.settings.tick)
                    continue
                self.healthy.set()
                if self.leader is not None and time.monotonic() >= next_election:
                    self.leader.try_acquire_or_renew()
                    next_election = time.monotonic() + self.leader.renew_period
                if self.leader is not None and not self.leader.is_leader:
                    self.stop.wait(min(self.settings.tick, self.leader.renew_period))
                    continue
                self._handle_deletions()
                self._reconcile_mesh_if_due()
                self._collect_if_idle()
                self._submit_due(pool)
                self._wake.wait(self._sleep_time(next_election))
                self._wake.clear()
        finally:
            self.stop.set()
            pool.shutdown(wait=True)
            if self.leader is not None:
                self.leader.release()

    def _reconcile_mesh_if_due(self) -> None:
        if self.mesh_trust is None:
            return
        now = time.monotonic()
        with self._lock:
            due = self._mesh_due or now >= self._next_mesh_check
            self._mesh_due = False
        if not due:
            return
        self._next_mesh_check = now + self.settings.interval
        self.mesh_trust.reconcile()  # a failure is logged there, and tried again an interval later

    def _collect_if_idle(self) -> None:
        """The heap's full collection, only while no sync is in flight (it would pause it)."""
        with self._lock:
            idle = not self._in_flight
        if idle and self.heap is not None:
            self.heap.between_syncs()

    def _sleep_time(self, next_election: float) -> float:
        now = time.monotonic()
        with self._lock:
            due = [when for name, when in self._next_due.items() if name not in self._in_flight]
        wake_at = min([*due, now + self.settings.tick])
        if self.leader is not None:
            wake_at = min(wake_at, next_election)
        return max(0.0, min(self.settings.tick, wake_at - now))

    def _handle_deletions(self) -> None:
        with self._lock:
            deleted, self._deleted = self._deleted, set()
            self._collecting |= deleted
        if not deleted:
            return
        try:
            for name in deleted:
                with self._lock:
                    self._next_due.pop(name, None)
                    self._triggered.discard(name)
                self.syncer.forget(name)
                self.metrics.forget(name)
                if self.mesh_trust is not None:
                    self.mesh_trust.forget(name)
            self.collect_orphans()
            if self.mesh_trust is not None:
                self.mesh_trust.reconcile()
        finally:
            with self._lock:
                self._collecting -= deleted

    def _submit_due(self, pool: ThreadPoolExecutor) -> None:
        now = time.monotonic()
        for federation in self.store.list(resources.ISTIO_FEDERATION):
            name = resources.name_of(federation)
            with self._lock:
                triggered = name in self._triggered
                due = self._next_due.get(name, 0.0) <= now
                if not (triggered or due):
                    continue
                if name in self._in_flight:
                    if triggered:
                        self._again.add(name)
                        self._triggered.discard(name)
                    continue
                self._triggered.discard(name)
                self._in_flight.add(name)
                self._seen_specs.setdefault(name, federation.get("spec"))
            future = pool.submit(self._run_one, name)
            future.add_done_callback(self._on_done(name))

    def _run_one(self, name: str) -> SyncResult:
        federation = self.store.get(resources.ISTIO_FEDERATION, "", name)
        if federation is None:
            return SyncResult(name, ok=True, stage="deleted")
        result = self._sync_safely(federation)
        done = not result.interrupted and not self.stop.is_set()
        if self.mesh_trust is not None and done and not self._deletion_pending(name):
            self.mesh_trust.reconcile()
        return result

    def _deletion_pending(self, name: str) -> bool:
        """Whether a deleted federation's objects may still exist (this one's included, deleted
        during its sync). Its roots must stay trusted until they are gone, so only _handle_deletions,
        after deleting them, reconciles the mesh trust then; a sync finishing meanwhile must not."""
        with self._lock:
            if self._deleted or self._collecting:
                return True
        return self.store.get(resources.ISTIO_FEDERATION, "", name) is None

    def _on_done(self, name: str) -> Callable[[Future[SyncResult]], None]:
        return lambda future: self._finished(name, future)

    def _finished(self, name: str, future: Future[SyncResult]) -> None:
        interval = self.settings.interval * self._random.uniform(1 - self.settings.jitter, 1 + self.settings.jitter)
        with self._lock:
            self._in_flight.discard(name)
            self._next_due[name] = time.monotonic() + interval
            self.rounds += 1
            if name in self._again:
                self._again.discard(name)
                self._triggered.add(name)
        if future.exception() is not None:
            log.error("sync worker failed federation=%s: %s", name, future.exception())
        self._wake.set()
