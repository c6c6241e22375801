"""An Istio plugin CA (the ``cacerts`` Secret layout) for the local demo and tests.

Istio reads four files: ``root-cert.pem`` (the root every workload trusts), ``ca-cert.pem`` and
``ca-key.pem`` (the intermediate istiod signs workload certificates with) and ``cert-chain.pem``
(intermediate then root). Subjects follow Istio's ``tools/certs`` Makefiles (O=Istio), naming the
trust domain so two clusters' CAs are told apart at a glance. Pure: builds, never writes.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from certs.authority import Authority, KeyType
from certs.errors import CertsError

# Same rule as the IstioFederation CRD's spec.trustDomain (use with fullmatch: Python's $ also matches
# before a final newline, so match() would accept "cluster-a.local\n").
_TRUST_DOMAIN = re.compile(r"[0-9a-zA-Z._-]+")
FILES = ("root-cert.pem", "ca-cert.pem", "ca-key.pem", "cert-chain.pem")


def _name(common: str, trust_domain: str, attribute: x509.ObjectIdentifier) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Istio"),
            x509.NameAttribute(attribute, trust_domain),
            x509.NameAttribute(NameOID.COMMON_NAME, common),
        ]
    )


@dataclass(frozen=True)
class IstioCA:
    root: Authority
    intermediate: Authority

    def files(self) -> dict[str, bytes]:
        intermediate = self.intermediate.certificate_pem()
        root = self.root.certificate_pem()
        return {
            "root-cert.pem": root,
            "ca-cert.pem": intermediate,
            # RSA/EC PRIVATE KEY: the form Istio's own tools write and every release parses.
            "ca-key.pem": self.intermediate.private_key_pem(traditional=True),
            "cert-chain.pem": intermediate + root,
        }


def generate(trust_domain: str, *, key_type: KeyType, days: int, now: datetime.datetime) -> IstioCA:
    if not _TRUST_DOMAIN.fullmatch(trust_domain):
        raise CertsError(
            f"--trust-domain {trust_domain!r} is invalid: use letters, digits, '.', '_' and '-' "
            "(for example cluster-a.local)"
        )
    root = Authority.generate(
        _name("Root CA", trust_domain, NameOID.ORGANIZATIONAL_UNIT_NAME),
        days=days,
        now=now,
        key_type=key_type,
        path_length=None,  # the root signs the intermediate, which signs workloads
    )
    intermediate = Authority.generate(
        _name("Intermediate CA", trust_domain, NameOID.LOCALITY_NAME),
        days=days,
        now=now,
        key_type=key_type,
        issuer=root,
        path_length=0,
    )
    return IstioCA(root, intermediate)
