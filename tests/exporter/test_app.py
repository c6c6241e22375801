"""The exporter's HTTP behaviour through Flask's test client: documents, ETags, errors, the attack table.

The same attack table runs over real HTTPS against a real gunicorn in ``test_e2e.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from flask import Flask
from flask.testing import FlaskClient

from exporter import snapshot
from exporter.app import create_app
from exporter.snapshot import Snapshot
from federation import keys, tokens
from tests import deckhouse_shapes
from tests.exporter.cluster import (
    KEYPAIR,
    OTHER_KEY,
    PRIVATE,
    PUBLIC,
    REMOTE_KEY,
    ROOT_CA,
    SETTINGS,
    SPIFFE,
    STRANGER_KEY,
    Holder,
    world,
)
from tests.exporter.fixtures import (
    CLUSTER_UUID,
    OTHER_UUID,
    REMOTE_UUID,
    b64url,
    deckhouse_token,
    federation,
    service,
)

NOW = 1_780_000_000


EXPECTED_PRIVATE = {
    "ingressGateways": [{"address": "203.0.113.10", "port": 15443}],
    "publicServices": [
        {"hostname": "ratings.shop.svc.cluster-a.local", "ports": [{"name": "tls", "port": 8443, "protocol": "TLS"}]},
        {
            "hostname": "reviews.bookinfo.svc.cluster-a.local",
            "ports": [
                {"name": "http", "port": 9080, "protocol": "HTTP"},
                {"name": "grpc-api", "port": 9090, "protocol": "HTTP2"},
            ],
        },
    ],
}


def make_app(holder: Holder, *, clock: Callable[[], float] = lambda: float(NOW)) -> Flask:
    return create_app(holder, cluster_uuid=CLUSTER_UUID, token_leeway=30, clock=clock)


@pytest.fixture
def holder() -> Holder:
    return Holder()


@pytest.fixture
def client(holder: Holder) -> FlaskClient:
    return make_app(holder).test_client()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def good_token(now: int = NOW) -> str:
    return tokens.issue(REMOTE_KEY, subject=REMOTE_UUID, audience=CLUSTER_UUID, now=now)


# -- the attack table, shared with the end-to-end tests --------------------------------------------


@dataclass(frozen=True)
class Attack:
    name: str
    headers: Callable[[int], dict[str, str]]
    reason: str
    code: str


def _hs256(now: int) -> dict[str, str]:
    secret = keys.public_key_pem(REMOTE_KEY.public_key()).encode()
    header = b64url(b'{"alg":"HS256","typ":"JWT"}')
    claims = {"sub": REMOTE_UUID, "aud": CLUSTER_UUID, "scope": "private-federation", "nbf": now, "exp": now + 60}
    payload = b64url(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return bearer(f"{header}.{payload}.{b64url(signature)}")


def _none(now: int) -> dict[str, str]:
    claims = {"sub": REMOTE_UUID, "aud": CLUSTER_UUID, "scope": "private-federation", "nbf": now, "exp": now + 60}
    header = b64url(b'{"alg":"none"}')
    return bearer(f"{header}.{b64url(json.dumps(claims).encode())}.")


def _dh(key: ed25519.Ed25519PrivateKey = REMOTE_KEY, **claims: Any) -> Callable[[int], dict[str, str]]:
    sub = str(claims.pop("sub", REMOTE_UUID))
    aud = claims.pop("aud", CLUSTER_UUID)
    relative = {name: (value(0) if callable(value) else value) for name, value in claims.items()}

    def headers(now: int) -> dict[str, str]:
        shifted = {name: now + value if isinstance(value, int) else value for name, value in relative.items()}
        return bearer(deckhouse_token(key, sub=sub, aud=aud, now=now, **shifted))

    return headers


UNKNOWN = "unknown cluster: no IstioFederation here has fetched this cluster's public metadata"
ATTACKS = [
    Attack("no header", lambda now: {}, "Bearer authorization required", "missing_header"),
    Attack(
        "non-Bearer scheme",
        lambda now: {"Authorization": f"Basic {good_token(now)}"},
        "Bearer authorization required (the scheme must be Bearer)",
        "not_bearer",
    ),
    Attack("alg none", _none, "algorithm must be EdDSA, got 'none'", "algorithm"),
    Attack("HS256 with the public key as secret", _hs256, "algorithm must be EdDSA, got 'HS256'", "algorithm"),
    Attack("wrong key", _dh(STRANGER_KEY), "bad signature", "bad_signature"),
    # More than a day off, so the reasons name no clock offset (a second's tick would change it) and
    # the e2e server's default leeway refuses it too; the skew reports are in test_hostile_tokens.py.
    Attack("expired", _dh(nbf=-200_000, exp=-199_940), "expired", "expired"),
    Attack(
        "future nbf", _dh(nbf=200_000, exp=200_060), "not yet valid (nbf is in the future)", "not_yet_valid"
    ),
    Attack("wrong aud", _dh(aud="not-this-cluster"), "wrong audience: the token is for another cluster", "audience"),
    Attack("aud as a list", _dh(aud=[CLUSTER_UUID]), "aud must be a single string (this cluster's UUID)", "audience"),
    Attack("wrong scope", _dh(scope="private-multicluster"), "wrong scope", "scope"),
    Attack("unknown sub", _dh(STRANGER_KEY, sub="c0ffee00-0000-4000-8000-000000000000"), UNKNOWN, "unknown_cluster"),
    Attack("over-long lifetime", _dh(exp=3600), "lifetime too long (at most 600 s)", "lifetime"),
    Attack(
        "malformed base64",
        lambda now: bearer("eyJhbGciOiJFZERTQSJ9.*not*base64*.c2ln"),
        "malformed token: payload is not base64url JSON",
        "malformed",
    ),
    Attack("oversized token", lambda now: bearer("e" * 5000), "token too large", "too_large"),
    Attack(
        "token for another cluster",
        # A genuine token a trusted peer minted for cluster C, replayed here.
        lambda now: bearer(tokens.issue(REMOTE_KEY, subject=REMOTE_UUID, audience=OTHER_UUID, now=now)),
        "wrong audience: the token is for another cluster",
        "audience",
    ),
    Attack("a trusted peer signing as another", _dh(OTHER_KEY), "bad signature", "bad_signature"),
    Attack(
        "empty bearer",
        lambda now: {"Authorization": "Bearer "},
        "malformed token: expected a compact JWS (header.payload.signature)",
        "malformed",
    ),
]


def www_authenticate(reason: str) -> str:
    return f'Bearer error="invalid_token", error_description="{reason}"'


@pytest.mark.parametrize("attack", ATTACKS, ids=[attack.name for attack in ATTACKS])
def test_attack_table_gives_401_with_reason_and_no_private_data(client: FlaskClient, attack: Attack) -> None:
    response = client.get(PRIVATE, headers=attack.headers(NOW))
    assert response.status_code == 401
    assert response.mimetype == "application/json"
    assert response.get_json() == {"error": "invalid_token", "reason": attack.reason}
    assert response.headers["WWW-Authenticate"] == www_authenticate(attack.reason)
    assert "ETag" not in response.headers
    assert b"svc.cluster-a.local" not in response.data
    assert b"203.0.113.10" not in response.data


def test_auth_failures_are_counted_by_reason(client: FlaskClient) -> None:
    for attack in ATTACKS:
        client.get(PRIVATE, headers=attack.headers(NOW))
    metrics = client.get("/metrics").get_data(as_text=True)
    for code in {attack.code for attack in ATTACKS}:
        expected = sum(1 for attack in ATTACKS if attack.code == code)
        assert f'istio_federation_exporter_auth_failures_total{{reason="{code}"}} {float(expected)}' in metrics


def test_reason_echoing_attacker_input_is_quoted_safely(client: FlaskClient) -> None:
    header = b64url(b'{"alg":"a\\"b\'c"}')
    response = client.get(PRIVATE, headers=bearer(f"{header}.e30.AAAA"))
    assert response.get_json()["reason"] == "algorithm must be EdDSA, got 'a\"b\\'c'"
    assert response.headers["WWW-Authenticate"] == www_authenticate("algorithm must be EdDSA, got 'a?b?'c'")


# -- documents --------------------------------------------------------------------------------------


def test_public_json_is_deckhouse_shaped_with_our_identity(client: FlaskClient) -> None:
    response = client.get(PUBLIC)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert deckhouse_shapes.check_public(body) == []
    assert body == {
        "clusterUUID": CLUSTER_UUID,
        "authnKeyPub": keys.public_key_pem(KEYPAIR.private_key.public_key()),
        "rootCA": ROOT_CA,
    }
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_spiffe_bundle_is_shaped_and_holds_the_root_ca(client: FlaskClient) -> None:
    response = client.get(SPIFFE)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert deckhouse_shapes.check_spiffe(body) == []
    assert len(body["keys"]) == 1


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(good_token, id="our signer"),
        pytest.param(
            lambda: deckhouse_token(REMOTE_KEY, sub=REMOTE_UUID, aud=CLUSTER_UUID, now=NOW), id="Deckhouse JWS"
        ),
        pytest.param(
            lambda: deckhouse_token(OTHER_KEY, sub=OTHER_UUID, aud=CLUSTER_UUID, now=NOW - 50), id="other peer, late"
        ),
    ],
)
def test_federation_json_with_a_trusted_token(client: FlaskClient, token: Callable[[], str]) -> None:
    response = client.get(PRIVATE, headers=bearer(token()))
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert deckhouse_shapes.check_private(response.get_json()) == []
    assert response.get_json() == EXPECTED_PRIVATE
    assert response.headers["Cache-Control"] == "private, no-cache"
    assert response.headers["Vary"] == "Authorization"


def test_bearer_scheme_is_case_insensitive(client: FlaskClient) -> None:
    assert client.get(PRIVATE, headers={"Authorization": f"bearer {good_token()}"}).status_code == 200


@pytest.mark.parametrize("path", [PUBLIC, SPIFFE, PRIVATE])
def test_etag_and_if_none_match_give_304(client: FlaskClient, path: str) -> None:
    auth = bearer(good_token())
    first = client.get(path, headers=auth)
    etag = first.headers["ETag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    for candidate in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = client.get(path, headers={**auth, "If-None-Match": candidate})
        assert (again.status_code, again.data, again.headers["ETag"]) == (304, b"", etag), candidate
    changed = client.get(path, headers={**auth, "If-None-Match": '"stale"'})
    assert (changed.status_code, changed.data) == (200, first.data)


def test_304_on_private_needs_a_valid_token_first(client: FlaskClient) -> None:
    etag = client.get(PRIVATE, headers=bearer(good_token())).headers["ETag"]
    response = client.get(PRIVATE, headers={"If-None-Match": etag})
    assert response.status_code == 401


def test_etag_changes_when_the_document_changes(holder: Holder, client: FlaskClient) -> None:
    before = client.get(PRIVATE, headers=bearer(good_token())).headers["ETag"]
    holder.current = snapshot.build(world(public_services=()), SETTINGS, generation=2)
    response = client.get(PRIVATE, headers={**bearer(good_token()), "If-None-Match": before})
    assert response.status_code == 200
    assert response.get_json()["publicServices"] == []
    assert response.headers["ETag"] != before


def test_documents_are_served_from_the_snapshot_bytes(holder: Holder, client: FlaskClient) -> None:
    assert holder.current.public is not None
    assert client.get(PUBLIC).data == holder.current.public.body


def test_head_answers_headers_only(client: FlaskClient) -> None:
    response = client.head(PUBLIC)
    assert (response.status_code, response.data) == (200, b"")
    assert response.headers["ETag"]


def test_request_bodies_are_ignored(client: FlaskClient) -> None:
    plain = client.get(PUBLIC)
    with_body = client.get(PUBLIC, data=b"\x00" * 100_000, content_type="application/octet-stream")
    assert (with_body.status_code, with_body.data) == (200, plain.data)


# -- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/", "/metadata/", "/metadata/public/", PUBLIC + "/", "/metadata/private/multicluster.json", "/../etc/passwd"],
)
def test_other_paths_get_json_404(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert response.get_json() == {"error": "not_found", "message": "no such path"}


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"])
@pytest.mark.parametrize("path", [PUBLIC, PRIVATE, "/readyz"])
def test_other_methods_get_json_405_with_allow(client: FlaskClient, method: str, path: str) -> None:
    response = client.open(path, method=method, data=b'{"ignored": true}')
    assert response.status_code == 405
    assert response.mimetype == "application/json"
    assert response.get_json() == {"error": "method_not_allowed", "message": f"method {method} is not allowed here"}
    assert response.headers["Allow"] == "GET, HEAD"


class Exploding:
    @property
    def current(self) -> Snapshot:
        raise RuntimeError("secret internals /etc/shadow")


def test_a_bug_gives_json_500_without_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    client = create_app(Exploding(), cluster_uuid=CLUSTER_UUID).test_client()
    response = client.get(PUBLIC)
    assert response.status_code == 500
    assert response.get_json() == {"error": "internal_error", "message": "internal error; see the exporter's log"}
    assert b"Traceback" not in response.data
    assert b"shadow" not in response.data
    assert "internal error answering GET /metadata/public/public.json" in caplog.text


# -- health, readiness, metrics -----------------------------------------------------------------------


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})


def test_ready_when_synced_with_identity(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert (response.status_code, response.get_json()) == (200, {"ready": True})


def test_not_ready_and_503_until_synced(holder: Holder, client: FlaskClient) -> None:
    holder.current = snapshot.EMPTY
    assert client.get("/readyz").get_json() == {"ready": False, "reasons": ["the object cache is not synced yet"]}
    for path, what in ((PUBLIC, "public metadata"), (SPIFFE, "the SPIFFE bundle")):
        response = client.get(path)
        assert response.status_code == 503
        assert response.get_json() == {
            "error": "unavailable",
            "message": f"{what} is not available yet",
            "reasons": ["the object cache is not synced yet"],
        }
    assert client.get(PRIVATE, headers=bearer(good_token())).status_code == 503


def test_missing_identity_keeps_public_json_unavailable_and_says_what_to_create(
    holder: Holder, client: FlaskClient
) -> None:
    holder.current = snapshot.build(world(keypair_secret=None), SETTINGS, generation=2)
    ready = client.get("/readyz")
    assert ready.status_code == 503
    [reason] = ready.get_json()["reasons"]
    assert reason.startswith("Secret istio-federation/istio-federation-authn-keypair not found: create it with")
    response = client.get(PUBLIC)
    assert response.status_code == 503
    assert b'"authnKeyPub"' not in response.data


def test_metrics_count_requests_by_route_and_code_and_describe_the_snapshot(client: FlaskClient) -> None:
    client.get(PUBLIC)
    client.get(PUBLIC)
    client.get(PRIVATE)
    client.get("/nowhere")
    client.post(PUBLIC)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type == "text/plain; version=0.0.4; charset=utf-8"
    text = response.get_data(as_text=True)
    for line in (
        'istio_federation_exporter_requests_total{code="200",path="/metadata/public/public.json"} 2.0',
        'istio_federation_exporter_requests_total{code="401",path="/metadata/private/federation.json"} 1.0',
        'istio_federation_exporter_requests_total{code="404",path="other"} 1.0',
        'istio_federation_exporter_requests_total{code="405",path="/metadata/public/public.json"} 1.0',
        "istio_federation_exporter_public_services 2.0",
        'istio_federation_exporter_ingress_gateways{source="loadbalancer"} 1.0',
        "istio_federation_exporter_trusted_clusters 2.0",
        "istio_federation_exporter_ready 1.0",
    ):
        assert line in text, line


def test_skips_appear_in_metrics(holder: Holder, client: FlaskClient) -> None:
    holder.current = snapshot.build(
        world(public_services=(service("ext", service_type="ExternalName"), service("p", ports=[{"port": 1}]))),
        SETTINGS,
        generation=2,
    )
    text = client.get("/metrics").get_data(as_text=True)
    assert 'istio_federation_exporter_skipped{kind="service",reason="external_name"} 1.0' in text
    assert 'istio_federation_exporter_skipped{kind="port",reason="unnamed_port"} 1.0' in text
    assert 'istio_federation_exporter_skipped{kind="service",reason="no_usable_ports"} 1.0' in text


def test_each_app_has_its_own_registry(holder: Holder) -> None:
    first, second = make_app(holder).test_client(), make_app(holder).test_client()
    first.get(PUBLIC)
    assert 'path="/metadata/public/public.json"' not in second.get("/metrics").get_data(as_text=True)


def test_a_federation_added_later_is_trusted_after_the_rebuild(holder: Holder, client: FlaskClient) -> None:
    newcomer = ed25519.Ed25519PrivateKey.generate()
    token = tokens.issue(newcomer, subject="d00d0000-0000-4000-8000-000000000004", audience=CLUSTER_UUID, now=NOW)
    assert client.get(PRIVATE, headers=bearer(token)).get_json()["reason"] == UNKNOWN
    holder.current = snapshot.build(
        world(federations=(federation("cluster-d", "d00d0000-0000-4000-8000-000000000004", newcomer.public_key()),)),
        SETTINGS,
        generation=2,
    )
    assert client.get(PRIVATE, headers=bearer(token)).status_code == 200
