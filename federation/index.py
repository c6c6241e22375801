"""In-memory index of the cross-object facts admission and reconcile need.

Fed by the store's list and watch (``apply``, ``replace_kind``), it answers "which ServiceEntries
claim this host", "which federation owns this trust domain / endpoint", in time independent of the
number of stored objects, so an admission request never lists anything.

Locking.  Admission requests read the index on the hot path while the watch threads write it, so
nothing that grows with the input, or with the number of objects, happens under the lock readers
take (``_lock``):

* the objects under one key (a host, a trust domain, an owner, a kind) form a :class:`_Group`.  A
  reader does not copy a group under the lock: it *borrows* it (marks it lent and takes a reference,
  O(1)) and sorts or copies it after releasing the lock.  A writer never mutates a lent group: it
  copies it, outside the lock, and swaps the copy in (O(1) under the lock);
* writers are serialised by their own lock (``_write_lock``), so they may read the index and build
  new groups without holding ``_lock``; a relist builds the whole index of its kind outside the lock
  and swaps it in;
* a question's own input (normalising a host, finding the parent domains that could be trust
  domains) is prepared before the lock is taken: under it a host costs at most one dictionary lookup
  per candidate parent, and a name longer than a DNS name (253 characters) has at most 254 of them,
  whatever its length.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from federation import ownership, resources
from federation.istio.hosts import hosts_of
from federation.resources import KubeObject, ObjectKey

MAX_DOMAIN_LENGTH: Final = 253
"""The longest DNS name, hence the longest trust domain a federation can hold."""

_FEDERATION: Final = resources.ISTIO_FEDERATION.kind
_SERVICE_ENTRY: Final = resources.SERVICE_ENTRY.kind
_NOTHING: Final[Mapping[Any, KubeObject]] = {}


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


def domain_candidates(host: str) -> list[str]:
    """The names a trust domain owning ``host`` could have: the host itself and each parent domain,
    longest first, but only those of at most :data:`MAX_DOMAIN_LENGTH` characters (a longer one
    cannot be a trust domain).  So there are at most 254, each at most 253 characters long, however
    long ``host`` is.  ``*.`` in front (a wildcard host) is ignored.
    """
    name = normalize_host(host).removeprefix("*.")
    candidates = [name] if 0 < len(name) <= MAX_DOMAIN_LENGTH else []
    # The dot at ``position`` starts the parent name[position + 1:], which is short enough when
    # position >= len(name) - MAX_DOMAIN_LENGTH - 1: dots before that are never looked at.
    position = name.find(".", max(len(name) - MAX_DOMAIN_LENGTH - 1, 0))
    while position != -1:
        if position + 1 < len(name):
            candidates.append(name[position + 1 :])
        position = name.find(".", position + 1)
    return candidates


class _Group:
    """The objects under one key of the index, by a sortable member key.

    The writer mutates ``members`` in place until a reader borrows it (``lent``); from then on the
    dict belongs to its readers and never changes again: the writer replaces the whole group.
    """

    __slots__ = ("lent", "members")

    def __init__(self, members: dict[Any, KubeObject] | None = None) -> None:
        self.members: dict[Any, KubeObject] = members if members is not None else {}
        self.lent = False


_Groups = dict[Any, _Group]


class ObjectIndex:
    """Thread-safe: the watch threads write, request threads read (see the module's note on locking)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # readers and writers; held only for O(1) steps
        self._write_lock = threading.Lock()  # serialises writers
        self._by_kind: _Groups = {}  # kind -> every indexed object of that kind, by ObjectKey
        self._by_host: _Groups = {}  # normalised host -> ServiceEntries declaring it
        self._by_owner: _Groups = {}  # IstioFederation name -> the ServiceEntries it manages
        self._by_trust_domain: _Groups = {}  # normalised trust domain -> IstioFederations, by name
        self._by_endpoint: _Groups = {}  # normalised metadata endpoint -> IstioFederations, by name

    # -- feeding -------------------------------------------------------------------------------

    def apply(self, event: str, obj: KubeObject) -> None:
        if obj.get("kind") not in (_FEDERATION, _SERVICE_ENTRY):
            return
        with self._write_lock:
            key = ObjectKey.of(obj)
            old = self._by_kind.get(key.kind, _Group()).members.get(key)  # writers may read without _lock
            if old is not None:
                self._unindex(key, old)
            if event != "DELETED":
                self._index(key, obj)

    def replace_kind(self, kind: str, objects: list[KubeObject]) -> None:
        """Replace every indexed object of one kind, keeping the others (a relist of one resource).

        The new index of that kind is built without the readers' lock and swapped in at once.
        """
        with self._write_lock:
            every: dict[Any, KubeObject] = {}
            maps: dict[str, dict[Any, dict[Any, KubeObject]]] = {}
            for obj in objects:
                if obj.get("kind") != kind:
                    continue
                key = ObjectKey.of(obj)
                every[key] = obj
                for name, index_key, member in _entries(key, obj):
                    maps.setdefault(name, {}).setdefault(index_key, {})[member] = obj
            fresh = {name: {k: _Group(m) for k, m in mapping.items()} for name, mapping in maps.items()}
            names = ("_by_trust_domain", "_by_endpoint") if kind == _FEDERATION else ("_by_host", "_by_owner")
            with self._lock:
                self._by_kind[kind] = _Group(every)
                for name in names:
                    setattr(self, name, fresh.get(name, {}))

    def _index(self, key: ObjectKey, obj: KubeObject) -> None:
        self._put(self._by_kind, key.kind, key, obj)
        for name, index_key, member in _entries(key, obj):
            self._put(getattr(self, name), index_key, member, obj)

    def _unindex(self, key: ObjectKey, old: KubeObject) -> None:
        self._drop(self._by_kind, key.kind, key)
        for name, index_key, member in _entries(key, old):
            self._drop(getattr(self, name), index_key, member)

    def _put(self, groups: _Groups, key: Any, member: Any, obj: KubeObject) -> None:
        """Add ``member`` to the group ``key`` (writers only, under ``_write_lock``)."""
        with self._lock:
            group = groups.get(key)
            if group is None:
                groups[key] = _Group({member: obj})
                return
            if not group.lent:
                group.members[member] = obj
                return
        fresh = dict(group.members)  # outside the readers' lock: a lent group never changes
        fresh[member] = obj
        with self._lock:
            groups[key] = _Group(fresh)

    def _drop(self, groups: _Groups, key: Any, member: Any) -> None:
        """Remove ``member`` from the group ``key`` (writers only, under ``_write_lock``)."""
        with self._lock:
            group = groups.get(key)
            if group is None or member not in group.members:
                return
            if len(group.members) == 1:
                del groups[key]
                return
            if not group.lent:
                del group.members[member]
                return
        fresh = dict(group.members)
        del fresh[member]
        with self._lock:
            groups[key] = _Group(fresh)

    # -- questions -----------------------------------------------------------------------------

    @staticmethod
    def _borrow(groups: _Groups, key: Any) -> Mapping[Any, KubeObject]:
        """The members of one group, lent to a reader: call with ``_lock`` held; O(1)."""
        group = groups.get(key)
        if group is None:
            return _NOTHING
        group.lent = True
        return group.members

    def federation(self, name: str) -> KubeObject | None:
        with self._lock:
            group = self._by_kind.get(_FEDERATION)
            return group.members.get(ObjectKey(_FEDERATION, "", name)) if group is not None else None

    def federations(self) -> list[KubeObject]:
        with self._lock:
            members = self._borrow(self._by_kind, _FEDERATION)
        return _sorted(members)

    def federations_by_trust_domain(self, trust_domain: str) -> list[KubeObject]:
        key = normalize_host(trust_domain)
        with self._lock:
            members = self._borrow(self._by_trust_domain, key)
        return _sorted(members)

    def federations_by_endpoint(self, endpoint: str) -> list[KubeObject]:
        key = normalize_endpoint(endpoint)
        with self._lock:
            members = self._borrow(self._by_endpoint, key)
        return _sorted(members)

    def federation_for_host(self, host: str) -> KubeObject | None:
        """The federation whose trust domain is ``host`` or a parent of it (the longest wins).

        Under the lock, one lookup per candidate parent (:func:`domain_candidates`, at most 254);
        nothing depends on the number of federations, and the host's length only matters before.
        """
        candidates = domain_candidates(host)
        members: Mapping[Any, KubeObject] = _NOTHING
        with self._lock:
            for candidate in candidates:
                if candidate in self._by_trust_domain:
                    members = self._borrow(self._by_trust_domain, candidate)
                    break
        return members[min(members)] if members else None

    def service_entries_for_host(self, host: str) -> list[KubeObject]:
        key = normalize_host(host)
        with self._lock:
            members = self._borrow(self._by_host, key)
        return _sorted(members)

    def service_entries_owned_by(self, federation_name: str) -> list[KubeObject]:
        with self._lock:
            members = self._borrow(self._by_owner, federation_name)
        return _sorted(members)

    def counts(self) -> dict[str, int]:
        with self._lock:
            federations = self._by_kind.get(_FEDERATION)
            service_entries = self._by_kind.get(_SERVICE_ENTRY)
            return {
                "istiofederations": len(federations.members) if federations else 0,
                "serviceentries": len(service_entries.members) if service_entries else 0,
            }


def _sorted(members: Mapping[Any, KubeObject]) -> list[KubeObject]:
    """A borrowed group as a list in member order (called without the lock)."""
    return [members[member] for member in sorted(members)]


def _entries(key: ObjectKey, obj: KubeObject) -> Iterable[tuple[str, Any, Any]]:
    """Where ``obj`` is indexed besides its kind: (index attribute, key in that index, member key)."""
    spec = resources.spec(obj)
    if key.kind == _FEDERATION:
        trust_domain = spec.get("trustDomain")
        if isinstance(trust_domain, str) and trust_domain:
            yield "_by_trust_domain", normalize_host(trust_domain), key.name
        endpoint = spec.get("metadataEndpoint")
        if isinstance(endpoint, str) and endpoint:
            yield "_by_endpoint", normalize_endpoint(endpoint), key.name
        return
    for host in dict.fromkeys(normalize_host(host) for host in hosts_of(obj, kind=_SERVICE_ENTRY)):
        yield "_by_host", host, key
    owner = ownership.owning_federation(obj)
    if owner:
        yield "_by_owner", owner, key
