"""Fixtures shared by the reconciler and check tests: the local identity and a Deckhouse-format remote."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from federation.keys import Keypair
from objectstore.statedir import StateDirStore
from tests.deckhouse_fixture import DeckhouseExporter
from tests.reconciler.harness import ca_pem, deckhouse_remote, federation, mesh_config_map, open_state, write_state


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


@pytest.fixture
def store(tmp_path: Path, remote: DeckhouseExporter, server_ca: trustme.CA) -> Iterator[StateDirStore]:
    """A state directory federating cluster-b (``remote``), with the mesh's ConfigMap; stopped after the test."""
    write_state(tmp_path, federation("cluster-b", remote.endpoint, ca=ca_pem(server_ca)), mesh_config_map())
    opened = open_state(tmp_path)
    try:
        yield opened
    finally:
        opened.stop()
