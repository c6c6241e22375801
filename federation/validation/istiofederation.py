"""Admission rules for IstioFederation (deckhouse.io/v1alpha1, cluster-scoped)."""

from __future__ import annotations

import datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from federation import dns, fields, resources
from federation.fields import Path
from federation.validation import warnings
from federation.validation.attributes import Attributes, Context, Verdict

RESERVED_TRUST_DOMAIN = "cluster.local"
ENDPOINT_EXAMPLE = "https://istio-metadata.cluster-b.example.com/metadata/"


def validate(attributes: Attributes, context: Context) -> Verdict:
    if attributes.operation == "DELETE":
        return _validate_delete(attributes, context)
    obj = attributes.obj or {}
    verdict = Verdict()
    name = resources.name_of(obj)
    for problem in dns.label_problems(name):
        verdict.errors.append(fields.invalid(Path("metadata.name"), name, problem))
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        verdict.errors.append(fields.required(Path("spec"), "must contain trustDomain and metadataEndpoint"))
        return verdict
    spec_path = Path("spec")
    _validate_trust_domain(spec.get("trustDomain"), spec_path.child("trustDomain"), attributes, context, verdict)
    endpoint_host = _validate_endpoint(
        spec.get("metadataEndpoint"), spec_path.child("metadataEndpoint"), attributes, context, verdict
    )
    _validate_metadata(spec.get("metadata"), spec_path.child("metadata"), endpoint_host, context, verdict)
    return verdict


def _others(found: list[dict[str, Any]], attributes: Attributes) -> list[str]:
    return [resources.name_of(obj) for obj in found if resources.name_of(obj) != attributes.name]


def _validate_trust_domain(value: Any, path: Path, attributes: Attributes, context: Context, verdict: Verdict) -> None:
    if value is None or value == "":
        verdict.errors.append(fields.required(path, "the remote cluster's trust domain, e.g. cluster-b.local"))
        return
    if not isinstance(value, str):
        verdict.errors.append(fields.invalid(path, value, "must be a string"))
        return
    problems = dns.subdomain_problems(value)
    for problem in problems:
        verdict.errors.append(fields.invalid(path, value, problem))
    if value.lower() == context.local_trust_domain.lower():
        verdict.errors.append(
            fields.invalid(
                path,
                value,
                "must differ from this cluster's own trust domain: an IstioFederation points at a remote cluster",
            )
        )
    elif value.lower() == RESERVED_TRUST_DOMAIN:
        verdict.errors.append(
            fields.invalid(
                path,
                value,
                "cluster.local cannot be federated: every federated cluster needs its own unique cluster domain",
            )
        )
    if attributes.operation == "UPDATE":
        old_value = resources.spec(attributes.old or {}).get("trustDomain")
        if isinstance(old_value, str) and old_value != value:
            verdict.errors.append(
                fields.invalid(
                    path,
                    value,
                    f"field is immutable (was {old_value!r}); create a new IstioFederation for the new trust "
                    "domain and delete this one",
                )
            )
    if not problems:
        for other in _others(context.index.federations_by_trust_domain(value), attributes):
            verdict.errors.append(
                fields.duplicate(
                    path,
                    value,
                    f'already federated by IstioFederation "{other}"; each remote cluster needs exactly one '
                    f'IstioFederation: edit "{other}" instead',
                )
            )


