"""``certs``: the webhook's CA and serving certificate, caBundle injection, the keypair, a demo
Istio CA, and ``certs install`` against the Kubernetes API test double."""

from __future__ import annotations

import argparse
import base64
import datetime
import ipaddress
import socket
import ssl
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs import cli, install, rotation, webhook_cert
from certs.authority import Authority, common_name, load_certificate
from federation.keys import Keypair
from tests.kubeapi.server import KubeApiDouble

REPO = Path(__file__).resolve().parents[2]
VWC_MANIFEST = REPO / "manifests" / "webhook" / "validatingwebhookconfiguration.yaml"
SVC_NAMES = [
    "istio-federation-webhook",
    "istio-federation-webhook.istio-federation",
    "istio-federation-webhook.istio-federation.svc",
    "istio-federation-webhook.istio-federation.svc.cluster.local",
]
NOW = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="istio-federation")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def webhook(out: Path, *extra: str) -> None:
    assert run("certs", "webhook", "--service", "istio-federation-webhook", "--namespace", "istio-federation",
               "--out", str(out), *extra) == 0  # fmt: skip


# -- certs webhook -------------------------------------------------------------------------------


def test_webhook_leaf_names_the_service_and_extra_sans(tmp_path: Path) -> None:
    out = tmp_path / "new" / "dir"
    webhook(out, "--dns", "webhook.example.com", "--ip", "127.0.0.1", "--ip", "::1")
    leaf = cert(out / "tls.crt")
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [*SVC_NAMES, "webhook.example.com"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == SVC_NAMES[2]


def test_webhook_leaf_is_a_server_certificate_signed_by_the_ca(tmp_path: Path) -> None:
    webhook(tmp_path)
    leaf, ca = cert(tmp_path / "tls.crt"), cert(tmp_path / "ca.crt")
    leaf.verify_directly_issued_by(ca)
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert (usage.digital_signature, usage.key_cert_sign) == (True, False)
    assert list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == datetime.timedelta(days=365, minutes=5)


def test_webhook_ca_is_a_p256_ca_allowed_to_sign_certificates(tmp_path: Path) -> None:
    webhook(tmp_path)
    ca = cert(tmp_path / "ca.crt")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).critical
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    public = ca.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert public.curve.name == "secp256r1"
    assert ca.subject == ca.issuer


def test_webhook_keys_are_private_and_certificates_readable(tmp_path: Path) -> None:
    webhook(tmp_path / "out")
    out = tmp_path / "out"
    assert mode(out) == 0o700
    assert {p.name: mode(p) for p in out.iterdir()} == {
        "ca.crt": 0o644,
        "ca.key": 0o600,
        "tls.crt": 0o644,
        "tls.key": 0o600,
    }  # and no temporary file is left behind


def test_webhook_reuses_the_ca_in_the_directory_so_ca_bundle_stays_stable(tmp_path: Path) -> None:
    webhook(tmp_path)
    ca_before, leaf_before = (tmp_path / "ca.crt").read_bytes(), (tmp_path / "tls.crt").read_bytes()
    webhook(tmp_path)
    assert (tmp_path / "ca.crt").read_bytes() == ca_before
    assert (tmp_path / "tls.crt").read_bytes() != leaf_before
    cert(tmp_path / "tls.crt").verify_directly_issued_by(cert(tmp_path / "ca.crt"))
    webhook(tmp_path, "--new-ca")
    assert (tmp_path / "ca.crt").read_bytes() != ca_before


