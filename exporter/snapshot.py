"""The documents the exporter serves, pre-rendered, and the keeper that rebuilds them on change.

A request never reads the store, let alone the API: it takes :attr:`SnapshotKeeper.current`, an
immutable :class:`Snapshot` whose bodies and ETags were computed when the cache last changed.
Rebuilding is a pure function of the cached objects (:func:`build`); the keeper only gathers
them, coalesces bursts of watch events into one rebuild, and swaps the reference.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from exporter import identity, published_gateways, published_services, trust
from exporter.settings import Settings
from exporter.skips import Skip
from federation import ownership, resources, selectors, spiffe
from federation.documents.private import PrivateMetadata
from federation.documents.public import PublicMetadata
from federation.resources import KubeObject
from federation.store import ObjectStore

log = logging.getLogger(__name__)

NOT_SYNCED = "the object cache is not synced yet"


@dataclass(frozen=True)
class Document:
    """A rendered JSON body and its strong ETag (a content hash, equal across replicas)."""

    body: bytes
    etag: str

    @classmethod
    def of(cls, value: Any) -> Document:
        # Indented like Deckhouse's MarshalIndent output, so `curl` shows something readable.
        body = (json.dumps(value, indent=2, sort_keys=False) + "\n").encode()
        return cls(body, hashlib.sha256(body).hexdigest()[:32])


@dataclass(frozen=True)
class Inputs:
    """The cached objects a snapshot is built from; gathered by :func:`gather`."""

    synced: bool
    public_services: tuple[KubeObject, ...] = ()
    gateway_services: tuple[KubeObject, ...] = ()
    gateway_pods: tuple[KubeObject, ...] = ()
    nodes: tuple[KubeObject, ...] = ()
    advertise_configmap: KubeObject | None = None
    root_ca_configmap: KubeObject | None = None
    keypair_secret: KubeObject | None = None
    keypair_dir_files: Mapping[str, str] = field(default_factory=dict)
    federations: tuple[KubeObject, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    generation: int
    synced: bool
    public: Document | None = None
    spiffe_bundle: Document | None = None
    private: Document | None = None
    known_keys: Mapping[str, ed25519.Ed25519PublicKey] = field(default_factory=dict)
    # Why a document is unavailable (the exporter is not ready while public or private is).
    problems: tuple[str, ...] = ()
    # Things left out or distrusted: logged once when they appear, counted by reason.
    skips: tuple[Skip, ...] = ()
    trust_problems: tuple[str, ...] = ()
    services: int = 0
    gateways: int = 0
    gateway_source: str = ""
    built_at: float = 0.0

    @property
    def ready(self) -> bool:
        return self.synced and self.public is not None and self.private is not None


EMPTY = Snapshot(generation=0, synced=False, problems=(NOT_SYNCED,))


def gather(store: ObjectStore, settings: Settings) -> Inputs:
    """Read the cache (never the API) for everything :func:`build` needs."""
    synced = store.synced
    gateway_services: list[KubeObject] = []
    pods: list[KubeObject] = []
    nodes: list[KubeObject] = []
    if not settings.advertise:
        gateway_services = store.list(resources.SERVICE, settings.gateway_namespace, settings.gateway_selector)
        if settings.inlet == published_gateways.INLET_NODE_PORT:
            pods = store.list(resources.POD, settings.gateway_namespace, settings.gateway_selector)
            nodes = store.list(resources.NODE)
    keypair_dir_files: dict[str, str] = {}
    if settings.keypair_dir is not None:
        keypair_dir_files = identity.read_keypair_dir(settings.keypair_dir)
    return Inputs(
        synced=synced,
        public_services=tuple(store.list(resources.SERVICE, None, ownership.PUBLIC_SERVICE_LABEL)),
        gateway_services=tuple(gateway_services),
        gateway_pods=tuple(pods),
        nodes=tuple(nodes),
        advertise_configmap=store.get(resources.CONFIG_MAP, settings.namespace, published_gateways.ADVERTISE_CONFIGMAP),
        root_ca_configmap=store.get(resources.CONFIG_MAP, settings.namespace, identity.ROOT_CA_CONFIGMAP),
        keypair_secret=(
            store.get(resources.SECRET, settings.namespace, identity.KEYPAIR_SECRET)
            if settings.keypair_dir is None
            else None
        ),
        keypair_dir_files=keypair_dir_files,
        federations=tuple(store.list(resources.ISTIO_FEDERATION)),
    )


def build(inputs: Inputs, settings: Settings, *, generation: int, now: float = 0.0) -> Snapshot:
    """The snapshot for ``inputs``: pure, so it is tested with plain lists of objects."""
    if not inputs.synced:
        return Snapshot(generation=generation, synced=False, problems=(NOT_SYNCED,), built_at=now)
    problems: list[str] = []
    found = identity.identity(
        namespace=settings.namespace,
        secret=inputs.keypair_secret,
        root_ca_configmap=inputs.root_ca_configmap,
        keypair_dir=settings.keypair_dir,
        keypair_dir_files=dict(inputs.keypair_dir_files),
    )
    problems.extend(found.problems)
    public = spiffe_bundle = None
    if found.identity is not None:
        public = Document.of(
            PublicMetadata(settings.cluster_uuid, found.identity.authn_key_pub, found.identity.root_ca).to_json()
        )
        try:
            bundle = spiffe.build_bundle(found.identity.root_ca, refresh_hint=settings.spiffe_refresh_hint)
            spiffe_bundle = Document.of(bundle.to_json())
        except spiffe.BundleError as error:
            problems.append(f"ConfigMap {settings.namespace}/{identity.ROOT_CA_CONFIGMAP}: {error}")

    services = published_services.public_services(inputs.public_services, settings.cluster_domain)
    gateways = published_gateways.ingress_gateways(
        advertise=settings.advertise,
        advertise_configmap=inputs.advertise_configmap,
        inlet=settings.inlet,
        # The store already filters by namespace and selector; filtering again keeps build()
        # correct for any input, e.g. a backend that caches the namespace whole.
        services=published_gateways.matching(
            inputs.gateway_services, settings.gateway_namespace, settings.gateway_selector
        ),
        pods=published_gateways.matching(inputs.gateway_pods, settings.gateway_namespace, settings.gateway_selector),
        nodes=inputs.nodes,
    )
    private = Document.of(PrivateMetadata(gateways.gateways, services.services).to_json())
    trusted = trust.known_keys(inputs.federations)
    return Snapshot(
        generation=generation,
        synced=True,
        public=public,
        spiffe_bundle=spiffe_bundle,
        private=private,
        known_keys=trusted.keys,
        problems=tuple(problems),
        skips=tuple(sorted(set(services.skips + gateways.skips))),
        trust_problems=trusted.problems,
        services=len(services.services),
        gateways=len(gateways.gateways),
        gateway_source=gateways.source,
        built_at=now,
    )


def validate_gateway_selector(text: str) -> str | None:
    """Why ``text`` is not a label selector, or None; checked once at start-up."""
    try:
        selectors.parse(text)
    except selectors.SelectorError as error:
        return str(error)
    return None


class SnapshotKeeper:
    """Keeps :attr:`current` equal to ``build(gather(store))``; thread-safe for readers.

    Watch events only set a flag; one background thread rebuilds, so a burst of events (the
    initial list of a big cluster) costs one rebuild, not one per object.  It also rebuilds every
    ``resync_interval`` seconds, which picks up rotated ``--keypair-dir`` files.
    """

    def __init__(
        self,
        store: ObjectStore,
        settings: Settings,
        *,
        resync_interval: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.settings = settings
        self.resync_interval = resync_interval
        self.clock = clock
        self._current = EMPTY
        self._changed = threading.Event()
        self._stopping = threading.Event()
        self._rebuilt = threading.Condition()
        self._thread: threading.Thread | None = None
        self._generation = 0

    @property
    def current(self) -> Snapshot:
        return self._current

    def start(self) -> None:
        # Subscribe before starting the store, so no event of the initial sync is missed.
        self.store.subscribe(self._on_event)
        self.store.start()
        self._thread = threading.Thread(target=self._run, name="exporter-snapshot", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._changed.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.store.stop()

    def _on_event(self, event: str, obj: KubeObject) -> None:
        self._changed.set()

    def _run(self) -> None:
        # Until the store is synced, poll its flag briefly: an empty cluster sends no event.
        while not self._stopping.is_set() and not self.store.wait_synced(0.2):
            pass
        while not self._stopping.is_set():
            self._changed.clear()
            try:
                self.rebuild()
            except Exception:
                # A bug must not freeze the documents forever: log it, keep the last snapshot.
                log.exception("snapshot rebuild failed; still serving generation %d", self._current.generation)
            self._changed.wait(self.resync_interval)

    def rebuild(self) -> Snapshot:
        """Build now from the cache, publish, log what changed, and wake waiters."""
        with self._rebuilt:
            previous = self._current
            self._generation += 1
            snapshot = build(
                gather(self.store, self.settings), self.settings, generation=self._generation, now=self.clock()
            )
            self._current = snapshot
            _log_changes(previous, snapshot)
            self._rebuilt.notify_all()
        return snapshot

    def wait_for(self, predicate: Callable[[Snapshot], bool], timeout: float) -> Snapshot | None:
        """The first current snapshot that satisfies ``predicate`` within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._rebuilt:
            while not predicate(self._current):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._rebuilt.wait(remaining)
            return self._current


def _log_changes(previous: Snapshot, current: Snapshot) -> None:
    """One line per change, never one per rebuild: a steady state is silent."""
    for problem in current.problems:
        if problem not in previous.problems:
            log.error("not serving: %s", problem)
    for problem in previous.problems:
        if problem not in current.problems and problem != NOT_SYNCED:
            log.info("resolved: %s", problem)
    for skip in current.skips:
        if skip not in previous.skips:
            log.warning("%s (reason=%s)", skip.detail, skip.reason)
    for problem in current.trust_problems:
        if problem not in previous.trust_problems:
            log.warning("%s", problem)
    if current.ready and not previous.ready:
        log.info(
            "ready: serving %d public services and %d ingress gateways (source=%s), %d trusted clusters",
            current.services,
            current.gateways,
            current.gateway_source,
            len(current.known_keys),
        )
    elif current.ready and current.private and previous.private and current.private.etag != previous.private.etag:
        log.info(
            "private metadata changed: %d public services, %d ingress gateways (source=%s)",
            current.services,
            current.gateways,
            current.gateway_source,
        )
    if set(current.known_keys) != set(previous.known_keys) and current.synced:
        log.info("trusted clusters: %s", ", ".join(sorted(current.known_keys)) or "none")
