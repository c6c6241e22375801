"""The webhook under hostile input: the table of ``webhook_cases.py``, the slow clients, 100 idle connections.

For every case: its exact answer; a healthy review sent while it is served and another after it,
both answered; every object of the state directory still known to the webhook; no traceback
logged.  The slow clients all start with the first case and hold their connections while the
table runs (a healthy review is probed every quarter second until the last of them is done).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.hostile import servers
from tests.hostile.cases import Case, SlowCase
from tests.hostile.slowbatch import SlowBatch
from tests.hostile.summary import GOAL_SECONDS, SUMMARY
from tests.hostile.webhook_cases import CASES, SLOW
from tests.serving import clients as wire

pytestmark = pytest.mark.slow

IDLE = 100


@pytest.fixture(scope="module", autouse=True)
def slow_batch(webhook: servers.Target) -> Iterator[SlowBatch]:
    """The slow clients, started with the module's first test and running behind the table."""
    batch = SlowBatch(webhook, SLOW).start()
    try:
        yield batch
    finally:
        batch.finish()


@pytest.mark.parametrize("case", CASES, ids=str)
def test_hostile_request(webhook: servers.Target, case: Case) -> None:
    servers.check_case(webhook, case)


@pytest.mark.parametrize("case", SLOW, ids=str)
def test_slow_client(webhook: servers.Target, slow_batch: SlowBatch, case: SlowCase) -> None:
    servers.check_slow(webhook, slow_batch, case)


@pytest.mark.parametrize("tls", [True, False], ids=["after the TLS handshake", "before the TLS handshake"])
def test_a_review_is_answered_within_1s_while_100_idle_connections_are_held(
    webhook: servers.Target, tls: bool, record_property: Callable[[str, object], None]
) -> None:
    """The issue's done-when.  Asserted as the best of three reviews: one slow answer on a shared,
    loaded CI machine is noise, three in a row would be a webhook that no longer keeps its 1 s goal
    (they take 20-100 ms here).  The idle connections are held from before the first probe to
    after the last: the server's deadlines (5 s for a handshake, 10 s for a request head) are
    longer than the few hundred milliseconds this takes."""
    with wire.hold(IDLE, lambda: webhook.connect(tls=tls)) as held:
        latencies = [webhook.probe(f"with {IDLE} idle connections held") for _ in range(3)]
        assert held.open_count() == IDLE
    record_property("latency_ms", [round(seconds * 1e3, 1) for seconds in latencies])
    SUMMARY.note(f"webhook: a healthy review with {IDLE} idle connections held ({'TLS' if tls else 'TCP'}): "
                 + ", ".join(f"{seconds * 1e3:.0f} ms" for seconds in latencies))  # fmt: skip
    assert min(latencies) < GOAL_SECONDS, latencies
    assert "Traceback" not in webhook.log()