def test_ca_bundle_is_injected_into_every_webhook_of_a_multi_document_manifest(tmp_path: Path) -> None:
    manifest = tmp_path / "all.yaml"
    other = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: unrelated\ndata:\n  caBundle: keep\n"
    manifest.write_text(other + "---\n" + VWC_MANIFEST.read_text(encoding="utf-8"), encoding="utf-8")
    webhook(tmp_path / "certs", "--ca-bundle-into", str(manifest))
    expected = base64.b64encode((tmp_path / "certs" / "ca.crt").read_bytes()).decode()
    text = manifest.read_text(encoding="utf-8")
    configmap, vwc = yaml.safe_load_all(text)
    assert configmap == yaml.safe_load(other)
    assert [hook["clientConfig"]["caBundle"] for hook in vwc["webhooks"]] == [expected] * 3
    original = yaml.safe_load(VWC_MANIFEST.read_text(encoding="utf-8"))
    for hook in vwc["webhooks"]:
        del hook["clientConfig"]["caBundle"]
    assert vwc == original  # nothing else changed
    assert "# The apiserver calls the webhook for every write" in text  # comments survive

    # A second run with a new CA replaces the values rather than adding keys.
    webhook(tmp_path / "certs", "--new-ca", "--ca-bundle-into", str(manifest))
    rotated = base64.b64encode((tmp_path / "certs" / "ca.crt").read_bytes()).decode()
    _, vwc = yaml.safe_load_all(manifest.read_text(encoding="utf-8"))
    assert [hook["clientConfig"]["caBundle"] for hook in vwc["webhooks"]] == [rotated] * 3
    assert manifest.read_text(encoding="utf-8").count("caBundle:") == 4  # three webhooks + the ConfigMap key


def test_ca_bundle_is_added_to_flow_style_client_configs(tmp_path: Path) -> None:
    manifest = tmp_path / "vwc.yaml"
    manifest.write_text(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\n"
        "metadata: {name: x}\nwebhooks:\n- name: a.example.com\n  clientConfig: {url: 'https://a.example.com/'}\n"
        "- name: b.example.com\n  clientConfig:\n    caBundle:\n    url: https://b.example.com/\n",
        encoding="utf-8",
    )
    webhook(tmp_path / "certs", "--ca-bundle-into", str(manifest))
    expected = base64.b64encode((tmp_path / "certs" / "ca.crt").read_bytes()).decode()
    vwc = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    assert [hook["clientConfig"] for hook in vwc["webhooks"]] == [
        {"caBundle": expected, "url": "https://a.example.com/"},
        {"caBundle": expected, "url": "https://b.example.com/"},
    ]


def test_tls_handshake_as_the_apiserver_does_it(tmp_path: Path) -> None:
    webhook(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)
    port = listener.getsockname()[1]
    errors: list[BaseException] = []

    def serve(connections: int) -> None:
        for _ in range(connections):
            try:
                raw, _ = listener.accept()
                with server_context.wrap_socket(raw, server_side=True) as tls:
                    tls.sendall(b"ok")
            except (OSError, ssl.SSLError) as error:  # the rejected handshake ends up here
                errors.append(error)

    thread = threading.Thread(target=serve, args=(2,), daemon=True)
    thread.start()
    try:
        client_context = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            client_context.wrap_socket(raw, server_hostname="istio-federation-webhook.istio-federation.svc") as tls,
        ):
            assert tls.recv(2) == b"ok"
            assert tls.version() in {"TLSv1.2", "TLSv1.3"}
        # A name the certificate does not carry is refused, as Go's verifier would.
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"),
        ):
            client_context.wrap_socket(raw, server_hostname="other.istio-federation.svc")
    finally:
        thread.join(timeout=10)
        listener.close()
    assert not thread.is_alive()


# -- certs keypair -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "private_label", "public_label"),
    [
        pytest.param([], "PRIVATE KEY", "PUBLIC KEY", id="standard"),
        pytest.param(["--deckhouse-labels"], "ED25519 PRIVATE KEY", "ED25519 PUBLIC KEY", id="deckhouse"),
    ],
)
def test_keypair_labels_and_modes(tmp_path: Path, flags: list[str], private_label: str, public_label: str) -> None:
    assert run("certs", "keypair", "--out", str(tmp_path / "k"), *flags) == 0
    private, public = (tmp_path / "k" / "priv.pem").read_text(), (tmp_path / "k" / "pub.pem").read_text()
    assert private.startswith(f"-----BEGIN {private_label}-----\n")
    assert public.startswith(f"-----BEGIN {public_label}-----\n")
    Keypair.from_pems(private, public)  # the halves belong together
    assert (mode(tmp_path / "k" / "priv.pem"), mode(tmp_path / "k" / "pub.pem")) == (0o600, 0o644)


