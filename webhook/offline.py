"""``istio-federation validate``: admission without a cluster, for CI and GitOps previews.

It runs the very validators, index and messages the server uses, over files, as the apiserver
would: each document is a CREATE, or an UPDATE when the state already holds it, and documents
admitted earlier in the run count as existing for the ones after them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from federation import resources
from federation.index import ObjectIndex
from federation.resources import KubeObject, ObjectKey
from federation.validation import registry
from federation.validation.attributes import DEFAULT_RECONCILER_USERNAME, Attributes, Context
from objectstore.statedir import StateDirStore, StateError, load_text

EXIT_ACCEPTED = 0
EXIT_DENIED = 1
EXIT_USAGE = 2


@dataclass(frozen=True)
class OfflineOptions:
    local_trust_domain: str
    files: list[str]
    state: Path | None = None
    username: str = "kubernetes-admin"
    reconciler_username: str = DEFAULT_RECONCILER_USERNAME
    ip_autoallocate: bool = False


def _read_documents(files: list[str], stdin: TextIO) -> list[tuple[KubeObject, str]]:
    documents: list[tuple[KubeObject, str]] = []
    for name in files:
        if name == "-":
            text, where = stdin.read(), "<stdin>"
        else:
            try:
                text = Path(name).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise StateError(f"{name}: cannot read: {error}") from error
            where = name
        documents.extend((obj, f"{where}:{line}") for obj, line in load_text(text, where, require_namespace=False))
    return documents


def run(options: OfflineOptions, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    try:
        existing: dict[ObjectKey, KubeObject] = {}
        index = ObjectIndex()
        if options.state is not None:
            store = StateDirStore(options.state, poll_interval=0)
            store.start()
            index = store.index
            for resource in resources.ALL:
                for obj in store.list(resource):
                    existing[ObjectKey.of(obj)] = obj
        documents = _read_documents(options.files, sys.stdin)
    except StateError as error:
        print(f"error: {error}", file=err)
        return EXIT_USAGE
    if not documents:
        print("error: no objects found in the given files", file=err)
        return EXIT_USAGE
    context = Context(
        index=index,
        local_trust_domain=options.local_trust_domain,
        reconciler_username=options.reconciler_username,
        ip_autoallocate=options.ip_autoallocate,
    )
    denied = 0
    for obj, _where in documents:
        descriptor = resources.by_kind(str(obj.get("kind")))
        if descriptor is not None and descriptor.namespaced and not resources.namespace_of(obj):
            obj["metadata"]["namespace"] = "default"  # what kubectl does without -n
        key = ObjectKey.of(obj)
        old = existing.get(key)
        attributes = Attributes(
            operation="UPDATE" if old is not None else "CREATE",
            group=descriptor.group if descriptor else str(obj.get("apiVersion", "")).rpartition("/")[0],
            resource=descriptor.plural if descriptor else str(obj.get("kind", "")).lower(),
            kind=key.kind,
            name=key.name,
            namespace=key.namespace,
            obj=obj,
            old=old,
            username=options.username,
        )
        decision = registry.admit(attributes, context)
        label = f"{key.kind}/{key.namespace}/{key.name}" if key.namespace else f"{key.kind}/{key.name}"
        if decision.allowed:
            print(f"{label} accepted", file=out)
            existing[key] = obj
            index.apply("MODIFIED" if old is not None else "ADDED", obj)
        else:
            denied += 1
            webhook = registry.webhook_name(attributes.group, attributes.resource)
            print(f'{label}: admission webhook "{webhook}" denied the request: {decision.message}', file=out)
        for warning in decision.warnings:
            print(f"Warning: {warning}", file=out)
    return EXIT_DENIED if denied else EXIT_ACCEPTED
