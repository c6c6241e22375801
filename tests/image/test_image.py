"""The built image, run as the manifests run it: read-only root, non-root user, real TLS and gunicorn.

Each component runs in its own container (``podman run --network host``, loopback ports only):
the webhook answers a real AdmissionReview, the exporter serves public.json, and the reconciler,
with no writable path but its state directory, imports cluster-b's service from that exporter.
"""

from __future__ import annotations

import http.client
import importlib.metadata
import json
import re
import ssl
import subprocess
import tarfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from federation import keys, meshconfig
from reconciler import identity
from tests.exporter.fixtures import configmap, keypair_secret, root_ca_configmap, service
from tests.exporter.fixtures import write_state as write_exporter_state
from tests.image import build
from tests.image.build import IMAGE_GID, IMAGE_UID, BuiltImage
from tests.image.containers import (
    Container,
    container_name,
    owned_by_image_user,
    podman_output,
    readable_by_image_user,
    remove,
    run_to_completion,
)
from tests.image.podman import podman_command, progress
from tests.reconciler.harness import (
    LOCAL_DOMAIN,
    LOCAL_UUID,
    NAMESPACE,
    SEED_HOST,
    SEED_NAME,
    ca_pem,
    mesh_config_map,
)
from tests.reconciler.harness import federation as reconciler_federation
from tests.reconciler.harness import write_state as write_reconciler_state
from tests.reviews import admission_review, federation, service_entry
from tests.support import REPO_ROOT, free_port

pytestmark = pytest.mark.slow

SERVICE_NAME = "istio-federation-webhook.istio-federation.svc"
REMOTE_UUID = "b2b2b2b2-0000-4000-8000-0000000000b2"
PACKAGE_VERSION = importlib.metadata.version("istio-federation")
VENV = "/opt/istio-federation"


def inspect(image: BuiltImage) -> dict[str, Any]:
    (data,) = json.loads(podman_output("image", "inspect", image.reference))
    assert isinstance(data, dict)
    return data


def tls_files(directory: Path, *names: str) -> trustme.CA:
    """A fresh CA and a serving certificate for ``names``, readable by the image's group only."""
    directory.mkdir()
    ca = trustme.CA()
    leaf = ca.issue_cert(*names)
    (directory / "tls.crt").write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    (directory / "tls.key").write_bytes(leaf.private_key_pem.bytes())
    readable_by_image_user(directory, directory / "tls.crt", directory / "tls.key")
    return ca


def verifying(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def assert_runs_as_image_user(container: Container) -> None:
    ids = container.process_ids()
    assert ids, f"no process in {container.name}"
    for uids, gids in ids:
        assert 0 not in uids, f"a process of {container.name} runs as root: {ids}"
        assert set(uids) == {IMAGE_UID}
        assert set(gids) == {IMAGE_GID}


# -- what the image is -----------------------------------------------------------------------------


def test_version_in_the_image_is_the_package_version(image: BuiltImage) -> None:
    result = run_to_completion(image, "--version")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"istio-federation {PACKAGE_VERSION}\n", "")
    assert image.version == PACKAGE_VERSION == build.project_version()


