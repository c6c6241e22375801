"""How much of a certificate's life is left, the one rule both rotation paths share."""

from __future__ import annotations

import datetime

from cryptography import x509

# Renew when less than this share of the validity period remains, as cert-manager does (2/3 used):
# Secret volumes reach pods only after the kubelet sync period, so the new leaf must be issued
# well before the old one expires.
RENEW_WHEN_REMAINING_BELOW = 1 / 3


def remaining_fraction(cert: x509.Certificate, now: datetime.datetime) -> float:
    """Share of the validity period still ahead of ``now``: 1.0 when fresh, 0.0 (never below) when expired."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    total = (end - start).total_seconds()
    if total <= 0:
        return 0.0
    return max(0.0, min(1.0, (end - now).total_seconds() / total))


def needs_renewal(cert: x509.Certificate, now: datetime.datetime) -> bool:
    return remaining_fraction(cert, now) < RENEW_WHEN_REMAINING_BELOW


def expiry(cert: x509.Certificate) -> str:
    """The expiry as a short UTC timestamp for one-line reports."""
    return cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
