"""Containers of the built image for tests: started attached, logged to a file, always removed.

A :class:`Container` runs ``podman run --rm`` in the foreground (so its output lands in a log file
and SIGTERM reaches the component through podman's signal proxy, as the kubelet's would), and its
exit removes the container whatever happened (``podman rm --force``). Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path

from tests.image.build import IMAGE_GID, IMAGE_UID, BuiltImage
from tests.image.podman import podman_command
from tests.support import wait_until

STOP_TIMEOUT = 30.0
START_TIMEOUT = 90.0


def container_name(component: str) -> str:
    return f"istio-federation-test-{component}-{uuid.uuid4().hex[:10]}"


def readable_by_image_user(*paths: Path, mode: int = 0o440) -> None:
    """Give files to the image's group, as a Secret volume with ``fsGroup`` and ``defaultMode`` does."""
    for path in paths:
        os.chown(path, 0, IMAGE_GID)
        path.chmod(0o750 if path.is_dir() else mode)


def owned_by_image_user(root: Path) -> None:
    """A directory tree the image's user may write (a state directory the component updates)."""
    for directory, _, files in os.walk(root):
        os.chown(directory, IMAGE_UID, IMAGE_GID)
        for name in files:
            os.chown(Path(directory) / name, IMAGE_UID, IMAGE_GID)


def podman_output(*args: str, timeout: float = 60.0) -> str:
    result = subprocess.run(podman_command(*args), capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"podman {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
    return result.stdout


def run_to_completion(
    image: BuiltImage, *command: str, options: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    """A one-shot container (``--version``, a probe script), run as :meth:`BuiltImage.run_argv` runs it."""
    name = container_name("once")
    argv = image.run_argv(*command, name=name, options=options)
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)
    finally:
        remove(name)


def remove(name: str) -> None:
    subprocess.run(
        podman_command("rm", "--force", "--ignore", "--time", "5", name),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class Container:
    """One running container of the image; use as a context manager."""

    def __init__(
        self,
        image: BuiltImage,
        component: str,
        command: Sequence[str],
        *,
        log_path: Path,
        options: Sequence[str] = (),
        tmpfs: Sequence[str] = ("/tmp",),
    ) -> None:
        self.name = container_name(component)
        self.argv = image.run_argv(*command, name=self.name, options=options, tmpfs=tmpfs)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    def __enter__(self) -> Container:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> int | None:
        """SIGTERM through podman (graceful, as in a pod), then force; the container is always removed."""
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=10)
            if self.process is not None:
                self.returncode = self.process.returncode
        finally:
            remove(self.name)
        return self.returncode

    def wait(self, timeout: float = START_TIMEOUT) -> int:
        """Wait for a one-shot component (``--once``) to exit; its exit code."""
        assert self.process is not None
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as error:
            raise AssertionError(f"{self.name} still running after {timeout} s:\n{self.log()}") from error
        self.returncode = code
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_https(self, url: str, context: ssl.SSLContext, timeout: float = START_TIMEOUT) -> None:
        """Until ``url`` answers 200 over verified TLS; fails with the container's log otherwise."""

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(url, context=context, timeout=2) as response,
            ):
                return bool(response.status == 200)
            return False

        if not wait_until(ready, timeout=timeout, interval=0.2):
            raise AssertionError(f"{url} never answered 200 from {self.name}:\n{self.log()}")

    def process_ids(self) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        """For every process in the container: its (real, effective, saved, fs) user and group ids.

        Read from the host's /proc for each host pid podman reports, so the answer does not depend on
        tools inside the image (it has no ``ps``).
        """
        lines = podman_output("top", self.name, "hpid").splitlines()
        assert lines, f"podman top {self.name} listed nothing"
        assert lines[0].strip() == "HPID", lines
        found = []
        for pid in (line.strip() for line in lines[1:] if line.strip()):
            fields = dict(
                line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines()
            )
            uids = tuple(int(value) for value in fields["Uid"].split())
            gids = tuple(int(value) for value in fields["Gid"].split())
            found.append((uids, gids))
        return found
