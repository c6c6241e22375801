"""Keeps Python's cyclic garbage collector off the sync path.

A reconciler that manages 100,000 objects caches them, and so holds millions of Python containers,
nearly all of them long-lived.  CPython's full (generation 2) collection traverses every tracked
container, and it comes due whenever enough new objects have survived, inside whatever sync is
running then.  ``python -m tests.bench`` measured one such pause at 1.6 s with 100,000 objects cached,
inside a sync that otherwise took 0.4 s, and 8.1 s of full collections during a first sync of 74 s.

So after each federation's sync, everything alive is frozen with ``gc.freeze()``: it moves to the
permanent generation, which collections skip, so a collection traverses only what was allocated
since.  Frozen objects are still freed by reference counting when they are dropped, and the cached
objects are JSON trees, without cycles.  Only a reference cycle that was already garbage when it was
frozen outlives its time: a full collection of everything, frozen or not, reclaims it.  That
collection runs between syncs, when none is in flight, at most every ``full_every`` seconds (an
hour by default).  A pause of about a second an hour, with nothing waiting on it, bounds what can
be held back that way.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

FULL_COLLECTION_EVERY = 3600.0


class Heap:
    def __init__(
        self, *, full_every: float = FULL_COLLECTION_EVERY, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.full_every = full_every
        self.clock = clock
        self._last_full = clock()

    def after_sync(self) -> None:
        """What a sync leaves alive is long-lived (the cache, the last plan): out of the collector's way."""
        gc.freeze()

    def between_syncs(self) -> bool:
        """With no sync in flight (the loop's own thread calls it): a full collection of everything,
        when one is due. Whether it ran."""
        if self.clock() - self._last_full < self.full_every:
            return False
        started = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        self._last_full = self.clock()
        log.debug(
            "full garbage collection: %d unreachable objects, %.2f s, %d objects frozen",
            found, time.perf_counter() - started, gc.get_freeze_count(),
        )  # fmt: skip
        return True
