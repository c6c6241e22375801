"""``istio-federation reconciler run`` (and the registration of ``istio-federation check``).

Exit codes (``federation.commandline``): 0 ok (with ``--once``: every federation synced), 1 a
federation failed (``--once``), 2 usage or configuration error, printed as one line that names the
flag.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import FrameType

from cryptography import x509

from federation.commandline import EXIT_FAILED, EXIT_OK, UsageError
from federation.store import ObjectStore, StoreError
from objectstore import factory as store_factory
from reconciler import identity, options
from reconciler.apply import DEFAULT_WRITE_CONCURRENCY
from reconciler.check.command import register as register_check
from reconciler.dryrun import DryRunStore
from reconciler.events import EventRecorder
from reconciler.fetch import Fetcher
from reconciler.heap import Heap
from reconciler.leader import LeaderElector
from reconciler.loop import LoopSettings, Reconciler
from reconciler.meshtrust import MeshTrust
from reconciler.metrics import MetricsServer, ReconcilerMetrics
from reconciler.options import duration, port, positive_duration, positive_int
from reconciler.plan import FORMATS, render
from reconciler.retry import Retry
from reconciler.sync import Syncer, SyncSettings

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    reconciler = subparsers.add_parser(
        "reconciler", help="sync remote metadata into ServiceEntries, DestinationRules, mesh trust and status"
    )
    commands = reconciler.add_subparsers(dest="reconciler_command", metavar="COMMAND", required=True)
    run = commands.add_parser(
        "run",
        help="sync every IstioFederation periodically (or once)",
        description="Fetch each remote's public and private metadata and make ServiceEntries, DestinationRules, "
        "mesh trust and IstioFederation status match it.",
    )
    options.add_shared_arguments(run)
    run.add_argument(
        "--interval", type=positive_duration, default=timedelta(seconds=60), metavar="DURATION",
        help="sync period (30s, 5m, 1h30m)",
    )  # fmt: skip
    run.add_argument("--once", action="store_true", help="sync every federation once and exit (1 if any failed)")
    run.add_argument("--dry-run", action="store_true", help="fetch for real, write nothing, print the plan")
    run.add_argument("-o", "--output", choices=FORMATS, default="text", help="plan format for --dry-run")
    run.add_argument("--no-mesh-trust", action="store_true", help="do not edit Istio's mesh config caCertificates")
    run.add_argument(
        "--stale-after", type=positive_duration, default=timedelta(minutes=5), metavar="DURATION",
        help="report a federation stale once its last successful sync is older than this",
    )  # fmt: skip
    run.add_argument(
        "--expire-after",
        type=positive_duration,
        default=None,
        metavar="DURATION",
        help="remove a federation's objects once its last success is this old (off by default: an outage of "
        "the remote's metadata endpoint then never takes down traffic to it)",
    )
    run.add_argument(
        "--ca-overlap", type=duration, default=timedelta(hours=24), metavar="DURATION",
        help="how long a rotated-out remote root CA stays trusted",
    )
    run.add_argument("--concurrency", type=positive_int, default=4, metavar="N", help="federations synced in parallel")
    run.add_argument(
        "--write-concurrency", type=positive_int, default=DEFAULT_WRITE_CONCURRENCY, metavar="N",
        help="object writes in flight at once, across all federations (each host's writes stay in order; "
        "the default was chosen by measurement against a real apiserver)",
    )  # fmt: skip
    run.add_argument(
        "--metrics-port", type=port, default=9090, metavar="PORT", help="/metrics and /healthz port (0 = off)"
    )
    run.add_argument("--metrics-host", default="0.0.0.0", metavar="HOST", help="metrics listen address")  # noqa: S104
    run.add_argument(
        "--leader-election",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="elect one active replica through a Lease (default: on in Kubernetes mode, off in state mode)",
    )
    run.add_argument("--admission-webhook", metavar="URL", help="state mode: send writes through this webhook")
    run.add_argument("--admission-ca", metavar="FILE", help="CA certificate (PEM) of --admission-webhook")
    run.add_argument(
        "--as", dest="username", default=options.DEFAULT_USERNAME, help="username presented to --admission-webhook"
    )
    run.set_defaults(handler=run_command)

    register_check(subparsers)


def admission_ca_pem(path: str) -> str:
    """The PEM text of --admission-ca, or a UsageError saying what is wrong with the file; checked
    here so that a wrong path reads as one line naming it, not as an SSL library message."""
    fix = "give the CA certificate (PEM) that signed the webhook's serving certificate"
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise UsageError(f"--admission-ca {path}: cannot be read ({error.strerror or error}); {fix}") from error
    try:
        text = data.decode("ascii")
        x509.load_pem_x509_certificates(data)
    except ValueError as error:
        raise UsageError(f"--admission-ca {path}: holds no PEM certificate; {fix}") from error
    return text


def run_command(args: argparse.Namespace) -> int:
    options.validate_shared(args)
    source = store_factory.source_from_args(args)
    if (args.admission_webhook is None) != (args.admission_ca is None):
        raise UsageError("--admission-webhook and --admission-ca must be given together")
    admission = None
    if args.admission_webhook is not None:
        if source.state is None:
            raise UsageError("--admission-webhook: only with --state (the apiserver calls the webhook itself)")
        from objectstore.admission import WebhookAdmission

        ca_pem = admission_ca_pem(args.admission_ca)
        try:
            admission = WebhookAdmission(args.admission_webhook, ca_pem)
        except ValueError as error:
            raise UsageError(str(error)) from error
    if args.output != "text" and not args.dry_run:
        raise UsageError("--output: only with --dry-run")
    options.require_state_directory(source)
    kubernetes_mode = source.state is None
    leader_election = args.leader_election if args.leader_election is not None else kubernetes_mode
    if args.once or args.dry_run:
        leader_election = False  # one pass, nothing to coordinate with
    mesh_trust_enabled = not args.no_mesh_trust
    try:
        store: ObjectStore = store_factory.open_store(
            source,
            options.watches(args.namespace, args.mesh_config_namespace, mesh_trust=mesh_trust_enabled),
            admission=admission,
            username=args.username,
        )
    except Exception as error:  # kubeconfig and state-directory problems are configuration errors
        raise UsageError(f"{options.store_flag(source)}: {error}") from error
    if args.dry_run:
        store = DryRunStore(store)
    stop = threading.Event()
    _install_signal_handlers(stop)
    try:
        store.start()
    except Exception as error:
        raise UsageError(f"{options.store_flag(source)}: {error}") from error
    metrics_server: MetricsServer | None = None
    try:
        if not store.wait_synced(60):
            log.error("the object store did not finish its initial list within 60s")
            return EXIT_FAILED
        try:
            keypair = identity.load_or_create(store, args.namespace, persist=not args.dry_run)
        except identity.IdentityError as error:
            raise UsageError(f"--namespace: {error}") from error
        except StoreError as error:
            log.error("cannot read or create the keypair Secret: %s", error)
            return EXIT_FAILED
        metrics = ReconcilerMetrics()
        retry = Retry(stop=stop)
        settings = SyncSettings(
            local=options.local_cluster(args),
            namespace=args.namespace,
            stale_after=args.stale_after,
            expire_after=args.expire_after,
            ca_overlap=args.ca_overlap,
        )
        syncer = Syncer(
            store,
            settings,
            keypair,
            fetcher=Fetcher(),
            retry=retry,
            metrics=metrics,
            events_recorder=EventRecorder(store, args.namespace),
            write_concurrency=args.write_concurrency,
        )
        mesh = (
            MeshTrust(
                store,
                retry,
                namespace=args.mesh_config_namespace,
                local_trust_domain=settings.local.trust_domain,
                create_if_absent=not kubernetes_mode,
            )
            if mesh_trust_enabled
            else None
        )
        leader = LeaderElector(store, args.namespace) if leader_election else None
        reconciler = Reconciler(
            store,
            syncer,
            mesh_trust=mesh,
            settings=LoopSettings(interval=args.interval.total_seconds(), concurrency=args.concurrency),
            leader=leader,
            stop=stop,
            metrics=metrics,
            retry=retry,
            heap=Heap(),
        )
        if isinstance(store, DryRunStore):
            with _log_lines_marked_dry_run():
                report = reconciler.sync_once()
                log.info("%d writes not sent, %d of them Events", len(store.intended), len(store.events))
            sys.stdout.write(render(report, args.output))
            sys.stdout.flush()
            return EXIT_OK if report.ok or stop.is_set() else EXIT_FAILED
        if args.once:
            report = reconciler.sync_once()
            return EXIT_OK if report.ok or stop.is_set() else EXIT_FAILED
        if args.metrics_port:
            try:
                metrics_server = MetricsServer(
                    metrics, host=args.metrics_host, port=args.metrics_port, healthy=reconciler.healthy
                )
            except OSError as error:
                raise UsageError(f"--metrics-port: cannot listen on {args.metrics_port}: {error}") from error
            metrics_server.start()
        log.info(
            "reconciler running: interval=%ss concurrency=%d store=%s leader_election=%s",
            args.interval.total_seconds(),
            args.concurrency,
            source.describe(),
            leader_election,
        )
        reconciler.run()
        log.info("reconciler stopped")
        return EXIT_OK
    finally:
        if metrics_server is not None:
            metrics_server.stop()
        store.stop()


class _DryRunLogLine(logging.Filter):
    """Marks every log line of a dry run, so "created ServiceEntry …" is never read as done."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "dry_run_marked", False):  # one record passes every handler
            record.msg, record.args = f"dry run: {record.getMessage()}", None
            record.dry_run_marked = True
        return True


@contextlib.contextmanager
def _log_lines_marked_dry_run() -> Iterator[None]:
    handlers = list(logging.getLogger().handlers)
    marker = _DryRunLogLine()
    for handler in handlers:
        handler.addFilter(marker)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(marker)


def _install_signal_handlers(stop: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: finishing the current write, then exiting", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
