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
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".installed-from"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def _run(*command: str | Path) -> int:
    print("+", " ".join(str(part) for part in command), flush=True)
    return subprocess.call([str(part) for part in command], cwd=ROOT)


def ensure_environment() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script may be started by an older python3
        sys.exit(f"istio-federation needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.is_file() and STAMP.read_text().strip() == wanted:
        return
    if not (BIN / "python").exists():
        print(f"creating virtual environment {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    if _run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip") != 0:
        sys.exit("could not upgrade pip in .venv")
    if _run(BIN / "python", "-m", "pip", "install", "--quiet", "--editable", ".[test]") != 0:
        sys.exit("could not install istio-federation and its dependencies into .venv")
    STAMP.write_text(wanted + "\n")


def test(extra: list[str]) -> int:
    """Lint, type-check, then run every test; any failure fails the whole command."""
    if _run(BIN / "ruff", "check", ".") != 0 or _run(BIN / "mypy") != 0:
        return 1
    return _run(BIN / "python", "-m", "pytest", *extra)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("demo", "test", "shell"):
        print(__doc__.strip())
        print("\nusage: python3 dev.py demo [ARGS…] | test [PYTEST ARGS…] | shell COMMAND…")
        return 2
    ensure_environment()
    command, rest = argv[0], argv[1:]
    if command == "demo":
        return _run(BIN / "istio-federation", "demo", *rest)
    if command == "test":
        return test(rest)
    return _run(*[BIN / rest[0], *rest[1:]]) if rest else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
