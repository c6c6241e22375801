"""The exporter as it runs: the ``istio-federation`` launcher, real gunicorn, real HTTP and TLS.

Both backends: a state directory (edited on disk while the server runs) and the Kubernetes API
test double (objects added, relabelled, removed and their load-balancer address changed).  Every
wait is bounded and every server is stopped by the context manager that started it.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ed25519

from federation import keys, ownership, resources, tokens
from federation.commandline import EXIT_USAGE
from istio_federation import cli as launcher
from tests import deckhouse_shapes

# Keys of the trusted peers named in the state: the attack table signs with these module keys.
from tests.exporter.cluster import OTHER_KEY, REMOTE_KEY, make_tls, serve_args, world_objects
from tests.exporter.fixtures import (
    CLUSTER_DOMAIN,
    CLUSTER_UUID,
    NAMESPACE,
    OTHER_UUID,
    REMOTE_UUID,
    deckhouse_token,
    federation,
    gateway_service,
    remove_state,
    root_ca_pem,
    service,
    write_state,
)
from tests.exporter.test_app import ATTACKS, Attack, www_authenticate
from tests.kubeapi.server import KubeApiDouble
from tests.support import ServerProcess, free_port, wait_until

PUBLIC = "/metadata/public/public.json"
SPIFFE = "/metadata/public/spiffe-bundle-endpoint"
PRIVATE = "/metadata/private/federation.json"
WAIT = 15.0

pytestmark = pytest.mark.slow


@dataclass
class Running:
    server: ServerProcess
    base: str
    session: requests.Session
    state: Path | None = None
    verify: str | bool = True

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        # verify per request: a session's verify loses to REQUESTS_CA_BUNDLE from the environment.
        return self.session.get(self.base + path, timeout=5, verify=self.verify, **kwargs)

    def private(self) -> requests.Response:
        return self.get(
            PRIVATE,
            headers=bearer(tokens.issue(REMOTE_KEY, subject=REMOTE_UUID, audience=CLUSTER_UUID, now=int(time.time()))),
        )

    def wait_private(self, predicate: Any, what: str) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        def check() -> bool:
            response = self.private()
            if response.status_code != 200:
                return False
            seen.update(response.json())
            return bool(predicate(response.json()))

        assert wait_until(check, timeout=WAIT, interval=0.1), f"{what} never happened; last {seen}\n{self.server.log()}"
        return seen


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def tls_state_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One HTTPS exporter over a state directory, shared by the read-only tests of this module."""
    root = tmp_path_factory.mktemp("tls-state")
    state = root / "state"
    state.mkdir()
    keypair = keys.Keypair.generate()
    write_state(state, world_objects(keypair, root_ca_pem()))
    tls = make_tls(root)
    port = free_port()
    with ServerProcess(serve_args(port, "--state", str(state), tls=tls), log_path=root / "server.log") as server:
        context = ssl.create_default_context(cafile=str(tls.ca_file))
        server.wait_http(f"https://127.0.0.1:{port}/readyz", context=context, timeout=30)
        session = requests.Session()
        try:
            yield Running(server, f"https://127.0.0.1:{port}", session, state, str(tls.ca_file))
        finally:
            session.close()


# -- HTTPS over a state directory ------------------------------------------------------------------


def test_documents_over_tls_fit_deckhouse_shapes(tls_state_server: Running) -> None:
    public = tls_state_server.get(PUBLIC)
    assert public.status_code == 200
    assert public.headers["Content-Type"] == "application/json"
    assert deckhouse_shapes.check_public(public.json()) == []
    assert public.json()["clusterUUID"] == CLUSTER_UUID
    assert public.json()["authnKeyPub"].startswith("-----BEGIN PUBLIC KEY-----")

    bundle = tls_state_server.get(SPIFFE)
    assert (bundle.status_code, bundle.headers["Content-Type"]) == (200, "application/json")
    assert deckhouse_shapes.check_spiffe(bundle.json()) == []

    private = tls_state_server.private()
    assert (private.status_code, private.headers["Content-Type"]) == (200, "application/json")
    assert deckhouse_shapes.check_private(private.json()) == []
    assert private.json() == {
        "ingressGateways": [{"address": "203.0.113.10", "port": 15443}],
        "publicServices": [
            {
                "hostname": "reviews.bookinfo.svc.cluster-a.local",
                "ports": [{"name": "http", "port": 9080, "protocol": "HTTP"}],
            }
        ],
    }


