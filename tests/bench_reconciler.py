"""Reconciler benchmark: one sync of N remote services on the state directory. Prints, asserts nothing.

    .venv/bin/python -m tests.bench_reconciler [N]

Reports the first sync (every ServiceEntry and DestinationRule created), an unchanged second sync
(which must write nothing) and a gateway address change (every ServiceEntry updated), against the
Deckhouse-format fixture remote over HTTPS on loopback.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import trustme

from federation.keys import Keypair
from tests.test_reconciler_support import (
    Clock,
    Harness,
    ca_pem,
    deckhouse_remote,
    federation,
    mesh_config_map,
    open_state,
    write_state,
)


class WallClock(Clock):
    """Real time throughout: the remote checks token expiry against its own clock."""

    def __call__(self) -> datetime:
        return datetime.now(UTC)


def main(count: int) -> None:
    ca = trustme.CA()
    keypair = Keypair.generate()
    with deckhouse_remote(ca, keypair) as remote, tempfile.TemporaryDirectory() as work:
        remote.cluster.services = [
            {"hostname": f"svc{i}.ns.svc.cluster-b.local", "ports": [{"name": "http", "port": 8080}]}
            for i in range(count)
        ]
        root = Path(work)
        write_state(root, federation("cluster-b", remote.endpoint, ca=ca_pem(ca)), mesh_config_map())
        store = open_state(root)
        harness = Harness(store, keypair, clock=WallClock())
        started = time.monotonic()
        harness.sync()
        first, first_writes = time.monotonic() - started, store.writes.total
        started = time.monotonic()
        harness.sync()
        second, second_writes = time.monotonic() - started, store.writes.total - first_writes
        remote.cluster.gateways[0]["address"] = "10.0.0.99"
        started = time.monotonic()
        harness.sync()
        third, third_writes = time.monotonic() - started, store.writes.total - first_writes - second_writes
        store.stop()
    print(f"{count} remote services, state directory backend:")
    print(f"  first sync      {first:6.2f} s  {first_writes} writes")
    print(f"  unchanged sync  {second:6.3f} s  {second_writes} writes")
    print(f"  gateway change  {third:6.2f} s  {third_writes} writes")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
