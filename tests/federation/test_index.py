"""The object index: its answers, and that no reader waits while another does work that grows with its input.

Concurrency is proven with events, never with timings: a lookup is paused in the middle of its own work,
and other threads' lookups and writes must complete meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from federation import index as index_module
from federation import ownership
from federation.index import ObjectIndex, domain_candidates

BOUND = 30.0  # seconds a thread may take before the test calls it stuck (a liveness bound, not a timing)


def federation(name: str, trust_domain: str, endpoint: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "deckhouse.io/v1alpha1",
        "kind": "IstioFederation",
        "metadata": {"name": name},
        "spec": {"trustDomain": trust_domain, "metadataEndpoint": endpoint or f"https://{name}.example.com/m/"},
    }


def service_entry(name: str, hosts: list[str], namespace: str = "shop", owner: str | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if owner:
        metadata["labels"] = ownership.ownership_labels(owner)
    return {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": metadata,
            "spec": {"hosts": hosts}}  # fmt: skip


def names(objects: list[dict[str, Any]]) -> list[str]:
    return [obj["metadata"]["name"] for obj in objects]


@pytest.fixture
def index() -> ObjectIndex:
    index = ObjectIndex()
    index.apply("ADDED", federation("b", "cluster-b.local", "https://Meta.B.example.com:443/m/"))
    index.apply("ADDED", federation("east", "east.cluster-b.local"))
    index.apply("ADDED", service_entry("one", ["a.example.com", "b.example.com"]))
    index.apply("ADDED", service_entry("two", ["A.example.com."], namespace="web"))
    index.apply("ADDED", service_entry("mine", ["x.svc.cluster-b.local"], namespace="istio-federation", owner="b"))
    return index


# --- answers -------------------------------------------------------------------------------------------


def test_answers(index: ObjectIndex) -> None:
    assert names(index.federations()) == ["b", "east"]
    assert names(index.federations_by_trust_domain("Cluster-B.local.")) == ["b"]
    assert names(index.federations_by_endpoint("https://meta.b.example.com/m")) == ["b"]
    assert names(index.service_entries_for_host("a.example.com")) == ["one", "two"]
    assert names(index.service_entries_owned_by("b")) == ["mine"]
    assert index.counts() == {"istiofederations": 2, "serviceentries": 3}
    assert (index.federation("east") or {})["spec"]["trustDomain"] == "east.cluster-b.local"
    assert index.federation("west") is None


@pytest.mark.parametrize(
    ("host", "owner"),
    [
        ("bar.svc.cluster-b.local", "b"),
        ("cluster-b.local", "b"),
        ("bar.east.cluster-b.local", "east"),  # the longest trust domain wins
        ("*.east.cluster-b.local", "east"),
        ("BAR.East.Cluster-B.local.", "east"),
        ("bar.notcluster-b.local", None),
        ("a." * 200_000 + "cluster-b.local", "b"),  # far longer than any DNS name, still found
        ("a." * 200_000 + "x", None),
    ],
)
def test_federation_for_host(index: ObjectIndex, host: str, owner: str | None) -> None:
    found = index.federation_for_host(host)
    assert (found["metadata"]["name"] if found else None) == owner


def test_updates_and_deletes_move_the_entries(index: ObjectIndex) -> None:
    index.apply("MODIFIED", service_entry("one", ["c.example.com"]))
    index.apply("DELETED", federation("east", "east.cluster-b.local"))
    assert names(index.service_entries_for_host("a.example.com")) == ["two"]
    assert names(index.service_entries_for_host("c.example.com")) == ["one"]
    assert (index.federation_for_host("x.east.cluster-b.local") or {})["metadata"]["name"] == "b"
    index.apply("DELETED", service_entry("mine", [], namespace="istio-federation"))
    assert index.service_entries_owned_by("b") == []


def test_a_relist_replaces_one_kind_and_keeps_the_other(index: ObjectIndex) -> None:
    index.replace_kind("ServiceEntry", [service_entry("fresh", ["f.example.com"])])
    assert index.service_entries_for_host("a.example.com") == []
    assert names(index.service_entries_for_host("f.example.com")) == ["fresh"]
    assert index.service_entries_owned_by("b") == []
    assert names(index.federations()) == ["b", "east"]
    index.replace_kind("IstioFederation", [federation("west", "west.local")])
    assert index.federation_for_host("x.cluster-b.local") is None
    assert names(index.federations()) == ["west"]
    assert index.counts() == {"istiofederations": 1, "serviceentries": 1}


def test_domain_candidates_are_bounded_whatever_the_host() -> None:
    assert domain_candidates("*.a.B.local.") == ["a.b.local", "b.local", "local"]
    huge = domain_candidates("a." * 262_144 + "x")  # a 512 KiB host
    assert len(huge) == 127
    assert max(map(len, huge)) == 253
    assert len(domain_candidates("." * 100_000 + "x")) == 253  # empty labels: one per dot near the end


# --- only O(1) work under the readers' lock -------------------------------------------------------------


class RecordingLock:
    """Stands in for the index's lock and counts the lookups made while it is held."""

    def __init__(self) -> None:
        self.inner = threading.Lock()
        self.current = 0
        self.most = 0

    def __enter__(self) -> None:
        self.inner.acquire()
        self.current = 0

    def __exit__(self, *exc: object) -> None:
        self.most = max(self.most, self.current)
        self.inner.release()


