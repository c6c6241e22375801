"""reconciler.heap: what a sync leaves alive is frozen out of the collector's way, and a full
collection between syncs, when due, reclaims a cycle that was frozen as garbage."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import trustme

from federation import resources
from federation.keys import Keypair
from objectstore.statedir import StateDirStore
from reconciler.heap import Heap
from tests.deckhouse_fixture import DeckhouseExporter
from tests.reconciler.harness import NAMESPACE, SEED_NAME, Harness, ca_pem, federation, mesh_config_map, write_state
from tests.support import wait_until


@pytest.fixture(autouse=True)
def _thawed() -> Iterator[None]:
    """The test process's collector is left as it was found."""
    yield
    gc.unfreeze()


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _garbage_cycle() -> weakref.ref[_Node]:
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    return weakref.ref(first)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_cycle_frozen_as_garbage_waits_for_the_full_collection_that_comes_due() -> None:
    clock = _Clock()
    heap = Heap(full_every=3600, clock=clock)
    gc.collect()
    gc.disable()  # no collection of its own may come between the freeze and the checks
    try:
        cycle = _garbage_cycle()  # unreachable, but a cycle: only the collector can free it
        heap.after_sync()
        assert gc.get_freeze_count() > 0
        gc.collect()
        assert cycle() is not None  # frozen: skipped by every collection

        clock.now += 3599
        assert heap.between_syncs() is False
        assert cycle() is not None

        clock.now += 1
        assert heap.between_syncs() is True
        assert cycle() is None
        assert gc.get_freeze_count() > 0  # what is alive is frozen again
        assert heap.between_syncs() is False  # the next one is an hour away
    finally:
        gc.enable()


class _RecordingHeap(Heap):
    def __init__(self, in_flight: set[str]) -> None:
        super().__init__(full_every=0)
        self.in_flight_seen: list[set[str]] = []
        self.syncs = 0
        self.watched = in_flight
        self.lock = threading.Lock()

    def after_sync(self) -> None:
        with self.lock:
            self.syncs += 1
        super().after_sync()

    def between_syncs(self) -> bool:
        self.in_flight_seen.append(set(self.watched))
        return super().between_syncs()


def test_the_loop_freezes_after_each_sync_and_collects_only_with_no_sync_in_flight(
    tmp_path: Path, remote: DeckhouseExporter, server_ca: trustme.CA, keypair: Keypair
) -> None:
    remote.mode = "slow"  # the remote holds its answer until released: a sync stays in flight
    write_state(tmp_path, mesh_config_map(), federation("cluster-b", remote.endpoint, ca=ca_pem(server_ca)))
    store = StateDirStore(tmp_path, [], poll_interval=0.05)
    store.start()
    harness = Harness(store, keypair, interval=3600)
    heap = _RecordingHeap(harness.reconciler._in_flight)
    harness.reconciler.heap = heap
    turns: list[float] = []
    submit_due = harness.reconciler._submit_due

    def counted(pool: ThreadPoolExecutor) -> None:
        turns.append(time.monotonic())
        submit_due(pool)

    harness.reconciler._submit_due = counted  # type: ignore[method-assign]
    thread = threading.Thread(target=harness.reconciler.run, name="reconciler-under-test", daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: bool(harness.reconciler._in_flight), timeout=15)
        seen_before = len(heap.in_flight_seen)
        turns_before = len(turns)
        assert wait_until(lambda: len(turns) >= turns_before + 2, timeout=15)  # the loop went round meanwhile
        assert harness.reconciler._in_flight
        assert len(heap.in_flight_seen) == seen_before  # ...and never collected while the sync was in flight
        remote.release.set()
        assert wait_until(lambda: store.get(resources.SERVICE_ENTRY, NAMESPACE, SEED_NAME) is not None, timeout=15)
        assert wait_until(lambda: harness.reconciler.rounds >= 1)
        assert wait_until(lambda: len(heap.in_flight_seen) > seen_before)
    finally:
        remote.release.set()
        harness.stop.set()
        thread.join(timeout=15)
        store.stop()
    assert not thread.is_alive()
    assert heap.syncs == harness.reconciler.rounds == 1
    assert all(seen == set() for seen in heap.in_flight_seen)
