"""Podman on these machines: the tools, the settings it needs, and the one place argv is built.

Podman runs here only with three settings (measured; each alone fails): the ``runc`` runtime,
the ``cgroupfs`` cgroup manager, and a containers.conf with ``default_ulimits = []``.
:func:`podman_command` is the only builder of a podman command line, so every caller (the image
build, the image tests, the real-cluster tier) gets all three.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

# command -> Debian package providing it
TOOLS = {"podman": "podman", "runc": "runc", "mmdebstrap": "mmdebstrap"}
APT_UPDATE_TIMEOUT = 600.0
APT_INSTALL_TIMEOUT = 1200.0
APT_LOCK_WAIT_SECONDS = 600

CONTAINERS_CONF = """\
# Written by tests/image/podman.py: the settings podman needs on these machines.
[containers]
# Without this, every run fails with "setrlimit RLIMIT_NOFILE: Operation not permitted".
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


class ImageToolError(RuntimeError):
    """A tool is missing or a step failed; the message names the step, the command and its output."""


def cache_root() -> Path:
    """The cache shared with the real-cluster tier (``ISTIO_FEDERATION_CACHE`` overrides it)."""
    configured = os.environ.get("ISTIO_FEDERATION_CACHE")
    base = Path(configured) if configured else Path.home() / ".cache" / "istio-federation"
    return base.expanduser().resolve() / "image"


def progress(message: str) -> None:
    print(f"[image] {message}", file=sys.stderr, flush=True)


def containers_conf() -> Path:
    """The containers.conf podman must read; (re)written when its content differs."""
    path = cache_root() / "containers.conf"
    if not path.is_file() or path.read_text(encoding="utf-8") != CONTAINERS_CONF:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(CONTAINERS_CONF, encoding="utf-8")
    return path


def podman_command(*args: str) -> list[str]:
    """``podman …`` with the settings these machines need, as an argv list for subprocess."""
    return [
        "env",
        f"CONTAINERS_CONF={containers_conf()}",
        "podman",
        "--runtime",
        "runc",
        "--cgroup-manager=cgroupfs",
        *args,
    ]


def run(
    argv: Sequence[str],
    *,
    what: str,
    timeout: float,
    env: dict[str, str] | None = None,
    log: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a step to completion within ``timeout``; raise :class:`ImageToolError` naming it on failure.

    With ``log`` the step's output goes to that file (long steps), otherwise it is captured.
    """
    command = " ".join(argv)
    started = time.monotonic()
    try:
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("w", encoding="utf-8") as handle:
                result = subprocess.run(
                    list(argv),
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                    text=True,
                    timeout=timeout,
                    env=env,
                    check=False,
                )
            output = log.read_text(encoding="utf-8", errors="replace")
        else:
            result = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, env=env, check=False)
            output = result.stdout + result.stderr
    except FileNotFoundError as error:
        raise ImageToolError(f"{what}: {error.filename or argv[0]} is not installed ({command})") from error
    except subprocess.TimeoutExpired as error:
        raise ImageToolError(f"{what}: gave up after {timeout:.0f} s: {command}") from error
    if result.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-40:])
        where = f" (full log: {log})" if log is not None else ""
        raise ImageToolError(f"{what} failed with exit code {result.returncode}: {command}{where}\n{tail}")
    progress(f"{what}: done in {time.monotonic() - started:.1f} s")
    return result


def missing_tools() -> list[str]:
    return sorted({package for command, package in TOOLS.items() if shutil.which(command) is None})


def ensure_tools() -> None:
    """Install podman, runc and mmdebstrap from Debian's archive when any is missing."""
    missing = missing_tools()
    if not missing:
        return
    install = ["apt-get", "install", "--yes", "--no-install-recommends", *missing]
    if shutil.which("apt-get") is None:
        raise ImageToolError(f"{', '.join(missing)} missing and there is no apt-get: install them by hand")
    if os.geteuid() != 0:
        raise ImageToolError(f"{', '.join(missing)} missing; as root run: apt-get update && {' '.join(install)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", f"DPkg::Lock::Timeout={APT_LOCK_WAIT_SECONDS}"]
    progress(f"installing {', '.join(missing)} with apt-get")
    logs = cache_root() / "logs"
    run(["apt-get", *lock, "update"], what="apt-get update", timeout=APT_UPDATE_TIMEOUT, env=env, log=logs / "apt.log")
    run(
        [*install[:1], *lock, *install[1:]],
        what=f"apt-get install {' '.join(missing)}",
        timeout=APT_INSTALL_TIMEOUT,
        env=env,
        log=logs / "apt-install.log",
    )
    still = missing_tools()
    if still:
        raise ImageToolError(f"apt-get install finished but {', '.join(still)} is still not on PATH")


def check_podman() -> str:
    """Fail with podman's own words when it cannot work here; returns its version."""
    result = run(podman_command("version", "--format", "{{.Client.Version}}"), what="podman version", timeout=60)
    return result.stdout.strip()
