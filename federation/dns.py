"""DNS-1123 naming rules, with messages that point at the offending character.

The base texts are apimachinery's, so they read like every other Kubernetes validation error;
we add which character or label is wrong, because "must consist of…" alone leaves the admin to
hunt for a stray underscore.

The patterns are matched with ``fullmatch``: Python's ``$`` also matches before a final newline, so
``re.match(r"^…$")`` would accept ``cluster-b.local\n``.  Every check is linear in its input, and a
label echoed in a message is cut like any other value.
"""

from __future__ import annotations

import functools
import ipaddress
import re

from federation.istio.gostrings import SHOWN_LIMIT, more_bytes

LABEL_MAX = 63
SUBDOMAIN_MAX = 253

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
LABEL_RE = re.compile(_LABEL)  # use with fullmatch
SUBDOMAIN_RE = re.compile(rf"{_LABEL}(\.{_LABEL})*")  # use with fullmatch

LABEL_RULE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
SUBDOMAIN_RULE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)


def _shown_label(label: str) -> str:
    """A label quoted in a message, cut after :data:`SHOWN_LIMIT` characters."""
    if len(label) <= SHOWN_LIMIT:
        return f'"{label}"'
    return f'"{label[:SHOWN_LIMIT]}"' + more_bytes(label[SHOWN_LIMIT:])


_NOT_IN_LABEL = re.compile(r"[^a-z0-9-]")
_NOT_IN_SUBDOMAIN = re.compile(r"[^a-z0-9.-]")


def _first_bad_character(value: str, pattern: re.Pattern[str]) -> str | None:
    match = pattern.search(value)  # at C speed, whatever the length
    if match is None:
        return None
    char = match.group()
    shown = char if char.isprintable() else repr(char)[1:-1]
    return f'character "{shown}" at position {match.start()} is not allowed'


def label_problems(value: str) -> list[str]:
    """Why ``value`` is not a DNS-1123 label; empty when it is one.

    Beyond :data:`LABEL_MAX` characters only the length and the first character that is not allowed
    are reported, so the work stays linear and small whatever the input.
    """
    problems: list[str] = []
    if len(value) > LABEL_MAX:
        problems.append(f"must be no more than {LABEL_MAX} characters")
        where = _first_bad_character(value, _NOT_IN_LABEL)
        return [*problems, f"{LABEL_RULE} ({where})"] if where else problems
    if not LABEL_RE.fullmatch(value):
        where = _first_bad_character(value, _NOT_IN_LABEL)
        if where is None and value:
            where = "it must start and end with a letter or digit"
        problems.append(f"{LABEL_RULE} ({where})" if where else LABEL_RULE)
    return problems


def subdomain_problems(value: str) -> list[str]:
    """Why ``value`` is not a DNS-1123 subdomain; empty when it is one.

    Beyond :data:`SUBDOMAIN_MAX` characters there is no per-label work: only the length and the
    first character that is not allowed are reported.
    """
    problems: list[str] = []
    if len(value) > SUBDOMAIN_MAX:
        problems.append(f"must be no more than {SUBDOMAIN_MAX} characters")
        where = _first_bad_character(value, _NOT_IN_SUBDOMAIN)
        return [*problems, f"{SUBDOMAIN_RULE} ({where})"] if where else problems
    if not SUBDOMAIN_RE.fullmatch(value):
        where = _first_bad_character(value, _NOT_IN_SUBDOMAIN)
        if where is None:
            bad = next((part for part in value.split(".") if not LABEL_RE.fullmatch(part)), None)
            if bad == "":
                where = "it has an empty label: two dots in a row, or a leading or trailing dot"
            elif bad is not None:
                where = f"label {_shown_label(bad)} must start and end with a letter or digit"
            else:
                where = "it must start and end with a letter or digit"
        problems.append(f"{SUBDOMAIN_RULE} ({where})")
    else:
        long_label = next((part for part in value.split(".") if len(part) > LABEL_MAX), None)
        if long_label:
            problems.append(f"label {_shown_label(long_label)} must be no more than {LABEL_MAX} characters")
    return problems


def is_ip(value: str) -> bool:
    """An IP address as Python's :mod:`ipaddress` reads it (Istio's Go rules are ``federation.istio.netip``)."""
    # Every ServiceEntry of a sync asks about the same few gateway addresses: remember short answers.
    return _remembered_is_ip(value) if len(value) <= 64 else _is_ip(value)


@functools.lru_cache(maxsize=4096)
def _remembered_is_ip(value: str) -> bool:
    return _is_ip(value)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def is_dns_name(value: str) -> bool:
    """A host name that a resolver could look up (case-insensitive, optional trailing dot)."""
    name = value.lower().rstrip(".")
    return bool(name) and not subdomain_problems(name) and not name.split(".")[-1].isdigit()


def is_under_domain(host: str, domain: str) -> bool:
    """True when ``host`` equals ``domain`` or is a subdomain of it (case-insensitive).

    A wildcard host ``*.x.domain`` is under ``domain``; ``*.domain`` is too, since it claims
    names of that domain.  A bare ``*`` is under every domain.
    """
    host = host.lower().rstrip(".")
    domain = domain.lower().rstrip(".")
    if host == "*":
        return True
    host = host.removeprefix("*.")
    return host == domain or host.endswith("." + domain)
