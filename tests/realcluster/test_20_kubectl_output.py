"""What ``kubectl apply`` (the real kubectl v1.32) prints for every admission rule family, against a
real kube-apiserver calling the webhook installed from manifests/. The README's examples are these."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.realcluster.cluster import KubectlResult
from tests.realcluster.conftest import Clusters
from tests.realcluster.story import HOST, MANAGED_NAME
from tests.realcluster.world import NAMESPACE, Installation

ENDPOINT = "https://127.0.0.1:1/metadata/"
RECORD = "ISTIO_FEDERATION_RECORD_KUBECTL"  # a file to append each case's real output to


def federation(name: str, trust_domain: str, endpoint: str = ENDPOINT, **metadata: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"trustDomain": trust_domain, "metadataEndpoint": endpoint}
    if metadata:
        spec["metadata"] = metadata
    return {"apiVersion": "deckhouse.io/v1alpha1", "kind": "IstioFederation", "metadata": {"name": name}, "spec": spec}


def service_entry(name: str, hosts: list[str], namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"hosts": hosts, "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
                 "resolution": "DNS", **spec},
    }  # fmt: skip


def edited(installation: Installation, resource: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """A managed object as its owner wrote it, changed by a person."""
    obj = installation.cluster.get_json(resource, MANAGED_NAME, "-n", NAMESPACE)
    clean = {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
             "metadata": {k: obj["metadata"][k] for k in ("name", "namespace", "labels", "annotations")
                          if k in obj["metadata"]},
             "spec": copy.deepcopy(obj["spec"])}  # fmt: skip
    change(clean)
    return clean


@dataclass
class Case:
    name: str
    make: Callable[[Installation], dict[str, Any]]
    before: Callable[[Installation], dict[str, Any]] | None = None


def _trust_domain_change(obj: dict[str, Any]) -> None:
    obj["spec"]["trustDomain"] = "cluster-z.local"


def _resolution_change(obj: dict[str, Any]) -> None:
    obj["spec"]["resolution"] = "DNS"


def _tls_change(obj: dict[str, Any]) -> None:
    obj["spec"]["trafficPolicy"]["tls"]["mode"] = "DISABLE"


def _current_federation(installation: Installation) -> dict[str, Any]:
    obj = installation.cluster.get_json("istiofederation", "cluster-b")
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": {"name": "cluster-b"},
            "spec": copy.deepcopy(obj["spec"])}  # fmt: skip


def _changed_federation(installation: Installation) -> dict[str, Any]:
    obj = _current_federation(installation)
    _trust_domain_change(obj)
    return obj


CASES = [
    Case("if-name", lambda _: federation("cluster.c", "cluster-c.local")),
    Case("if-trust-domain", lambda _: federation("cluster-c", "Cluster_C..local")),
    Case("if-own-trust-domain", lambda _: federation("cluster-c", "cluster-a.local")),
    Case("if-cluster-local", lambda _: federation("cluster-c", "cluster.local")),
    Case("if-endpoint", lambda _: federation("cluster-c", "cluster-c.local", "file:///metadata/")),
    Case("if-ca", lambda _: federation("cluster-c", "cluster-c.local", ca="not a certificate")),
    Case("if-immutable", _changed_federation),
    Case("if-duplicate", lambda _: federation("cluster-b-again", "cluster-b.local")),
    Case("se-istio", lambda _: service_entry("shop", ["shop.example.com"], ports=[
        {"number": 0, "name": "http", "protocol": "HTTP"}])),
    Case("se-reserved", lambda _: service_entry("hijack", [HOST])),
    Case("se-duplicate", lambda _: service_entry("shop-2", ["shop.example.com"]),
         before=lambda _: service_entry("shop-1", ["shop.example.com"])),
    Case("se-managed", lambda a: edited(a, "serviceentry", _resolution_change)),
    Case("dr-managed", lambda a: edited(a, "destinationrule", _tls_change)),
]  # fmt: skip


# What kubectl v1.32 printed (stdout and stderr, the temporary directory removed) and its exit code.
# Record anew with ISTIO_FEDERATION_RECORD_KUBECTL=FILE after an intended change of a message.
LAST_APPLIED = (
    "Warning: resource {} is missing the kubectl.kubernetes.io/last-applied-configuration annotation which is "
    "required by kubectl apply. kubectl apply should only be used on resources created declaratively by either "
    "kubectl create --save-config or kubectl apply. The missing annotation will be patched automatically.\n"
)
EXPECTED: dict[str, tuple[int, str]] = {
    "if-name": (1, (
        "The IstioFederation \"cluster.c\" is invalid: metadata.name: Invalid value: \"cluster.c\": a "
        "lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
        "start and end with an alphanumeric character (character \".\" at position 7 is not allowed)\n"
    )),
    "if-trust-domain": (1, (
        "The IstioFederation \"cluster-c\" is invalid: spec.trustDomain: Invalid value: "
        "\"Cluster_C..local\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
        "characters, '-' or '.', and must start and end with an alphanumeric character (character \"C\" "
        "at position 0 is not allowed)\n"
    )),
    "if-own-trust-domain": (1, (
        "The IstioFederation \"cluster-c\" is invalid: spec.trustDomain: Invalid value: "
        "\"cluster-a.local\": must differ from this cluster's own trust domain: an IstioFederation points "
        "at a remote cluster\n"
    )),
    "if-cluster-local": (1, (
        "The IstioFederation \"cluster-c\" is invalid: spec.trustDomain: Invalid value: \"cluster.local\": "
        "cluster.local cannot be federated: every federated cluster needs its own unique cluster domain\n"
    )),
    "if-endpoint": (1, (
        "The IstioFederation \"cluster-c\" is invalid: \n* spec.metadataEndpoint: Invalid value: "
        "\"file:///metadata/\": must be an https:// URL (got scheme 'file'); metadata must be fetched "
        "over TLS\n* spec.metadataEndpoint: Invalid value: \"file:///metadata/\": has no host; use the "
        "form https://istio-metadata.cluster-b.example.com/metadata/\n"
    )),
    "if-ca": (1, (
        "The IstioFederation \"cluster-c\" is invalid: spec.metadata.ca: Invalid value: \"<PEM>\": must be "
        "PEM-encoded X.509 certificate(s)\n"
    )),
    "if-immutable": (1, (
        "The IstioFederation \"cluster-b\" is invalid: spec.trustDomain: Invalid value: "
        "\"cluster-z.local\": field is immutable (was 'cluster-b.local'); create a new IstioFederation "
        "for the new trust domain and delete this one\n"
    )),
    "if-duplicate": (1, (
        "The IstioFederation \"cluster-b-again\" is invalid: spec.trustDomain: Duplicate value: "
        "\"cluster-b.local\": already federated by IstioFederation \"cluster-b\"; each remote cluster needs "
        "exactly one IstioFederation: edit \"cluster-b\" instead\n"
    )),
    "se-istio": (1, (
        "The ServiceEntry \"shop\" is invalid: spec.ports[0].number: Required value: port number 0 must "
        "be in the range 1..65535\n"
    )),
    "se-reserved": (1, (
        "The ServiceEntry \"hijack\" is invalid: spec.hosts[0]: Forbidden: host "
        "\"bar.xyz.svc.cluster-b.local\" is in trust domain \"cluster-b.local\", reserved by "
        "IstioFederation \"cluster-b\": only ServiceEntries that federation manages may declare it; to "
        "reach the remote service, export it in the remote cluster (label "
        "federation.istio.deckhouse.io/public-service) instead\n"
    )),
    "se-duplicate": (1, (
        "The ServiceEntry \"shop-2\" is invalid: spec.hosts[0]: Duplicate value: \"shop.example.com\": host "
        "is already declared by ServiceEntry default/shop-1 and both are visible to the same namespaces "
        "(Istio would silently use the older one); remove the host from one of them, or make their "
        "exportTo scopes disjoint\n"
    )),
    "se-managed": (1, LAST_APPLIED.format(f"serviceentries/{MANAGED_NAME}") + (
        f"The ServiceEntry \"{MANAGED_NAME}\" is invalid: "
        "metadata.labels[federation.istio.deckhouse.io/federation]: Forbidden: ServiceEntry "
        f"istio-federation/{MANAGED_NAME} is managed by IstioFederation \"cluster-b\" and "
        "only the reconciler may change it; it is regenerated on every sync; change the remote service "
        "or the IstioFederation instead\n"
    )),
    "dr-managed": (1, LAST_APPLIED.format(f"destinationrules/{MANAGED_NAME}") + (
        f"The DestinationRule \"{MANAGED_NAME}\" is invalid: "
        "metadata.labels[federation.istio.deckhouse.io/federation]: Forbidden: DestinationRule "
        f"istio-federation/{MANAGED_NAME} is managed by IstioFederation \"cluster-b\" and "
        "only the reconciler may change it; it is regenerated on every sync; change the remote service "
        "or the IstioFederation instead\n"
    )),
}


def kubectl_apply(installation: Installation, directory: Path, name: str, obj: dict[str, Any]) -> KubectlResult:
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(obj, sort_keys=False))
    # Run from the directory so kubectl names the file as a user would have typed it.
    return installation.cluster.kubectl("apply", "-f", str(path), check=False)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_kubectl_apply_prints(case: Case, federated: Clusters, tmp_path: Path) -> None:
    a = federated.a
    if case.before is not None:
        kubectl_apply(a, tmp_path, f"{case.name}-before", case.before(a))
    result = kubectl_apply(a, tmp_path, case.name, case.make(a))
    printed = result.output.replace(str(tmp_path) + "/", "")
    record = os.environ.get(RECORD)
    if record:  # when a message changes on purpose: record what kubectl prints now, review it, pin it
        with Path(record).open("a") as out:
            out.write(json.dumps({"case": case.name, "code": result.code, "output": printed}) + "\n")
    assert (result.code, printed) == EXPECTED[case.name]


def readme_kubectl_outputs() -> list[str]:
    """What the README shows ``kubectl apply`` printing: each console block's lines after the command."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    outputs = []
    for block in readme.split("```console\n")[1:]:
        lines = block.split("\n```", 1)[0].split("\n")
        if lines[0].startswith("$ kubectl apply -f ") and len(lines) > 1:
            outputs.append("\n".join(lines[1:]) + "\n")
    return outputs


def test_the_readmes_denials_are_what_kubectl_printed() -> None:
    shown = readme_kubectl_outputs()
    assert len(shown) >= 3
    printed = {output for _, output in EXPECTED.values()}
    assert [output for output in shown if output not in printed] == []
