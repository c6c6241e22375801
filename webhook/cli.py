"""``istio-federation webhook serve`` and ``istio-federation validate``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from federation import cluster
from federation.validation.attributes import DEFAULT_RECONCILER_USERNAME
from objectstore import factory

EXIT_USAGE = 2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    webhook = subparsers.add_parser("webhook", help="the validating admission webhook")
    commands = webhook.add_subparsers(dest="webhook_command", metavar="COMMAND", required=True)
    serve = commands.add_parser("serve", help="serve AdmissionReviews over TLS under gunicorn")
    serve.add_argument("--tls-cert-file", required=True, metavar="FILE", help="serving certificate (PEM)")
    serve.add_argument("--tls-private-key-file", required=True, metavar="FILE", help="its private key (PEM)")
    serve.add_argument("--port", type=int, default=8443)
    serve.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")  # noqa: S104
    _add_admission_arguments(serve)
    serve.add_argument("--workers", type=int, default=1, help="gunicorn worker processes (each keeps a cache)")
    serve.add_argument("--threads", type=int, default=8, help="threads per worker")
    factory.add_arguments(serve)
    serve.set_defaults(handler=_serve)

    validate = subparsers.add_parser(
        "validate", help="admit objects from files offline, with the webhook's rules and messages"
    )
    _add_admission_arguments(validate)
    validate.add_argument("--state", type=Path, metavar="DIR", help="existing objects (a state directory)")
    validate.add_argument("--as", dest="username", default="kubernetes-admin", metavar="USERNAME")
    validate.add_argument("-f", "--filename", dest="files", action="append", required=True, metavar="FILE")
    validate.set_defaults(handler=_validate)


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
        action="store_true",
        help="Istio allocates VIPs for ServiceEntries (silences the TCP addresses warning)",
    )


def _usage_error(message: str) -> int:
    print(f"istio-federation: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _check_trust_domain(value: str) -> str | None:
    return cluster.domain_problem("--local-trust-domain", value)


def _serve(args: argparse.Namespace) -> int:
    from serving import gunicorn
    from webhook.app import create_app
    from webhook.settings import WebhookSettings

    problem = _check_trust_domain(args.local_trust_domain)
    if problem:
        return _usage_error(problem)
    for flag, path in (("--tls-cert-file", args.tls_cert_file), ("--tls-private-key-file", args.tls_private_key_file)):
        if not Path(path).is_file():
            return _usage_error(f"{flag} {path}: file not found (the webhook only serves over TLS)")
    if not 1 <= args.port <= 65535:
        return _usage_error(f"--port {args.port}: must be from 1 to 65535")
    source = factory.source_from_args(args)
    problem = factory.source_problem(source)
    if problem:
        return _usage_error(problem)
    settings = WebhookSettings(
        local_trust_domain=args.local_trust_domain,
        source=source,
        reconciler_username=args.reconciler_username,
        ip_autoallocate=args.ip_autoallocate,
    )
    options = gunicorn.ServerOptions(
        host=args.host,
        port=args.port,
        tls_cert_file=args.tls_cert_file,
        tls_key_file=args.tls_private_key_file,
        workers=args.workers,
        threads=args.threads,
    )
    gunicorn.run(lambda: create_app(settings), options)
    return 0


def _validate(args: argparse.Namespace) -> int:
    from webhook import offline

    problem = _check_trust_domain(args.local_trust_domain)
    if problem:
        return _usage_error(problem)
    options = offline.OfflineOptions(
        local_trust_domain=args.local_trust_domain,
        files=args.files,
        state=args.state,
        username=args.username,
        reconciler_username=args.reconciler_username,
        ip_autoallocate=args.ip_autoallocate,
    )
    return offline.run(options)
