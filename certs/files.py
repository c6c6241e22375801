"""Writing certificate and key files so a reader never sees half a file or a readable key."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from certs.errors import CertsError

KEY_MODE = 0o600
PUBLIC_MODE = 0o644


def ensure_directory(path: Path) -> None:
    try:
        # 0700 for a new directory: it will hold private keys.
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise CertsError(f"cannot create directory {path}: {error.strerror or error}") from error
    if not path.is_dir():
        raise CertsError(f"{path} exists and is not a directory")


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write via a temporary file in the same directory and rename it over ``path``.

    The temporary file is created 0600 (mkstemp) and gets ``mode`` before any byte is written, so a
    key is never world-readable, even for a moment; the rename makes the switch atomic.
    """
    try:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise CertsError(f"cannot write {path}: {error.strerror or error}") from error
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise CertsError(f"cannot write {path}: {error.strerror or error}") from error


def read_optional(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None  # absent; creating the directory later reports a path that cannot be one
    except OSError as error:
        raise CertsError(f"cannot read {path}: {error.strerror or error}") from error
