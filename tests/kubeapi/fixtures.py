"""The ``kube_api`` pytest fixture: a started test double, stopped whatever the test did."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.kubeapi.server import KubeApiDouble


@pytest.fixture
def kube_api() -> Iterator[KubeApiDouble]:
    double = KubeApiDouble()
    double.start()
    try:
        yield double
    finally:
        double.stop()
