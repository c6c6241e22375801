"""``istio-federation exporter serve``: publish this cluster's federation metadata."""

from __future__ import annotations

import argparse
import atexit
import logging
import uuid as uuid_module
from collections.abc import Callable
from pathlib import Path

from flask import Flask

from exporter import published_gateways
from exporter.app import create_app
from exporter.settings import DEFAULT_NAMESPACE, Settings, watches
from exporter.snapshot import SnapshotKeeper, validate_gateway_selector
from federation import cluster, tokens
from federation.commandline import EXIT_OK, EXIT_USAGE, UsageError, positive_seconds
from objectstore import factory as store_factory
from serving import limits as serving_limits
from serving import tls as serving_tls

log = logging.getLogger(__name__)

DEFAULT_PORT = 8080


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    exporter = subparsers.add_parser(
        "exporter", help="publish this cluster's federation metadata (Deckhouse metadata-exporter compatible)"
    )
    commands = exporter.add_subparsers(dest="exporter_command", metavar="COMMAND", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve public.json, spiffe-bundle-endpoint and federation.json",
        description="Serve /metadata/public/public.json, /metadata/public/spiffe-bundle-endpoint and "
        "/metadata/private/federation.json (bearer token of a trusted cluster), plus /healthz, /readyz, /metrics.",
    )
    add_serve_arguments(serve)
    serve.set_defaults(handler=serve_command)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster-uuid", required=True, help="this cluster's UUID (clusterUUID, the tokens' aud)")
    parser.add_argument("--cluster-domain", required=True, help="this cluster's DNS domain, e.g. cluster-a.local")
    store_factory.add_arguments(parser)
    parser.add_argument(
        "--namespace",
        default=DEFAULT_NAMESPACE,
        help=f"where the keypair Secret and the istio-ca-root-cert ConfigMap live (default {DEFAULT_NAMESPACE})",
    )
    parser.add_argument("--host", default="0.0.0.0", help="listen address (default 0.0.0.0)")  # noqa: S104
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"listen port (default {DEFAULT_PORT})")
    parser.add_argument("--tls-cert-file", metavar="FILE", help="serve HTTPS with this certificate chain (PEM)")
    parser.add_argument("--tls-private-key-file", metavar="FILE", help="the certificate's private key (PEM)")
    parser.add_argument(
        "--advertise",
        action="extend",
        nargs="+",
        default=[],
        metavar="ADDRESS:PORT",
        help="publish these ingress gateway addresses instead of discovering them",
    )
    parser.add_argument(
        "--gateway-selector",
        default=published_gateways.DEFAULT_GATEWAY_SELECTOR,
        help=(
            "label selector of the ingress gateway Services and pods "
            f"(default {published_gateways.DEFAULT_GATEWAY_SELECTOR})"
        ),
    )
    parser.add_argument("--gateway-namespace", help="namespace of the ingress gateway (default: --namespace)")
    parser.add_argument(
        "--inlet",
        choices=published_gateways.INLETS,
        default=published_gateways.INLET_LOAD_BALANCER,
        help="how peers reach the gateway: its LoadBalancer address, or node addresses and the nodePort",
    )
    parser.add_argument(
        "--keypair-dir", type=Path, metavar="DIR", help="read priv.pem and pub.pem here instead of the Secret"
    )
    parser.add_argument(
        "--token-leeway",
        type=int,
        default=tokens.DEFAULT_LEEWAY_SECONDS,
        metavar="SECONDS",
        help=f"clock skew forgiven on a token's nbf (default {tokens.DEFAULT_LEEWAY_SECONDS})",
    )
    serving_limits.add_arguments(parser, tls=False)
    parser.add_argument(
        "--poll-interval",
        type=positive_seconds,
        default=1.0,
        metavar="SECONDS",
        help="how often a state directory is checked for changes (default 1)",
    )
    parser.add_argument(
        "--resync-interval",
        type=positive_seconds,
        default=30.0,
        metavar="SECONDS",
        help="rebuild the documents at least this often, e.g. to pick up rotated --keypair-dir files (default 30)",
    )


