"""Admission rules for ServiceEntry (networking.istio.io v1, v1beta1, v1alpha3, any namespace).

On top of Istio's own validation, three federation rules: the trust domains of IstioFederations
are reserved for the ServiceEntries those federations manage; a host may be declared once per
visibility scope (Istio would silently pick the oldest), except that a federation's managed
ServiceEntry never blocks another of the same federation for the same host (the reconciler creates
the new object before it deletes the old one when a name changes, as it did when managed names
became collision-free); and managed objects may only be written by the reconciler
(``federation.validation.managed``).

Only the hosts the CRD allows (its first 256; Istio's rules report the rest) are looked up, each
at a cost independent of its length (``federation.index``), and every echoed value is cut.
"""

from __future__ import annotations

from federation import dns, fields, ownership, resources, warnings
from federation.fields import FieldError, Path, ValidationResult, render_value
from federation.istio import visibility
from federation.istio.hosts import hosts_of
from federation.istio.serviceentry import MAX_HOSTS, validate_service_entry
from federation.resources import KubeObject
from federation.validation import managed
from federation.validation.attributes import Attributes, Context


def validate(attributes: Attributes, context: Context) -> ValidationResult:
    ownership_result = managed.check(managed.SERVICE_ENTRY, attributes, context)
    if attributes.operation == "DELETE" or attributes.obj is None:
        return ownership_result
    obj = attributes.obj
    istio_result = validate_service_entry(obj, ip_autoallocate=context.ip_autoallocate)
    return ownership_result + istio_result + _federation_rules(obj, attributes, context)


def _federation_rules(obj: KubeObject, attributes: Attributes, context: Context) -> ValidationResult:
    """Reserved trust domains, shadowed local hosts and duplicate hosts, host by host."""
    errors: list[FieldError] = []
    found: list[str] = []
    is_managed = ownership.is_managed(obj)
    for position, host in enumerate(hosts_of(obj, kind=resources.SERVICE_ENTRY.kind)[:MAX_HOSTS]):
        path = Path("spec.hosts").index(position)
        if not is_managed:
            reserved = _reserved(host, path, context)
            if reserved is not None:
                # The reserved-domain error already names the federation and the way out; a second
                # error about the managed ServiceEntry holding the same host would only repeat it.
                errors.append(reserved)
                continue
            if dns.is_under_domain(host, context.local_trust_domain) and host != "*":
                found.append(
                    warnings.clean(
                        f"{path}: {warnings.short(host)} is under the local trust domain and shadows a local Service"
                    )
                )
        errors.extend(_duplicates(host, path, attributes, context))
    return ValidationResult.of(errors, found)


def _reserved(host: str, path: Path, context: Context) -> FieldError | None:
    """The error for a host in a federated trust domain, or None when no federation reserves it."""
    federation = context.index.federation_for_host(host)
    if federation is None:
        return None
    name = resources.name_of(federation)
    trust_domain = resources.spec(federation).get("trustDomain")
    return fields.forbidden(
        path,
        f"host {render_value(host)} is in trust domain {render_value(trust_domain)}, reserved by IstioFederation "
        f"{render_value(name)}: only ServiceEntries that federation manages may declare it; to reach the remote "
        f"service, export it in the remote cluster (label federation.istio.deckhouse.io/public-service) instead",
    )


def _duplicates(host: str, path: Path, attributes: Attributes, context: Context) -> list[FieldError]:
    obj = attributes.obj or {}
    errors: list[FieldError] = []
    new_owner = ownership.owning_federation(obj)
    for other in context.index.service_entries_for_host(host):
        other_namespace, other_name = resources.namespace_of(other), resources.name_of(other)
        if (other_namespace, other_name) == (attributes.namespace, attributes.name):
            continue
        owner = ownership.owning_federation(other)
        if new_owner is not None and owner == new_owner:
            continue  # the reconciler replacing its own object under a new name; it deletes the old one next
        if not visibility.visibilities_overlap(_with_namespace(obj, attributes.namespace), other):
            continue
        owned = f", managed by IstioFederation {render_value(owner)}" if owner else ""
        declarer = f"ServiceEntry {fields.object_place(other_namespace, other_name)}{owned}"
        way_out = (
            "remove the host here"
            if owner
            else "remove the host from one of them, or make their exportTo scopes disjoint"
        )
        errors.append(
            fields.duplicate(
                path,
                host,
                f"host is already declared by {declarer} and both are "
                f"visible to the same namespaces (Istio would silently use the older one); {way_out}",
            )
        )
    return errors


def _with_namespace(obj: KubeObject, namespace: str) -> KubeObject:
    """Admission objects may omit metadata.namespace on CREATE; visibility needs it."""
    if resources.namespace_of(obj) or not namespace:
        return obj
    metadata = dict(resources.meta(obj), namespace=namespace)
    return {**obj, "metadata": metadata}
