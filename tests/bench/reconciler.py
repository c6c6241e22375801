"""Reconciler benchmark on the state directory. Prints figures, asserts nothing.

    .venv/bin/python -m tests.bench.reconciler [--federations 10] [--services 5000] [--profile FILE]

F federations, each pointing at its own Deckhouse-format remote (HTTPS on loopback) that offers S
services, so the first sync creates F × S ServiceEntries and as many DestinationRules.  The store
is opened as ``reconciler run --state`` opens it (watching the directory).  Reported: the first
sync, an unchanged second sync (which must write nothing), one changed service (one federation's
sync: its ServiceEntry is the only write), and the reconciler's memory (RSS).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import logging
import resource
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trustme

from federation import resources
from federation.keys import Keypair
from objectstore.statedir import StateDirStore
from reconciler.heap import Heap
from tests.bench import stop_cleanly_on_sigterm
from tests.deckhouse_fixture import DeckhouseCluster, DeckhouseExporter
from tests.reconciler.harness import LOCAL_UUID, Clock, Harness, ca_pem, federation, mesh_config_map, write_state


class WallClock(Clock):
    """Real time throughout: the remote checks token expiry against its own clock."""

    def __call__(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class ReconcilerFigures:
    federations: int
    services: int
    first: float
    first_writes: int
    unchanged: float
    unchanged_writes: int
    one_change: float
    one_change_writes: int
    rss_mib: float
    floor: float = 0.0  # seconds per file created by rename, measured beside the run
    unchanged_max: float = 0.0  # the slowest of the unchanged syncs (``unchanged`` is their median)
    one_change_max: float = 0.0  # the slowest of the one-change syncs (``one_change`` is their median)
    gc_pause_max: float = 0.0  # the longest full collection of Python's cyclic GC after the first sync
    first_gc: float = 0.0  # the first sync's full collections, in all

    @property
    def objects(self) -> int:
        return 2 * self.federations * self.services


def rss_mib() -> float:
    """The peak resident set of this process, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Remote(DeckhouseExporter):
    """The fixture remote, encoding each document once per ``version``: a remote's JSON encoding
    happens on another machine in real life, not in the reconciler's process (this one)."""

    version = 0

    def __init__(self, cluster: DeckhouseCluster, ca: trustme.CA) -> None:
        super().__init__(cluster, ca)
        self._encoded: dict[tuple[int, tuple[str, ...]], bytes] = {}

    def _marshal_indent(self, value: Any) -> bytes:  # type: ignore[override]
        key = (self.version, tuple(value) if isinstance(value, dict) else ())
        if key not in self._encoded:
            self._encoded[key] = DeckhouseExporter._marshal_indent(value)
        return self._encoded[key]


@contextlib.contextmanager
def remotes(count: int, services: int, ca: trustme.CA, keypair: Keypair) -> Iterator[list[Remote]]:
    with contextlib.ExitStack() as stack:
        started: list[Remote] = []
        for number in range(count):
            domain = f"cluster-b{number}.local"
            cluster = DeckhouseCluster(
                cluster_uuid=f"5d6c1e2f-0000-4000-8000-{number:012d}",
                cluster_domain=domain,
                root_ca_pem=ca_pem(trustme.CA()),
                services=[
                    {"hostname": f"svc{i}.ns{i % 20}.svc.{domain}", "ports": [{"name": "http", "port": 8080}]}
                    for i in range(services)
                ],
            )
            cluster.known_clusters[LOCAL_UUID] = keypair.public_pem
            remote: Remote = stack.enter_context(Remote(cluster, ca))
            started.append(remote)
        yield started


UNCHANGED_SYNCS = 3
ONE_CHANGES = 5  # each to another service of the first remote; their median and the slowest are shown


class FullCollections:
    """The durations of Python's full (generation 2) garbage collections while active: with 100,000
    objects cached, one traverses millions of containers, a pause any sync may happen to pay."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self._started = 0.0

    def __enter__(self) -> FullCollections:
        gc.callbacks.append(self._observe)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self._observe)

    def _observe(self, phase: str, info: dict[str, int]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.durations.append(time.perf_counter() - self._started)


def settled(*, limit: float, window: float = 1.0, busy: float = 0.1) -> float:
    """Wait until this process used less than ``busy`` of a CPU over ``window`` (at most ``limit``
    seconds); returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        before = time.process_time()
        time.sleep(window)
        if time.process_time() - before < busy * window:
            break
    return time.monotonic() - started


def file_floor(parent: Path | None, count: int = 2000) -> float:
    """Seconds the file system takes to create and rename one small file in a large directory, now:
    the floor under a first sync that writes one file per object."""
    with tempfile.TemporaryDirectory(dir=parent) as work:
        directory = Path(work)
        started = time.perf_counter()
        for number in range(count):
            temporary = directory / f".{number}.tmp"
            temporary.write_bytes(b"x" * 600)
            temporary.replace(directory / f"{number}.yaml")
        return (time.perf_counter() - started) / count