class CountingDict(dict[Any, Any]):
    def __init__(self, lock: RecordingLock, *args: Any) -> None:
        super().__init__(*args)
        self.lock = lock

    def get(self, key: Any, default: Any = None) -> Any:
        self.lock.current += 1
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.lock.current += 1
        return super().__contains__(key)

    def __getitem__(self, key: Any) -> Any:
        self.lock.current += 1
        return super().__getitem__(key)


def test_a_512_kib_host_costs_at_most_one_lookup_per_possible_trust_domain_under_the_lock(index: ObjectIndex) -> None:
    """Before, the lookup walked all 262,144 labels of such a host with the lock held."""
    lock = RecordingLock()
    index._lock = lock  # type: ignore[assignment]
    index._by_trust_domain = CountingDict(lock, index._by_trust_domain)
    assert index.federation_for_host("a." * 262_144 + "x") is None
    assert lock.most == 127


# --- a paused lookup blocks no one ----------------------------------------------------------------------


class Pause:
    """Wraps a function of the index module so that one call (the one ``when`` picks) stops until released."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str, when: Callable[..., bool]) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        original = getattr(index_module, name)

        def paused(*args: Any) -> Any:
            if when(*args):
                self.entered.set()
                assert self.release.wait(BOUND)
            return original(*args)

        monkeypatch.setattr(index_module, name, paused)


def run(target: Callable[[], Any], name: str = "") -> tuple[threading.Thread, dict[str, Any], threading.Event]:
    result: dict[str, Any] = {}
    done = threading.Event()

    def body() -> None:
        result["value"] = target()
        done.set()

    thread = threading.Thread(target=body, daemon=True, name=name or None)
    thread.start()
    return thread, result, done


@pytest.fixture
def released() -> Iterator[list[Pause]]:
    pauses: list[Pause] = []
    yield pauses
    for pause in pauses:
        pause.release.set()


def test_a_lookup_paused_in_the_middle_of_its_work_blocks_no_other_lookup_nor_the_watch(
    index: ObjectIndex, monkeypatch: pytest.MonkeyPatch, released: list[Pause]
) -> None:
    huge = "a." * 262_144 + "svc.cluster-b.local"
    pause = Pause(monkeypatch, "domain_candidates", lambda host: len(host) > 1000)
    released.append(pause)
    slow, slow_result, slow_done = run(lambda: index.federation_for_host(huge))
    assert pause.entered.wait(BOUND)

    def others() -> list[Any]:
        index.apply("ADDED", service_entry("late", ["late.example.com"]))  # the watch thread's write
        return [
            index.federation_for_host("x.east.cluster-b.local"),
            names(index.service_entries_for_host("late.example.com")),
            names(index.federations()),
        ]

    other, other_result, other_done = run(others)
    assert other_done.wait(BOUND), "a lookup or a write waited for the paused lookup"
    assert not slow_done.is_set()  # the slow lookup is still in the middle of its work
    found, late, federations = other_result["value"]
    assert (found["metadata"]["name"], late, federations) == ("east", ["late"], ["b", "east"])
    pause.release.set()
    assert slow_done.wait(BOUND)
    assert slow_result["value"]["metadata"]["name"] == "b"
    slow.join(BOUND)
    other.join(BOUND)


def test_a_reader_holding_a_borrowed_group_blocks_no_writer_and_sees_a_consistent_list(
    index: ObjectIndex, monkeypatch: pytest.MonkeyPatch, released: list[Pause]
) -> None:
    """The reader sorts its group after the lock; the writer copies that group instead of changing it."""
    pause = Pause(monkeypatch, "_sorted", lambda members: threading.current_thread().name == "reader")
    released.append(pause)
    reader, reader_result, reader_done = run(
        lambda: names(index.service_entries_for_host("a.example.com")), name="reader"
    )
    assert pause.entered.wait(BOUND)

    def write() -> list[str]:
        index.apply("ADDED", service_entry("three", ["a.example.com"], namespace="zzz"))
        index.apply("DELETED", service_entry("one", []))
        return names(index.service_entries_for_host("a.example.com"))

    writer, writer_result, writer_done = run(write)
    assert writer_done.wait(BOUND), "the writer waited for a reader's copying"
    assert writer_result["value"] == ["two", "three"]
    pause.release.set()
    assert reader_done.wait(BOUND)
    assert reader_result["value"] == ["one", "two"]  # what the index held when the reader looked
    reader.join(BOUND)
    writer.join(BOUND)
