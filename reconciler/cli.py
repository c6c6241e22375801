"""``istio-federation reconciler run`` (and ``istio-federation check``).

Exit codes: 0 ok (with ``--once``: every federation synced), 1 a federation failed (``--once``),
2 usage or configuration error, printed as one line that names the flag.
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
import threading
from datetime import timedelta
from pathlib import Path
from types import FrameType

from federation import cluster, dns, resources, tokens
from federation.store import ObjectStore, StoreError, Watch
from objectstore import factory as store_factory
from reconciler import identity
from reconciler.events import EventRecorder
from reconciler.fetch import Fetcher
from reconciler.leader import LeaderElector
from reconciler.loop import LoopSettings, Reconciler
from reconciler.meshtrust import MeshTrust
from reconciler.metrics import MetricsServer, ReconcilerMetrics
from reconciler.plan import FORMATS, render
from reconciler.retry import Retry
from reconciler.sync import Syncer, SyncSettings

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
DEFAULT_NAMESPACE = "istio-federation"
DEFAULT_MESH_NAMESPACE = "istio-system"
DEFAULT_USERNAME = "system:serviceaccount:istio-federation:istio-federation-reconciler"

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")


def duration(text: str) -> timedelta:
    """``90s``, ``5m``, ``24h``, ``1h30m`` (Go/kubectl style); a bare number means seconds."""
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        match = _DURATION.match(value)
        if not value or not match or not any(match.groups()):
            raise argparse.ArgumentTypeError(f"{text!r} is not a duration (use e.g. 30s, 5m, 24h, 1h30m)") from None
        hours, minutes, secs = match.groups()
        seconds = int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(secs or 0)
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return timedelta(seconds=seconds)


def positive_duration(text: str) -> timedelta:
    value = duration(text)
    if value.total_seconds() <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be longer than zero")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} must be from 0 (off) to 65535")
    return value


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
    add_common_arguments(run)
    run.add_argument("--interval", type=positive_duration, default=timedelta(seconds=60), help="sync period (60s)")
    run.add_argument("--once", action="store_true", help="sync every federation once and exit (1 if any failed)")
    run.add_argument("--dry-run", action="store_true", help="fetch for real, write nothing, print the plan")
    run.add_argument("-o", "--output", choices=FORMATS, default="text", help="plan format for --dry-run")
    run.add_argument("--no-mesh-trust", action="store_true", help="do not edit Istio's mesh config caCertificates")
    run.add_argument("--stale-after", type=positive_duration, default=timedelta(minutes=5), help="default 5m")
    run.add_argument(
        "--expire-after",
        type=positive_duration,
        default=None,
        help="remove a federation's objects once its last success is this old (off by default: an outage of "
        "the remote's metadata endpoint then never takes down traffic to it)",
    )
    run.add_argument(
        "--ca-overlap", type=duration, default=timedelta(hours=24), help="keep a rotated-out remote root CA (24h)"
    )
    run.add_argument("--concurrency", type=_positive_int, default=4, help="federations synced in parallel (4)")
    run.add_argument("--issuer", default=tokens.ISSUER, help=f"JWT iss claim (default {tokens.ISSUER})")
    run.add_argument("--metrics-port", type=_port, default=9090, help="/metrics and /healthz port (0 = off)")
    run.add_argument("--metrics-host", default="0.0.0.0", help="metrics listen address")  # noqa: S104
    run.add_argument(
        "--leader-election",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="elect one active replica through a Lease (default: on in Kubernetes mode, off in state mode)",
    )
    run.add_argument("--admission-webhook", metavar="URL", help="state mode: send writes through this webhook")
    run.add_argument("--admission-ca", metavar="FILE", help="CA certificate (PEM) of --admission-webhook")
    run.add_argument(
        "--as", dest="username", default=DEFAULT_USERNAME, help="username presented to --admission-webhook"
    )
    run.set_defaults(handler=run_command)

    check = subparsers.add_parser(
        "check",
        help="diagnose each IstioFederation: one line per check, with the fix (reads only)",
        description="Check the metadata endpoint, the public and private documents, imported versus exported "
        "services, refused hosts, the age of the last sync and the mesh trust of each IstioFederation (or NAME). "
        "Exit 0 when every check passes, 1 otherwise, 2 on usage errors. Nothing is written.",
    )
    check.add_argument("name", nargs="?", metavar="NAME", help="check only this IstioFederation")
    add_common_arguments(check)
    check.add_argument(
        "--stale-after", type=positive_duration, default=timedelta(minutes=5), help="maximum age of the last sync (5m)"
    )
    check.add_argument("-o", "--output", choices=("text", "json"), default="text", help="output format")
    check.set_defaults(handler=_check_command)


def _check_command(args: argparse.Namespace) -> int:
    from reconciler.check import run_command as check

    return check(args)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster-uuid", required=True, help="this cluster's UUID (the JWT sub claim)")
    parser.add_argument("--local-trust-domain", required=True, help="this cluster's trust domain, e.g. cluster-a.local")
    store_factory.add_arguments(parser)
    parser.add_argument(
        "--namespace",
        default=DEFAULT_NAMESPACE,
        help=f"namespace of ServiceEntries, the keypair Secret, Events and the Lease (default {DEFAULT_NAMESPACE})",
    )
    parser.add_argument(
        "--mesh-config-namespace",
        default=DEFAULT_MESH_NAMESPACE,
        help=f"namespace of Istio's ConfigMap istio (default {DEFAULT_MESH_NAMESPACE})",
    )


def usage_error(message: str) -> int:
    print(f"istio-federation: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def check_common(args: argparse.Namespace) -> str:
    """The first configuration problem of the shared flags, as a one-line message, or ''."""
    problem = cluster.uuid_problem("--cluster-uuid", str(args.cluster_uuid)) or cluster.domain_problem(
        "--local-trust-domain", str(args.local_trust_domain).rstrip(".")
    )
    if problem:
        return problem
    for flag, value in (("--namespace", args.namespace), ("--mesh-config-namespace", args.mesh_config_namespace)):
        problems = dns.label_problems(value)
        if problems:
            return f"{flag}: {value!r}: {problems[0]}"
    return ""


def watches(namespace: str, mesh_namespace: str, *, mesh_trust: bool) -> list[Watch]:
    from federation import ownership

    selector = ownership.selector()
    result = [
        Watch(resources.ISTIO_FEDERATION),
        Watch(resources.SERVICE_ENTRY, None, selector),
        Watch(resources.DESTINATION_RULE, None, selector),
    ]
    if mesh_trust:
        result.append(Watch(resources.CONFIG_MAP, mesh_namespace))
    return result


def run_command(args: argparse.Namespace) -> int:
    problem = check_common(args)
    if problem:
        return usage_error(problem)
    source = store_factory.source_from_args(args)
    if (args.admission_webhook is None) != (args.admission_ca is None):
        return usage_error("--admission-webhook and --admission-ca must be given together")
    admission = None
    if args.admission_webhook is not None:
        if source.state is None:
            return usage_error("--admission-webhook: only with --state (the apiserver calls the webhook itself)")
        try:
            from objectstore.admission import WebhookAdmission

            admission = WebhookAdmission(args.admission_webhook, Path(args.admission_ca).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            return usage_error(f"--admission-ca/--admission-webhook: {error}")
    if args.output != "text" and not args.dry_run:
        return usage_error("--output: only with --dry-run")
    if source.state is not None and not source.state.is_dir():
        return usage_error(f"--state: {source.state} is not a directory")
    kubernetes_mode = source.state is None
    leader_election = args.leader_election if args.leader_election is not None else kubernetes_mode
    if args.once or args.dry_run:
        leader_election = False  # one pass, nothing to coordinate with
    mesh_trust_enabled = not args.no_mesh_trust
    try:
        store: ObjectStore = store_factory.open_store(
            source,
            watches(args.namespace, args.mesh_config_namespace, mesh_trust=mesh_trust_enabled),
            admission=admission,
            username=args.username,
        )
    except Exception as error:  # kubeconfig and state-directory problems are configuration errors
        return usage_error(f"{'--state' if source.state else '--kubeconfig/--in-cluster'}: {error}")
    stop = threading.Event()
    _install_signal_handlers(stop)
    try:
        store.start()
    except Exception as error:
        return usage_error(f"{'--state' if source.state else '--kubeconfig/--in-cluster'}: {error}")
    metrics_server: MetricsServer | None = None
    try:
        if not store.wait_synced(60):
            log.error("the object store did not finish its initial list within 60s")
            return EXIT_FAILED
        try:
            keypair = identity.load_or_create(store, args.namespace, persist=not args.dry_run)
        except identity.IdentityError as error:
            return usage_error(f"--namespace: {error}")
        except StoreError as error:
            log.error("cannot read or create the keypair Secret: %s", error)
            return EXIT_FAILED
        metrics = ReconcilerMetrics()
        retry = Retry(stop=stop)
        settings = SyncSettings(
            cluster_uuid=args.cluster_uuid.strip(),
            local_trust_domain=args.local_trust_domain.lower().rstrip("."),
            namespace=args.namespace,
            stale_after=args.stale_after,
            expire_after=args.expire_after,
            ca_overlap=args.ca_overlap,
            issuer=args.issuer,
        )
        syncer = Syncer(
            store,
            settings,
            keypair,
            fetcher=Fetcher(),
            retry=retry,
            metrics=metrics,
            events_recorder=EventRecorder(store, args.namespace, dry_run=args.dry_run),
        )
        mesh = (
            MeshTrust(
                store,
                retry,
                namespace=args.mesh_config_namespace,
                local_trust_domain=settings.local_trust_domain,
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
        )
        if args.once or args.dry_run:
            report = reconciler.sync_once(dry_run=args.dry_run)
            if args.dry_run:
                sys.stdout.write(render(report, args.output))
                sys.stdout.flush()
            return EXIT_OK if report.ok or stop.is_set() else EXIT_FAILED
        if args.metrics_port:
            try:
                metrics_server = MetricsServer(
                    metrics, host=args.metrics_host, port=args.metrics_port, healthy=reconciler.healthy
                )
            except OSError as error:
                return usage_error(f"--metrics-port: cannot listen on {args.metrics_port}: {error}")
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


def _install_signal_handlers(stop: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: finishing the current write, then exiting", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
