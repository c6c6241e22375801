"""KubernetesStore against the kube-apiserver test double."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from federation import ownership
from federation.resources import CONFIG_MAP, ISTIO_FEDERATION, SERVICE_ENTRY, KubeObject
from federation.store import Conflict, NotFound, Rejected, Unavailable, Watch
from objectstore.kube import KubernetesStore
from objectstore.kubeapi import connect, parse_warnings
from tests.kubeapi import KubeApiDouble
from tests.kubeapi.test_double import WEBHOOK_SERVICE, Webhook, configuration


def wait_until(predicate: Callable[[], bool], timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def se(name: str, hosts: list[str], namespace: str = "default", **labels: str) -> KubeObject:
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"hosts": hosts},
    }


def federation(name: str = "b") -> KubeObject:
    return {
        "apiVersion": "deckhouse.io/v1alpha1",
        "kind": "IstioFederation",
        "metadata": {"name": name},
        "spec": {"trustDomain": f"cluster-{name}.local", "metadataEndpoint": f"https://meta.{name}.example.com/m/"},
    }


WATCHES = [Watch(ISTIO_FEDERATION), Watch(SERVICE_ENTRY), Watch(CONFIG_MAP, namespace="default")]


@pytest.fixture
def store(kube_api: KubeApiDouble, tmp_path: Path) -> Iterator[KubernetesStore]:
    kube_api.seed(federation())
    kube_api.seed(se("seeded", ["a.cluster-b.local"], **ownership.ownership_labels("b")))
    path = tmp_path / "kubeconfig"
    kube_api.write_kubeconfig(path)
    api_client: Any = connect(str(path), in_cluster=False)
    instance = KubernetesStore(api_client, WATCHES, name="test", watch_timeout=5)
    instance.start()
    assert instance.wait_synced(5)
    yield instance
    instance.stop()
    api_client.close()


def test_initial_sync_fills_cache_and_index(store: KubernetesStore) -> None:
    assert store.synced
    cached = store.get(SERVICE_ENTRY, "default", "seeded")
    assert cached is not None
    assert cached["kind"] == "ServiceEntry"
    assert cached["apiVersion"] == "networking.istio.io/v1"
    assert [f["metadata"]["name"] for f in store.index.federations()] == ["b"]
    assert [s["metadata"]["name"] for s in store.index.service_entries_owned_by("b")] == ["seeded"]
    assert store.index.service_entries_for_host("a.cluster-b.local")[0]["metadata"]["name"] == "seeded"


def test_list_is_sorted_and_filtered(store: KubernetesStore, kube_api: KubeApiDouble) -> None:
    kube_api.seed(se("z", ["z.example.com"], namespace="a"))
    kube_api.seed(se("m", ["m.example.com"], namespace="default", app="x"))
    assert wait_until(lambda: len(store.list(SERVICE_ENTRY)) == 3)
    keys = [(o["metadata"]["namespace"], o["metadata"]["name"]) for o in store.list(SERVICE_ENTRY)]
    assert keys == [("a", "z"), ("default", "m"), ("default", "seeded")]
    assert [o["metadata"]["name"] for o in store.list(SERVICE_ENTRY, "default", "app=x")] == ["m"]
    assert [o["metadata"]["name"] for o in store.list(SERVICE_ENTRY, label_selector=ownership.selector("b"))] == [
        "seeded"
    ]


def test_core_list_items_get_type_fields(store: KubernetesStore, kube_api: KubeApiDouble) -> None:
    created = store.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}})
    assert created["kind"] == "ConfigMap"
    assert wait_until(lambda: store.get(CONFIG_MAP, "default", "c") is not None)
    store.stop()
    relisted = KubernetesStore(store.api, [Watch(CONFIG_MAP, namespace="default")], watch_timeout=5)
    relisted.start()
    try:
        assert relisted.wait_synced(5)
        cached = relisted.get(CONFIG_MAP, "default", "c")
        assert cached is not None
        assert (cached["apiVersion"], cached["kind"]) == ("v1", "ConfigMap")
    finally:
        relisted.stop()


def test_events_update_cache_index_and_subscribers(store: KubernetesStore) -> None:
    seen: list[tuple[str, str]] = []
    lock = threading.Lock()

    def handler(event: str, obj: KubeObject) -> None:
        with lock:
            seen.append((event, obj["metadata"]["name"]))

    def failing(event: str, obj: KubeObject) -> None:
        raise RuntimeError("a broken subscriber must not stop the others")

    store.subscribe(failing)
    store.subscribe(handler)
    created = store.create(se("new", ["n.example.com"]))
    assert wait_until(lambda: store.index.service_entries_for_host("n.example.com") != [])
    created["spec"]["hosts"] = ["m.example.com"]
    store.update(created)
    assert wait_until(lambda: store.index.service_entries_for_host("m.example.com") != [])
    assert store.index.service_entries_for_host("n.example.com") == []
    store.delete(SERVICE_ENTRY, "default", "new")
    assert wait_until(lambda: store.get(SERVICE_ENTRY, "default", "new") is None)
    assert store.index.service_entries_for_host("m.example.com") == []
    assert wait_until(lambda: len(seen) == 3)
    assert seen == [("ADDED", "new"), ("MODIFIED", "new"), ("DELETED", "new")]
    assert store.writes.by_verb == {"create": 1, "update": 1, "delete": 1}


def test_relist_after_410(store: KubernetesStore, kube_api: KubeApiDouble) -> None:
    deleted: list[str] = []
    store.subscribe(lambda event, obj: deleted.append(obj["metadata"]["name"]) if event == "DELETED" else None)
    lists_before = kube_api.count_requests("GET", "/serviceentries", "") - kube_api.count_requests(
        "GET", "/serviceentries", "watch=true"
    )
    kube_api.compact()
    # Changes the store may not see through its watch: the relist must reconcile them.
    kube_api.drop_watches()
    with kube_api._lock:  # remove silently, as if the event was lost with the compaction
        kube_api._objects[SERVICE_ENTRY].pop(("default", "seeded"))
    kube_api.seed(se("after", ["after.example.com"]))
    kube_api.compact()
    kube_api.seed(se("later", ["later.example.com"]))
    kube_api.compact()
    kube_api.drop_watches()
    assert wait_until(lambda: store.relists >= 1)
    assert wait_until(lambda: {o["metadata"]["name"] for o in store.list(SERVICE_ENTRY)} == {"after", "later"})
    assert store.index.service_entries_for_host("a.cluster-b.local") == []
    assert store.index.service_entries_for_host("later.example.com") != []
    assert wait_until(lambda: "seeded" in deleted)
    lists_after = kube_api.count_requests("GET", "/serviceentries", "") - kube_api.count_requests(
        "GET", "/serviceentries", "watch=true"
    )
    assert lists_after > lists_before


def test_dropped_stream_resumes_without_relist(store: KubernetesStore, kube_api: KubeApiDouble) -> None:
    watches_before = kube_api.count_requests("GET", "/serviceentries", "watch=true")
    kube_api.drop_watches()
    kube_api.seed(se("while-away", ["w.example.com"]))
    assert wait_until(lambda: store.get(SERVICE_ENTRY, "default", "while-away") is not None)
    assert store.relists == 0
    assert kube_api.count_requests("GET", "/serviceentries", "watch=true") > watches_before
    resumed = [
        target for method, target in kube_api.request_log if "serviceentries" in target and "watch=true" in target
    ][-1]
    assert "resourceVersion=" in resumed
    assert "resourceVersion=&" not in resumed


def test_get_falls_back_to_read_for_unwatched(store: KubernetesStore, kube_api: KubeApiDouble) -> None:
    kube_api.seed({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "x"}})
    from federation.resources import SECRET

    secret = store.get(SECRET, "x", "s")
    assert secret is not None
    assert secret["kind"] == "Secret"
    assert store.get(SECRET, "x", "missing") is None
    assert store.get(CONFIG_MAP, "other", "c") is None  # other namespace: live read, absent


def test_write_errors_map_to_store_errors(store: KubernetesStore) -> None:
    with pytest.raises(Conflict) as conflict:
        store.create(se("seeded", ["x.example.com"]))
    assert str(conflict.value) == 'serviceentries.networking.istio.io "seeded" already exists'
    assert conflict.value.reason == "AlreadyExists"
    with pytest.raises(NotFound) as missing:
        store.delete(SERVICE_ENTRY, "default", "nope")
    assert str(missing.value) == 'serviceentries.networking.istio.io "nope" not found'
    assert missing.value.code == 404
    bad = federation("c")
    del bad["spec"]["trustDomain"]
    with pytest.raises(Rejected) as rejected:
        store.create(bad)
    assert str(rejected.value) == 'IstioFederation.deckhouse.io "c" is invalid: spec.trustDomain: Required value'
    assert rejected.value.code == 422
    assert rejected.value.status["details"]["causes"][0]["field"] == "spec.trustDomain"


def test_stale_resource_version_is_conflict(store: KubernetesStore) -> None:
    cached = store.get(SERVICE_ENTRY, "default", "seeded")
    assert cached is not None
    first = dict(cached, spec={"hosts": ["one.example.com"]})
    store.update(first)
    with pytest.raises(Conflict) as caught:
        store.update(dict(cached, spec={"hosts": ["two.example.com"]}))
    assert caught.value.reason == "Conflict"
    assert "the object has been modified" in str(caught.value)
    fresh = store.read(SERVICE_ENTRY, "default", "seeded")
    assert fresh is not None
    assert fresh["spec"]["hosts"] == ["one.example.com"]


def test_patch_status(store: KubernetesStore) -> None:
    updated = store.patch_status(ISTIO_FEDERATION, "", "b", {"status": {"importedServices": 3}})
    assert updated["status"] == {"importedServices": 3}
    assert store.writes.by_verb == {"patch": 1}
    assert wait_until(lambda: (store.get(ISTIO_FEDERATION, "", "b") or {}).get("status") == {"importedServices": 3})


def test_admission_denial_and_warnings(store: KubernetesStore, kube_api: KubeApiDouble) -> None:
    webhook = Webhook()
    try:
        kube_api.register_webhooks(configuration(webhook.ca.cert_pem.bytes()),
                                   {WEBHOOK_SERVICE: ("127.0.0.1", webhook.port)})
        webhook.answer = lambda body: (200, Webhook.review(body, allowed=True, warnings=["host looks odd"]))
        store.create(se("warned", ["w.example.com"]))
        assert store.last_warnings == ["host looks odd"]
        # Writes run concurrently: another thread's write leaves this thread's warnings alone.
        webhook.answer = lambda body: (200, Webhook.review(body, allowed=True, warnings=["other thread's"]))
        seen_there: list[list[str]] = []

        def write_elsewhere() -> None:
            store.create(se("elsewhere", ["e.example.com"]))
            seen_there.append(store.last_warnings)

        elsewhere = threading.Thread(target=write_elsewhere)
        elsewhere.start()
        elsewhere.join(timeout=30)
        assert seen_there == [["other thread's"]]
        assert store.last_warnings == ["host looks odd"]
        webhook.answer = lambda body: (200, Webhook.review(
            body, allowed=False, status={"code": 409, "reason": "Conflict", "message": "host is taken"}))
        with pytest.raises(Conflict) as caught:
            store.create(se("denied", ["w.example.com"]))
        assert str(caught.value) == (
            'admission webhook "serviceentries.istio-federation.deckhouse.io" denied the request: host is taken'
        )
        webhook.answer = lambda body: (200, Webhook.review(body, allowed=False, status={"message": "no"}))
        with pytest.raises(Rejected) as rejected:
            store.create(se("denied", ["w.example.com"]))
        assert rejected.value.code == 400
        port = webhook.port
        webhook.stop()
        kube_api.register_webhooks(configuration(webhook.ca.cert_pem.bytes()), {WEBHOOK_SERVICE: ("127.0.0.1", port)})
        with pytest.raises(Unavailable) as unavailable:
            store.create(se("down", ["d.example.com"]))
        assert unavailable.value.code == 500
        assert "failed calling webhook" in str(unavailable.value)
    finally:
        webhook.server.server_close()


def test_unreachable_api_is_unavailable_and_watch_survives(kube_api: KubeApiDouble, tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    kube_api.write_kubeconfig(path)
    api_client: Any = connect(str(path), in_cluster=False)
    api_client.configuration.retries = 0
    kube_api.stop()
    api_client.rest_client = type(api_client.rest_client)(api_client.configuration)
    broken = KubernetesStore(api_client, [Watch(SERVICE_ENTRY)], watch_timeout=5, max_backoff=0.2)
    broken.start()
    try:
        assert not broken.wait_synced(0.5)
        with pytest.raises(Unavailable):
            broken.read(SERVICE_ENTRY, "default", "x")
    finally:
        started = time.monotonic()
        broken.stop()
        assert time.monotonic() - started < 5
        api_client.close()


def test_stop_is_prompt_and_idempotent(store: KubernetesStore) -> None:
    started = time.monotonic()
    store.stop()
    store.stop()
    assert time.monotonic() - started < 5


def test_parse_warnings() -> None:
    assert parse_warnings(['299 - "plain"', '299 - "with \\"quotes\\""', "garbage"]) == [
        "plain", 'with "quotes"'
    ]


class _Stream:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def stream(self, amt: int, decode_content: bool) -> Iterator[bytes]:
        yield from self.chunks


def test_watch_lines_span_chunks_and_an_endless_line_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from objectstore import kubewatch

    chunks = [b'{"a":', b'1}\n\n{"b"', b":2}\n{", b'"c":3}']
    assert list(kubewatch._lines(_Stream(chunks))) == [b'{"a":1}', b'{"b":2}', b'{"c":3}']
    monkeypatch.setattr(kubewatch, "MAX_EVENT_BYTES", 10)
    with pytest.raises(ValueError, match="a watch event is longer than 10 bytes"):
        list(kubewatch._lines(_Stream([b'{"ok":1}\n', b"x" * 6, b"x" * 6])))
