"""Ownership labels and names of the objects the reconciler manages, defined once.

An object is *managed* when it carries both labels.  Only the reconciler creates, changes or
deletes managed objects, and it only ever deletes through the label selector built here.
"""

from __future__ import annotations

import hashlib

from federation import resources

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "istio-federation"
FEDERATION_LABEL = "federation.istio.deckhouse.io/federation"
REMOTE_CLUSTER_UUID_ANNOTATION = "federation.istio.deckhouse.io/remote-cluster-uuid"
PUBLIC_SERVICE_LABEL = "federation.istio.deckhouse.io/public-service"

# Kubernetes object names for these kinds are DNS-1123 subdomains (253), but Istio turns the
# ServiceEntry name into Envoy and label values, so we keep to the stricter label length.
MAX_MANAGED_NAME = 63
_HASH_LENGTH = 10


def ownership_labels(federation_name: str) -> dict[str, str]:
    return {MANAGED_BY_LABEL: MANAGED_BY_VALUE, FEDERATION_LABEL: federation_name}


def selector(federation_name: str | None = None) -> str:
    """The label selector that finds managed objects (of one federation, when named)."""
    base = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
    return f"{base},{FEDERATION_LABEL}={federation_name}" if federation_name else base


def is_managed(obj: resources.KubeObject) -> bool:
    labels = resources.labels(obj)
    return labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE and bool(labels.get(FEDERATION_LABEL))


def has_ownership_label(obj: resources.KubeObject) -> bool:
    """True when either ownership label is present: half-labelled objects are suspicious too."""
    labels = resources.labels(obj)
    return MANAGED_BY_LABEL in labels or FEDERATION_LABEL in labels


def owning_federation(obj: resources.KubeObject) -> str | None:
    return resources.labels(obj).get(FEDERATION_LABEL) if is_managed(obj) else None


def managed_name(host: str) -> str:
    """The deterministic name of the ServiceEntry and DestinationRule for ``host``.

    ``bar.xyz.svc.cluster-b.local`` → ``bar-xyz-svc-cluster-b-local``.  When that is longer than
    a DNS-1123 label, it is cut and a hash of the full host is appended, so different long hosts
    never share a name.
    """
    plain = host.lower().rstrip(".").replace(".", "-").replace("*", "wildcard")
    if len(plain) <= MAX_MANAGED_NAME:
        return plain
    digest = hashlib.sha256(host.lower().encode()).hexdigest()[:_HASH_LENGTH]
    prefix = plain[: MAX_MANAGED_NAME - _HASH_LENGTH - 1].rstrip("-")
    return f"{prefix}-{digest}"
