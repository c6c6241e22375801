"""The one cluster the exporter tests serve: its peers' keys, its snapshot inputs, its state and its command line.

No tests live here.  ``test_app.py`` (through Flask's test client), ``test_e2e.py`` and ``test_hostile_tokens.py``
(over real sockets) serve this cluster, and so do ``tests/serving/``, ``tests/hostile/`` and the exporter benchmark.
The peers' keys are made once, when this module is first imported, so every importer signs with the same keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
from cryptography.hazmat.primitives.asymmetric import ed25519

from exporter import snapshot
from exporter.settings import Settings
from exporter.snapshot import Inputs, Snapshot
from federation import keys
from tests.exporter.fixtures import (
    CLUSTER_DOMAIN,
    CLUSTER_UUID,
    NAMESPACE,
    OTHER_UUID,
    REMOTE_UUID,
    federation,
    gateway_service,
    keypair_secret,
    root_ca_configmap,
    root_ca_pem,
    service,
)

# The trusted peers (cluster-b and cluster-c) and a key no peer holds.
REMOTE_KEY = ed25519.Ed25519PrivateKey.generate()
OTHER_KEY = ed25519.Ed25519PrivateKey.generate()
STRANGER_KEY = ed25519.Ed25519PrivateKey.generate()
KEYPAIR = keys.Keypair.generate()
ROOT_CA = root_ca_pem()
SETTINGS = Settings(cluster_uuid=CLUSTER_UUID, cluster_domain=CLUSTER_DOMAIN)
PUBLIC = "/metadata/public/public.json"
SPIFFE = "/metadata/public/spiffe-bundle-endpoint"
PRIVATE = "/metadata/private/federation.json"


def world(**overrides: Any) -> Inputs:
    """One valid cluster: a keypair, a root CA, two public services, a gateway, two trusted peers."""
    values: dict[str, Any] = {
        "synced": True,
        "public_services": (
            service("reviews", ports=[{"name": "http", "port": 9080}, {"name": "grpc-api", "port": 9090}]),
            service("ratings", "shop", ports=[{"name": "tls", "port": 8443}]),
            service("hidden", labels={}),
        ),
        "gateway_services": (gateway_service(),),
        "root_ca_configmap": root_ca_configmap(ROOT_CA),
        "keypair_secret": keypair_secret(KEYPAIR),
        "federations": (
            federation("cluster-b", REMOTE_UUID, REMOTE_KEY.public_key()),
            federation("cluster-c", OTHER_UUID, OTHER_KEY.public_key()),
        ),
    }
    values.update(overrides)
    return Inputs(**values)


@dataclass
class Holder:
    """A snapshot source whose snapshot a test swaps at will."""

    current: Snapshot = field(default_factory=lambda: snapshot.build(world(), SETTINGS, generation=1))


# -- the same cluster as state objects, and the command line that serves them ----------------------


def world_objects(keypair: keys.Keypair, ca_pem: str) -> list[dict[str, Any]]:
    return [
        keypair_secret(keypair, string_data=True, deckhouse_labels=True),
        root_ca_configmap(ca_pem),
        service("reviews", ports=[{"name": "http", "port": 9080}]),
        gateway_service(),
        federation("cluster-b", REMOTE_UUID, REMOTE_KEY.public_key()),
        federation("cluster-c", OTHER_UUID, OTHER_KEY.public_key()),
    ]


@dataclass(frozen=True)
class Tls:
    ca: trustme.CA
    cert: Path
    key: Path
    ca_file: Path


def make_tls(directory: Path) -> Tls:
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    cert, key, ca_file = directory / "tls.crt", directory / "tls.key", directory / "ca.crt"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    for blob in issued.cert_chain_pems[1:]:
        blob.write_to_path(str(cert), append=True)
    issued.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    return Tls(ca, cert, key, ca_file)


def serve_args(port: int, *source: str, tls: Tls | None = None, extra: tuple[str, ...] = ()) -> list[str]:
    args = [
        "exporter",
        "serve",
        "--cluster-uuid",
        CLUSTER_UUID,
        "--cluster-domain",
        CLUSTER_DOMAIN,
        "--namespace",
        NAMESPACE,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--poll-interval",
        "0.1",
        *source,
        *extra,
    ]
    if tls is not None:
        args += ["--tls-cert-file", str(tls.cert), "--tls-private-key-file", str(tls.key)]
    return args
