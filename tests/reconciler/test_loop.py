"""The reconciler as a long-running process: watch triggers, bounded concurrency, SIGTERM, the CLI,
and leader election.  Every loop here is bounded and every thread and process is stopped."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
import trustme

from federation import resources
from federation.keys import Keypair
from federation.resources import KubeObject
from federation.store import Rejected
from objectstore.statedir import StateDirStore
from reconciler import identity
from reconciler.leader import LeaderElector
from tests.deckhouse_fixture import DeckhouseExporter
from tests.reconciler.harness import (
    LOCAL_DOMAIN,
    LOCAL_UUID,
    NAMESPACE,
    SEED_HOST,
    SEED_NAME,
    Clock,
    Harness,
    ca_pem,
    deckhouse_remote,
    federation,
    mesh_config_map,
    write_state,
)
from tests.support import REPO_ROOT, ServerProcess, cli_command, free_port, wait_until


def _running(harness: Harness) -> threading.Thread:
    thread = threading.Thread(target=harness.reconciler.run, name="reconciler-under-test", daemon=True)
    thread.start()
    return thread


def test_a_created_federation_is_synced_at_once(
    tmp_path: Path, remote: DeckhouseExporter, server_ca: trustme.CA, keypair: Keypair
) -> None:
    write_state(tmp_path, mesh_config_map())
    store = StateDirStore(tmp_path, [], poll_interval=0.05)
    store.start()
    harness = Harness(store, keypair, interval=3600)
    thread = _running(harness)
    try:
        assert wait_until(harness.reconciler.healthy.is_set)
        write_state(tmp_path, federation("cluster-b", remote.endpoint, ca=ca_pem(server_ca)))
        # The interval is an hour: only the watch event can have caused this sync.
        assert wait_until(lambda: store.get(resources.SERVICE_ENTRY, NAMESPACE, SEED_NAME) is not None, timeout=15)
        syncs = len(remote.accepted_claims)
        # A status-only change (our own write) does not trigger another sync.
        assert wait_until(lambda: harness.reconciler.rounds >= 1)
        harness.stop.wait(0.5)
        assert len(remote.accepted_claims) == syncs
    finally:
        harness.stop.set()
        thread.join(timeout=15)
        store.stop()
    assert not thread.is_alive()


def test_a_slow_remote_does_not_hold_up_another(
    tmp_path: Path, remote: DeckhouseExporter, server_ca: trustme.CA, keypair: Keypair
) -> None:
    with deckhouse_remote(server_ca, keypair) as slow:
        slow.cluster.cluster_domain = "cluster-s.local"
        slow.cluster.services = [{"hostname": "s.x.svc.cluster-s.local", "ports": [{"name": "http", "port": 80}]}]
        slow.mode = "slow"
        write_state(
            tmp_path,
            mesh_config_map(),
            federation("cluster-b", remote.endpoint, ca=ca_pem(server_ca)),
            federation("aaa-slow", slow.endpoint, ca=ca_pem(server_ca), trust_domain="cluster-s.local"),
        )
        store = StateDirStore(tmp_path, [], poll_interval=0.05)
        store.start()
        harness = Harness(store, keypair, interval=3600, concurrency=2)
        thread = _running(harness)
        try:
            assert wait_until(lambda: store.get(resources.SERVICE_ENTRY, NAMESPACE, SEED_NAME) is not None, timeout=15)
            assert not slow.release.is_set()  # the slow remote is still holding its answer
        finally:
            slow.release.set()
            harness.stop.set()
            thread.join(timeout=15)
            store.stop()
        assert not thread.is_alive()


@pytest.mark.parametrize(
    ("interval", "deleted_events"),
    [
        # With no federation left, no sync comes to reconcile the mesh trust: the loop does it when a
        # managed ServiceEntry is deleted (as the real apiserver's watch reports a delete, after the fact).
        pytest.param(3600.0, True, id="on-the-deleted-event"),
        # Level-triggered: a missed watch event delays the root's removal by one interval, no more.
        pytest.param(1.0, False, id="every-interval-without-the-event"),
    ],
)
def test_a_root_kept_only_by_a_lingering_service_entry_is_dropped_when_that_entry_goes(
    *,
    tmp_path: Path,
    remote: DeckhouseExporter,
    server_ca: trustme.CA,
    keypair: Keypair,
    monkeypatch: pytest.MonkeyPatch,
    interval: float,
    deleted_events: bool,
) -> None:
    write_state(tmp_path, mesh_config_map(), federation("cluster-b", remote.endpoint, ca=ca_pem(server_ca)))
    store = StateDirStore(tmp_path, [], poll_interval=0.05)
    store.start()
    harness = Harness(store, keypair, interval=interval)
    real_delete, on_event = store.delete, harness.reconciler.on_event

    def refuse_service_entries(resource: resources.Resource, namespace: str, name: str) -> None:
        if resource.kind == "ServiceEntry":
            raise Rejected("admission webhook refused the delete", code=403)
        real_delete(resource, namespace, name)

    def without_service_entries(event: str, obj: KubeObject) -> None:
        if obj.get("kind") != "ServiceEntry":
            on_event(event, obj)

    if not deleted_events:
        monkeypatch.setattr(harness.reconciler, "on_event", without_service_entries)
    thread = _running(harness)
    try:
        assert wait_until(lambda: bool(harness.federation_pems()), timeout=15)
        monkeypatch.setattr(store, "delete", refuse_service_entries)
        (tmp_path / "_cluster" / "istiofederation" / "cluster-b.yaml").unlink()
        assert wait_until(lambda: harness.destination_rule() is None, timeout=15)
        # The ServiceEntry could not be deleted and still routes to cluster-b: its root stays.
        harness.stop.wait(0.5)
        assert harness.service_entry() is not None
        assert harness.federation_pems()

        real_delete(resources.SERVICE_ENTRY, NAMESPACE, SEED_NAME)  # an admin deletes it later
        assert wait_until(lambda: harness.federation_pems() == [], timeout=15)
    finally:
        harness.stop.set()
        thread.join(timeout=15)
        store.stop()
    assert not thread.is_alive()


def test_leader_election_one_acts_and_a_standby_takes_over(tmp_path: Path) -> None:
    store = StateDirStore(tmp_path, [], poll_interval=0)
    store.start()
    clock = Clock()
    try:
        first = LeaderElector(store, NAMESPACE, identity="first", clock=clock)
        second = LeaderElector(store, NAMESPACE, identity="second", clock=clock)
        assert first.try_acquire_or_renew()
        assert not second.try_acquire_or_renew()
        clock.advance(timedelta(seconds=10))
        assert first.try_acquire_or_renew()  # renewal
        clock.advance(timedelta(seconds=14))
        assert not second.try_acquire_or_renew()  # renewed 14 s ago: still valid
        clock.advance(timedelta(seconds=2))
        assert second.try_acquire_or_renew()  # first stopped renewing: expired, taken over
        assert not first.try_acquire_or_renew()
        lease = store.read(resources.LEASE, NAMESPACE, "istio-federation-reconciler")
        assert lease is not None
        assert lease["spec"]["holderIdentity"] == "second"
        assert lease["spec"]["leaseTransitions"] == 1
        second.release()
        assert first.try_acquire_or_renew()  # released: no need to wait for expiry
    finally:
        store.stop()


# -- the command line ------------------------------------------------------------------------


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(*args), capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT, check=False
    )


def _prepare(state: Path, remote: DeckhouseExporter, server_ca: trustme.CA, keypair: Keypair) -> None:
    write_state(
        state,
        federation("cluster-b", remote.endpoint, ca=ca_pem(server_ca)),
        mesh_config_map(),
        identity.secret_for(keypair, NAMESPACE),
    )


BASE = ("reconciler", "run", "--cluster-uuid", LOCAL_UUID, "--local-trust-domain", LOCAL_DOMAIN)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        pytest.param(
            ("--interval", "soon"),
            "reconciler run: error: argument --interval: 'soon' is not a duration (use e.g. 30s, 5m, 24h, 1h30m)",
            id="interval",
        ),
        pytest.param(
            ("--local-trust-domain", "Cluster_A"),
            "istio-federation: error: --local-trust-domain 'Cluster_A': a lowercase RFC 1123 subdomain must consist "
            "of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character "
            '(character "C" at position 0 is not allowed)',
            id="trust-domain",
        ),
        pytest.param(
            ("--admission-webhook", "https://x/validate"),
            "istio-federation: error: --admission-webhook and --admission-ca must be given together",
            id="webhook-without-ca",
        ),
        pytest.param(
            ("--output", "json"), "istio-federation: error: --output: only with --dry-run", id="output-without-dry-run"
        ),
    ],
)
def test_usage_errors_exit_2_naming_the_flag(tmp_path: Path, extra: tuple[str, ...], message: str) -> None:
    result = _cli(*BASE, "--state", str(tmp_path), *extra)
    assert result.returncode == 2
    assert message in result.stderr


def test_once_exits_0_when_synced_and_1_when_a_federation_failed(
    tmp_path: Path, remote: DeckhouseExporter, server_ca: trustme.CA, keypair: Keypair
) -> None:
    _prepare(tmp_path, remote, server_ca, keypair)
    ok = _cli(*BASE, "--state", str(tmp_path), "--once")
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / NAMESPACE / "serviceentry" / f"{SEED_NAME}.yaml").is_file()
    remote.mode = "500"
    failed = _cli(*BASE, "--state", str(tmp_path), "--once")
    assert failed.returncode == 1
    assert "synced federation=cluster-b ok=False stage=public" in failed.stderr


def test_dry_run_prints_a_json_plan_and_writes_nothing(
    tmp_path: Path, remote: DeckhouseExporter, server_ca: trustme.CA, keypair: Keypair
) -> None:
    _prepare(tmp_path, remote, server_ca, keypair)
    before = sorted(str(p.relative_to(tmp_path)) + p.read_text() for p in tmp_path.rglob("*.yaml"))

    result = _cli(*BASE, "--state", str(tmp_path), "--dry-run", "-o", "json")

    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["dryRun"] is True
    assert [(a["verb"], a["kind"], a["name"]) for a in plan["federations"][0]["actions"]] == [
        ("create", "ServiceEntry", SEED_NAME),
        ("create", "DestinationRule", SEED_NAME),
    ]
    assert plan["meshConfig"]["verb"] == "update"
    after = sorted(str(p.relative_to(tmp_path)) + p.read_text() for p in tmp_path.rglob("*.yaml"))
    assert after == before


def test_every_log_line_of_a_dry_run_says_so(
    tmp_path: Path, remote: DeckhouseExporter, server_ca: trustme.CA, keypair: Keypair
) -> None:
    _prepare(tmp_path, remote, server_ca, keypair)

    result = _cli(*BASE, "--state", str(tmp_path), "--dry-run")

    assert result.returncode == 0, result.stderr
    lines = [line.split(": ", 1)[1] for line in result.stderr.splitlines() if " reconciler." in line]
    assert f"dry run: created ServiceEntry {NAMESPACE}/{SEED_NAME} federation=cluster-b host={SEED_HOST}" in lines
    assert "dry run: 6 writes not sent, 2 of them Events" in lines
    assert all(line.startswith("dry run: ") for line in lines), lines


def test_sigterm_finishes_and_exits_0(
    tmp_path: Path, remote: DeckhouseExporter, server_ca: trustme.CA, keypair: Keypair
) -> None:
    _prepare(tmp_path, remote, server_ca, keypair)
    port = free_port()
    args = [*BASE, "--state", str(tmp_path), "--interval", "1h"]
    args += ["--metrics-port", str(port), "--metrics-host", "127.0.0.1"]
    with ServerProcess(args, log_path=tmp_path.parent / f"{tmp_path.name}-reconciler.log") as process:
        process.wait_http(f"http://127.0.0.1:{port}/healthz")
        assert wait_until((tmp_path / NAMESPACE / "serviceentry" / f"{SEED_NAME}.yaml").is_file, timeout=20)

        def metrics() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                return str(response.read().decode())

        # The objects are written before the sync records its metrics (and flushes its batch).
        assert wait_until(lambda: 'istio_federation_imported_services{federation="cluster-b"} 1.0' in metrics())
        assert process.process is not None
        process.process.send_signal(signal.SIGTERM)
        code = process.process.wait(timeout=20)
        log = process.log()
    assert code == 0, log
    assert "received SIGTERM: finishing the current write, then exiting" in log
    assert "reconciler stopped" in log
