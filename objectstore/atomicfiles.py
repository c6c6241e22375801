"""Replacing a file so that no reader, and no crash, ever sees half of it; durably when asked.

:func:`atomic_write` writes a temporary file beside the target and renames it over the old one.
The rename is what keeps readers from ever seeing half a file, and it always stays.
``durable=True`` also fsyncs the file before the rename and its directory after it, so the write
survives a power cut once it returns, and a crash leaves the old or the new file, never a torn one.
``durable=False`` skips both: the caller makes a whole batch durable at once with
:func:`sync_directories` (``syncfs`` of the file system, then an fsync of each directory written),
one flush instead of two per file.  Until then a power cut (not a process crash: the kernel holds
the data) may lose the batch's writes, and on file systems without ext4's replace-by-rename
ordering leave a new file empty.  The state directory store only batches the reconciler's bulk
writes, which the next sync rewrites anyway.

Temporary names start with a dot, which the state directory's readers skip.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import itertools
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_temporary_names = itertools.count()


def atomic_write(path: Path, text: str, *, durable: bool = True) -> None:
    """Replace ``path`` with ``text`` by rename; ``durable`` also fsyncs (see the module docstring)."""
    data = text.encode("utf-8")
    temporary = path.parent / f".{path.name}.{os.getpid()}-{threading.get_ident()}-{next(_temporary_names)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(temporary, flags, 0o644)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(temporary, flags, 0o644)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
            if durable:
                os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    if durable:
        fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make a rename or an unlink in ``directory`` durable."""
    try:
        descriptor = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # gone meanwhile: nothing in it to make durable
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some file systems refuse fsync on a directory; the rename is as durable as they make it
    finally:
        os.close(descriptor)


_LIBC: Any = None


def _syncfs(root: Path) -> bool:
    """``syncfs(2)`` on the file system holding ``root``: every dirty page of it, one flush."""
    global _LIBC  # noqa: PLW0603 - loaded once, on first use
    if _LIBC is None:
        name = ctypes.util.find_library("c")
        try:
            _LIBC = ctypes.CDLL(name, use_errno=True) if name else False
        except OSError:
            _LIBC = False
    function = getattr(_LIBC, "syncfs", None) if _LIBC else None
    if function is None:
        return False
    descriptor = os.open(root, os.O_RDONLY)
    try:
        return bool(function(descriptor) == 0)
    finally:
        os.close(descriptor)


def sync_directories(root: Path, directories: Iterable[Path]) -> None:
    """Make a batch of ``durable=False`` writes under ``root`` durable: the file system's data, then
    each directory the batch renamed or unlinked in."""
    if not _syncfs(root):
        os.sync()
    for directory in sorted(set(directories)):
        fsync_directory(directory)
