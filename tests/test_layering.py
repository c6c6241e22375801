"""The layering rules of DEVELOPERS.md, checked on the import statements themselves."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOYABLES = ("webhook", "exporter", "reconciler")
SHARED_IO = ("objectstore", "serving")
# The domain package is pure: nothing that talks to the network, the API or a server.
IO_MODULES = ("kubernetes", "flask", "gunicorn", "urllib3", "requests", "http", "socket", "subprocess", "objectstore",
              "serving", *DEPLOYABLES)  # fmt: skip


def imported_top_levels(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize("package", DEPLOYABLES)
def test_a_deployable_never_imports_another(package: str) -> None:
    others = set(DEPLOYABLES) - {package}
    offenders = {path: names & others for path, names in imported_top_levels(package).items() if names & others}
    assert offenders == {}


@pytest.mark.parametrize("package", ["federation", *SHARED_IO])
def test_shared_packages_never_import_a_deployable(package: str) -> None:
    offenders = {
        path: names & set(DEPLOYABLES)
        for path, names in imported_top_levels(package).items()
        if names & set(DEPLOYABLES)
    }
    assert offenders == {}


def test_the_domain_package_does_no_io() -> None:
    offenders = {
        path: names & set(IO_MODULES)
        for path, names in imported_top_levels("federation").items()
        if names & set(IO_MODULES)
    }
    assert offenders == {}
