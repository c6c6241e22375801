"""Decide what to keep and what to issue, given the CA and leaf stored last time.

The rule that keeps ``caBundle`` from flapping: keep the CA while it has more than 1/3 of its life
left and re-issue only the leaf; when the CA itself is renewed, the old CA stays in the bundle until
it expires, so a pod still serving the old leaf is trusted while its Secret volume catches up.
Pure: PEM bytes in, decisions out.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from certs import lifetime, webhook_cert
from certs.authority import Authority, common_name, load_certificate, load_signing_key, same_public_key
from certs.errors import CertsError
from certs.webhook_cert import IPAddress


@dataclass(frozen=True)
class Stored:
    """What a previous run left behind; any field may be missing."""

    ca_cert: bytes | None = None
    ca_key: bytes | None = None
    previous_ca_cert: bytes | None = None
    leaf_cert: bytes | None = None
    leaf_key: bytes | None = None


@dataclass(frozen=True)
class Plan:
    ca: Authority
    ca_reason: str | None  # None: the stored CA is kept; else why a new one was made
    previous_ca_cert: bytes | None  # the replaced CA, still trusted until it expires
    leaf_cert: bytes
    leaf_key: bytes
    leaf_reason: str | None  # None: the stored leaf is kept

    def bundle(self) -> bytes:
        """The CAs a client must trust: the current one, then the one it replaced (if still valid)."""
        return self.ca.certificate_pem() + (self.previous_ca_cert or b"")


def _still_valid(cert_pem: bytes | None, now: datetime.datetime) -> bytes | None:
    if not cert_pem:
        return None
    try:
        cert = load_certificate(cert_pem, "previous CA")
    except CertsError:
        return None  # a broken leftover is dropped from the bundle, not fatal
    return cert_pem if cert.not_valid_after_utc > now else None


def plan(
    stored: Stored,
    *,
    dns_names: Sequence[str],
    ip_addresses: Sequence[IPAddress] = (),
    ca_days: int,
    leaf_days: int,
    now: datetime.datetime,
    where: str,
) -> Plan:
    """``where`` names the store (a directory or Secret) in error messages."""
    if bool(stored.ca_cert) != bool(stored.ca_key):
        have, missing = ("ca.crt", "ca.key") if stored.ca_cert else ("ca.key", "ca.crt")
        raise CertsError(f"{where} has {have} but no {missing}: restore it, or remove {have} to start a new CA")
    ca_reason: str | None
    previous: bytes | None
    if stored.ca_cert and stored.ca_key:
        ca = Authority.from_pem(stored.ca_cert, stored.ca_key, what=f"the CA in {where}")
        if lifetime.needs_renewal(ca.certificate, now):
            ca_reason = f"the CA in {where} has less than 1/3 of its lifetime left ({lifetime.expiry(ca.certificate)})"
            previous = _still_valid(stored.ca_cert, now)
            ca = new_ca(days=ca_days, now=now)
        else:
            ca_reason, previous = None, _still_valid(stored.previous_ca_cert, now)
    else:
        ca, ca_reason, previous = new_ca(days=ca_days, now=now), "no CA yet", None

    leaf_reason = webhook_cert.reissue_reason(
        stored.leaf_cert, ca, dns_names=dns_names, ip_addresses=ip_addresses, now=now
    )
    if leaf_reason is None and not _key_matches(stored.leaf_cert, stored.leaf_key):
        leaf_reason = "its key is missing or does not match it"
    if leaf_reason is None and stored.leaf_cert and stored.leaf_key:
        return Plan(ca, ca_reason, previous, stored.leaf_cert, stored.leaf_key, None)
    leaf = webhook_cert.issue(ca, dns_names=dns_names, ip_addresses=ip_addresses, days=leaf_days, now=now)
    return Plan(ca, ca_reason, previous, leaf.certificate_pem(), leaf.private_key_pem(), leaf_reason)


def new_ca(*, days: int, now: datetime.datetime) -> Authority:
    return Authority.generate(common_name(webhook_cert.CA_COMMON_NAME), days=days, now=now, key_type="ec")


def _key_matches(cert_pem: bytes | None, key_pem: bytes | None) -> bool:
    if not cert_pem or not key_pem:
        return False
    try:
        cert = load_certificate(cert_pem, "tls.crt")
        key = load_signing_key(key_pem, "tls.key")
    except CertsError:
        return False
    return same_public_key(cert, key)
