"""The state-directory backend: reading, atomic writing, conflicts, errors that name file and line."""

from __future__ import annotations

import copy
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from federation import ownership, resources
from federation.store import Conflict, NotFound, Rejected, Watch
from objectstore.admissionhook import WriteVerdict
from objectstore.statedir import StateDirStore
from objectstore.stateformat import StateError
from tests.reviews import federation, service_entry
from tests.support import wait_until


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def started(root: Path, **kwargs: Any) -> StateDirStore:
    store = StateDirStore(root, [Watch(resources.ISTIO_FEDERATION), Watch(resources.SERVICE_ENTRY)], **kwargs)
    store.start()
    return store


def test_reads_every_yaml_file_recursively_with_several_documents(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", yaml.safe_dump(federation()))
    write(
        tmp_path / "nested" / "deeper" / "entries.yml",
        yaml.safe_dump(service_entry("a", "shop", "a.example.com"))
        + "---\n"
        + yaml.safe_dump(service_entry("b", "shop", "b.example.com")),
    )
    write(tmp_path / "notes.txt", "not yaml: [")
    store = started(tmp_path, poll_interval=0)
    assert [resources.name_of(o) for o in store.list(resources.SERVICE_ENTRY)] == ["a", "b"]
    assert store.get(resources.ISTIO_FEDERATION, "", "cluster-b") is not None
    assert [resources.name_of(o) for o in store.index.service_entries_for_host("B.example.com")] == ["b"]
    assert store.synced


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: y\ndata: {a: [1\n",
            "{file}:7: invalid YAML: expected ',' or ']', but got '<stream end>'",
        ),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok, namespace: y}\n---\n- just\n- a list\n",
            "{file}:5: expected a Kubernetes object (a mapping), got list",
        ),
        (
            "kind: ConfigMap\nmetadata: {name: x, namespace: y}\n",
            "{file}:1: object has no apiVersion; every object needs apiVersion and kind",
        ),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {namespace: y}\n", "{file}:1: ConfigMap has no metadata.name"),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
            "{file}:1: ConfigMap 'x' is namespaced but has no metadata.namespace",
        ),
        ("key: [unclosed\n", "{file}:2: invalid YAML: expected ',' or ']', but got '<stream end>'"),
    ],
    ids=["bad-yaml", "not-a-mapping", "no-api-version", "no-name", "no-namespace", "bad-yaml-first-line"],
)
def test_malformed_file_is_an_error_naming_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = write(tmp_path / "objects.yaml", content)
    with pytest.raises(StateError) as raised:
        started(tmp_path, poll_interval=0)
    assert str(raised.value) == message.format(file=path)


def test_the_same_object_in_two_files_is_an_error(tmp_path: Path) -> None:
    first = write(tmp_path / "one.yaml", yaml.safe_dump(federation()))
    second = write(tmp_path / "two.yaml", yaml.safe_dump(federation()))
    with pytest.raises(StateError) as raised:
        started(tmp_path, poll_interval=0)
    assert str(raised.value) == f"{second}:1: IstioFederation/cluster-b is also defined in {first}; keep one of them"


def test_writers_use_one_file_per_object_at_the_canonical_path(tmp_path: Path) -> None:
    store = started(tmp_path, poll_interval=0)
    created = store.create(service_entry("web", "shop", "web.example.com"))
    store.create(federation())
    se_path = tmp_path / "shop" / "serviceentry" / "web.yaml"
    if_path = tmp_path / "_cluster" / "istiofederation" / "cluster-b.yaml"
    assert se_path.is_file()
    assert if_path.is_file()
    on_disk = yaml.safe_load(se_path.read_text())
    assert on_disk["spec"]["hosts"] == ["web.example.com"]
    assert "resourceVersion" not in on_disk["metadata"]  # derived from content, never stored
    assert created["metadata"]["generation"] == 1
    assert created["metadata"]["uid"]
    assert not list(tmp_path.rglob("*.tmp"))
    assert store.writes.by_verb == {"create": 2}


