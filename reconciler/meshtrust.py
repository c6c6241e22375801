"""Keep the remote root CAs of all federations in Istio's mesh config (ConfigMap ``istio``).

The ConfigMap is shared by every federation, so it is written by one step under one lock, from
the trusted roots of all federations that exist. A deleted federation's entries are removed once no
managed ServiceEntry routes into its trust domain any more (``meshconfig.still_routed``).
Roots come from the sync that just ran, else from the federation's ``status.trustedRootCAs``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from federation import meshconfig, ownership, resources
from federation.istio.hosts import hosts_of
from federation.meshconfig import TrustedCA
from federation.resources import KubeObject
from federation.store import ObjectStore, StoreError, look_list
from reconciler.apply import Action
from reconciler.objectdiff import FieldChange, field_diff
from reconciler.retry import Retry

log = logging.getLogger(__name__)


@dataclass
class MeshTrustOutcome:
    action: Action | None = None
    error: str = ""


class MeshTrust:
    def __init__(
        self,
        store: ObjectStore,
        retry: Retry,
        *,
        namespace: str,
        local_trust_domain: str,
        create_if_absent: bool,
    ) -> None:
        self.store = store
        self.retry = retry
        self.namespace = namespace
        self.local_trust_domain = local_trust_domain.lower()
        # In a real cluster the ConfigMap belongs to the Istio installation: creating it ourselves
        # would make a later Istio install fail, so only state mode creates it.
        self.create_if_absent = create_if_absent
        self._lock = threading.Lock()  # guards _latest
        self._write_lock = threading.Lock()  # one writer of the shared ConfigMap at a time
        self._latest: dict[str, tuple[str, tuple[str, ...]]] = {}

    def remember(self, federation: str, trust_domain: str, pems: tuple[str, ...]) -> None:
        with self._lock:
            self._latest[federation] = (trust_domain.lower(), pems)

    def forget(self, federation: str) -> None:
        with self._lock:
            self._latest.pop(federation, None)

    def wanted(self) -> dict[str, list[str]]:
        """Trust domain → PEMs, for every existing federation with known roots."""
        wanted: dict[str, list[str]] = {}
        with self._lock:
            latest = dict(self._latest)
        for federation in self.store.list(resources.ISTIO_FEDERATION):
            name = resources.name_of(federation)
            domain = str(resources.spec(federation).get("trustDomain") or "").lower()
            if name in latest and latest[name][0] == domain:
                pems = list(latest[name][1])
            else:
                status = federation.get("status") if isinstance(federation.get("status"), dict) else {}
                assert isinstance(status, dict)
                entries = [TrustedCA.from_json(x) for x in status.get("trustedRootCAs") or []]
                pems = [entry.pem for entry in entries if entry is not None]
            # Never let a remote's root speak for our own domain, whatever a federation says.
            if not domain or domain == self.local_trust_domain or not pems:
                continue
            wanted.setdefault(domain, [])
            wanted[domain].extend(pem for pem in pems if not any(meshconfig.same_pem(pem, p) for p in wanted[domain]))
        return wanted

    def reconcile(self) -> MeshTrustOutcome:
        with self._write_lock:
            wanted = self.wanted()
            try:
                action = self.retry.run(lambda fresh: self._attempt(wanted, fresh), what="ConfigMap istio")
            except (StoreError, meshconfig.MeshConfigError) as error:
                log.error("could not update mesh trust in ConfigMap %s/istio: %s", self.namespace, error)
                return MeshTrustOutcome(error=str(error))
        return MeshTrustOutcome(action)

    def _attempt(self, wanted: dict[str, list[str]], fresh: bool) -> Action | None:
        self.retry.check_stop()
        read = self.store.read if fresh else self.store.get
        current = read(resources.CONFIG_MAP, self.namespace, meshconfig.CONFIG_MAP_NAME)
        if current is None and not fresh:
            current = self.store.read(resources.CONFIG_MAP, self.namespace, meshconfig.CONFIG_MAP_NAME)
        if current is None and not self.create_if_absent:
            if wanted:
                log.warning(
                    "ConfigMap %s/%s does not exist: remote root CAs are not trusted until Istio creates it",
                    self.namespace,
                    meshconfig.CONFIG_MAP_NAME,
                )
            return None
        wanted = meshconfig.still_routed(current, wanted, self._routed_hosts(current, wanted))
        updated = meshconfig.desired_config_map(current, wanted, namespace=self.namespace)
        if updated is None:
            return None
        verb = "create" if current is None else "update"
        action = Action(
            verb,
            resources.CONFIG_MAP,
            self.namespace,
            meshconfig.CONFIG_MAP_NAME,
            ",".join(sorted(wanted)),
            updated,
            tuple(_changes(current, updated)),
        )
        if current is None:
            self.store.create(updated)
        else:
            self.store.update(updated)
        log.info(
            "%s ConfigMap %s/%s trust_domains=%s",
            "created" if current is None else "updated",
            self.namespace,
            meshconfig.CONFIG_MAP_NAME,
            ",".join(sorted(wanted)) or "-",
        )
        return action


    def _routed_hosts(self, current: KubeObject | None, wanted: dict[str, list[str]]) -> list[str]:
        """Hosts of managed ServiceEntries, read only when a domain we trusted is about to go."""
        if not (meshconfig.managed_domains(current) - set(wanted)):
            return []
        # Looked at, not modified: the cache's own objects, without a copy of each.
        managed = look_list(self.store, resources.SERVICE_ENTRY, None, ownership.selector())
        return [host for obj in managed for host in hosts_of(obj)]


def _changes(current: KubeObject | None, updated: KubeObject) -> list[FieldChange]:
    def view(obj: KubeObject | None) -> dict[str, object]:
        if obj is None:
            return {}
        data = obj.get("data") if isinstance(obj.get("data"), dict) else {}
        assert isinstance(data, dict)
        return {
            "caCertificates": meshconfig.mesh_entries(str(data.get(meshconfig.MESH_KEY) or "")),
            "annotations": resources.annotations_of(obj),
        }

    return field_diff(view(current), view(updated))
