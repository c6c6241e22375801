"""The reference story on two real kube-apiservers, installed from ``kubectl kustomize manifests``,
every component under its own ServiceAccount token and the shipped RBAC."""

from __future__ import annotations

import functools
import re

import yaml

from federation import ownership
from tests.realcluster.cluster import wait_for
from tests.realcluster.conftest import Clusters
from tests.realcluster.story import CONVERGE, HOST, MANAGED_NAME, conditions, federation_to, managed, wait_imported
from tests.realcluster.world import COMPONENTS, GATEWAYS, NAMESPACE, Installation, username


def test_install_skips_only_what_1_20_lacks(clusters: Clusters) -> None:
    for installation in clusters:
        assert [(s.kind, s.api_version, s.name, s.reason) for s in installation.skipped] == [
            ("PodDisruptionBudget", "policy/v1", "istio-federation-webhook",
             "policy/v1 PodDisruptionBudget is not served by kube-apiserver v1.20.2"),
        ]  # fmt: skip


def test_each_component_lists_and_watches_under_its_own_service_account(federated: Clusters) -> None:
    for installation in federated:
        events = installation.cluster.audit_events()
        for component in COMPONENTS:
            mine = [e for e in events if e["user"]["username"] == username(component)]
            lists = [e for e in mine if e["verb"] == "list"]
            assert lists, f"{component} of {installation.cluster.name} made no list"
            assert {e["responseStatus"]["code"] for e in lists} == {200}, component
            # A quiet watch shows in the audit log once the server answers it (first event or timeout).
            wait_for(
                functools.partial(_watched, installation, component),
                timeout=CONVERGE, what=f"a watch of {component} in {installation.cluster.name}'s audit log",
            )  # fmt: skip
            refused = [e["requestURI"] for e in mine if e["responseStatus"]["code"] == 403]
            assert refused == [], f"{component} of {installation.cluster.name} was refused: {refused}"
            assert installation.components[component].process.running


def _watched(installation: Installation, component: str) -> bool:
    return any(
        e["user"]["username"] == username(component) and e["verb"] == "watch"
        for e in installation.cluster.audit_events()
    )


