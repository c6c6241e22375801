"""A certificate authority: a self-signed CA certificate and its key, with PEM in and out.

Pure: builds and parses, never touches files or prints.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from certs.errors import CertsError

KeyType = Literal["ec", "rsa"]
SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

# Certificates start a little in the past so a peer whose clock lags ours still accepts them.
CLOCK_SKEW = datetime.timedelta(minutes=5)
RSA_KEY_BITS = 2048


def generate_key(key_type: KeyType) -> SigningKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    return ec.generate_private_key(ec.SECP256R1())


def signature_hash(key: SigningKey) -> hashes.SHA256:
    del key  # SHA-256 suits both P-256 and RSA-2048; the parameter keeps call sites explicit.
    return hashes.SHA256()


def private_key_pem(key: SigningKey, *, traditional: bool = False) -> bytes:
    """PKCS#8 by default; ``traditional`` gives ``RSA/EC PRIVATE KEY``, which every Istio release reads."""
    encoding_format = (
        serialization.PrivateFormat.TraditionalOpenSSL if traditional else serialization.PrivateFormat.PKCS8
    )
    return key.private_bytes(serialization.Encoding.PEM, encoding_format, serialization.NoEncryption())


def certificate_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def load_certificate(pem: bytes, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as error:
        raise CertsError(f"{what} is not a PEM certificate ({error})") from error


def load_signing_key(pem: bytes, what: str) -> SigningKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise CertsError(f"{what} is not an unencrypted PEM private key") from error
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CertsError(f"{what} must be an EC or RSA key, got {type(key).__name__}")
    return key


def same_public_key(cert: x509.Certificate, key: SigningKey) -> bool:
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(
        cert.public_key().public_bytes(serialization.Encoding.DER, spki)
        == key.public_key().public_bytes(serialization.Encoding.DER, spki)
    )


@dataclass(frozen=True)
class Authority:
    certificate: x509.Certificate
    private_key: SigningKey

    @classmethod
    def generate(
        cls,
        subject: x509.Name,
        *,
        days: int,
        now: datetime.datetime,
        key_type: KeyType = "ec",
        issuer: Authority | None = None,
        path_length: int | None = 0,
    ) -> Authority:
        """A new CA; self-signed unless ``issuer`` is given (then an intermediate, clamped to it)."""
        if days < 1:
            raise CertsError(f"CA validity must be at least 1 day, got {days}")
        key = generate_key(key_type)
        not_after = now + datetime.timedelta(days=days)
        if issuer is not None:
            not_after = min(not_after, issuer.certificate.not_valid_after_utc)
        signer_key = issuer.private_key if issuer else key
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.certificate.subject if issuer else subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()), critical=False)
        )
        return cls(builder.sign(signer_key, signature_hash(signer_key)), key)

    @classmethod
    def from_pem(cls, cert_pem: bytes, key_pem: bytes, *, what: str) -> Authority:
        """Load a stored CA and check it can still sign: a CA certificate whose key matches."""
        cert = load_certificate(cert_pem, f"{what} certificate")
        key = load_signing_key(key_pem, f"{what} key")
        if not same_public_key(cert, key):
            raise CertsError(f"{what} key does not belong to its certificate")
        try:
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            constraints = None
        if constraints is None or not constraints.ca:
            raise CertsError(f"{what} certificate is not a CA (basicConstraints CA:TRUE is missing)")
        return cls(cert, key)

    def certificate_pem(self) -> bytes:
        return certificate_pem(self.certificate)

    def private_key_pem(self, *, traditional: bool = False) -> bytes:
        return private_key_pem(self.private_key, traditional=traditional)

    def signed(self, cert: x509.Certificate) -> bool:
        """Whether ``cert`` was issued by this CA (signature check, not only the names)."""
        try:
            cert.verify_directly_issued_by(self.certificate)
        except (ValueError, TypeError, InvalidSignature):
            return False
        return True


def common_name(name: str, *, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, name)]
    if organization:
        attributes.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)
