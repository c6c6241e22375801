"""``istio-federation check [NAME]``: one line per check an SRE can act on, never a write.

For each IstioFederation (or the one named) seven checks run in order:

1. ``endpoint``: the metadata endpoint resolves, accepts a connection and TLS verifies;
2. ``public``: the public document is HTTP 200, JSON and valid;
3. ``private``: the private document is readable with this cluster's JWT, and valid;
4. ``services``: managed ServiceEntries of the federation versus the remote's publicServices;
5. ``refused``: the hosts the security filter (``federation.desired``) does not import;
6. ``stale``: the age of ``status.lastSuccessfulSyncTime`` versus ``--stale-after``;
7. ``trust``: the remote root CA is in Istio's mesh ``caCertificates`` for ``spec.trustDomain``.

A check that needs the result of a failed one is reported as skipped, with the reason.

``check`` contacts a remote exactly as a sync does: :func:`reconciler.observe.observe` (the same
GETs, TLS trust and token claims, ``--issuer`` included) records an :class:`Observation`; besides
it, ``check`` only reads this cluster (:mod:`reconciler.check.local`).  :func:`evaluate` turns both
into results with no I/O (:mod:`~reconciler.check.exchange_checks` for the remote,
:mod:`~reconciler.check.state_checks` for this cluster against it), so every diagnosis is testable
without a server.

Exit codes follow ``federation.commandline``: 0 every check passed, 1 a check failed or was skipped,
2 a usage error (including an unknown NAME).
"""

from __future__ import annotations

from reconciler.check.command import run_command
from reconciler.check.evaluate import evaluate
from reconciler.check.local import LocalObjects
from reconciler.check.report import CHECKS, CheckResult, CheckSettings, FederationReport, render_json, render_text
from reconciler.observation import Fetched, LocalCluster, Observation, Problem, configuration_problem

__all__ = [
    "CHECKS",
    "CheckResult",
    "CheckSettings",
    "FederationReport",
    "Fetched",
    "LocalCluster",
    "LocalObjects",
    "Observation",
    "Problem",
    "configuration_problem",
    "evaluate",
    "render_json",
    "render_text",
    "run_command",
]
