"""A benchmark stopped by SIGTERM unwinds through its finally blocks (which stop what it started)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tests.support import REPO_ROOT

PROGRAM = """
import pathlib, sys, time
from tests.bench import stop_cleanly_on_sigterm
stop_cleanly_on_sigterm()
try:
    print("started", flush=True)
    time.sleep(60)
finally:
    pathlib.Path(sys.argv[1]).write_text("stopped what it started")
"""


def test_sigterm_runs_the_finally_blocks_and_exits_143(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    process = subprocess.Popen(
        [sys.executable, "-c", PROGRAM, str(marker)], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "started\n"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        process.kill()
        process.wait(timeout=30)
    assert marker.read_text() == "stopped what it started"
