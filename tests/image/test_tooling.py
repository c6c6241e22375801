"""The image tooling itself, without podman: what it hashes, the command lines it makes, its errors."""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

from tests.image import build, podman
from tests.image.build import IMAGE_GID, IMAGE_UID, BuiltImage
from tests.image.podman import ImageToolError

IMAGE = BuiltImage(
    reference="localhost/istio-federation:h-0123456789abcdef0123",
    version_reference="localhost/istio-federation:0.1.0",
    version="0.1.0",
    image_id="f" * 64,
    content_hash="0123456789abcdef0123",
    base="localhost/istio-federation-base:bookworm-000000000000",
)


def test_the_hash_covers_the_recipe_the_metadata_and_every_product_file() -> None:
    files = {str(path.relative_to(build.ROOT)) for path in build.input_files()}
    assert {"Containerfile", "pyproject.toml", "README.md"} <= files
    for package in build.product_packages():
        sources = {str(path.relative_to(build.ROOT)) for path in (build.ROOT / package).rglob("*.py")}
        sources = {source for source in sources if "__pycache__" not in source}
        assert sources, package
        assert sources <= files, package
    assert not [name for name in files if "__pycache__" in name or name.endswith(".pyc")]


def test_the_hash_changes_with_the_pins_and_the_base() -> None:
    pins = "flask==3.1.0\n"
    digest = build.content_hash("base-a", pins)
    assert re.fullmatch(r"[0-9a-f]{20}", digest)
    assert build.content_hash("base-a", pins) == digest
    assert build.content_hash("base-b", pins) != digest
    assert build.content_hash("base-a", "flask==3.1.1\n") != digest


def test_pins_are_the_test_environment_without_the_project() -> None:
    pins = build.pinned_requirements().splitlines()
    names = [line.split("==", 1)[0] for line in pins]
    assert "istio-federation" not in names
    assert "gunicorn" in names
    assert names == sorted(names)
    assert all(re.fullmatch(r"[a-z0-9.-]+==\S+", line) for line in pins)


def test_image_user_constants_match_the_containerfile() -> None:
    text = (build.ROOT / "Containerfile").read_text(encoding="utf-8")
    assert re.findall(r"^USER (.+)$", text, re.MULTILINE) == [f"{IMAGE_UID}:{IMAGE_GID}"]
    assert re.findall(r"^ENTRYPOINT (.+)$", text, re.MULTILINE) == ['["istio-federation"]']


def test_run_argv_runs_the_image_as_a_restricted_pod_would() -> None:
    argv = IMAGE.run_argv("--version", name="x", options=["--volume", "/a:/b:ro"])
    conf = argv[1]
    assert argv[:8] == [
        "env", conf, "podman", "--runtime", "runc", "--cgroup-manager=cgroupfs", "run", "--rm",
    ]  # fmt: skip
    assert conf == f"CONTAINERS_CONF={podman.containers_conf()}"
    assert argv[8:] == [
        "--name", "x", "--network", "host",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--read-only", "--read-only-tmpfs=false",
        "--tmpfs", "/tmp:rw,nosuid,nodev,noexec,size=16m,mode=1777",
        "--volume", "/a:/b:ro",
        IMAGE.reference, "--version",
    ]  # fmt: skip
    no_tmp = IMAGE.run_argv("reconciler", name="y", tmpfs=())
    assert "--tmpfs" not in no_tmp
    assert "--read-only" in no_tmp


def test_containers_conf_holds_the_three_settings() -> None:
    text = podman.containers_conf().read_text(encoding="utf-8")
    assert "default_ulimits = []" in text
    assert 'runtime = "runc"' in text
    assert 'cgroup_manager = "cgroupfs"' in text


def test_a_missing_tool_is_named() -> None:
    with pytest.raises(ImageToolError, match=r"^probe: /nonexistent/tool is not installed"):
        podman.run(["/nonexistent/tool", "--version"], what="probe", timeout=10)


def test_a_failing_step_names_its_command_and_shows_its_output(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import sys; print('out'); sys.exit('broken on purpose')"]
    with pytest.raises(ImageToolError) as caught:
        podman.run(argv, what="probe", timeout=30, log=tmp_path / "probe.log")
    message = str(caught.value)
    assert message.startswith("probe failed with exit code 1: ")
    assert f"(full log: {tmp_path / 'probe.log'})" in message
    assert message.endswith("out\nbroken on purpose")


def test_a_step_that_hangs_is_stopped() -> None:
    argv = [sys.executable, "-c", "import time; time.sleep(30)"]
    with pytest.raises(ImageToolError, match=r"^probe: gave up after 1 s: "):
        podman.run(argv, what="probe", timeout=1)


def test_version_flag_prints_the_installed_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    from istio_federation import cli

    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"istio-federation {importlib.metadata.version('istio-federation')}\n"
    assert importlib.metadata.version("istio-federation") == build.project_version()
