"""Admission rules for IstioFederation (deckhouse.io/v1alpha1, cluster-scoped)."""

from __future__ import annotations

import datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from federation import desired, dns, fields, resources, warnings
from federation.fields import FieldError, Path, ValidationResult
from federation.istio.gostrings import SHOWN_LIMIT, more_bytes, shown_repr
from federation.validation.attributes import Attributes, Context

RESERVED_TRUST_DOMAIN = "cluster.local"
ENDPOINT_EXAMPLE = "https://istio-metadata.cluster-b.example.com/metadata/"
# Longer URLs are not metadata endpoints (servers refuse request lines beyond 8 KiB); refusing them
# first keeps the URL checks small whatever a client sends.
MAX_ENDPOINT_LENGTH = 2048


def _name(value: str) -> str:
    """An object's name in a message: quoted, and cut when absurdly long."""
    return fields.render_value(value)


def validate(attributes: Attributes, context: Context) -> ValidationResult:
    if attributes.operation == "DELETE":
        return _validate_delete(attributes, context)
    obj = attributes.obj or {}
    name = resources.name_of(obj)
    name_result = ValidationResult.of(
        fields.invalid(Path("metadata.name"), name, problem) for problem in dns.label_problems(name)
    )
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return name_result + ValidationResult.of(
            [fields.required(Path("spec"), "must contain trustDomain and metadataEndpoint")]
        )
    spec_path = Path("spec")
    endpoint = spec.get("metadataEndpoint")
    endpoint_path = spec_path.child("metadataEndpoint")
    endpoint_errors = _endpoint_errors(endpoint, endpoint_path)
    # The CA rule needs the endpoint's host, known only for a valid endpoint.
    endpoint_host = _host(endpoint) if not endpoint_errors else None
    return ValidationResult.merge(
        [
            name_result,
            _validate_trust_domain(spec.get("trustDomain"), spec_path.child("trustDomain"), attributes, context),
            ValidationResult.of(endpoint_errors),
            _endpoint_duplicates(str(endpoint), endpoint_path, attributes, context)
            if endpoint_host
            else ValidationResult(),
            _validate_metadata(spec.get("metadata"), spec_path.child("metadata"), endpoint_host, context),
            _validate_export_to(obj),
        ]
    )


def _validate_export_to(obj: dict[str, Any]) -> ValidationResult:
    """The exportTo annotation the reconciler gives the federation's objects: Istio's rule."""
    value = resources.annotations_of(obj).get(desired.EXPORT_TO_ANNOTATION)
    if value is None:
        return ValidationResult()
    problem = desired.export_to_problem(desired.parse_export_to(str(value)), "")
    if problem is None:
        return ValidationResult()
    path = Path("metadata.annotations").key(desired.EXPORT_TO_ANNOTATION)
    return ValidationResult.of(
        [fields.invalid(path, value, f"{problem}: use a comma-separated list of namespaces, or '.', '*' or '~'")]
    )


def _others(found: list[dict[str, Any]], attributes: Attributes) -> list[str]:
    return [resources.name_of(obj) for obj in found if resources.name_of(obj) != attributes.name]


def _validate_trust_domain(value: Any, path: Path, attributes: Attributes, context: Context) -> ValidationResult:
    if value is None or value == "":
        return ValidationResult.of([fields.required(path, "the remote cluster's trust domain, e.g. cluster-b.local")])
    if not isinstance(value, str):
        return ValidationResult.of([fields.invalid(path, value, "must be a string")])
    problems = dns.subdomain_problems(value)
    errors = [fields.invalid(path, value, problem) for problem in problems]
    if value.lower() == context.local_trust_domain.lower():
        errors.append(
            fields.invalid(
                path,
                value,
                "must differ from this cluster's own trust domain: an IstioFederation points at a remote cluster",
            )
        )
    elif value.lower() == RESERVED_TRUST_DOMAIN:
        errors.append(
            fields.invalid(
                path,
                value,
                "cluster.local cannot be federated: every federated cluster needs its own unique cluster domain",
            )
        )
    if attributes.operation == "UPDATE":
        old_value = resources.spec(attributes.old or {}).get("trustDomain")
        if isinstance(old_value, str) and old_value != value:
            errors.append(
                fields.invalid(
                    path,
                    value,
                    f"field is immutable (was {shown_repr(old_value)}); create a new IstioFederation for the new trust "
                    "domain and delete this one",
                )
            )
    if not problems:
        for other in _others(context.index.federations_by_trust_domain(value), attributes):
            errors.append(
                fields.duplicate(
                    path,
                    value,
                    f"already federated by IstioFederation {_name(other)}; each remote cluster needs exactly one "
                    f"IstioFederation: edit {_name(other)} instead",
                )
            )
    return ValidationResult.of(errors)


