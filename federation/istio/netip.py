"""IP addresses and prefixes as Go's ``net/netip`` parses them (Istio checks addresses with it).

Go's rules differ from Python's :mod:`ipaddress` (which :func:`federation.dns.is_ip` uses): the
family is decided by the first ``.`` or ``:``, IPv4 fields may not have leading zeros, an IPv6
address may carry a zone (``fe80::1%eth0``) but a prefix may not, and the prefix length is plain
decimal.  :func:`parses_as_addr` is ``netip.ParseAddr`` succeeding, :func:`parses_as_prefix` is
``netip.ParsePrefix`` succeeding.
"""

from __future__ import annotations

import ipaddress


def _is_ipv4(text: str) -> bool:
    """Go's ``netip`` IPv4 form: four decimal fields, no leading zeros, each ≤ 255."""
    parts = text.split(".")
    if len(parts) != 4:
        return False
    for part in parts:
        if not (1 <= len(part) <= 3 and part.isascii() and part.isdigit()):
            return False
        if (len(part) > 1 and part[0] == "0") or int(part) > 255:
            return False
    return True


def _is_ipv6(text: str, *, zone_allowed: bool) -> bool:
    address, percent, zone = text.partition("%")
    if percent and (not zone_allowed or not zone):
        return False
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return False
    return True


def _family(text: str) -> int:
    """4 or 6 as ``netip.ParseAddr`` decides it (the first ``.`` or ``:``), 0 when neither comes first."""
    for char in text:
        if char == ".":
            return 4
        if char == ":":
            return 6
        if char == "%":
            return 0
    return 0


def parses_as_addr(text: str, *, zone_allowed: bool = True) -> bool:
    """``netip.ParseAddr`` succeeds (IPv4 without leading zeros; IPv6, with a zone unless forbidden)."""
    family = _family(text)
    if family == 4:
        return _is_ipv4(text)
    return family == 6 and _is_ipv6(text, zone_allowed=zone_allowed)


def parses_as_prefix(text: str) -> bool:
    """``netip.ParsePrefix`` succeeds (host bits may be set; no zone; no leading zeros in the bits)."""
    address, _, bits = text.rpartition("/")
    if not (bits.isascii() and bits.isdigit()) or (len(bits) > 1 and bits[0] == "0"):
        return False
    limit = 32 if _family(address) == 4 else 128
    return parses_as_addr(address, zone_allowed=False) and int(bits) <= limit
