"""The reconciler against a hostile remote: the table of ``reconciler_cases.py``, through the real Syncer.

Per case, a fresh state directory federates cluster-b (the hostile remote, ``remote.py``) and
cluster-c (a healthy Deckhouse remote).  A first sync imports cluster-b's three services and both
root CAs; then the remote turns hostile, the clock moves past ``--stale-after 1s``, and one more
sync runs.  Checked: cluster-b's result and the condition that names the problem (exact), the
objects afterwards (none lost, unless a valid document withdrew them), the status's size, no
traceback logged, and cluster-c synced in the same pass as if nothing happened (its sync time is
this target's "healthy probe").
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme

from federation import conditions, meshconfig, ownership, resources
from federation.keys import Keypair
from reconciler.fetch import Limits
from tests.deckhouse_fixture import DeckhouseCluster, DeckhouseExporter
from tests.hostile.reconciler_cases import (
    CASES,
    EXPLORE,
    GATEWAYS,
    HEALTHY_UUID,
    LOCAL_UUID,
    REMOTE_UUID,
    SERVICES,
    RemoteCase,
)
from tests.hostile.remote import PRIVATE, PUBLIC, HostileRemote
from tests.hostile.summary import SUMMARY
from tests.reconciler.harness import (
    NAMESPACE,
    Harness,
    ca_pem,
    federation,
    mesh_config_map,
    open_state,
    write_state,
)

pytestmark = pytest.mark.slow

R = "reconciler"
KEYPAIR = Keypair.generate()
# A fetch's deadline here: long enough for a loaded CI machine, short enough for the dripping cases.
LIMITS = Limits(connect_timeout=2.0, total_timeout=3.0)
MAX_STATUS_BYTES = 64 * 1024
HEALTHY_SERVICES = [{"hostname": "web.shop.svc.cluster-c.local", "ports": [{"name": "http", "port": 80}]}]


@dataclass
class Remotes:
    ca: trustme.CA
    hostile: HostileRemote
    healthy: DeckhouseExporter


@pytest.fixture(scope="module")
def remotes() -> Iterator[Remotes]:
    ca = trustme.CA()
    known = {LOCAL_UUID: KEYPAIR.public_pem}
    hostile = DeckhouseCluster(cluster_uuid=REMOTE_UUID, cluster_domain="cluster-b.local",
                               root_ca_pem=ca_pem(trustme.CA()), gateways=GATEWAYS, services=SERVICES,
                               known_clusters=known)  # fmt: skip
    healthy = DeckhouseCluster(cluster_uuid=HEALTHY_UUID, cluster_domain="cluster-c.local",
                               root_ca_pem=ca_pem(trustme.CA()), gateways=[{"address": "10.0.1.10", "port": 15443}],
                               services=HEALTHY_SERVICES, known_clusters=known)  # fmt: skip
    with HostileRemote(hostile, ca) as hostile_remote, DeckhouseExporter(healthy, ca) as healthy_remote:
        yield Remotes(ca, hostile_remote, healthy_remote)


class _Tracebacks(logging.Handler):
    """Counts log records that carry a traceback (what ``log.exception`` writes)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)


@pytest.fixture
def harness(tmp_path: Path, remotes: Remotes) -> Iterator[Harness]:
    remotes.hostile.reset()
    write_state(
        tmp_path,
        federation("cluster-b", remotes.hostile.endpoint, ca=ca_pem(remotes.ca)),
        federation("cluster-c", remotes.healthy.endpoint, ca=ca_pem(remotes.ca), trust_domain="cluster-c.local"),
        mesh_config_map(),
    )
    store = open_state(tmp_path)
    try:
        yield Harness(store, KEYPAIR, stale_after=timedelta(seconds=1), limits=LIMITS)
    finally:
        store.stop()


def inventory(harness: Harness) -> dict[str, Any]:
    """The managed objects by (federation, kind, name), and the mesh's trusted roots by trust domain."""
    found: dict[str, Any] = {}
    for kind in (resources.SERVICE_ENTRY, resources.DESTINATION_RULE):
        for obj in harness.store.list(kind, NAMESPACE):
            owner = resources.labels(obj).get(ownership.FEDERATION_LABEL, "")
            found[f"{owner}/{kind.kind}/{resources.name_of(obj)}"] = {
                "spec": obj.get("spec"), "labels": resources.labels(obj), "annotations": resources.meta(obj).get(
                    "annotations"),
            }  # fmt: skip
    for entry in meshconfig.mesh_entries(harness.mesh_text()):
        for domain in entry.get("trustDomains") or []:
            found.setdefault(f"mesh/{domain}", set()).add(entry["pem"])
    return found


