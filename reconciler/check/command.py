"""``istio-federation check``: open the store, observe (as a sync does), evaluate, print."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from federation import dns, resources
from federation.commandline import EXIT_FAILED, EXIT_OK, OUTPUTS, UsageError, dump_document
from objectstore import factory as store_factory
from objectstore import preflight
from reconciler import options
from reconciler.check import local_identity
from reconciler.check.evaluate import evaluate
from reconciler.check.local import load_identity, read_local
from reconciler.check.report import CheckSettings, FederationReport, render_json, render_text
from reconciler.fetch import Fetcher
from reconciler.observe import observe

log = logging.getLogger(__name__)

SYNC_TIMEOUT = 60.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = subparsers.add_parser(
        "check",
        help="diagnose each IstioFederation: one line per check, with the fix (reads only)",
        description="Check the metadata endpoint, the public and private documents, imported versus exported "
        "services, refused hosts, the age of the last sync and the mesh trust of each IstioFederation (or NAME). "
        f"This cluster's UUID and trust domain are read from ConfigMap {local_identity.SETTINGS_CONFIG_MAP} "
        f"(keys {local_identity.UUID_KEY}, {local_identity.DOMAIN_KEY}) in --namespace unless given as flags. "
        "Exit 0 when every check passes, 1 otherwise, 2 on usage errors and an unusable object store. "
        "Nothing is written.",
    )
    check.add_argument("name", nargs="?", metavar="NAME", help="check only this IstioFederation")
    options.add_shared_arguments(check)
    # Both come from the settings ConfigMap by default (the values the exporter publishes).
    for action in check._actions:
        if action.dest == "cluster_uuid":
            action.required = False
            action.help = (
                "this cluster's UUID, the JWT sub claim (default: cluster-uuid of ConfigMap "
                "istio-federation-settings in --namespace)"
            )
        elif action.dest == "local_trust_domain":
            action.required = False
            action.help = (
                "this cluster's trust domain, e.g. cluster-a.local (default: cluster-domain of ConfigMap "
                "istio-federation-settings in --namespace)"
            )
    check.add_argument(
        "--stale-after", type=options.positive_duration, default=timedelta(minutes=5), metavar="DURATION",
        help="the longest time since the last successful sync that passes",
    )  # fmt: skip
    check.add_argument(
        "-o", "--output", choices=OUTPUTS, default="text",
        help="text: a ✓/✗ line per check with its fix; json or yaml: the same as a document",
    )  # fmt: skip
    check.set_defaults(handler=run_command)


def _flag_problems(args: argparse.Namespace) -> None:
    """The flags that are wrong whatever the cluster holds: refused before anything is contacted."""
    for flag, value in (("--namespace", args.namespace), ("--mesh-config-namespace", args.mesh_config_namespace)):
        problems = dns.label_problems(value)
        if problems:
            raise UsageError(f"{flag}: {value!r}: {problems[0]}")
    if args.cluster_uuid is not None and args.local_trust_domain is not None:
        options.validate_shared(args)


def render(reports: list[FederationReport], notes: list[str], output: str) -> str:
    if output == "text":
        return "".join(f"note: {note}\n" for note in notes) + render_text(reports)
    document: dict[str, Any] = json.loads(render_json(reports))
    if notes:
        document["notes"] = notes
    return dump_document(document, output)


def run_command(args: argparse.Namespace) -> int:
    _flag_problems(args)
    source = store_factory.source_from_args(args)
    options.require_state_directory(source)
    try:
        # poll_interval=0: one read of the state directory, no background thread.
        store = store_factory.open_store(
            source, options.watches(args.namespace, args.mesh_config_namespace, mesh_trust=True), poll_interval=0
        )
        store.start()
    except preflight.ApiServerProblem as error:
        raise UsageError(f"{preflight.FLAGS}: {error}") from None
    except Exception as error:  # kubeconfig and state-directory problems are configuration errors
        raise UsageError(f"{options.store_flag(source)}: {error}") from error
    try:
        if not store.wait_synced(SYNC_TIMEOUT):
            log.error("the object store did not finish its initial list within %.0fs", SYNC_TIMEOUT)
            return EXIT_FAILED
        identity = local_identity.resolve(
            flag_uuid=args.cluster_uuid,
            flag_domain=args.local_trust_domain,
            settings=local_identity.read_settings(store, args.namespace),
        )
        federations = store.list(resources.ISTIO_FEDERATION)
        if args.name is not None:
            chosen = [f for f in federations if resources.name_of(f) == args.name]
            if not chosen:
                have = ", ".join(resources.name_of(f) for f in federations) or "none"
                where = source.describe()
                raise UsageError(f"NAME: IstioFederation {args.name!r} not found in {where} (there: {have})")
            federations = chosen
        settings = CheckSettings(
            # The same LocalCluster a sync builds (refused gateway ranges and exportTo included), with
            # the identity found in the settings ConfigMap when no flag gave it.
            local=options.local_cluster(
                args, cluster_uuid=identity.cluster_uuid, trust_domain=identity.trust_domain
            ),
            namespace=args.namespace,
            mesh_namespace=args.mesh_config_namespace,
            stale_after=args.stale_after,
        )
        keypair = load_identity(store, args.namespace)
        fetcher = Fetcher()
        reports: list[FederationReport] = []
        for federation in federations:
            observation = observe(
                federation, store=store, fetcher=fetcher, keypair=keypair, local=settings.local,
                now=datetime.now(UTC), namespace=args.namespace,
            )  # fmt: skip
            report = evaluate(observation, settings, read_local(store, federation, settings))
            reports.append(local_identity.explain(report, observation, identity))
    finally:
        store.stop()
    sys.stdout.write(render(reports, identity.notes(), args.output))
    sys.stdout.flush()
    return EXIT_OK if all(report.ok for report in reports) else EXIT_FAILED