def test_labels_user_and_entrypoint(image: BuiltImage) -> None:
    config = inspect(image)["Config"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == PACKAGE_VERSION
    assert (
        labels["org.opencontainers.image.licenses"]
        == importlib.metadata.metadata("istio-federation")["License-Expression"]
    )
    assert labels["org.opencontainers.image.title"] == "istio-federation"
    assert labels["org.opencontainers.image.source"] == "unknown"  # no SOURCE build argument: see docs/install.md
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", labels["org.opencontainers.image.revision"])
    assert config["User"] == f"{IMAGE_UID}:{IMAGE_GID}"
    assert config["Entrypoint"] == ["istio-federation"]
    assert config["Cmd"] == ["--help"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PATH"].startswith(f"{VENV}/bin:")


def test_the_cached_build_is_reused_when_nothing_changed(
    image: BuiltImage, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The inputs as they were for the session's build (others may be editing a shared working tree).
    monkeypatch.setattr(build, "content_hash", lambda base_id, pins: image.content_hash)
    capsys.readouterr()
    again = build.ensure_image()
    assert again == image
    said = capsys.readouterr().err
    assert f"{image.reference} is up to date (inputs unchanged)" in said
    assert "podman build" not in said
    assert "mmdebstrap" not in said


def image_files(image: BuiltImage) -> list[tarfile.TarInfo]:
    """Every entry of the image's filesystem, read from ``podman export`` of a container never started."""
    name = container_name("export")
    podman_output("create", "--name", name, image.reference)
    try:
        with subprocess.Popen(podman_command("export", name), stdout=subprocess.PIPE) as export:
            assert export.stdout is not None
            with tarfile.open(fileobj=export.stdout, mode="r|") as archive:
                members = list(archive)
            assert export.wait(timeout=120) == 0
        return members
    finally:
        remove(name)


def test_no_compiler_pip_cache_wheelhouse_or_unused_client_in_the_image(image: BuiltImage) -> None:
    paths = {"/" + member.name.lstrip("./") for member in image_files(image)}
    assert f"{VENV}/bin/istio-federation" in paths
    compiler = re.compile(r"/bin/(?:[\w.-]*-)?(?:gcc|cc|c\+\+|g\+\+|clang|ld)(?:-\d+)?$")
    compilers = sorted(path for path in paths if compiler.search(path))
    assert compilers == []
    assert sorted(path for path in paths if "/.cache/pip" in path or path.endswith("/.cache")) == []
    assert sorted(path for path in paths if path.startswith("/wheelhouse")) == []
    site = f"{VENV}/lib/python3.11/site-packages"
    leftovers = [f"{site}/pip", f"{site}/setuptools", f"{site}/kubernetes/aio", f"{site}/aiohttp"]
    assert [path for path in leftovers if path in paths] == []
    assert f"{site}/kubernetes/client/api_client.py" in paths


PROBE = r"""
import importlib, importlib.util, json, os, pkgutil, sys
# 1. every module of the product imports (nothing it needs was left out or dropped)
imported = []
for package in sys.argv[1].split(","):
    module = importlib.import_module(package)
    imported.append(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        importlib.import_module(info.name)
        imported.append(info.name)
# 2. every .py (ours and the stdlib) has bytecode valid for it, so a read-only root never costs a compile
stale = []
for root in sys.argv[2:]:
    for directory, _, files in os.walk(root):
        for name in files:
            if not name.endswith(".py"):
                continue
            source = os.path.join(directory, name)
            try:
                with open(importlib.util.cache_from_source(source), "rb") as handle:
                    header = handle.read(16)
            except OSError:
                stale.append(source)
                continue
            flags = int.from_bytes(header[4:8], "little")
            if flags & 1:  # hash-based: must be the hash of this very source
                with open(source, "rb") as handle:
                    valid = header[8:16] == importlib.util.source_hash(handle.read())
            else:  # timestamp-based: mtime and size as the import system compares them
                stat = os.stat(source)
                valid = (int.from_bytes(header[8:12], "little") == int(stat.st_mtime) & 0xFFFFFFFF
                         and int.from_bytes(header[12:16], "little") == stat.st_size & 0xFFFFFFFF)
            if not valid:
                stale.append(source)
# 3. writable paths: only /tmp
writable = {}
for path in ("/", "/opt/istio-federation", os.environ["HOME"], "/tmp"):
    try:
        with open(os.path.join(path, "probe"), "w") as handle:
            handle.write("x")
        writable[path] = "ok"
    except OSError as error:
        writable[path] = error.strerror
report = {"imported": len(imported), "stale": stale, "writable": writable, "uid": os.getuid(), "gid": os.getgid()}
print(json.dumps(report))
"""


def test_every_module_imports_from_compiled_bytecode_on_a_read_only_root(image: BuiltImage) -> None:
    packages = ",".join(build.product_packages())
    result = run_to_completion(
        image, "-c", PROBE, packages, f"{VENV}/lib", "/usr/lib/python3.11", options=["--entrypoint", "python3"]
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["imported"] > 50
    assert report["stale"] == []
    assert report["writable"] == {
        "/": "Read-only file system",
        VENV: "Read-only file system",
        "/nonexistent": "No such file or directory",
        "/tmp": "ok",
    }
    assert (report["uid"], report["gid"]) == (IMAGE_UID, IMAGE_GID)


def test_image_size_and_layers(image: BuiltImage) -> None:
    """Measured, not asserted: the base and the application each add exactly one layer."""
    layers = [layer for layer in build.layers(image.reference) if layer.size > 0]
    base_layers = [layer for layer in build.layers(image.base) if layer.size > 0]
    assert len(layers) == 2
    assert layers[0] == base_layers[0]
    assert re.fullmatch(rf"/bin/sh -c #\(nop\) COPY \S+ in {VENV}\s*", layers[1].created_by), layers[1]
    total = build.image_size(image.reference)
    progress(f"{image.reference}: {total / 1e6:.1f} MB")
    for layer in layers:
        progress(f"  layer {layer.size / 1e6:.1f} MB  {layer.created_by[:80]}")


# -- the webhook -----------------------------------------------------------------------------------


@dataclass
class Webhook:
    container: Container
    port: int
    context: ssl.SSLContext

    def post(self, review: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=10)
        try:
            connection.request(
                "POST", "/validate?timeout=5s", body=json.dumps(review), headers={"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()


@pytest.fixture
def webhook(image: BuiltImage, tmp_path: Path) -> Iterator[Webhook]:
    state = tmp_path / "state"
    (state / "_cluster").mkdir(parents=True)
    (state / "_cluster" / "cluster-b.yaml").write_text(yaml.safe_dump(federation()), encoding="utf-8")
    ca = tls_files(tmp_path / "tls", SERVICE_NAME, "127.0.0.1")
    port = free_port()
    command = [
        "webhook", "serve",
        "--tls-cert-file", "/tls/tls.crt", "--tls-private-key-file", "/tls/tls.key",
        "--host", "127.0.0.1", "--port", str(port),
        "--local-trust-domain", "cluster-a.local",
        "--state", "/state",
    ]  # fmt: skip
    options = ["--volume", f"{tmp_path / 'tls'}:/tls:ro", "--volume", f"{state}:/state:ro"]
    with Container(image, "webhook", command, log_path=tmp_path / "webhook.log", options=options) as container:
        context = verifying(ca)
        container.wait_https(f"https://127.0.0.1:{port}/readyz", context)
        yield Webhook(container, port, context)


def test_webhook_in_the_image_answers_admission_reviews_over_tls(webhook: Webhook) -> None:
    status, payload = webhook.post(
        admission_review(service_entry("bar", "shop", "bar.xyz.svc.cluster-b.local"), uid="u1")
    )
    assert status == 200
    assert payload["response"]["uid"] == "u1"
    assert payload["response"]["allowed"] is False
    assert payload["response"]["status"]["code"] == 422
    assert payload["response"]["status"]["message"].startswith(
        'ServiceEntry "bar" is invalid: spec.hosts[0]: Forbidden: host "bar.xyz.svc.cluster-b.local" is in trust '
        'domain "cluster-b.local", reserved by IstioFederation "cluster-b"'
    )
    status, payload = webhook.post(admission_review(service_entry("web", "shop", "web.example.com"), uid="u2"))
    assert (status, payload["response"]["uid"], payload["response"]["allowed"]) == (200, "u2", True)
    assert_runs_as_image_user(webhook.container)


def test_webhook_needs_its_tmp_volume(image: BuiltImage, tmp_path: Path) -> None:
    """Why the webhook and exporter Deployments mount an emptyDir at /tmp: gunicorn's worker
    heartbeat file (and, with several workers, the shared metrics directory) live there."""
    (tmp_path / "state").mkdir()
    tls_files(tmp_path / "tls", "127.0.0.1")
    command = [
        "webhook", "serve",
        "--tls-cert-file", "/tls/tls.crt", "--tls-private-key-file", "/tls/tls.key",
        "--host", "127.0.0.1", "--port", str(free_port()),
        "--local-trust-domain", "cluster-a.local", "--state", "/state",
    ]  # fmt: skip
    options = ["--volume", f"{tmp_path / 'tls'}:/tls:ro", "--volume", f"{tmp_path / 'state'}:/state:ro"]
    with Container(image, "no-tmp", command, log_path=tmp_path / "webhook.log", options=options, tmpfs=()) as webhook:
        assert webhook.wait() != 0
    assert "No usable temporary directory found in ['/tmp', '/var/tmp', '/usr/tmp', '/']" in webhook.log()


def test_webhook_in_the_image_stops_gracefully_on_sigterm(webhook: Webhook) -> None:
    assert webhook.container.stop() == 0
    assert "Shutting down: Master" in webhook.container.log()


# -- exporter and reconciler: cluster-a imports cluster-b's service, both from the image ----------


def advertise(address: str, port: int) -> dict[str, Any]:
    body = json.dumps([{"address": address, "port": port}])
    return configmap("metadata-exporter-ingressgateway-advertise", {"gateways.json": body})


@dataclass
class Exporter:
    container: Container
    endpoint: str
    context: ssl.SSLContext
    ca_pem: str
    root_ca: str
    public_pem: str
    a_keypair: keys.Keypair  # cluster-a's identity, which cluster-b's state trusts


@pytest.fixture
def exporter(image: BuiltImage, tmp_path: Path) -> Iterator[Exporter]:
    """cluster-b's exporter; its state already trusts cluster-a's key (``a-keypair``, made here)."""
    a_keypair = keys.Keypair.generate()
    b_keypair = keys.Keypair.generate()
    b_root_ca = ca_pem(trustme.CA())
    state = tmp_path / "b"
    write_exporter_state(
        state,
        [
            keypair_secret(b_keypair),
            root_ca_configmap(b_root_ca),
            service("bar", "xyz", ports=[{"name": "http", "port": 8080}]),
            advertise("10.0.0.10", 15443),
            {
                "apiVersion": "deckhouse.io/v1alpha1",
                "kind": "IstioFederation",
                "metadata": {"name": "cluster-a"},
                "spec": {"trustDomain": LOCAL_DOMAIN, "metadataEndpoint": "https://127.0.0.1:1/metadata/"},
                "status": {
                    "metadataCache": {
                        "public": {
                            "clusterUUID": LOCAL_UUID,
                            "authnKeyPub": a_keypair.public_pem,
                            "rootCA": ca_pem(trustme.CA()),
                        }
                    }
                },
            },
        ],
    )
    ca = tls_files(tmp_path / "tls", "127.0.0.1", "localhost")
    port = free_port()
    command = [
        "exporter", "serve",
        "--cluster-uuid", REMOTE_UUID, "--cluster-domain", "cluster-b.local",
        "--state", "/state", "--host", "127.0.0.1", "--port", str(port),
        "--tls-cert-file", "/tls/tls.crt", "--tls-private-key-file", "/tls/tls.key",
    ]  # fmt: skip
    options = ["--volume", f"{tmp_path / 'tls'}:/tls:ro", "--volume", f"{state}:/state:ro"]
    with Container(image, "exporter", command, log_path=tmp_path / "exporter.log", options=options) as container:
        context = verifying(ca)
        container.wait_https(f"https://127.0.0.1:{port}/readyz", context)
        endpoint = f"https://127.0.0.1:{port}/metadata/"
        yield Exporter(container, endpoint, context, ca_pem(ca), b_root_ca, b_keypair.public_pem, a_keypair)


def test_exporter_in_the_image_serves_public_metadata_over_tls(exporter: Exporter) -> None:
    url = exporter.endpoint + "public/public.json"
    with urllib.request.urlopen(url, context=exporter.context, timeout=10) as response:
        assert response.status == 200
        document = json.loads(response.read())
    assert document == {"clusterUUID": REMOTE_UUID, "authnKeyPub": exporter.public_pem, "rootCA": exporter.root_ca}
    assert_runs_as_image_user(exporter.container)


def test_reconciler_in_the_image_imports_from_the_exporter_in_the_image(
    image: BuiltImage, exporter: Exporter, tmp_path: Path
) -> None:
    """No tmpfs at all: the reconciler writes nothing but its state (the Kubernetes API in a pod)."""
    state = tmp_path / "a"
    write_reconciler_state(
        state,
        reconciler_federation("cluster-b", exporter.endpoint, ca=exporter.ca_pem),
        mesh_config_map(),
        identity.secret_for(exporter.a_keypair, NAMESPACE),
    )
    owned_by_image_user(state)
    command = [
        "reconciler", "run", "--once",
        "--cluster-uuid", LOCAL_UUID, "--local-trust-domain", LOCAL_DOMAIN,
        "--state", "/state", "--metrics-port", "0",
    ]  # fmt: skip
    with Container(
        image,
        "reconciler",
        command,
        log_path=tmp_path / "reconciler.log",
        options=["--volume", f"{state}:/state"],
        tmpfs=(),
    ) as reconciler:
        assert reconciler.wait() == 0, reconciler.log()
    entry = yaml.safe_load((state / NAMESPACE / "serviceentry" / f"{SEED_NAME}.yaml").read_text(encoding="utf-8"))
    assert entry["spec"]["hosts"] == [SEED_HOST]
    assert entry["spec"]["endpoints"] == [{"address": "10.0.0.10", "ports": {"http": 15443}}]
    mesh = yaml.safe_load((state / "istio-system" / "configmap" / f"{meshconfig.CONFIG_MAP_NAME}.yaml").read_text())
    trusted = [entry["pem"] for entry in yaml.safe_load(mesh["data"]["mesh"])["caCertificates"]]
    assert exporter.root_ca in trusted


# -- the documented overlay ------------------------------------------------------------------------

OVERLAY = REPO_ROOT / "docs" / "overlays" / "cluster-a"


def test_documented_overlay_references_the_image_as_built_and_pushed(image: BuiltImage) -> None:
    """Tag the built image the way docs/install.md pushes it; the overlay's images resolve to it."""
    result = subprocess.run(
        ["/usr/bin/kubectl", "kustomize", str(OVERLAY)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    references = {
        container["image"]
        for obj in yaml.safe_load_all(result.stdout)
        if obj and obj["kind"] == "Deployment"
        for container in obj["spec"]["template"]["spec"]["containers"]
    }
    assert references == {f"registry.example.com/istio-federation:{PACKAGE_VERSION}"}
    (pushed,) = references
    podman_output("tag", image.reference, pushed)
    try:
        (data,) = json.loads(podman_output("image", "inspect", pushed))
        assert data["Id"] == image.image_id
        assert data["Config"]["Labels"]["org.opencontainers.image.version"] == pushed.rsplit(":", 1)[1]
    finally:
        podman_output("untag", image.reference, pushed)