def _endpoint_errors(value: Any, path: Path) -> list[FieldError]:
    """What is wrong with the metadata URL on its own; empty when it is a valid endpoint."""
    if value is None or value == "":
        return [fields.required(path, f"the remote's metadata URL, e.g. {ENDPOINT_EXAMPLE}")]
    if not isinstance(value, str):
        return [fields.invalid(path, value, "must be a string")]
    if len(value) > MAX_ENDPOINT_LENGTH:
        return [fields.invalid(path, value, f"must be no more than {MAX_ENDPOINT_LENGTH} characters")]
    # urlsplit silently drops tabs, CR and LF anywhere, and leading control characters and spaces, so
    # "https://meta.exa\nmple.com/" would pass as meta.example.com: refuse them before parsing.
    unprintable = next((position for position, char in enumerate(value) if char == " " or not char.isprintable()), None)
    if unprintable is not None:
        char = value[unprintable]
        shown = char if char == " " else repr(char)[1:-1]
        return [
            fields.invalid(
                path,
                value,
                f'must not contain spaces or control characters (character "{shown}" at position {unprintable})',
            )
        ]
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as error:
        problem = str(error)[:SHOWN_LIMIT]
        return [fields.invalid(path, value, f"is not a valid URL ({problem}); use the form {ENDPOINT_EXAMPLE}")]
    problems: list[str] = []
    if parts.scheme != "https":
        problems.append(
            f"must be an https:// URL (got scheme {shown_repr(parts.scheme or 'none')}); "
            "metadata must be fetched over TLS"
        )
    if parts.username is not None or parts.password is not None:
        problems.append(
            "must not contain user information (user@ or user:password@); credentials do not belong in the spec"
        )
    if parts.query or value.rstrip().endswith("?"):
        problems.append("must not contain a query string")
    if parts.fragment or "#" in value:
        problems.append("must not contain a fragment")
    host = parts.hostname or ""
    if not host:
        problems.append(f"has no host; use the form {ENDPOINT_EXAMPLE}")
    elif not (dns.is_ip(host) or dns.is_dns_name(host)):
        problems.append(f"host {shown_repr(host)} is neither a valid DNS name nor an IP address")
    if port is not None and not 1 <= port <= 65535:
        problems.append(f"port {port} is out of range 1-65535")
    if parts.path in ("", "/"):
        problems.append(f"must include the path where the metadata is published, e.g. {ENDPOINT_EXAMPLE}")
    return [fields.invalid(path, value, problem) for problem in problems]


def _host(endpoint: Any) -> str | None:
    """The host of an endpoint :func:`_endpoint_errors` accepted."""
    return urlsplit(endpoint).hostname if isinstance(endpoint, str) else None


def _endpoint_duplicates(value: str, path: Path, attributes: Attributes, context: Context) -> ValidationResult:
    return ValidationResult.of(
        fields.duplicate(
            path,
            value,
            f"already used by IstioFederation {_name(other)}; one remote cluster is federated by one IstioFederation",
        )
        for other in _others(context.index.federations_by_endpoint(value), attributes)
    )


