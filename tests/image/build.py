"""Build the istio-federation image from the repository's Containerfile, offline, with podman.

``python -m tests.image.build`` builds (or finds) the image and prints its reference, size and
layers. The steps, each cached:

1. podman, runc and mmdebstrap from Debian's archive when missing (``apt-get update`` once);
2. a Debian bookworm base image made with ``mmdebstrap`` (python3, ca-certificates and
   libstdc++6 on the ``essential`` variant; documentation, usrmerge and perl left out) and
   ``podman import``: no registry is reachable, so this stands in for the Containerfile's default
   public base (python:3.11-slim-bookworm); cached by its recipe;
3. a wheelhouse made on this machine with ``pip wheel`` (the project and its runtime dependencies,
   pinned to the versions the test environment runs) by a Python of the base's minor version;
4. ``podman build --network=none --pull=never`` with the base as ``BASE_IMAGE``: the build reads
   nothing but the wheelhouse, as an air-gapped build would.

Builds of other trees younger than a day are kept (another session may be using one); older ones
are untagged after each build.

The image is tagged ``localhost/istio-federation:<version>`` and ``…:h-<content hash>``; the hash
covers every input (Containerfile, pyproject.toml, README.md, the product packages' files, the
pinned dependency versions and the base image), so an unchanged tree is never rebuilt.

Callers (the image tests, the real-cluster tier) use :func:`session_image` (:func:`ensure_image`
once per process) and :meth:`BuiltImage.run_argv`; podman's settings live in :mod:`tests.image.podman`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.image import podman
from tests.image.podman import ImageToolError, podman_command, progress

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = ROOT / "Containerfile"
IMAGE_REPOSITORY = "localhost/istio-federation"
BASE_REPOSITORY = "localhost/istio-federation-base"
DISTRIBUTION = "istio-federation"

# The base recipe; changing any of it makes a new base tag.
BASE_RECIPE_VERSION = 1
DEBIAN_SUITE = "bookworm"
# libstdc++6: C++ extension wheels (greenlet, under gevent) link it; the default base has it too.
BASE_PACKAGES = ("python3", "ca-certificates", "libstdc++6", "usr-is-merged")
# The essential set pulls in usrmerge, and with it perl and its modules (46 MB) that nothing here
# runs: /usr is already merged (usr-is-merged says so), so purge them.
UNNEEDED_PACKAGES = (
    "usrmerge",
    "libfile-find-rule-perl",
    "libnumber-compare-perl",
    "libtext-glob-perl",
    "perl",
    "libperl5.36",
    "perl-modules-5.36",
)
MMDEBSTRAP_OPTIONS = (
    "--variant=essential",
    f'--customize-hook=chroot "$1" dpkg --purge {" ".join(UNNEEDED_PACKAGES)}',
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/info/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    "--dpkgopt=path-exclude=/usr/share/lintian/*",
)

# The image's user: also in the Containerfile and every Deployment's securityContext.
IMAGE_UID = 65532
IMAGE_GID = 65532

MMDEBSTRAP_TIMEOUT = 1200.0
WHEEL_TIMEOUT = 900.0
BUILD_TIMEOUT = 1200.0
LOCK_WAIT_SECONDS = 3600.0
STALE_AFTER = "24h"


@dataclass(frozen=True)
class BuiltImage:
    reference: str  # localhost/istio-federation:h-<hash>, immutable for its content
    version_reference: str  # localhost/istio-federation:<version>
    version: str
    image_id: str
    content_hash: str
    base: str

    def run_argv(
        self,
        *command: str,
        name: str,
        options: Sequence[str] = (),
        read_only: bool = True,
        tmpfs: Sequence[str] = ("/tmp",),
    ) -> list[str]:
        """``podman run`` of this image as the manifests run it; append nothing after the result.

        Host network (servers bind loopback), the image's own non-root user, every capability
        dropped, no privilege escalation, and (by default) a read-only root filesystem whose only
        writable paths are ``tmpfs`` (the Deployments' emptyDir volumes). ``--rm`` removes the
        container when it stops; callers still ``podman rm -f`` it in their finalizer.
        """
        argv = podman_command("run", "--rm", "--name", name, "--network", "host")
        argv += ["--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
        if read_only:
            argv += ["--read-only", "--read-only-tmpfs=false"]
            for path in tmpfs:
                argv += ["--tmpfs", f"{path}:rw,nosuid,nodev,noexec,size=16m,mode=1777"]
        return [*argv, *options, self.reference, *command]


def project_version() -> str:
    """pyproject.toml's version: the one source of the package, label and manifest versions."""
    with (ROOT / "pyproject.toml").open("rb") as handle:
        version: str = tomllib.load(handle)["project"]["version"]
    return version


def product_packages() -> list[str]:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        packages: list[str] = tomllib.load(handle)["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    return packages


def input_files() -> list[Path]:
    """Every file whose content can change the image (the wheel's sources and the build recipe)."""
    files = [CONTAINERFILE, ROOT / "pyproject.toml", ROOT / "README.md"]
    for package in product_packages():
        files += sorted(
            path
            for path in (ROOT / package).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in {".pyc", ".pyo"}
        )
    return files


def pinned_requirements() -> str:
    """``name==version`` of every distribution the tests run with (pip constraints for the wheelhouse)."""
    pins = {
        dist.metadata["Name"].lower().replace("_", "-"): dist.version
        for dist in importlib.metadata.distributions()
        if dist.metadata["Name"] and dist.metadata["Name"].lower() != DISTRIBUTION
    }
    return "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))


def content_hash(base_id: str, pins: str) -> str:
    digest = hashlib.sha256()
    for path in input_files():
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    digest.update(pins.encode())
    digest.update(base_id.encode())
    return digest.hexdigest()[:20]


@contextlib.contextmanager
def build_lock() -> Iterator[None]:
    """One build at a time on this machine (pytest sessions, the real-cluster tier); bounded wait."""
    path = podman.cache_root() / "build.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        announced = False
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ImageToolError(f"another image build held {path} for {LOCK_WAIT_SECONDS:.0f} s") from None
                if not announced:
                    progress(f"waiting for another image build ({path})")
                    announced = True
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def image_exists(reference: str) -> bool:
    result = subprocess.run(
        podman_command("image", "exists", reference), capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode not in (0, 1):
        raise ImageToolError(f"podman image exists {reference} failed: {result.stderr.strip()}")
    return result.returncode == 0


def image_id(reference: str) -> str:
    result = podman.run(
        podman_command("image", "inspect", "--format", "{{.Id}}", reference), what="inspect", timeout=60
    )
    return result.stdout.strip()


def base_reference() -> str:
    recipe = json.dumps([BASE_RECIPE_VERSION, DEBIAN_SUITE, BASE_PACKAGES, MMDEBSTRAP_OPTIONS]).encode()
    return f"{BASE_REPOSITORY}:{DEBIAN_SUITE}-{hashlib.sha256(recipe).hexdigest()[:12]}"


def ensure_base() -> str:
    """A Debian base image with python3, from Debian's archive (no registry needed)."""
    reference = base_reference()
    if image_exists(reference):
        return reference
    work = podman.cache_root() / "base"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rootfs = work / "rootfs.tar"
    progress(f"making the base image {reference} with mmdebstrap (Debian {DEBIAN_SUITE})")
    try:
        # No mirror argument: mmdebstrap uses this machine's apt sources for the same suite.
        podman.run(
            ["mmdebstrap", *MMDEBSTRAP_OPTIONS, f"--include={','.join(BASE_PACKAGES)}", DEBIAN_SUITE, str(rootfs)],
            what="mmdebstrap",
            timeout=MMDEBSTRAP_TIMEOUT,
            log=podman.cache_root() / "logs" / "mmdebstrap.log",
        )
        podman.run(podman_command("import", str(rootfs), reference), what="podman import", timeout=600)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return reference


def base_python_minor(base: str) -> str:
    result = podman.run(
        podman_command(
            "run",
            "--rm",
            "--network",
            "host",
            base,
            "python3",
            "-c",
            "import sys; print('%d.%d' % sys.version_info[:2])",
        ),
        what="python3 version of the base image",
        timeout=120,
    )
    return result.stdout.strip()


def wheel_python(minor: str) -> str:
    """A Python of the image's minor version on this machine: wheels must match the image's ABI."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == minor:
        return sys.executable
    found = shutil.which(f"python{minor}")
    if found is None:
        raise ImageToolError(
            f"the image's python3 is {minor} but this is {sys.version.split()[0]} and python{minor} is not on PATH"
        )
    return found


def make_wheelhouse(context: Path, python: str, pins: str) -> None:
    wheelhouse = context / "wheelhouse"
    shutil.rmtree(context, ignore_errors=True)
    wheelhouse.mkdir(parents=True)
    constraints = context / "constraints.txt"
    constraints.write_text(pins, encoding="utf-8")
    pip = [python, "-m", "pip", "--disable-pip-version-check"]
    progress(f"making the wheelhouse with {python}")
    podman.run(
        [*pip, "wheel", "--prefer-binary", "--constraint", str(constraints), "--wheel-dir", str(wheelhouse), str(ROOT)],
        what="pip wheel (the project and its dependencies)",
        timeout=WHEEL_TIMEOUT,
        log=podman.cache_root() / "logs" / "pip-wheel.log",
    )
    # pip itself, at the version the tests run with: the builder stage installs with it from its wheel.
    podman.run(
        [*pip, "download", "--no-deps", "--only-binary=:all:", "--dest", str(wheelhouse), f"pip=={pip_version()}"],
        what="pip download pip",
        timeout=WHEEL_TIMEOUT,
        log=podman.cache_root() / "logs" / "pip-download.log",
    )


def pip_version() -> str:
    return importlib.metadata.version("pip")


def git_revision() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        result = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30, check=False
        )
        if result.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", result.stdout.strip()):
            return result.stdout.strip()
    return "unknown"


def remove_stale_builds(keep: str) -> None:
    """Untag content-hash builds older than a day, so rebuilds do not fill the disk.

    Younger ones stay: another pytest session (or the real-cluster tier) on this machine may be
    running a build of a slightly different tree right now.
    """
    filters = ["--filter", f"reference={IMAGE_REPOSITORY}", "--filter", f"until={STALE_AFTER}"]
    listing = podman.run(
        podman_command("images", *filters, "--format", "{{.Repository}}:{{.Tag}}"), what="podman images", timeout=60
    )
    for reference in listing.stdout.split():
        if reference != keep and reference.startswith(f"{IMAGE_REPOSITORY}:h-"):
            subprocess.run(podman_command("rmi", reference), capture_output=True, text=True, timeout=120, check=False)


def ensure_image() -> BuiltImage:
    """The image of the current tree: built unless a build of the same inputs exists."""
    with build_lock():
        podman.ensure_tools()
        podman.check_podman()
        base = ensure_base()
        base_id = image_id(base)
        pins = pinned_requirements()
        digest = content_hash(base_id, pins)
        version = project_version()
        reference = f"{IMAGE_REPOSITORY}:h-{digest}"
        version_reference = f"{IMAGE_REPOSITORY}:{version}"
        if image_exists(reference):
            progress(f"{reference} is up to date (inputs unchanged)")
        else:
            build(base, reference, version_reference, version, pins)
            remove_stale_builds(keep=reference)
        podman.run(podman_command("tag", reference, version_reference), what="podman tag", timeout=60)
        return BuiltImage(reference, version_reference, version, image_id(reference), digest, base)


_SESSION_IMAGE: list[BuiltImage] = []


def session_image() -> BuiltImage:
    """:func:`ensure_image` once per process: the image tier and the real-cluster tier of one pytest
    session run the same build, even if the working tree changes while the session runs."""
    if not _SESSION_IMAGE:
        _SESSION_IMAGE.append(ensure_image())
    return _SESSION_IMAGE[0]


def build(base: str, reference: str, version_reference: str, version: str, pins: str) -> None:
    python = wheel_python(base_python_minor(base))
    context = podman.cache_root() / "context"
    make_wheelhouse(context, python, pins)
    progress(f"building {reference} from {CONTAINERFILE}")
    try:
        podman.run(
            podman_command(
                "build",
                "--pull=never",
                "--network=none",
                "--layers=false",
                "--force-rm",
                "--file",
                str(CONTAINERFILE),
                "--build-arg",
                f"BASE_IMAGE={base}",
                "--build-arg",
                f"VERSION={version}",
                "--build-arg",
                f"REVISION={git_revision()}",
                "--tag",
                reference,
                "--tag",
                version_reference,
                str(context),
            ),
            what="podman build",
            timeout=BUILD_TIMEOUT,
            log=podman.cache_root() / "logs" / "podman-build.log",
        )
    finally:
        shutil.rmtree(context, ignore_errors=True)


@dataclass(frozen=True)
class Layer:
    size: int
    created_by: str


def layers(reference: str) -> list[Layer]:
    """The image's layers, oldest first, with the bytes each adds (``podman history``)."""
    result = podman.run(
        podman_command("history", "--no-trunc", "--format", "json", reference), what="podman history", timeout=60
    )
    entries = json.loads(result.stdout)
    return [
        Layer(int(entry["size"]), str(entry.get("CreatedBy") or entry.get("createdBy") or "")) for entry in entries
    ][::-1]


def image_size(reference: str) -> int:
    result = podman.run(
        podman_command("image", "inspect", "--format", "{{.Size}}", reference), what="podman image inspect", timeout=60
    )
    return int(result.stdout.strip())


def main(argv: Sequence[str]) -> int:
    del argv
    started = time.monotonic()
    try:
        image = ensure_image()
    except ImageToolError as error:
        print(f"image build failed: {error}", file=sys.stderr)
        return 1
    print(f"{image.reference} ({image.version_reference}), id {image.image_id[:12]}, base {image.base}")
    print(f"size {image_size(image.reference) / 1e6:.1f} MB; ready after {time.monotonic() - started:.1f} s")
    for layer in layers(image.reference):
        print(f"  {layer.size / 1e6:8.1f} MB  {layer.created_by[:110]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
