"""``istio-federation certs …``: certificates and keys for the webhook, the identity keypair and a demo Istio CA."""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Callable
from pathlib import Path

from certs import cabundle, files, istio_ca, keypair, lifetime, rotation, webhook_cert
from certs.errors import CertsError
from federation.commandline import EXIT_OK, EXIT_USAGE, usage_line

Handler = Callable[[argparse.Namespace], int]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _positive_days(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of days, got {value!r}") from None
    if days < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {days}")
    return days


def _guarded(handler: Handler) -> Handler:
    """Turn a CertsError into one line on stderr and exit code 2 (the launcher's usage-error line, so
    every subcommand words its errors alike): the user gets the fix, not a traceback."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except CertsError as error:
            print(usage_line(str(error)), file=sys.stderr)
            return EXIT_USAGE

    return run


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("certs", help="certificates and keys for the webhook, the keypair and a demo CA")
    commands = parser.add_subparsers(dest="certs_command", metavar="CERTS_COMMAND", required=True)

    webhook = commands.add_parser("webhook", help="write a CA and the webhook's serving certificate to a directory")
    webhook.add_argument(
        "--service", default=webhook_cert.DEFAULT_SERVICE, help="the webhook's Service, named in the certificate's SANs"
    )
    webhook.add_argument(
        "--namespace", default=webhook_cert.DEFAULT_NAMESPACE, help="the webhook Service's namespace, in the SANs too"
    )
    webhook.add_argument("--out", required=True, type=Path, help="directory for ca.crt, ca.key, tls.crt, tls.key")
    webhook.add_argument("--dns", action="append", default=[], metavar="NAME", help="extra DNS SAN (repeatable)")
    webhook.add_argument("--ip", action="append", default=[], metavar="ADDR", help="extra IP SAN (repeatable)")
    webhook.add_argument("--days", type=_positive_days, default=365, help="serving certificate validity in days")
    webhook.add_argument("--ca-days", type=_positive_days, default=3650, help="validity of a new CA in days")
    webhook.add_argument("--new-ca", action="store_true", help="make a new CA even if DIR holds a usable one")
    webhook.add_argument(
        "--ca-bundle-into",
        type=Path,
        metavar="MANIFEST_FILE",
        help="set caBundle of every ValidatingWebhookConfiguration webhook in this YAML file",
    )
    webhook.set_defaults(handler=_guarded(_webhook))

    pair = commands.add_parser("keypair", help="write the Ed25519 identity keypair priv.pem and pub.pem")
    pair.add_argument(
        "--out", required=True, type=Path, metavar="DIR",
        help="directory for priv.pem (mode 0600) and pub.pem; created if missing",
    )  # fmt: skip
    pair.add_argument(
        "--deckhouse-labels", action="store_true", help="PEM labels ED25519 PRIVATE/PUBLIC KEY, as Deckhouse writes"
    )
    pair.add_argument("--force", action="store_true", help="replace an existing keypair (peers must re-fetch it)")
    pair.set_defaults(handler=_guarded(_keypair))

    ca = commands.add_parser("istio-ca", help="write an Istio plugin CA (cacerts layout) for demos and tests")
    ca.add_argument(
        "--out", required=True, type=Path, metavar="DIR",
        help="directory for Istio's cacerts files: root-cert.pem, ca-cert.pem, ca-key.pem, cert-chain.pem",
    )  # fmt: skip
    ca.add_argument("--trust-domain", default="cluster-a.local", help="named in the subjects (default %(default)s)")
    ca.add_argument("--key-type", choices=["rsa", "ec"], default="ec", help="RSA 2048 or ECDSA P-256 keys")
    ca.add_argument("--days", type=_positive_days, default=3650, help="validity of the root and the CA in days")
    ca.set_defaults(handler=_guarded(_istio_ca))

    install = commands.add_parser(
        "install", help="create or renew the webhook's TLS Secret and caBundle in a cluster (idempotent)"
    )
    install.add_argument(
        "--namespace", default=webhook_cert.DEFAULT_NAMESPACE,
        help="namespace of the webhook's Service and of both Secrets",
    )  # fmt: skip
    install.add_argument(
        "--service", default=webhook_cert.DEFAULT_SERVICE, help="the webhook's Service, named in the certificate's SANs"
    )
    source = install.add_mutually_exclusive_group()
    source.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    source.add_argument("--in-cluster", action="store_true", help="use the pod's service account")
    install.add_argument(
        "--webhook-configuration", default="istio-federation",
        help="the ValidatingWebhookConfiguration whose webhooks get the CA as caBundle",
    )  # fmt: skip
    install.add_argument(
        "--secret", default="istio-federation-webhook-tls",
        help="the kubernetes.io/tls Secret the webhook pods mount (tls.crt, tls.key, ca.crt)",
    )  # fmt: skip
    install.add_argument(
        "--ca-secret", default="istio-federation-webhook-ca", help="Secret holding the CA key (never mounted)"
    )
    install.add_argument("--dns", action="append", default=[], metavar="NAME", help="extra DNS SAN (repeatable)")
    install.add_argument("--days", type=_positive_days, default=365, help="serving certificate validity in days")
    install.add_argument("--ca-days", type=_positive_days, default=3650, help="validity of a new CA in days")
    install.set_defaults(handler=_guarded(_install))


def _webhook(args: argparse.Namespace) -> int:
    out: Path = args.out
    names = webhook_cert.service_dns_names(args.service, args.namespace, args.dns)
    ips = webhook_cert.parse_ip_addresses(args.ip)
    manifest_text: str | None = None
    if args.ca_bundle_into is not None:
        # Read the manifest before writing anything, so a bad path fails without leaving new keys behind.
        try:
            manifest_text = args.ca_bundle_into.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise CertsError(
                f"{args.ca_bundle_into} is not a YAML manifest: byte {error.object[error.start]:#04x} at offset "
                f"{error.start} is not UTF-8 text (a binary file?)"
            ) from None
        except OSError as error:
            raise CertsError(f"cannot read {args.ca_bundle_into}: {error.strerror or error}") from None
    stored = rotation.Stored()
    if not args.new_ca:
        stored = rotation.Stored(
            ca_cert=files.read_optional(out / "ca.crt"), ca_key=files.read_optional(out / "ca.key")
        )
    plan = rotation.plan(
        stored, dns_names=names, ip_addresses=ips, ca_days=args.ca_days, leaf_days=args.days, now=_now(), where=str(out)
    )
    new_manifest: str | None = None
    if manifest_text is not None:
        new_manifest, count = cabundle.inject(manifest_text, plan.bundle(), source=str(args.ca_bundle_into))
    # Everything that can fail on bad input has run; only now touch the filesystem.
    files.ensure_directory(out)
    ca_expiry = lifetime.expiry(plan.ca.certificate)
    if plan.ca_reason is None:
        print(f"kept CA {out / 'ca.crt'} (valid until {ca_expiry})")
    else:
        files.write_atomic(out / "ca.key", plan.ca.private_key_pem(), files.KEY_MODE)
        files.write_atomic(out / "ca.crt", plan.ca.certificate_pem(), files.PUBLIC_MODE)
        print(f"wrote new CA {out / 'ca.crt'} and {out / 'ca.key'} (valid until {ca_expiry})")
    files.write_atomic(out / "tls.key", plan.leaf_key, files.KEY_MODE)
    files.write_atomic(out / "tls.crt", plan.leaf_cert, files.PUBLIC_MODE)
    print(f"wrote {out / 'tls.crt'} and {out / 'tls.key'} for {', '.join([*names, *map(str, ips)])}")
    if new_manifest is not None:
        target: Path = args.ca_bundle_into
        mode = target.stat().st_mode & 0o777
        files.write_atomic(target, new_manifest.encode("utf-8"), mode)
        print(f"set caBundle of {count} webhooks in {target}")
    return EXIT_OK


def _keypair(args: argparse.Namespace) -> int:
    from federation.keys import Keypair

    out: Path = args.out
    existing = [name for name in (keypair.PRIVATE_FILE, keypair.PUBLIC_FILE) if (out / name).exists()]
    if existing and not args.force:
        raise CertsError(
            f"refusing to overwrite the keypair in {out} ({' and '.join(existing)} already there): peers verify tokens "
            "with its public key; pass --force to replace it"
        )
    files.ensure_directory(out)
    contents = keypair.files(Keypair.generate(), deckhouse_labels=args.deckhouse_labels)
    # Public half first: a reader that sees the new private key must never pair it with an old pub.pem
    # for longer than the instant between the two renames.
    files.write_atomic(out / keypair.PUBLIC_FILE, contents[keypair.PUBLIC_FILE], files.PUBLIC_MODE)
    files.write_atomic(out / keypair.PRIVATE_FILE, contents[keypair.PRIVATE_FILE], files.KEY_MODE)
    verb = "replaced" if existing else "wrote"
    print(f"{verb} Ed25519 keypair {out / keypair.PRIVATE_FILE} and {out / keypair.PUBLIC_FILE}")
    return EXIT_OK


def _istio_ca(args: argparse.Namespace) -> int:
    out: Path = args.out
    ca = istio_ca.generate(args.trust_domain, key_type=args.key_type, days=args.days, now=_now())
    files.ensure_directory(out)
    for name, data in ca.files().items():
        files.write_atomic(out / name, data, files.KEY_MODE if name.endswith("key.pem") else files.PUBLIC_MODE)
    print(
        f"wrote Istio CA for trust domain {args.trust_domain} ({args.key_type}) to {out}: {', '.join(istio_ca.FILES)}"
    )
    return EXIT_OK


def _install(args: argparse.Namespace) -> int:
    from certs import install

    target = install.Target(
        namespace=args.namespace,
        service=args.service,
        secret=args.secret,
        ca_secret=args.ca_secret,
        webhook_configuration=args.webhook_configuration,
        dns_names=webhook_cert.service_dns_names(args.service, args.namespace, args.dns),
        ca_days=args.ca_days,
        leaf_days=args.days,
    )
    api_client, core, admission = install.connect(args.kubeconfig, args.in_cluster)
    try:
        install.Installer(core, admission, report=lambda line: print(line, flush=True)).run(target, _now())
    finally:
        api_client.close()
    return EXIT_OK
