"""What ``check`` reads of this cluster besides the remote: the signing key, the federation's
managed ServiceEntries and Istio's mesh config.  Reads only: ``check`` never creates or repairs."""

from __future__ import annotations

from dataclasses import dataclass

from federation import meshconfig, ownership, resources
from federation.keys import Keypair
from federation.resources import KubeObject
from federation.store import ObjectStore, StoreError
from reconciler import identity
from reconciler.check.report import CheckSettings
from reconciler.observation import Problem


@dataclass(frozen=True)
class LocalObjects:
    managed_entries: tuple[KubeObject, ...] = ()
    mesh_config_map: KubeObject | None = None


def read_local(store: ObjectStore, federation: KubeObject, settings: CheckSettings) -> LocalObjects:
    name = resources.name_of(federation)
    return LocalObjects(
        managed_entries=tuple(store.list(resources.SERVICE_ENTRY, settings.namespace, ownership.selector(name))),
        mesh_config_map=store.get(resources.CONFIG_MAP, settings.mesh_namespace, meshconfig.CONFIG_MAP_NAME),
    )


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
