"""The benchmark entry point runs end to end in its smoke mode.

Only that it completes and prints its table: figures are never asserted (the machine is shared).
The Kubernetes section needs the real-cluster tier's binaries and is left to that tier's machines.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support import REPO_ROOT


@pytest.mark.slow
def test_quick_benchmark_completes_and_prints_its_table() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench", "--quick", "--skip", "kube"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for heading in ("== statedir", "== reconciler", "== admission", "== exporter", "== figures"):
        assert heading in done.stdout
    assert "| section | figure | measured | limit | goal |" in done.stdout
