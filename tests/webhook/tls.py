"""The webhook's serving certificate as the tests issue it: for its Service name and 127.0.0.1, renamed into place.

No tests live here; the webhook's server tests, ``tests/serving/`` and ``tests/hostile/`` serve with it.
"""

from __future__ import annotations

from pathlib import Path

import trustme

SERVICE_NAME = "istio-federation-webhook.istio-federation.svc"


def issue(ca: trustme.CA, directory: Path) -> None:
    leaf = ca.issue_cert(SERVICE_NAME, "127.0.0.1")
    # Write to temporary names and rename, as the kubelet's atomic Secret volume update does.
    (directory / "tls.key.new").write_bytes(leaf.private_key_pem.bytes())
    (directory / "tls.crt.new").write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    (directory / "tls.key.new").replace(directory / "tls.key")
    (directory / "tls.crt.new").replace(directory / "tls.crt")
