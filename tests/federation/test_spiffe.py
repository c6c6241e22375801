"""The SPIFFE bundle of the root CA: RSA and EC roots, exact JWK members, Deckhouse's shape."""

from __future__ import annotations

import base64
import datetime

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from federation import spiffe
from tests import deckhouse_shapes


def _b64url_int(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def _self_signed(
    private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey,
    not_before: datetime.datetime,
) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "root")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    algorithm = None if isinstance(private_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(private_key, algorithm).public_bytes(serialization.Encoding.PEM).decode()


def test_rsa_root_gives_n_and_e_of_the_key_and_the_der_in_x5c() -> None:
    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    pem = ca.cert_pem.bytes().decode()
    certificate = x509.load_pem_x509_certificate(pem.encode())
    bundle = spiffe.build_bundle(pem).to_json()

    assert deckhouse_shapes.check_spiffe(bundle) == []
    [key] = bundle["keys"]
    public_key = certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    numbers = public_key.public_numbers()
    assert set(key) == {"kty", "use", "n", "e", "x5c"}
    assert (key["kty"], key["use"], key["e"]) == ("RSA", "x509-svid", "AQAB")
    assert _b64url_int(key["n"]) == numbers.n
    assert base64.b64decode(key["x5c"][0]) == certificate.public_bytes(serialization.Encoding.DER)
    assert bundle["spiffe_refresh_hint"] == spiffe.DEFAULT_REFRESH_HINT_SECONDS
    assert bundle["spiffe_sequence"] == int(certificate.not_valid_before_utc.timestamp())


@pytest.mark.parametrize(
    ("curve", "crv", "size"),
    [(ec.SECP256R1(), "P-256", 32), (ec.SECP384R1(), "P-384", 48), (ec.SECP521R1(), "P-521", 66)],
    ids=["P-256", "P-384", "P-521"],
)
def test_ec_root_gives_crv_and_fixed_length_coordinates(curve: ec.EllipticCurve, crv: str, size: int) -> None:
    private_key = ec.generate_private_key(curve)
    pem = _self_signed(private_key, datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC))
    bundle = spiffe.build_bundle(pem).to_json()

    assert deckhouse_shapes.check_spiffe(bundle) == []
    [key] = bundle["keys"]
    numbers = private_key.public_key().public_numbers()
    assert set(key) == {"kty", "use", "crv", "x", "y", "x5c"}
    assert (key["kty"], key["use"], key["crv"]) == ("EC", "x509-svid", crv)
    for member, value in (("x", numbers.x), ("y", numbers.y)):
        raw = base64.urlsafe_b64decode(key[member] + "=" * (-len(key[member]) % 4))
        assert len(raw) == size  # leading zero bytes are kept (RFC 7518 §6.2.1.2)
        assert int.from_bytes(raw, "big") == value


def test_trustme_ecdsa_root_works_unlike_deckhouse() -> None:
    pem = trustme.CA(key_type=trustme.KeyType.ECDSA).cert_pem.bytes().decode()
    assert spiffe.build_bundle(pem).keys[0]["kty"] == "EC"


def test_every_root_of_a_rotation_is_listed_and_the_newest_not_before_is_the_sequence() -> None:
    old = _self_signed(ec.generate_private_key(ec.SECP256R1()), datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC))
    new = _self_signed(
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC),
    )
    bundle = spiffe.build_bundle(old + new, refresh_hint=60)

    assert [key["kty"] for key in bundle.keys] == ["EC", "RSA"]
    assert bundle.sequence == int(datetime.datetime(2026, 6, 1, tzinfo=datetime.UTC).timestamp())
    assert bundle.refresh_hint == 60
    assert spiffe.build_bundle(old).sequence < bundle.sequence


def test_ed25519_root_is_refused_with_what_to_use_instead() -> None:
    pem = _self_signed(ed25519.Ed25519PrivateKey.generate(), datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC))
    with pytest.raises(spiffe.BundleError) as raised:
        spiffe.build_bundle(pem)
    assert str(raised.value) == (
        "root CA key type Ed25519 is not supported in a SPIFFE bundle; use an RSA or EC (P-256/384/521) root"
    )


def test_unsupported_curve_is_refused_by_name() -> None:
    pem = _self_signed(ec.generate_private_key(ec.SECP256K1()), datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC))
    with pytest.raises(spiffe.BundleError) as raised:
        spiffe.build_bundle(pem)
    assert str(raised.value) == "root CA key uses curve secp256k1; a SPIFFE bundle supports P-256, P-384 and P-521"


@pytest.mark.parametrize(
    "text", ["", "not a certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"]
)
def test_non_certificate_input_is_refused(text: str) -> None:
    with pytest.raises(spiffe.BundleError) as raised:
        spiffe.build_bundle(text)
    assert str(raised.value) == "root CA is not a PEM X.509 certificate"
