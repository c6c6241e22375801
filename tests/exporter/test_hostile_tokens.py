"""Hostile JWTs get 401 with a reason, never a 500; clock skew is reported with its offset.

The attack run (issue 14) got HTTP 500 and a traceback from the exporter for a token whose claims
hold ``NaN`` and for a 1,200-2,000-deep JSON array in a segment.  Each case is checked against
``tokens.verify``, then against the exporter over a real socket (gunicorn, as deployed).  Clock
skew (issue 12, item 7): a token refused for its times says by how much the clocks differ.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.app import create_app
from federation import keys, tokens
from tests.exporter.cluster import PRIVATE, REMOTE_KEY, Holder, serve_args, world_objects
from tests.exporter.fixtures import CLUSTER_UUID, REMOTE_UUID, b64url, deckhouse_token, root_ca_pem, write_state
from tests.support import ServerProcess, free_port

NOW = 1_780_000_000
KNOWN = {REMOTE_UUID: REMOTE_KEY.public_key()}
HEADER = {"alg": "EdDSA"}
# The words the reconciler (reconciler.observation.refused_for_timing, formerly in reconciler.sync) and
# check look for in a 401 to say "clock skew" instead of "unknown cluster".
CLOCK_WORDS = ("expired", "not yet valid", "nbf")


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": "d8-istio",
        "sub": REMOTE_UUID,
        "aud": CLUSTER_UUID,
        "scope": "private-federation",
        "nbf": NOW,
        "exp": NOW + 60,
    }
    base.update(overrides)
    return base


def raw_jws(header: bytes, payload: bytes, key: ed25519.Ed25519PrivateKey = REMOTE_KEY) -> str:
    """A compact JWS over exactly these bytes (json.dumps would refuse or rewrite what attackers send)."""
    signing_input = b64url(header) + "." + b64url(payload)
    return signing_input + "." + b64url(key.sign(signing_input.encode("ascii")))


def payload_with(claim: str, literal: bytes) -> bytes:
    """Deckhouse's claims with one value replaced by a raw JSON literal."""
    text = json.dumps(claims(**{claim: "@@"}), separators=(",", ":")).encode()
    return text.replace(b'"@@"', literal)


@dataclass(frozen=True)
class Hostile:
    name: str
    token: Callable[[], str]
    reason: str


HOSTILE = [
    Hostile(
        "NaN exp",
        lambda: raw_jws(b'{"alg":"EdDSA"}', payload_with("exp", b"NaN")),
        "malformed token: payload refused: NaN is not a JSON number (only finite numbers are)",
    ),
    Hostile(
        "Infinity nbf",
        lambda: raw_jws(b'{"alg":"EdDSA"}', payload_with("nbf", b"-Infinity")),
        "malformed token: payload refused: -Infinity is not a JSON number (only finite numbers are)",
    ),
    Hostile(
        "exp overflowing a float",
        lambda: raw_jws(b'{"alg":"EdDSA"}', payload_with("exp", b"1e999")),
        "malformed token: payload refused: number 1e999 is out of range (not a finite number)",
    ),
    Hostile(
        "1,200-deep array in a claim",
        lambda: raw_jws(b'{"alg":"EdDSA"}', payload_with("scope", b"[" * 1200 + b"]" * 1200)),
        "malformed token: payload refused: nested deeper than the limit of 4 levels at line 1 column 120 (char 119)",
    ),
    Hostile(
        "2,000 unclosed brackets as the header",
        lambda: b64url(b"[" * 2000) + "." + b64url(b"{}") + ".AAAA",
        "malformed token: header refused: nested deeper than the limit of 4 levels at line 1 column 5 (char 4)",
    ),
    Hostile(
        "2,000-deep array as the payload",
        lambda: b64url(b'{"alg":"EdDSA"}') + "." + b64url(b"[" * 2000 + b"]" * 900) + ".AAAA",
        "malformed token: payload refused: nested deeper than the limit of 4 levels at line 1 column 5 (char 4)",
    ),
    Hostile(
        "2,800-digit exp",
        lambda: raw_jws(b'{"alg":"EdDSA"}', payload_with("exp", b"9" * 2800)),
        "malformed token: payload refused: number 99999999999999999999... has 2800 characters, more than the limit "
        "of 40",
    ),
    Hostile(
        "2,000-character sub",
        lambda: raw_jws(b'{"alg":"EdDSA"}', payload_with("sub", b'"' + b"u" * 2000 + b'"')),
        "malformed token: payload refused: string at sub has 2000 characters, more than the limit of 1024",
    ),
    Hostile(
        "70 claims",
        lambda: raw_jws(b'{"alg":"EdDSA"}', json.dumps({**claims(), **{f"c{n}": n for n in range(64)}}).encode()),
        "malformed token: payload refused: object at the top level has 70 members, more than the limit of 64",
    ),
    Hostile(
        "NaN in the header",
        lambda: raw_jws(b'{"alg":"EdDSA","x":NaN}', json.dumps(claims()).encode()),
        "malformed token: header refused: NaN is not a JSON number (only finite numbers are)",
    ),
    Hostile(
        "payload not UTF-8",
        lambda: raw_jws(b'{"alg":"EdDSA"}', b'{"sub":"\xff"}'),
        "malformed token: payload is not base64url JSON",
    ),
]


