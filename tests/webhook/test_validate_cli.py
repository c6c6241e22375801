"""``istio-federation validate``: offline admission with the server's validators and messages."""

from __future__ import annotations

import json
import subprocess
import sys
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
    # Several causes: one per line, as kubectl prints a 422 (its trailing space after "invalid:" included).
    assert result.stdout.splitlines()[1:] == [
        'IstioFederation/cluster-b-again: admission webhook "istiofederations.istio-federation.deckhouse.io" denied '
        'the request: IstioFederation "cluster-b-again" is invalid: ',
        '* spec.trustDomain: Duplicate value: "cluster-b.local": already federated by IstioFederation "cluster-b"; '
        'each remote cluster needs exactly one IstioFederation: edit "cluster-b" instead',
        '* spec.metadataEndpoint: Duplicate value: "https://meta.cluster-b.local.example.com/metadata/": already used '
        'by IstioFederation "cluster-b"; one remote cluster is federated by one IstioFederation',
    ]


def test_acting_as_the_reconciler(tmp_path: Path) -> None:
    name = "bar-xyz-svc-cluster-b-local-9qv7cmchrxqdhvnv"
    managed = service_entry(name, "istio-federation", "bar.xyz.svc.cluster-b.local")
    managed["metadata"]["labels"] = {
        "app.kubernetes.io/managed-by": "istio-federation",
        "federation.istio.deckhouse.io/federation": "cluster-b",
    }
    manifest = dump(tmp_path / "m.yaml", federation(), managed)
    result = run("--as", "reconciler", "--reconciler-username", "reconciler", "-f", str(manifest))
    assert result.stdout.splitlines() == [
        "IstioFederation/cluster-b accepted",
        "ServiceEntry/istio-federation/bar-xyz-svc-cluster-b-local-9qv7cmchrxqdhvnv accepted",
    ]
    assert result.returncode == 0


def test_unreadable_or_unparsable_input_exits_two(tmp_path: Path) -> None:
    missing = run("-f", str(tmp_path / "absent.yaml"))
    assert (missing.returncode, missing.stdout) == (2, "")
    assert missing.stderr == f"istio-federation: error: -f {tmp_path / 'absent.yaml'}: no such file or directory\n"
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\nkind: [\n")
    parsed = run("-f", str(broken))
    assert parsed.returncode == 2
    assert parsed.stderr == (
        f"istio-federation: error: {broken}:3: invalid YAML: expected the node content, but found '<stream end>'\n"
    )
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    nothing = run("-f", str(empty))
    assert (nothing.returncode, nothing.stderr) == (2, f"istio-federation: error: no objects found in {empty}\n")


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


def test_ip_autoallocation_is_on_by_default_as_in_istio_1_31(tmp_path: Path) -> None:
    """A TCP port without addresses is silent by default (Istio 1.31 allocates a VIP); ``--no-ip-autoallocate``
    restores Istio's warning for clusters whose istiod runs with PILOT_ENABLE_IP_AUTOALLOCATE=false."""
    entry = service_entry("db", "shop", "db.example.com")
    entry["spec"]["ports"] = [{"name": "tcp-db", "number": 5432, "protocol": "TCP"}]
    manifest = dump(tmp_path / "db.yaml", entry)
    default = run("-f", str(manifest))
    assert (default.returncode, default.stdout.splitlines()) == (0, ["ServiceEntry/shop/db accepted"])
    turned_off = run("--no-ip-autoallocate", "-f", str(manifest))
    assert (turned_off.returncode, turned_off.stdout.splitlines()) == (
        0,
        [
            "ServiceEntry/shop/db accepted",
            "Warning: addresses are required for ports serving TCP (or unset) protocol when IP Autoallocation is "
            "not enabled",
        ],
    )
    explicit = run("--ip-autoallocate", "-f", str(manifest))
    assert explicit.stdout == default.stdout


# -- what validate reads: kubectl apply -f's inputs, and kinds it does not check ------------------------

CONSOLE_SCRIPT = str(Path(sys.executable).with_name("istio-federation"))
CHECKED = "it checks IstioFederation, ServiceEntry and DestinationRule"


def typed(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """``istio-federation validate --local-trust-domain cluster-a.local ARGS``, typed in a shell."""
    done = subprocess.run(
        [CONSOLE_SCRIPT, "validate", "--local-trust-domain", "cluster-a.local", *args],
        input=stdin, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode(errors="replace")
    )


def config_map(name: str, namespace: str | None = None) -> dict[str, object]:
    metadata: dict[str, object] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {"a": "b"}}


def misspelt() -> dict[str, object]:
    typo = federation("cluster-c")
    typo["kind"] = "IstioFederatoin"
    return typo


def test_kinds_the_webhook_never_checks_are_skipped_and_fail_under_strict(tmp_path: Path) -> None:
    """Finding: `IstioFederatoin/cluster-c accepted` and `ConfigMap/default/foo accepted`, exit 0."""
    manifest = dump(tmp_path / "objects.yaml", misspelt(), config_map("foo"), federation())
    expected = [
        "IstioFederatoin/cluster-c skipped: IstioFederatoin is not a kind the webhook checks: did you mean "
        "IstioFederation?",
        f"ConfigMap/default/foo skipped: ConfigMap is not a kind the webhook checks ({CHECKED})",
        "IstioFederation/cluster-b accepted",
    ]
    strict = typed("-f", str(manifest))
    assert (strict.returncode, strict.stdout.splitlines(), strict.stderr) == (1, expected, "")
    lenient = typed("--no-strict", "-f", str(manifest))
    assert (lenient.returncode, lenient.stdout.splitlines()) == (0, expected)


def test_a_checked_kind_under_another_group_is_named(tmp_path: Path) -> None:
    wrong = federation()
    wrong["apiVersion"] = "networking.istio.io/v1"
    result = typed("-f", str(dump(tmp_path / "f.yaml", wrong)))
    assert result.returncode == 1
    assert result.stdout == (
        "IstioFederation/cluster-b skipped: IstioFederation of apiVersion networking.istio.io/v1 is not checked: the "
        "webhook checks IstioFederation of deckhouse.io; did you mean apiVersion deckhouse.io/v1alpha1?\n"
    )


def test_a_list_as_kubectl_get_prints_it(tmp_path: Path) -> None:
    """Finding: `kind: List` failed with `List has no metadata.name`."""
    listing: dict[str, object] = {
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"resourceVersion": ""},
        "items": [federation(), service_entry("bar", "shop", "bar.xyz.svc.cluster-b.local")],
    }
    result = typed("-f", str(dump(tmp_path / "list.yaml", listing)))
    assert result.returncode == 1
    assert result.stdout.splitlines() == ["IstioFederation/cluster-b accepted", RESERVED_DENIAL]


