"""The operator's experience (issue 13), as a user types it: the installed ``istio-federation`` console
script in a subprocess, asserting what it prints and its exit status.

An unreachable or unusable API server, help for every option, ``--log-level``/``--log-format`` on
either side of the subcommand, JSON logs (gunicorn's lines included), shell completion, and a table
of bad invocations of every subcommand, none of which may print a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from istio_federation.cli import build_parser, subcommands
from tests.support import REPO_ROOT, free_port, wait_until

CONSOLE_SCRIPT = str(Path(sys.executable).with_name("istio-federation"))
UUID = "7b1f2a4e-1111-4222-8333-444455556666"
API_FLAGS = "--kubeconfig/--in-cluster"


def typed(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``istio-federation ARGS`` typed in a shell (bounded: a command that hangs fails the test)."""
    return subprocess.run(
        [CONSOLE_SCRIPT, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout, check=False,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def write_kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        yaml.safe_dump({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
            "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "c",
        })
    )
    return path


@pytest.fixture
def tls_pair(tmp_path: Path) -> tuple[Path, Path]:
    leaf = trustme.CA().issue_cert("istio-federation-webhook.istio-federation.svc", "127.0.0.1")
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())
    return cert, key


def api_commands(cert: Path, key: Path) -> dict[str, list[str]]:
    """Every command that talks to the Kubernetes API, without its --kubeconfig."""
    return {
        "check": ["check"],
        "reconciler-run-once": ["reconciler", "run", "--once", "--cluster-uuid", UUID,
                                "--local-trust-domain", "cluster-a.local"],
        "reconciler-run": ["reconciler", "run", "--cluster-uuid", UUID, "--local-trust-domain", "cluster-a.local",
                           "--metrics-port", "0"],
        "webhook-serve": ["webhook", "serve", "--local-trust-domain", "cluster-a.local", "--tls-cert-file", str(cert),
                          "--tls-private-key-file", str(key), "--port", str(free_port())],
        "exporter-serve": ["exporter", "serve", "--cluster-uuid", UUID, "--cluster-domain", "cluster-a.local",
                           "--port", str(free_port())],
        "certs-install": ["certs", "install"],
    }  # fmt: skip


API_COMMANDS = list(api_commands(Path(), Path()))


def assert_one_line(command: str, result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "Retrying" not in result.stderr  # urllib3's warning per attempt
    assert result.stdout == ""
    if command == "exporter-serve":  # the exporter logs its usage errors: in a pod, the log is what is read
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert result.stderr.endswith(f" ERROR exporter.cli: {message}\n")
    else:
        assert result.stderr == f"istio-federation: error: {message}\n"


# -- 1. an API server that cannot be reached -----------------------------------------------------------


@pytest.mark.parametrize("command", API_COMMANDS)
def test_an_unreachable_api_server_is_one_line_naming_it(
    command: str, tmp_path: Path, tls_pair: tuple[Path, Path]
) -> None:
    """Finding: check and reconciler run --once ran 65 s, printing 255 urllib3 retry warnings."""
    port = free_port()
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", f"https://127.0.0.1:{port}")

    result = typed(*api_commands(*tls_pair)[command], "--kubeconfig", str(kubeconfig), timeout=30)

    assert_one_line(
        command,
        result,
        f"{API_FLAGS}: cannot reach the Kubernetes API server https://127.0.0.1:{port} (kubeconfig {kubeconfig}): "
        "connection refused",
    )


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """Accepts TCP connections (the kernel does) and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_an_api_server_that_never_answers_is_given_up_on_after_the_read_timeout(tmp_path: Path) -> None:
    with silent_server() as port:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", f"https://127.0.0.1:{port}")
        started = time.monotonic()
        result = typed("check", "--kubeconfig", str(kubeconfig), timeout=30)
        took = time.monotonic() - started
    assert_one_line(
        "check",
        result,
        f"{API_FLAGS}: cannot reach the Kubernetes API server https://127.0.0.1:{port} (kubeconfig {kubeconfig}): "
        "it accepted the connection but did not answer within 5 s",
    )
    assert took < 30  # bounded by the preflight's timeouts, not by the 60 s initial-list wait


# -- 4. a kubeconfig that is not one -------------------------------------------------------------------


@pytest.mark.parametrize("command", API_COMMANDS)
def test_a_malformed_kubeconfig_is_one_line_naming_file_and_line(
    command: str, tmp_path: Path, tls_pair: tuple[Path, Path]
) -> None:
    """Finding: certs install --kubeconfig printed a traceback ending in yaml.parser.ParserError."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: [\n  - name: x\n   bad")

    result = typed(*api_commands(*tls_pair)[command], "--kubeconfig", str(kubeconfig), timeout=30)

    assert_one_line(
        command,
        result,
        f"{API_FLAGS}: kubeconfig {kubeconfig} is not valid YAML (line 4, column 3): expected the node content, but "
        "found '-'",
    )


