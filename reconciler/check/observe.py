"""The I/O half of ``check``: the same GETs a sync makes, and reads of the store. Never a write."""

from __future__ import annotations

from datetime import datetime

from federation import meshconfig, ownership, resources, tokens
from federation.keys import Keypair
from federation.resources import KubeObject
from federation.store import ObjectStore, StoreError
from reconciler import identity
from reconciler.check.evaluate import configuration_problem, public_check, tls_settings
from reconciler.check.observation import Fetched, Observation, Problem
from reconciler.check.report import CheckSettings
from reconciler.fetch import (
    PRIVATE_PATH,
    PUBLIC_PATH,
    Fetcher,
    FetchError,
    TLSSettings,
    endpoint_url,
    ssl_context,
)


def _get(fetcher: Fetcher, url: str, tls: TLSSettings, headers: dict[str, str] | None = None) -> Fetched:
    try:
        return Fetched(url, response=fetcher.get(url, tls=tls, headers=headers))
    except FetchError as error:
        return Fetched(url, error=error)


def load_identity(store: ObjectStore, namespace: str) -> Keypair | Problem:
    """The keypair the reconciler signs with, read only: ``check`` never creates the Secret."""
    where = f"Secret {namespace}/{identity.SECRET_NAME}"
    try:
        secret = store.read(resources.SECRET, namespace, identity.SECRET_NAME)
    except StoreError as error:
        return Problem(f"cannot read {where}: {error}", f"run check with credentials that may get {where}")
    if secret is None:
        return Problem(
            f"{where} does not exist, so this cluster has no key to sign the JWT with",
            "start the reconciler or the exporter once (either creates it), or pass the right --namespace",
        )
    try:
        return identity.keypair_from_secret(secret)
    except identity.IdentityError as error:
        return Problem(str(error), f"repair {where}, or delete it to have a new keypair generated")


def observe(
    federation: KubeObject,
    *,
    store: ObjectStore,
    fetcher: Fetcher,
    settings: CheckSettings,
    keypair: Keypair | Problem,
    now: datetime,
) -> Observation:
    """Fetch and read what :func:`evaluate` needs for one federation; the only I/O of ``check``."""
    name = resources.name_of(federation)
    spec = resources.spec(federation)
    endpoint = str(spec.get("metadataEndpoint") or "")
    tls = tls_settings(spec)
    configuration = configuration_problem(spec, settings.local_trust_domain)
    if configuration is None:
        try:
            ssl_context(tls)  # an unusable spec.metadata.ca is the spec's fault, not the endpoint's
        except FetchError as error:
            configuration = Problem(
                error.message, "put the PEM certificate of the CA that signed the endpoint's certificate there"
            )
    public_fetch: Fetched | None = None
    private_fetch: Fetched | None = None
    blocked: Problem | None = None
    if configuration is None:
        public_fetch = _get(fetcher, endpoint_url(endpoint, PUBLIC_PATH), tls)
        _, public = public_check(Observation(federation, now, public=public_fetch), settings)
        if public is not None:
            if isinstance(keypair, Problem):
                blocked = keypair
            else:
                try:
                    token = tokens.issue(
                        keypair.private_key,
                        subject=settings.cluster_uuid,
                        audience=public.cluster_uuid,
                        now=int(now.timestamp()),
                    )
                except Exception as error:  # a signing failure is a finding, never a traceback
                    blocked = Problem(f"cannot sign the JWT: {error}", "repair the keypair Secret")
                else:
                    private_fetch = _get(
                        fetcher, endpoint_url(endpoint, PRIVATE_PATH), tls, {"Authorization": f"Bearer {token}"}
                    )
    others = sorted(
        {
            str(resources.spec(other).get("trustDomain")).lower()
            for other in store.list(resources.ISTIO_FEDERATION)
            if resources.name_of(other) != name and resources.spec(other).get("trustDomain")
        }
    )
    return Observation(
        federation,
        now,
        configuration=configuration,
        public=public_fetch,
        private_blocked=blocked,
        private=private_fetch,
        managed_entries=tuple(store.list(resources.SERVICE_ENTRY, settings.namespace, ownership.selector(name))),
        other_trust_domains=tuple(others),
        mesh_config_map=store.get(resources.CONFIG_MAP, settings.mesh_namespace, meshconfig.CONFIG_MAP_NAME),
    )
