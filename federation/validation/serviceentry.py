"""Admission rules for ServiceEntry (networking.istio.io v1, v1beta1, v1alpha3, any namespace).

On top of Istio's own validation, three federation rules: the trust domains of IstioFederations
are reserved for the ServiceEntries those federations manage; a host may be declared once per
visibility scope (Istio would silently pick the oldest); and managed objects may only be written
by the reconciler (``federation.validation.managed``).
"""

from __future__ import annotations

from federation import dns, fields, istio_serviceentry, ownership, resources
from federation.fields import Path
from federation.resources import KubeObject
from federation.validation import managed, warnings
from federation.validation.attributes import Attributes, Context, Verdict


def validate(attributes: Attributes, context: Context) -> Verdict:
    verdict = Verdict()
    managed.validate(managed.SERVICE_ENTRY, attributes, context, verdict)
    if attributes.operation == "DELETE" or attributes.obj is None:
        return verdict
    obj = attributes.obj
    errors, istio_warnings = istio_serviceentry.validate_service_entry(obj, ip_autoallocate=context.ip_autoallocate)
    verdict.errors.extend(errors)
    verdict.warnings.extend(istio_warnings)
    is_managed = ownership.is_managed(obj)
    for position, host in enumerate(istio_serviceentry.service_entry_hosts(obj)):
        path = Path("spec.hosts").index(position)
        if not is_managed:
            if _check_reserved(host, path, context, verdict):
                # The reserved-domain error already names the federation and the way out; a second
                # error about the managed ServiceEntry holding the same host would only repeat it.
                continue
            if dns.is_under_domain(host, context.local_trust_domain) and host != "*":
                verdict.warnings.append(
                    warnings.clean(
                        f"{path}: {warnings.short(host)} is under the local trust domain and shadows a local Service"
                    )
                )
        _check_duplicate(host, path, attributes, context, verdict)
    return verdict


def _check_reserved(host: str, path: Path, context: Context, verdict: Verdict) -> bool:
    """Refuse a host in a federated trust domain; True when it was refused."""
    federation = context.index.federation_for_host(host)
    if federation is None:
        return False
    name = resources.name_of(federation)
    trust_domain = resources.spec(federation).get("trustDomain")
    verdict.errors.append(
        fields.forbidden(
            path,
            f'host "{host}" is in trust domain "{trust_domain}", reserved by IstioFederation "{name}": only '
            f"ServiceEntries that federation manages may declare it; to reach the remote service, export it "
            f"in the remote cluster (label federation.istio.deckhouse.io/public-service) instead",
        )
    )
    return True


def _check_duplicate(host: str, path: Path, attributes: Attributes, context: Context, verdict: Verdict) -> None:
    obj = attributes.obj or {}
    for other in context.index.service_entries_for_host(host):
        other_namespace, other_name = resources.namespace_of(other), resources.name_of(other)
        if (other_namespace, other_name) == (attributes.namespace, attributes.name):
            continue
        if not istio_serviceentry.visibilities_overlap(_with_namespace(obj, attributes.namespace), other):
            continue
        owner = ownership.owning_federation(other)
        owned = f', managed by IstioFederation "{owner}"' if owner else ""
        way_out = (
            "remove the host here"
            if owner
            else "remove the host from one of them, or make their exportTo scopes disjoint"
        )
        verdict.errors.append(
            fields.duplicate(
                path,
                host,
                f"host is already declared by ServiceEntry {other_namespace}/{other_name}{owned} and both are "
                f"visible to the same namespaces (Istio would silently use the older one); {way_out}",
            )
        )


def _with_namespace(obj: KubeObject, namespace: str) -> KubeObject:
    """Admission objects may omit metadata.namespace on CREATE; visibility needs it."""
    if resources.namespace_of(obj) or not namespace:
        return obj
    metadata = dict(resources.meta(obj), namespace=namespace)
    return {**obj, "metadata": metadata}
