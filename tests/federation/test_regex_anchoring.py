"""Every pattern that validates a whole value matches the whole value.

Python's ``$`` also matches before a final newline, so ``re.match(r"^[a-z]+$", "abc\\n")`` succeeds: an
IstioFederation whose trustDomain ended in a newline was admitted.  The product's validating patterns are
now matched with ``fullmatch``; these are the ones outside the admission tables.
"""

from __future__ import annotations

import datetime

import pytest

from certs.errors import CertsError
from certs.istio_ca import generate
from federation import cluster, dns, selectors

HOSTILE = ["\n", "\r\n", "\r", "\x00", "\t"]


@pytest.mark.parametrize("suffix", HOSTILE, ids=repr)
def test_dns_names_and_labels(suffix: str) -> None:
    assert dns.subdomain_problems("cluster-b.local" + suffix)
    assert dns.label_problems("cluster-b" + suffix)
    assert not dns.is_dns_name("cluster-b.local" + suffix)
    assert not dns.subdomain_problems("cluster-b.local")


@pytest.mark.parametrize("suffix", HOSTILE, ids=repr)
def test_the_local_trust_domain_flag(suffix: str) -> None:
    char = repr(suffix[0])[1:-1]
    assert cluster.domain_problem("--local-trust-domain", "cluster-a.local" + suffix) == (
        f"--local-trust-domain {'cluster-a.local' + suffix!r}: a lowercase RFC 1123 subdomain must consist of lower "
        "case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character "
        f'(character "{char}" at position 15 is not allowed)'
    )


@pytest.mark.parametrize("suffix", HOSTILE, ids=repr)
def test_label_selector_values_and_keys(suffix: str) -> None:
    with pytest.raises(selectors.SelectorError):
        selectors._check_value("istio-federation" + suffix)
    with pytest.raises(selectors.SelectorError):
        selectors._check_key("app.kubernetes.io/managed-by" + suffix)
    with pytest.raises(selectors.SelectorError):
        selectors._check_key("app.kubernetes.io" + suffix + "/managed-by")


@pytest.mark.parametrize("suffix", HOSTILE, ids=repr)
def test_the_trust_domain_of_a_generated_istio_ca(suffix: str) -> None:
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    with pytest.raises(CertsError) as raised:
        generate("cluster-a.local" + suffix, key_type="ec", days=1, now=now)
    assert str(raised.value) == (
        f"--trust-domain {'cluster-a.local' + suffix!r} is invalid: use letters, digits, '.', '_' and '-' "
        "(for example cluster-a.local)"
    )
