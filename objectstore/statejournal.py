"""How processes sharing a state directory see each other's writes: the journal.

Writers of other processes (webhook, exporter, reconciler of one local cluster) are seen exactly,
without a sweep: every writer appends the path it wrote to ``.journal`` under the lock, and a
writer taking the lock (or a fresh read) first reads what the others appended since it last looked.
The journal is started afresh (a new file) once it grows past ``JOURNAL_LIMIT``; a process that
finds a new journal sweeps once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

JOURNAL_FILE = ".journal"
JOURNAL_LIMIT = 4 * 1024 * 1024
"""Bytes after which a writer starts the journal afresh (about 40,000 writes)."""


class Journal:
    """The journal of the directory ``root``, as one process reads and appends it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.seen: tuple[int, int] = (0, 0)  # inode and offset up to which we have read it
        self._fd: tuple[int, int] | None = None  # inode, descriptor

    def position(self) -> tuple[int, int]:
        """The journal's inode and size now ((0, 0) when there is none)."""
        try:
            stat = os.stat(self.root / JOURNAL_FILE)
        except OSError:
            return (0, 0)
        return (stat.st_ino, stat.st_size)

    def unread(self) -> set[Path] | None:
        """The paths other processes wrote since we last looked (their journal lines), from now on
        counted as seen; None when the caller must look at every file."""
        path = self.root / JOURNAL_FILE
        inode, offset = self.seen
        if self.position() == (inode, offset):
            return set()  # nobody wrote since we last looked: one stat, the common case
        try:
            with open(path, "rb") as handle:
                current = os.fstat(handle.fileno()).st_ino
                if current == inode:
                    handle.seek(offset)
                    data = handle.read()
                else:
                    data = b""
        except FileNotFoundError:
            current, data = 0, b""
        if current != inode:
            # A new journal (or the first one): we cannot tell what changed before it, so look at everything.
            size = self.position()[1] if current else 0
            self.seen = (current, size)
            return None
        complete = data[: data.rfind(b"\n") + 1]  # a line being appended right now is read next time
        if not complete:
            return set()
        self.seen = (inode, offset + len(complete))
        return {self.root / line for line in complete.decode("utf-8", "replace").splitlines() if line}

    def append(self, paths: Iterable[Path]) -> None:
        """Record our writes for the other processes (called with the store's lock and the directory's
        lock held, after :meth:`unread`, so ``seen`` is the journal's current inode and size)."""
        prefix = len(str(self.root)) + 1
        lines = "".join(f"{str(path)[prefix:]}\n" for path in paths).encode()
        path = self.root / JOURNAL_FILE
        inode, offset = self.seen
        if offset > JOURNAL_LIMIT:
            fresh = self.root / f"{JOURNAL_FILE}.new"
            fresh.write_bytes(b"")
            os.replace(fresh, path)
            inode, offset = self.position()
        if self._fd is not None and self._fd[0] != inode:
            os.close(self._fd[1])  # another process (or we) started a new journal
            self._fd = None
        if self._fd is None:
            descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            current = os.fstat(descriptor).st_ino
            if current != inode:
                offset = 0
            inode = current
            self._fd = (inode, descriptor)
        os.write(self._fd[1], lines)
        self.seen = (inode, offset + len(lines))

    def close(self) -> None:
        """Close the journal file (appending opens it again)."""
        if self._fd is not None:
            os.close(self._fd[1])
            self._fd = None
