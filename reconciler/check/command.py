"""``istio-federation check``: open the store, observe, evaluate, print."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime

from federation import resources
from objectstore import factory as store_factory
from reconciler.check.evaluate import evaluate
from reconciler.check.observe import load_identity, observe
from reconciler.check.report import CheckSettings, FederationReport, render_json, render_text
from reconciler.fetch import (
    Fetcher,
)

log = logging.getLogger(__name__)


def run_command(args: argparse.Namespace) -> int:
    from reconciler import cli

    problem = cli.check_common(args)
    if problem:
        return cli.usage_error(problem)
    source = store_factory.source_from_args(args)
    if source.state is not None and not source.state.is_dir():
        return cli.usage_error(f"--state: {source.state} is not a directory")
    where = "--state" if source.state else "--kubeconfig/--in-cluster"
    try:
        # poll_interval=0: one read of the state directory, no background thread.
        store = store_factory.open_store(
            source, cli.watches(args.namespace, args.mesh_config_namespace, mesh_trust=True), poll_interval=0
        )
        store.start()
    except Exception as error:  # kubeconfig and state-directory problems are configuration errors
        return cli.usage_error(f"{where}: {error}")
    try:
        if not store.wait_synced(60):
            log.error("the object store did not finish its initial list within 60s")
            return cli.EXIT_FAILED
        federations = store.list(resources.ISTIO_FEDERATION)
        if args.name is not None:
            chosen = [f for f in federations if resources.name_of(f) == args.name]
            if not chosen:
                have = ", ".join(resources.name_of(f) for f in federations) or "none"
                return cli.usage_error(
                    f"NAME: IstioFederation {args.name!r} not found in {source.describe()} (there: {have})"
                )
            federations = chosen
        settings = CheckSettings(
            cluster_uuid=args.cluster_uuid.strip(),
            local_trust_domain=args.local_trust_domain.lower().rstrip("."),
            namespace=args.namespace,
            mesh_namespace=args.mesh_config_namespace,
            stale_after=args.stale_after,
        )
        keypair = load_identity(store, args.namespace)
        fetcher = Fetcher()
        reports: list[FederationReport] = []
        for federation in federations:
            now = datetime.now(UTC)
            observation = observe(federation, store=store, fetcher=fetcher, settings=settings, keypair=keypair, now=now)
            reports.append(evaluate(observation, settings))
    finally:
        store.stop()
    sys.stdout.write(render_json(reports) if args.output == "json" else render_text(reports))
    sys.stdout.flush()
    return cli.EXIT_OK if all(report.ok for report in reports) else cli.EXIT_FAILED
