"""``federation.tokens``: our signer, Deckhouse's exact token built by hand, and every way to fail.

One valid token is the base; each case changes one thing and expects the exact reason and code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from federation import keys, tokens
from tests.exporter.fixtures import CLUSTER_UUID, OTHER_UUID, REMOTE_UUID, b64url, compact_jws, deckhouse_token

NOW = 1_780_000_000
REMOTE = ed25519.Ed25519PrivateKey.generate()
OTHER = ed25519.Ed25519PrivateKey.generate()
STRANGER = ed25519.Ed25519PrivateKey.generate()
KNOWN = {REMOTE_UUID: REMOTE.public_key(), OTHER_UUID: OTHER.public_key()}


def verify(token: str, *, now: int = NOW, leeway: int = 30) -> tokens.Claims:
    return tokens.verify(token, own_cluster_uuid=CLUSTER_UUID, known_keys=KNOWN, now=now, leeway=leeway)


def test_our_signer_issues_deckhouse_claims_and_verify_accepts_them() -> None:
    token = tokens.issue(REMOTE, subject=REMOTE_UUID, audience=CLUSTER_UUID, now=NOW)
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))

    assert header["alg"] == "EdDSA"
    assert payload == {
        "iss": "d8-istio",
        "sub": REMOTE_UUID,
        "aud": CLUSTER_UUID,
        "scope": "private-federation",
        "nbf": NOW,
        "exp": NOW + 60,
    }
    assert verify(token) == tokens.Claims("d8-istio", REMOTE_UUID, CLUSTER_UUID, "private-federation", NOW, NOW + 60)


def test_hand_built_deckhouse_token_is_accepted() -> None:
    token = deckhouse_token(REMOTE, sub=REMOTE_UUID, aud=CLUSTER_UUID, now=NOW)
    assert token.split(".")[0] == "eyJhbGciOiJFZERTQSJ9"  # {"alg":"EdDSA"}, go-jose's exact header
    assert verify(token).subject == REMOTE_UUID


def test_a_key_published_with_deckhouse_labels_verifies() -> None:
    pem = keys.public_key_pem(REMOTE.public_key(), deckhouse_labels=True)
    assert pem.startswith("-----BEGIN ED25519 PUBLIC KEY-----")
    token = deckhouse_token(REMOTE, sub=REMOTE_UUID, aud=CLUSTER_UUID, now=NOW)
    claims = tokens.verify(
        token, own_cluster_uuid=CLUSTER_UUID, known_keys={REMOTE_UUID: keys.load_public_key(pem)}, now=NOW
    )
    assert claims.subject == REMOTE_UUID


def _hs256_with_public_key() -> str:
    secret = keys.public_key_pem(REMOTE.public_key()).encode()
    header = b64url(b'{"alg":"HS256","typ":"JWT"}')
    payload = b64url(
        json.dumps({"sub": REMOTE_UUID, "aud": CLUSTER_UUID, "scope": "private-federation", "exp": NOW + 60}).encode()
    )
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def _alg_none() -> str:
    header = b64url(b'{"alg":"none"}')
    payload = b64url(json.dumps({"sub": REMOTE_UUID, "aud": CLUSTER_UUID, "scope": "private-federation"}).encode())
    return f"{header}.{payload}."


def _swap_payload() -> str:
    """A genuine token whose payload is replaced: the signature no longer matches."""
    genuine = deckhouse_token(REMOTE, sub=REMOTE_UUID, aud=OTHER_UUID, now=NOW)
    forged = deckhouse_token(STRANGER, sub=REMOTE_UUID, aud=CLUSTER_UUID, now=NOW).split(".")[1]
    header, _, signature = genuine.split(".")
    return f"{header}.{forged}.{signature}"


@dataclass(frozen=True)
class Case:
    name: str
    token: Callable[[], str]
    reason: str
    code: str


def _dh(key: ed25519.Ed25519PrivateKey = REMOTE, **claims: object) -> Callable[[], str]:
    sub = str(claims.pop("sub", REMOTE_UUID))
    aud = claims.pop("aud", CLUSTER_UUID)
    return lambda: deckhouse_token(key, sub=sub, aud=aud, now=NOW, **claims)  # type: ignore[arg-type]


REJECTIONS = [
    Case("alg none", _alg_none, "algorithm must be EdDSA, got 'none'", "algorithm"),
    Case(
        "HS256 with the public key as secret",
        _hs256_with_public_key,
        "algorithm must be EdDSA, got 'HS256'",
        "algorithm",
    ),
    Case(
        "missing alg",
        lambda: compact_jws({}, {"sub": REMOTE_UUID}, REMOTE),
        "algorithm must be EdDSA, got 'None'",
        "algorithm",
    ),
    Case(
        "crit header",
        lambda: compact_jws({"alg": "EdDSA", "crit": ["exp"]}, {"sub": REMOTE_UUID}, REMOTE),
        "unsupported critical header (crit)",
        "malformed",
    ),
    Case("wrong key", _dh(STRANGER), "bad signature", "bad_signature"),
    Case("another known cluster signs as this one", _dh(OTHER), "bad signature", "bad_signature"),
    Case("payload swapped under a genuine signature", _swap_payload, "bad signature", "bad_signature"),
    Case(
        "expired",
        _dh(nbf=NOW - 120, exp=NOW - 60),
        "expired 60 s ago by this cluster's clock, with nbf 120 s ago: clock skew suspected, the caller's clock "
        "seems 120 s behind; synchronize the clocks (NTP)",
        "expired",
    ),
    Case(
        "exp equal to now",
        _dh(nbf=NOW - 60, exp=NOW),
        "expired 0 s ago by this cluster's clock, with nbf 60 s ago: clock skew suspected, the caller's clock "
        "seems 60 s behind; synchronize the clocks (NTP)",
        "expired",
    ),
    Case("expired more than a day ago", _dh(nbf=NOW - 90_000, exp=NOW - 89_940), "expired", "expired"),
    Case("exp missing", _dh(exp=None), "exp is missing", "malformed"),
    Case("exp a string", _dh(exp="later"), "exp is missing", "malformed"),
    Case(
        "nbf in the future beyond the leeway",
        _dh(nbf=NOW + 31, exp=NOW + 90),
        "not yet valid: nbf is 31 s ahead of this cluster's clock (leeway 30 s): clock skew suspected; synchronize "
        "the clocks (NTP)",
        "not_yet_valid",
    ),
    Case(
        "nbf more than a day ahead",
        _dh(nbf=NOW + 90_000, exp=NOW + 90_060),
        "not yet valid (nbf is in the future)",
        "not_yet_valid",
    ),
    Case("nbf not a number", _dh(nbf="soon"), "nbf must be a number", "not_yet_valid"),
    Case("wrong aud", _dh(aud="someone-else"), "wrong audience: the token is for another cluster", "audience"),
    Case(
        "token for another known cluster",
        _dh(aud=OTHER_UUID),
        "wrong audience: the token is for another cluster",
        "audience",
    ),
    Case("aud as a list", _dh(aud=[CLUSTER_UUID]), "aud must be a single string (this cluster's UUID)", "audience"),
    Case("aud missing", _dh(aud=None), "aud must be a single string (this cluster's UUID)", "audience"),
    Case("wrong scope", _dh(scope="private-multicluster"), "wrong scope", "scope"),
    Case("scope missing", _dh(scope=None), "wrong scope", "scope"),
    Case(
        "unknown sub",
        _dh(sub="unknown-cluster"),
        "unknown cluster: no IstioFederation here has fetched this cluster's public metadata",
        "unknown_cluster",
    ),
    Case(
        "sub missing",
        lambda: compact_jws({"alg": "EdDSA"}, {"aud": CLUSTER_UUID}, REMOTE),
        "sub (the calling cluster's UUID) is missing",
        "unknown_cluster",
    ),
    Case("over-long lifetime", _dh(exp=NOW + 601), "lifetime too long (at most 600 s)", "lifetime"),
    Case(
        "over-long lifetime without nbf", _dh(nbf=None, exp=NOW + 601), "lifetime too long (at most 600 s)", "lifetime"
    ),
    Case(
        "malformed base64",
        lambda: "eyJhbGciOiJFZERTQSJ9.!!!not-base64!!!.AAAA",
        "malformed token: payload is not base64url JSON",
        "malformed",
    ),
    Case(
        "header not JSON",
        lambda: f"{b64url(b'not json')}.e30.AAAA",
        "malformed token: header is not base64url JSON",
        "malformed",
    ),
    Case(
        "header a JSON list",
        lambda: f"{b64url(b'[1]')}.e30.AAAA",
        "malformed token: header is not a JSON object",
        "malformed",
    ),
    Case(
        "two segments",
        lambda: "eyJhbGciOiJFZERTQSJ9.e30",
        "malformed token: expected a compact JWS (header.payload.signature)",
        "malformed",
    ),
    Case("oversized", lambda: "a" * 4097, "token too large", "too_large"),
    Case(
        "signature not base64",
        lambda: deckhouse_token(REMOTE, sub=REMOTE_UUID, aud=CLUSTER_UUID, now=NOW).rpartition(".")[0] + ".@@@",
        "malformed token: Invalid crypto padding",
        "malformed",
    ),
]


@pytest.mark.parametrize("case", REJECTIONS, ids=[case.name for case in REJECTIONS])
def test_rejections(case: Case) -> None:
    with pytest.raises(tokens.TokenRejected) as raised:
        verify(case.token())
    assert (raised.value.reason, raised.value.code) == (case.reason, case.code)
    assert raised.value.code in tokens.REJECTION_CODES


def test_nbf_within_the_leeway_is_forgiven_and_the_leeway_is_configurable() -> None:
    token = deckhouse_token(REMOTE, sub=REMOTE_UUID, aud=CLUSTER_UUID, now=NOW + 20)
    assert verify(token).subject == REMOTE_UUID
    with pytest.raises(tokens.TokenRejected) as raised:
        verify(token, leeway=5)
    assert raised.value.reason == (
        "not yet valid: nbf is 20 s ahead of this cluster's clock (leeway 5 s): clock skew suspected; synchronize "
        "the clocks (NTP)"
    )


def test_exp_gets_no_leeway() -> None:
    token = deckhouse_token(REMOTE, sub=REMOTE_UUID, aud=CLUSTER_UUID, now=NOW - 61)
    with pytest.raises(tokens.TokenRejected) as raised:
        verify(token, leeway=300)
    assert raised.value.code == "expired"
    assert raised.value.reason.startswith("expired 1 s ago by this cluster's clock")


def test_ten_minutes_exactly_is_allowed() -> None:
    token = deckhouse_token(REMOTE, sub=REMOTE_UUID, aud=CLUSTER_UUID, now=NOW, exp=NOW + 600)
    assert verify(token).expires == NOW + 600


def test_no_known_keys_means_every_token_is_from_an_unknown_cluster() -> None:
    token = deckhouse_token(REMOTE, sub=REMOTE_UUID, aud=CLUSTER_UUID, now=NOW)
    with pytest.raises(tokens.TokenRejected) as raised:
        tokens.verify(token, own_cluster_uuid=CLUSTER_UUID, known_keys={}, now=NOW)
    assert raised.value.code == "unknown_cluster"