def verify(token: str, *, now: int = NOW, leeway: int = tokens.DEFAULT_LEEWAY_SECONDS) -> tokens.Claims:
    return tokens.verify(token, own_cluster_uuid=CLUSTER_UUID, known_keys=KNOWN, now=now, leeway=leeway)


@pytest.mark.parametrize("case", HOSTILE, ids=[case.name for case in HOSTILE])
def test_hostile_tokens_are_rejected_with_a_reason(case: Hostile) -> None:
    token = case.token()
    assert len(token) <= tokens.MAX_TOKEN_BYTES, "the attack must fit the size limit to reach the parser"
    with pytest.raises(tokens.TokenRejected) as raised:
        verify(token)
    assert (raised.value.reason, raised.value.code) == (case.reason, "malformed")
    assert raised.value.clock_offset is None


_SEGMENT = st.one_of(
    st.binary(max_size=200).map(b64url),
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=10),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
        max_leaves=20,
    ).map(lambda value: b64url(json.dumps(value).encode())),
    st.sampled_from(["", "e30", "W10", "bnVsbA", "TmFO", b64url(b"[" * 3000)]),
)


def outcome(token: str) -> str:
    """The rejection code, or "accepted"; any exception but TokenRejected fails the calling test."""
    try:
        verify(token)
    except tokens.TokenRejected as rejected:
        reason, code = rejected.reason, rejected.code
    else:
        return "accepted"
    assert len(reason) <= 200, reason  # the WWW-Authenticate text is cut at 200
    return code


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_SEGMENT, _SEGMENT, st.sampled_from(["", "AAAA", "!!", b64url(b"x" * 64)]))
def test_verify_raises_nothing_but_token_rejected(header: str, payload: str, signature: str) -> None:
    # A valid header too, so that hostile payloads reach the claim checks.
    for head in (header, b64url(b'{"alg":"EdDSA"}')):
        assert outcome(f"{head}.{payload}.{signature}") in tokens.REJECTION_CODES


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(st.integers(), st.floats(allow_nan=False), st.none(), st.text(max_size=5), st.booleans()),
    st.one_of(st.integers(), st.floats(allow_nan=False), st.none(), st.text(max_size=5), st.booleans()),
)
def test_any_signed_nbf_and_exp_give_claims_or_a_rejection(nbf: Any, exp: Any) -> None:
    token = deckhouse_token(REMOTE_KEY, sub=REMOTE_UUID, aud=CLUSTER_UUID, now=NOW, nbf=nbf, exp=exp)
    code = outcome(token)
    assert code in (*tokens.REJECTION_CODES, "accepted")
    if code == "accepted":
        accepted = verify(token)
        assert accepted.not_before <= NOW + tokens.DEFAULT_LEEWAY_SECONDS
        assert NOW < accepted.expires <= accepted.not_before + tokens.MAX_LIFETIME_SECONDS


# -- clock skew -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Skew:
    name: str
    nbf: int | None
    exp: int
    reason: str
    code: str
    offset: int | None


SKEWS = [
    Skew(
        "caller 10 minutes ahead",
        NOW + 600,
        NOW + 660,
        "not yet valid: nbf is 600 s ahead of this cluster's clock (leeway 300 s): clock skew suspected; synchronize "
        "the clocks (NTP)",
        "not_yet_valid",
        600,
    ),
    Skew(
        "caller 2 minutes behind",
        NOW - 120,
        NOW - 60,
        "expired 60 s ago by this cluster's clock, with nbf 120 s ago: clock skew suspected, the caller's clock seems "
        "120 s behind; synchronize the clocks (NTP)",
        "expired",
        -120,
    ),
    Skew(
        "expired, no nbf",
        None,
        NOW - 45,
        "expired 45 s ago by this cluster's clock: clock skew suspected, the caller's clock may be at least 45 s "
        "behind; synchronize the clocks (NTP)",
        "expired",
        -45,
    ),
    Skew("expired two days ago", NOW - 172_860, NOW - 172_800, "expired", "expired", None),
    Skew(
        "nbf two days ahead",
        NOW + 172_800,
        NOW + 172_860,
        "not yet valid (nbf is in the future)",
        "not_yet_valid",
        None,
    ),
]


@pytest.mark.parametrize("case", SKEWS, ids=[case.name for case in SKEWS])
def test_clock_skew_is_reported_with_the_offset(case: Skew) -> None:
    token = deckhouse_token(REMOTE_KEY, sub=REMOTE_UUID, aud=CLUSTER_UUID, now=NOW, nbf=case.nbf, exp=case.exp)
    with pytest.raises(tokens.TokenRejected) as raised:
        verify(token)
    assert (raised.value.reason, raised.value.code, raised.value.clock_offset) == (case.reason, case.code, case.offset)
    assert len(raised.value.reason) <= 200
    # The reconciler and check recognize a refusal for the token's times by these words.
    assert any(word in raised.value.reason.lower() for word in CLOCK_WORDS)


