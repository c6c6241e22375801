"""Which remote clusters may read the private metadata, and with which key.

Exactly the clusters whose public metadata this cluster's reconciler has fetched: the
``status.metadataCache.public`` of every IstioFederation (``clusterUUID`` → ``authnKeyPub``).
That is Deckhouse's rule too (there via a merged Secret), so trust is mutual: each side must have
an IstioFederation pointing at the other before either can read the other's services.

Fail closed: a federation being deleted grants nothing, a key that does not parse grants nothing,
and two federations that disagree about one cluster's key grant nothing to that cluster.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from federation import keys, resources
from federation.resources import KubeObject


@dataclass(frozen=True)
class Trust:
    keys: dict[str, ed25519.Ed25519PublicKey] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


def _raw(key: ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def known_keys(federations: Iterable[KubeObject]) -> Trust:
    found: dict[str, tuple[ed25519.Ed25519PublicKey, str]] = {}
    conflicting: set[str] = set()
    problems: list[str] = []
    for federation in sorted(federations, key=resources.name_of):
        name = f"IstioFederation {resources.name_of(federation)}"
        if resources.meta(federation).get("deletionTimestamp"):
            continue
        status = federation.get("status")
        cache = status.get("metadataCache") if isinstance(status, dict) else None
        public = cache.get("public") if isinstance(cache, dict) else None
        if not isinstance(public, dict):
            continue  # not fetched yet: nothing to trust, nothing wrong
        cluster_uuid = public.get("clusterUUID")
        pem = public.get("authnKeyPub")
        if not isinstance(cluster_uuid, str) or not cluster_uuid or not isinstance(pem, str):
            problems.append(f"{name}: status.metadataCache.public lacks clusterUUID or authnKeyPub; not trusted")
            continue
        try:
            key = keys.load_public_key(pem, "status.metadataCache.public.authnKeyPub")
        except keys.InvalidKey as error:
            problems.append(f"{name}: {error}; cluster {cluster_uuid} not trusted")
            continue
        previous = found.get(cluster_uuid)
        if previous is not None and _raw(previous[0]) != _raw(key):
            conflicting.add(cluster_uuid)
            problems.append(
                f"{name} and {previous[1]} publish different keys for cluster {cluster_uuid}; "
                "trusting neither until they agree"
            )
            continue
        found.setdefault(cluster_uuid, (key, name))
    return Trust(
        {uuid: key for uuid, (key, _) in sorted(found.items()) if uuid not in conflicting},
        tuple(problems),
    )
