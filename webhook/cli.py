"""``istio-federation webhook serve`` and ``istio-federation validate``."""

from __future__ import annotations

import argparse
from pathlib import Path

from federation import cluster
from federation.commandline import OUTPUTS, UsageError, non_negative_seconds
from federation.validation.attributes import DEFAULT_RECONCILER_USERNAME
from objectstore import factory


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    webhook = subparsers.add_parser("webhook", help="the validating admission webhook")
    commands = webhook.add_subparsers(dest="webhook_command", metavar="COMMAND", required=True)
    serve = commands.add_parser("serve", help="serve AdmissionReviews over TLS under gunicorn")
    serve.add_argument("--tls-cert-file", required=True, metavar="FILE", help="serving certificate (PEM)")
    serve.add_argument("--tls-private-key-file", required=True, metavar="FILE", help="its private key (PEM)")
    serve.add_argument("--port", type=int, default=8443, help="port to listen on (default 8443)")
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")  # noqa: S104
    _add_admission_arguments(serve)
    serve.add_argument(
        "--max-cache-staleness", type=non_negative_seconds, default=5.0, metavar="SECONDS",
        help="refuse reviews (503) and report not ready once a watch has failed for longer than this",
    )  # fmt: skip
    _add_serving_arguments(serve)
    factory.add_arguments(serve)
    serve.set_defaults(handler=_serve)

    validate = subparsers.add_parser(
        "validate",
        help="admit objects from files offline, with the webhook's rules and messages",
        description="Admit every object in the given files as the admission webhook would, without a cluster: "
        "for CI and GitOps previews. Each object is a CREATE (an UPDATE when --state holds it), and objects "
        "accepted earlier in the run count as existing. Files, directories (-R: with subdirectories), - for "
        "stdin, multi-document YAML, JSON and kind: List are read as kubectl apply -f reads them. Each object "
        "is accepted, denied (with the webhook's causes, one per line) or skipped (a kind the webhook never "
        "checks). Exit status: 0 every object accepted; 1 an object denied, or skipped under --strict (the "
        "default); 2 usage errors and input that cannot be read.",
    )
    _add_admission_arguments(validate)
    validate.add_argument(
        "-f", "--filename", dest="files", action="append", required=True, metavar="FILE",
        help="a manifest file, a directory of *.yaml, *.yml and *.json files, or - for stdin (repeatable)",
    )  # fmt: skip
    validate.add_argument(
        "-R", "--recursive", action="store_true", help="read directories given with -f and all their subdirectories"
    )
    validate.add_argument(
        "--state", type=Path, metavar="DIR",
        help="the cluster's existing objects (a state directory): an object found there is an UPDATE",
    )  # fmt: skip
    validate.add_argument(
        "--as", dest="username", default="kubernetes-admin", metavar="USERNAME",
        help="the user the requests come from (userInfo.username): only --reconciler-username may write "
        "managed objects",
    )  # fmt: skip
    validate.add_argument(
        "--strict", action=argparse.BooleanOptionalAction, default=True,
        help="fail (exit 1) when an object is of a kind the webhook never checks, such as a ConfigMap or a "
        "misspelt IstioFederatoin; --no-strict reports those as skipped and exits 0 for them (default: on)",
    )  # fmt: skip
    validate.add_argument(
        "-o", "--output", choices=OUTPUTS, default="text",
        help="text: one line per object (kubectl's wording); json or yaml: every object with its source FILE:LINE, "
        "result, causes and warnings, and a summary",
    )  # fmt: skip
    validate.set_defaults(handler=_validate)


def _add_serving_arguments(parser: argparse.ArgumentParser) -> None:
    from serving import limits, sizing

    workers = sizing.default_workers()
    parser.add_argument(
        "--workers",
        type=int,
        default=workers,
        help="worker processes, each with its own event loop and its own watch cache (default: one per "
        f"usable CPU, at most 4; here {workers})",
    )
    limits.add_arguments(parser, tls=True)


def _add_admission_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--local-trust-domain", required=True, metavar="D", help="this cluster's trust domain")
    parser.add_argument(
        "--reconciler-username",
        default=DEFAULT_RECONCILER_USERNAME,
        metavar="U",
        help="the only user allowed to write managed ServiceEntries",
    )
    parser.add_argument(
        "--ip-autoallocate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Istio allocates VIPs for ServiceEntries of every resolution but NONE, as Istio 1.31 does by default "
        "(PILOT_ENABLE_IP_AUTOALLOCATE), so TCP ports without addresses draw no warning; turn it off with "
        "--no-ip-autoallocate when istiod runs with it disabled (default: on)",
    )


def _check_trust_domain(value: str) -> str | None:
    return cluster.domain_problem("--local-trust-domain", value)


def _serve(args: argparse.Namespace) -> int:
    from serving import gunicorn, limits, tls
    from webhook.app import cache_synced, create_app
    from webhook.settings import WebhookSettings

    problem = _check_trust_domain(args.local_trust_domain)
    if problem:
        raise UsageError(problem)
    for flag, path in (("--tls-cert-file", args.tls_cert_file), ("--tls-private-key-file", args.tls_private_key_file)):
        if not Path(path).is_file():
            raise UsageError(f"{flag} {path}: file not found (the webhook only serves over TLS)")
    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: must be from 1 to 65535")
    if not 1 <= args.workers <= 64:
        raise UsageError(f"--workers {args.workers}: must be from 1 to 64")
    server_limits = limits.from_args(args)
    problem = server_limits.problem()
    if problem:
        raise UsageError(problem)
    problem = tls.pair_problem(tls.CertificatePair(args.tls_cert_file, args.tls_private_key_file))
    if problem:
        raise UsageError(problem)
    source = factory.source_from_args(args)
    problem = factory.source_problem(source)
    if problem:
        raise UsageError(problem)
    settings = WebhookSettings(
        local_trust_domain=args.local_trust_domain,
        source=source,
        reconciler_username=args.reconciler_username,
        ip_autoallocate=args.ip_autoallocate,
        max_cache_staleness=args.max_cache_staleness,
    )
    options = gunicorn.ServerOptions(
        host=args.host,
        port=args.port,
        tls_cert_file=args.tls_cert_file,
        tls_key_file=args.tls_private_key_file,
        workers=args.workers,
        limits=server_limits,
        ready=cache_synced,
    )
    gunicorn.run(lambda: create_app(settings), options)
    return 0


def _validate(args: argparse.Namespace) -> int:
    from webhook import offline

    problem = _check_trust_domain(args.local_trust_domain)
    if problem:
        raise UsageError(problem)
    options = offline.OfflineOptions(
        local_trust_domain=args.local_trust_domain,
        files=args.files,
        state=args.state,
        username=args.username,
        reconciler_username=args.reconciler_username,
        ip_autoallocate=args.ip_autoallocate,
        recursive=args.recursive,
        strict=args.strict,
        output=args.output,
    )
    return offline.run(options)
