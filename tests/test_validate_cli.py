"""``istio-federation validate``: offline admission with the server's validators and messages."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.reviews import federation, service_entry
from tests.support import cli_command

RESERVED_DENIAL = (
    'ServiceEntry/shop/bar: admission webhook "serviceentries.istio-federation.deckhouse.io" denied the request: '
    'ServiceEntry "bar" is invalid: spec.hosts[0]: Forbidden: host "bar.xyz.svc.cluster-b.local" is in trust domain '
    '"cluster-b.local", reserved by IstioFederation "cluster-b": only ServiceEntries that federation manages may '
    "declare it; to reach the remote service, export it in the remote cluster (label "
    "federation.istio.deckhouse.io/public-service) instead"
)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command("validate", "--local-trust-domain", "cluster-a.local", *args),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def dump(path: Path, *objects: dict[str, object]) -> Path:
    path.write_text("---\n".join(yaml.safe_dump(obj) for obj in objects))
    return path


def test_objects_admitted_earlier_in_the_run_count_as_existing(tmp_path: Path) -> None:
    manifest = dump(
        tmp_path / "objects.yaml",
        federation(),
        service_entry("bar", "shop", "bar.xyz.svc.cluster-b.local"),
        service_entry("web", "shop", "web.example.com"),
    )
    result = run("-f", str(manifest))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "IstioFederation/cluster-b accepted",
        RESERVED_DENIAL,
        "ServiceEntry/shop/web accepted",
    ]


def test_all_accepted_exits_zero_and_prints_warnings(tmp_path: Path) -> None:
    manifest = dump(tmp_path / "ok.yaml", service_entry("api", "shop", "api.default.svc.cluster-a.local"))
    result = run("-f", str(manifest))
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "ServiceEntry/shop/api accepted",
        "Warning: spec.hosts[0]: api.default.svc.cluster-a.local is under the local trust domain and shadows a "
        "local Service",
    ]


def test_existing_state_makes_it_an_update(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "_cluster").mkdir(parents=True)
    dump(state / "_cluster" / "b.yaml", federation())
    changed = federation()
    changed["spec"]["trustDomain"] = "cluster-z.local"
    manifest = dump(tmp_path / "change.yaml", changed)
    result = run("--state", str(state), "-f", str(manifest))
    assert result.returncode == 1
    assert result.stdout.strip() == (
        'IstioFederation/cluster-b: admission webhook "istiofederations.istio-federation.deckhouse.io" denied the '
        'request: IstioFederation "cluster-b" is invalid: spec.trustDomain: Invalid value: "cluster-z.local": field '
        "is immutable (was 'cluster-b.local'); create a new IstioFederation for the new trust domain and delete "
        "this one"
    )


def test_several_files_and_a_second_federation_with_the_same_trust_domain(tmp_path: Path) -> None:
    first = dump(tmp_path / "1.yaml", federation())
    second = dump(tmp_path / "2.yaml", federation("cluster-b-again"))
    result = run("-f", str(first), "-f", str(second))
    assert result.returncode == 1
    assert result.stdout.splitlines()[1] == (
        'IstioFederation/cluster-b-again: admission webhook "istiofederations.istio-federation.deckhouse.io" denied '
        'the request: IstioFederation "cluster-b-again" is invalid: [spec.trustDomain: Duplicate value: '
        '"cluster-b.local": already federated by IstioFederation "cluster-b"; each remote cluster needs exactly one '
        'IstioFederation: edit "cluster-b" instead, spec.metadataEndpoint: Duplicate value: '
        '"https://meta.cluster-b.local.example.com/metadata/": already used by IstioFederation "cluster-b"; one remote '
        "cluster is federated by one IstioFederation]"
    )


def test_acting_as_the_reconciler(tmp_path: Path) -> None:
    managed = service_entry("bar-xyz-svc-cluster-b-local", "istio-federation", "bar.xyz.svc.cluster-b.local")
    managed["metadata"]["labels"] = {
        "app.kubernetes.io/managed-by": "istio-federation",
        "federation.istio.deckhouse.io/federation": "cluster-b",
    }
    manifest = dump(tmp_path / "m.yaml", federation(), managed)
    result = run("--as", "reconciler", "--reconciler-username", "reconciler", "-f", str(manifest))
    assert result.stdout.splitlines() == [
        "IstioFederation/cluster-b accepted",
        "ServiceEntry/istio-federation/bar-xyz-svc-cluster-b-local accepted",
    ]
    assert result.returncode == 0


def test_unreadable_or_unparsable_input_exits_two(tmp_path: Path) -> None:
    missing = run("-f", str(tmp_path / "absent.yaml"))
    assert missing.returncode == 2
    assert missing.stderr.startswith(f"error: {tmp_path / 'absent.yaml'}: cannot read: [Errno 2] No such file")
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\nkind: [\n")
    parsed = run("-f", str(broken))
    assert parsed.returncode == 2
    assert (
        parsed.stderr.strip()
        == f"error: {broken}:3: invalid YAML: expected the node content in flow context, but got '<stream end>'"
        or parsed.stderr.startswith(f"error: {broken}:")
    )
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    assert run("-f", str(empty)).stderr.strip() == "error: no objects found in the given files"


def test_bad_local_trust_domain_is_a_usage_error(tmp_path: Path) -> None:
    manifest = dump(tmp_path / "ok.yaml", federation())
    result = subprocess.run(
        cli_command("validate", "--local-trust-domain", "Cluster_A", "-f", str(manifest)),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().startswith(
        "istio-federation: error: --local-trust-domain 'Cluster_A': a lowercase RFC 1123 subdomain"
    )