def _validate_endpoint(
    value: Any, path: Path, attributes: Attributes, context: Context, verdict: Verdict
) -> str | None:
    """Check the URL; return its host when valid, for the CA rule."""
    if value is None or value == "":
        verdict.errors.append(fields.required(path, f"the remote's metadata URL, e.g. {ENDPOINT_EXAMPLE}"))
        return None
    if not isinstance(value, str):
        verdict.errors.append(fields.invalid(path, value, "must be a string"))
        return None
    errors_before = len(verdict.errors)

    def bad(detail: str) -> None:
        verdict.errors.append(fields.invalid(path, value, detail))

    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as error:
        bad(f"is not a valid URL ({error}); use the form {ENDPOINT_EXAMPLE}")
        return None
    if parts.scheme != "https":
        bad(f"must be an https:// URL (got scheme {parts.scheme or 'none'!r}); metadata must be fetched over TLS")
    if parts.username is not None or parts.password is not None:
        bad("must not contain user information (user@ or user:password@); credentials do not belong in the spec")
    if parts.query or value.rstrip().endswith("?"):
        bad("must not contain a query string")
    if parts.fragment or "#" in value:
        bad("must not contain a fragment")
    host = parts.hostname or ""
    if not host:
        bad(f"has no host; use the form {ENDPOINT_EXAMPLE}")
    elif not (dns.is_ip(host) or dns.is_dns_name(host)):
        bad(f"host {host!r} is neither a valid DNS name nor an IP address")
    if port is not None and not 1 <= port <= 65535:
        bad(f"port {port} is out of range 1-65535")
    if parts.path in ("", "/"):
        bad(f"must include the path where the metadata is published, e.g. {ENDPOINT_EXAMPLE}")
    if len(verdict.errors) > errors_before:
        return None
    for other in _others(context.index.federations_by_endpoint(value), attributes):
        verdict.errors.append(
            fields.duplicate(
                path,
                value,
                f'already used by IstioFederation "{other}"; one remote cluster is federated by one IstioFederation',
            )
        )
    return host


def _validate_metadata(value: Any, path: Path, endpoint_host: str | None, context: Context, verdict: Verdict) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        verdict.errors.append(fields.invalid(path, value, "must be an object with optional ca and insecureSkipVerify"))
        return
    insecure = value.get("insecureSkipVerify", False)
    if not isinstance(insecure, bool):
        verdict.errors.append(fields.invalid(path.child("insecureSkipVerify"), insecure, "must be true or false"))
        insecure = False
    ca = value.get("ca")
    if ca is not None and ca != "":
        if not isinstance(ca, str):
            verdict.errors.append(fields.invalid(path.child("ca"), ca, "must be a PEM string"))
        else:
            _validate_ca(ca, path.child("ca"), endpoint_host, context.now, verdict)
        if insecure:
            verdict.warnings.append(
                warnings.clean("spec.metadata.insecureSkipVerify is ignored because spec.metadata.ca is set")
            )
    elif insecure:
        verdict.warnings.append(
            warnings.clean(
                "spec.metadata.insecureSkipVerify: TLS of the metadata endpoint is not verified; set metadata.ca"
            )
        )


def _validate_ca(pem: str, path: Path, endpoint_host: str | None, now: datetime.datetime, verdict: Verdict) -> None:
    if "-----BEGIN CERTIFICATE-----" not in pem:
        verdict.errors.append(fields.invalid(path, "<PEM>", "must be PEM-encoded X.509 certificate(s)"))
        return
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode())
    except ValueError as error:
        verdict.errors.append(fields.invalid(path, "<PEM>", f"is not a valid PEM X.509 certificate ({error})"))
        return
    for position, certificate in enumerate(certificates):
        label = f"certificate {position + 1} ({certificate.subject.rfc4514_string() or 'no subject'})"
        if certificate.not_valid_after_utc < now:
            verdict.errors.append(
                fields.invalid(
                    path,
                    "<PEM>",
                    f"{label} expired at {certificate.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}; "
                    "put the remote's current CA here",
                )
            )
        if not _is_ca(certificate) and not _is_endpoint_self_signed(certificate, endpoint_host):
            verdict.errors.append(
                fields.invalid(
                    path,
                    "<PEM>",
                    f"{label} is not a CA certificate (basicConstraints CA:TRUE) nor the endpoint's own "
                    "self-signed certificate; put the CA that signed the endpoint's certificate here",
                )
            )


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


def _validate_delete(attributes: Attributes, context: Context) -> Verdict:
    owned = len(context.index.service_entries_owned_by(attributes.name))
    verdict = Verdict()
    if owned:
        noun = "ServiceEntry" if owned == 1 else "ServiceEntries"
        verdict.warnings.append(
            warnings.clean(
                f"IstioFederation {warnings.short(attributes.name)} owns {owned} {noun}; "
                "the reconciler deletes them with their DestinationRules"
            )
        )
    return verdict
