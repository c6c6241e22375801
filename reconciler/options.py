"""The command-line options ``reconciler run`` and ``check`` share, and their one reading.

Both commands speak to remotes as this cluster, so both take the same identity flags
(``--cluster-uuid``, ``--local-trust-domain``, ``--issuer``), the same object store and namespaces,
and turn them into settings here, in one place: a flag added for one is honoured by the other.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
from datetime import timedelta

from federation import cluster, desired, dns, meshconfig, ownership, resources, tokens
from federation.commandline import UsageError
from federation.documents.ingress_gateways import Network
from federation.store import Watch
from objectstore import factory as store_factory
from objectstore.factory import StoreSource
from reconciler.observation import LocalCluster

DEFAULT_NAMESPACE = "istio-federation"
DEFAULT_MESH_NAMESPACE = "istio-system"
DEFAULT_USERNAME = "system:serviceaccount:istio-federation:istio-federation-reconciler"

_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?")


def duration(text: str) -> timedelta:
    """``90s``, ``5m``, ``24h``, ``1h30m`` (Go/kubectl style); a bare number means seconds."""
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        match = _DURATION.fullmatch(value)
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


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} must be from 0 (off) to 65535")
    return value


def cidr(text: str) -> Network:
    """``10.96.0.0/12`` or ``fd00::/108``; host bits must be zero, as kube-apiserver's flags require."""
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a CIDR (such as 10.96.0.0/12): {error}") from None


def add_shared_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster-uuid", required=True, help="this cluster's UUID (the JWT sub claim)")
    parser.add_argument("--local-trust-domain", required=True, help="this cluster's trust domain, e.g. cluster-a.local")
    parser.add_argument("--issuer", default=tokens.ISSUER, help=f"JWT iss claim (default {tokens.ISSUER})")
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
    parser.add_argument(
        "--refuse-gateway-cidr",
        dest="refuse_gateway_cidr",
        action="append",
        type=cidr,
        default=[],
        metavar="CIDR",
        help="refuse remote ingress-gateway addresses in this range, besides loopback, link-local, unspecified and "
        "multicast ones (repeatable; give this cluster's service and pod CIDRs)",
    )
    parser.add_argument(
        "--export-to",
        dest="export_to",
        action="append",
        default=None,
        metavar="NAMESPACE",
        help="exportTo of managed ServiceEntries and DestinationRules: a namespace, '.', '*' or '~' (repeatable; "
        f"default '*'; an IstioFederation's annotation {desired.EXPORT_TO_ANNOTATION} overrides it)",
    )


def validate_shared(args: argparse.Namespace) -> None:
    """Refuse the first unusable shared flag, naming it (UsageError)."""
    problem = cluster.uuid_problem("--cluster-uuid", str(args.cluster_uuid)) or cluster.domain_problem(
        "--local-trust-domain", str(args.local_trust_domain).rstrip(".")
    )
    if problem:
        raise UsageError(problem)
    for flag, value in (("--namespace", args.namespace), ("--mesh-config-namespace", args.mesh_config_namespace)):
        problems = dns.label_problems(value)
        if problems:
            raise UsageError(f"{flag}: {value!r}: {problems[0]}")
    export_problem = desired.export_to_problem(export_to(args), str(args.namespace))
    if export_problem:
        raise UsageError(f"--export-to: {export_problem}")


def export_to(args: argparse.Namespace) -> tuple[str, ...]:
    given = getattr(args, "export_to", None)
    return tuple(str(entry).strip() for entry in given) if given else desired.DEFAULT_EXPORT_TO


def local_cluster(
    args: argparse.Namespace, *, cluster_uuid: str | None = None, trust_domain: str | None = None
) -> LocalCluster:
    """This cluster as remotes see it: the token's sub and iss, its own trust domain, the gateway
    ranges it refuses and the exportTo of what it imports.  ``cluster_uuid`` and ``trust_domain``
    replace the flags when the caller found them elsewhere (``check`` reads a ConfigMap)."""
    return LocalCluster(
        cluster_uuid=(cluster_uuid if cluster_uuid is not None else str(args.cluster_uuid)).strip(),
        trust_domain=(trust_domain if trust_domain is not None else str(args.local_trust_domain)).lower().rstrip("."),
        issuer=str(args.issuer),
        refused_networks=tuple(getattr(args, "refuse_gateway_cidr", None) or ()),
        export_to=export_to(args),
    )


def require_state_directory(source: StoreSource) -> None:
    if source.state is not None and not source.state.is_dir():
        raise UsageError(f"--state: {source.state} is not a directory")


def store_flag(source: StoreSource) -> str:
    """The flags to name when the store cannot be opened."""
    return "--state" if source.state else "--kubeconfig/--in-cluster"


def watches(namespace: str, mesh_namespace: str, *, mesh_trust: bool) -> list[Watch]:
    """What the reconciler (and ``check``) keep cached: federations, managed objects, mesh config."""
    selector = ownership.selector()
    # Managed objects live in the reconciler's namespace only, and its RBAC covers that one; the
    # ConfigMap watch names `istio`, which a Role with resourceNames authorizes only by fieldSelector.
    result = [
        Watch(resources.ISTIO_FEDERATION),
        Watch(resources.SERVICE_ENTRY, namespace, selector),
        Watch(resources.DESTINATION_RULE, namespace, selector),
    ]
    if mesh_trust:
        name = meshconfig.CONFIG_MAP_NAME
        result.append(Watch(resources.CONFIG_MAP, mesh_namespace, field_selector=f"metadata.name={name}"))
    return result
