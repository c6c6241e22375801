"""The EdDSA JWTs that authenticate a remote reconciler to this cluster's exporter.

Claims are Deckhouse's, so either implementation can read the other's private metadata:
``iss`` (``d8-istio``), ``sub`` (caller's cluster UUID), ``aud`` (callee's cluster UUID, a
string), ``scope`` (``private-federation``), ``nbf`` and ``exp`` (one minute later).

Verification is stricter than Deckhouse's: the algorithm must be exactly EdDSA (no ``none``, no
HMAC with the public key as secret), ``aud`` must be a string, ``nbf`` is honoured, and a token
may live at most ten minutes.

The header and the payload are decoded by :mod:`federation.boundedjson` with small limits before
anything else looks at them, so a hostile token (``NaN`` in a claim, a 2,000-deep array, a
5,000-digit number) is refused with a reason, never a crash.

Clock skew: ``nbf`` may be ahead of this cluster's clock by the leeway (default 5 minutes);
``exp`` gets none, as in Deckhouse.  When a token is refused for its times and the clocks are off by
less than a day, the reason says so and gives the measured offset in seconds
(:attr:`TokenRejected.clock_offset`), so the caller can put it in its condition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives.asymmetric import ed25519

from federation import boundedjson

ISSUER = "d8-istio"
SCOPE_PRIVATE_FEDERATION = "private-federation"
ALGORITHM = "EdDSA"
DEFAULT_TTL_SECONDS = 60
MAX_LIFETIME_SECONDS = 600
# Clusters without NTP drift by tens of ppm (a few seconds a day, minutes within months), and a
# cluster running NTP can still start minutes off until it syncs.  Five minutes is the skew
# Kerberos tolerates by default (RFC 4120 §1.7) for the same reason; Deckhouse checks no nbf at
# all.  It only widens when a token becomes valid, never how long it lives: exp gets no leeway.
DEFAULT_LEEWAY_SECONDS = 300
# A refusal for the token's times reports the clock offset when it is below this: beyond a day
# it is rather a replayed or forged token than a clock that drifted.
SKEW_REPORT_SECONDS = 86_400
MAX_TOKEN_BYTES = 4096
# A JWT's header and payload are flat objects of a few short claims (Deckhouse's: six).
SEGMENT_LIMITS: Final = boundedjson.Limits(
    max_bytes=MAX_TOKEN_BYTES, max_depth=4, max_number_chars=40, max_string_chars=1024, max_members=64
)

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

    ``clock_offset`` is set when the token was refused for its times and a clock skew is likely:
    how many seconds the caller's clock seems ahead of ours (negative when it is behind).
    """

    def __init__(self, reason: str, code: str = "malformed", *, clock_offset: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.clock_offset = clock_offset


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
        raw = jwt.utils.base64url_decode(padded.encode("ascii"))
    except (IndexError, ValueError, UnicodeError) as error:
        raise TokenRejected(f"malformed token: {what} is not base64url JSON", "malformed") from error
    try:
        decoded = boundedjson.loads(raw, SEGMENT_LIMITS)
    except boundedjson.InvalidJSON as error:
        if not error.limit and error.problem.startswith("not valid"):
            raise TokenRejected(f"malformed token: {what} is not base64url JSON", "malformed") from error
        raise TokenRejected(f"malformed token: {what} refused: {error.problem}", "malformed") from error
    if not isinstance(decoded, dict):
        raise TokenRejected(f"malformed token: {what} is not a JSON object", "malformed")
    return decoded


def _expired(now: int, expires: float, not_before: float | None) -> TokenRejected:
    """Expired; with a fresh-looking token, a caller whose clock runs behind ours is the likely cause."""
    ago = now - expires
    if ago > SKEW_REPORT_SECONDS:
        return TokenRejected("expired", "expired")
    if not_before is not None and 0 <= now - not_before <= SKEW_REPORT_SECONDS:
        # Tokens are minted for each request with nbf = the caller's now: now - nbf is how far
        # the caller's clock is behind ours (less the time the request took).
        behind = round(now - not_before)
        return TokenRejected(
            f"expired {round(ago)} s ago by this cluster's clock, with nbf {behind} s ago: clock skew suspected, "
            f"the caller's clock seems {behind} s behind; synchronize the clocks (NTP)",
            "expired",
            clock_offset=-behind,
        )
    return TokenRejected(
        f"expired {round(ago)} s ago by this cluster's clock: clock skew suspected, the caller's clock may be "
        f"at least {round(ago)} s behind; synchronize the clocks (NTP)",
        "expired",
        clock_offset=-round(ago),
    )


def _not_yet_valid(now: int, not_before: float, leeway: int) -> TokenRejected:
    """nbf beyond the leeway: the caller's clock runs ahead of ours."""
    ahead = not_before - now
    if ahead > SKEW_REPORT_SECONDS:
        return TokenRejected("not yet valid (nbf is in the future)", "not_yet_valid")
    return TokenRejected(
        f"not yet valid: nbf is {round(ahead)} s ahead of this cluster's clock (leeway {leeway} s): clock skew "
        "suspected; synchronize the clocks (NTP)",
        "not_yet_valid",
        clock_offset=round(ahead),
    )


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
    not_before = claims.get("nbf")
    if not_before is not None and (isinstance(not_before, bool) or not isinstance(not_before, int | float)):
        raise TokenRejected("nbf must be a number", "not_yet_valid")
    # No leeway on exp, as in Deckhouse: the leeway forgives a caller whose clock is ahead (its nbf
    # looks early here), never a token that has lived its life.
    if now >= expires:
        raise _expired(now, expires, not_before)
    if not_before is not None and not_before > now + leeway:
        raise _not_yet_valid(now, not_before, leeway)
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
