"""Noticing changes to a state directory: a background thread, on inotify where it can.

Changes are noticed by inotify (``watchfiles``, in an ordinary thread: its blocking waits release
the GIL and never touch a gevent hub), which names the changed paths.  inotify can drop events when
its queue overflows, so a slow sweep (``rescan_interval``, one ``stat`` per file, reading only what
changed) backs it up.  Where inotify is unavailable the sweep runs every ``poll_interval``.

The store's own writes are most of the events: hidden names (its temporary files, the lock and the
journal) are dropped first, and a file whose signature is still the one the view recorded
(``unchanged``) is the echo of our own write, and is not read again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

log = logging.getLogger(__name__)


class Watcher:
    """Calls ``refresh`` with the paths that changed under ``root`` and ``sweep`` now and then,
    from its own thread between :meth:`start` and :meth:`stop`; see the module docstring."""

    def __init__(
        self,
        root: Path,
        *,
        poll_interval: float,
        rescan_interval: float,
        use_inotify: bool,
        sweep: Callable[[], None],
        refresh: Callable[[Iterable[Path]], None],
        unchanged: Callable[[str], bool],
    ) -> None:
        self.root = root
        self.poll_interval = poll_interval
        self.rescan_interval = rescan_interval
        self.use_inotify = use_inotify
        self._sweep = sweep
        self._refresh = refresh
        self._unchanged = unchanged
        self.watching = ""  # "inotify" or "polling" once the thread runs
        self._stopping = threading.Event()
        self._watch_ready = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (unless it runs already) and wait until the watch is in place."""
        if self._thread is None:
            self._stopping.clear()
            self._watch_ready.clear()
            self._thread = threading.Thread(target=self._run, name=f"statedir:{self.root}", daemon=True)
            self._thread.start()
            # Changes made once start() returned are noticed: the watch is in place (bounded wait).
            self._watch_ready.wait(10)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=self.poll_interval + 5)
            self._thread = None

    def _run(self) -> None:
        try:
            if self.use_inotify and self._watch_inotify():
                return
            self.watching = "polling"
            self._sweep()  # what changed while the thread started
        finally:
            self._watch_ready.set()
        while not self._stopping.wait(self.poll_interval):
            self._sweep()

    def _watch_inotify(self) -> bool:
        """Follow inotify until stopped (True), or return False when it cannot be used."""
        try:
            from watchfiles._rust_notify import RustNotify  # watchfiles' documented Rust backend
        except ImportError:
            log.info("watchfiles is not installed: polling %s every %gs", self.root, self.poll_interval)
            return False
        step = max(10, min(50, int(self.poll_interval * 1000)))
        timeout = max(step, min(1000, int(self.rescan_interval * 1000)))
        try:
            notify = RustNotify([str(self.root)], False, False, 0, True, False)
        except (OSError, RuntimeError) as error:
            log.warning("cannot watch %s with inotify (%s): polling every %gs", self.root, error, self.poll_interval)
            return False
        try:
            self.watching = "inotify"
            self._sweep()  # what changed between the first load and the watch
            self._watch_ready.set()
            next_sweep = time.monotonic() + self.rescan_interval
            while not self._stopping.is_set():
                changes = notify.watch(max(step, 500), step, timeout, self._stopping)
                if isinstance(changes, set) and changes:
                    # Our own temporary files are most of the events: drop hidden names before anything else.
                    paths = {
                        path
                        for _, path in changes
                        if not path.rpartition("/")[2].startswith(".") and not self._unchanged(path)
                    }
                    if paths:
                        self._refresh(Path(path) for path in paths)
                if time.monotonic() >= next_sweep:
                    # inotify drops events when its queue overflows: look at every file's signature.
                    self._sweep()
                    next_sweep = time.monotonic() + self.rescan_interval
        except (OSError, RuntimeError) as error:
            if self._stopping.is_set():
                return True
            log.warning("inotify failed on %s (%s): polling every %gs", self.root, error, self.poll_interval)
            return False
        finally:
            notify.close()
        return True