def test_directories_recursively_and_stdin(tmp_path: Path) -> None:
    """Finding: `-f DIR` failed with `Is a directory`; kubectl reads directories, and -R their subdirectories."""
    top = tmp_path / "manifests"
    (top / "nested" / ".hidden").mkdir(parents=True)
    dump(top / "a-federation.yaml", federation())
    dump(top / "nested" / "entry.yml", service_entry("web", "shop", "web.example.com"))
    dump(top / "nested" / ".hidden" / "ignored.yaml", config_map("ignored"))
    (top / "README.md").write_text("not a manifest\n")
    (top / "b-config.json").write_text(json.dumps(config_map("settings", "shop")))

    flat = typed("--no-strict", "-f", str(top))
    assert (flat.returncode, flat.stdout.splitlines()) == (0, [
        "IstioFederation/cluster-b accepted",
        f"ConfigMap/shop/settings skipped: ConfigMap is not a kind the webhook checks ({CHECKED})",
    ])  # fmt: skip
    deep = typed("--no-strict", "-R", "-f", str(top))
    assert deep.stdout.splitlines()[2:] == ["ServiceEntry/shop/web accepted"]

    piped = typed("-f", "-", stdin=yaml.safe_dump(federation()).encode())
    assert (piped.returncode, piped.stdout) == (0, "IstioFederation/cluster-b accepted\n")


def test_binary_input_is_one_line_naming_the_file(tmp_path: Path) -> None:
    """Finding: `'utf-8' codec can't decode byte 0x89`."""
    image = tmp_path / "logo.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    result = typed("-f", str(image))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        f"istio-federation: error: {image}: not a YAML or JSON manifest: byte 0x89 at offset 0 is not UTF-8 text "
        "(a binary file?)\n"
    )


def test_json_and_yaml_output_per_object(tmp_path: Path) -> None:
    manifest = dump(
        tmp_path / "objects.yaml",
        federation(),
        service_entry("bar", "shop", "bar.xyz.svc.cluster-b.local"),
        config_map("foo"),
        service_entry("api", "shop", "api.default.svc.cluster-a.local"),
    )
    result = typed("-o", "json", "-f", str(manifest))
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["summary"] == {"accepted": 2, "denied": 1, "skipped": 1}
    assert (document["strict"], document["ok"]) == (True, False)
    first, denied, skipped, warned = document["objects"]
    assert first == {
        "source": f"{manifest}:1",
        "apiVersion": "deckhouse.io/v1alpha1",
        "kind": "IstioFederation",
        "name": "cluster-b",
        "result": "accepted",
    }
    assert denied["source"].startswith(f"{manifest}:")
    assert (denied["namespace"], denied["name"], denied["result"]) == ("shop", "bar", "denied")
    assert denied["webhook"] == "serviceentries.istio-federation.deckhouse.io"
    assert denied["causes"] == [{
        "reason": "FieldValueForbidden",
        "message": RESERVED_DENIAL.split("spec.hosts[0]: ", 1)[1],
        "field": "spec.hosts[0]",
    }]  # fmt: skip
    assert skipped["reason"] == f"ConfigMap is not a kind the webhook checks ({CHECKED})"
    assert warned["warnings"] == [
        "spec.hosts[0]: api.default.svc.cluster-a.local is under the local trust domain and shadows a local Service"
    ]
    as_yaml = typed("-o", "yaml", "--no-strict", "-f", str(manifest))
    assert as_yaml.returncode == 1  # denied still fails; only the skipped object is forgiven
    assert yaml.safe_load(as_yaml.stdout) == {**document, "strict": False, "ok": False}
