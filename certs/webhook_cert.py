"""The webhook's serving certificate: the names the apiserver dials, and when to re-issue it.

Pure: builds and inspects certificates, never touches files or prints.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from certs import lifetime
from certs.authority import (
    CLOCK_SKEW,
    Authority,
    certificate_pem,
    common_name,
    load_certificate,
    signature_hash,
)
from certs.authority import private_key_pem as _private_key_pem
from certs.errors import CertsError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_SERVICE = "istio-federation-webhook"
DEFAULT_NAMESPACE = "istio-federation"
CA_COMMON_NAME = "istio-federation-webhook-ca"


def service_dns_names(service: str, namespace: str, extra: Sequence[str] = ()) -> list[str]:
    """SANs for a Service: the apiserver dials ``<svc>.<ns>.svc`` and checks exactly that name; the
    shorter and longer forms serve in-cluster clients that use them. Extra names follow, deduplicated."""
    names = [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]
    for name in extra:
        if name not in names:
            names.append(name)
    return names


def parse_ip_addresses(values: Sequence[str]) -> list[IPAddress]:
    addresses: list[IPAddress] = []
    for value in values:
        try:
            addresses.append(ipaddress.ip_address(value))
        except ValueError as error:
            raise CertsError(f"--ip {value!r} is not an IPv4 or IPv6 address") from error
    return addresses


@dataclass(frozen=True)
class ServingCertificate:
    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey

    def certificate_pem(self) -> bytes:
        return certificate_pem(self.certificate)

    def private_key_pem(self) -> bytes:
        return _private_key_pem(self.private_key)


def issue(
    ca: Authority,
    *,
    dns_names: Sequence[str],
    ip_addresses: Sequence[IPAddress] = (),
    days: int,
    now: datetime.datetime,
) -> ServingCertificate:
    """A serverAuth leaf for ``dns_names`` (the first becomes the CN), never outliving its CA."""
    if days < 1:
        raise CertsError(f"--days must be at least 1, got {days}")
    if not dns_names:
        raise CertsError("a serving certificate needs at least one DNS name")
    if ca.certificate.not_valid_after_utc <= now:
        raise CertsError(f"the CA expired at {lifetime.expiry(ca.certificate)}; issue a new CA")
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    sans += [x509.IPAddress(address) for address in ip_addresses]
    cert = (
        x509.CertificateBuilder()
        .subject_name(common_name(_common_name_for(dns_names)))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        # A leaf outliving its CA would fail verification at the CA's expiry anyway; say so in the dates.
        .not_valid_after(min(now + datetime.timedelta(days=days), ca.certificate.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,  # ECDHE with an ECDSA key signs, it never encrypts the key.
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        # Go (kube-apiserver) ignores the CN and matches SANs only.
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.private_key.public_key()), critical=False)
        .sign(ca.private_key, signature_hash(ca.private_key))
    )
    return ServingCertificate(cert, key)


def _common_name_for(dns_names: Sequence[str]) -> str:
    # Prefer the name the apiserver dials; CNs are limited to 64 characters.
    preferred = next((name for name in dns_names if name.endswith(".svc")), dns_names[0])
    return preferred[:64]


def subject_alternative_names(cert: x509.Certificate) -> tuple[list[str], list[IPAddress]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    ips = [ip for ip in san.get_values_for_type(x509.IPAddress) if isinstance(ip, IPAddress)]
    return san.get_values_for_type(x509.DNSName), ips


def reissue_reason(
    cert_pem: bytes | None,
    ca: Authority,
    *,
    dns_names: Sequence[str],
    ip_addresses: Sequence[IPAddress] = (),
    now: datetime.datetime,
) -> str | None:
    """Why the stored leaf must be replaced, or None when it can stay."""
    if not cert_pem:
        return "no certificate yet"
    try:
        cert = load_certificate(cert_pem, "tls.crt")
    except CertsError as error:
        return str(error)
    if not ca.signed(cert):
        return "it was not issued by the current CA"
    dns, ips = subject_alternative_names(cert)
    if sorted(dns) != sorted(dns_names) or sorted(map(str, ips)) != sorted(map(str, ip_addresses)):
        return "its names differ from " + ", ".join([*dns_names, *map(str, ip_addresses)])
    if cert.not_valid_after_utc <= now:
        return f"it expired at {lifetime.expiry(cert)}"
    if lifetime.needs_renewal(cert, now):
        return f"less than 1/3 of its lifetime is left (expires {lifetime.expiry(cert)})"
    return None