def test_keypair_refuses_to_overwrite_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("certs", "keypair", "--out", str(tmp_path)) == 0
    before = (tmp_path / "priv.pem").read_bytes()
    capsys.readouterr()
    assert run("certs", "keypair", "--out", str(tmp_path)) == 2
    assert capsys.readouterr().err == (
        f"istio-federation: error: refusing to overwrite the keypair in {tmp_path} (priv.pem and pub.pem already "
        "there): "
        "peers verify tokens with its public key; pass --force to replace it\n"
    )
    assert (tmp_path / "priv.pem").read_bytes() == before
    assert run("certs", "keypair", "--out", str(tmp_path), "--force") == 0
    assert (tmp_path / "priv.pem").read_bytes() != before
    assert capsys.readouterr().out.startswith("replaced Ed25519 keypair")


# -- certs istio-ca ------------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", ["rsa", "ec"])
def test_istio_ca_files_form_a_chain(tmp_path: Path, key_type: str) -> None:
    assert run("certs", "istio-ca", "--out", str(tmp_path), "--trust-domain", "cluster-b.local",
               "--key-type", key_type) == 0  # fmt: skip
    root, intermediate = cert(tmp_path / "root-cert.pem"), cert(tmp_path / "ca-cert.pem")
    intermediate.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)
    assert (tmp_path / "cert-chain.pem").read_bytes() == (tmp_path / "ca-cert.pem").read_bytes() + (
        tmp_path / "root-cert.pem"
    ).read_bytes()
    assert root.subject.rfc4514_string() == "CN=Root CA,OU=cluster-b.local,O=Istio"
    assert intermediate.subject.rfc4514_string() == "CN=Intermediate CA,L=cluster-b.local,O=Istio"
    assert intermediate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    key_class = rsa.RSAPrivateKey if key_type == "rsa" else ec.EllipticCurvePrivateKey
    key_pem = (tmp_path / "ca-key.pem").read_bytes()
    expected_label = b"RSA PRIVATE KEY" if key_type == "rsa" else b"EC PRIVATE KEY"
    assert key_pem.startswith(b"-----BEGIN " + expected_label)
    authority = Authority.from_pem((tmp_path / "ca-cert.pem").read_bytes(), key_pem, what="ca")
    assert isinstance(authority.private_key, key_class)
    assert {p.name: mode(p) for p in tmp_path.iterdir()} == {
        "root-cert.pem": 0o644,
        "ca-cert.pem": 0o644,
        "ca-key.pem": 0o600,
        "cert-chain.pem": 0o644,
    }


