"""Leader election through a ``coordination.k8s.io/v1`` Lease, as client-go's leaderelection does.

Only the holder of an unexpired Lease syncs.  The holder renews every ``renew_period``; anyone may
take over a Lease whose ``renewTime + leaseDurationSeconds`` has passed.  Every change is an update
with the Lease's resourceVersion, so two candidates racing for it cannot both win: the loser gets a
409 and stays a follower until the next round.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from federation import resources
from federation.resources import KubeObject
from federation.store import Conflict, ObjectStore, StoreError

log = logging.getLogger(__name__)

LEASE_NAME = "istio-federation-reconciler"


def _micro_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def default_identity() -> str:
    return f"{socket.gethostname()}_{os.getpid()}_{uuid.uuid4().hex[:8]}"


class LeaderElector:
    def __init__(
        self,
        store: ObjectStore,
        namespace: str,
        *,
        identity: str | None = None,
        lease_duration: timedelta = timedelta(seconds=15),
        clock: Callable[[], datetime] | None = None,
        name: str = LEASE_NAME,
    ) -> None:
        self.store = store
        self.namespace = namespace
        self.identity = identity or default_identity()
        self.lease_duration = lease_duration
        self.clock = clock or (lambda: datetime.now(UTC))
        self.name = name
        self.is_leader = False

    @property
    def renew_period(self) -> float:
        return self.lease_duration.total_seconds() / 3

    def _lease(self, now: datetime, *, acquired: str | None, transitions: int) -> dict[str, object]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.lease_duration.total_seconds()),
            "acquireTime": acquired or _micro_time(now),
            "renewTime": _micro_time(now),
            "leaseTransitions": transitions,
        }

    def try_acquire_or_renew(self) -> bool:
        """One election round; returns whether this process leads now."""
        now = self.clock()
        try:
            current = self.store.read(resources.LEASE, self.namespace, self.name)
            if current is None:
                lease: KubeObject = {
                    "apiVersion": resources.LEASE.api_version,
                    "kind": resources.LEASE.kind,
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": self._lease(now, acquired=None, transitions=0),
                }
                self.store.create(lease)
                return self._became(True)
            spec = resources.spec(current)
            holder = spec.get("holderIdentity")
            renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
            duration = spec.get("leaseDurationSeconds")
            default = int(self.lease_duration.total_seconds())
            seconds = duration if isinstance(duration, int) and duration > 0 else default
            expired = renewed is None or renewed + timedelta(seconds=seconds) <= now
            if holder != self.identity and holder and not expired:
                return self._became(False)
            transitions = spec.get("leaseTransitions")
            count = transitions if isinstance(transitions, int) else 0
            updated = dict(current)
            if holder == self.identity:
                updated["spec"] = self._lease(now, acquired=str(spec.get("acquireTime") or ""), transitions=count)
            else:
                updated["spec"] = self._lease(now, acquired=None, transitions=count + 1)
            self.store.update(updated)
            return self._became(True)
        except Conflict:
            return self._became(False)
        except StoreError as error:
            # Cannot tell whether we still hold it: stop acting until a renewal succeeds.
            log.warning("leader election: cannot read or renew Lease %s/%s: %s", self.namespace, self.name, error)
            return self._became(False)

    def release(self) -> None:
        """Give the Lease up on shutdown so a standby takes over at once instead of after expiry."""
        if not self.is_leader:
            return
        try:
            current = self.store.read(resources.LEASE, self.namespace, self.name)
            if current is None or resources.spec(current).get("holderIdentity") != self.identity:
                return
            updated = dict(current)
            spec = dict(resources.spec(current))
            spec["holderIdentity"] = ""
            spec["leaseDurationSeconds"] = 1
            updated["spec"] = spec
            self.store.update(updated)
        except StoreError as error:
            log.info("leader election: could not release the Lease: %s", error)
        self.is_leader = False

    def _became(self, leader: bool) -> bool:
        if leader != self.is_leader:
            log.info(
                "leader election: %s Lease %s/%s as %s",
                "acquired" if leader else "not holding",
                self.namespace,
                self.name,
                self.identity,
            )
        self.is_leader = leader
        return leader