def test_hand_built_deckhouse_token_is_accepted_over_tls(tls_state_server: Running) -> None:
    token = deckhouse_token(OTHER_KEY, sub=OTHER_UUID, aud=CLUSTER_UUID, now=int(time.time()))
    response = tls_state_server.get(PRIVATE, headers=bearer(token))
    assert response.status_code == 200
    assert response.json()["publicServices"][0]["hostname"] == "reviews.bookinfo.svc.cluster-a.local"


@pytest.mark.parametrize("attack", ATTACKS, ids=[attack.name for attack in ATTACKS])
def test_attack_table_over_tls(tls_state_server: Running, attack: Attack) -> None:
    response = tls_state_server.get(PRIVATE, headers=attack.headers(int(time.time())))
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_token", "reason": attack.reason}
    assert response.headers["WWW-Authenticate"] == www_authenticate(attack.reason)
    assert b"reviews" not in response.content


def test_etag_304_over_tls(tls_state_server: Running) -> None:
    first = tls_state_server.get(PUBLIC)
    second = tls_state_server.get(PUBLIC, headers={"If-None-Match": first.headers["ETag"]})
    assert (second.status_code, second.content, second.headers["ETag"]) == (304, b"", first.headers["ETag"])


def test_errors_over_tls_are_json_without_traces(tls_state_server: Running) -> None:
    missing = tls_state_server.get("/metadata/private/multicluster.json")
    assert (missing.status_code, missing.json()) == (404, {"error": "not_found", "message": "no such path"})
    server = tls_state_server
    wrong = server.session.post(server.base + PUBLIC, data=b"x" * 10_000, timeout=5, verify=server.verify)
    assert wrong.status_code == 405
    assert wrong.json() == {"error": "method_not_allowed", "message": "method POST is not allowed here"}
    assert wrong.headers["Allow"] == "GET, HEAD"
    with_body = server.session.request("GET", server.base + PUBLIC, data=b"{}" * 1000, timeout=5, verify=server.verify)
    assert with_body.status_code == 200


def test_metrics_and_health_over_tls(tls_state_server: Running) -> None:
    assert tls_state_server.get(PRIVATE).status_code == 401
    assert tls_state_server.get("/healthz").json() == {"status": "ok"}
    assert tls_state_server.get("/readyz").json() == {"ready": True}
    text = tls_state_server.get("/metrics").text
    assert 'istio_federation_exporter_requests_total{code="200",path="/metadata/public/public.json"}' in text
    assert "istio_federation_exporter_public_services 1.0" in text
    assert 'istio_federation_exporter_ingress_gateways{source="loadbalancer"} 1.0' in text
    assert 'istio_federation_exporter_auth_failures_total{reason="missing_header"}' in text


def test_plain_http_is_refused_on_the_tls_port(tls_state_server: Running) -> None:
    with pytest.raises(requests.ConnectionError):
        requests.get(tls_state_server.base.replace("https", "http") + PUBLIC, timeout=5)


# -- a state directory edited while serving -----------------------------------------------------------


@pytest.fixture
def http_state_server(tmp_path: Path) -> Iterator[Running]:
    state = tmp_path / "state"
    state.mkdir()
    port = free_port()
    with ServerProcess(serve_args(port, "--state", str(state)), log_path=tmp_path / "server.log") as server:
        session = requests.Session()
        try:
            yield Running(server, f"http://127.0.0.1:{port}", session, state)
        finally:
            session.close()