# -- errors: one line, exit 2 --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(
            ["certs", "webhook", "--out", "OUT", "--ip", "nope"],
            "istio-federation: error: --ip 'nope' is not an IPv4 or IPv6 address\n",
            id="bad-ip",
        ),
        pytest.param(
            ["certs", "webhook", "--out", "FILE/sub"],
            "istio-federation: error: cannot create directory FILE/sub: Not a directory\n",
            id="unwritable-dir",
        ),
        pytest.param(
            ["certs", "webhook", "--out", "OUT", "--ca-bundle-into", "BROKEN"],
            "istio-federation: error: BROKEN is not valid YAML: "
            "expected the node content, but found '<stream end>' at line 2, column 1\n",
            id="broken-manifest",
        ),
        pytest.param(
            ["certs", "webhook", "--out", "OUT", "--ca-bundle-into", "FILE"],
            "istio-federation: error: FILE has no ValidatingWebhookConfiguration with webhooks\n",
            id="no-webhooks",
        ),
        pytest.param(
            ["certs", "webhook", "--out", "OUT", "--ca-bundle-into", "MISSING"],
            "istio-federation: error: cannot read MISSING: No such file or directory\n",
            id="missing-manifest",
        ),
        pytest.param(
            ["certs", "istio-ca", "--out", "OUT", "--trust-domain", "bad domain"],
            "istio-federation: error: --trust-domain 'bad domain' is invalid: use letters, digits, '.', '_' and '-' "
            "(for example cluster-a.local)\n",
            id="bad-trust-domain",
        ),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    (tmp_path / "file").write_text("kind: ConfigMap\n", encoding="utf-8")
    (tmp_path / "broken").write_text("a: [1,\n", encoding="utf-8")
    places = {
        "OUT": tmp_path / "out",
        "FILE": tmp_path / "file",
        "BROKEN": tmp_path / "broken",
        "MISSING": tmp_path / "missing",
    }

    def fill(text: str) -> str:
        for placeholder, path in places.items():
            text = text.replace(placeholder, str(path))
        return text

    assert run(*[fill(arg) for arg in argv]) == 2
    assert capsys.readouterr().err == fill(message)
    assert not (tmp_path / "out").exists()  # nothing written on bad input


def test_a_ca_certificate_without_its_key_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    webhook(tmp_path)
    (tmp_path / "ca.key").unlink()
    capsys.readouterr()
    assert run("certs", "webhook", "--out", str(tmp_path)) == 2
    assert capsys.readouterr().err == (
        f"istio-federation: error: {tmp_path} has ca.crt but no ca.key: restore it, or remove ca.crt to start a "
        "new CA\n"
    )


def test_days_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run("certs", "webhook", "--out", "x", "--days", "0")
    assert exit_info.value.code == 2
    assert "argument --days: must be at least 1, got 0" in capsys.readouterr().err


# -- rotation rules (pure) -----------------------------------------------------------------------


def _stored(plan: rotation.Plan) -> rotation.Stored:
    return rotation.Stored(
        ca_cert=plan.ca.certificate_pem(),
        ca_key=plan.ca.private_key_pem(),
        previous_ca_cert=plan.previous_ca_cert,
        leaf_cert=plan.leaf_cert,
        leaf_key=plan.leaf_key,
    )


def _plan(stored: rotation.Stored, now: datetime.datetime) -> rotation.Plan:
    return rotation.plan(stored, dns_names=SVC_NAMES, ca_days=3650, leaf_days=365, now=now, where="test")


def test_rotation_keeps_everything_while_current() -> None:
    first = _plan(rotation.Stored(), NOW)
    assert (first.ca_reason, first.leaf_reason) == ("no CA yet", "no certificate yet")
    again = _plan(_stored(first), NOW + datetime.timedelta(days=200))
    assert (again.ca_reason, again.leaf_reason) == (None, None)
    assert again.leaf_cert == first.leaf_cert
    assert again.bundle() == first.bundle()


def test_rotation_reissues_the_leaf_with_a_third_of_its_life_left_and_keeps_the_ca() -> None:
    first = _plan(rotation.Stored(), NOW)
    later = _plan(_stored(first), NOW + datetime.timedelta(days=250))
    assert later.ca_reason is None
    assert later.leaf_reason is not None
    assert later.leaf_reason.startswith("less than 1/3 of its lifetime is left")
    assert later.bundle() == first.bundle()
    load_certificate(later.leaf_cert, "leaf").verify_directly_issued_by(first.ca.certificate)