def test_a_binary_kubeconfig_and_a_missing_one(tmp_path: Path) -> None:
    binary = tmp_path / "kubeconfig.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00")
    result = typed("certs", "install", "--kubeconfig", str(binary))
    assert_one_line(
        "certs-install", result, f"{API_FLAGS}: kubeconfig {binary} is not a text file (byte 0x89 at offset 0)"
    )
    missing = typed("certs", "install", "--kubeconfig", str(tmp_path / "absent"))
    assert_one_line("certs-install", missing, f"{API_FLAGS}: kubeconfig {tmp_path / 'absent'}: no such file")


def test_an_unusable_admission_ca_is_one_line_naming_the_file(tmp_path: Path) -> None:
    fix = "give the CA certificate (PEM) that signed the webhook's serving certificate"
    state = tmp_path / "state"
    state.mkdir()
    binary = tmp_path / "ca.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00")
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("not a certificate\n")
    expected = {
        tmp_path / "absent.pem": "cannot be read (No such file or directory)",
        tmp_path: "cannot be read (Is a directory)",
        binary: "holds no PEM certificate",
        not_pem: "holds no PEM certificate",
    }
    for path, problem in expected.items():
        result = typed(
            "reconciler", "run", "--once", "--cluster-uuid", UUID, "--local-trust-domain", "cluster-a.local",
            "--state", str(state), "--admission-webhook", "https://127.0.0.1:1/validate", "--admission-ca", str(path),
        )  # fmt: skip
        assert_one_line("reconciler-run", result, f"--admission-ca {path}: {problem}; {fix}")


# -- 7. what users expect of a command-line tool ----------------------------------------------------------


def test_version_is_the_packages() -> None:
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    result = typed("--version")
    assert (result.returncode, result.stdout) == (0, f"istio-federation {version}\n")


def exporter_refusing_to_start(tmp_path: Path, *logging_flags: str, after: bool) -> subprocess.CompletedProcess[str]:
    """An exporter that logs a warning (a cluster UUID that is no UUID) and then a usage error."""
    arguments = ["--cluster-uuid", "cluster-a", "--cluster-domain", "cluster-a.local", "--state", str(tmp_path),
                 "--keypair-dir", str(tmp_path / "absent")]  # fmt: skip
    if after:
        return typed("exporter", "serve", *arguments, *logging_flags)
    return typed(*logging_flags, "exporter", "serve", *arguments)


def test_log_options_work_before_and_after_the_subcommand(tmp_path: Path) -> None:
    error = (
        f"--keypair-dir {tmp_path / 'absent'}: not a directory (create it with `certs keypair --out DIR`)"
    )
    for after in (False, True):
        quiet = exporter_refusing_to_start(tmp_path, "--log-level", "ERROR", after=after)
        assert quiet.returncode == 2
        assert [line.split(" ", 2)[2] for line in quiet.stderr.splitlines()] == [f"ERROR exporter.cli: {error}"]

        structured = exporter_refusing_to_start(tmp_path, "--log-format", "json", after=after)
        lines = [json.loads(line) for line in structured.stderr.splitlines()]
        assert [{key: line[key] for key in ("level", "component", "logger", "message")} for line in lines] == [
            {"level": "WARNING", "component": "exporter", "logger": "exporter.cli",
             "message": "--cluster-uuid 'cluster-a' is not a UUID; peers accept any string, but check it is the "
                        "intended one"},
            {"level": "ERROR", "component": "exporter", "logger": "exporter.cli", "message": error},
        ]  # fmt: skip
        assert all(line["time"].endswith("Z") and "T" in line["time"] for line in lines)


