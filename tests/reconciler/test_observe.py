"""reconciler.observe: the one way ``reconciler run`` and ``check`` look at a remote.

A recording fetcher stands in for the network, so each test reads exactly which GETs were made and
with which token; the real-HTTPS runs of both commands are in ``test_sync.py`` and
``test_check.py``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trustme

from federation import conditions, tokens
from federation.documents.private import parse_private
from federation.documents.public import parse_public
from federation.keys import Keypair
from federation.status import StageFailure
from reconciler.fetch import Fetcher, FetchError, Response, TLSSettings
from reconciler.observation import LocalCluster, Problem, metadata_exchange
from reconciler.observe import observe
from tests.deckhouse_fixture import DeckhouseCluster
from tests.reconciler.harness import LOCAL_DOMAIN, LOCAL_UUID, ca_pem, federation, open_state, write_state

NOW = datetime(2030, 1, 1, tzinfo=UTC)
ENDPOINT = "https://metadata.cluster-b.example/metadata/"


@dataclass
class RecordingFetcher(Fetcher):
    """Answers from ``answers`` by URL suffix and remembers every request."""

    answers: dict[str, Response | FetchError] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def get(self, url: str, *, tls: TLSSettings, headers: dict[str, str] | None = None) -> Response:
        self.requests.append((url, dict(headers or {})))
        answer = next(value for suffix, value in self.answers.items() if url.endswith(suffix))
        if isinstance(answer, FetchError):
            raise answer
        return answer


def document(data: dict[str, Any], status: int = 200) -> Response:
    return Response(status, json.dumps(data).encode(), "application/json")


def claims_of(headers: dict[str, str]) -> dict[str, Any]:
    payload = headers["Authorization"].removeprefix("Bearer ").split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


@pytest.fixture
def remote() -> DeckhouseCluster:
    return DeckhouseCluster(root_ca_pem=ca_pem(trustme.CA()))


@pytest.fixture
def fetcher(remote: DeckhouseCluster) -> RecordingFetcher:
    return RecordingFetcher(
        {
            "/public/public.json": document(remote.public_document()),
            "/private/federation.json": document(remote.private_document()),
        }
    )


def run_observe(
    tmp_path: Path, fetcher: RecordingFetcher, *, local: LocalCluster, keypair: Keypair | Problem, **spec: Any
) -> Any:
    obj = federation("cluster-b", ENDPOINT, ca="")
    obj["spec"].update(spec)
    write_state(tmp_path, obj, federation("cluster-c", "https://c.example/metadata/", ca="", trust_domain="C.local"))
    store = open_state(tmp_path)
    try:
        return observe(obj, store=store, fetcher=fetcher, keypair=keypair, local=local, now=NOW)
    finally:
        store.stop()


@pytest.mark.parametrize("issuer", [tokens.ISSUER, "cluster-a-reconciler"])
def test_the_token_carries_the_issuer_and_deckhouse_claims(
    tmp_path: Path, fetcher: RecordingFetcher, remote: DeckhouseCluster, keypair: Keypair, issuer: str
) -> None:
    local = LocalCluster(LOCAL_UUID, LOCAL_DOMAIN, issuer=issuer)

    observation = run_observe(tmp_path, fetcher, local=local, keypair=keypair)

    (public_url, public_headers), (private_url, private_headers) = fetcher.requests
    assert (public_url, public_headers) == (f"{ENDPOINT}public/public.json", {})
    assert private_url == f"{ENDPOINT}private/federation.json"
    assert claims_of(private_headers) == {
        "iss": issuer,
        "sub": LOCAL_UUID,
        "aud": remote.cluster_uuid,
        "scope": "private-federation",
        "nbf": int(NOW.timestamp()),
        "exp": int(NOW.timestamp()) + 60,
    }
    assert observation.other_trust_domains == ("c.local",)
    exchange = metadata_exchange(observation, local=LocalCluster(LOCAL_UUID, LOCAL_DOMAIN))
    assert exchange.public == parse_public(remote.public_document())
    assert exchange.private == parse_private(remote.private_document())


def test_a_spec_that_cannot_work_contacts_nobody(tmp_path: Path, fetcher: RecordingFetcher, keypair: Keypair) -> None:
    local = LocalCluster(LOCAL_UUID, LOCAL_DOMAIN)

    observation = run_observe(tmp_path, fetcher, local=local, keypair=keypair, trustDomain=LOCAL_DOMAIN)

    assert fetcher.requests == []
    assert metadata_exchange(observation, local=LocalCluster(LOCAL_UUID, LOCAL_DOMAIN)).public == StageFailure(
        conditions.CONFIGURATION_ERROR,
        "spec.trustDomain cluster-a.local is this cluster's own trust domain: "
        "an IstioFederation names a remote cluster",
    )


def test_our_own_public_document_gets_no_token(
    tmp_path: Path, fetcher: RecordingFetcher, remote: DeckhouseCluster, keypair: Keypair
) -> None:
    local = LocalCluster(remote.cluster_uuid, LOCAL_DOMAIN)

    observation = run_observe(tmp_path, fetcher, local=local, keypair=keypair)

    assert [url for url, _ in fetcher.requests] == [f"{ENDPOINT}public/public.json"]
    assert metadata_exchange(observation, local=local).public == StageFailure(
        conditions.INVALID_PUBLIC,
        f"the endpoint serves this cluster's own metadata (clusterUUID {remote.cluster_uuid}): "
        "point spec.metadataEndpoint at the remote cluster",
    )


def test_without_a_key_the_private_document_is_not_asked_for(tmp_path: Path, fetcher: RecordingFetcher) -> None:
    missing = Problem("Secret istio-federation/x does not exist", "create it")

    observation = run_observe(tmp_path, fetcher, local=LocalCluster(LOCAL_UUID, LOCAL_DOMAIN), keypair=missing)

    assert len(fetcher.requests) == 1
    assert observation.private_blocked == missing
    assert metadata_exchange(observation, local=LocalCluster(LOCAL_UUID, LOCAL_DOMAIN)).private == StageFailure(
        conditions.TOKEN_GENERATION_FAILED, missing.message
    )
