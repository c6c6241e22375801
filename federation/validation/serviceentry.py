"""Admission rules for ServiceEntry (networking.istio.io v1, v1beta1, v1alpha3, any namespace).

On top of Istio's own validation, three federation rules: the trust domains of IstioFederations
are reserved for the ServiceEntries those federations manage; a host may be declared once per
visibility scope (Istio would silently pick the oldest); and managed objects may only be written
by the reconciler.
"""

from __future__ import annotations

from federation import dns, fields, istio_serviceentry, ownership, resources
from federation.fields import Path
from federation.resources import KubeObject
from federation.validation import warnings
from federation.validation.attributes import Attributes, Context, Verdict

_FEDERATION_LABEL_PATH = Path("metadata.labels").key(ownership.FEDERATION_LABEL)


def validate(attributes: Attributes, context: Context) -> Verdict:
    verdict = Verdict()
    _validate_ownership(attributes, context, verdict)
    if attributes.operation == "DELETE" or attributes.obj is None:
        return verdict
    obj = attributes.obj
    errors, istio_warnings = istio_serviceentry.validate_service_entry(obj, ip_autoallocate=context.ip_autoallocate)
    verdict.errors.extend(errors)
    verdict.warnings.extend(istio_warnings)
    managed = ownership.is_managed(obj)
    for position, host in enumerate(istio_serviceentry.service_entry_hosts(obj)):
        path = Path("spec.hosts").index(position)
        if not managed:
            _check_reserved(host, path, context, verdict)
            if dns.is_under_domain(host, context.local_trust_domain) and host != "*":
                verdict.warnings.append(
                    warnings.clean(
                        f"{path}: {warnings.short(host)} is under the local trust domain and shadows a local Service"
                    )
                )
        _check_duplicate(host, path, attributes, context, verdict)
    return verdict


def _check_reserved(host: str, path: Path, context: Context, verdict: Verdict) -> None:
    federation = context.index.federation_for_host(host)
    if federation is None:
        return
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


def _validate_ownership(attributes: Attributes, context: Context, verdict: Verdict) -> None:
    new, old = attributes.obj, attributes.old
    touches_managed = any(obj is not None and ownership.has_ownership_label(obj) for obj in (new, old))
    if not touches_managed:
        return
    if attributes.username != context.reconciler_username:
        verdict.errors.append(_forbidden_for_user(attributes))
        return
    if new is None:
        return  # the reconciler deleting what it owns
    federation_name = resources.labels(new).get(ownership.FEDERATION_LABEL, "")
    if not ownership.is_managed(new):
        verdict.errors.append(
            fields.invalid(
                Path("metadata.labels"),
                dict(resources.labels(new)),
                f"a managed ServiceEntry needs both {ownership.MANAGED_BY_LABEL}={ownership.MANAGED_BY_VALUE} "
                f"and {ownership.FEDERATION_LABEL}=<IstioFederation name>",
            )
        )
        return
    federation = context.index.federation(federation_name)
    if federation is None:
        verdict.errors.append(
            fields.invalid(
                _FEDERATION_LABEL_PATH,
                federation_name,
                f'IstioFederation "{federation_name}" does not exist; a managed ServiceEntry must name its federation',
            )
        )
        return
    trust_domain = str(resources.spec(federation).get("trustDomain") or "")
    hosts = istio_serviceentry.service_entry_hosts(new)
    for position, host in enumerate(hosts):
        if not dns.is_under_domain(host, trust_domain) or host == "*":
            verdict.errors.append(
                fields.invalid(
                    Path("spec.hosts").index(position),
                    host,
                    f'must be under trust domain "{trust_domain}" of IstioFederation "{federation_name}"',
                )
            )
    if hosts:
        expected = ownership.managed_name(hosts[0])
        if attributes.name != expected:
            verdict.errors.append(
                fields.invalid(
                    Path("metadata.name"),
                    attributes.name,
                    f'a managed ServiceEntry must be named after its host: expected "{expected}"',
                )
            )
    if len(hosts) > 1:
        verdict.errors.append(
            fields.invalid(Path("spec.hosts"), hosts, "a managed ServiceEntry declares exactly one host")
        )


def _forbidden_for_user(attributes: Attributes) -> fields.FieldError:
    new, old = attributes.obj, attributes.old
    owner = ""
    for obj in (old, new):
        if obj is not None:
            owner = owner or resources.labels(obj).get(ownership.FEDERATION_LABEL, "")
    where = f"{attributes.namespace}/{attributes.name}"
    federation = f'IstioFederation "{owner}"' if owner else "an IstioFederation"
    if old is not None and ownership.has_ownership_label(old):
        action = {
            "DELETE": "to remove it, stop exporting the service in the remote cluster or delete the federation",
            "UPDATE": "it is regenerated on every sync; change the remote service or the IstioFederation instead",
        }.get(attributes.operation, "change the remote service or the IstioFederation instead")
        if new is not None and not ownership.has_ownership_label(new):
            action = "removing its ownership labels would orphan it; delete the IstioFederation instead"
        detail = f"ServiceEntry {where} is managed by {federation} and only the reconciler may change it; {action}"
    else:
        detail = (
            f"the labels {ownership.MANAGED_BY_LABEL} and {ownership.FEDERATION_LABEL} are reserved for "
            f"ServiceEntries the reconciler creates for {federation}; remove them from ServiceEntry {where}"
        )
    return fields.forbidden(_FEDERATION_LABEL_PATH if owner else Path("metadata.labels"), detail)