def test_rotation_renews_the_ca_and_trusts_both_until_the_old_one_expires() -> None:
    first = _plan(rotation.Stored(), NOW)
    late = NOW + datetime.timedelta(days=2500)
    rotated = _plan(_stored(first), late)
    assert rotated.ca_reason is not None
    assert "less than 1/3 of its lifetime left" in rotated.ca_reason
    assert rotated.leaf_reason == "it was not issued by the current CA"
    assert rotated.bundle() == rotated.ca.certificate_pem() + first.ca.certificate_pem()
    settled = _plan(_stored(rotated), late + datetime.timedelta(days=1))
    assert settled.bundle() == rotated.bundle()  # the old CA stays while it is valid
    expired = _plan(_stored(rotated), NOW + datetime.timedelta(days=3651))
    assert expired.bundle() == rotated.ca.certificate_pem()


def test_rotation_reissues_when_the_names_change() -> None:
    first = _plan(rotation.Stored(), NOW)
    changed = rotation.plan(
        _stored(first), dns_names=[*SVC_NAMES, "x.example.com"], ca_days=3650, leaf_days=365, now=NOW, where="t"
    )
    assert changed.leaf_reason is not None
    assert changed.leaf_reason.startswith("its names differ from")


def test_a_leaf_never_outlives_its_ca() -> None:
    ca = Authority.generate(common_name("short"), days=10, now=NOW)
    leaf = webhook_cert.issue(ca, dns_names=SVC_NAMES, days=365, now=NOW)
    assert leaf.certificate.not_valid_after_utc == ca.certificate.not_valid_after_utc


# -- certs install (against the Kubernetes API test double) --------------------------------------


def _seed_vwc(kube_api: KubeApiDouble) -> None:
    kube_api.register_webhooks(yaml.safe_load(VWC_MANIFEST.read_text(encoding="utf-8")), {})


def _secret(kube_api: KubeApiDouble, name: str) -> dict[str, Any]:
    from federation import resources

    obj = kube_api.get_object(resources.SECRET, "istio-federation", name)
    assert obj is not None, f"Secret {name} missing"
    return obj


def _ca_bundles(kube_api: KubeApiDouble) -> list[bytes]:
    from tests.kubeapi import VALIDATING_WEBHOOK_CONFIGURATION

    (vwc,) = kube_api.objects(VALIDATING_WEBHOOK_CONFIGURATION)
    return [base64.b64decode(hook["clientConfig"]["caBundle"]) for hook in vwc["webhooks"]]


def _install(kubeconfig: Path) -> int:
    return run("certs", "install", "--namespace", "istio-federation", "--kubeconfig", str(kubeconfig))


def test_install_creates_secrets_and_patches_ca_bundle_then_changes_nothing(
    kube_api: KubeApiDouble, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed_vwc(kube_api)
    kubeconfig = tmp_path / "kubeconfig"
    kube_api.write_kubeconfig(kubeconfig)
    assert _install(kubeconfig) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "created Secret istio-federation/istio-federation-webhook-ca",
        "updated caBundle of ValidatingWebhookConfiguration istio-federation",
        "created Secret istio-federation/istio-federation-webhook-tls",
    ]
    assert lines[1].endswith(
        ": istiofederations.istio-federation.deckhouse.io, serviceentries.istio-federation.deckhouse.io, "
        "destinationrules.istio-federation.deckhouse.io"
    )
    tls = _secret(kube_api, "istio-federation-webhook-tls")
    assert tls["type"] == "kubernetes.io/tls"
    assert sorted(tls["data"]) == ["ca.crt", "tls.crt", "tls.key"]
    ca_pem = base64.b64decode(_secret(kube_api, "istio-federation-webhook-ca")["data"]["ca.crt"])
    assert base64.b64decode(tls["data"]["ca.crt"]) == ca_pem
    assert _ca_bundles(kube_api) == [ca_pem] * 3
    leaf = load_certificate(base64.b64decode(tls["data"]["tls.crt"]), "tls.crt")
    leaf.verify_directly_issued_by(load_certificate(ca_pem, "ca.crt"))
    dns = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert dns == SVC_NAMES

    version = kube_api.resource_version
    assert _install(kubeconfig) == 0
    assert [line.split(" (")[0] for line in capsys.readouterr().out.splitlines()] == [
        "kept CA in Secret istio-federation/istio-federation-webhook-ca",
        "kept caBundle of ValidatingWebhookConfiguration istio-federation",
        "kept serving certificate in Secret istio-federation/istio-federation-webhook-tls",
    ]
    assert kube_api.resource_version == version  # idempotent: no writes at all