def test_the_default_leeway_forgives_five_minutes_ahead_and_no_more() -> None:
    assert tokens.DEFAULT_LEEWAY_SECONDS == 300
    ahead = deckhouse_token(REMOTE_KEY, sub=REMOTE_UUID, aud=CLUSTER_UUID, now=NOW + 300)
    assert verify(ahead).not_before == NOW + 300
    too_far = deckhouse_token(REMOTE_KEY, sub=REMOTE_UUID, aud=CLUSTER_UUID, now=NOW + 301)
    with pytest.raises(tokens.TokenRejected) as raised:
        verify(too_far)
    assert raised.value.clock_offset == 301


@pytest.mark.parametrize("case", SKEWS, ids=[case.name for case in SKEWS])
def test_the_exporter_puts_the_skew_in_its_401(case: Skew) -> None:
    app = create_app(Holder(), cluster_uuid=CLUSTER_UUID, clock=lambda: float(NOW))  # the default leeway
    token = deckhouse_token(REMOTE_KEY, sub=REMOTE_UUID, aud=CLUSTER_UUID, now=NOW, nbf=case.nbf, exp=case.exp)
    response = app.test_client().get(PRIVATE, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    expected: dict[str, Any] = {"error": "invalid_token", "reason": case.reason}
    if case.offset is not None:
        expected["clockOffsetSeconds"] = case.offset
    assert response.get_json() == expected
    assert response.headers["WWW-Authenticate"] == (f'Bearer error="invalid_token", error_description="{case.reason}"')


@pytest.mark.parametrize("case", HOSTILE, ids=[case.name for case in HOSTILE])
def test_the_exporter_answers_hostile_tokens_with_401(case: Hostile) -> None:
    app = create_app(Holder(), cluster_uuid=CLUSTER_UUID, clock=lambda: float(NOW))
    response = app.test_client().get(PRIVATE, headers={"Authorization": f"Bearer {case.token()}"})
    assert (response.status_code, response.get_json()) == (401, {"error": "invalid_token", "reason": case.reason})


# -- over a real socket, the exporter as deployed ---------------------------------------------------


@dataclass
class Exporter:
    base: str
    server: ServerProcess


@pytest.fixture(scope="module")
def exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    root = tmp_path_factory.mktemp("hostile-tokens")
    state = root / "state"
    state.mkdir()
    write_state(state, world_objects(keys.Keypair.generate(), root_ca_pem()))
    port = free_port()
    with ServerProcess(serve_args(port, "--state", str(state)), log_path=Path(root / "server.log")) as server:
        server.wait_http(f"http://127.0.0.1:{port}/readyz", timeout=30)
        yield Exporter(f"http://127.0.0.1:{port}", server)


def _get(exporter: Exporter, token: str) -> requests.Response:
    return requests.get(exporter.base + PRIVATE, headers={"Authorization": f"Bearer {token}"}, timeout=10)


@pytest.mark.slow
@pytest.mark.parametrize(
    "case",
    [
        case
        for case in HOSTILE
        if case.name
        in (
            "NaN exp",
            "1,200-deep array in a claim",
            "2,000 unclosed brackets as the header",
            "2,000-deep array as the payload",
            "2,800-digit exp",
        )
    ],
    ids=lambda case: case.name,
)
def test_hostile_tokens_get_401_over_a_real_socket(exporter: Exporter, case: Hostile) -> None:
    response = _get(exporter, case.token())
    assert response.status_code == 401, response.text
    assert response.json() == {"error": "invalid_token", "reason": case.reason}
    assert response.headers["WWW-Authenticate"] == f'Bearer error="invalid_token", error_description="{case.reason}"'
    assert "Traceback" not in exporter.server.log()
    assert "internal error" not in exporter.server.log()


@pytest.mark.slow
def test_skew_is_reported_over_a_real_socket(exporter: Exporter) -> None:
    ahead = deckhouse_token(REMOTE_KEY, sub=REMOTE_UUID, aud=CLUSTER_UUID, now=int(time.time()) + 600)
    response = _get(exporter, ahead)
    assert response.status_code == 401
    body = response.json()
    assert body["clockOffsetSeconds"] in (599, 600, 601)  # the real clocks tick between issue and check
    assert body["reason"] == (
        f"not yet valid: nbf is {body['clockOffsetSeconds']} s ahead of this cluster's clock (leeway 300 s): clock "
        "skew suspected; synchronize the clocks (NTP)"
    )
    assert f'error_description="{body["reason"]}"' in response.headers["WWW-Authenticate"]
    # And a token within the default leeway is served.
    within = deckhouse_token(REMOTE_KEY, sub=REMOTE_UUID, aud=CLUSTER_UUID, now=int(time.time()) + 240)
    assert _get(exporter, within).status_code == 200
