"""The pure half of ``check``: what was observed in, one result per check out, no I/O."""

from __future__ import annotations

from federation import resources
from reconciler.check.exchange_checks import endpoint_check, private_check, public_check
from reconciler.check.local import LocalObjects
from reconciler.check.report import CheckSettings, FederationReport
from reconciler.check.state_checks import desired_plan, refused_check, services_check, stale_check, trust_check
from reconciler.observation import Observation


def evaluate(
    observation: Observation, settings: CheckSettings, local: LocalObjects | None = None
) -> FederationReport:
    """Every check of one federation, from what ``observe`` and ``read_local`` saw.

    ``local`` is None when nothing of this cluster was read (no managed objects, no mesh config).
    """
    local = local or LocalObjects()
    public_result, public = public_check(observation, settings)
    private_result, private = private_check(observation, settings, public)
    plan = desired_plan(observation, settings, public, private) if public and private else None
    spec = resources.spec(observation.federation)
    return FederationReport(
        name=resources.name_of(observation.federation),
        trust_domain=str(spec.get("trustDomain") or ""),
        endpoint=str(spec.get("metadataEndpoint") or ""),
        checks=(
            endpoint_check(observation),
            public_result,
            private_result,
            services_check(observation, local, plan=plan, private=private),
            refused_check(observation, settings, plan),
            stale_check(observation, settings),
            trust_check(observation, local, settings, public),
        ),
    )