def test_install_reissues_an_ageing_leaf_without_touching_ca_bundle(kube_api: KubeApiDouble, tmp_path: Path) -> None:
    _seed_vwc(kube_api)
    kubeconfig = tmp_path / "kubeconfig"
    kube_api.write_kubeconfig(kubeconfig)
    api_client, core, admission = install.connect(str(kubeconfig), in_cluster=False)
    target = install.Target(
        namespace="istio-federation",
        service="istio-federation-webhook",
        secret="istio-federation-webhook-tls",
        ca_secret="istio-federation-webhook-ca",
        webhook_configuration="istio-federation",
        dns_names=SVC_NAMES,
    )
    lines: list[str] = []
    try:
        installer = install.Installer(core, admission, report=lines.append)
        installer.run(target, NOW)
        bundles = _ca_bundles(kube_api)
        first_leaf = _secret(kube_api, "istio-federation-webhook-tls")["data"]["tls.crt"]
        lines.clear()
        installer.run(target, NOW + datetime.timedelta(days=250))
    finally:
        api_client.close()
    assert lines[0].startswith("kept CA in Secret istio-federation/istio-federation-webhook-ca")
    assert lines[1] == "kept caBundle of ValidatingWebhookConfiguration istio-federation (3 webhooks)"
    assert lines[2].startswith("updated Secret istio-federation/istio-federation-webhook-tls: serving certificate")
    assert lines[2].endswith("(less than 1/3 of its lifetime is left (expires 2031-01-01T00:00:00Z))")
    assert _ca_bundles(kube_api) == bundles
    assert _secret(kube_api, "istio-federation-webhook-tls")["data"]["tls.crt"] != first_leaf


def test_install_without_the_webhook_configuration_says_what_to_do(
    kube_api: KubeApiDouble, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kube_api.write_kubeconfig(kubeconfig)
    assert _install(kubeconfig) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        "istio-federation: error: ValidatingWebhookConfiguration istio-federation not found: "
        "apply the manifests first (kubectl apply -k manifests)\n"
    )


def test_install_refuses_a_tls_secret_of_another_type(
    kube_api: KubeApiDouble, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed_vwc(kube_api)
    kube_api.seed(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "istio-federation-webhook-tls", "namespace": "istio-federation"},
            "type": "Opaque",
            "data": {},
        }
    )
    kubeconfig = tmp_path / "kubeconfig"
    kube_api.write_kubeconfig(kubeconfig)
    assert _install(kubeconfig) == 2
    assert capsys.readouterr().err == (
        "istio-federation: error: Secret istio-federation/istio-federation-webhook-tls has type 'Opaque', not "
        "kubernetes.io/tls; "
        "the type cannot change: delete the Secret and run again\n"
    )


def test_install_with_a_broken_kubeconfig(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n", encoding="utf-8")
    assert _install(kubeconfig) == 2
    err = capsys.readouterr().err
    assert err == (
        f"istio-federation: error: --kubeconfig/--in-cluster: cannot load Kubernetes credentials from kubeconfig "
        f"{kubeconfig}: Invalid kube-config file. Expected key current-context in {kubeconfig}\n"
    )
    assert err.count("\n") == 1


def test_no_key_material_is_committed() -> None:
    suspicious = [
        path.relative_to(REPO)
        for directory in ("certs", "manifests", "tests", "docs")
        if (REPO / directory).exists()
        for path in (REPO / directory).rglob("*")
        if path.is_file() and path.suffix in {".pem", ".key", ".crt"}
    ]
    assert suspicious == []
