"""A real etcd and kube-apiserver v1.20.2 on loopback: one "cluster" without nodes.

:class:`Cluster` starts etcd on free loopback ports with its data in a temporary directory, then
kube-apiserver with a serving certificate for ``IP:127.0.0.1``, a token file holding one admin
token (group ``system:masters``), service-account signing keys (so ``kubectl create token``
works), RBAC authorization, no anonymous access and an audit log of every request. It writes an
admin kubeconfig. :meth:`Cluster.restart_apiserver` stops and starts the apiserver alone, on the
same port and the same etcd. Every process started here is stopped by :meth:`Cluster.stop`, and
:func:`stop_all` stops whatever a crashed test left behind. Every wait is bounded.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import datetime
import json
import os
import secrets
import signal
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.image.containers import remove as remove_container
from tests.realcluster.build import Binaries
from tests.support import free_port

KUBECTL_TIMEOUT = 60.0
START_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0
SERVICE_CIDR = "10.96.0.0/24"
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata"}],
}

PR_SET_PDEATHSIG = 1
try:  # loaded here, never in the forked child
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
except OSError:
    _LIBC = None

_running: set[Process] = set()
_running_lock = threading.Lock()


class Process:
    """One server process with its output in a log file; stopped with SIGTERM, then SIGKILL.

    With ``container``, the command is a foreground ``podman run --rm --name CONTAINER``: the
    container's output lands in the log, SIGTERM reaches the component through podman's signal
    proxy (as the kubelet's would), and :meth:`stop` removes the container whatever happened.
    """

    def __init__(
        self,
        name: str,
        command: Sequence[str | Path],
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        container: str | None = None,
    ) -> None:
        self.name = name
        self.command = [str(part) for part in command]
        self.log_path = log_path
        self.env = env
        self.container = container
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n=== {time.strftime('%H:%M:%S')} start: {' '.join(self.command)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - one prctl call, libc loaded beforehand
            )  # fmt: skip
        with _running_lock:
            _running.add(self)
        return self

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, signum: int) -> None:
        if self.running:
            assert self.popen is not None
            self.popen.send_signal(signum)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        popen = self.popen
        try:
            if popen is None:
                return None
            if popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    popen.send_signal(signal.SIGCONT)  # a test may have paused it
                    popen.terminate()
                try:
                    popen.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    popen.kill()
                    popen.wait(timeout=10)
            with _running_lock:
                _running.discard(self)
            self.popen = None
            return popen.returncode
        finally:
            if self.container is not None:
                remove_container(self.container)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the test process dies, however it dies (Linux)."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def stop_all() -> None:
    """Stop every process this module started and that is still running."""
    with _running_lock:
        leftovers = list(_running)
    for process in leftovers:
        process.stop(timeout=10)


def wait_for(predicate: Any, *, timeout: float, interval: float = 0.2, what: str = "condition") -> Any:
    """Poll until ``predicate()`` returns something truthy; its value, or AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as error:  # the predicate may fail until the world converges
            last_error = error
        if time.monotonic() >= deadline:
            detail = f" (last error: {type(last_error).__name__}: {last_error})" if last_error else ""
            raise AssertionError(f"{what} did not hold within {timeout:.0f}s{detail}")
        time.sleep(interval)


@dataclass
class KubectlResult:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class Cluster:
    """etcd + kube-apiserver on loopback, named like the cluster it stands for (``cluster-a``)."""

    name: str
    binaries: Binaries
    workdir: Path
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    etcd_port: int = field(default_factory=free_port)
    etcd_peer_port: int = field(default_factory=free_port)
    api_port: int = field(default_factory=free_port)
    ca: trustme.CA = field(default_factory=trustme.CA)
    etcd: Process | None = None
    apiserver: Process | None = None
    # (started, ready) wall-clock times of each apiserver start: before /readyz its authorizer has not
    # loaded RBAC yet, and it refuses requests it will allow a moment later.
    unready: list[tuple[float, float]] = field(default_factory=list)

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.api_port}"

    @property
    def domain(self) -> str:
        return f"{self.name}.local"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.workdir / "admin.kubeconfig"

    @property
    def ca_file(self) -> Path:
        return self.workdir / "pki" / "ca.crt"

    @property
    def audit_log(self) -> Path:
        return self.workdir / "audit.log"

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Cluster:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_pki()
        self._start_etcd()
        self.start_apiserver()
        self.write_kubeconfig(self.admin_kubeconfig, "admin", self.admin_token)
        return self

    def stop(self) -> None:
        for process in (self.apiserver, self.etcd):
            if process is not None:
                process.stop()

    def _write_pki(self) -> None:
        pki = self.workdir / "pki"
        pki.mkdir(exist_ok=True)
        self.ca.cert_pem.write_to_path(str(pki / "ca.crt"))
        leaf = self.ca.issue_cert("127.0.0.1", "localhost")
        leaf.cert_chain_pems[0].write_to_path(str(pki / "apiserver.crt"))
        leaf.private_key_pem.write_to_path(str(pki / "apiserver.key"))
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (pki / "sa.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        (pki / "sa.pub").write_bytes(
            key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
        (pki / "tokens.csv").write_text(f'{self.admin_token},admin,admin-uid,"system:masters"\n')
        (self.workdir / "audit-policy.yaml").write_text(yaml.safe_dump(AUDIT_POLICY))
        for path in pki.iterdir():
            path.chmod(0o600)

    def _start_etcd(self) -> None:
        data = self.workdir / "etcd-data"
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        client = f"http://127.0.0.1:{self.etcd_port}"
        self.etcd = Process(f"{self.name}-etcd", [
            self.binaries.etcd, "--name", "default", "--data-dir", data,
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"default={peer}", "--logger", "zap", "--log-level", "warn",
        ], self.workdir / "etcd.log").start()  # fmt: skip

        def healthy() -> bool:
            assert self.etcd is not None
            if not self.etcd.running:
                raise AssertionError(f"etcd of {self.name} exited:\n{self.etcd.tail()}")
            with urllib.request.urlopen(f"{client}/health", timeout=2) as response:
                return bool(json.loads(response.read()).get("health") == "true")

        wait_for(healthy, timeout=START_TIMEOUT, what=f"etcd of {self.name} healthy")

    def _apiserver_command(self) -> list[str | Path]:
        pki = self.workdir / "pki"
        return [
            self.binaries.kube_apiserver,
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            "--bind-address=127.0.0.1", f"--secure-port={self.api_port}", "--insecure-port=0",
            "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none",
            f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--cert-dir={self.workdir / 'cert-dir'}",
            f"--token-auth-file={pki / 'tokens.csv'}",
            "--authorization-mode=RBAC", "--anonymous-auth=false",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # No controller-manager runs, so nothing would create the default ServiceAccounts' tokens.
            "--disable-admission-plugins=ServiceAccount",
            f"--audit-policy-file={self.workdir / 'audit-policy.yaml'}",
            f"--audit-log-path={self.audit_log}", "--audit-log-format=json", "--audit-log-mode=blocking",
            "--profiling=false", "--v=1",
        ]  # fmt: skip

    def start_apiserver(self) -> None:
        started = time.time()
        self.apiserver = Process(f"{self.name}-apiserver", self._apiserver_command(), self.workdir / "apiserver.log")
        self.apiserver.start()
        self.wait_ready()
        self.unready.append((started, time.time()))

    def while_unready(self, event: dict[str, Any]) -> bool:
        """Whether an audit event was received while the apiserver was starting (not yet ready)."""
        text = str(event.get("requestReceivedTimestamp") or event.get("stageTimestamp") or "")
        try:
            moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return False
        return any(started <= moment <= ready for started, ready in self.unready)

    def stop_apiserver(self) -> None:
        if self.apiserver is not None:
            self.apiserver.stop()

    def restart_apiserver(self) -> None:
        """Stop the apiserver alone and start it again on the same port, against the same etcd."""
        self.stop_apiserver()
        self.start_apiserver()

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        context = self.ssl_context()

        def ready() -> bool:
            assert self.apiserver is not None
            if not self.apiserver.running:
                raise AssertionError(f"kube-apiserver of {self.name} exited:\n{self.apiserver.tail()}")
            request = urllib.request.Request(
                f"{self.server}/readyz", headers={"Authorization": f"Bearer {self.admin_token}"}
            )
            try:
                with urllib.request.urlopen(request, context=context, timeout=3) as response:
                    return bool(response.read() == b"ok")
            except (urllib.error.URLError, OSError):
                return False

        wait_for(ready, timeout=timeout, interval=0.25, what=f"kube-apiserver of {self.name} /readyz")

    # -- clients -------------------------------------------------------------------------------

    def write_kubeconfig(self, path: Path, user: str, token: str) -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": self.name, "cluster": {"server": self.server, "certificate-authority": str(self.ca_file)}}
            ],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": f"{user}@{self.name}", "context": {"cluster": self.name, "user": user}}],
            "current-context": f"{user}@{self.name}",
        }  # fmt: skip
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def kubectl(
        self, *args: str, kubeconfig: Path | None = None, stdin: str | None = None, timeout: float = KUBECTL_TIMEOUT,
        check: bool = True,
    ) -> KubectlResult:
        """Run the real kubectl against this cluster (admin unless ``kubeconfig`` says otherwise)."""
        command = [
            "kubectl", f"--kubeconfig={kubeconfig or self.admin_kubeconfig}",
            f"--cache-dir={self.workdir / 'kubectl-cache'}", *args,
        ]  # fmt: skip
        env = {key: value for key, value in os.environ.items() if not key.startswith("KUBECONFIG")}
        env["HOME"] = str(self.workdir)  # kubectl keeps its own state under $HOME/.kube
        completed = subprocess.run(
            command, input=stdin, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
        result = KubectlResult(completed.returncode, completed.stdout, completed.stderr)
        if check and result.code != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.code}):\n{result.output}")
        return result

    def get_json(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", "-o", "json", *args).stdout)

    def apply(self, objects: Sequence[dict[str, Any]] | dict[str, Any]) -> KubectlResult:
        documents = [objects] if isinstance(objects, dict) else list(objects)
        return self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(documents))

    def service_account_token(self, service_account: str, namespace: str, *, hours: int = 12) -> str:
        """A fresh token of ``service_account`` (``kubectl create token``)."""
        return self.kubectl("create", "token", service_account, "-n", namespace, f"--duration={hours}h").stdout.strip()

    def service_account_kubeconfig(self, service_account: str, namespace: str, *, hours: int = 12) -> Path:
        """A kubeconfig holding a fresh token of ``service_account``."""
        token = self.service_account_token(service_account, namespace, hours=hours)
        return self.write_kubeconfig(self.workdir / f"{service_account}.kubeconfig", service_account, token)

    def service_account_volume(self, service_account: str, namespace: str, directory: Path) -> Path:
        """What the kubelet mounts at /var/run/secrets/kubernetes.io/serviceaccount: a fresh token,
        the cluster's CA and the namespace, readable by the image's group (``fsGroup``)."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "token").write_text(self.service_account_token(service_account, namespace))
        (directory / "ca.crt").write_bytes(self.ca_file.read_bytes())
        (directory / "namespace").write_text(namespace)
        return directory

    def audit_events(self) -> list[dict[str, Any]]:
        if not self.audit_log.exists():
            return []
        events = []
        for line in self.audit_log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
        return events


atexit.register(stop_all)
