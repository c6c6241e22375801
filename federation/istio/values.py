"""Istio's checks of single values, each returning Istio's message or None.

Read beside istio/istio (HEAD ~1.31):

* ``pkg/config/validation/agent/validation.go``: ``CheckDNS1123Preconditions``,
  ``ValidateDNS1123Labels``, ``ValidateFQDN``, ``ValidateWildcardDomain``,
  ``ValidatePartialWildCard``, ``ValidateIPSubnet`` (with ``ValidateIPAddress``),
  ``ValidateUnixAddress`` and ``ValidatePort``;
* ``pkg/config/labels/instance.go``: ``IsDNS1123Label``, ``IsWildcardDNS1123Label`` and the tag
  key and value rules of ``Instance.Validate``;
* ``pkg/config/protocol/instance.go``: ``Parse``.

Istio's regular expressions are matched with ``fullmatch``: Go's ``$`` is the end of the text
(Python's ``$`` also matches before a final newline).  Values are echoed with
:func:`gostrings.shown` (``%q``) and :func:`gostrings.shown_bare` (``%s``): Istio's text exactly,
except that a value longer than 100 characters (or, for ``%s``, not printable) is quoted and cut.
Every check is linear in its input; a host longer than 255 bytes is refused before any per-label work.
"""

from __future__ import annotations

import re
from typing import Final

from federation.istio import gostrings, netip

_DNS1123_LABEL: Final = r"[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?"
_DNS1123_LABEL_RE: Final = re.compile(_DNS1123_LABEL)
_WILDCARD_LABEL_RE: Final = re.compile(rf"\*|(?:\*|\*-)?{_DNS1123_LABEL}")
_QUALIFIED_NAME: Final = r"(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_TAG_KEY_RE: Final = re.compile(rf"({_DNS1123_LABEL}(?:\.{_DNS1123_LABEL})*/)?({_QUALIFIED_NAME})")
_TAG_VALUE_RE: Final = re.compile(rf"(?:{_QUALIFIED_NAME})?")

# protocol.Parse: case-insensitive names.  The "DoubleHBONE" arm can never match after lower-casing,
# so HBONE is (faithfully) not a protocol here either.
_PROTOCOLS: Final = {
    "tcp": "TCP",
    "udp": "UDP",
    "grpc": "GRPC",
    "grpc-web": "GRPC-Web",
    "http": "HTTP",
    "http_proxy": "HTTP_PROXY",
    "http2": "HTTP2",
    "https": "HTTPS",
    "tls": "TLS",
    "mongo": "Mongo",
    "redis": "Redis",
    "mysql": "MySQL",
}
HTTP_PROTOCOLS: Final = frozenset({"HTTP", "HTTP2", "HTTP_PROXY", "GRPC", "GRPC-Web"})
TLS_PROTOCOLS: Final = frozenset({"HTTPS", "TLS"})
TCP_PROTOCOLS: Final = frozenset({"TCP", "HTTPS", "TLS", "Mongo", "Redis", "MySQL"})


def is_dns1123_label(value: str) -> bool:
    """``labels.IsDNS1123Label`` (upper case allowed, as in Istio)."""
    return len(value) <= 63 and _DNS1123_LABEL_RE.fullmatch(value) is not None


def _is_wildcard_dns1123_label(value: str) -> bool:
    """``labels.IsWildcardDNS1123Label``: ``*``, ``*x``, ``*-x`` or a DNS-1123 label."""
    return len(value) <= 63 and _WILDCARD_LABEL_RE.fullmatch(value) is not None


def _dns1123_preconditions(name: str) -> str | None:
    """``CheckDNS1123Preconditions``."""
    if gostrings.byte_len(name) > 255:
        return f"domain name {gostrings.shown(name)} too long (max 255)"
    if not name:
        return "empty domain name not allowed"
    return None


def _dns1123_labels(domain: str) -> str | None:
    """``ValidateDNS1123Labels``: the top-level domain may not be all-numeric (``strconv.Atoi``)."""
    parts = domain.split(".")
    top_level = parts[-1]
    if gostrings.atoi_accepts(top_level):
        quoted = gostrings.shown(domain)
        return f"domain name {quoted} invalid (top level domain {gostrings.shown(top_level)} cannot be all-numeric)"
    for position, label in enumerate(parts):
        if position == len(parts) - 1 and not label:  # a trailing dot, as in "istio.io."
            return None
        if not is_dns1123_label(label):
            return f"domain name {gostrings.shown(domain)} invalid (label {gostrings.shown(label)} invalid)"
    return None


def fqdn_problem(name: str) -> str | None:
    """``ValidateFQDN``."""
    return _dns1123_preconditions(name) or _dns1123_labels(name)


def wildcard_domain_problem(name: str) -> str | None:
    """``ValidateWildcardDomain``: a wildcard is allowed in the first label only."""
    problem = _dns1123_preconditions(name)
    if problem:
        return problem
    first, dot, rest = name.partition(".")
    if not _is_wildcard_dns1123_label(first):
        return f"domain name {gostrings.shown(name)} invalid (label {gostrings.shown(first)} invalid)"
    return _dns1123_labels(rest) if dot else None


def is_partial_wildcard(host: str) -> bool:
    """What ``ValidatePartialWildCard`` warns about: a ``*`` that is neither ``*`` nor a ``*.`` prefix."""
    return "*" in host and host != "*" and not host.startswith("*.")


def ip_subnet_problem(address: str) -> str | None:
    """``ValidateIPSubnet``: exactly one ``/`` means CIDR, anything else must be an IP (``ValidateIPAddress``)."""
    if address.count("/") == 1:
        return None if netip.parses_as_prefix(address) else f"{gostrings.shown_bare(address)} is not a valid CIDR block"
    return None if netip.parses_as_addr(address) else f"{gostrings.shown_bare(address)} is not a valid IP"


def unix_address_problem(path: str) -> str | None:
    """``ValidateUnixAddress`` on the part after ``unix://``."""
    if not path:
        return "unix address must not be empty"
    if path.startswith("@"):
        return None
    if not path.startswith("/") or path.endswith("/"):
        return f"{gostrings.shown_bare(path)} is not an absolute path to a file"
    return None


def port_problem(number: int) -> str | None:
    """``ValidatePort``."""
    return None if 1 <= number <= 65535 else f"port number {shown_int(number)} must be in the range 1..65535"


def shown_int(number: int) -> str:
    """An integer echoed in a message (``%d``): JSON bounds it to 40 characters, YAML does not."""
    if number.bit_length() > 256:
        return f"(an integer of {number.bit_length()} bits)"
    return str(number)


def parse_protocol(value: str) -> str | None:
    """``protocol.Parse``: the canonical name, or None for an unsupported protocol."""
    return _PROTOCOLS.get(value.lower())


def tag_key_problem(key: str) -> str | None:
    """The key rule of ``labels.Instance.Validate`` (``validateTagKey``)."""
    match = _TAG_KEY_RE.fullmatch(key)
    if match is None:
        return f"invalid tag key: {gostrings.shown(key)}"
    prefix, name = match.group(1) or "", match.group(2)
    if prefix and len(prefix) - 1 > 253:
        return f"invalid tag key: {gostrings.shown(key)} (DNS prefix is too long)"
    if len(name) > 63:
        return f"invalid tag key: {gostrings.shown(key)} (name is too long)"
    return None


def tag_value_problem(value: str) -> str | None:
    """The value rule of ``labels.Instance.Validate``."""
    return None if _TAG_VALUE_RE.fullmatch(value) is not None else f"invalid tag value: {gostrings.shown(value)}"