def test_json_logs_carry_the_federation(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "_cluster").mkdir(parents=True)
    (state / "_cluster" / "cluster-b.yaml").write_text(yaml.safe_dump({
        "apiVersion": "deckhouse.io/v1alpha1", "kind": "IstioFederation", "metadata": {"name": "cluster-b"},
        "spec": {"trustDomain": "cluster-b.local", "metadataEndpoint": f"https://127.0.0.1:{free_port()}/metadata/"},
    }))  # fmt: skip

    result = typed("reconciler", "run", "--once", "--cluster-uuid", UUID, "--local-trust-domain", "cluster-a.local",
                   "--state", str(state), "--no-mesh-trust", "--metrics-port", "0", "--log-format", "json")  # fmt: skip

    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    synced = [line for line in lines if line["message"].startswith("synced federation=cluster-b ok=False")]
    assert len(synced) == 1
    assert (synced[0]["federation"], synced[0]["component"], synced[0]["level"]) == ("cluster-b", "reconciler",
                                                                                      "WARNING")  # fmt: skip
    created = [line for line in lines if line["message"].startswith("created Secret")]
    assert created[0]["object"] == "Secret istio-federation/istio-federation-authn-keypair"


def test_gunicorns_own_lines_come_out_in_the_same_json(tmp_path: Path) -> None:
    log_path = tmp_path / "exporter.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [CONSOLE_SCRIPT, "exporter", "serve", "--cluster-uuid", UUID, "--cluster-domain", "cluster-a.local",
             "--state", str(tmp_path), "--host", "127.0.0.1", "--port", str(free_port()), "--log-format", "json"],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
        )  # fmt: skip
        try:
            assert wait_until(lambda: b"Booting worker" in log_path.read_bytes(), timeout=30), log_path.read_text()
        finally:
            process.terminate()
            process.wait(timeout=20)
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert all({"time", "level", "component", "logger", "message"} <= set(line) for line in lines)
    gunicorn = {line["message"].split(":")[0] for line in lines if line["logger"] == "gunicorn.error"}
    assert {"Starting gunicorn 27.0.1", "Listening at", "Booting worker with pid"} <= gunicorn
    assert {line["component"] for line in lines} == {"exporter"}


def test_completion_scripts_and_completing_a_subcommand(tmp_path: Path) -> None:
    bash = typed("completion", "bash")
    assert bash.returncode == 0
    assert "complete -o nospace -o default -o bashdefault -F _python_argcomplete istio-federation" in bash.stdout
    zsh = typed("completion", "zsh")
    assert zsh.stdout.startswith("#compdef istio-federation\n")

    def complete(line: str) -> list[str]:
        answer = tmp_path / "completions"
        result = typed(env={
            "_ARGCOMPLETE": "1", "_ARGCOMPLETE_SHELL": "bash", "COMP_LINE": line, "COMP_POINT": str(len(line)),
            "_ARGCOMPLETE_STDOUT_FILENAME": str(answer), "_ARGCOMPLETE_IFS": "\n",
        })  # fmt: skip
        assert result.returncode == 0, result.stderr
        return sorted(answer.read_text().split("\n"))

    assert complete("istio-federation rec") == ["reconciler "]
    assert complete("istio-federation c") == ["certs", "check", "completion"]  # several: no space after each
    assert complete("istio-federation validate --str") == ["--strict "]
    assert complete("istio-federation check -o y") == ["yaml "]


# -- 8. help -----------------------------------------------------------------------------------------------


def test_every_option_of_every_subcommand_has_help() -> None:
    parser = build_parser()
    missing: list[str] = []
    for path, command in [("", parser), *subcommands(parser)]:
        for action in command._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
                continue
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"{path} {choice.dest}".strip() for choice in action._choices_actions if not choice.help]
            elif not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}".strip())
        if path and not command.description:
            missing.append(f"{path} (description)")
    assert missing == []


