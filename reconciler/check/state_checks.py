"""The checks of this cluster's state against the remote's offer: ``services``, ``refused``,
``stale`` and ``trust``.

Pure: they compare what the remote offers (the documents ``exchange_checks`` accepted) with what
this cluster holds (:class:`reconciler.check.local.LocalObjects` and the federation's status),
through the same functions a sync uses (``federation.desired``, ``federation.meshconfig``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from federation import conditions, desired, meshconfig, resources
from federation.documents.private import PrivateMetadata
from federation.documents.public import PublicMetadata
from federation.resources import KubeObject
from federation.timestamps import format_time, parse_time
from reconciler.check.local import LocalObjects
from reconciler.check.report import CheckResult, CheckSettings, failing, passing, plural, skipping
from reconciler.objectdiff import merged_update
from reconciler.observation import Observation
from reconciler.placement import hostname_of

# Refused hosts named on the refused line; the rest are counted.
REFUSALS_SHOWN = 10


def desired_plan(
    observation: Observation, settings: CheckSettings, public: PublicMetadata, private: PrivateMetadata
) -> desired.DesiredState:
    """The same filter and objects a sync computes (``reconciler.sync`` calls the same function)."""
    spec = resources.spec(observation.federation)
    return desired.desired_state(
        private,
        desired.FederationSettings(
            federation_name=resources.name_of(observation.federation),
            namespace=settings.namespace,
            trust_domain=str(spec.get("trustDomain") or "").lower(),
            remote_cluster_uuid=public.cluster_uuid,
            local_trust_domain=settings.local.trust_domain,
            other_trust_domains=observation.other_trust_domains,
            export_to=observation.export_to,
        ),
    )


def _status(federation: KubeObject) -> dict[str, Any]:
    status = federation.get("status")
    return status if isinstance(status, dict) else {}


def _recorded_states(federation: KubeObject) -> dict[str, str]:
    """hostname → ``State: message`` from status.services, to say why a host is not imported."""
    found: dict[str, str] = {}
    for entry in _status(federation).get("services") or []:
        if isinstance(entry, dict) and entry.get("state") not in (None, "Imported"):
            message = str(entry.get("message") or "")
            found[str(entry.get("hostname"))] = f"{entry['state']}: {message}" if message else str(entry["state"])
    return found


def services_check(
    observation: Observation,
    local: LocalObjects,
    *,
    plan: desired.DesiredState | None,
    private: PrivateMetadata | None,
) -> CheckResult:
    if plan is None or private is None:
        return skipping("services", "needs the private document")
    wanted = {hostname_of(obj): obj for obj in plan.objects if obj.get("kind") == resources.SERVICE_ENTRY.kind}
    actual = {hostname_of(obj): obj for obj in local.managed_entries}
    exported = len(private.public_services)
    imported = sorted(set(wanted) & set(actual))
    missing = sorted(set(wanted) - set(actual))
    extra = sorted(set(actual) - set(wanted))
    outdated = [host for host in imported if merged_update(actual[host], wanted[host]) is not None]
    summary = f"{len(imported)} imported of {exported} exported"
    if plan.skipped:
        summary += f" ({len(plan.skipped)} not importable, see refused)"
    if not (missing or extra or outdated):
        return passing("services", summary)
    recorded = _recorded_states(observation.federation)
    parts = [summary]
    if missing:
        named = _first([f"{host} ({recorded[host]})" if host in recorded else host for host in missing])
        parts.append(f"no managed ServiceEntry for {named}")
    if outdated:
        parts.append(f"ServiceEntry differs from the remote's offer for {_first(outdated)}")
    if extra:
        parts.append(f"managed ServiceEntry for a host the remote no longer exports: {_first(extra)}")
    fixes = []
    if missing or outdated:
        fixes.append(
            "run the reconciler (istio-federation reconciler run) and read status.services of IstioFederation "
            f"{resources.name_of(observation.federation)} and the reconciler's log for why it did not apply them"
        )
    if extra:
        fixes.append("the next successful sync deletes the ServiceEntries of hosts no longer exported")
    return failing("services", "; ".join(parts), "; ".join(fixes))


def _first(items: list[str]) -> str:
    """The first :data:`REFUSALS_SHOWN` items, then how many more."""
    text = ", ".join(items[:REFUSALS_SHOWN])
    return f"{text} and {len(items) - REFUSALS_SHOWN} more" if len(items) > REFUSALS_SHOWN else text


_REFUSAL_FIXES = {
    desired.REASON_OUTSIDE_TRUST_DOMAIN: (
        "a remote may only export hosts under spec.trustDomain ({trust_domain}): correct spec.trustDomain if it "
        "is not the remote's trust domain, else the remote must stop publishing these hosts"
    ),
    desired.REASON_LOCAL_DOMAIN: (
        "the remote publishes names under this cluster's trust domain {local}: every cluster needs its own "
        "cluster domain, and the remote must not publish ours"
    ),
    desired.REASON_OTHER_FEDERATION: (
        "these hosts belong to another IstioFederation's trust domain: nothing to do unless the trust domains "
        "overlap by mistake"
    ),
    desired.REASON_NO_PORTS: "the remote must publish the ports of these services",
    desired.REASON_NO_GATEWAYS: "the remote must publish an ingress gateway (an AUTO_PASSTHROUGH Gateway on 15443)",
    desired.REASON_DUPLICATE_PORT: "the remote must publish each port name and number once per service",
    desired.REASON_NAME_COLLISION: "these hosts map to the same object name: the remote must rename one",
}


def refused_check(observation: Observation, settings: CheckSettings, plan: desired.DesiredState | None) -> CheckResult:
    if plan is None:
        return skipping("refused", "needs the private document")
    if not plan.skipped:
        return passing("refused", "no host refused by the security filter")
    trust_domain = str(resources.spec(observation.federation).get("trustDomain") or "").lower()
    shown = plan.skipped[:REFUSALS_SHOWN]
    named = "; ".join(f"{skipped.hostname}: {skipped.message}" for skipped in shown)
    if len(plan.skipped) > len(shown):
        named += f"; and {len(plan.skipped) - len(shown)} more"
    if plan.remote_domain is not None:
        where = f"under {plan.remote_domain}" if plan.remote_domain else "in no common domain"
        return failing(
            "refused",
            f"every host the remote offers is outside spec.trustDomain {trust_domain} (its hosts are {where}): "
            f"spec.trustDomain probably does not match the remote's real trust domain; "
            f"{plural(len(plan.skipped), 'host')} not imported: {named}",
            f"if the remote's trust domain is {plan.remote_domain or 'another one'}, create an IstioFederation "
            f"with that trustDomain (spec.trustDomain is immutable) and delete "
            f"{resources.name_of(observation.federation)}; otherwise the remote must publish hosts under "
            f"{trust_domain}",
        )
    reasons = sorted({skipped.reason for skipped in plan.skipped})
    fixes = [
        _REFUSAL_FIXES.get(reason, "see the message").format(
            trust_domain=trust_domain, local=settings.local.trust_domain
        )
        for reason in reasons
    ]
    return failing("refused", f"{plural(len(plan.skipped), 'host')} not imported: {named}", "; ".join(fixes))


def _age_text(age: timedelta) -> str:
    return "<1m" if age < timedelta(minutes=1) else conditions.format_age(age)


def stale_check(observation: Observation, settings: CheckSettings) -> CheckResult:
    status = _status(observation.federation)
    threshold = conditions.format_duration(settings.stale_after)
    condition = conditions.find(status.get("conditions") or [], conditions.STALE)
    said = (
        f"; condition Stale is {condition.get('status')} ({condition.get('reason')})" if condition is not None else ""
    )
    recorded = str(status.get("lastSuccessfulSyncTime") or "")
    last = parse_time(recorded)
    if last is None:
        return failing(
            "stale",
            "no successful sync recorded (status.lastSuccessfulSyncTime is empty)" + said,
            "check that the reconciler runs; the checks above say what fails",
        )
    age = max(observation.now - last, timedelta(0))
    text = f"last successful sync {_age_text(age)} ago ({format_time(last)})"
    if age >= settings.stale_after:
        return failing(
            "stale",
            f"{text}, more than {threshold}{said}",
            "check that the reconciler runs (and, in Kubernetes, holds its Lease) and read its log; "
            "the checks above say what fails now",
        )
    return passing("stale", f"{text}, within {threshold}")


def trust_check(
    observation: Observation, local: LocalObjects, settings: CheckSettings, public: PublicMetadata | None
) -> CheckResult:
    status = _status(observation.federation)
    trust_domain = str(resources.spec(observation.federation).get("trustDomain") or "").lower()
    if public is not None:
        root_ca, source = public.root_ca, "the public document"
    else:
        cache = status.get("metadataCache")
        cached = cache.get("public") if isinstance(cache, dict) else None
        root_ca = str(cached.get("rootCA") or "") if isinstance(cached, dict) else ""
        source = "status.metadataCache.public"
    if not trust_domain:
        return skipping("trust", "spec.trustDomain is empty")
    if not root_ca.strip():
        return skipping("trust", "no remote root CA known: no valid public document and none in status.metadataCache")
    where = f"ConfigMap {settings.mesh_namespace}/{meshconfig.CONFIG_MAP_NAME}"
    config_map = local.mesh_config_map
    if config_map is None:
        return failing(
            "trust",
            f"{where} does not exist",
            "install Istio (it creates the ConfigMap), or pass --mesh-config-namespace with Istio's namespace",
        )
    data = config_map.get("data") if isinstance(config_map.get("data"), dict) else {}
    assert isinstance(data, dict)
    try:
        entries = meshconfig.mesh_entries(str(data.get(meshconfig.MESH_KEY) or ""))
    except meshconfig.MeshConfigError as error:
        return failing("trust", f"{where} key {meshconfig.MESH_KEY}: {error}", "repair Istio's mesh config")
    same = [entry for entry in entries if meshconfig.same_pem(str(entry.get("pem") or ""), root_ca)]
    for entry in same:
        domains = entry.get("trustDomains")
        if isinstance(domains, list) and trust_domain in (str(domain).lower() for domain in domains):
            return passing(
                "trust", f"the remote root CA (from {source}) is in caCertificates of {where} for {trust_domain}"
            )
    if same:
        listed = sorted({str(d) for entry in same for d in entry.get("trustDomains") or [] if isinstance(d, str)})
        return failing(
            "trust",
            f"the remote root CA (from {source}) is in caCertificates of {where} only for "
            f"{', '.join(listed) or 'no trust domain'}, not for {trust_domain}",
            f"give its caCertificates entry trustDomains: [{trust_domain}] (the reconciler manages entries with "
            "exactly one trust domain)",
        )
    known = [meshconfig.TrustedCA.from_json(item) for item in status.get("trustedRootCAs") or []]
    seen = any(entry is not None and meshconfig.same_pem(entry.pem, root_ca) for entry in known)
    note = "" if seen else "; status.trustedRootCAs does not list it either, so no sync has seen it yet"
    return failing(
        "trust",
        f"the remote root CA (from {source}) is not in caCertificates of {where} for {trust_domain}{note}",
        "the reconciler adds it after a successful sync unless it runs with --no-mesh-trust: run it and read its "
        f"log for errors writing {where}",
    )
