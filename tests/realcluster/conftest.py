"""The real-cluster tier: two real kube-apiserver v1.20.2 + etcd pairs on loopback, cluster-a and cluster-b.

The binaries come from ``tests.realcluster.build`` (built on first use, then cached; ``python3
dev.py test`` builds them before pytest starts). ``ISTIO_FEDERATION_SKIP_REAL_CLUSTER=1`` skips
the tier on a developer machine; with ``CI=true`` the tier never skips, and a failed build fails
it. The components run from the container image built from this tree (``tests.image.build``,
shared with the image tier); ``ISTIO_FEDERATION_REAL_CLUSTER_FROM_VENV=1`` runs them from the
virtualenv instead, outside CI. Every process and container started here is stopped and removed
when the session ends.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NoReturn

import pytest

from tests.image.build import session_image
from tests.image.podman import ImageToolError
from tests.realcluster import build, story
from tests.realcluster.cluster import Cluster, stop_all
from tests.realcluster.launch import FROM_VENV, Launcher, wants_image
from tests.realcluster.world import Installation
from tests.support import in_ci

SKIP_ENV = "ISTIO_FEDERATION_SKIP_REAL_CLUSTER"


def needs_earlier_steps(reason: str) -> NoReturn:
    """A test that depends on earlier tests of the session: skipped when run alone (``-k``), but a
    failure under CI, where the whole tier runs and a silent skip would hide the check."""
    if in_ci():
        pytest.fail(f"{reason}: under CI=true the whole tier runs, so this must not happen", pytrace=False)
    pytest.skip(reason)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "realcluster" in item.nodeid.split("::")[0]:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def binaries(pytestconfig: pytest.Config) -> build.Binaries:
    if os.environ.get(SKIP_ENV) == "1":
        if in_ci():
            pytest.fail(f"{SKIP_ENV}=1 under CI=true: CI never skips the real-cluster tier")
        pytest.skip(f"real-cluster tier skipped ({SKIP_ENV}=1)")
    found = build.cached()
    if found is not None:
        return found
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    try:
        with capture.global_and_fixture_disabled():
            return build.build(lambda line: print(line, flush=True))
    except build.BuildError as error:
        pytest.fail(f"the real-cluster tier cannot run: building kube-apiserver failed: {error}")


@dataclass
class Clusters:
    a: Installation
    b: Installation
    launcher: Launcher

    def __iter__(self) -> Iterator[Installation]:
        return iter((self.a, self.b))


@pytest.fixture(scope="session")
def launcher(binaries: build.Binaries) -> Iterator[Launcher]:
    """How components run: the image of this tree (CI, default) or the virtualenv (debugging)."""
    del binaries  # only to skip with the tier, before building an image it would not use
    if not wants_image():
        yield Launcher(image=None)
        return
    try:
        image = session_image()
    except ImageToolError as error:
        hint = "" if in_ci() else f" (set {FROM_VENV}=1 to run the tier from the virtualenv instead)"
        pytest.fail(f"the real-cluster tier runs its components from the image, which failed{hint}:\n{error}")
    found = Launcher(image=image, aliases={f"istio-federation:{image.version}": image.reference})
    try:
        yield found
    finally:
        stop_all()
        found.remove_all()


@pytest.fixture(scope="session")
def clusters(
    binaries: build.Binaries, launcher: Launcher, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Clusters]:
    """cluster-a and cluster-b, each an apiserver + etcd with istio-federation installed (no components yet)."""
    root = tmp_path_factory.mktemp("realcluster")
    started: list[Cluster] = []
    try:
        installations = []
        for name in ("cluster-a", "cluster-b"):
            cluster = Cluster(name, binaries, root / name)
            started.append(cluster)
            cluster.start()
            installation = Installation(cluster, launcher)
            installation.install()
            installations.append(installation)
        world = Clusters(installations[0], installations[1], launcher)
        yield world
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(Installation.stop_all, world))
    finally:
        for cluster in started:
            cluster.stop()
        stop_all()


@pytest.fixture(scope="session")
def scenarios() -> set[str]:
    """Names of the scenarios that ran in this session (for checks that need all of them)."""
    return set()


@pytest.fixture(scope="session")
def federated(clusters: Clusters) -> Clusters:
    """The seed story, run: components up on both clusters under their own ServiceAccounts,
    cluster-b exporting ``xyz/bar``, and an IstioFederation in each cluster pointing at the other.

    cluster-a federates first, so its first private fetch is refused (cluster-b does not know it
    yet) before cluster-b federates back: the order the README's mutual-trust story describes.
    """
    story.start_components(clusters.a)
    story.start_components(clusters.b)
    story.export_bar(clusters.b)
    clusters.a.cluster.apply(story.federation_to(clusters.b))
    story.wait_condition(clusters.a, "cluster-b", "PrivateMetadataExchangeReady", "False")
    clusters.b.cluster.apply(story.federation_to(clusters.a))
    story.wait_imported(clusters.a)
    return clusters