def test_help_shows_defaults() -> None:
    help_text = " ".join(typed("webhook", "serve", "--help").stdout.split())
    assert "--port PORT port to listen on (default 8443)" in help_text
    run_help = " ".join(typed("reconciler", "run", "--help").stdout.split())
    assert "--interval DURATION sync period (30s, 5m, 1h30m) (default: 1m)" in run_help
    assert "--ca-overlap DURATION how long a rotated-out remote root CA stays trusted (default: 24h)" in run_help
    validate_help = " ".join(typed("validate", "--help").stdout.split())
    assert "Admit every object in the given files as the admission webhook would, without a cluster" in validate_help
    assert "--as USERNAME the user the requests come from" in validate_help
    assert "-R, --recursive read directories given with -f and all their subdirectories" in validate_help
    assert "--log-level {DEBUG,INFO,WARNING,ERROR}" in validate_help


# -- 9. dev.py says what it does while the virtualenv installs ---------------------------------------------


def test_dev_py_shows_pips_progress(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    python = fake / "python"
    python.write_text(
        "#!/bin/sh\n"
        "echo 'Looking in indexes: https://pypi.org/simple'\n"
        "echo 'Collecting flask<4,>=3.0'\n"
        "echo '  Downloading flask-3.1.0-py3-none-any.whl (103 kB)'\n"
        "echo 'Processing /opt/wheels/gunicorn-27.0.1-py3-none-any.whl'\n"
        "echo 'Building wheels for collected packages: istio-federation'\n"
        "echo 'Installing collected packages: gunicorn, flask'\n"
        "echo 'Successfully installed flask-3.1.0 gunicorn-27.0.1'\n"
    )
    python.chmod(0o755)
    spec = importlib.util.spec_from_file_location("dev_script", REPO_ROOT / "dev.py")
    assert spec is not None
    assert spec.loader is not None
    dev: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dev)
    dev.BIN = fake

    assert dev._pip("install", "--editable", ".[test]", what="downloading") == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"+ {python} -m pip install --editable .[test] --progress-bar off")
    assert lines[1:5] == [
        "  [  1] flask<4,>=3.0",
        "  [  2] gunicorn",
        "  building wheels for collected packages: istio-federation",
        "  installing 2 packages (the slowest part; nothing is printed until it ends)",
    ]
    assert lines[5].startswith("  done in ")


# -- 10. bad input never gets a traceback -------------------------------------------------------------------