def test_update_with_a_stale_resource_version_is_a_conflict(tmp_path: Path) -> None:
    store = started(tmp_path, poll_interval=0)
    first = store.create(federation())
    changed = copy.deepcopy(first)
    changed["spec"]["metadata"] = {"insecureSkipVerify": True}
    updated = store.update(changed)
    assert updated["metadata"]["generation"] == 2
    assert updated["metadata"]["resourceVersion"] != first["metadata"]["resourceVersion"]
    with pytest.raises(Conflict) as raised:
        store.update(first)
    assert raised.value.code == 409
    assert raised.value.status["reason"] == "Conflict"
    assert str(raised.value) == (
        'Operation cannot be fulfilled on istiofederations.deckhouse.io "cluster-b": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )


def test_create_of_an_existing_object_and_missing_objects(tmp_path: Path) -> None:
    store = started(tmp_path, poll_interval=0)
    store.create(federation())
    with pytest.raises(Conflict) as exists:
        store.create(federation())
    assert str(exists.value) == 'istiofederations.deckhouse.io "cluster-b" already exists'
    assert exists.value.status["reason"] == "AlreadyExists"
    with pytest.raises(NotFound) as missing:
        store.delete(resources.SERVICE_ENTRY, "shop", "nope")
    assert str(missing.value) == 'serviceentries.networking.istio.io "nope" not found'
    assert missing.value.status["details"] == {"name": "nope", "group": "networking.istio.io", "kind": "serviceentries"}


def test_status_is_a_subresource_for_istio_federation(tmp_path: Path) -> None:
    store = started(tmp_path, poll_interval=0)
    created = store.create(federation())
    patched = store.patch_status(
        resources.ISTIO_FEDERATION, "", "cluster-b", {"status": {"metadataCache": {"public": {"clusterUUID": "u"}}}}
    )
    assert patched["status"] == {"metadataCache": {"public": {"clusterUUID": "u"}}}
    assert patched["metadata"]["generation"] == 1  # status changes never bump the generation
    attempt = copy.deepcopy(patched)
    attempt["status"] = {"hijacked": True}
    after = store.update(attempt)
    assert after["status"] == {"metadataCache": {"public": {"clusterUUID": "u"}}}
    removed = store.patch_status(resources.ISTIO_FEDERATION, "", "cluster-b", {"status": {"metadataCache": None}})
    assert removed["status"] == {}
    assert created["metadata"]["uid"] == removed["metadata"]["uid"]


def test_objects_in_multi_document_files_are_updated_and_deleted_in_place(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bundle.yaml",
        yaml.safe_dump(service_entry("a", "shop", "a.example.com"))
        + "---\n"
        + yaml.safe_dump(service_entry("b", "shop", "b.example.com"))
        + "---\n"
        + yaml.safe_dump(service_entry("c", "shop", "c.example.com")),
    )
    store = started(tmp_path, poll_interval=0)
    b = store.get(resources.SERVICE_ENTRY, "shop", "b")
    assert b is not None
    b["spec"]["hosts"] = ["b2.example.com"]
    store.update(b)
    store.delete(resources.SERVICE_ENTRY, "shop", "a")
    documents = list(yaml.safe_load_all(path.read_text()))
    assert [d["metadata"]["name"] for d in documents] == ["b", "c"]
    assert documents[0]["spec"]["hosts"] == ["b2.example.com"]
    c = store.get(resources.SERVICE_ENTRY, "shop", "c")
    assert c is not None
    c["spec"]["hosts"] = ["c2.example.com"]
    store.update(c)  # positions moved up after the delete: c must still land on its own document
    assert [d["spec"]["hosts"] for d in yaml.safe_load_all(path.read_text())] == [
        ["b2.example.com"],
        ["c2.example.com"],
    ]


def test_label_selectors_filter_lists(tmp_path: Path) -> None:
    store = started(tmp_path, poll_interval=0)
    managed = service_entry("bar-xyz-svc-cluster-b-local", "istio-federation", "bar.xyz.svc.cluster-b.local")
    managed["metadata"]["labels"] = ownership.ownership_labels("cluster-b")
    store.create(managed)
    store.create(service_entry("mine", "istio-federation", "mine.example.com"))
    owned = store.list(resources.SERVICE_ENTRY, "istio-federation", ownership.selector("cluster-b"))
    assert [resources.name_of(o) for o in owned] == ["bar-xyz-svc-cluster-b-local"]
    assert store.list(resources.SERVICE_ENTRY, "istio-federation", ownership.selector("cluster-c")) == []


def test_another_process_writing_is_seen_by_polling_with_events(tmp_path: Path) -> None:
    store = started(tmp_path, poll_interval=0.05)
    events: list[tuple[str, str]] = []
    store.subscribe(lambda event, obj: events.append((event, resources.name_of(obj))))
    try:
        path = write(tmp_path / "x.yaml", yaml.safe_dump(service_entry("x", "shop", "x.example.com")))
        assert wait_until(lambda: ("ADDED", "x") in events, timeout=5)
        assert store.index.service_entries_for_host("x.example.com")
        os.unlink(path)
        assert wait_until(lambda: ("DELETED", "x") in events, timeout=5)
        assert store.index.service_entries_for_host("x.example.com") == []
    finally:
        store.stop()


def test_a_broken_edit_keeps_the_last_good_view(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path / "x.yaml", yaml.safe_dump(service_entry("x", "shop", "x.example.com")))
    store = started(tmp_path, poll_interval=0.05)
    try:
        path.write_text("apiVersion: [broken\n")
        assert wait_until(lambda: store.last_error is not None, timeout=5)
        assert store.get(resources.SERVICE_ENTRY, "shop", "x") is not None
        assert f"state directory not reloaded, keeping the last good view: {path}:2: invalid YAML" in caplog.text
    finally:
        store.stop()


class DenyManaged:
    """An admission hook standing in for the webhook: it denies one object and warns on others."""

    def review(
        self,
        *,
        operation: str,
        resource: resources.Resource,
        obj: dict[str, Any] | None,
        old: dict[str, Any] | None,
        username: str,
    ) -> WriteVerdict:
        subject = obj or old or {}
        if resources.name_of(subject) == "denied":
            return WriteVerdict(allowed=False, message='admission webhook "x" denied the request: no', code=422)
        return WriteVerdict(allowed=True, warnings=(f"{operation} by {username}",))


def test_writes_go_through_admission(tmp_path: Path) -> None:
    store = started(tmp_path, poll_interval=0, admission=DenyManaged(), username="system:serviceaccount:x:y")
    store.create(service_entry("ok", "shop", "ok.example.com"))
    assert store.last_warnings == ("CREATE by system:serviceaccount:x:y",)
    with pytest.raises(Rejected) as raised:
        store.create(service_entry("denied", "shop", "d.example.com"))
    assert raised.value.code == 422
    assert str(raised.value) == 'admission webhook "x" denied the request: no'
    assert not (tmp_path / "shop" / "serviceentry" / "denied.yaml").exists()
    assert store.writes.by_verb == {"create": 1}


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StateError) as raised:
        started(tmp_path / "absent", poll_interval=0)
    assert (
        str(raised.value)
        == f"{tmp_path / 'absent'}: state directory does not exist (create it, or point --state at it)"
    )
