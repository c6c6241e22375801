"""Open the object store a command line asked for: ``--state DIR``, ``--kubeconfig F`` or ``--in-cluster``."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from federation.store import ObjectStore, Watch
from objectstore.statedir import AdmissionHook, StateDirStore, StateError, load_state


@dataclass(frozen=True)
class StoreSource:
    state: Path | None = None
    kubeconfig: str | None = None
    in_cluster: bool = False

    def describe(self) -> str:
        if self.state is not None:
            return f"state directory {self.state}"
        return "in-cluster Kubernetes API" if self.in_cluster else f"Kubernetes API via {self.kubeconfig}"


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
    """Build (not start) the store; the caller starts it where its threads should live."""
    if source.state is not None:
        return StateDirStore(source.state, watches, poll_interval=poll_interval, admission=admission, username=username)
    from objectstore import kube

    client = kube.connect(source.kubeconfig, source.in_cluster)
    store: ObjectStore = kube.KubernetesStore(client, watches)
    return store
