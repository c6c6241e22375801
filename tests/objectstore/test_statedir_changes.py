"""The state directory's change detection costs what changed, not what exists.

Each case counts the files the store parsed (``files_read``), never a time: a change to one file
reads that file alone, the store's own writes read nothing, another process's writes are seen
through the journal without a sweep, and a file caught half-written keeps its last good content.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from federation import resources
from federation.store import Watch
from objectstore import atomicfiles, stateformat, statewriter
from objectstore.statedir import StateDirStore
from tests.reviews import service_entry
from tests.support import wait_until

WATCHES = [Watch(resources.SERVICE_ENTRY)]


def entry_file(root: Path, name: str, host: str | None = None) -> Path:
    path = root / "shop" / "serviceentry" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(service_entry(name, "shop", host or f"{name}.example.com")))
    return path


def populated(root: Path, count: int) -> None:
    for number in range(count):
        entry_file(root, f"se-{number}")


def hosts(store: StateDirStore, name: str) -> list[str]:
    obj = store.get(resources.SERVICE_ENTRY, "shop", name)
    return list(obj["spec"]["hosts"]) if obj else []


@pytest.fixture(params=["inotify", "polling"])
def watching(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def watched(root: Path, mode: str, **kwargs: Any) -> StateDirStore:
    store = StateDirStore(root, WATCHES, poll_interval=0.05, use_inotify=mode == "inotify", **kwargs)
    store.start()
    assert store.watching == mode
    return store


def test_one_changed_file_is_the_only_file_read_again(tmp_path: Path, watching: str) -> None:
    populated(tmp_path, 50)
    store = watched(tmp_path, watching)
    events: list[tuple[str, str]] = []
    store.subscribe(lambda event, obj: events.append((event, resources.name_of(obj))))
    try:
        before = store.files_read
        entry_file(tmp_path, "se-7", "moved.example.com")
        assert wait_until(lambda: hosts(store, "se-7") == ["moved.example.com"], timeout=10)
        assert store.files_read - before == 1
        assert events == [("MODIFIED", "se-7")]
        assert [resources.name_of(o) for o in store.index.service_entries_for_host("moved.example.com")] == ["se-7"]
    finally:
        store.stop()


def test_a_new_file_renamed_into_place_is_seen(tmp_path: Path, watching: str) -> None:
    populated(tmp_path, 5)
    store = watched(tmp_path, watching)
    try:
        # An editor or GitOps tool writes elsewhere (a hidden temporary name), then renames it in.
        temporary = tmp_path / "shop" / "serviceentry" / ".incoming.yaml.tmp"
        temporary.write_text(yaml.safe_dump(service_entry("incoming", "shop", "incoming.example.com")))
        os.replace(temporary, tmp_path / "shop" / "serviceentry" / "incoming.yaml")
        assert wait_until(lambda: hosts(store, "incoming") == ["incoming.example.com"], timeout=10)
        # A whole directory moved in at once: its files produce no events of their own.
        staging = tmp_path.parent / f"{tmp_path.name}-staging" / "serviceentry"
        staging.mkdir(parents=True)
        (staging / "late.yaml").write_text(yaml.safe_dump(service_entry("late", "shop2", "late.example.com")))
        os.replace(staging.parent, tmp_path / "shop2")
        assert wait_until(lambda: store.get(resources.SERVICE_ENTRY, "shop2", "late") is not None, timeout=10)
        (tmp_path / "shop2" / "serviceentry" / "late.yaml").unlink()
        os.rmdir(tmp_path / "shop2" / "serviceentry")
        os.rmdir(tmp_path / "shop2")
        assert wait_until(lambda: store.get(resources.SERVICE_ENTRY, "shop2", "late") is None, timeout=10)
    finally:
        store.stop()


def test_a_half_written_file_keeps_its_last_good_content_until_it_is_whole(tmp_path: Path, watching: str) -> None:
    path = entry_file(tmp_path, "web", "web.example.com")
    entry_file(tmp_path, "other")
    store = watched(tmp_path, watching)
    try:
        whole = yaml.safe_dump(service_entry("web", "shop", "web2.example.com"), default_flow_style=None)
        cut = whole.index("[web2") + 5
        # An editor writing in place, caught in the middle of a flow sequence.
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(whole[:cut])
            handle.flush()
            assert wait_until(lambda: store.last_error is not None, timeout=10)
            assert str(store.last_error).startswith(f"{path}:")
            assert hosts(store, "web") == ["web.example.com"]  # the last good content
            assert store.get(resources.SERVICE_ENTRY, "shop", "other") is not None  # other files unaffected
            handle.write(whole[cut:])
        assert wait_until(lambda: hosts(store, "web") == ["web2.example.com"], timeout=10)
        assert wait_until(lambda: store.last_error is None, timeout=10)
    finally:
        store.stop()


def test_own_writes_update_the_view_without_reading_files(tmp_path: Path, watching: str) -> None:
    populated(tmp_path, 20)
    store = watched(tmp_path, watching)
    try:
        before = store.files_read
        created = store.create(service_entry("mine", "shop", "mine.example.com"))
        created["spec"]["hosts"] = ["mine2.example.com"]
        store.update(created)
        store.delete(resources.SERVICE_ENTRY, "shop", "se-3")
        assert hosts(store, "mine") == ["mine2.example.com"]
        assert store.get(resources.SERVICE_ENTRY, "shop", "se-3") is None
        store.reload()  # a full sweep finds nothing to read either: the view already matches the disk
        assert store.files_read == before
        assert hosts(store, "mine") == ["mine2.example.com"]
    finally:
        store.stop()


def test_another_process_writes_are_read_from_the_journal_exactly(tmp_path: Path) -> None:
    populated(tmp_path, 30)
    ours = StateDirStore(tmp_path, WATCHES, poll_interval=0)  # nothing watches: only the journal tells
    theirs = StateDirStore(tmp_path, WATCHES, poll_interval=0)
    ours.start()
    theirs.start()
    try:
        theirs.create(service_entry("theirs", "shop", "theirs.example.com"))
        current = theirs.get(resources.SERVICE_ENTRY, "shop", "se-1")
        assert current is not None
        current["spec"]["hosts"] = ["changed.example.com"]
        theirs.update(current)
        before = ours.files_read
        # Our next write takes the lock and first reads what they wrote: two files, not thirty.
        ours.create(service_entry("ours", "shop", "ours.example.com"))
        assert ours.files_read - before == 2
        assert hosts(ours, "theirs") == ["theirs.example.com"]
        assert hosts(ours, "se-1") == ["changed.example.com"]
        # And a stale update from our side is refused: it was decided on the disk's view.
        theirs_now = theirs.read(resources.SERVICE_ENTRY, "shop", "ours")
        assert theirs_now is not None
    finally:
        ours.stop()
        theirs.stop()


def test_a_new_journal_makes_other_processes_look_at_every_file_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from objectstore import statejournal

    monkeypatch.setattr(statejournal, "JOURNAL_LIMIT", 200)
    ours = StateDirStore(tmp_path, WATCHES, poll_interval=0)
    theirs = StateDirStore(tmp_path, WATCHES, poll_interval=0)
    ours.start()
    theirs.start()
    try:
        for number in range(12):  # past 200 bytes of journal: a new journal file is started
            theirs.create(service_entry(f"t-{number}", "shop", f"t-{number}.example.com"))
        ours.create(service_entry("ours", "shop", "ours.example.com"))
        assert sorted(resources.name_of(o) for o in ours.list(resources.SERVICE_ENTRY)) == sorted(
            [*(f"t-{number}" for number in range(12)), "ours"]
        )
    finally:
        ours.stop()
        theirs.stop()


def test_batched_writes_are_flushed_once_not_per_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = StateDirStore(tmp_path, WATCHES, poll_interval=0)
    store.start()
    fsyncs: list[int] = []
    flushes: list[Path] = []
    real_fsync = os.fsync

    def counted_fsync(fd: int) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    def counted_syncfs(root: Path) -> bool:
        flushes.append(root)
        return True

    monkeypatch.setattr(os, "fsync", counted_fsync)
    monkeypatch.setattr(atomicfiles, "_syncfs", counted_syncfs)
    try:
        store.create(service_entry("alone", "shop", "alone.example.com"))
        assert len(fsyncs) == 2  # outside a batch: the file before its rename, the directory after
        fsyncs.clear()
        with store.batch():  # a small batch: no syncfs, which would wait for the whole file system
            store.create(service_entry("small", "shop", "small.example.com"))
        assert (len(fsyncs), flushes) == (2, [])
        fsyncs.clear()
        eager = statewriter.EAGER_WRITES
        with store.batch():
            for number in range(eager + 10):
                store.create(service_entry(f"b-{number}", "shop", f"b-{number}.example.com"))
            assert len(fsyncs) == 2 * eager  # the first ones one by one, the rest wait for the flush
            assert flushes == []
            # Each write is whole and in place at once; only its durability waits for the batch.
            assert (tmp_path / "shop" / "serviceentry" / f"b-{eager + 9}.yaml").is_file()
        assert flushes == [tmp_path]
        assert len(fsyncs) == 2 * eager + 1  # and the one directory the batch wrote in
        assert not list(tmp_path.rglob("*.tmp"))
        for number in range(eager + 10):
            loaded = stateformat.load_file(tmp_path / "shop" / "serviceentry" / f"b-{number}.yaml")
            assert [resources.name_of(obj) for obj, _ in loaded] == [f"b-{number}"]
    finally:
        store.stop()


def test_an_object_moved_between_files_is_not_its_own_duplicate(tmp_path: Path) -> None:
    old = entry_file(tmp_path, "web")
    store = StateDirStore(tmp_path, WATCHES, poll_interval=0)
    store.start()
    new = tmp_path / "bundle.yaml"
    new.write_text(old.read_text())
    old.unlink()
    store.reload()
    assert store.get(resources.SERVICE_ENTRY, "shop", "web") is not None
    assert store.last_error is None


def test_a_duplicate_is_refused_until_the_other_copy_goes(tmp_path: Path) -> None:
    first = entry_file(tmp_path, "web", "first.example.com")
    store = StateDirStore(tmp_path, WATCHES, poll_interval=0)
    store.start()
    second = tmp_path / "copy.yaml"
    second.write_text(yaml.safe_dump(service_entry("web", "shop", "second.example.com")))
    with pytest.raises(stateformat.StateError) as raised:
        store.reload()
    assert str(raised.value) == f"{second}:1: ServiceEntry/shop/web is also defined in {first}; keep one of them"
    assert hosts(store, "web") == ["first.example.com"]
    first.unlink()
    store.reload()
    assert hosts(store, "web") == ["second.example.com"]


SAMPLES: list[Any] = [
    service_entry("a", "shop", "a.example.com"),
    {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x", "namespace": "y", "labels": {"a/b": "true", "c": "1.0", "d": "~", "e": ""}},
        "data": {
            "dates": "2024-01-01",
            "time": "2024-01-01T00:00:00Z",
            "octal": "0o17",
            "sexagesimal": "1:20",
            "quote": "it's",
            "colon": "a: b",
            "comment": "a #b",
            "dash": "-",
            "star": "*x",
            "multi": "line one\nline two\n",
            "unicode": "gr\u00fc\u00df \U0001f600 \u2028",
            "float": 1.5,
            "empty": [],
            "nested": [[1, 2], {"k": None, "t": True, "f": False, "n": 0}],
            "yes": "on",
            "null": "null",
        },
    },
]


@pytest.mark.parametrize("obj", SAMPLES, ids=["service-entry", "tricky-strings"])
def test_written_yaml_loads_back_equal(obj: Any) -> None:
    text = stateformat.dump(obj)
    assert yaml.safe_load(text) == obj
    assert [loaded for loaded, _ in stateformat.load_text(text, "x.yaml")] == [obj]


def test_a_fast_loader_error_reads_like_the_pure_python_one() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: y\ndata: {a: [1\n"
    with pytest.raises(stateformat.StateError) as raised:
        stateformat.load_text(text, "objects.yaml")
    assert str(raised.value) == "objects.yaml:7: invalid YAML: expected ',' or ']', but got '<stream end>'"


WRITER = """
import sys
from pathlib import Path
from objectstore.statedir import StateDirStore
from tests.reviews import service_entry

store = StateDirStore(Path(sys.argv[1]), [], poll_interval=0)
store.start()
with store.batch():
    for number in range(100_000):
        store.create(service_entry(f"w-{number}", "shop", f"w-{number}.example.com"))
        if number == 50:
            print("writing", flush=True)
"""


def test_a_writer_killed_in_the_middle_of_a_batch_leaves_only_whole_files(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    from tests.support import REPO_ROOT

    state = tmp_path / "state"
    state.mkdir()
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(state)], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline() == "writing\n"
        writer.send_signal(signal.SIGKILL)
    finally:
        writer.wait(timeout=30)
    store = StateDirStore(state, WATCHES, poll_interval=0)
    store.start()  # every file it reads parses: a rename either happened whole or not at all
    names = {resources.name_of(obj) for obj in store.list(resources.SERVICE_ENTRY)}
    assert len(names) > 50
    assert names == {f"w-{number}" for number in range(len(names))}
    files = list((state / "shop" / "serviceentry").glob("*.yaml"))
    assert len(files) == len(names)
