"""This cluster's Ed25519 identity: the keypair the reconciler signs its JWTs with.

It lives in the Secret ``istio-federation-authn-keypair`` (keys ``priv.pem``, ``pub.pem``) in the
component namespace, the same Secret the exporter publishes ``authnKeyPub`` from, so remotes verify
our tokens with the key we actually sign with.  When the Secret is absent it is generated once and
created; it is never regenerated or overwritten, because a new key locks this cluster out of every
remote until they re-fetch our public metadata.  If the exporter creates it at the same moment, the
create fails with a conflict and we use theirs.
"""

from __future__ import annotations

import base64
import binascii
import logging

from federation import keys, ownership, resources
from federation.keys import Keypair
from federation.resources import KubeObject
from federation.store import Conflict, ObjectStore

log = logging.getLogger(__name__)

SECRET_NAME = "istio-federation-authn-keypair"
PRIVATE_KEY = "priv.pem"
PUBLIC_KEY = "pub.pem"


class IdentityError(Exception):
    """The Secret exists but cannot be used; the message names the Secret, the key and the fix."""


def _value(secret: KubeObject, key: str) -> str | None:
    where = f"Secret {resources.namespace_of(secret)}/{SECRET_NAME}"
    data = secret.get("data")
    if isinstance(data, dict) and isinstance(data.get(key), str):
        try:
            return base64.b64decode(data[key], validate=True).decode("utf-8")
        except (binascii.Error, ValueError) as error:
            raise IdentityError(f"{where}: data[{key}] is not base64 of a PEM text") from error
    string_data = secret.get("stringData")
    if isinstance(string_data, dict) and isinstance(string_data.get(key), str):
        return str(string_data[key])
    return None


def keypair_from_secret(secret: KubeObject) -> Keypair:
    where = f"Secret {resources.namespace_of(secret)}/{SECRET_NAME}"
    private_pem = _value(secret, PRIVATE_KEY)
    public_pem = _value(secret, PUBLIC_KEY)
    missing = [key for key, value in ((PRIVATE_KEY, private_pem), (PUBLIC_KEY, public_pem)) if not value]
    if missing:
        raise IdentityError(
            f"{where} has no {' and no '.join(missing)}: delete the Secret to have a new keypair generated "
            "(remotes then need to re-fetch this cluster's public metadata)"
        )
    assert private_pem is not None
    assert public_pem is not None
    try:
        return Keypair.from_pems(private_pem, public_pem)
    except keys.InvalidKey as error:
        raise IdentityError(f"{where}: {error}") from error


def secret_for(keypair: Keypair, namespace: str) -> KubeObject:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": SECRET_NAME,
            "namespace": namespace,
            "labels": {ownership.MANAGED_BY_LABEL: ownership.MANAGED_BY_VALUE},
        },
        "data": {
            PRIVATE_KEY: base64.b64encode(keypair.private_pem().encode()).decode(),
            PUBLIC_KEY: base64.b64encode(keypair.public_pem.encode()).decode(),
        },
    }


def load_or_create(store: ObjectStore, namespace: str, *, persist: bool = True) -> Keypair:
    """The keypair from the Secret, creating the Secret only if it does not exist.

    With ``persist=False`` (dry-run) a missing keypair is generated in memory only.
    """
    secret = store.read(resources.SECRET, namespace, SECRET_NAME)
    if secret is not None:
        return keypair_from_secret(secret)
    keypair = Keypair.generate()
    if not persist:
        log.warning(
            "Secret %s/%s does not exist; dry-run uses a throw-away keypair, which remotes will not know",
            namespace,
            SECRET_NAME,
        )
        return keypair
    try:
        store.create(secret_for(keypair, namespace))
    except Conflict:
        # Created by the exporter (or another replica) in the meantime: theirs wins.
        existing = store.read(resources.SECRET, namespace, SECRET_NAME)
        if existing is None:
            raise
        return keypair_from_secret(existing)
    log.info("created Secret %s/%s with a new Ed25519 keypair", namespace, SECRET_NAME)
    return keypair
