"""``exporter.identity`` (keypair and root CA) and ``exporter.trust`` (known remote keys)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from exporter import identity, trust
from federation import keys
from tests.exporter.fixtures import (
    NAMESPACE,
    OTHER_UUID,
    REMOTE_UUID,
    configmap,
    federation,
    keypair_secret,
    root_ca_configmap,
    root_ca_pem,
)

KEYPAIR = keys.Keypair.generate()
STANDARD_PUB = keys.public_key_pem(KEYPAIR.private_key.public_key())
CA = root_ca_pem()


def resolve(**overrides: object) -> identity.IdentityResult:
    arguments: dict[str, object] = {
        "namespace": NAMESPACE,
        "secret": keypair_secret(KEYPAIR),
        "root_ca_configmap": root_ca_configmap(CA),
    }
    arguments.update(overrides)
    return identity.identity(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "secret",
    [
        keypair_secret(KEYPAIR),
        keypair_secret(KEYPAIR, string_data=True),
        keypair_secret(KEYPAIR, deckhouse_labels=True),
        keypair_secret(KEYPAIR, string_data=True, deckhouse_labels=True),
    ],
    ids=["data", "stringData", "data, Deckhouse labels", "stringData, Deckhouse labels"],
)
def test_secret_forms_all_publish_the_standard_pkix_pem(secret: dict[str, object]) -> None:
    assert resolve(secret=secret) == identity.IdentityResult(identity.Identity(STANDARD_PUB, CA), ())


def test_public_key_alone_is_enough_to_publish() -> None:
    secret = keypair_secret(KEYPAIR)
    del secret["data"]["priv.pem"]
    assert resolve(secret=secret).identity == identity.Identity(STANDARD_PUB, CA)


HINT = (
    "create it with `istio-federation certs keypair --out DIR` and `kubectl -n istio-federation create secret "
    "generic istio-federation-authn-keypair --from-file=DIR/priv.pem --from-file=DIR/pub.pem`, or pass --keypair-dir"
)

NO_CONFIGMAP = (
    "ConfigMap istio-federation/istio-ca-root-cert not found: istiod writes it into every namespace; check that "
    "Istio runs and that namespace istio-federation exists (or create the ConfigMap with key root-cert.pem)"
)


def _mismatched() -> dict[str, object]:
    secret = keypair_secret(KEYPAIR, string_data=True)
    secret["stringData"]["pub.pem"] = keys.Keypair.generate().public_pem
    return secret


def _bad_base64() -> dict[str, object]:
    secret = keypair_secret(KEYPAIR)
    secret["data"]["pub.pem"] = "%%%"
    return secret


def _rsa_label() -> dict[str, object]:
    secret = keypair_secret(KEYPAIR, string_data=True)
    secret["stringData"]["pub.pem"] = "-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n"
    del secret["stringData"]["priv.pem"]
    return secret


@pytest.mark.parametrize(
    ("overrides", "problems"),
    [
        ({"secret": None}, [f"Secret istio-federation/istio-federation-authn-keypair not found: {HINT}"]),
        (
            {"root_ca_configmap": None},
            [NO_CONFIGMAP],
        ),
        (
            {"root_ca_configmap": configmap("istio-ca-root-cert", {"ca.crt": CA})},
            [
                "ConfigMap istio-federation/istio-ca-root-cert has no data key root-cert.pem: put the mesh root "
                "certificate (PEM) there"
            ],
        ),
        (
            {"root_ca_configmap": root_ca_configmap("garbage")},
            ["ConfigMap istio-federation/istio-ca-root-cert data[root-cert.pem]: must be a PEM X.509 certificate"],
        ),
        (
            {"secret": _mismatched()},
            ["Secret istio-federation/istio-federation-authn-keypair: pub.pem is not the public half of priv.pem"],
        ),
        (
            {"secret": _bad_base64()},
            [
                "Secret istio-federation/istio-federation-authn-keypair data[pub.pem] is not base64 of UTF-8 text; "
                "put the PEM there base64-encoded"
            ],
        ),
        (
            {"secret": _rsa_label()},
            [
                "Secret istio-federation/istio-federation-authn-keypair: pub.pem has PEM label 'RSA PUBLIC KEY', "
                "expected PUBLIC KEY or ED25519 PUBLIC KEY"
            ],
        ),
        (
            {"secret": None, "root_ca_configmap": None},
            [
                f"Secret istio-federation/istio-federation-authn-keypair not found: {HINT}",
                NO_CONFIGMAP,
            ],
        ),
    ],
    ids=[
        "no secret",
        "no configmap",
        "no root-cert.pem key",
        "not a certificate",
        "halves differ",
        "bad base64",
        "wrong key label",
        "both missing",
    ],
)
def test_missing_or_broken_identity_names_the_object_to_fix(overrides: dict[str, object], problems: list[str]) -> None:
    assert resolve(**overrides) == identity.IdentityResult(None, tuple(problems))


def test_keypair_dir_overrides_the_secret(tmp_path: Path) -> None:
    (tmp_path / "priv.pem").write_text(KEYPAIR.private_pem(deckhouse_labels=True))
    (tmp_path / "pub.pem").write_text(KEYPAIR.public_pem)
    files = identity.read_keypair_dir(tmp_path)
    found = resolve(secret=None, keypair_dir=tmp_path, keypair_dir_files=files)
    assert found == identity.IdentityResult(identity.Identity(STANDARD_PUB, CA), ())


def test_keypair_dir_without_pub_pem_is_named(tmp_path: Path) -> None:
    found = resolve(keypair_dir=tmp_path, keypair_dir_files=identity.read_keypair_dir(tmp_path))
    assert found.problems == (f"--keypair-dir {tmp_path} has no pub.pem",)
    assert found.identity is None


def test_string_data_wins_over_data_like_the_apiserver_merges_it() -> None:
    other = keys.Keypair.generate()
    secret = keypair_secret(other)
    secret["stringData"] = {"pub.pem": KEYPAIR.public_pem, "priv.pem": KEYPAIR.private_pem()}
    assert base64.b64decode(secret["data"]["pub.pem"]).decode() != KEYPAIR.public_pem
    assert resolve(secret=secret).identity == identity.Identity(STANDARD_PUB, CA)


# -- trust -----------------------------------------------------------------------------------------

REMOTE = ed25519.Ed25519PrivateKey.generate()
OTHER = ed25519.Ed25519PrivateKey.generate()


def _raw(key: ed25519.Ed25519PublicKey) -> bytes:
    return trust._raw(key)


def test_known_keys_come_from_status_metadata_cache_public() -> None:
    found = trust.known_keys(
        [
            federation("b", REMOTE_UUID, REMOTE.public_key()),
            federation("c", OTHER_UUID, OTHER.public_key()),
            federation("pending", None, None),
        ]
    )
    assert found.problems == ()
    assert {uuid: _raw(key) for uuid, key in found.keys.items()} == {
        REMOTE_UUID: _raw(REMOTE.public_key()),
        OTHER_UUID: _raw(OTHER.public_key()),
    }


def test_deckhouse_labelled_keys_are_trusted() -> None:
    obj = federation("b", REMOTE_UUID, REMOTE.public_key())
    obj["status"]["metadataCache"]["public"]["authnKeyPub"] = keys.public_key_pem(
        REMOTE.public_key(), deckhouse_labels=True
    )
    assert list(trust.known_keys([obj]).keys) == [REMOTE_UUID]


def test_a_federation_being_deleted_grants_nothing() -> None:
    obj = federation("b", REMOTE_UUID, REMOTE.public_key())
    obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert trust.known_keys([obj]) == trust.Trust({}, ())


def test_two_federations_disagreeing_on_a_key_trust_neither() -> None:
    found = trust.known_keys(
        [federation("b", REMOTE_UUID, REMOTE.public_key()), federation("b2", REMOTE_UUID, OTHER.public_key())]
    )
    assert found.keys == {}
    assert found.problems == (
        f"IstioFederation b2 and IstioFederation b publish different keys for cluster {REMOTE_UUID}; "
        "trusting neither until they agree",
    )


def test_two_federations_agreeing_on_a_key_are_fine() -> None:
    found = trust.known_keys(
        [federation("b", REMOTE_UUID, REMOTE.public_key()), federation("b2", REMOTE_UUID, REMOTE.public_key())]
    )
    assert list(found.keys) == [REMOTE_UUID]
    assert found.problems == ()


def test_an_unparsable_key_is_reported_and_not_trusted() -> None:
    obj = federation("b", REMOTE_UUID, REMOTE.public_key())
    obj["status"]["metadataCache"]["public"]["authnKeyPub"] = "nonsense"
    assert trust.known_keys([obj]) == trust.Trust(
        {},
        (
            "IstioFederation b: status.metadataCache.public.authnKeyPub is not PEM: expected a -----BEGIN PUBLIC "
            f"KEY----- block; cluster {REMOTE_UUID} not trusted",
        ),
    )