def _validate_metadata(value: Any, path: Path, endpoint_host: str | None, context: Context) -> ValidationResult:
    if value is None:
        return ValidationResult()
    if not isinstance(value, dict):
        return ValidationResult.of(
            [fields.invalid(path, value, "must be an object with optional ca and insecureSkipVerify")]
        )
    errors: list[FieldError] = []
    found: list[str] = []
    insecure = value.get("insecureSkipVerify", False)
    if not isinstance(insecure, bool):
        errors.append(fields.invalid(path.child("insecureSkipVerify"), insecure, "must be true or false"))
        insecure = False
    ca = value.get("ca")
    if ca is not None and ca != "":
        if not isinstance(ca, str):
            errors.append(fields.invalid(path.child("ca"), ca, "must be a PEM string"))
        else:
            errors.extend(_ca_errors(ca, path.child("ca"), endpoint_host, context.now))
        if insecure:
            found.append(warnings.clean("spec.metadata.insecureSkipVerify is ignored because spec.metadata.ca is set"))
    elif insecure:
        found.append(
            warnings.clean(
                "spec.metadata.insecureSkipVerify: TLS of the metadata endpoint is not verified; set metadata.ca"
            )
        )
    return ValidationResult.of(errors, found)


def _ca_errors(pem: str, path: Path, endpoint_host: str | None, now: datetime.datetime) -> list[FieldError]:
    if "-----BEGIN CERTIFICATE-----" not in pem:
        return [fields.invalid(path, "<PEM>", "must be PEM-encoded X.509 certificate(s)")]
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode())
    except ValueError as error:
        return [fields.invalid(path, "<PEM>", f"is not a valid PEM X.509 certificate ({error})")]
    errors: list[FieldError] = []
    for position, certificate in enumerate(certificates):
        subject = certificate.subject.rfc4514_string() or "no subject"
        if len(subject) > SHOWN_LIMIT:
            subject = subject[:SHOWN_LIMIT] + more_bytes(subject[SHOWN_LIMIT:])
        label = f"certificate {position + 1} ({subject})"
        if certificate.not_valid_after_utc < now:
            errors.append(
                fields.invalid(
                    path,
                    "<PEM>",
                    f"{label} expired at {certificate.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}; "
                    "put the remote's current CA here",
                )
            )
        if not _is_ca(certificate) and not _is_endpoint_self_signed(certificate, endpoint_host):
            errors.append(
                fields.invalid(
                    path,
                    "<PEM>",
                    f"{label} is not a CA certificate (basicConstraints CA:TRUE) nor the endpoint's own "
                    "self-signed certificate; put the CA that signed the endpoint's certificate here",
                )
            )
    return errors


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value
    except x509.ExtensionNotFound:
        return False
    return isinstance(constraints, x509.BasicConstraints) and constraints.ca


def _is_endpoint_self_signed(certificate: x509.Certificate, endpoint_host: str | None) -> bool:
    if endpoint_host is None or certificate.issuer != certificate.subject:
        return False
    try:
        names = certificate.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except x509.ExtensionNotFound:
        return False
    if not isinstance(names, x509.SubjectAlternativeName):
        return False
    wanted = endpoint_host.lower()
    dns_names = [name.lower() for name in names.get_values_for_type(x509.DNSName)]
    addresses = [str(address) for address in names.get_values_for_type(x509.IPAddress)]
    return (
        wanted in dns_names
        or wanted in addresses
        or any(name.startswith("*.") and wanted.split(".", 1)[-1] == name[2:] for name in dns_names)
    )


def _validate_delete(attributes: Attributes, context: Context) -> ValidationResult:
    owned = len(context.index.service_entries_owned_by(attributes.name))
    if not owned:
        return ValidationResult()
    noun = "ServiceEntry" if owned == 1 else "ServiceEntries"
    return ValidationResult.of(
        warnings=[
            warnings.clean(
                f"IstioFederation {warnings.short(attributes.name)} owns {owned} {noun}; "
                "the reconciler deletes them with their DestinationRules"
            )
        ]
    )