def measure(
    federations: int, services: int, *, profile: Path | None = None, parent: Path | None = None
) -> ReconcilerFigures:
    ca = trustme.CA()
    keypair = Keypair.generate()
    with remotes(federations, services, ca, keypair) as servers, tempfile.TemporaryDirectory(dir=parent) as work:
        root = Path(work)
        objects = [
            federation(f"cluster-b{n}", server.endpoint, ca=ca_pem(ca), trust_domain=f"cluster-b{n}.local")
            for n, server in enumerate(servers)
        ]
        write_state(root, *objects, mesh_config_map())
        store = StateDirStore(root, [], poll_interval=1.0)  # as `reconciler run --state` opens it
        store.start()
        try:
            # The status heartbeat (lastSuccessfulSyncTime, every stale_after / 2) must not come due
            # between a slow first sync and the unchanged one: a deliberate write, not a change.
            harness = Harness(
                store, keypair, clock=WallClock(), concurrency=4, stale_after=timedelta(minutes=30), heap=Heap()
            )
            profiler = cProfile.Profile() if profile else None
            started = time.monotonic()
            if profiler:
                profiler.enable()
            with FullCollections() as first_collections:
                report = harness.sync()
            if profiler:
                profiler.disable()
                profiler.dump_stats(str(profile))
            first, first_writes = time.monotonic() - started, store.writes.total
            failed = [result for result in report.results if not result.ok]
            if failed:
                raise RuntimeError(f"first sync failed: {failed[0].federation}: {failed[0].message}")
            # The store's watcher is still taking in the echoes of the first sync's own writes (one
            # inotify event each, 100,000 at the full size): a steady state is what is measured.
            settled(limit=60.0)
            with FullCollections() as collections:
                unchanged_times = []
                for _ in range(UNCHANGED_SYNCS):
                    started = time.monotonic()
                    harness.sync()
                    unchanged_times.append(time.monotonic() - started)
                unchanged_writes = store.writes.total - first_writes
                # One service of one remote changes its ports: one federation's sync picks it up.
                target = store.get(resources.ISTIO_FEDERATION, "", "cluster-b0")
                assert target is not None
                change_times, change_writes = [], []
                for number in range(ONE_CHANGES):
                    servers[0].cluster.services[number] = {
                        "hostname": servers[0].cluster.services[number]["hostname"],
                        "ports": [{"name": "http", "port": 8080}, {"name": "grpc", "port": 9090}],
                    }
                    servers[0].version += 1
                    before = store.writes.total
                    started = time.monotonic()
                    harness.syncer.sync(target)
                    change_times.append(time.monotonic() - started)
                    change_writes.append(store.writes.total - before)
        finally:
            store.stop()
    return ReconcilerFigures(
        federations, services, first, first_writes, statistics.median(unchanged_times), unchanged_writes,
        statistics.median(change_times), max(change_writes), rss_mib(), file_floor(parent), max(unchanged_times),
        max(change_times), max(collections.durations, default=0.0), sum(first_collections.durations),
    )  # fmt: skip


def print_figures(figures: ReconcilerFigures) -> None:
    print(f"{figures.federations} federations x {figures.services} services ({figures.objects} objects), "
          "state directory:")  # fmt: skip
    print(f"  first sync      {figures.first:7.2f} s  {figures.first_writes} writes")
    print(f"  unchanged sync  {figures.unchanged:7.2f} s  {figures.unchanged_writes} writes "
          f"(median of {UNCHANGED_SYNCS}, slowest {figures.unchanged_max:.2f} s)")
    print(f"  one change      {figures.one_change:7.2f} s  {figures.one_change_writes} writes at most "
          f"(median of {ONE_CHANGES}, slowest {figures.one_change_max:.2f} s)")
    print(f"  full GC         {figures.gc_pause_max:7.2f} s  the longest after the first sync "
          f"({figures.first_gc:.2f} s in all during it)")
    print(f"  peak RSS        {figures.rss_mib:7.0f} MiB")
    print(f"  file system     {figures.floor * 1e6:7.0f} µs to create one file by rename (the floor: "
          f"{figures.floor * figures.objects:.1f} s for {figures.objects} files)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--federations", type=int, default=10)
    parser.add_argument("--services", type=int, default=5000, help="per federation")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the first sync here")
    parser.add_argument("--directory", type=Path, help="where the state directory is made (default: the temp dir)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print_figures(measure(args.federations, args.services, profile=args.profile, parent=args.directory))


if __name__ == "__main__":
    stop_cleanly_on_sigterm()
    main()