BAD_INVOCATIONS = {
    "webhook-not-pem": ["webhook", "serve", "--tls-cert-file", "{NOT_PEM}", "--tls-private-key-file", "{NOT_PEM}",
                        "--local-trust-domain", "cluster-a.local", "--state", "{STATE}"],
    "webhook-port": ["webhook", "serve", "--port", "http", "--tls-cert-file", "{CERT}", "--tls-private-key-file",
                     "{KEY}", "--local-trust-domain", "cluster-a.local", "--state", "{STATE}"],
    "webhook-staleness": ["webhook", "serve", "--tls-cert-file", "{CERT}", "--tls-private-key-file", "{KEY}",
                          "--local-trust-domain", "cluster-a.local", "--state", "{STATE}",
                          "--max-cache-staleness", "nan"],
    "webhook-binary-kubeconfig": ["webhook", "serve", "--tls-cert-file", "{CERT}", "--tls-private-key-file", "{KEY}",
                                  "--local-trust-domain", "cluster-a.local", "--kubeconfig", "{BINARY}"],
    "validate-binary": ["validate", "--local-trust-domain", "cluster-a.local", "-f", "{BINARY}"],
    "validate-directory-of-bad-yaml": ["validate", "--local-trust-domain", "cluster-a.local", "-R", "-f", "{BAD_DIR}"],
    "validate-bad-state": ["validate", "--local-trust-domain", "cluster-a.local", "--state", "{BAD_DIR}",
                           "-f", "{MANIFEST}"],
    "validate-output": ["validate", "--local-trust-domain", "cluster-a.local", "-f", "{MANIFEST}", "-o", "xml"],
    "exporter-advertise": ["exporter", "serve", "--cluster-uuid", UUID, "--cluster-domain", "cluster-a.local",
                           "--state", "{STATE}", "--advertise", "gateway"],
    "exporter-resync": ["exporter", "serve", "--cluster-uuid", UUID, "--cluster-domain", "cluster-a.local",
                        "--state", "{STATE}", "--resync-interval", "nan"],
    "exporter-poll": ["exporter", "serve", "--cluster-uuid", UUID, "--cluster-domain", "cluster-a.local",
                      "--state", "{STATE}", "--poll-interval", "-1"],
    "exporter-bad-state": ["exporter", "serve", "--cluster-uuid", UUID, "--cluster-domain", "cluster-a.local",
                           "--state", "{BAD_DIR}"],
    "reconciler-interval": ["reconciler", "run", "--once", "--cluster-uuid", UUID, "--local-trust-domain",
                            "cluster-a.local", "--state", "{STATE}", "--interval", "5x"],
    "reconciler-admission-ca": ["reconciler", "run", "--once", "--cluster-uuid", UUID, "--local-trust-domain",
                                "cluster-a.local", "--state", "{STATE}", "--admission-webhook", "https://127.0.0.1:1/",
                                "--admission-ca", "{BINARY}"],
    "reconciler-metrics-port": ["reconciler", "run", "--cluster-uuid", UUID, "--local-trust-domain",
                                "cluster-a.local", "--state", "{STATE}", "--metrics-port", "99999"],
    "check-domain": ["check", "--cluster-uuid", UUID, "--local-trust-domain", "Cluster_A", "--state", "{STATE}"],
    "check-stale-after": ["check", "--state", "{STATE}", "--stale-after", "soon"],
    "check-state-is-a-file": ["check", "--state", "{BINARY}"],
    "certs-ca-bundle-binary": ["certs", "webhook", "--out", "{OUT}", "--ca-bundle-into", "{BINARY}"],
    "certs-keypair-out": ["certs", "keypair", "--out", "{BINARY}/keys"],
    "certs-istio-ca-days": ["certs", "istio-ca", "--out", "{OUT}", "--days", "ten"],
    "certs-install-missing": ["certs", "install", "--kubeconfig", "{OUT}/absent"],
    "demo-workdir-taken": ["demo", "--workdir", "{STATE}"],
    "demo-workdir-impossible": ["demo", "--workdir", "{BINARY}/demo"],
    "completion-shell": ["completion", "cmd.exe"],
    "log-level": ["--log-level", "verbose", "check", "--state", "{STATE}"],
    "log-format": ["check", "--state", "{STATE}", "--log-format", "xml"],
}  # fmt: skip


@pytest.mark.parametrize("name", list(BAD_INVOCATIONS))
def test_bad_input_is_a_line_and_an_exit_status_never_a_traceback(
    name: str, tmp_path: Path, tls_pair: tuple[Path, Path]
) -> None:
    state, bad_dir = tmp_path / "state", tmp_path / "bad"
    state.mkdir()
    bad_dir.mkdir()
    (state / "keep.yaml").write_text("# an admin's directory, not a demo's\n")
    (bad_dir / "broken.yaml").write_text("apiVersion: v1\nkind: [\n")
    (tmp_path / "binary.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (tmp_path / "not-pem").write_text("not a certificate\n")
    (tmp_path / "manifest.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    places = {"{STATE}": state, "{BAD_DIR}": bad_dir, "{BINARY}": tmp_path / "binary.png", "{OUT}": tmp_path / "out",
              "{NOT_PEM}": tmp_path / "not-pem", "{MANIFEST}": tmp_path / "manifest.yaml",
              "{CERT}": tls_pair[0], "{KEY}": tls_pair[1]}  # fmt: skip
    argv = []
    for template in BAD_INVOCATIONS[name]:
        argument = template
        for placeholder, path in places.items():
            argument = argument.replace(placeholder, str(path))
        argv.append(argument)

    result = typed(*argv, timeout=30)

    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode in (1, 2), result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, "a failure must say why"
    last = lines[-1]
    assert "error" in last.lower() or " ERROR " in last, result.stderr
