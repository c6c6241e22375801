"""The README's first command: the local two-cluster demo tells the whole story and exits 0."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.support import cli_command


def test_demo_tells_the_reference_story(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    result = subprocess.run(
        cli_command("demo", "--workdir", str(workdir)), capture_output=True, text=True, timeout=120, check=False
    )
    output = result.stdout
    assert result.returncode == 0, output + result.stderr
    steps = [line for line in output.splitlines() if line.startswith("=== Step")]
    assert steps == [
        "=== Step 1: the exporters publish their metadata",
        "=== Step 2: an admin creates an IstioFederation in each cluster (admitted by that cluster's webhook)",
        "=== Step 3: the reconcilers fetch public metadata, exchange keys, and fetch private metadata with JWTs",
        "=== Step 4: cluster-a now routes bar.xyz.svc.cluster-b.local through cluster-b's gateways",
        "=== Step 5: status conditions of both federations",
        "=== Step 6: diagnostics: istio-federation check in cluster-a",
        "=== Step 7: admission at work: what kubectl apply users see",
        "=== Step 8: inspect everything",
    ]
    assert "(no token) → 401" in output
    assert "  ✓ services: 1 imported of 1 exported" in output
    assert "(exit 0)" in output
    assert "istiofederation.deckhouse.io/cluster-b created" in output
    assert (
        "the remote does not know this cluster yet: create the IstioFederation for this cluster in the remote" in output
    )
    # kubectl apply, as the README shows it, and kubectl's real wording of a 422 with causes.
    assert "kubectl create" not in output
    assert "  $ kubectl apply -f cluster-b-federation.yaml\n  istiofederation.deckhouse.io/cluster-b created\n" in (
        output
    )
    assert (
        "  $ kubectl apply -f bar-by-hand.yaml\n"
        '  The ServiceEntry "bar-by-hand" is invalid: spec.hosts[0]: Forbidden: host "bar.xyz.svc.cluster-b.local" is '
        'in trust domain "cluster-b.local", reserved by IstioFederation "cluster-b": only ServiceEntries that '
        "federation manages may declare it; to reach the remote service, export it in the remote cluster (label "
        "federation.istio.deckhouse.io/public-service) instead\n"
    ) in output
    assert (
        "  $ kubectl apply -f cluster-b-again.yaml\n"
        '  The IstioFederation "cluster-b-again" is invalid: spec.trustDomain: Duplicate value: "cluster-b.local": '
        'already federated by IstioFederation "cluster-b"; each remote cluster needs exactly one IstioFederation: '
        'edit "cluster-b" instead\n'
    ) in output
    # Step 3: cluster-a's first refusal is announced as expected, never as a bare exit status.
    assert "(reconciler of" not in output
    assert "exited 1" not in output
    assert (
        "this first\n  refusal is expected, and is how mutual trust works; it clears once cluster-b has synced:\n"
    ) in output
    assert (
        "    → not synced yet, as expected (exit 1): cluster-b has not fetched cluster-a's public metadata (and key) "
        "yet\n"
    ) in output
    assert "    → every federation of cluster-b synced (exit 0)\n" in output
    assert output.count("    → every federation of cluster-a synced (exit 0)\n") == 1
    entry = yaml.safe_load(
        (
            workdir
            / "cluster-a"
            / "state"
            / "istio-federation"
            / "serviceentry"
            / "bar-xyz-svc-cluster-b-local-9qv7cmchrxqdhvnv.yaml"
        ).read_text()
    )
    assert entry["spec"]["hosts"] == ["bar.xyz.svc.cluster-b.local"]
    assert [e["address"] for e in entry["spec"]["endpoints"]] == ["203.0.113.10", "203.0.113.11"]
    assert entry["spec"]["resolution"] == "STATIC"
    mesh = yaml.safe_load(
        yaml.safe_load((workdir / "cluster-a" / "state" / "istio-system" / "configmap" / "istio.yaml").read_text())[
            "data"
        ]["mesh"]
    )
    assert [c["trustDomains"] for c in mesh["caCertificates"]] == [["cluster-b.local"]]
    assert "    Ready                          True" in output
    assert f"cluster-a state: {workdir.resolve() / 'cluster-a' / 'state'}" in output
    assert not any(workdir.rglob("*.tmp"))
