"""This cluster's own identity settings (domain and UUID), checked the same way by every component.

The manifests ship ``SET-ME`` placeholders; a component started with one refuses to run and says
where to set the value, instead of publishing or federating under a name nobody chose.
"""

from __future__ import annotations

from federation import dns

PLACEHOLDER = "SET-ME"
RESERVED_DOMAIN = "cluster.local"
_WHERE = "set it in ConfigMap istio-federation-settings (manifests/settings.yaml)"


def domain_problem(flag: str, value: str) -> str | None:
    """Why ``value`` cannot be this cluster's domain and trust domain; None when it can."""
    if value.strip().upper() == PLACEHOLDER:
        return f"{flag} is still the placeholder {PLACEHOLDER}: {_WHERE}"
    problems = dns.subdomain_problems(value)
    if problems:
        return f"{flag} {value!r}: {problems[0]}"
    if value == RESERVED_DOMAIN:
        return (
            f"{flag} {value!r}: federated clusters need a unique cluster domain, never {RESERVED_DOMAIN} "
            "(e.g. cluster-a.local)"
        )
    return None


def uuid_problem(flag: str, value: str) -> str | None:
    """Why ``value`` cannot be this cluster's UUID; None when it can (any printable string will do)."""
    if value.strip().upper() == PLACEHOLDER:
        return f"{flag} is still the placeholder {PLACEHOLDER}: {_WHERE} (e.g. the output of uuidgen)"
    if not value.strip() or not value.isprintable() or len(value) > 253:
        return f"{flag} must be a non-empty printable string of at most 253 characters"
    return None
