"""Server-side dry run of an overlay, and ``istio-federation validate`` agreeing with the webhook."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from tests.realcluster.conftest import Clusters
from tests.realcluster.test_20_kubectl_output import CASES, federation, service_entry
from tests.realcluster.world import Installation, write_overlay
from tests.support import REPO_ROOT

# 1.20 serves no policy/v1: the overlay a 1.20 cluster needs drops the webhook's PodDisruptionBudget
# (the same version gate the install applies); everything else is the shipped base.
DROP_PDB_ON_1_20 = {
    "target": {"group": "policy", "version": "v1", "kind": "PodDisruptionBudget"},
    "patch": yaml.safe_dump({"$patch": "delete", "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                             "metadata": {"name": "istio-federation-webhook"}}),
}  # fmt: skip


def overlay(installation: Installation, directory: Path, extra: list[dict[str, Any]] | None = None) -> Path:
    write_overlay(directory, cluster_domain=installation.cluster.domain, cluster_uuid=installation.cluster_uuid)
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    kustomization["patches"].append(DROP_PDB_ON_1_20)
    if extra:
        (directory / "extra.yaml").write_text(yaml.safe_dump_all(extra))
        kustomization["resources"].append("extra.yaml")
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
    return directory


def test_server_side_dry_run_of_the_overlay(federated: Clusters, tmp_path: Path) -> None:
    a = federated.a
    result = a.cluster.kubectl("apply", "--dry-run=server", "-k", str(overlay(a, tmp_path / "overlay")), check=False)
    assert result.code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines
    assert all(line.endswith("(server dry run)") for line in lines), lines
    named = {line.split()[0] for line in lines}
    assert "validatingwebhookconfiguration.admissionregistration.k8s.io/istio-federation" in named
    assert "customresourcedefinition.apiextensions.k8s.io/istiofederations.deckhouse.io" in named
    assert not any("poddisruptionbudget" in name for name in named)


def test_server_side_dry_run_of_the_documented_example_overlay(federated: Clusters, tmp_path: Path) -> None:
    """docs/overlays/cluster-a as a user applies it, with only 1.20's version gate on top."""
    a = federated.a
    wrapper = tmp_path / "example-on-1.20"
    wrapper.mkdir()
    (wrapper / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [os.path.relpath(REPO_ROOT / "docs" / "overlays" / "cluster-a", wrapper)],
        "patches": [DROP_PDB_ON_1_20],
    }))  # fmt: skip
    before = a.cluster.get_json("configmap", "istio-federation-settings", "-n", "istio-federation")["data"]
    result = a.cluster.kubectl("apply", "--dry-run=server", "-k", str(wrapper), check=False)
    assert result.code == 0, result.output
    lines = result.stdout.splitlines()
    assert "configmap/istio-federation-settings configured (server dry run)" in lines
    assert all(line.endswith("(server dry run)") for line in lines), lines
    after = a.cluster.get_json("configmap", "istio-federation-settings", "-n", "istio-federation")["data"]
    assert after == before  # a dry run persists nothing


def test_server_side_dry_run_is_admitted_by_the_webhook_and_persists_nothing(
    federated: Clusters, tmp_path: Path
) -> None:
    a = federated.a
    again = federation("cluster-b-again", "cluster-b.local")
    result = a.cluster.kubectl(
        "apply", "--dry-run=server", "-k", str(overlay(a, tmp_path / "overlay", [again])), check=False
    )
    assert result.code == 1
    assert result.stderr == (
        'The IstioFederation "cluster-b-again" is invalid: spec.trustDomain: Duplicate value: "cluster-b.local": '
        'already federated by IstioFederation "cluster-b"; each remote cluster needs exactly one IstioFederation: '
        'edit "cluster-b" instead\n'
    )
    assert a.cluster.kubectl("get", "istiofederation", "cluster-b-again", check=False).code == 1


def export_state(installation: Installation, directory: Path) -> Path:
    """The cluster's federations, ServiceEntries and DestinationRules as a state directory."""
    for resource in ("istiofederations", "serviceentries", "destinationrules"):
        for item in installation.cluster.get_json(resource, "-A")["items"]:
            meta = item["metadata"]
            where = directory / (meta.get("namespace") or "_cluster") / item["kind"]
            where.mkdir(parents=True, exist_ok=True)
            (where / f"{meta['name']}.yaml").write_text(yaml.safe_dump(item))
    return directory


def causes(kubectl_output: str) -> list[str]:
    """The causes kubectl (or ``validate``) printed: after ``is invalid: ``, one, or several as
    ``\n* cause`` lines."""
    match = re.search(r" is invalid: (.*)$", kubectl_output.strip(), re.DOTALL)
    assert match, kubectl_output
    text = match[1]
    return [line.removeprefix("* ") for line in text.strip().splitlines()] if text.startswith("\n") else [text]


def status_message(kubectl_output: str) -> str:
    """The Status message the webhook sent (``validate`` prints it): how the apiserver words a list of causes."""
    found = causes(kubectl_output)
    return found[0] if len(found) == 1 else "[" + ", ".join(found) + "]"


def test_validate_and_the_webhook_agree(federated: Clusters, tmp_path: Path) -> None:
    """``validate`` as CI runs it: from the image (read-only, its state and file mounted read-only)."""
    a = federated.a
    state = export_state(a, tmp_path / "state")
    objects = [case.make(a) for case in CASES] + [
        service_entry("fine", ["fine.example.com"]),
        federation("cluster-c", "cluster-c.local"),
    ]
    for position, obj in enumerate(objects):
        path = tmp_path / f"object-{position}.yaml"
        path.write_text(yaml.safe_dump(obj))
        server = a.cluster.kubectl("apply", "--dry-run=server", "-f", str(path), check=False)
        offline = federated.launcher.run_once(
            ["validate", "--local-trust-domain", a.cluster.domain, "--state", str(state), "--as", "admin",
             "-f", str(path)],
            mounts=[state, path], timeout=120,
        )  # fmt: skip
        name = obj["metadata"]["name"]
        assert (server.code, offline.returncode) in ((0, 0), (1, 1)), (name, server.output, offline.stdout)
        if server.code == 1:
            # The same causes: one per line as kubectl prints them, or the Status message's "[a, b]".
            said = causes(offline.stdout)
            assert said in (causes(server.stderr), [status_message(server.stderr)]), (name, offline.stdout)