def hosts(objects: dict[str, Any], owner: str = "cluster-b") -> frozenset[str]:
    return frozenset(value["spec"]["hosts"][0] for key, value in objects.items()
                     if key.startswith(f"{owner}/ServiceEntry/"))  # fmt: skip


def lost(before: dict[str, Any], after: dict[str, Any], withdrawn: frozenset[str]) -> list[str]:
    """What was there before and is not now, but for the objects of hosts a valid document withdrew."""
    gone = []
    for key, value in before.items():
        if key.startswith("mesh/"):
            gone += [f"{key} root" for pem in value if pem not in after.get(key, set())]
        elif key not in after and ownership.managed_name(_host(value)) not in {
            ownership.managed_name(host) for host in withdrawn
        }:
            gone.append(key)
    return gone


def _host(value: dict[str, Any]) -> str:
    spec = value["spec"]
    return str(spec["hosts"][0] if "hosts" in spec else spec["host"])


def _condition(harness: Harness, condition_type: str, name: str = "cluster-b") -> tuple[str, str, str]:
    found = harness.condition(condition_type, name)
    return found["status"], found["reason"], found["message"]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_hostile_remote(harness: Harness, remotes: Remotes, case: RemoteCase) -> None:
    first = harness.sync()
    assert first.ok, [(result.federation, result.stage, result.message) for result in first.results]
    before = inventory(harness)
    assert hosts(before) == frozenset(service["hostname"] for service in SERVICES)

    case.hostile(remotes.hostile)
    harness.clock.advance(timedelta(seconds=2))
    tracebacks = _Tracebacks()
    logging.getLogger().addHandler(tracebacks)
    try:
        report = harness.sync()
    finally:
        logging.getLogger().removeHandler(tracebacks)

    results = {result.federation: result for result in report.results}
    hostile, healthy = results["cluster-b"], results["cluster-c"]
    SUMMARY.probe(R, healthy.duration, f"cluster-c's sync beside {case.name!r}")
    if hostile.stage == "internal":
        SUMMARY.server_error(R)  # a sync that crashed: this target's 5xx
    if tracebacks.records:
        SUMMARY.tracebacks(R, len(tracebacks.records))
    after = inventory(harness)
    withdrawn = hosts(before) - case.imported if case.imported is not None else frozenset()
    missing = lost(before, after, withdrawn)
    if missing:
        SUMMARY.lost(R, len(missing))

    urls = {"public": remotes.hostile.endpoint.rstrip("/") + PUBLIC.removeprefix("/metadata"),
            "private": remotes.hostile.endpoint.rstrip("/") + PRIVATE.removeprefix("/metadata")}  # fmt: skip
    observed = (hostile.ok, *_condition(harness, case.condition))
    expected = (case.ok, case.status, case.reason, case.message.format(**urls))
    if case.message == EXPLORE:
        raise AssertionError(f"EXPLORE {observed!r} lost={missing} synced={_condition(harness, conditions.SYNCED)}")
    assert observed == expected
    assert missing == []
    if case.imported is None:
        assert {k: v for k, v in after.items() if k.startswith("cluster-b/")} == {
            k: v for k, v in before.items() if k.startswith("cluster-b/")
        }, "the last good objects must be kept as they were"
    else:
        assert hosts(after) == case.imported
    assert tracebacks.records == [], [record.getMessage() for record in tracebacks.records]
    status_bytes = len(json.dumps(harness.status(), separators=(",", ":")))
    assert status_bytes < MAX_STATUS_BYTES, status_bytes
    # The other federation synced in the same pass, untouched.
    assert (healthy.ok, hosts(after, "cluster-c")) == (True, frozenset({"web.shop.svc.cluster-c.local"}))
    assert _condition(harness, conditions.READY, "cluster-c")[0] == "True"
