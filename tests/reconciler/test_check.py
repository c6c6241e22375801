"""``istio-federation check``: one test per diagnosis, against real HTTPS servers on 127.0.0.1.

The local cluster is a state directory that a real sync (``Harness``) brought to the all-green
state against the independent Deckhouse fixture; each test then breaks one thing, the way it breaks
in the field, and asserts the exact line ``check`` prints.  Every run also asserts that ``check``
wrote nothing: the state directory is byte-for-byte the same before and after.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from federation import resources, timestamps, tokens
from federation.keys import Keypair
from federation.resources import KubeObject
from istio_federation.cli import main
from reconciler import check, identity
from reconciler.fetch import FetchError
from tests.deckhouse_fixture import DeckhouseCluster, DeckhouseExporter
from tests.reconciler.harness import (
    LOCAL_DOMAIN,
    LOCAL_UUID,
    NAMESPACE,
    SEED_HOST,
    SEED_NAME,
    Clock,
    Harness,
    ca_pem,
    federation,
    mesh_config_map,
    open_state,
    write_state,
)
from tests.support import REPO_ROOT, cli_command, free_port

NAME = "cluster-b"
REMOTE_UUID = DeckhouseCluster().cluster_uuid
MESH_WHERE = "ConfigMap istio-system/istio"
CHECK_ARGS = ("--cluster-uuid", LOCAL_UUID, "--local-trust-domain", LOCAL_DOMAIN)
ISSUER_ARGS = ("--issuer", "cluster-a-reconciler")


# -- servers -------------------------------------------------------------------------------------


class WrongNameServer:
    """HTTPS on 127.0.0.1 whose certificate (from a trusted CA) names another host only."""

    def __init__(self, ca: trustme.CA, name: str = "metadata.cluster-b.example") -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_error(404)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(name).configure_cert(context)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, name="wrong-name", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}/metadata/"

    def __enter__(self) -> WrongNameServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)
        self.server.server_close()


@dataclass
class EllipticKeyCluster(DeckhouseCluster):
    """A remote whose public document carries an ECDSA key where Ed25519 is required."""

    def public_document(self) -> dict[str, Any]:
        document = super().public_document()
        key = ec.generate_private_key(ec.SECP256R1()).public_key()
        document["authnKeyPub"] = key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        return document


# -- the local cluster ---------------------------------------------------------------------------


def seed(root: Path, endpoint: str, ca: str, keypair: Keypair) -> None:
    write_state(
        root,
        federation(NAME, endpoint, ca=ca),
        mesh_config_map(),
        identity.secret_for(keypair, NAMESPACE),
    )


def sync(root: Path, keypair: Keypair) -> None:
    """One real sync: ServiceEntries, status and mesh trust as the reconciler writes them."""
    store = open_state(root)
    try:
        # A clock at the real now: the remote checks exp, and check measures the age against now.
        harness = Harness(store, keypair, clock=Clock(datetime.now(UTC).replace(microsecond=0)))
        report = harness.sync()
        assert report.ok, report.results
    finally:
        store.stop()


@pytest.fixture
def green(tmp_path: Path, remote: DeckhouseExporter, server_ca: trustme.CA, keypair: Keypair) -> Path:
    root = tmp_path / "cluster-a"
    seed(root, remote.endpoint, ca_pem(server_ca), keypair)
    sync(root, keypair)
    return root


def stored_federation(root: Path, name: str = NAME) -> KubeObject:
    store = open_state(root)
    try:
        found = store.get(resources.ISTIO_FEDERATION, "", name)
    finally:
        store.stop()
    assert found is not None
    return found


def edit_spec(root: Path, **changes: Any) -> None:
    obj = stored_federation(root)
    for key, value in changes.items():
        if value is None:
            obj["spec"].pop(key, None)
        else:
            obj["spec"][key] = value
    write_state(root, obj)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def run_check(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """The real CLI in-process; asserts that nothing in the state directory changed."""
    before = snapshot(root)
    capsys.readouterr()
    code = main(["check", *args, *CHECK_ARGS, "--state", str(root)])
    out = capsys.readouterr().out
    assert snapshot(root) == before
    return code, out


def line(out: str, name: str) -> str:
    found = [text.strip() for text in out.splitlines() if text.strip()[2:].startswith(f"{name}:")]
    assert len(found) == 1, out
    return found[0]


def last_sync(root: Path) -> str:
    return str(stored_federation(root)["status"]["lastSuccessfulSyncTime"])


def green_lines(root: Path, endpoint: str) -> list[str]:
    return [
        f"IstioFederation {NAME}: trust domain cluster-b.local, endpoint {endpoint}",
        f"  ✓ endpoint: {endpoint} resolves and TLS verifies against spec.metadata.ca",
        f"  ✓ public: valid: clusterUUID {REMOTE_UUID}, an Ed25519 authnKeyPub, a CA certificate as rootCA",
        "  ✓ private: readable with our JWT: 2 ingress gateways, 1 public service",
        "  ✓ services: 1 imported of 1 exported",
        "  ✓ refused: no host refused by the security filter",
        f"  ✓ stale: last successful sync <1m ago ({last_sync(root)}), within 5m",
        f"  ✓ trust: the remote root CA (from the public document) is in caCertificates of {MESH_WHERE} "
        "for cluster-b.local",
        "all 7 checks passed",
    ]


# -- all green -----------------------------------------------------------------------------------


def test_all_green_through_the_real_cli(green: Path, remote: DeckhouseExporter) -> None:
    before = snapshot(green)

    done = subprocess.run(
        cli_command("check", *CHECK_ARGS, "--state", str(green)),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.stdout.splitlines() == green_lines(green, remote.endpoint), done.stderr
    assert done.returncode == 0
    assert snapshot(green) == before


def test_json_output_of_the_all_green_case(
    green: Path, remote: DeckhouseExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run_check(green, capsys, "-o", "json")

    assert code == 0
    document = json.loads(out)
    assert document == {
        "federations": [
            {
                "name": NAME,
                "checks": [
                    {"name": text.split(":")[0][4:], "ok": True, "message": text.split(": ", 1)[1]}
                    for text in green_lines(green, remote.endpoint)[1:-1]
                ],
            }
        ],
        "ok": True,
    }
    assert [c["name"] for c in document["federations"][0]["checks"]] == list(check.CHECKS)


def test_run_and_check_both_sign_with_the_issuer_given(
    green: Path, remote: DeckhouseExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    # Both commands look at a remote through reconciler.observe, so a flag read for one reaches both.
    signed_before = len(remote.accepted_claims)  # the green fixture's sync, with the default issuer

    synced = subprocess.run(
        cli_command("reconciler", "run", "--once", *ISSUER_ARGS, *CHECK_ARGS, "--state", str(green)),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    checked, _ = run_check(green, capsys, *ISSUER_ARGS)
    checked_by_default, _ = run_check(green, capsys)

    assert (synced.returncode, checked, checked_by_default) == (0, 0, 0), synced.stderr
    assert [claims["iss"] for claims in remote.accepted_claims[signed_before:]] == [
        "cluster-a-reconciler",
        "cluster-a-reconciler",
        tokens.ISSUER,
    ]


# -- endpoint ------------------------------------------------------------------------------------


def test_untrusted_ca_without_spec_metadata_ca(
    green: Path, remote: DeckhouseExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    edit_spec(green, metadata=None)

    code, out = run_check(green, capsys)

    assert code == 1
    port = remote.server.server_address[1]
    assert line(out, "endpoint") == (
        f"✗ endpoint: TLS verification failed for 127.0.0.1:{port}: unable to get local issuer certificate: "
        "the CA that signed the endpoint's certificate is not in the system roots and spec.metadata.ca is empty; "
        "fix: put the CA that signed the endpoint's certificate in spec.metadata.ca"
    )
    assert line(out, "public") == "- public: skipped: the endpoint check failed"
    assert line(out, "private") == (
        "- private: skipped: needs a valid public document (its clusterUUID is the JWT's audience)"
    )
    assert line(out, "services") == "- services: skipped: needs the private document"
    assert line(out, "refused") == "- refused: skipped: needs the private document"
    # Checks that do not need the endpoint still run: the last sync and the cached root CA.
    assert line(out, "stale").startswith("✓ stale: last successful sync <1m ago")
    assert line(out, "trust") == (
        f"✓ trust: the remote root CA (from status.metadataCache.public) is in caCertificates of {MESH_WHERE} "
        "for cluster-b.local"
    )
    assert out.splitlines()[-1] == "1 of 7 checks failed, 4 skipped"


def test_spec_metadata_ca_of_another_ca(
    green: Path, remote: DeckhouseExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    edit_spec(green, metadata={"ca": ca_pem(trustme.CA())})

    code, out = run_check(green, capsys)

    assert code == 1
    port = remote.server.server_address[1]
    assert line(out, "endpoint") == (
        f"✗ endpoint: TLS verification failed for 127.0.0.1:{port}: unable to get local issuer certificate: "
        "spec.metadata.ca is not the CA that signed the endpoint's certificate; "
        "fix: put the CA that signed the endpoint's certificate in spec.metadata.ca"
    )


def test_hostname_mismatch(
    tmp_path: Path, server_ca: trustme.CA, keypair: Keypair, capsys: pytest.CaptureFixture[str]
) -> None:
    with WrongNameServer(server_ca) as server:
        seed(tmp_path, server.endpoint, ca_pem(server_ca), keypair)

        code, out = run_check(tmp_path, capsys)

    assert code == 1
    port = server.server.server_address[1]
    assert line(out, "endpoint") == (
        f"✗ endpoint: TLS verification failed for 127.0.0.1:{port}: IP address mismatch, certificate is not valid "
        "for '127.0.0.1': the endpoint's certificate does not name 127.0.0.1; "
        "fix: serve a certificate whose subjectAltName holds 127.0.0.1, "
        "or set spec.metadataEndpoint to a host name the certificate holds"
    )
    # Never synced: nothing is known about the remote, and nothing has succeeded yet.
    assert line(out, "stale") == (
        "✗ stale: no successful sync recorded (status.lastSuccessfulSyncTime is empty); "
        "fix: check that the reconciler runs; the checks above say what fails"
    )
    assert line(out, "trust") == (
        "- trust: skipped: no remote root CA known: no valid public document and none in status.metadataCache"
    )


def test_connection_refused(
    tmp_path: Path, server_ca: trustme.CA, keypair: Keypair, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()  # bound and closed again: nothing listens there
    seed(tmp_path, f"https://127.0.0.1:{port}/metadata/", ca_pem(server_ca), keypair)

    code, out = run_check(tmp_path, capsys)

    assert code == 1
    assert line(out, "endpoint") == (
        f"✗ endpoint: connection to 127.0.0.1:{port} refused; fix: check that the remote's metadata exporter "
        "(or the Ingress in front of it) listens there, and the host and port of spec.metadataEndpoint"
    )


# -- public --------------------------------------------------------------------------------------


def test_public_500(green: Path, remote: DeckhouseExporter, capsys: pytest.CaptureFixture[str]) -> None:
    remote.mode = "500"

    code, out = run_check(green, capsys)

    assert code == 1
    assert line(out, "endpoint").startswith("✓ endpoint:")
    assert line(out, "public") == (
        f"✗ public: GET {remote.endpoint}public/public.json: HTTP 500: Internal Server Error; "
        "fix: the remote's metadata exporter is failing: look at its logs in the remote cluster"
    )
    assert line(out, "private").startswith("- private: skipped:")


def test_public_garbage(green: Path, remote: DeckhouseExporter, capsys: pytest.CaptureFixture[str]) -> None:
    remote.mode = "garbage"

    code, out = run_check(green, capsys)

    assert code == 1
    assert line(out, "public") == (
        f"✗ public: GET {remote.endpoint}public/public.json: the body is not valid JSON: "
        "Expecting value: line 1 column 1 (char 0); fix: spec.metadataEndpoint must point at the remote's "
        "metadata exporter (https://<host>/metadata/), not at another web page"
    )


def test_public_without_root_ca(green: Path, remote: DeckhouseExporter, capsys: pytest.CaptureFixture[str]) -> None:
    remote.cluster.root_ca_pem = ""

    code, out = run_check(green, capsys)

    assert code == 1
    assert line(out, "public") == (
        "✗ public: the public document is invalid: rootCA: Required value: must be a non-empty string; "
        "fix: the remote's metadata exporter must publish its Istio root CA certificate as rootCA: "
        "fix it in the remote cluster"
    )


def test_public_with_a_non_ed25519_key(
    tmp_path: Path, server_ca: trustme.CA, keypair: Keypair, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = EllipticKeyCluster(root_ca_pem=ca_pem(trustme.CA()))
    with DeckhouseExporter(cluster, server_ca) as server:
        seed(tmp_path, server.endpoint, ca_pem(server_ca), keypair)

        code, out = run_check(tmp_path, capsys)

    assert code == 1
    assert line(out, "public") == (
        '✗ public: the public document is invalid: authnKeyPub: Invalid value: "<PEM>": authnKeyPub must be an '
        "Ed25519 key, got EC; fix: the remote's metadata exporter must publish its Ed25519 identity "
        "public key as authnKeyPub: fix it in the remote cluster"
    )


# -- private -------------------------------------------------------------------------------------


def failing_401_lines(root: Path, endpoint: str) -> list[str]:
    return [
        f"IstioFederation {NAME}: trust domain cluster-b.local, endpoint {endpoint}",
        f"  ✓ endpoint: {endpoint} resolves and TLS verifies against spec.metadata.ca",
        f"  ✓ public: valid: clusterUUID {REMOTE_UUID}, an Ed25519 authnKeyPub, a CA certificate as rootCA",
        "  ✗ private: HTTP 401: the remote has no IstioFederation for this cluster yet (the remote said: "
        "Authentication error: JWT is signed for unknown source cluster); fix: create an IstioFederation in the "
        "remote cluster with trustDomain cluster-a.local and this cluster's metadata endpoint, and wait for its "
        "reconciler to fetch our public metadata",
        "  - services: skipped: needs the private document",
        "  - refused: skipped: needs the private document",
        f"  ✓ stale: last successful sync <1m ago ({last_sync(root)}), within 5m",
        f"  ✓ trust: the remote root CA (from the public document) is in caCertificates of {MESH_WHERE} "
        "for cluster-b.local",
        "1 of 7 checks failed, 2 skipped",
    ]


def test_private_401_through_the_real_cli(green: Path, remote: DeckhouseExporter) -> None:
    remote.cluster.known_clusters.clear()  # the remote's IstioFederation for us was deleted
    before = snapshot(green)

    done = subprocess.run(
        cli_command("check", NAME, *CHECK_ARGS, "--state", str(green)),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.stdout.splitlines() == failing_401_lines(green, remote.endpoint), done.stderr
    assert done.returncode == 1
    assert snapshot(green) == before


def test_json_output_of_a_failing_case(
    green: Path, remote: DeckhouseExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    remote.cluster.known_clusters.clear()

    code, out = run_check(green, capsys, "-o", "json")

    assert code == 1
    document = json.loads(out)
    assert document["ok"] is False
    (only,) = document["federations"]
    assert only["name"] == NAME
    by_name = {c["name"]: c for c in only["checks"]}
    assert list(by_name) == list(check.CHECKS)
    assert by_name["private"] == {
        "name": "private",
        "ok": False,
        "message": "HTTP 401: the remote has no IstioFederation for this cluster yet (the remote said: "
        "Authentication error: JWT is signed for unknown source cluster)",
        "fix": "create an IstioFederation in the remote cluster with trustDomain cluster-a.local and this "
        "cluster's metadata endpoint, and wait for its reconciler to fetch our public metadata",
    }
    assert by_name["services"] == {
        "name": "services",
        "ok": False,
        "skipped": True,
        "message": "skipped: needs the private document",
    }
    assert by_name["endpoint"]["ok"] is True
    assert "fix" not in by_name["endpoint"]


def test_missing_keypair_secret(green: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (green / NAMESPACE / "secret" / f"{identity.SECRET_NAME}.yaml").unlink()

    code, out = run_check(green, capsys)

    assert code == 1
    assert line(out, "private") == (
        f"✗ private: Secret {NAMESPACE}/{identity.SECRET_NAME} does not exist, so this cluster has no key to "
        "sign the JWT with; fix: start the reconciler or the exporter once (either creates it), "
        "or pass the right --namespace"
    )


# -- services and refused ------------------------------------------------------------------------


def test_imported_differs_from_exported(green: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (green / NAMESPACE / "serviceentry" / f"{SEED_NAME}.yaml").unlink()

    code, out = run_check(green, capsys)

    assert code == 1
    assert line(out, "services") == (
        f"✗ services: 0 imported of 1 exported; no managed ServiceEntry for {SEED_HOST}; "
        "fix: run the reconciler (istio-federation reconciler run) and read status.services of IstioFederation "
        "cluster-b and the reconciler's log for why it did not apply them"
    )
    assert line(out, "refused").startswith("✓ refused:")


def test_newly_exported_and_no_longer_exported_services(
    green: Path, remote: DeckhouseExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    remote.cluster.services = [
        {"hostname": "foo.xyz.svc.cluster-b.local", "ports": [{"name": "grpc", "port": 9090}]},
    ]

    code, out = run_check(green, capsys)

    assert code == 1
    assert line(out, "services") == (
        "✗ services: 0 imported of 1 exported; no managed ServiceEntry for foo.xyz.svc.cluster-b.local; "
        f"managed ServiceEntry for a host the remote no longer exports: {SEED_HOST}; "
        "fix: run the reconciler (istio-federation reconciler run) and read status.services of IstioFederation "
        "cluster-b and the reconciler's log for why it did not apply them; the next successful sync deletes the "
        "ServiceEntries of hosts no longer exported"
    )


def test_refused_out_of_domain_host(green: Path, remote: DeckhouseExporter, capsys: pytest.CaptureFixture[str]) -> None:
    remote.cluster.services.append({"hostname": "login.bank.example.com", "ports": [{"name": "https", "port": 443}]})

    code, out = run_check(green, capsys)

    assert code == 1
    assert line(out, "services") == "✓ services: 1 imported of 2 exported (1 not importable, see refused)"
    assert line(out, "refused") == (
        "✗ refused: 1 host not imported: login.bank.example.com: host is outside the federation's trust domain "
        "cluster-b.local; fix: a remote may only export hosts under spec.trustDomain (cluster-b.local): correct "
        "spec.trustDomain if it is not the remote's trust domain, else the remote must stop publishing these hosts"
    )


# -- stale and trust -----------------------------------------------------------------------------


def test_stale_last_successful_sync(green: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2, minutes=1)
    store = open_state(green)
    try:
        store.patch_status(
            resources.ISTIO_FEDERATION, "", NAME, {"status": {"lastSuccessfulSyncTime": timestamps.format_time(old)}}
        )
    finally:
        store.stop()

    code, out = run_check(green, capsys)

    assert code == 1
    assert line(out, "stale") == (
        f"✗ stale: last successful sync 2h1m ago ({timestamps.format_time(old)}), more than 5m; "
        "condition Stale is False (Fresh); fix: check that the reconciler runs (and, in Kubernetes, holds its "
        "Lease) and read its log; the checks above say what fails now"
    )
    # --stale-after moves the threshold.
    code, out = run_check(green, capsys, "--stale-after", "3h")
    assert code == 0
    assert line(out, "stale") == f"✓ stale: last successful sync 2h1m ago ({timestamps.format_time(old)}), within 3h"


def test_remote_ca_absent_from_mesh_trust(green: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_state(green, mesh_config_map())  # Istio's own config, as before the reconciler added the root

    code, out = run_check(green, capsys)

    assert code == 1
    assert line(out, "trust") == (
        f"✗ trust: the remote root CA (from the public document) is not in caCertificates of {MESH_WHERE} "
        "for cluster-b.local; fix: the reconciler adds it after a successful sync unless it runs with "
        f"--no-mesh-trust: run it and read its log for errors writing {MESH_WHERE}"
    )


def test_rotated_remote_ca_not_yet_seen(
    green: Path, remote: DeckhouseExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    remote.cluster.root_ca_pem = ca_pem(trustme.CA())

    code, out = run_check(green, capsys)

    assert code == 1
    assert line(out, "trust") == (
        f"✗ trust: the remote root CA (from the public document) is not in caCertificates of {MESH_WHERE} "
        "for cluster-b.local; status.trustedRootCAs does not list it either, so no sync has seen it yet; "
        "fix: the reconciler adds it after a successful sync unless it runs with --no-mesh-trust: run it and read "
        f"its log for errors writing {MESH_WHERE}"
    )


# -- usage ---------------------------------------------------------------------------------------


def test_unknown_name_is_a_usage_error(green: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(green)

    code = main(["check", "cluster-c", *CHECK_ARGS, "--state", str(green)])

    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err == (
        f"istio-federation: error: NAME: IstioFederation 'cluster-c' not found in state directory {green} "
        "(there: cluster-b)\n"
    )
    assert snapshot(green) == before


def test_name_selects_one_federation(
    green: Path, server_ca: trustme.CA, remote: DeckhouseExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = federation("cluster-c", f"https://127.0.0.1:{free_port()}/metadata/", ca=ca_pem(server_ca))
    broken["spec"]["trustDomain"] = "cluster-c.local"
    write_state(green, broken)

    code, out = run_check(green, capsys, NAME)
    assert code == 0
    assert out.splitlines() == green_lines(green, remote.endpoint)

    code, out = run_check(green, capsys)
    assert code == 1
    assert "IstioFederation cluster-c: trust domain cluster-c.local" in out
    assert out.splitlines()[-1] == "2 of 14 checks failed, 5 skipped"


def test_state_directory_must_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", *CHECK_ARGS, "--state", str(tmp_path / "missing")])

    assert code == 2
    assert capsys.readouterr().err == f"istio-federation: error: --state: {tmp_path / 'missing'} is not a directory\n"


def test_no_federation_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_check(tmp_path, capsys)

    assert code == 0
    assert out == "no IstioFederation to check\n"


# -- the pure half, without servers --------------------------------------------------------------


def test_evaluation_is_a_function_of_what_was_observed() -> None:
    obj = federation(NAME, "https://metadata.cluster-b.example/metadata/", ca="")
    refused = FetchError("FetchFailed", "GET …: connection refused")
    refused.__cause__ = ConnectionRefusedError(111, "Connection refused")
    observation = check.Observation(
        obj,
        datetime(2030, 1, 1, tzinfo=UTC),
        public=check.Fetched("https://metadata.cluster-b.example/metadata/public/public.json", error=refused),
    )

    report = check.evaluate(observation, check.CheckSettings(check.LocalCluster(LOCAL_UUID, LOCAL_DOMAIN)))

    assert [c.line() for c in report.checks] == [
        "✗ endpoint: connection to metadata.cluster-b.example:443 refused; fix: check that the remote's metadata "
        "exporter (or the Ingress in front of it) listens there, and the host and port of spec.metadataEndpoint",
        "- public: skipped: the endpoint check failed",
        "- private: skipped: needs a valid public document (its clusterUUID is the JWT's audience)",
        "- services: skipped: needs the private document",
        "- refused: skipped: needs the private document",
        "✗ stale: no successful sync recorded (status.lastSuccessfulSyncTime is empty); "
        "fix: check that the reconciler runs; the checks above say what fails",
        "- trust: skipped: no remote root CA known: no valid public document and none in status.metadataCache",
    ]
    assert not report.ok


def test_configuration_problem_needs_no_fetch() -> None:
    obj = federation(NAME, "https://x.example/metadata/", ca="", trust_domain=LOCAL_DOMAIN)

    report = check.evaluate(
        check.Observation(
            obj,
            datetime(2030, 1, 1, tzinfo=UTC),
            configuration=check.configuration_problem(resources.spec(obj), LOCAL_DOMAIN),
        ),
        check.CheckSettings(check.LocalCluster(LOCAL_UUID, LOCAL_DOMAIN)),
    )

    assert report.checks[0].line() == (
        "✗ endpoint: spec.trustDomain cluster-a.local is this cluster's own trust domain; fix: set "
        "spec.trustDomain to the remote cluster's trust domain (an IstioFederation names a remote)"
    )


def test_unusable_spec_metadata_ca_is_a_configuration_problem(
    green: Path, remote: DeckhouseExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    edit_spec(green, metadata={"ca": "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"})
    requests = len(remote.requests)

    code, out = run_check(green, capsys)

    assert code == 1
    assert line(out, "endpoint").startswith("✗ endpoint: spec.metadata.ca is not a usable PEM certificate:")
    assert line(out, "endpoint").endswith(
        "; fix: put the PEM certificate of the CA that signed the endpoint's certificate there"
    )
    assert len(remote.requests) == requests  # not contacted with a trust that cannot work


# -- this cluster's identity: ConfigMap istio-federation-settings, and a 401 that is ours ---------

CONSOLE_SCRIPT = str(Path(sys.executable).with_name("istio-federation"))
SETTINGS_WHERE = f"ConfigMap {NAMESPACE}/istio-federation-settings"
WRONG_UUID = "0badbad0-0000-4000-8000-000000000000"


def settings_config_map(cluster_uuid: str = LOCAL_UUID, domain: str = LOCAL_DOMAIN) -> KubeObject:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "istio-federation-settings", "namespace": NAMESPACE},
        "data": {"cluster-domain": domain, "cluster-uuid": cluster_uuid},
    }


def typed(*args: str) -> subprocess.CompletedProcess[str]:
    """``istio-federation ARGS`` as a user types it: the installed console script, in a subprocess."""
    return subprocess.run(
        [CONSOLE_SCRIPT, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def private_line(remote: DeckhouseExporter, root: Path, message: str) -> list[str]:
    lines = failing_401_lines(root, remote.endpoint)
    lines[3] = f"  ✗ private: {message}"
    return lines


def test_identity_comes_from_the_settings_config_map(green: Path, remote: DeckhouseExporter) -> None:
    """Finding: check needed --cluster-uuid and --local-trust-domain typed by hand."""
    write_state(green, settings_config_map())
    before = snapshot(green)

    done = typed("check", "--state", str(green))

    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == green_lines(green, remote.endpoint)
    assert snapshot(green) == before


def test_without_flags_or_settings_config_map_the_fix_is_named(tmp_path: Path) -> None:
    done = typed("check", "--state", str(tmp_path))

    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"istio-federation: error: --cluster-uuid not given, and {SETTINGS_WHERE} does not exist: pass "
        "--cluster-uuid, or --namespace where istio-federation-settings lives\n"
    )


def test_the_settings_placeholder_is_refused_naming_the_config_map(tmp_path: Path) -> None:
    write_state(tmp_path, settings_config_map(cluster_uuid="SET-ME"))

    done = typed("check", "--state", str(tmp_path))

    assert done.returncode == 2
    assert done.stderr == (
        f"istio-federation: error: {SETTINGS_WHERE} key cluster-uuid is still the placeholder SET-ME: set it in "
        "ConfigMap istio-federation-settings (manifests/settings.yaml) (e.g. the output of uuidgen)\n"
    )


def test_a_wrong_cluster_uuid_is_not_blamed_on_the_remote(green: Path, remote: DeckhouseExporter) -> None:
    """Finding: with a wrong UUID, check said "create an IstioFederation in the remote"."""
    write_state(green, settings_config_map())

    done = typed("check", "--cluster-uuid", WRONG_UUID, "--state", str(green))

    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == [
        f"note: --cluster-uuid {WRONG_UUID} differs from cluster-uuid {LOCAL_UUID} in {SETTINGS_WHERE}, the UUID "
        "this cluster's exporter publishes and remotes know it by",
        *private_line(
            remote,
            green,
            f"HTTP 401: the remote knows no cluster {WRONG_UUID}, the UUID check signed the token with; this cluster "
            f"publishes {LOCAL_UUID} ({SETTINGS_WHERE}) (the remote said: Authentication error: JWT is signed for "
            f"unknown source cluster); fix: run check without --cluster-uuid (or with --cluster-uuid {LOCAL_UUID}): "
            "the remote is not at fault",
        ),
    ]
    assert "create an IstioFederation" not in done.stdout


def test_a_remote_holding_another_key_for_us(green: Path, remote: DeckhouseExporter) -> None:
    remote.cluster.known_clusters[LOCAL_UUID] = Keypair.generate().public_pem
    write_state(green, settings_config_map())

    done = typed("check", "--state", str(green))

    assert done.returncode == 1
    assert done.stdout.splitlines() == private_line(
        remote,
        green,
        f"HTTP 401: the remote knows cluster {LOCAL_UUID} by another public key than the one this cluster signs "
        "with (the remote said: Authentication error: cannot verify JWT token with known public key); fix: if this "
        "cluster's keypair Secret was replaced recently, wait for the remote's next sync to fetch the new public "
        f"key; otherwise another cluster publishes the same UUID {LOCAL_UUID}: cluster UUIDs must be unique "
        "(cluster-uuid in istio-federation-settings)",
    )


def test_a_remote_refusing_its_own_audience_is_the_remotes_fault(green: Path, remote: DeckhouseExporter) -> None:
    published = remote.cluster.public_document()
    published["clusterUUID"] = "c0c0c0c0-0000-4000-8000-0000000000c0"
    remote.cluster.public_document = lambda: published  # type: ignore[method-assign]

    done = typed("check", *CHECK_ARGS, "--state", str(green))

    assert done.returncode == 1
    private = next(text for text in done.stdout.splitlines() if "private:" in text)
    assert private == (
        "  ✗ private: HTTP 401: the remote refused the token's audience c0c0c0c0-0000-4000-8000-0000000000c0, the "
        "clusterUUID of its own public document (the remote said: Authentication error: JWT is signed for wrong "
        f"destination cluster. Expected: {REMOTE_UUID}, Got: c0c0c0c0-0000-4000-8000-0000000000c0); fix: fix the "
        "remote: its public and private documents come from different clusters' exporters (is "
        "spec.metadataEndpoint a load balancer in front of several clusters?), or its exporter's --cluster-uuid "
        "differs from what it publishes"
    )


@pytest.mark.parametrize(
    ("said", "refused"),
    [
        ('{"error": "invalid_token", "reason": "unknown cluster: no IstioFederation here has fetched this '
         "cluster's public metadata\"}", "unknown subject"),
        ('{"error": "invalid_token", "reason": "wrong audience: the token is for another cluster"}', "wrong audience"),
        ('{"error": "invalid_token", "reason": "bad signature"}', "another key"),
        ('{"error": "invalid_token", "reason": "expired 40s ago"}', None),
        ("Authentication error: JWT is signed for unknown source cluster", "unknown subject"),
        ("Authentication error: JWT token expired", None),
        ("Authentication error: JWT is signed for wrong scope", None),
    ],
    ids=["ours-unknown", "ours-audience", "ours-signature", "ours-expired", "deckhouse-unknown", "deckhouse-expired",
         "deckhouse-scope"],
)  # fmt: skip
def test_what_a_401_refuses(said: str, refused: str | None) -> None:
    from reconciler.check.local_identity import refusal

    assert refusal(said) == refused


def test_yaml_output(green: Path, remote: DeckhouseExporter) -> None:
    write_state(green, settings_config_map())

    done = typed("check", "--state", str(green), "-o", "yaml")

    assert done.returncode == 0
    document = yaml.safe_load(done.stdout)
    assert document["ok"] is True
    assert [c["name"] for c in document["federations"][0]["checks"]] == list(check.CHECKS)
    assert done.stdout.startswith("federations:\n- name: cluster-b\n  checks:\n  - name: endpoint\n    ok: true\n")
