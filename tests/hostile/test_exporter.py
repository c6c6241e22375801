"""The exporter under hostile input: the table of ``exporter_cases.py``, then the slow clients.

For every case: its exact answer; ``public.json`` fetched while it is served and again after it,
byte for byte the same; every published service and gateway still served to a trusted peer; no
traceback logged.  The slow clients all start with the first case and hold their connections
while the table runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

import pytest

from tests.hostile import servers
from tests.hostile.cases import Case, SlowCase
from tests.hostile.exporter_cases import CASES, SESSION, SLOW
from tests.hostile.slowbatch import SlowBatch
from tests.hostile.summary import SUMMARY
from tests.serving import clients as wire

pytestmark = pytest.mark.slow

IDLE = 100


@pytest.fixture(scope="module", autouse=True)
def slow_batch(exporter: servers.Target) -> Iterator[SlowBatch]:
    SESSION["etag"] = hashlib.sha256(exporter.baseline["public"]).hexdigest()[:32]
    batch = SlowBatch(exporter, SLOW).start()
    try:
        yield batch
    finally:
        batch.finish()


@pytest.mark.parametrize("case", CASES, ids=str)
def test_hostile_request(exporter: servers.Target, case: Case) -> None:
    servers.check_case(exporter, case)


@pytest.mark.parametrize("case", SLOW, ids=str)
def test_slow_client(exporter: servers.Target, slow_batch: SlowBatch, case: SlowCase) -> None:
    servers.check_slow(exporter, slow_batch, case)


def test_public_json_is_served_while_100_idle_connections_are_held(
    exporter: servers.Target, record_property: Callable[[str, object], None]
) -> None:
    """The latency is recorded (and shown in the summary), not asserted."""
    with wire.hold(IDLE, exporter.connect) as held:
        latency = exporter.probe(f"with {IDLE} idle connections held")
        assert held.open_count() == IDLE
    record_property("latency_ms", round(latency * 1e3, 1))
    SUMMARY.note(f"exporter: public.json with {IDLE} idle TLS connections held: {latency * 1e3:.0f} ms")
    assert "Traceback" not in exporter.log()
