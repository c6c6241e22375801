"""The one place where store writes are retried.

* ``Conflict`` (409) and ``NotFound`` (404) mean our view was stale: retry at once, and tell the
  action to read fresh from the source of truth (``fresh=True``) instead of the cache.
* ``Unavailable`` (429, 5xx, connection errors) is retried with jittered exponential backoff.
* ``Rejected`` (any other 4xx, admission denials included) is never retried: it will not change.

Attempts are bounded, and backoff sleeps wake up on shutdown, so SIGTERM never waits out a backoff.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from federation.store import Conflict, NotFound, Unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


class Interrupted(Exception):
    """Shutdown was requested; the current write (if any) has completed."""


@dataclass
class Retry:
    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 5.0
    stop: threading.Event | None = None

    def run(self, action: Callable[[bool], T], *, what: str) -> T:
        """Call ``action(fresh)`` until it succeeds or attempts run out (then the last error is raised)."""
        fresh = False
        for attempt in range(1, self.attempts + 1):
            try:
                return action(fresh)
            except (Conflict, NotFound) as error:
                if attempt == self.attempts:
                    raise
                log.info("retrying %s with a fresh read after %s (attempt %d)", what, type(error).__name__, attempt)
                fresh = True
            except Unavailable as error:
                if attempt == self.attempts:
                    raise
                delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)  # noqa: S311
                log.warning("retrying %s in %.2fs after: %s (attempt %d)", what, delay, error, attempt)
                if self.stop is not None and self.stop.wait(delay):
                    raise Interrupted(what) from error
                if self.stop is None:
                    threading.Event().wait(delay)
                fresh = True
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def check_stop(self) -> None:
        """Raise Interrupted between writes once shutdown was requested."""
        if self.stop is not None and self.stop.is_set():
            raise Interrupted("shutdown requested")
