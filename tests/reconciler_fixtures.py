"""Fixtures shared by the reconciler and check tests: the local identity and a Deckhouse-format remote."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trustme

from federation.keys import Keypair
from tests.deckhouse_fixture import DeckhouseExporter
from tests.test_reconciler_support import deckhouse_remote


@pytest.fixture
def server_ca() -> trustme.CA:
    """The CA of the remote's metadata endpoint (what spec.metadata.ca holds)."""
    return trustme.CA()


@pytest.fixture
def keypair() -> Keypair:
    """This cluster's Ed25519 identity."""
    return Keypair.generate()


@pytest.fixture
def remote(server_ca: trustme.CA, keypair: Keypair) -> Iterator[DeckhouseExporter]:
    with deckhouse_remote(server_ca, keypair) as exporter:
        yield exporter
