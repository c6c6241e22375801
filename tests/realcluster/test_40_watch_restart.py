"""The apiserver of cluster-a stops and comes back under a running webhook and reconciler.

While it is down the components retry with capped, jittered backoff and log each change of state
once (not every attempt); once their watch has been broken for longer than the webhook's
``--max-cache-staleness`` (5 s), the webhook reports not ready and refuses reviews instead of
answering from a cache that may be stale. When the server is back they relist, and the cache is
current again: two ServiceEntries with one host in one namespace are never both admitted.
"""

from __future__ import annotations

import re
import signal

from tests.realcluster.cluster import wait_for
from tests.realcluster.conftest import Clusters
from tests.realcluster.story import CONVERGE, managed, wait_imported
from tests.realcluster.test_20_kubectl_output import service_entry
from tests.realcluster.world import Installation

WEBHOOK_WATCHES = ("istiofederations.deckhouse.io", "serviceentries.networking.istio.io")
FAILING = re.compile(r"store: (\S+)[^:]*: (\w+): .* \(retrying every 1\.0s at most")
RECOVERED = re.compile(r"store: (\S+)[^:]*: recovered after [0-9.]+s \((\d+) failed attempts\)")


def webhook_ready(installation: Installation) -> tuple[int, object]:
    return installation.get("webhook", "/readyz")


def lines_since(installation: Installation, component: str, offset: int) -> list[str]:
    return installation.components[component].process.log()[offset:].splitlines()


def log_size(installation: Installation, component: str) -> int:
    return len(installation.components[component].process.log())


def admit_twice(installation: Installation, name: str, host: str) -> tuple[str, str]:
    """Create two ServiceEntries with one host in one namespace; the first is retried while the
    webhook refuses for staleness. Returns what kubectl printed for each."""
    first = service_entry(f"{name}-1", [host], namespace="restart")
    second = service_entry(f"{name}-2", [host], namespace="restart")

    def created() -> str:
        result = installation.cluster.kubectl("apply", "-f", "-", stdin=_dump(first), check=False)
        return result.output if result.code == 0 else ""

    first_output = wait_for(created, timeout=CONVERGE, interval=0.5, what="the first ServiceEntry admitted")
    second_result = installation.cluster.kubectl("apply", "-f", "-", stdin=_dump(second), check=False)
    return first_output, second_result.output


def _dump(obj: dict[str, object]) -> str:
    import yaml

    return yaml.safe_dump(obj)


def test_apiserver_restart_under_running_webhook_and_reconciler(federated: Clusters, scenarios: set[str]) -> None:
    a = federated.a
    a.cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "restart"}})
    webhook_offset, reconciler_offset = log_size(a, "webhook"), log_size(a, "reconciler")

    a.cluster.stop_apiserver()
    try:
        _status, body = wait_for(
            lambda: (found := webhook_ready(a))[0] == 503 and found,
            timeout=CONVERGE, interval=0.5, what="the webhook reporting its stale cache",
        )  # fmt: skip
        assert isinstance(body, dict)
        assert body["status"] == "not ready"
        assert re.fullmatch(
            r"the watch of \S+ is failing \((unreachable|read timeout|HTTP \d+)\) for \d+s, longer than "
            r"--max-cache-staleness 5s",
            body["reason"], re.DOTALL,
        ), body["reason"]  # fmt: skip
    finally:
        a.cluster.start_apiserver()

    wait_for(lambda: webhook_ready(a)[0] == 200, timeout=CONVERGE, interval=0.3, what="the webhook ready again")
    # The stale window: both were admitted. Now the second is always denied.
    first, second = admit_twice(a, "dup", "dup.restart.example.com")
    assert first == "serviceentry.networking.istio.io/dup-1 created\n"
    assert second == (
        'The ServiceEntry "dup-2" is invalid: spec.hosts[0]: Duplicate value: "dup.restart.example.com": host is '
        "already declared by ServiceEntry restart/dup-1 and both are visible to the same namespaces (Istio would "
        "silently use the older one); remove the host from one of them, or make their exportTo scopes disjoint\n"
    )

    # One line when each watch broke (and per change of cause), one when it recovered; no more.
    webhook_lines = lines_since(a, "webhook", webhook_offset)
    for watch in WEBHOOK_WATCHES:
        failing = [line for line in webhook_lines if (m := FAILING.search(line)) and m[1] == watch]
        recovered = [line for line in webhook_lines if (m := RECOVERED.search(line)) and m[1] == watch]
        assert 1 <= len(failing) <= 3, (watch, failing)
        assert len(recovered) == 1, (watch, webhook_lines)
    assert not [line for line in webhook_lines if "recovered" in line and "attempts)" not in line]

    # The reconciler lived through it too: its watches recovered, it still holds the Lease and
    # keeps the story converged (a deleted managed object comes back).
    wait_for(
        lambda: len([line for line in lines_since(a, "reconciler", reconciler_offset) if RECOVERED.search(line)]) >= 4,
        timeout=CONVERGE, interval=0.5, what="every reconciler watch recovered",
    )  # fmt: skip
    assert a.components["reconciler"].process.running
    assert a.get("reconciler", "/healthz")[0] == 200
    lease = a.cluster.get_json("lease", "istio-federation-reconciler", "-n", "istio-federation")
    assert lease["spec"]["holderIdentity"]
    wait_imported(a)
    assert len(managed(a, "serviceentries")) == 1
    scenarios.add("apiserver-restart")


def test_a_hung_apiserver_is_noticed_by_the_read_timeout(federated: Clusters) -> None:
    """SIGSTOP keeps the connections open and silent, as a dead peer behind a live network path
    would: only the stream's read timeout can notice it."""
    a = federated.a
    apiserver = a.cluster.apiserver
    assert apiserver is not None
    offset = log_size(a, "webhook")
    apiserver.signal(signal.SIGSTOP)
    try:
        wait_for(lambda: webhook_ready(a)[0] == 503, timeout=CONVERGE, interval=0.5,
                 what="the webhook noticing the silent apiserver")  # fmt: skip
    finally:
        apiserver.signal(signal.SIGCONT)
    wait_for(lambda: webhook_ready(a)[0] == 200, timeout=CONVERGE, interval=0.3, what="the webhook ready again")
    lines = lines_since(a, "webhook", offset)
    assert [line for line in lines if "ReadTimeoutError" in line], lines
