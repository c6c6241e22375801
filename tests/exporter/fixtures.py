"""Builders shared by the exporter tests: Kubernetes objects, keys, a root CA, tokens, state files.

No tests live here; the objects are written the way the API serves them (plain dicts), starting
from one valid cluster that each test changes in one place.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import trustme
import yaml
from cryptography.hazmat.primitives.asymmetric import ed25519

from federation import keys, ownership
from federation.resources import KubeObject

CLUSTER_UUID = "0b5ac1a4-6f5e-4f39-9a53-2a6a1c7e0001"
REMOTE_UUID = "7d1c3b9e-2f4a-4c1d-8e6f-5a4b3c2d0002"
OTHER_UUID = "c3e2d1f0-9a8b-4c7d-b6e5-f4a3b2c10003"
CLUSTER_DOMAIN = "cluster-a.local"
NAMESPACE = "istio-federation"


def root_ca_pem(key_type: trustme.KeyType = trustme.KeyType.RSA) -> str:
    return trustme.CA(key_type=key_type).cert_pem.bytes().decode()


@functools.cache
def peer_root_ca_pem() -> str:
    """One root CA for every remote's status: RSA generation is slow and its value never matters."""
    return root_ca_pem(trustme.KeyType.ECDSA)


def service(
    name: str,
    namespace: str = "bookinfo",
    *,
    ports: list[dict[str, Any]] | None = None,
    labels: dict[str, str] | None = None,
    service_type: str = "ClusterIP",
) -> KubeObject:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {ownership.PUBLIC_SERVICE_LABEL: ""} if labels is None else labels,
        },
        "spec": {
            "type": service_type,
            "ports": [{"name": "http", "port": 9080, "protocol": "TCP"}] if ports is None else ports,
        },
    }


def gateway_service(
    name: str = "ingressgateway",
    *,
    ingress: list[dict[str, str]] | None = None,
    tls_port: int = 15443,
    node_port: int = 30443,
    namespace: str = NAMESPACE,
    labels: dict[str, str] | None = None,
) -> KubeObject:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {"app": "ingressgateway"}},
        "spec": {
            "type": "LoadBalancer",
            "ports": [{"name": "tls", "port": tls_port, "nodePort": node_port, "protocol": "TCP"}],
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}] if ingress is None else ingress}},
    }


def gateway_pod(name: str, node: str, *, phase: str = "Running", namespace: str = NAMESPACE) -> KubeObject:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "ingressgateway"}},
        "spec": {"nodeName": node, "containers": [{"name": "istio-proxy", "image": "proxyv2"}]},
        "status": {"phase": phase},
    }


def node(
    name: str,
    *,
    external: str | None = None,
    internal: str | None = "10.0.0.1",
    ready: str = "True",
    unschedulable: bool = False,
    taints: list[dict[str, str]] | None = None,
) -> KubeObject:
    addresses = []
    if internal:
        addresses.append({"type": "InternalIP", "address": internal})
    if external:
        addresses.append({"type": "ExternalIP", "address": external})
    addresses.append({"type": "Hostname", "address": name})
    spec: dict[str, Any] = {}
    if unschedulable:
        spec["unschedulable"] = True
    if taints:
        spec["taints"] = taints
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "spec": spec,
        "status": {"addresses": addresses, "conditions": [{"type": "Ready", "status": ready}]},
    }


def configmap(name: str, data: dict[str, str], namespace: str = NAMESPACE) -> KubeObject:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}, "data": data}


def root_ca_configmap(pem: str) -> KubeObject:
    return configmap("istio-ca-root-cert", {"root-cert.pem": pem})


def keypair_secret(keypair: keys.Keypair, *, string_data: bool = False, deckhouse_labels: bool = False) -> KubeObject:
    files = {
        "priv.pem": keypair.private_pem(deckhouse_labels=deckhouse_labels),
        "pub.pem": keys.public_key_pem(keypair.private_key.public_key(), deckhouse_labels=deckhouse_labels),
    }
    secret: KubeObject = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "istio-federation-authn-keypair", "namespace": NAMESPACE},
        "type": "Opaque",
    }
    if string_data:
        secret["stringData"] = files
    else:
        secret["data"] = {key: base64.b64encode(value.encode()).decode() for key, value in files.items()}
    return secret


def federation(name: str, remote_uuid: str | None, remote_key: ed25519.Ed25519PublicKey | None) -> KubeObject:
    obj: KubeObject = {
        "apiVersion": "deckhouse.io/v1alpha1",
        "kind": "IstioFederation",
        "metadata": {"name": name},
        "spec": {"trustDomain": f"{name}.local", "metadataEndpoint": f"https://istio.{name}.example.com/metadata/"},
    }
    if remote_uuid is not None and remote_key is not None:
        obj["status"] = {
            "metadataCache": {
                "public": {
                    "clusterUUID": remote_uuid,
                    "authnKeyPub": keys.public_key_pem(remote_key),
                    "rootCA": peer_root_ca_pem(),
                }
            }
        }
    return obj


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def compact_jws(header: dict[str, Any], claims: dict[str, Any], key: ed25519.Ed25519PrivateKey) -> str:
    """A compact JWS built by hand (base64url + Ed25519), as go-jose writes Deckhouse's tokens.

    go-jose marshals with Go's encoding/json: no spaces, map keys sorted.
    """
    signing_input = (
        b64url(json.dumps(header, separators=(",", ":"), sort_keys=True).encode())
        + "."
        + b64url(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    )
    return signing_input + "." + b64url(key.sign(signing_input.encode("ascii")))


def deckhouse_token(key: ed25519.Ed25519PrivateKey, *, sub: str, aud: str, now: int, **overrides: Any) -> str:
    """Exactly Deckhouse's ``GenerateJWT``: iss d8-istio, string aud, sub, scope, nbf, exp of one minute."""
    claims: dict[str, Any] = {
        "iss": "d8-istio",
        "aud": aud,
        "sub": sub,
        "scope": "private-federation",
        "nbf": now,
        "exp": now + 60,
    }
    claims.update(overrides)
    return compact_jws({"alg": "EdDSA"}, {k: v for k, v in claims.items() if v is not None}, key)


def write_state(root: Path, objects: Iterable[KubeObject]) -> None:
    """One YAML file per object at the state store's canonical path."""
    for obj in objects:
        meta = obj["metadata"]
        path = root / (meta.get("namespace") or "_cluster") / obj["kind"].lower() / f"{meta['name']}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(yaml.safe_dump(obj), encoding="utf-8")
        temporary.replace(path)


def remove_state(root: Path, kind: str, name: str, namespace: str | None = None) -> None:
    (root / (namespace or "_cluster") / kind.lower() / f"{name}.yaml").unlink()
