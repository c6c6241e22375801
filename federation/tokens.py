"""The EdDSA JWTs that authenticate a remote reconciler to this cluster's exporter.

Claims are Deckhouse's, so either implementation can read the other's private metadata:
``iss`` (``d8-istio``), ``sub`` (caller's cluster UUID), ``aud`` (callee's cluster UUID, a
string), ``scope`` (``private-federation``), ``nbf`` and ``exp`` (one minute later).

Verification is stricter than Deckhouse's: the algorithm must be exactly EdDSA (no ``none``, no
HMAC with the public key as secret), ``aud`` must be a string, ``nbf`` is honoured, and a token
may live at most ten minutes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ed25519

ISSUER = "d8-istio"
SCOPE_PRIVATE_FEDERATION = "private-federation"
ALGORITHM = "EdDSA"
DEFAULT_TTL_SECONDS = 60
MAX_LIFETIME_SECONDS = 600
DEFAULT_LEEWAY_SECONDS = 30
MAX_TOKEN_BYTES = 4096

REJECTION_CODES = (
    "too_large",
    "malformed",
    "algorithm",
    "unknown_cluster",
    "bad_signature",
    "audience",
    "scope",
    "expired",
    "not_yet_valid",
    "lifetime",
)


class TokenRejected(Exception):
    """A token that grants nothing. ``reason`` is short and safe to show to the caller.

    ``code`` is one of :data:`REJECTION_CODES`: a fixed word, so that metrics can count
    rejections by cause without a label value per attacker-chosen string.
    """

    def __init__(self, reason: str, code: str = "malformed") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(frozen=True)
class Claims:
    issuer: str
    subject: str
    audience: str
    scope: str
    not_before: int
    expires: int


def issue(
    private_key: ed25519.Ed25519PrivateKey,
    *,
    subject: str,
    audience: str,
    now: int,
    issuer: str = ISSUER,
    scope: str = SCOPE_PRIVATE_FEDERATION,
    ttl: int = DEFAULT_TTL_SECONDS,
) -> str:
    claims = {"iss": issuer, "sub": subject, "aud": audience, "scope": scope, "nbf": now, "exp": now + ttl}
    return jwt.encode(claims, private_key, algorithm=ALGORITHM)


def _segment_json(token: str, position: int, what: str) -> dict[str, Any]:
    try:
        segment = token.split(".")[position]
        padded = segment + "=" * (-len(segment) % 4)
        decoded = json.loads(jwt.utils.base64url_decode(padded.encode("ascii")))
    except (IndexError, ValueError, UnicodeError) as error:
        raise TokenRejected(f"malformed token: {what} is not base64url JSON", "malformed") from error
    if not isinstance(decoded, dict):
        raise TokenRejected(f"malformed token: {what} is not a JSON object", "malformed")
    return decoded


def verify(
    token: str,
    *,
    own_cluster_uuid: str,
    known_keys: Mapping[str, ed25519.Ed25519PublicKey],
    now: int,
    leeway: int = DEFAULT_LEEWAY_SECONDS,
    scope: str = SCOPE_PRIVATE_FEDERATION,
) -> Claims:
    """Accept ``token`` or raise TokenRejected with the first reason it fails."""
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenRejected("token too large", "too_large")
    if token.count(".") != 2:
        raise TokenRejected("malformed token: expected a compact JWS (header.payload.signature)", "malformed")
    header = _segment_json(token, 0, "header")
    if header.get("alg") != ALGORITHM:
        raise TokenRejected(f"algorithm must be {ALGORITHM}, got {str(header.get('alg'))[:20]!r}", "algorithm")
    if "crit" in header:
        # RFC 7515 §4.1.11: a verifier must refuse critical extensions it does not implement,
        # and we implement none (go-jose, Deckhouse's signer, never sets it).
        raise TokenRejected("unsupported critical header (crit)", "malformed")
    unverified = _segment_json(token, 1, "payload")
    subject = unverified.get("sub")
    if not isinstance(subject, str) or not subject:
        raise TokenRejected("sub (the calling cluster's UUID) is missing", "unknown_cluster")
    key = known_keys.get(subject)
    if key is None:
        raise TokenRejected(
            "unknown cluster: no IstioFederation here has fetched this cluster's public metadata", "unknown_cluster"
        )
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
    except jwt.InvalidSignatureError as error:
        raise TokenRejected("bad signature", "bad_signature") from error
    except jwt.PyJWTError as error:
        raise TokenRejected(f"malformed token: {error}", "malformed") from error
    audience = claims.get("aud")
    if not isinstance(audience, str):
        raise TokenRejected("aud must be a single string (this cluster's UUID)", "audience")
    if audience != own_cluster_uuid:
        raise TokenRejected("wrong audience: the token is for another cluster", "audience")
    if claims.get("scope") != scope:
        raise TokenRejected("wrong scope", "scope")
    expires = claims.get("exp")
    if isinstance(expires, bool) or not isinstance(expires, int | float):
        raise TokenRejected("exp is missing", "malformed")
    # No leeway on exp: the issue's rule is "exp is not past"; skew is forgiven on nbf only, and a
    # one-minute token from a clock that runs behind still has most of its life left here.
    if now >= expires:
        raise TokenRejected("expired", "expired")
    not_before = claims.get("nbf")
    if not_before is not None:
        if isinstance(not_before, bool) or not isinstance(not_before, int | float):
            raise TokenRejected("nbf must be a number", "not_yet_valid")
        if not_before > now + leeway:
            raise TokenRejected("not yet valid (nbf is in the future)", "not_yet_valid")
    start = not_before if not_before is not None else now
    if expires - start > MAX_LIFETIME_SECONDS:
        raise TokenRejected(f"lifetime too long (at most {MAX_LIFETIME_SECONDS} s)", "lifetime")
    return Claims(
        issuer=str(claims.get("iss") or ""),
        subject=subject,
        audience=audience,
        scope=scope,
        not_before=int(start),
        expires=int(expires),
    )