def test_not_ready_until_identity_exists_then_documents_follow_the_state(http_state_server: Running) -> None:
    running, state = http_state_server, http_state_server.state
    assert state is not None

    def answers(path: str, code: int) -> bool:
        try:
            return running.get(path).status_code == code
        except requests.ConnectionError:
            return False

    assert wait_until(lambda: answers("/readyz", 503), timeout=WAIT), running.server.log()
    reasons = running.get("/readyz").json()["reasons"]
    assert reasons[0].startswith("Secret istio-federation/istio-federation-authn-keypair not found: create it with")
    assert reasons[1].startswith("ConfigMap istio-federation/istio-ca-root-cert not found")
    assert running.get(PUBLIC).status_code == 503
    assert wait_until(
        lambda: "not serving: Secret istio-federation/istio-federation-authn-keypair not found" in running.server.log()
    )

    keypair = keys.Keypair.generate()
    write_state(state, world_objects(keypair, root_ca_pem()))
    assert wait_until(lambda: answers("/readyz", 200), timeout=WAIT), running.server.log()
    assert running.get(PUBLIC).json()["authnKeyPub"] == keys.public_key_pem(keypair.private_key.public_key())

    # Add a public service.
    write_state(state, [service("details", "shop", ports=[{"name": "grpc", "port": 9090}])])
    running.wait_private(
        lambda doc: (
            [s["hostname"] for s in doc["publicServices"]]
            == ["details.shop.svc.cluster-a.local", "reviews.bookinfo.svc.cluster-a.local"]
        ),
        "adding details",
    )
    # Relabel it with a value: no longer public.
    write_state(state, [service("details", "shop", labels={ownership.PUBLIC_SERVICE_LABEL: "yes"})])
    running.wait_private(lambda doc: len(doc["publicServices"]) == 1, "relabelling details")
    assert wait_until(lambda: "reason=label_value_not_empty" in running.server.log())
    # Remove the other.
    remove_state(state, "Service", "reviews", "bookinfo")
    running.wait_private(lambda doc: doc["publicServices"] == [], "removing reviews")
    # The gateway's load-balancer address changes.
    write_state(state, [gateway_service(ingress=[{"hostname": "lb.example.com"}])])
    running.wait_private(
        lambda doc: doc["ingressGateways"] == [{"address": "lb.example.com", "port": 15443}], "gateway address change"
    )
    # The advertise ConfigMap wins over discovery.
    write_state(
        state,
        [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "metadata-exporter-ingressgateway-advertise", "namespace": NAMESPACE},
                "data": {"gateways.json": json.dumps([{"address": "198.51.100.9", "port": 443}])},
            }
        ],
    )
    running.wait_private(
        lambda doc: doc["ingressGateways"] == [{"address": "198.51.100.9", "port": 443}], "advertise ConfigMap"
    )


def test_a_new_federation_becomes_trusted_without_restart(http_state_server: Running) -> None:
    state = http_state_server.state
    assert state is not None
    write_state(state, world_objects(keys.Keypair.generate(), root_ca_pem()))
    newcomer, newcomer_uuid = ed25519.Ed25519PrivateKey.generate(), "d00d0000-0000-4000-8000-000000000004"

    def status(token_key: ed25519.Ed25519PrivateKey) -> int:
        token = tokens.issue(token_key, subject=newcomer_uuid, audience=CLUSTER_UUID, now=int(time.time()))
        try:
            return http_state_server.get(PRIVATE, headers=bearer(token)).status_code
        except requests.ConnectionError:
            return 0

    assert wait_until(lambda: status(newcomer) == 401, timeout=WAIT), http_state_server.server.log()
    write_state(state, [federation("cluster-d", newcomer_uuid, newcomer.public_key())])
    assert wait_until(lambda: status(newcomer) == 200, timeout=WAIT), http_state_server.server.log()


# -- certificate rotation ----------------------------------------------------------------------------


def test_rotated_certificate_files_reach_new_connections(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    write_state(state, world_objects(keys.Keypair.generate(), root_ca_pem()))
    first = make_tls(tmp_path)
    port = free_port()
    with ServerProcess(serve_args(port, "--state", str(state), tls=first), log_path=tmp_path / "server.log") as server:
        server.wait_http(
            f"https://127.0.0.1:{port}/healthz", context=ssl.create_default_context(cafile=str(first.ca_file))
        )
        rotated = make_tls(tmp_path / "..")  # a different CA, written over the same file names below
        rotated.cert.replace(first.cert)
        rotated.key.replace(first.key)

        def served_by_new_ca() -> bool:
            try:
                return requests.get(f"https://127.0.0.1:{port}/healthz", verify=str(rotated.ca_file), timeout=5).ok
            except requests.exceptions.SSLError:
                return False

        assert wait_until(served_by_new_ca, timeout=WAIT), server.log()
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"https://127.0.0.1:{port}/healthz", verify=str(first.ca_file), timeout=5)


# -- the Kubernetes backend, through the API test double -----------------------------------------------


@pytest.fixture
def kube_server(kube_api: KubeApiDouble, tmp_path: Path) -> Iterator[tuple[Running, KubeApiDouble]]:
    for obj in world_objects(keys.Keypair.generate(), root_ca_pem()):
        kube_api.seed(obj)
    kubeconfig = tmp_path / "kubeconfig"
    kube_api.write_kubeconfig(kubeconfig)
    tls = make_tls(tmp_path)
    port = free_port()
    args = serve_args(port, "--kubeconfig", str(kubeconfig), tls=tls)
    with ServerProcess(args, log_path=tmp_path / "server.log") as server:
        server.wait_http(
            f"https://127.0.0.1:{port}/readyz", context=ssl.create_default_context(cafile=str(tls.ca_file)), timeout=30
        )
        session = requests.Session()
        try:
            yield Running(server, f"https://127.0.0.1:{port}", session, None, str(tls.ca_file)), kube_api
        finally:
            session.close()


