"""The reference story on two real clusters: the steps, and the waits for convergence (all bounded)."""

from __future__ import annotations

import json
from typing import Any

from federation import ownership
from tests.realcluster.cluster import wait_for
from tests.realcluster.world import GATEWAYS, NAMESPACE, Installation

HOST = "bar.xyz.svc.cluster-b.local"
MANAGED_NAME = ownership.managed_name(HOST)  # the product's naming rule, whatever it is
CONVERGE = 90.0


def start_components(installation: Installation) -> None:
    """Webhook first (and its configuration once it answers), then the reconciler, which creates
    the keypair Secret the exporter publishes, then the exporter."""
    installation.start("webhook")
    installation.wait_ready("webhook")
    installation.register_webhook()
    installation.start("reconciler")
    installation.wait_ready("reconciler", "/healthz")
    installation.start("exporter")
    installation.wait_ready("exporter")


def export_bar(installation: Installation) -> None:
    """cluster-b's public Service ``xyz/bar`` and its ingress-gateway addresses (advertise ConfigMap)."""
    cluster = installation.cluster
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "xyz"}})
    cluster.apply([
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "bar", "namespace": "xyz", "labels": {ownership.PUBLIC_SERVICE_LABEL: ""}},
         "spec": {"ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "metadata-exporter-ingressgateway-advertise", "namespace": NAMESPACE},
         "data": {"gateways.json": json.dumps(GATEWAYS)}},
    ])  # fmt: skip


def federation_to(remote: Installation, name: str | None = None) -> dict[str, Any]:
    """The IstioFederation a cluster needs to federate with ``remote``."""
    return {
        "apiVersion": "deckhouse.io/v1alpha1",
        "kind": "IstioFederation",
        "metadata": {"name": name or remote.cluster.name},
        "spec": {
            "trustDomain": remote.cluster.domain,
            "metadataEndpoint": remote.endpoint,
            "metadata": {"ca": remote.tls_ca.cert_pem.bytes().decode()},
        },
    }


def conditions(installation: Installation, federation: str) -> dict[str, dict[str, Any]]:
    obj = installation.cluster.get_json("istiofederation", federation)
    return {condition["type"]: condition for condition in (obj.get("status") or {}).get("conditions") or []}


def wait_condition(installation: Installation, federation: str, kind: str, status: str) -> dict[str, Any]:
    found: dict[str, Any] = wait_for(
        lambda: (conditions(installation, federation).get(kind) or {}).get("status") == status
        and conditions(installation, federation)[kind],
        timeout=CONVERGE, interval=0.5, what=f"{installation.cluster.name}: {federation} {kind}={status}",
    )  # fmt: skip
    return found


def managed(installation: Installation, resource: str) -> list[dict[str, Any]]:
    listing = installation.cluster.get_json(resource, "-n", NAMESPACE, "-l", ownership.selector())
    return list(listing["items"])


def wait_imported(installation: Installation) -> None:
    wait_for(
        lambda: [o["metadata"]["name"] for o in managed(installation, "serviceentries")] == [MANAGED_NAME]
        and [o["metadata"]["name"] for o in managed(installation, "destinationrules")] == [MANAGED_NAME],
        timeout=CONVERGE, interval=0.5, what=f"{installation.cluster.name}: {HOST} imported",
    )  # fmt: skip
