"""Wire the real admission webhook into the test double, exactly as manifests/ configures it."""

from __future__ import annotations

import base64
import contextlib
import json
import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import trustme
import yaml

from federation.validation.attributes import DEFAULT_RECONCILER_USERNAME
from tests.kubeapi.server import KubeApiDouble
from tests.support import REPO_ROOT, ServerProcess, free_port, wait_until

WEBHOOK_SERVICE = ("istio-federation", "istio-federation-webhook")
SERVICE_DNS = "istio-federation-webhook.istio-federation.svc"
WEBHOOK_USER = "system:serviceaccount:istio-federation:istio-federation-webhook"
MANIFEST = REPO_ROOT / "manifests" / "webhook" / "validatingwebhookconfiguration.yaml"


def manifest_configuration(ca_pem: bytes) -> dict[str, Any]:
    """The ValidatingWebhookConfiguration from manifests/, with caBundle filled in as `certs install` does."""
    vwc: dict[str, Any] = yaml.safe_load(MANIFEST.read_text())
    for hook in vwc["webhooks"]:
        hook["clientConfig"]["caBundle"] = base64.b64encode(ca_pem).decode()
    return vwc


class RunningWebhook:
    def __init__(self, server: ServerProcess, ca: trustme.CA, port: int) -> None:
        self.server, self.ca, self.port = server, ca, port

    def readyz(self) -> dict[str, Any]:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        with urllib.request.urlopen(f"https://127.0.0.1:{self.port}/readyz", context=context, timeout=5) as response:
            body: dict[str, Any] = json.loads(response.read())
            return body

    def wait_cached(self, resource: str, count: int, timeout: float = 10) -> None:
        """Wait until the webhook's watch cache holds ``count`` objects of ``resource``."""
        if not wait_until(lambda: self.readyz()["cached"][resource] == count, timeout=timeout):
            raise AssertionError(f"webhook cache never reached {count} {resource}: {self.readyz()}")


@contextlib.contextmanager
def real_webhook(
    double: KubeApiDouble,
    workdir: Path,
    *,
    local_trust_domain: str,
    reconciler_username: str = DEFAULT_RECONCILER_USERNAME,
) -> Iterator[RunningWebhook]:
    """Run `istio-federation webhook serve --kubeconfig …` against the double and register it."""
    workdir.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    leaf = ca.issue_cert(SERVICE_DNS, "127.0.0.1")
    leaf.private_key_pem.write_to_path(str(workdir / "tls.key"))
    leaf.cert_chain_pems[0].write_to_path(str(workdir / "tls.crt"))
    kubeconfig = workdir / "webhook.kubeconfig"
    double.add_user(WEBHOOK_USER)
    double.write_kubeconfig(kubeconfig, WEBHOOK_USER)
    port = free_port()
    args = [
        "webhook", "serve",
        "--tls-cert-file", str(workdir / "tls.crt"),
        "--tls-private-key-file", str(workdir / "tls.key"),
        "--host", "127.0.0.1", "--port", str(port),
        "--local-trust-domain", local_trust_domain,
        "--reconciler-username", reconciler_username,
        "--kubeconfig", str(kubeconfig),
    ]  # fmt: skip
    with ServerProcess(args, log_path=workdir / "webhook.log") as server:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        server.wait_http(f"https://127.0.0.1:{port}/readyz", context=context)
        double.register_webhooks(manifest_configuration(ca.cert_pem.bytes()), {WEBHOOK_SERVICE: ("127.0.0.1", port)})
        yield RunningWebhook(server, ca, port)
