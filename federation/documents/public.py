"""The public metadata document (``/metadata/public/public.json``), parsed all or nothing.

``{"clusterUUID", "authnKeyPub", "rootCA"}``: every problem is reported with its JSON path
(:class:`federation.documents.reading.DocumentError`), and a bad document never replaces good data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from federation import keys, remotetext
from federation.documents.reading import SUBJECT_LIMIT, DocumentError, reported_value, required_string
from federation.fields import FieldError, Path, invalid, json_type

MAX_CLUSTER_UUID = 253


@dataclass(frozen=True)
class PublicMetadata:
    cluster_uuid: str
    authn_key_pub: str
    root_ca: str

    def to_json(self) -> dict[str, str]:
        return {"clusterUUID": self.cluster_uuid, "authnKeyPub": self.authn_key_pub, "rootCA": self.root_ca}


# How far ahead of our clock a root's notBefore may be and still count as valid now.
NOT_YET_VALID_LEEWAY = timedelta(minutes=5)


def root_ca_problem(pem: str, *, now: datetime | None = None) -> str | None:
    """Why ``pem`` is not a usable CA certificate, or None.

    With ``now``, a certificate that has expired is refused too: Envoy would refuse every chain
    that ends in it, and trusting it in the mesh helps nobody.  A certificate not valid yet is
    accepted beside one that is valid now (a remote may publish its next root before it signs with
    it), but not alone: after the rotation overlap it would be the only root trusted for that
    domain, and every connection to the remote, still signed by today's root, would fail.
    """
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode())
    except ValueError:
        return "must be a PEM X.509 certificate"
    if now is not None and certificates:
        # Clocks of two clusters differ: a root made a few minutes "in the future" is today's root.
        soon = now.astimezone(UTC) + NOT_YET_VALID_LEEWAY
        if all(certificate.not_valid_before_utc > soon for certificate in certificates):
            first = min(certificates, key=lambda certificate: certificate.not_valid_before_utc)
            subject = remotetext.printable(first.subject.rfc4514_string(), SUBJECT_LIMIT) or "(no subject)"
            start = first.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
            return (
                f"certificate {subject} is not valid before {start} and no certificate in rootCA is valid now: "
                "the remote must publish the root CA it signs with today (beside its next one)"
            )
    for certificate in certificates:
        if now is not None and certificate.not_valid_after_utc < now.astimezone(UTC):
            subject = remotetext.printable(certificate.subject.rfc4514_string(), SUBJECT_LIMIT) or "(no subject)"
            expired = certificate.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
            return f"certificate {subject} expired at {expired}: the remote must publish its current root CA"
        try:
            constraints = certificate.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value
        except x509.ExtensionNotFound:
            return "certificate has no basicConstraints extension: it is not a CA"
        if not isinstance(constraints, x509.BasicConstraints) or not constraints.ca:
            return "certificate is not a CA (basicConstraints CA:FALSE)"
    return None


def parse_public(data: Any, *, now: datetime | None = None) -> PublicMetadata:
    """The public document, all or nothing; with ``now``, an expired rootCA is refused."""
    errors: list[FieldError] = []
    if not isinstance(data, dict):
        raise DocumentError("public metadata", [invalid(Path(), json_type(data), "must be a JSON object")])
    root = Path()
    cluster_uuid = required_string(data, "clusterUUID", root, errors)
    if cluster_uuid and (len(cluster_uuid) > MAX_CLUSTER_UUID or not cluster_uuid.isprintable()):
        errors.append(
            invalid(
                root.child("clusterUUID"), reported_value(cluster_uuid), "must be printable, at most 253 characters"
            )
        )
    authn_key_pub = required_string(data, "authnKeyPub", root, errors)
    if authn_key_pub:
        try:
            keys.load_public_key(authn_key_pub, "authnKeyPub")
        except keys.InvalidKey as error:
            errors.append(invalid(root.child("authnKeyPub"), "<PEM>", str(error)))
    root_ca = required_string(data, "rootCA", root, errors)
    if root_ca:
        problem = root_ca_problem(root_ca, now=now)
        if problem:
            errors.append(invalid(root.child("rootCA"), "<PEM>", problem))
    if errors:
        raise DocumentError("public metadata", errors)
    return PublicMetadata(cluster_uuid, authn_key_pub, root_ca)
