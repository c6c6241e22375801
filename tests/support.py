"""Helpers shared by tests: free ports, bounded waiting, and real server processes.

Servers are started as real ``istio-federation`` processes (gunicorn needs the main thread for
its signal handling), talk only to 127.0.0.1, and are always stopped by the fixture that made them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(predicate: Callable[[], bool], *, timeout: float = 10.0, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes; never loops forever."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "istio_federation.cli", *args]


class ServerProcess:
    """A real ``istio-federation … serve`` process; use as a context manager."""

    def __init__(self, args: Sequence[str], *, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.args = list(args)
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ServerProcess:
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            cli_command(*self.args), stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=self.env
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()
        code = self.process.returncode
        self.process = None
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_http(self, url: str, *, context: ssl.SSLContext | None = None, timeout: float = 20.0) -> None:
        """Wait until ``url`` answers 200; fail with the server's log if it never does."""

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log()}")
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(url, context=context, timeout=2) as response,
            ):
                return bool(response.status == 200)
            return False

        if not wait_until(ready, timeout=timeout, interval=0.1):
            raise AssertionError(f"{url} never became ready:\n{self.log()}")


@contextlib.contextmanager
def serving(args: Sequence[str], *, log_path: Path, env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    with ServerProcess(args, log_path=log_path, env=env) as server:
        yield server


def in_ci() -> bool:
    """Whether CI runs this (``CI=true``): there the real-cluster and image tiers never skip.
    ``dev.py`` reads the variable the same way, before any of this can be imported."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")
