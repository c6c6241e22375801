"""Least-privilege RBAC that works: each component's requests against the shipped Roles and ClusterRoles.

The requests are derived, not listed by hand: the watches each component's store is built with
(for every configuration its flags allow), plus every request the components made against the
two real apiservers of this session, from their audit logs (the seed story, GC, a remote change,
the apiserver restart). Every such request must be granted by ``kubectl kustomize manifests``,
the real servers must have refused none, and every grant must be used by one of them, or be
listed in ``NOT_REACHED`` with the code path that needs it.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from exporter import settings as exporter_settings
from exporter.published_gateways import INLETS
from federation.documents.ingress_gateways import IngressGateway
from reconciler.options import DEFAULT_MESH_NAMESPACE
from reconciler.options import watches as reconciler_watches
from tests.realcluster.conftest import Clusters, needs_earlier_steps
from tests.realcluster.rbac import Grant, Request, allowed, audit_requests, grants, watch_requests
from tests.realcluster.world import COMPONENTS, MANIFESTS, NAMESPACE, kustomize, service_account, username
from webhook.app import WATCHES as WEBHOOK_WATCHES


@pytest.fixture(scope="module")
def shipped() -> list[dict[str, Any]]:
    return kustomize(MANIFESTS)


def _flag(args: list[str], flag: str, default: str) -> str:
    return args[args.index(flag) + 1] if flag in args else default


def shipped_args(objects: list[dict[str, Any]], component: str) -> list[str]:
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"
                     and o["metadata"]["name"] == service_account(component)]  # fmt: skip
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return [str(arg) for arg in container.get("args", [])]


def derived_requests(objects: list[dict[str, Any]]) -> dict[str, set[Request]]:
    """The list and watch requests of every watch each component builds, in every configuration."""
    found: dict[str, set[Request]] = {component: set() for component in COMPONENTS}
    for watch in WEBHOOK_WATCHES:
        found["webhook"] |= watch_requests(watch)
    args = shipped_args(objects, "reconciler")
    namespace = _flag(args, "--namespace", NAMESPACE)
    mesh_namespace = _flag(args, "--mesh-config-namespace", DEFAULT_MESH_NAMESPACE)
    for mesh_trust in (True, False):
        for watch in reconciler_watches(namespace, mesh_namespace, mesh_trust=mesh_trust):
            found["reconciler"] |= watch_requests(watch)
    args = shipped_args(objects, "exporter")
    gateway = IngressGateway("192.0.2.1", 15443)
    for advertise, inlet, keypair_dir in itertools.product(((), (gateway,)), INLETS, (None, Path("/keys"))):
        settings = exporter_settings.Settings(
            cluster_uuid="00000000-0000-0000-0000-000000000000", cluster_domain="cluster-a.local",
            namespace=_flag(args, "--namespace", NAMESPACE),
            gateway_namespace=_flag(args, "--gateway-namespace", exporter_settings.DEFAULT_NAMESPACE),
            gateway_selector=_flag(args, "--gateway-selector", "app=ingressgateway"),
            inlet=inlet, advertise=advertise, keypair_dir=keypair_dir,
        )  # fmt: skip
        for watch in exporter_settings.watches(settings):
            found["exporter"] |= watch_requests(watch)
    return found


def test_every_watch_a_component_builds_is_granted(shipped: list[dict[str, Any]]) -> None:
    for component, requests in derived_requests(shipped).items():
        granted = grants(shipped, service_account(component), NAMESPACE)
        refused = sorted(str(request) for request in requests if not allowed(request, granted))
        assert refused == [], f"{component}: the shipped RBAC does not grant {refused}"


# Grants the code needs on paths a healthy run does not reach, each with the path.
NOT_REACHED = {
    "reconciler": {
        # MeshTrust reads the ConfigMap through its watch; it GETs it only when the cache has none
        # (Istio has not created it yet) or after a 409 Conflict.
        "get core configmaps in istio-system named istio",
        # The Applier reads a managed object fresh only after its update got 409 Conflict, which needs
        # its cache to lag behind its own last write of that object: whether a run gets there is timing.
        "get networking.istio.io serviceentries in istio-federation",
        "get networking.istio.io destinationrules in istio-federation",
        # The Applier updates a DestinationRule when it differs from the desired one: after an
        # upgrade changes the desired rule, or a drift only someone bypassing the webhook can cause.
        # The story's rule (host, ISTIO_MUTUAL) never changes.
        "update networking.istio.io destinationrules in istio-federation",
        # `istio-federation check` in the reconciler's pod (docs/install.md, troubleshooting) reads
        # the settings ConfigMap; the reconciler itself never does (test_60 runs check, after this).
        "get core configmaps in istio-federation named istio-federation-settings",
    },
}
# The scenarios of this session whose requests the check below relies on (registered by the tests).
SCENARIOS = {"update", "garbage-collection", "apiserver-restart"}


def test_the_real_run_needed_every_grant_and_nothing_more(
    federated: Clusters, shipped: list[dict[str, Any]], scenarios: set[str]
) -> None:
    missing = SCENARIOS - scenarios
    if missing:
        needs_earlier_steps(f"needs the whole tier in one session (did not run: {', '.join(sorted(missing))})")
    derived = derived_requests(shipped)
    events = [event for installation in federated for event in installation.cluster.audit_events()]
    # A starting apiserver refuses until its authorizer has loaded RBAC (before /readyz): not a
    # missing grant, and the component retries. Any other refusal is one.
    starting = [
        event for installation in federated for event in installation.cluster.audit_events()
        if installation.cluster.while_unready(event)
    ]  # fmt: skip
    unused: dict[str, list[str]] = {}
    for component in COMPONENTS:
        mine = [event for event in events if event.get("user", {}).get("username") == username(component)]
        forbidden = sorted({
            event["requestURI"] for event in mine if event["responseStatus"]["code"] == 403 and event not in starting
        })  # fmt: skip
        assert forbidden == [], f"{component}: the real apiserver refused {forbidden}"
        observed = audit_requests(events, username(component))
        granted = grants(shipped, service_account(component), NAMESPACE)
        refused = sorted(str(request) for request in observed if not allowed(request, granted))
        assert refused == [], f"{component}: made requests the shipped RBAC does not grant: {refused}"
        needed = observed | derived[component]
        unused[component] = sorted(
            str(grant) for grant in granted
            if not _used(grant, needed) and str(grant) not in NOT_REACHED.get(component, set())
        )  # fmt: skip
    assert unused == {component: [] for component in COMPONENTS}, "grants no request used:\n" + "\n".join(
        f"  {component}: {grant}" for component, grants_ in unused.items() for grant in grants_
    )


def _used(grant: Grant, needed: set[Request]) -> bool:
    return any(grant.covers(request) for request in needed)
