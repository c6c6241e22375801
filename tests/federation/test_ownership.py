"""Managed names: readable, at most 63 characters, and collision-free across federations.

The names are pinned literally: changing the scheme renames every managed object in every cluster.
"""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from federation.ownership import MAX_MANAGED_NAME, managed_name

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


@pytest.mark.parametrize(
    ("host", "name"),
    [
        ("bar.xyz.svc.cluster-b.local", "bar-xyz-svc-cluster-b-local-9qv7cmchrxqdhvnv"),
        ("reviews.bookinfo.svc.cluster-b.local", "reviews-bookinfo-svc-cluster-b-local-qpxrbpqqb97b7572"),
        ("*.x.com", "wildcard-x-com-7qgxsqqxfhbdq5fm"),
        ("a" * 300, "a" * 46 + "-zbtcfhxv7rgrklt8"),
        ("A_B.c", "a-b-c-5m98zr2cdwvwv4bh"),
        ("---", "host-j6pgxwbxnqvh8bgn"),
    ],
)
def test_names_are_the_dashed_host_and_a_hash(host: str, name: str) -> None:
    assert managed_name(host) == name


def test_the_issues_colliding_hosts_get_different_names() -> None:
    """``.`` → ``-`` alone maps both to new-svc-east-cluster-b-local: one peer could pre-empt the other."""
    first = managed_name("new.svc.east.cluster-b.local")  # peer cluster-b.local
    second = managed_name("new.svc.east-cluster-b.local")  # peer east-cluster-b.local
    assert (first, second) == (
        "new-svc-east-cluster-b-local-zwb78vrzk5lr6gtp",
        "new-svc-east-cluster-b-local-x4gjrwqbq97kb9qv",
    )


def test_every_dot_and_dash_spelling_of_a_host_gets_its_own_name() -> None:
    """All 2**12 ways of joining 13 labels with ``.`` or ``-`` read alike, and none share a name."""
    labels = ["svc", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "cluster"]
    hosts = {
        "".join(label + separator for label, separator in zip(labels, (*separators, ""), strict=True))
        for separators in itertools.product(".-", repeat=len(labels) - 1)
    }
    assert len(hosts) == 4096
    assert len({managed_name(host) for host in hosts}) == 4096


@given(st.text(max_size=400))
def test_any_host_gives_a_dns_label_of_at_most_63_characters(host: str) -> None:
    name = managed_name(host)
    assert len(name) <= MAX_MANAGED_NAME
    assert DNS_LABEL.fullmatch(name), name
    assert managed_name(host) == name
