"""The SPIFFE trust bundle (a JWK set) of this cluster's root CA, built from PEM, without I/O.

Shape (SPIFFE Trust Domain and Bundle spec, as Deckhouse serves it)::

    {"spiffe_sequence": 1, "spiffe_refresh_hint": 300,
     "keys": [{"kty": "RSA", "use": "x509-svid", "n": "…", "e": "AQAB", "x5c": ["<DER, base64>"]}]}

Deckhouse only handles RSA roots (anything else is an HTTP 500 there, with a hard-coded ``e``);
here EC roots on the NIST curves work as well, as ``kty: EC`` with ``crv``/``x``/``y``.

``spiffe_sequence`` must grow when the bundle changes.  A per-process counter would restart at 1
and differ between replicas, so we use the newest ``notBefore`` among the roots (Unix seconds):
every replica computes the same number, and adding a freshly issued root during a rotation makes
it grow.  (Removing an old root alone does not; consumers still see the new key set.)
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

USE_X509_SVID = "x509-svid"
DEFAULT_REFRESH_HINT_SECONDS = 300

# JWK curve names (RFC 7518 §6.2.1.1) and the byte length of one coordinate on that curve.
_CURVES: dict[str, tuple[str, int]] = {
    "secp256r1": ("P-256", 32),
    "secp384r1": ("P-384", 48),
    "secp521r1": ("P-521", 66),
}


class BundleError(ValueError):
    """The root CA cannot be expressed as a SPIFFE bundle; the message says why."""


@dataclass(frozen=True)
class Bundle:
    sequence: int
    refresh_hint: int
    keys: tuple[dict[str, Any], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "spiffe_sequence": self.sequence,
            "spiffe_refresh_hint": self.refresh_hint,
            "keys": [dict(key) for key in self.keys],
        }


def _b64url_uint(value: int, length: int | None = None) -> str:
    """Base64url without padding of a big-endian unsigned integer (RFC 7518 §2 "Base64urlUInt")."""
    size = length if length is not None else max(1, (value.bit_length() + 7) // 8)
    return base64.urlsafe_b64encode(value.to_bytes(size, "big")).rstrip(b"=").decode("ascii")


def jwk_for_certificate(certificate: x509.Certificate) -> dict[str, Any]:
    """One ``keys[]`` entry: the certificate's public key as a JWK, plus the certificate itself."""
    public_key = certificate.public_key()
    # x5c holds standard base64 with padding (RFC 7517 §4.7), not base64url.
    x5c = [base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode("ascii")]
    if isinstance(public_key, rsa.RSAPublicKey):
        numbers = public_key.public_numbers()
        return {
            "kty": "RSA",
            "use": USE_X509_SVID,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
            "x5c": x5c,
        }
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        curve = _CURVES.get(public_key.curve.name)
        if curve is None:
            raise BundleError(
                f"root CA key uses curve {public_key.curve.name}; a SPIFFE bundle supports P-256, P-384 and P-521"
            )
        crv, size = curve
        point = public_key.public_numbers()
        return {
            "kty": "EC",
            "use": USE_X509_SVID,
            "crv": crv,
            "x": _b64url_uint(point.x, size),
            "y": _b64url_uint(point.y, size),
            "x5c": x5c,
        }
    kind = type(public_key).__name__.removeprefix("_").removesuffix("PublicKey") or "unknown"
    raise BundleError(
        f"root CA key type {kind} is not supported in a SPIFFE bundle; use an RSA or EC (P-256/384/521) root"
    )


def build_bundle(root_ca_pem: str, *, refresh_hint: int = DEFAULT_REFRESH_HINT_SECONDS) -> Bundle:
    """The bundle of every certificate in ``root_ca_pem`` (several during a root rotation)."""
    try:
        certificates = x509.load_pem_x509_certificates(root_ca_pem.encode())
    except ValueError as error:
        raise BundleError("root CA is not a PEM X.509 certificate") from error
    keys = tuple(jwk_for_certificate(certificate) for certificate in certificates)
    sequence = max(int(certificate.not_valid_before_utc.timestamp()) for certificate in certificates)
    return Bundle(sequence=sequence, refresh_hint=refresh_hint, keys=keys)