def _delete(double: KubeApiDouble, path: str, tmp_path: Path) -> None:
    ca_file = tmp_path / "kube-ca.pem"
    ca_file.write_bytes(double.ca_pem)
    response = requests.delete(
        double.url + path, headers={"Authorization": f"Bearer {double.admin_token}"}, verify=str(ca_file), timeout=5
    )
    assert response.status_code == 200, response.text


def test_kubernetes_backend_snapshot_follows_services_and_gateways(
    kube_server: tuple[Running, KubeApiDouble], tmp_path: Path
) -> None:
    running, double = kube_server
    assert running.private().json()["publicServices"][0]["hostname"] == "reviews.bookinfo.svc.cluster-a.local"

    # Serving never lists: requests are answered from the snapshot.
    def reads() -> int:
        # Every GET that is not a watch (watches reconnect on their own schedule).
        return sum(1 for method, target in list(double.request_log) if method == "GET" and "watch=" not in target)

    reads_before = reads()
    for _ in range(20):
        assert running.private().status_code == 200
        assert running.get(PUBLIC).status_code == 200
    assert reads() == reads_before

    double.seed(service("details", "shop", ports=[{"name": "tcp-db", "port": 5432}]))
    running.wait_private(lambda doc: len(doc["publicServices"]) == 2, "adding details")
    double.seed(service("details", "shop", labels={ownership.PUBLIC_SERVICE_LABEL: "true"}))
    running.wait_private(
        lambda doc: [s["hostname"] for s in doc["publicServices"]] == ["reviews.bookinfo.svc.cluster-a.local"],
        "relabelling details",
    )
    _delete(double, "/api/v1/namespaces/bookinfo/services/reviews", tmp_path)
    running.wait_private(lambda doc: doc["publicServices"] == [], "removing reviews")

    double.seed(gateway_service(ingress=[{"ip": "198.51.100.77"}]))
    running.wait_private(
        lambda doc: doc["ingressGateways"] == [{"address": "198.51.100.77", "port": 15443}], "gateway address change"
    )


def test_kubernetes_backend_trust_follows_federation_status(
    kube_server: tuple[Running, KubeApiDouble], tmp_path: Path
) -> None:
    running, double = kube_server
    token = deckhouse_token(REMOTE_KEY, sub=REMOTE_UUID, aud=CLUSTER_UUID, now=int(time.time()))
    assert running.get(PRIVATE, headers=bearer(token)).status_code == 200
    group, version = resources.ISTIO_FEDERATION.group, resources.ISTIO_FEDERATION.version
    _delete(double, f"/apis/{group}/{version}/istiofederations/cluster-b", tmp_path)

    def refused() -> bool:
        fresh = deckhouse_token(REMOTE_KEY, sub=REMOTE_UUID, aud=CLUSTER_UUID, now=int(time.time()))
        return running.get(PRIVATE, headers=bearer(fresh)).status_code == 401

    assert wait_until(refused, timeout=WAIT), running.server.log()


# -- command-line errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--state", "/nonexistent-state-dir"],
            "--state: /nonexistent-state-dir: state directory does not exist (create it, or point --state at it)",
        ),
        (["--state", ".", "--advertise", "gw"], "--advertise 'gw': expected ADDRESS:PORT (IPv6 as [ADDRESS]:PORT)"),
        (["--state", ".", "--gateway-selector", "app=(x"], "--gateway-selector 'app=(x': "),
        (
            ["--state", ".", "--tls-cert-file", "/x"],
            "--tls-cert-file and --tls-private-key-file must be given together",
        ),
        (["--state", ".", "--token-leeway", "3600"], "--token-leeway must be from 0 to 300 seconds"),
    ],
    ids=["missing state", "bad advertise", "bad selector", "half TLS", "huge leeway"],
)
def test_bad_command_lines_exit_2_with_the_fix(
    extra: list[str], message: str, caplog: pytest.LogCaptureFixture
) -> None:
    code = launcher.main(
        ["exporter", "serve", "--cluster-uuid", CLUSTER_UUID, "--cluster-domain", CLUSTER_DOMAIN, *extra]
    )
    assert code == EXIT_USAGE
    assert message in caplog.text
