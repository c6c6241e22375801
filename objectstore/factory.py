"""Open the object store a command line asked for: ``--state DIR``, ``--kubeconfig F`` or ``--in-cluster``.

The Kubernetes API is asked once before it is relied on (:mod:`objectstore.preflight`): the first
time a process opens a store on an API server, or earlier in :func:`source_problem`, which the
servers call before gunicorn forks (their workers, forked after that check, do not repeat it).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from federation.store import ObjectStore, Watch
from objectstore import preflight
from objectstore.admissionhook import AdmissionHook
from objectstore.statedir import StateDirStore
from objectstore.statefiles import load_state
from objectstore.stateformat import StateError


@dataclass(frozen=True)
class StoreSource:
    state: Path | None = None
    kubeconfig: str | None = None
    in_cluster: bool = False

    def describe(self) -> str:
        if self.state is not None:
            return f"state directory {self.state}"
        return "in-cluster Kubernetes API" if self.in_cluster else f"Kubernetes API via {self.kubeconfig}"

    @property
    def credentials(self) -> preflight.Credentials:
        return preflight.Credentials(kubeconfig=self.kubeconfig, in_cluster=self.in_cluster)


# The API servers this process has already asked (kubeconfig, in-cluster): asked once per process.
_verified: set[preflight.Credentials] = set()


def verify_api(source: StoreSource) -> None:
    """Ask the API server of ``source`` once per process (nothing for a state directory).

    Raises :class:`objectstore.preflight.ApiServerProblem`: one line naming the kubeconfig or the
    server address, within about ten seconds.
    """
    if source.state is not None or source.credentials in _verified:
        return
    preflight.verify(source.credentials)
    _verified.add(source.credentials)


def add_arguments(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument(
        "--state", type=Path, metavar="DIR", help="a directory of YAML files holding the cluster's objects"
    )
    group.add_argument("--kubeconfig", metavar="FILE", help="talk to the Kubernetes API with this kubeconfig")
    group.add_argument(
        "--in-cluster", action="store_true", help="talk to the Kubernetes API as this pod's ServiceAccount"
    )


def source_from_args(args: argparse.Namespace) -> StoreSource:
    return StoreSource(state=args.state, kubeconfig=args.kubeconfig, in_cluster=bool(args.in_cluster))


def source_problem(source: StoreSource) -> str | None:
    """Why the store cannot be opened, found before any server starts (so it is one clear line,
    not a worker that fails to boot); None when it looks usable."""
    if source.kubeconfig is not None and not Path(source.kubeconfig).is_file():
        return f"--kubeconfig {source.kubeconfig}: no such file"
    if source.state is None:
        try:
            verify_api(source)
        except preflight.ApiServerProblem as problem:
            return f"{preflight.FLAGS}: {problem}"
        return None
    try:
        load_state(source.state)
    except StateError as error:
        return f"--state: {error}"
    return None


def open_store(
    source: StoreSource,
    watches: list[Watch],
    *,
    admission: AdmissionHook | None = None,
    username: str = "kubernetes-admin",
    poll_interval: float = 1.0,
) -> ObjectStore:
    """Build (not start) the store; the caller starts it where its threads should live.

    For the Kubernetes API, the server is asked first (:func:`verify_api`): an unusable kubeconfig or
    an unreachable server raises :class:`objectstore.preflight.ApiServerProblem` with one line.
    """
    if source.state is not None:
        return StateDirStore(source.state, watches, poll_interval=poll_interval, admission=admission, username=username)
    from objectstore import kube

    verify_api(source)
    client = preflight.connect(source.credentials)
    store: ObjectStore = kube.KubernetesStore(client, watches)
    return store
