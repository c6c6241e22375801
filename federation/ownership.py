"""Ownership labels and names of the objects the reconciler manages, defined once.

An object is *managed* when it carries both labels.  Only the reconciler creates, changes or
deletes managed objects, and it only ever deletes through the label selector built here.
"""

from __future__ import annotations

import functools
import hashlib
import re

from federation import resources

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "istio-federation"
FEDERATION_LABEL = "federation.istio.deckhouse.io/federation"
REMOTE_CLUSTER_UUID_ANNOTATION = "federation.istio.deckhouse.io/remote-cluster-uuid"
PUBLIC_SERVICE_LABEL = "federation.istio.deckhouse.io/public-service"

# Kubernetes object names for these kinds are DNS-1123 subdomains (253), but Istio turns the
# ServiceEntry name into Envoy and label values, so we keep to the stricter label length.
MAX_MANAGED_NAME = 63
# The hash suffix: 16 characters of apimachinery's "safe" alphabet (util/rand, no vowels, so no words;
# Deckhouse's safeEncode uses the same one) carry 76 bits of SHA-256, far beyond what anyone can search
# for a second host with the same name.
_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_HASH_LENGTH = 16
_READABLE_LENGTH = MAX_MANAGED_NAME - _HASH_LENGTH - 1
_NOT_IN_NAME = re.compile(r"[^a-z0-9-]")


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
    """The federation a managed object belongs to (None when it is not managed): :func:`is_managed`
    with one read of the labels, as every sync asks it of every owned object."""
    labels = resources.labels(obj)
    owner = labels.get(FEDERATION_LABEL)
    return owner if owner and labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE else None


def managed_name(host: str) -> str:
    """:func:`_managed_name`, remembered for hosts no longer than a DNS name (a sync asks for each of
    its hosts several times, every sync; a longer, hostile host is never kept)."""
    return _remembered_name(host) if len(host) <= _REMEMBERED_HOST_LENGTH else _managed_name(host)


_REMEMBERED_HOST_LENGTH = 253


@functools.lru_cache(maxsize=65536)
def _remembered_name(host: str) -> str:
    return _managed_name(host)


def _managed_name(host: str) -> str:
    """The deterministic name of the ServiceEntry and DestinationRule for ``host``.

    ``<host with dashes>-<hash>``, the shape of Deckhouse's names, always at most 63 characters and
    a DNS-1123 label: ``bar.xyz.svc.cluster-b.local`` gives ``bar-xyz-svc-cluster-b-local-`` and 16
    characters of a SHA-256 of the exact host.  The readable part is the lower-cased host with every
    character but letters, digits and ``-`` turned into ``-`` (``*`` into ``wildcard``), cut to 46
    characters; it only helps people find the object.  The hash makes the name collision-free: the
    dashes alone are not (``new.svc.east.cluster-b.local`` and ``new.svc.east-cluster-b.local`` read
    alike), so two hosts share a name only if they share 76 bits of SHA-256.
    """
    head = host[: 2 * MAX_MANAGED_NAME].lower().rstrip(".").replace("*", "wildcard")
    readable = _NOT_IN_NAME.sub("-", head)[:_READABLE_LENGTH].strip("-") or "host"
    number = int.from_bytes(hashlib.sha256(host.encode("utf-8", "surrogatepass")).digest(), "big")
    digits: list[str] = []
    for _ in range(_HASH_LENGTH):
        number, digit = divmod(number, len(_HASH_ALPHABET))
        digits.append(_HASH_ALPHABET[digit])
    return f"{readable}-{''.join(digits)}"
