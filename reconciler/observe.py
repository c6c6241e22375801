"""The I/O half of a sync, shared by ``reconciler run`` and ``check``: look at one remote.

:func:`observe` is the only code that GETs a remote's metadata documents and signs the token for
the private one, so both commands contact a remote in exactly the same way (the same TLS trust, the
same claims, ``--issuer`` included) and differ only in what they make of the answers.  It reads the
store only for the other federations' trust domains, and never writes.
"""

from __future__ import annotations

from datetime import datetime

from federation import resources, tokens
from federation.documents.public import PublicMetadata
from federation.keys import Keypair
from federation.resources import KubeObject
from federation.store import ObjectStore, look_list
from reconciler.fetch import PRIVATE_PATH, PUBLIC_PATH, Fetcher, FetchError, TLSSettings, endpoint_url
from reconciler.observation import (
    ConfigurationProblem,
    Fetched,
    LocalCluster,
    Observation,
    Problem,
    configuration_problem,
    export_to,
    read_public,
    tls_settings,
)


def observe(
    federation: KubeObject,
    *,
    store: ObjectStore,
    fetcher: Fetcher,
    keypair: Keypair | Problem,
    local: LocalCluster,
    now: datetime,
    namespace: str = "",
) -> Observation:
    """Fetch the public document and, when it is usable, the private one with a fresh token.

    ``keypair`` is a :class:`Problem` when ``check`` found no usable key: the private document is
    then not fetched, and the observation says why.  ``namespace`` is where the managed objects
    live (it gives an exportTo of ``.`` its meaning).
    """
    spec = resources.spec(federation)
    name = resources.name_of(federation)
    federations = look_list(store, resources.ISTIO_FEDERATION)
    exported = export_to(federation, local.export_to, namespace)
    configuration = configuration_problem(spec, local.trust_domain)
    if configuration is None and isinstance(exported, ConfigurationProblem):
        configuration = exported
    owners = cluster_uuid_owners(federations, federation)
    public: Fetched | None = None
    private: Fetched | None = None
    blocked: Problem | None = None
    if configuration is None:
        endpoint = str(spec.get("metadataEndpoint") or "")
        tls = tls_settings(spec)
        public = _get(fetcher, endpoint_url(endpoint, PUBLIC_PATH), tls)
        remote = read_public(public, cluster_uuid=local.cluster_uuid, now=now, owners=owners)
        if isinstance(remote, PublicMetadata):
            token = _token(keypair, local=local, audience=remote.cluster_uuid, now=now)
            if isinstance(token, Problem):
                blocked = token
            else:
                headers = {"Authorization": f"Bearer {token}"}
                private = _get(fetcher, endpoint_url(endpoint, PRIVATE_PATH), tls, headers)
    return Observation(
        federation,
        now,
        configuration=configuration,
        public=public,
        private_blocked=blocked,
        private=private,
        other_trust_domains=_other_trust_domains(federations, name),
        cluster_uuid_owners=owners,
        export_to=exported if isinstance(exported, tuple) else local.export_to,
    )


def _other_trust_domains(federations: list[KubeObject], name: str) -> tuple[str, ...]:
    domains = set()
    for other in federations:
        domain = resources.spec(other).get("trustDomain")
        if resources.name_of(other) != name and isinstance(domain, str) and domain:
            domains.add(domain.lower())
    return tuple(sorted(domains))


def cached_cluster_uuid(federation: KubeObject) -> str:
    """``status.metadataCache.public.clusterUUID``, or "" when there is none."""
    status = federation.get("status")
    cache = status.get("metadataCache") if isinstance(status, dict) else None
    public = cache.get("public") if isinstance(cache, dict) else None
    value = public.get("clusterUUID") if isinstance(public, dict) else None
    return value if isinstance(value, str) else ""


def _seniority(federation: KubeObject) -> tuple[str, str]:
    """Who came first: the older creationTimestamp (RFC 3339 sorts as text), then the name."""
    return str(resources.meta(federation).get("creationTimestamp") or "~"), resources.name_of(federation)


def cluster_uuid_owners(federations: list[KubeObject], federation: KubeObject) -> dict[str, str]:
    """clusterUUID -> the name of another IstioFederation that holds it, for ``federation`` to refuse.

    Another federation holds a UUID when its ``status.metadataCache.public`` names it (the local
    exporter trusts that cluster's key through it) and it is not being deleted.  Should both already
    hold one (written before this rule), the older federation keeps it.
    """
    name = resources.name_of(federation)
    own = cached_cluster_uuid(federation)
    owners: dict[str, str] = {}
    for other in sorted(federations, key=_seniority):
        uuid = cached_cluster_uuid(other)
        if not uuid or resources.name_of(other) == name or uuid in owners:
            continue
        if resources.meta(other).get("deletionTimestamp"):
            continue
        if uuid == own and _seniority(federation) < _seniority(other):
            continue  # both hold it: this one came first and keeps it
        owners[uuid] = resources.name_of(other)
    return owners


def _token(keypair: Keypair | Problem, *, local: LocalCluster, audience: str, now: datetime) -> str | Problem:
    """Deckhouse's claims for the private document, signed with this cluster's key."""
    if isinstance(keypair, Problem):
        return keypair
    try:
        return tokens.issue(
            keypair.private_key,
            subject=local.cluster_uuid,
            audience=audience,
            now=int(now.timestamp()),
            issuer=local.issuer,
        )
    except Exception as error:  # a signing failure is reported (status, check line), never raised
        return Problem(f"cannot sign the JWT: {error}", "repair the keypair Secret")


def _get(fetcher: Fetcher, url: str, tls: TLSSettings, headers: dict[str, str] | None = None) -> Fetched:
    try:
        return Fetched(url, response=fetcher.get(url, tls=tls, headers=headers))
    except FetchError as error:
        return Fetched(url, error=error)
