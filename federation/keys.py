"""Ed25519 identity keys in PEM, accepting Deckhouse's non-standard labels.

Deckhouse labels its PEM blocks ``ED25519 PRIVATE KEY`` (PKCS#8 DER inside) and
``ED25519 PUBLIC KEY`` (PKIX DER inside).  ``cryptography`` only knows the
standard ``PRIVATE KEY`` / ``PUBLIC KEY`` labels, so we read the DER ourselves and accept both;
we write the standard labels unless asked to match Deckhouse.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

_PEM_BLOCK = re.compile(
    r"-----BEGIN (?P<label>[A-Z0-9 ]+)-----\s*(?P<body>[A-Za-z0-9+/=\s]*?)\s*-----END (?P=label)-----"
)
PRIVATE_LABELS = ("PRIVATE KEY", "ED25519 PRIVATE KEY")
PUBLIC_LABELS = ("PUBLIC KEY", "ED25519 PUBLIC KEY")


class InvalidKey(ValueError):
    """A key that cannot be used, with a message that says what is wrong with it."""


def _der_from_pem(pem: str, labels: tuple[str, ...], what: str) -> bytes:
    match = _PEM_BLOCK.search(pem or "")
    if not match:
        raise InvalidKey(f"{what} is not PEM: expected a -----BEGIN {labels[0]}----- block")
    if match.group("label") not in labels:
        expected = " or ".join(labels)
        raise InvalidKey(f"{what} has PEM label {match.group('label')!r}, expected {expected}")
    try:
        return base64.b64decode("".join(match.group("body").split()), validate=True)
    except (binascii.Error, ValueError) as error:
        raise InvalidKey(f"{what} has a PEM body that is not valid base64") from error


def load_public_key(pem: str, what: str = "public key") -> ed25519.Ed25519PublicKey:
    der = _der_from_pem(pem, PUBLIC_LABELS, what)
    try:
        key = serialization.load_der_public_key(der)
    except ValueError as error:
        raise InvalidKey(f"{what} is not a valid PKIX public key") from error
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise InvalidKey(f"{what} must be an Ed25519 key, got {type(key).__name__.removesuffix('PublicKey')}")
    return key


def load_private_key(pem: str, what: str = "private key") -> ed25519.Ed25519PrivateKey:
    der = _der_from_pem(pem, PRIVATE_LABELS, what)
    try:
        key = serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError) as error:
        raise InvalidKey(f"{what} is not a valid unencrypted PKCS#8 private key") from error
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise InvalidKey(f"{what} must be an Ed25519 key, got {type(key).__name__.removesuffix('PrivateKey')}")
    return key


def _pem(der: bytes, label: str) -> str:
    body = base64.b64encode(der).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def public_key_pem(key: ed25519.Ed25519PublicKey, *, deckhouse_labels: bool = False) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return _pem(der, PUBLIC_LABELS[1] if deckhouse_labels else PUBLIC_LABELS[0])


def private_key_pem(key: ed25519.Ed25519PrivateKey, *, deckhouse_labels: bool = False) -> str:
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return _pem(der, PRIVATE_LABELS[1] if deckhouse_labels else PRIVATE_LABELS[0])


@dataclass(frozen=True)
class Keypair:
    private_key: ed25519.Ed25519PrivateKey
    public_pem: str

    @classmethod
    def generate(cls) -> Keypair:
        private_key = ed25519.Ed25519PrivateKey.generate()
        return cls(private_key, public_key_pem(private_key.public_key()))

    @classmethod
    def from_pems(cls, private_pem: str, public_pem: str) -> Keypair:
        """Load both halves and check that they belong together."""
        private_key = load_private_key(private_pem, "priv.pem")
        public_key = load_public_key(public_pem, "pub.pem")
        derived = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        if derived != public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw):
            raise InvalidKey("pub.pem is not the public half of priv.pem")
        return cls(private_key, public_pem)

    def private_pem(self, *, deckhouse_labels: bool = False) -> str:
        return private_key_pem(self.private_key, deckhouse_labels=deckhouse_labels)
