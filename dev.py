#!/usr/bin/env python3
"""Set up and run istio-federation from a fresh clone: ``python3 dev.py demo`` or ``python3 dev.py test``.

Needs only Python 3.11+ and the package index: it creates ``.venv`` on first use (and again when
pyproject.toml changes), installs the project with its test dependencies, and runs the command.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".installed-from"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def _run(*command: str | Path) -> int:
    print("+", " ".join(str(part) for part in command), flush=True)
    return subprocess.call([str(part) for part in command], cwd=ROOT)


def _elapsed(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def _pip(*arguments: str, what: str) -> int:
    """Run pip, printing one short line per package it collects and a line at least every 15 s while it
    works silently (building and installing), instead of pip's full output; on failure, pip's output."""
    command = [str(BIN / "python"), "-m", "pip", *arguments, "--progress-bar", "off", "--disable-pip-version-check"]
    print(f"+ {' '.join(command)}", flush=True)
    started = time.monotonic()
    last = [started]
    phase = [what]
    done = threading.Event()

    def say(text: str) -> None:
        print(f"  {text}", flush=True)
        last[0] = time.monotonic()

    def heartbeat() -> None:
        while not done.wait(1.0):
            if time.monotonic() - last[0] >= 15:
                say(f"… {phase[0]} ({_elapsed(time.monotonic() - started)} so far)")

    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ticker = threading.Thread(target=heartbeat, daemon=True)
    ticker.start()
    output: list[str] = []
    collected = 0
    assert process.stdout is not None
    for raw in process.stdout:
        line = raw.rstrip()
        output.append(line)
        if line.startswith(("Collecting ", "Processing ")):  # from the index, or a local wheel
            collected += 1
            package = line.split()[1]
            say(f"[{collected:>3}] {Path(package).name.split('-')[0] if line.startswith('P') else package}")
        elif line.startswith("Building wheel") or line.startswith("Building editable"):
            phase[0] = "building wheels"
            say(line.split(" (")[0].lower())
        elif line.startswith("Installing collected packages:"):
            count = len(line.partition(":")[2].split(","))
            phase[0] = f"installing {count} packages"
            say(f"installing {count} packages (the slowest part; nothing is printed until it ends)")
    code = process.wait()
    done.set()
    ticker.join(timeout=2)
    if code == 0:
        say(f"done in {_elapsed(time.monotonic() - started)}")
    else:
        print("\n".join(output[-60:]), flush=True)
    return code


def ensure_environment() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script may be started by an older python3
        sys.exit(f"istio-federation needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.is_file() and STAMP.read_text().strip() == wanted:
        return
    print(
        f"setting up {VENV} (first run, or pyproject.toml changed): installing istio-federation and its test "
        "dependencies from the package index, which takes a few minutes",
        flush=True,
    )
    if not (BIN / "python").exists():
        print(f"creating virtual environment {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    if _pip("install", "--upgrade", "pip", what="upgrading pip") != 0:
        sys.exit("could not upgrade pip in .venv")
    if _pip("install", "--editable", ".[test]", what="downloading") != 0:
        sys.exit("could not install istio-federation and its dependencies into .venv")
    STAMP.write_text(wanted + "\n")


SKIP_REAL_CLUSTER = "ISTIO_FEDERATION_SKIP_REAL_CLUSTER"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def test(extra: list[str]) -> int:
    """Lint, type-check, build the real-cluster tier's kube-apiserver (cached), then run every test;
    any failure fails the whole command. ``--no-real-cluster`` (or ISTIO_FEDERATION_SKIP_REAL_CLUSTER=1)
    skips the tier on a developer machine; under CI=true it never skips."""
    skip = "--no-real-cluster" in extra or os.environ.get(SKIP_REAL_CLUSTER) == "1"
    extra = [arg for arg in extra if arg != "--no-real-cluster"]
    if skip and _in_ci():
        print(f"CI=true: the real-cluster tier is never skipped (ignoring --no-real-cluster/{SKIP_REAL_CLUSTER})")
        skip = False
    os.environ[SKIP_REAL_CLUSTER] = "1" if skip else "0"
    if _run(BIN / "ruff", "check", ".") != 0 or _run(BIN / "mypy") != 0:
        return 1
    if skip:
        print("skipping the real-cluster tier (tests/realcluster)", flush=True)
    elif _run(BIN / "python", "-m", "tests.realcluster.build") != 0:
        print("the real-cluster tier needs kube-apiserver and etcd, and building them failed (see above)")
        return 1
    return _run(BIN / "python", "-m", "pytest", *extra)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test", "shell"):
        print(__doc__.strip())
        print("\nusage: python3 dev.py demo [ARGS…] | test [--no-real-cluster] [PYTEST ARGS…] | shell COMMAND…")
        return 2
    ensure_environment()
    command, rest = argv[0], argv[1:]
    if command == "demo":
        return _run(BIN / "istio-federation", "demo", *rest)
    if command == "test":
        return test(rest)
    return _run(BIN / rest[0], *rest[1:]) if rest else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