def test_serviceentry_and_destinationrule_arrive_through_admission(federated: Clusters) -> None:
    a = federated.a
    (entry,) = managed(a, "serviceentries")
    assert entry["metadata"]["name"] == MANAGED_NAME
    assert entry["metadata"]["labels"][ownership.FEDERATION_LABEL] == "cluster-b"
    assert entry["spec"]["hosts"] == [HOST]
    assert entry["spec"]["location"] == "MESH_INTERNAL"
    assert entry["spec"]["resolution"] == "STATIC"
    assert entry["spec"]["endpoints"] == [
        {"address": gateway["address"], "ports": {"http": gateway["port"]}} for gateway in GATEWAYS
    ]
    (rule,) = managed(a, "destinationrules")
    assert rule["spec"] == {"host": HOST, "exportTo": ["*"], "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}
    # The apiserver sent both writes to the webhook, which allowed them.
    status, metrics = a.get("webhook", "/metrics")
    assert status == 200
    for kind in ("ServiceEntry", "DestinationRule"):
        pattern = rf'istio_federation_admission_requests_total{{[^}}]*kind="{kind}"[^}}]*operation="CREATE"'
        pattern += r'[^}]*result="allowed"[^}]*} ([0-9.]+)'
        counts = [float(v) for v in re.findall(pattern, metrics)]
        assert counts, kind
        assert counts[0] >= 1, kind


def test_status_conditions_and_events_are_readable_through_the_api(federated: Clusters) -> None:
    a = federated.a
    found = conditions(a, "cluster-b")
    assert {kind: found[kind]["status"] for kind in ("PublicMetadataExchangeReady", "PrivateMetadataExchangeReady",
                                                     "Synced", "Ready")} == dict.fromkeys(
        ("PublicMetadataExchangeReady", "PrivateMetadataExchangeReady", "Synced", "Ready"), "True"
    )  # fmt: skip
    table = a.cluster.kubectl("get", "istiofederations").stdout.splitlines()
    assert table[0].split() == ["NAME", "TRUSTDOMAIN", "ENDPOINT", "READY", "SERVICES", "AGE"]
    assert table[1].split()[:5] == ["cluster-b", "cluster-b.local", a_endpoint(federated), "True", "1"]
    selector = "involvedObject.kind=IstioFederation,involvedObject.name=cluster-b"
    events = a.cluster.get_json("events", "-n", "default", "--field-selector", selector)["items"]
    reasons = {event["reason"] for event in events}
    assert "Applied" in reasons, reasons
    for event in events:
        assert event["metadata"]["namespace"] == "default"
        assert "namespace" not in event["involvedObject"]
        assert event["involvedObject"]["uid"]
    described = a.cluster.kubectl("describe", "istiofederation", "cluster-b").stdout
    assert "Applied" in described.split("Events:", 1)[1]
    for installation in federated:
        log = installation.components["reconciler"].process.log()
        assert "could not record event" not in log


def a_endpoint(federated: Clusters) -> str:
    return federated.b.endpoint


def test_mesh_trust_lands_in_configmap_istio(federated: Clusters) -> None:
    mesh = yaml.safe_load(federated.a.cluster.get_json("configmap", "istio", "-n", "istio-system")["data"]["mesh"])
    assert mesh["trustDomain"] == "cluster-a.local"
    assert mesh["caCertificates"] == [
        {"pem": federated.b.mesh_ca.cert_pem.bytes().decode(), "trustDomains": ["cluster-b.local"]}
    ]


def test_the_lease_is_held(federated: Clusters) -> None:
    for installation in federated:
        lease = installation.cluster.get_json("lease", "istio-federation-reconciler", "-n", NAMESPACE)
        assert lease["spec"]["holderIdentity"]
        assert lease["spec"]["leaseDurationSeconds"] == 15
        assert "renewTime" in lease["spec"]


def test_a_change_in_the_remote_reaches_the_serviceentry(federated: Clusters, scenarios: set[str]) -> None:
    b = federated.b.cluster
    two_ports = '{"spec": {"ports": [{"name": "http", "port": 8080}, {"name": "grpc", "port": 9090}]}}'
    b.kubectl("patch", "service", "bar", "-n", "xyz", "--type=merge", "-p", two_ports)
    try:
        wait_for(
            lambda: [p["name"] for p in managed(federated.a, "serviceentries")[0]["spec"]["ports"]] == ["http", "grpc"],
            timeout=CONVERGE, interval=0.5, what="the new port in cluster-a's ServiceEntry",
        )  # fmt: skip
    finally:
        b.kubectl("patch", "service", "bar", "-n", "xyz", "--type=merge",
                  "-p", '{"spec": {"ports": [{"name": "http", "port": 8080}]}}')  # fmt: skip
    wait_for(
        lambda: [p["name"] for p in managed(federated.a, "serviceentries")[0]["spec"]["ports"]] == ["http"],
        timeout=CONVERGE, interval=0.5, what="the port removed again",
    )  # fmt: skip
    scenarios.add("update")


def test_deleting_the_federation_collects_everything_it_owns(federated: Clusters, scenarios: set[str]) -> None:
    """1.20 runs no controller-manager, so no ownerReference-based GC: the reconciler itself deletes
    the managed objects whose IstioFederation is gone, and drops its mesh trust entry."""
    a = federated.a
    a.cluster.kubectl("delete", "istiofederation", "cluster-b")
    wait_for(
        lambda: managed(a, "serviceentries") == [] and managed(a, "destinationrules") == [],
        timeout=CONVERGE, interval=0.5, what="cluster-b's ServiceEntry and DestinationRule deleted",
    )  # fmt: skip
    wait_for(
        lambda: "caCertificates" not in yaml.safe_load(
            a.cluster.get_json("configmap", "istio", "-n", "istio-system")["data"]["mesh"]
        ),
        timeout=CONVERGE, interval=0.5, what="cluster-b's root CA removed from the mesh trust",
    )  # fmt: skip
    scenarios.add("garbage-collection")
    # Put the story back for the tests that follow.
    a.cluster.apply(federation_to(federated.b))
    wait_imported(a)
