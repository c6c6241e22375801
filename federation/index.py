"""In-memory index of the cross-object facts admission and reconcile need.

Fed by the store's list and watch (``apply``), it answers "which ServiceEntries claim this host",
"which federation owns this trust domain / endpoint", in time independent of the number of
stored objects, so an admission request never lists anything.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from urllib.parse import urlsplit

from federation import ownership, resources
from federation.resources import KubeObject, ObjectKey


def normalize_endpoint(url: str) -> str:
    """Two spellings of one metadata endpoint compare equal: case, default port, trailing slash."""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return url.strip().lower()
    netloc = host if port in (None, 443) else f"{host}:{port}"
    path = parts.path.rstrip("/")
    return f"{parts.scheme.lower()}://{netloc}{path}"


def normalize_host(host: str) -> str:
    return host.lower().rstrip(".")


class ObjectIndex:
    """Thread-safe: the watch thread writes, request threads read."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._federations: dict[str, KubeObject] = {}
        self._service_entries: dict[ObjectKey, KubeObject] = {}
        self._by_host: dict[str, set[ObjectKey]] = defaultdict(set)
        self._by_trust_domain: dict[str, set[str]] = defaultdict(set)
        self._by_endpoint: dict[str, set[str]] = defaultdict(set)
        self._by_owner: dict[str, set[ObjectKey]] = defaultdict(set)

    # -- feeding -------------------------------------------------------------------------------

    def apply(self, event: str, obj: KubeObject) -> None:
        kind = obj.get("kind")
        if kind not in (resources.ISTIO_FEDERATION.kind, resources.SERVICE_ENTRY.kind):
            return
        with self._lock:
            self._remove(ObjectKey.of(obj))
            if event != "DELETED":
                self._add(obj)

    def replace_kind(self, kind: str, objects: list[KubeObject]) -> None:
        """Replace every indexed object of one kind, keeping the others (a relist of one resource)."""
        with self._lock:
            if kind == resources.ISTIO_FEDERATION.kind:
                stale = [ObjectKey(kind, "", name) for name in self._federations]
            else:
                stale = list(self._service_entries)
            for key in stale:
                self._remove(key)
            for obj in objects:
                self._add(obj)

    def _add(self, obj: KubeObject) -> None:
        key = ObjectKey.of(obj)
        spec = resources.spec(obj)
        if key.kind == resources.ISTIO_FEDERATION.kind:
            self._federations[key.name] = obj
            trust_domain = spec.get("trustDomain")
            if isinstance(trust_domain, str) and trust_domain:
                self._by_trust_domain[normalize_host(trust_domain)].add(key.name)
            endpoint = spec.get("metadataEndpoint")
            if isinstance(endpoint, str) and endpoint:
                self._by_endpoint[normalize_endpoint(endpoint)].add(key.name)
            return
        self._service_entries[key] = obj
        hosts = spec.get("hosts")
        for host in hosts if isinstance(hosts, list) else []:
            if isinstance(host, str):
                self._by_host[normalize_host(host)].add(key)
        owner = ownership.owning_federation(obj)
        if owner:
            self._by_owner[owner].add(key)

    def _remove(self, key: ObjectKey) -> None:
        if key.kind == resources.ISTIO_FEDERATION.kind:
            old = self._federations.pop(key.name, None)
            if old is None:
                return
            spec = resources.spec(old)
            _discard(self._by_trust_domain, normalize_host(str(spec.get("trustDomain") or "")), key.name)
            _discard(self._by_endpoint, normalize_endpoint(str(spec.get("metadataEndpoint") or "")), key.name)
            return
        old_entry = self._service_entries.pop(key, None)
        if old_entry is None:
            return
        hosts = resources.spec(old_entry).get("hosts")
        for host in hosts if isinstance(hosts, list) else []:
            if isinstance(host, str):
                _discard(self._by_host, normalize_host(host), key)
        owner = ownership.owning_federation(old_entry)
        if owner:
            _discard(self._by_owner, owner, key)

    # -- questions -----------------------------------------------------------------------------

    def federation(self, name: str) -> KubeObject | None:
        with self._lock:
            return self._federations.get(name)

    def federations(self) -> list[KubeObject]:
        with self._lock:
            return [self._federations[name] for name in sorted(self._federations)]

    def federations_by_trust_domain(self, trust_domain: str) -> list[KubeObject]:
        with self._lock:
            names = sorted(self._by_trust_domain.get(normalize_host(trust_domain), ()))
            return [self._federations[name] for name in names]

    def federations_by_endpoint(self, endpoint: str) -> list[KubeObject]:
        with self._lock:
            names = sorted(self._by_endpoint.get(normalize_endpoint(endpoint), ()))
            return [self._federations[name] for name in names]

    def federation_for_host(self, host: str) -> KubeObject | None:
        """The federation whose trust domain is ``host`` or a parent of it (the longest wins).

        Cost is the number of labels in ``host``, not the number of federations.
        """
        name = normalize_host(host).removeprefix("*.")
        with self._lock:
            while name:
                owners = self._by_trust_domain.get(name)
                if owners:
                    return self._federations[sorted(owners)[0]]
                _, _, name = name.partition(".")
        return None

    def service_entries_for_host(self, host: str) -> list[KubeObject]:
        with self._lock:
            keys = sorted(self._by_host.get(normalize_host(host), ()))
            return [self._service_entries[key] for key in keys]

    def service_entries_owned_by(self, federation_name: str) -> list[KubeObject]:
        with self._lock:
            keys = sorted(self._by_owner.get(federation_name, ()))
            return [self._service_entries[key] for key in keys]

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {"istiofederations": len(self._federations), "serviceentries": len(self._service_entries)}


def _discard(mapping: dict[str, set[str]] | dict[str, set[ObjectKey]], key: str, value: object) -> None:
    members = mapping.get(key)
    if members is None:
        return
    members.discard(value)
    if not members:
        del mapping[key]
