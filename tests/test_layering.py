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


# -- import cycles -------------------------------------------------------------------------------
#
# Every import counts, including those inside functions: a lazy import only postpones the cycle to
# run time (the first call), it does not remove the mutual dependency, and two modules that need
# each other are one module in two files.  What does not count is the implicit import of a parent
# package: ``import reconciler.check.evaluate`` runs ``reconciler/check/__init__.py`` first, but a
# package that re-exports its submodules is a facade over them, not something they depend on.

PRODUCT_PACKAGES = ("federation", "objectstore", "serving", *DEPLOYABLES, "certs", "istio_federation")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(sources: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """Module → the product modules it imports, from ``{module: (source text, is a package)}``.

    ``from package import name`` is an edge to ``package.name`` when that is a module, else to
    ``package``; relative imports are resolved; imports of anything outside ``sources`` are ignored.
    """
    graph: dict[str, set[str]] = {}
    for name, (text, is_package) in sources.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names if alias.name in sources)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = name if is_package else name.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        package = package.rpartition(".")[0]
                    base = f"{package}.{base}" if base else package
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    if target in sources:
                        found.add(target)
                    elif base in sources:
                        found.add(base)
        graph[name] = found - {name}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or through others (Tarjan), sorted."""
    index: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = lowest[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.get(module, ())):
            if imported not in index:
                visit(imported)
                lowest[module] = min(lowest[module], lowest[imported])
            elif imported in on_stack:
                lowest[module] = min(lowest[module], index[imported])
        if lowest[module] == index[module]:
            group: list[str] = []
            while not group or group[-1] != module:
                group.append(stack.pop())
                on_stack.discard(group[-1])
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(cycles)


def product_sources() -> dict[str, tuple[str, bool]]:
    return {
        module_name(path): (path.read_text(encoding="utf-8"), path.name == "__init__.py")
        for package in PRODUCT_PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def test_no_product_module_is_part_of_an_import_cycle() -> None:
    assert import_cycles(import_graph(product_sources())) == []


def test_the_old_cycle_through_lazy_imports_is_refused() -> None:
    # The cycle issue 10 removed: `check` reached back, lazily, into the CLI that registers it.
    sources = {
        "reconciler": ("", True),
        "reconciler.cli": ("def _check_command(args):\n    from reconciler.check import run_command\n", False),
        "reconciler.check": ("from reconciler.check.command import run_command\n", True),
        "reconciler.check.command": ("def run_command(args):\n    from reconciler import cli\n", False),
    }

    assert import_cycles(import_graph(sources)) == [["reconciler.check", "reconciler.check.command", "reconciler.cli"]]


def test_relative_imports_are_resolved() -> None:
    sources = {
        "pkg": ("", True),
        "pkg.a": ("from . import b\n", False),
        "pkg.b": ("from .a import value\n", False),
        "pkg.sub": ("", True),
        "pkg.sub.c": ("from ..b import value\n", False),
    }

    assert import_graph(sources)["pkg.sub.c"] == {"pkg.b"}
    assert import_cycles(import_graph(sources)) == [["pkg.a", "pkg.b"]]


def test_importing_a_package_facade_is_not_a_cycle() -> None:
    sources = {
        "pkg": ("from pkg.inner import thing\n", True),
        "pkg.inner": ("from pkg.helper import util\nthing = util\n", False),
        "pkg.helper": ("util = 1\n", False),
    }

    assert import_graph(sources) == {"pkg": {"pkg.inner"}, "pkg.inner": {"pkg.helper"}, "pkg.helper": set()}
    assert import_cycles(import_graph(sources)) == []


PRODUCT_PACKAGES = ("federation", "objectstore", "serving", "certs", "istio_federation", *DEPLOYABLES)
MODULE_LINE_LIMIT = 400  # one concept per module: past this, a module is doing more than one thing


def test_no_product_module_is_over_the_line_limit() -> None:
    too_long = {
        str(path.relative_to(ROOT)): lines
        for package in PRODUCT_PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MODULE_LINE_LIMIT
    }
    assert too_long == {}, f"split these by concept (limit {MODULE_LINE_LIMIT} lines): {too_long}"
