"""DNS-1123 naming rules, with messages that point at the offending character.

The base texts are apimachinery's, so they read like every other Kubernetes validation error;
we add which character or label is wrong, because "must consist of…" alone leaves the admin to
hunt for a stray underscore.
"""

from __future__ import annotations

import ipaddress
import re

LABEL_MAX = 63
SUBDOMAIN_MAX = 253

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
LABEL_RE = re.compile(rf"^{_LABEL}$")
SUBDOMAIN_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")

LABEL_RULE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
SUBDOMAIN_RULE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)


def _first_bad_character(value: str, allowed: str) -> str | None:
    for position, char in enumerate(value):
        if not (char.isascii() and (char.islower() or char.isdigit() or char in allowed)):
            shown = char if char.isprintable() else repr(char)[1:-1]
            return f'character "{shown}" at position {position} is not allowed'
    return None


def label_problems(value: str) -> list[str]:
    """Why ``value`` is not a DNS-1123 label; empty when it is one."""
    problems: list[str] = []
    if len(value) > LABEL_MAX:
        problems.append(f"must be no more than {LABEL_MAX} characters")
    if not LABEL_RE.match(value):
        where = _first_bad_character(value, "-")
        if where is None and value:
            where = "it must start and end with a letter or digit"
        problems.append(f"{LABEL_RULE} ({where})" if where else LABEL_RULE)
    return problems


def subdomain_problems(value: str) -> list[str]:
    """Why ``value`` is not a DNS-1123 subdomain; empty when it is one."""
    problems: list[str] = []
    if len(value) > SUBDOMAIN_MAX:
        problems.append(f"must be no more than {SUBDOMAIN_MAX} characters")
    if not SUBDOMAIN_RE.match(value):
        where = _first_bad_character(value, "-.")
        if where is None:
            bad = next((part for part in value.split(".") if not LABEL_RE.match(part)), None)
            if bad == "":
                where = "it has an empty label: two dots in a row, or a leading or trailing dot"
            elif bad is not None:
                where = f'label "{bad}" must start and end with a letter or digit'
            else:
                where = "it must start and end with a letter or digit"
        problems.append(f"{SUBDOMAIN_RULE} ({where})")
    else:
        long_label = next((part for part in value.split(".") if len(part) > LABEL_MAX), None)
        if long_label:
            problems.append(f'label "{long_label}" must be no more than {LABEL_MAX} characters')
    return problems


def is_ip(value: str) -> bool:
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
