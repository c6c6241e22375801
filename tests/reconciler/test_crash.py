"""Crash consistency: ``kill -9`` a real ``istio-federation reconciler run`` during a large first sync.

The attack run killed the reconciler mid-sync and lost nothing; this keeps it proven (issue 14).
A remote publishes 2,000 services; a real reconciler process (state-directory mode) is killed with
SIGKILL five times, each once a seeded random number of objects has been written, so every kill
lands inside the sync whatever the machine's speed.  The next run must converge: every state file
parses, no temporary file is left behind, each host has exactly one ServiceEntry and one
DestinationRule under its managed name with the desired spec, nothing else is owned, and the
federation is Ready.  Bounded: five kills, each wait bounded, every process reaped.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import trustme
import yaml

from federation import conditions, desired, ownership, resources
from federation.documents.ingress_gateways import IngressGateway
from federation.documents.private import PrivateMetadata
from federation.documents.public_services import PublicService, ServicePort
from federation.keys import Keypair
from objectstore.statefiles import yaml_files
from reconciler import identity
from tests.deckhouse_fixture import DeckhouseExporter
from tests.reconciler.harness import (
    LOCAL_DOMAIN,
    LOCAL_UUID,
    NAMESPACE,
    ca_pem,
    federation,
    mesh_config_map,
    open_state,
    write_state,
)
from tests.support import REPO_ROOT, cli_command

SERVICES = 2_000
KILLS = 5
SEED = 20_261_130
RUN_TIMEOUT = 120.0


def _hosts() -> list[str]:
    return [f"svc{n:04d}.shop.svc.cluster-b.local" for n in range(SERVICES)]


def _written(root: Path) -> int:
    """Managed objects written so far (files in the two kinds' directories)."""
    count = 0
    for kind in ("serviceentry", "destinationrule"):
        directory = root / NAMESPACE / kind
        if directory.is_dir():
            count += sum(1 for entry in os.scandir(directory) if entry.name.endswith(".yaml"))
    return count


def _command(root: Path) -> list[str]:
    return cli_command(
        "reconciler", "run", "--cluster-uuid", LOCAL_UUID, "--local-trust-domain", LOCAL_DOMAIN,
        "--state", str(root), "--once",
    )  # fmt: skip


def _killed_at(root: Path, target: int, log: Path) -> int:
    """Start a run, SIGKILL it once ``target`` objects exist (or it ends first); the count at the kill."""
    with log.open("ab") as output:
        process = subprocess.Popen(_command(root), cwd=REPO_ROOT, stdout=output, stderr=output)
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        while process.poll() is None and _written(root) < target and time.monotonic() < deadline:
            time.sleep(0.02)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
    return _written(root)


def test_a_large_first_sync_killed_five_times_converges(
    tmp_path: Path, remote: DeckhouseExporter, server_ca: trustme.CA, keypair: Keypair
) -> None:
    hosts = _hosts()
    remote.cluster.services = [{"hostname": host, "ports": [{"name": "http", "port": 8080}]} for host in hosts]
    root = tmp_path / "cluster-a"
    write_state(
        root,
        federation("cluster-b", remote.endpoint, ca=ca_pem(server_ca)),
        mesh_config_map(),
        identity.secret_for(keypair, NAMESPACE),
    )
    log = tmp_path / "reconciler.log"
    # Seeded: the same kill points every run, spread over the 4,000 objects of the first sync.
    targets = sorted(random.Random(SEED).sample(range(1, 2 * SERVICES), KILLS))

    counts = [_killed_at(root, target, log) for target in targets]

    assert counts == sorted(counts)  # each run resumed where the last one was killed
    final = subprocess.run(
        _command(root), cwd=REPO_ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
    )
    assert final.returncode == 0, final.stderr[-3000:]

    # No partial file: every state file parses.  A write killed between creating its temporary file
    # and renaming it leaves that temporary behind (hidden, so no reader takes it for state); the
    # state directory does not sweep them yet, so at most one per kill is allowed here.
    for path in yaml_files(root):
        assert list(yaml.safe_load_all(path.read_text(encoding="utf-8"))), path
    temporaries = [path for path in root.rglob(".*.tmp") if path.is_file()]
    assert all(path.parent.parent.parent == root for path in temporaries), temporaries
    assert len(temporaries) <= KILLS, temporaries

    store = open_state(root)
    try:
        entries = store.list(resources.SERVICE_ENTRY, NAMESPACE)
        rules = store.list(resources.DESTINATION_RULE, NAMESPACE)
        status = store.get(resources.ISTIO_FEDERATION, "", "cluster-b")
        public_uuid = remote.cluster.cluster_uuid
    finally:
        store.stop()

    # No duplicates: one ServiceEntry and one DestinationRule per host, under its managed name.
    for objects in (entries, rules):
        declared = Counter(
            host for obj in objects for host in (resources.spec(obj).get("hosts") or [resources.spec(obj).get("host")])
        )
        assert [host for host, count in declared.items() if count > 1] == []
    # No orphans, nothing missing, nothing stale: exactly the desired objects.
    private = PrivateMetadata(
        tuple(IngressGateway(str(g["address"]), int(g["port"])) for g in remote.cluster.gateways),
        tuple(PublicService(host, (ServicePort("http", 8080, "HTTP"),)) for host in hosts),
    )
    wanted = desired.desired_state(
        private,
        desired.FederationSettings(
            federation_name="cluster-b",
            namespace=NAMESPACE,
            trust_domain="cluster-b.local",
            remote_cluster_uuid=public_uuid,
            local_trust_domain=LOCAL_DOMAIN,
        ),
    )
    have = {
        (obj["kind"], resources.name_of(obj)): (obj["spec"], ownership.owning_federation(obj))
        for obj in [*entries, *rules]
    }
    assert have == {(obj["kind"], resources.name_of(obj)): (obj["spec"], "cluster-b") for obj in wanted.objects}
    assert status is not None
    assert status["status"]["importedServices"] == SERVICES
    ready = conditions.find(status["status"]["conditions"], conditions.READY)
    assert ready is not None
    assert ready["status"] == "True"