def settings_from_args(args: argparse.Namespace) -> Settings:
    cluster_uuid = str(args.cluster_uuid).strip()
    problem = cluster.uuid_problem("--cluster-uuid", cluster_uuid)
    if problem:
        raise UsageError(problem)
    try:
        uuid_module.UUID(cluster_uuid)
    except ValueError:
        log.warning(
            "--cluster-uuid %r is not a UUID; peers accept any string, but check it is the intended one", cluster_uuid
        )
    cluster_domain = str(args.cluster_domain).strip().rstrip(".")
    problem = cluster.domain_problem("--cluster-domain", cluster_domain)
    if problem:
        raise UsageError(problem)
    problem = validate_gateway_selector(args.gateway_selector)
    if problem:
        raise UsageError(f"--gateway-selector {args.gateway_selector!r}: {problem}")
    try:
        advertise = tuple(published_gateways.parse_advertise(item) for item in args.advertise)
    except published_gateways.AdvertiseError as error:
        raise UsageError(str(error)) from error
    if not 0 <= args.token_leeway <= 300:
        raise UsageError("--token-leeway must be from 0 to 300 seconds")
    if args.keypair_dir is not None and not args.keypair_dir.is_dir():
        raise UsageError(
            f"--keypair-dir {args.keypair_dir}: not a directory (create it with `certs keypair --out DIR`)"
        )
    return Settings(
        cluster_uuid=cluster_uuid,
        cluster_domain=cluster_domain,
        namespace=args.namespace,
        gateway_namespace=args.gateway_namespace or args.namespace,
        gateway_selector=args.gateway_selector,
        inlet=args.inlet,
        advertise=advertise,
        keypair_dir=args.keypair_dir,
        token_leeway=args.token_leeway,
    )


def app_factory(args: argparse.Namespace, settings: Settings) -> Callable[[], Flask]:
    """The factory gunicorn calls in its worker, after fork, where the watch threads must live."""

    def build() -> Flask:
        store = store_factory.open_store(
            store_factory.source_from_args(args), watches(settings), poll_interval=args.poll_interval
        )
        keeper = SnapshotKeeper(store, settings, resync_interval=args.resync_interval)
        keeper.start()
        atexit.register(keeper.stop)
        log.info(
            "exporter for cluster %s (domain %s) reading %s",
            settings.cluster_uuid,
            settings.cluster_domain,
            store_factory.source_from_args(args).describe(),
        )
        return create_app(keeper, cluster_uuid=settings.cluster_uuid, token_leeway=settings.token_leeway)

    return build


def serve_command(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
        if bool(args.tls_cert_file) != bool(args.tls_private_key_file):
            raise UsageError("--tls-cert-file and --tls-private-key-file must be given together")
        for flag, value in (
            ("--tls-cert-file", args.tls_cert_file),
            ("--tls-private-key-file", args.tls_private_key_file),
        ):
            if value and not Path(value).is_file():
                raise UsageError(f"{flag} {value}: no such file")
        problem = store_factory.source_problem(store_factory.source_from_args(args))
        if problem:
            raise UsageError(problem)
        if not 1 <= args.port <= 65535:
            raise UsageError("--port must be from 1 to 65535")
        limits = serving_limits.from_args(args)
        problem = limits.problem()
        if problem:
            raise UsageError(problem)
        if args.tls_cert_file and args.tls_private_key_file:
            pair = serving_tls.CertificatePair(args.tls_cert_file, args.tls_private_key_file)
            problem = serving_tls.pair_problem(pair)
            if problem:
                raise UsageError(problem)
    except UsageError as error:
        # Logged rather than left to the launcher's one-line print: in a pod the log is where an
        # operator looks, and the exporter's messages have always been read there.
        log.error("%s", error)
        return EXIT_USAGE
    from serving import gunicorn

    gunicorn.run(
        app_factory(args, settings),
        gunicorn.ServerOptions(
            host=args.host,
            port=args.port,
            tls_cert_file=args.tls_cert_file,
            tls_key_file=args.tls_private_key_file,
            workers=1,  # one cache and one snapshot per process: more workers would each list+watch
            limits=limits,
        ),
    )
    return EXIT_OK
