"""Managed objects (ServiceEntries and DestinationRules the reconciler writes) belong to the reconciler.

Only the reconciler's identity may create, change or delete an object carrying the ownership labels,
or add or remove those labels; everyone else is told which IstioFederation regenerates it and what
to change instead.  What the reconciler writes must name an existing federation, stay under its
trust domain and carry the name derived from its host, which the other rules rely on.
"""

from __future__ import annotations

from dataclasses import dataclass

from federation import dns, fields, ownership, resources
from federation.fields import FieldError, Path, ValidationResult, render_value
from federation.istio.hosts import hosts_of
from federation.istio.serviceentry import MAX_HOSTS
from federation.validation.attributes import Attributes, Context

_FEDERATION_LABEL_PATH = Path("metadata.labels").key(ownership.FEDERATION_LABEL)


@dataclass(frozen=True)
class ManagedKind:
    kind: str  # "ServiceEntry"
    plural: str  # "ServiceEntries", for messages
    hosts_path: Path  # where the host(s) live, for error paths
    single_host: bool  # DestinationRule.spec.host is one string; ServiceEntry.spec.hosts a list

    def host_path(self, position: int) -> Path:
        return self.hosts_path if self.single_host else self.hosts_path.index(position)


SERVICE_ENTRY = ManagedKind("ServiceEntry", "ServiceEntries", Path("spec.hosts"), single_host=False)
DESTINATION_RULE = ManagedKind("DestinationRule", "DestinationRules", Path("spec.host"), single_host=True)


def check(kind: ManagedKind, attributes: Attributes, context: Context) -> ValidationResult:
    """The ownership rules for one write of a ServiceEntry or DestinationRule of ``kind``.

    Only the reconciler may write an object that carries an ownership label, and what it writes must
    be a well-formed managed object; a write that touches no ownership label passes.
    """
    return ValidationResult.of(_ownership_errors(kind, attributes, context))


def _ownership_errors(kind: ManagedKind, attributes: Attributes, context: Context) -> list[FieldError]:
    new, old = attributes.obj, attributes.old
    if not any(obj is not None and ownership.has_ownership_label(obj) for obj in (new, old)):
        return []
    if attributes.username != context.reconciler_username:
        return [_forbidden_for_user(kind, attributes)]
    if new is None:
        return []  # the reconciler deleting what it owns
    if not ownership.is_managed(new):
        return [
            fields.invalid(
                Path("metadata.labels"),
                dict(resources.labels(new)),
                f"a managed {kind.kind} needs both {ownership.MANAGED_BY_LABEL}={ownership.MANAGED_BY_VALUE} "
                f"and {ownership.FEDERATION_LABEL}=<IstioFederation name>",
            )
        ]
    federation_name = resources.labels(new).get(ownership.FEDERATION_LABEL, "")
    federation = context.index.federation(federation_name)
    if federation is None:
        return [
            fields.invalid(
                _FEDERATION_LABEL_PATH,
                federation_name,
                f"IstioFederation {render_value(federation_name)} does not exist; a managed {kind.kind} must name "
                "its federation",
            )
        ]
    errors: list[FieldError] = []
    trust_domain = str(resources.spec(federation).get("trustDomain") or "")
    hosts = hosts_of(new, kind=kind.kind)
    for position, host in enumerate(hosts[:MAX_HOSTS]):  # the CRD's limit; Istio's rules report the rest
        if not dns.is_under_domain(host, trust_domain) or host == "*":
            errors.append(
                fields.invalid(
                    kind.host_path(position),
                    host,
                    f"must be under trust domain {render_value(trust_domain)} of IstioFederation "
                    f"{render_value(federation_name)}",
                )
            )
    if hosts:
        expected = ownership.managed_name(hosts[0])
        if attributes.name != expected:
            errors.append(
                fields.invalid(
                    Path("metadata.name"),
                    attributes.name,
                    f'a managed {kind.kind} must be named after its host: expected "{expected}"',
                )
            )
    if len(hosts) > 1:
        errors.append(fields.invalid(kind.hosts_path, hosts, f"a managed {kind.kind} declares exactly one host"))
    return errors


def _forbidden_for_user(kind: ManagedKind, attributes: Attributes) -> fields.FieldError:
    new, old = attributes.obj, attributes.old
    owner = ""
    for obj in (old, new):
        if obj is not None:
            owner = owner or resources.labels(obj).get(ownership.FEDERATION_LABEL, "")
    where = fields.object_place(attributes.namespace, attributes.name)
    federation = f"IstioFederation {render_value(owner)}" if owner else "an IstioFederation"
    if old is not None and ownership.has_ownership_label(old):
        action = {
            "DELETE": "to remove it, stop exporting the service in the remote cluster or delete the federation",
            "UPDATE": "it is regenerated on every sync; change the remote service or the IstioFederation instead",
        }.get(attributes.operation, "change the remote service or the IstioFederation instead")
        if new is not None and not ownership.has_ownership_label(new):
            action = "removing its ownership labels would orphan it; delete the IstioFederation instead"
        detail = f"{kind.kind} {where} is managed by {federation} and only the reconciler may change it; {action}"
    else:
        detail = (
            f"the labels {ownership.MANAGED_BY_LABEL} and {ownership.FEDERATION_LABEL} are reserved for "
            f"{kind.plural} the reconciler creates for {federation}; remove them from {kind.kind} {where}"
        )
    return fields.forbidden(_FEDERATION_LABEL_PATH if owner else Path("metadata.labels"), detail)
