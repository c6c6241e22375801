"""One federation, one sync: fetch, filter, apply, record.

1. GET ``<endpoint>/public/public.json``; accept it only if it parses (``federation.documents``).
2. GET ``<endpoint>/private/federation.json`` with a fresh EdDSA JWT (Deckhouse's claims).
3. Build the desired objects (``federation.desired``, which holds the security filter).
4. Apply them (``reconciler.apply``); garbage-collect only after a complete, valid private fetch.
5. Track the remote root CA (rotation overlap) for mesh trust.
6. Write status (metadataCache, services, conditions...) only when it changed.

A failed stage never clears anything: the last good metadata, objects and trust stay in place,
and ``Stale`` turns True once the last success is older than ``stale_after``.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from federation import conditions, desired, documents, meshconfig, resources, tokens
from federation.conditions import Condition
from federation.documents import DocumentError, PrivateMetadata, PublicMetadata
from federation.keys import Keypair
from federation.meshconfig import TrustedCA, format_time, parse_time
from federation.resources import KubeObject
from federation.store import ObjectStore, StoreError
from reconciler import events
from reconciler.apply import Action, Applier, ApplyOutcome, FieldChange, field_diff
from reconciler.events import EventRecorder
from reconciler.fetch import PRIVATE_PATH, PUBLIC_PATH, Fetcher, FetchError, TLSSettings, endpoint_url
from reconciler.metrics import ReconcilerMetrics
from reconciler.retry import Interrupted, Retry

log = logging.getLogger(__name__)

UNKNOWN_CLUSTER_HINT = (
    "the remote does not know this cluster yet: create the IstioFederation for this cluster in the remote"
)
CLOCK_SKEW_HINT = (
    "the remote refused the token's validity period: check that the clocks of both clusters are synchronized"
)
STATE_IMPORTED = "Imported"
STATE_REFUSED = "Refused"
STATE_DENIED = "Denied"
STATE_CONFLICT = "Conflict"
STATE_FAILED = "Failed"


@dataclass(frozen=True)
class SyncSettings:
    cluster_uuid: str
    local_trust_domain: str
    namespace: str = "istio-federation"
    stale_after: timedelta = timedelta(minutes=5)
    expire_after: timedelta | None = None
    ca_overlap: timedelta = timedelta(hours=24)
    issuer: str = tokens.ISSUER
    # lastSuccessfulSyncTime is refreshed at most this often when nothing else changed, so an
    # unchanged sync writes nothing; the exact time is in the last-success metric.
    heartbeat: timedelta | None = None

    @property
    def heartbeat_period(self) -> timedelta:
        return self.heartbeat if self.heartbeat is not None else self.stale_after / 2


@dataclass
class FederationPlan:
    """What a dry-run sync would do for one federation."""

    name: str
    actions: list[Action] = field(default_factory=list)
    status_changes: list[FieldChange] = field(default_factory=list)
    error: str = ""


@dataclass
class SyncResult:
    federation: str
    ok: bool
    stage: str = ""
    message: str = ""
    duration: float = 0.0
    interrupted: bool = False
    trust_domain: str = ""
    trusted_pems: tuple[str, ...] = ()
    plan: FederationPlan | None = None


@dataclass
class _Memory:
    """What the process remembers between syncs (status is the fallback after a restart)."""

    first_attempt: datetime | None = None
    last_success: datetime | None = None


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
    ) -> None:
        self.store = store
        self.settings = settings
        self.keypair = keypair
        self.fetcher = fetcher or Fetcher()
        self.retry = retry or Retry()
        self.metrics = metrics or ReconcilerMetrics()
        self.events = events_recorder or EventRecorder(store, settings.namespace)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.applier = Applier(store, self.retry, on_write=self.metrics.write)
        self._memory: dict[str, _Memory] = {}
        self._lock = threading.Lock()

    def _remember(self, name: str) -> _Memory:
        with self._lock:
            return self._memory.setdefault(name, _Memory())

    def forget(self, name: str) -> None:
        with self._lock:
            self._memory.pop(name, None)

    # -- stages ------------------------------------------------------------------------------

    def fetch_public(self, spec: dict[str, Any], tls: TLSSettings) -> PublicMetadata:
        url = endpoint_url(str(spec.get("metadataEndpoint") or ""), PUBLIC_PATH)
        response = self.fetcher.get(url, tls=tls)
        if response.status != 200:
            raise FetchError(
                conditions.NON_OK_RESPONSE,
                f"HTTP status {response.status} when fetching public metadata",
                status=response.status,
                body=response.body,
            )
        try:
            data = documents.decode_json(response.body, "public metadata")
        except DocumentError as error:
            raise FetchError(conditions.INVALID_JSON, str(error)) from error
        try:
            return documents.parse_public(data)
        except DocumentError as error:
            raise FetchError(conditions.INVALID_PUBLIC, str(error)) from error

    def fetch_private(self, spec: dict[str, Any], tls: TLSSettings, public: PublicMetadata) -> PrivateMetadata:
        try:
            token = tokens.issue(
                self.keypair.private_key,
                subject=self.settings.cluster_uuid,
                audience=public.cluster_uuid,
                now=int(self.clock().timestamp()),
                issuer=self.settings.issuer,
            )
        except Exception as error:  # any signing failure is reported in status, never raised
            raise FetchError(conditions.TOKEN_GENERATION_FAILED, f"cannot sign the JWT: {error}") from error
        url = endpoint_url(str(spec.get("metadataEndpoint") or ""), PRIVATE_PATH)
        response = self.fetcher.get(url, tls=tls, headers={"Authorization": f"Bearer {token}"})
        if response.status == 401:
            said = _printable(response.body)
            # Almost always the remote has no IstioFederation for us yet; but a token refused for
            # its times means clock skew, and sending the admin to create objects would mislead.
            timing = any(word in said.lower() for word in ("expired", "not yet valid", "nbf"))
            hint = CLOCK_SKEW_HINT if timing else UNKNOWN_CLUSTER_HINT
            raise FetchError(
                conditions.NON_OK_RESPONSE,
                f"HTTP status 401 when fetching private metadata: {hint}"
                + (f" (the remote said: {said})" if said else ""),
                status=401,
            )
        if response.status != 200:
            raise FetchError(
                conditions.NON_OK_RESPONSE,
                f"HTTP status {response.status} when fetching private metadata",
                status=response.status,
            )
        try:
            data = documents.decode_json(response.body, "private metadata")
        except DocumentError as error:
            raise FetchError(conditions.INVALID_JSON, str(error)) from error
        try:
            return documents.parse_private(data)
        except DocumentError as error:
            raise FetchError(conditions.INVALID_PRIVATE, str(error)) from error

    # -- the sync ----------------------------------------------------------------------------

    def sync(self, federation: KubeObject, *, dry_run: bool = False) -> SyncResult:
        started = time.monotonic()
        name = resources.name_of(federation)
        try:
            result = self._sync(federation, dry_run=dry_run)
        except Interrupted:
            log.info("sync interrupted by shutdown federation=%s", name)
            result = SyncResult(name, ok=False, stage="interrupted", message="shutdown", interrupted=True)
        result.duration = time.monotonic() - started
        if not dry_run:
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

    def _sync(self, federation: KubeObject, *, dry_run: bool) -> SyncResult:
        name = resources.name_of(federation)
        spec = resources.spec(federation)
        raw_status = federation.get("status")
        old_status: dict[str, Any] = copy.deepcopy(raw_status) if isinstance(raw_status, dict) else {}
        now = self.clock()
        memory = self._remember(name)
        if memory.first_attempt is None:
            memory.first_attempt = parse_time(str(resources.meta(federation).get("creationTimestamp") or "")) or now
        trust_domain = str(spec.get("trustDomain") or "").lower()
        metadata_settings = spec.get("metadata") if isinstance(spec.get("metadata"), dict) else {}
        assert isinstance(metadata_settings, dict)
        tls = TLSSettings(str(metadata_settings.get("ca") or ""), bool(metadata_settings.get("insecureSkipVerify")))

        updates: list[Condition] = []
        public: PublicMetadata | None = None
        private: PrivateMetadata | None = None
        failed_stage, failure = "", ""

        problem = self._configuration_problem(spec, trust_domain)
        if problem:
            failed_stage, failure = "public", problem
            updates += [
                Condition(conditions.PUBLIC, conditions.FALSE, conditions.CONFIGURATION_ERROR, problem),
                conditions.private_awaiting_public(),
            ]
        else:
            try:
                public = self.fetch_public(spec, tls)
                if public.cluster_uuid == self.settings.cluster_uuid:
                    public = None
                    raise FetchError(
                        conditions.INVALID_PUBLIC,
                        f"the endpoint serves this cluster's own metadata (clusterUUID {self.settings.cluster_uuid}): "
                        "point spec.metadataEndpoint at the remote cluster",
                    )
                updates.append(conditions.public_succeeded())
            except FetchError as error:
                failed_stage, failure = "public", error.message
                updates += [
                    Condition(conditions.PUBLIC, conditions.FALSE, error.reason, error.message),
                    conditions.private_awaiting_public(),
                ]
            if public is not None:
                try:
                    private = self.fetch_private(spec, tls, public)
                    updates.append(conditions.private_succeeded())
                except FetchError as error:
                    failed_stage, failure = "private", error.message
                    updates.append(Condition(conditions.PRIVATE, conditions.FALSE, error.reason, error.message))

        previous_services = _services_by_host(old_status)
        services: list[dict[str, str]] | None = None
        outcome: ApplyOutcome | None = None
        imported = int(old_status.get("importedServices") or 0)
        expired = False

        if private is not None and public is not None:
            plan = desired.desired_state(
                private,
                desired.FederationSettings(
                    federation_name=name,
                    namespace=self.settings.namespace,
                    trust_domain=trust_domain,
                    remote_cluster_uuid=public.cluster_uuid,
                    local_trust_domain=self.settings.local_trust_domain,
                    other_trust_domains=self._other_trust_domains(name),
                ),
            )
            outcome = self.applier.apply(name, plan.objects, gc=True, dry_run=dry_run)
            services = _service_states(plan, outcome)
            imported = sum(1 for service in services if service["state"] == STATE_IMPORTED)
            skipped = [s["hostname"] for s in services if s["state"] in (STATE_REFUSED, STATE_CONFLICT)]
            denied = [s["hostname"] for s in services if s["state"] == STATE_DENIED]
            failed = [s["hostname"] for s in services if s["state"] == STATE_FAILED]
            updates.append(conditions.synced(imported=imported, skipped=skipped, denied=denied, failed=failed))
            if failed:
                failed_stage, failure = "apply", f"could not apply {', '.join(failed)}"
        else:
            updates.append(conditions.synced_awaiting())
            outcome, expired = self._maybe_expire(name, old_status, memory, now, dry_run=dry_run)
            if expired:
                services, imported = [], 0

        succeeded = private is not None and outcome is not None and outcome.complete and not failed_stage
        last_success = now if succeeded else memory.last_success or parse_time(
            str(old_status.get("lastSuccessfulSyncTime") or "")
        )
        if succeeded and not dry_run:
            memory.last_success = now
        age = (now - last_success) if last_success else (now - memory.first_attempt)
        stale = conditions.stale(
            last_success=format_time(last_success) if last_success else None,
            age=age,
            stale_after=self.settings.stale_after,
            expire_after=self.settings.expire_after,
        )
        updates.append(stale)
        updates.append(conditions.ready(updates, imported=imported))

        trusted = [t for t in (TrustedCA.from_json(x) for x in old_status.get("trustedRootCAs") or []) if t]
        if public is not None:
            trusted = meshconfig.rotate(trusted, public.root_ca, now, self.settings.ca_overlap)
        else:
            trusted = meshconfig.expire(trusted, now, self.settings.ca_overlap)

        new_status = copy.deepcopy(old_status)
        cache = new_status.setdefault("metadataCache", {}) if (public or private) else new_status.get("metadataCache")
        if public is not None and isinstance(cache, dict):
            cache["public"] = public.to_json()
        if private is not None and isinstance(cache, dict):
            cache["private"] = private.to_json()
        if services is not None:
            new_status["services"] = services
            new_status["importedServices"] = imported
        if trusted:
            new_status["trustedRootCAs"] = [t.to_json() for t in trusted]
        else:
            new_status.pop("trustedRootCAs", None)
        generation = resources.meta(federation).get("generation")
        new_status["conditions"] = conditions.merge(
            old_status.get("conditions") or [],
            updates,
            now=format_time(now),
            generation=int(generation) if isinstance(generation, int) else None,
        )
        if succeeded:
            previous = parse_time(str(old_status.get("lastSuccessfulSyncTime") or ""))
            changed_otherwise = new_status != old_status
            if previous is None or changed_otherwise or now - previous >= self.settings.heartbeat_period:
                new_status["lastSuccessfulSyncTime"] = format_time(now)

        result = SyncResult(
            name,
            ok=succeeded,
            stage="" if succeeded else failed_stage or "apply",
            message="" if succeeded else failure,
            trust_domain=trust_domain,
            trusted_pems=tuple(t.pem for t in trusted),
        )
        if dry_run:
            result.plan = FederationPlan(
                name,
                actions=list(outcome.actions) if outcome else [],
                status_changes=field_diff(old_status, new_status, "status"),
                error=failure,
            )
            return result

        self._record_metrics(
            name,
            failed_stage=failed_stage,
            public=public,
            private=private,
            outcome=outcome,
            imported=imported,
            stale=stale,
            succeeded=succeeded,
            now=now,
        )
        if new_status != old_status:
            patch = _merge_patch_for(old_status, new_status)
            try:
                self.retry.run(
                    lambda _fresh: self.store.patch_status(resources.ISTIO_FEDERATION, "", name, {"status": patch}),
                    what=f"status of IstioFederation {name}",
                )
                self.metrics.write(name, "patch")
            except StoreError as error:
                log.error("could not write status federation=%s: %s", name, error)
                result.ok = False
                result.stage, result.message = result.stage or "apply", f"status write failed: {error}"
        self._emit_events(
            federation,
            old_status=old_status,
            new_status=new_status,
            previous_services=previous_services,
            services=services,
            outcome=outcome,
            expired=expired,
        )
        return result

    # -- helpers -----------------------------------------------------------------------------

    def _configuration_problem(self, spec: dict[str, Any], trust_domain: str) -> str:
        if not trust_domain:
            return "spec.trustDomain is empty: set the remote cluster's trust domain"
        if trust_domain == self.settings.local_trust_domain.lower():
            return (
                f"spec.trustDomain {trust_domain} is this cluster's own trust domain: "
                "an IstioFederation names a remote cluster"
            )
        if not str(spec.get("metadataEndpoint") or "").strip():
            return "spec.metadataEndpoint is empty: set the remote's https://…/metadata/ URL"
        return ""

    def _other_trust_domains(self, name: str) -> tuple[str, ...]:
        domains = []
        for other in self.store.list(resources.ISTIO_FEDERATION):
            if resources.name_of(other) == name:
                continue
            domain = resources.spec(other).get("trustDomain")
            if isinstance(domain, str) and domain:
                domains.append(domain.lower())
        return tuple(sorted(set(domains)))

    def _maybe_expire(
        self, name: str, old_status: dict[str, Any], memory: _Memory, now: datetime, *, dry_run: bool
    ) -> tuple[ApplyOutcome | None, bool]:
        """With --expire-after, remove a federation's objects once its last success is that old."""
        if self.settings.expire_after is None:
            return None, False
        last = memory.last_success or parse_time(str(old_status.get("lastSuccessfulSyncTime") or ""))
        if last is None or now - last < self.settings.expire_after:
            return None, False
        if not self.applier.owned(name):
            return None, False
        log.warning("expiring objects federation=%s: last successful sync %s", name, format_time(last))
        return self.applier.apply(name, [], gc=True, dry_run=dry_run), True

    def _record_metrics(
        self,
        name: str,
        *,
        failed_stage: str,
        public: PublicMetadata | None,
        private: PrivateMetadata | None,
        outcome: ApplyOutcome | None,
        imported: int,
        stale: Condition,
        succeeded: bool,
        now: datetime,
    ) -> None:
        if failed_stage:
            self.metrics.fetch_errors.labels(federation=name, stage=failed_stage).inc()
        elif outcome is not None and not outcome.complete:
            self.metrics.fetch_errors.labels(federation=name, stage="apply").inc()
        self.metrics.endpoint_up.labels(federation=name).set(1 if public is not None and private is not None else 0)
        self.metrics.imported_services.labels(federation=name).set(imported)
        self.metrics.stale.labels(federation=name).set(1 if stale.status == conditions.TRUE else 0)
        if succeeded:
            self.metrics.last_success.labels(federation=name).set(now.timestamp())

    def _emit_events(
        self,
        federation: KubeObject,
        *,
        old_status: dict[str, Any],
        new_status: dict[str, Any],
        previous_services: dict[str, dict[str, str]],
        services: list[dict[str, str]] | None,
        outcome: ApplyOutcome | None,
        expired: bool,
    ) -> None:
        """Events on transitions only, so a steady state records nothing."""
        for service in services or []:
            before = previous_services.get(service["hostname"])
            unchanged = before is not None and (before.get("state"), before.get("message")) == (
                service["state"],
                service["message"],
            )
            if service["state"] == STATE_IMPORTED or unchanged:
                continue
            reason = {
                STATE_REFUSED: "HostRefused",
                STATE_DENIED: "ServiceDenied",
                STATE_CONFLICT: "ServiceConflict",
                STATE_FAILED: "ServiceFailed",
            }.get(service["state"], "ServiceSkipped")
            self.events.record(
                federation,
                event_type=events.WARNING,
                reason=reason,
                message=f"{service['hostname']}: {service['message']}",
            )
        if outcome is not None and outcome.actions:
            past = {"create": "created", "update": "updated", "delete": "deleted"}
            summary = ", ".join(
                f"{sum(1 for a in outcome.actions if a.verb == verb)} {word}"
                for verb, word in past.items()
                if any(a.verb == verb for a in outcome.actions)
            )
            self.events.record(
                federation,
                event_type=events.NORMAL,
                reason="Expired" if expired else "Applied",
                message=f"objects {summary}" + (" (--expire-after reached)" if expired else ""),
            )
        old_ready = conditions.find(old_status.get("conditions") or [], conditions.READY)
        new_ready = conditions.find(new_status.get("conditions") or [], conditions.READY)
        if new_ready is not None and (old_ready is None or old_ready.get("status") != new_ready.get("status")):
            ok = new_ready.get("status") == conditions.TRUE
            self.events.record(
                federation,
                event_type=events.NORMAL if ok else events.WARNING,
                reason="Ready" if ok else str(new_ready.get("reason") or "NotReady"),
                message=str(new_ready.get("message") or ""),
            )


