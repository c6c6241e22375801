"""The hostile-input suite's servers (one per target for the whole session) and its summary.

Every test that takes a ``case`` parameter (a :class:`~tests.hostile.cases.Case`,
:class:`~tests.hostile.cases.SlowCase` or reconciler case) counts as one case of its target: its
report says whether it was handled as expected, or is a known bug (``xfail(strict=True)``).  At the
end, ``pytest_terminal_summary`` prints the table and writes it to ``.hostile-summary.txt``.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

# The helper modules assert too (the tables' expectations): show their differences as pytest does.
pytest.register_assert_rewrite(
    "tests.hostile.cases", "tests.hostile.servers", "tests.hostile.slowbatch", "tests.hostile.reconciler_cases"
)

from tests.hostile import servers  # noqa: E402 - after the rewrite is registered
from tests.hostile.summary import SUMMARY  # noqa: E402

SUMMARY_FILE = ".hostile-summary.txt"
_HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def webhook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Target]:
    with servers.webhook(tmp_path_factory.mktemp("hostile-webhook")) as target:
        yield target


@pytest.fixture(scope="session")
def exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Target]:
    with servers.exporter(tmp_path_factory.mktemp("hostile-exporter")) as target:
        yield target


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if Path(str(item.path)).is_relative_to(_HERE):
        SUMMARY.ran(call.start, call.stop)
    callspec = getattr(item, "callspec", None)
    case = callspec.params.get("case") if callspec is not None else None
    target = getattr(case, "target", None)
    if target is not None and (report.when == "call" or (report.when == "setup" and not report.passed)):
        xfailed = report.skipped and hasattr(report, "wasxfail")
        SUMMARY.outcome(target, str(getattr(case, "name", case)), passed=report.passed, xfailed=xfailed)
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if not SUMMARY.tried:
        return
    text = SUMMARY.render()
    terminalreporter.section("hostile-input summary")
    terminalreporter.write(text)
    (Path(config.rootpath) / SUMMARY_FILE).write_text(text, encoding="utf-8")
