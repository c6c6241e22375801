"""Every component refuses the manifests' SET-ME placeholders and other unusable identities."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from federation import cluster
from tests.support import cli_command

WHERE = "set it in ConfigMap istio-federation-settings (manifests/settings.yaml)"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("cluster-a.local", None),
        ("SET-ME", f"--cluster-domain is still the placeholder SET-ME: {WHERE}"),
        ("cluster.local", "--cluster-domain 'cluster.local': federated clusters need a unique cluster domain, never "
         "cluster.local (e.g. cluster-a.local)"),
        ("Cluster-A.local", "--cluster-domain 'Cluster-A.local': a lowercase RFC 1123 subdomain must consist of lower "
         "case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (character "
         '"C" at position 0 is not allowed)'),
    ],
    ids=["valid", "placeholder", "cluster-local", "uppercase"],
)  # fmt: skip
def test_domain_problem(value: str, problem: str | None) -> None:
    assert cluster.domain_problem("--cluster-domain", value) == problem


def test_uuid_problem() -> None:
    assert cluster.uuid_problem("--cluster-uuid", "7b1f2a4e-1111-4222-8333-444455556666") is None
    assert cluster.uuid_problem("--cluster-uuid", "SET-ME") == (
        f"--cluster-uuid is still the placeholder SET-ME: {WHERE} (e.g. the output of uuidgen)"
    )
    assert cluster.uuid_problem("--cluster-uuid", " ") == (
        "--cluster-uuid must be a non-empty printable string of at most 253 characters"
    )


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["webhook", "serve", "--tls-cert-file", "x", "--tls-private-key-file", "y", "--local-trust-domain", "SET-ME"],
         f"istio-federation: error: --local-trust-domain is still the placeholder SET-ME: {WHERE}"),
        (["exporter", "serve", "--cluster-uuid", "SET-ME", "--cluster-domain", "cluster-a.local"],
         f"--cluster-uuid is still the placeholder SET-ME: {WHERE} (e.g. the output of uuidgen)"),
        (["exporter", "serve", "--cluster-uuid", "u-1", "--cluster-domain", "SET-ME"],
         f"--cluster-domain is still the placeholder SET-ME: {WHERE}"),
        (["reconciler", "run", "--once", "--cluster-uuid", "u-1", "--local-trust-domain", "SET-ME"],
         f"--local-trust-domain is still the placeholder SET-ME: {WHERE}"),
        (["check", "--cluster-uuid", "SET-ME", "--local-trust-domain", "cluster-a.local"],
         f"--cluster-uuid is still the placeholder SET-ME: {WHERE} (e.g. the output of uuidgen)"),
    ],
    ids=["webhook", "exporter-uuid", "exporter-domain", "reconciler", "check"],
)  # fmt: skip
def test_components_refuse_the_placeholder(tmp_path: Path, command: list[str], expected: str) -> None:
    result = subprocess.run(
        cli_command(*command, "--state", str(tmp_path)), capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert expected in result.stderr