def _printable(body: bytes, limit: int = 200) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    text = "".join(char if char.isprintable() else " " for char in text)
    return text[:limit]


def _services_by_host(status: dict[str, Any]) -> dict[str, dict[str, str]]:
    services = status.get("services")
    if not isinstance(services, list):
        return {}
    return {str(s.get("hostname")): s for s in services if isinstance(s, dict)}


def _service_states(plan: desired.DesiredState, outcome: ApplyOutcome) -> list[dict[str, str]]:
    states: list[dict[str, str]] = []
    for hostname in plan.imported:
        if hostname in outcome.denied:
            states.append({"hostname": hostname, "state": STATE_DENIED, "message": outcome.denied[hostname]})
        elif hostname in outcome.blocked:
            states.append({"hostname": hostname, "state": STATE_CONFLICT, "message": outcome.blocked[hostname]})
        elif hostname in outcome.failed:
            states.append({"hostname": hostname, "state": STATE_FAILED, "message": outcome.failed[hostname]})
        else:
            states.append({"hostname": hostname, "state": STATE_IMPORTED, "message": ""})
    for skipped in plan.skipped:
        states.append({"hostname": skipped.hostname, "state": STATE_REFUSED, "message": skipped.message})
    return sorted(states, key=lambda s: s["hostname"])


def _merge_patch_for(old: Any, new: Any) -> Any:
    """The RFC 7386 merge patch that turns ``old`` into ``new`` (lists are replaced whole)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return copy.deepcopy(new)
    patch: dict[str, Any] = {}
    for key in old:
        if key not in new:
            patch[key] = None
    for key, value in new.items():
        if key not in old:
            patch[key] = copy.deepcopy(value)
        elif old[key] != value:
            patch[key] = _merge_patch_for(old[key], value)
    return patch
