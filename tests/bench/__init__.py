"""The benchmarks: ``python -m tests.bench`` (every section), or one section alone."""

from __future__ import annotations

import signal
from types import FrameType
from typing import NoReturn


def stop_cleanly_on_sigterm() -> None:
    """SIGTERM (``timeout``, a CI runner, ``kill``) ends a benchmark as Ctrl-C does: through its
    ``finally`` blocks and context managers, which stop every server, cluster and child it started.
    Python's default for SIGTERM is to die at once, leaving them running."""
    signal.signal(signal.SIGTERM, _exit_on_signal)


def _exit_on_signal(signum: int, _frame: FrameType | None) -> NoReturn:
    raise SystemExit(128 + signum)
