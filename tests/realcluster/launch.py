"""How the tier runs istio-federation: from the container image (always under CI) or the virtualenv.

There is no kubelet on these apiservers, so the tier stands in for one. :func:`pod_of` reads a
Deployment *as the apiserver stores it* (its image, command and args with ``$(VAR)`` taken from
the ``configMapKeyRef`` env, its securityContext, its emptyDir and Secret volumes, its probe) and
:meth:`Launcher.pod_argv` turns that into ``podman run --network host`` of the image the
Deployment names (``BuiltImage.run_argv``: the image's non-root user, every capability dropped,
no privilege escalation, a read-only root whose only writable paths are the Deployment's emptyDir
mounts, as tmpfs). The ServiceAccount token is mounted where the kubelet mounts it
(``/var/run/secrets/kubernetes.io/serviceaccount``, read-only, with ``ca.crt`` and
``namespace``) and ``KUBERNETES_SERVICE_HOST``/``PORT`` name the apiserver, so the shipped
``--in-cluster`` runs unchanged. Secret volumes are directories the test provides, mounted
read-only and readable by the pod's group (``defaultMode``/``fsGroup``).

A Deployment's image is looked up in podman's local storage only (``--pull=never``, like
``imagePullPolicy: Never``); :attr:`Launcher.aliases` maps the base's ``istio-federation:<version>``
to the image built from this tree (its content-hash tag: the version tag is shared with other
sessions on the machine, which may be building another tree).

``ISTIO_FEDERATION_REAL_CLUSTER_FROM_VENV=1`` (or ``ISTIO_FEDERATION_SKIP_IMAGE=1``) runs the
console script of the virtualenv instead, for debugging on a machine without podman; ``--in-cluster``
then becomes ``--kubeconfig`` with the ServiceAccount's token and mounted paths become host paths.
Under ``CI=true`` both variables are ignored: CI tests the image.

Every container carries the label :data:`SESSION_LABEL` with this session's id, and
:meth:`Launcher.remove_all` removes whatever of them is left when the session ends.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.image.build import IMAGE_GID, BuiltImage, image_exists
from tests.image.containers import remove
from tests.image.podman import podman_command
from tests.support import in_ci

FROM_VENV = "ISTIO_FEDERATION_REAL_CLUSTER_FROM_VENV"
SKIP_IMAGE = "ISTIO_FEDERATION_SKIP_IMAGE"
SESSION_LABEL = "io.istio-federation.realcluster-session"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
ONE_SHOT_TIMEOUT = 180.0
PODMAN_TIMEOUT = 60.0


def wants_image() -> bool:
    """The image, unless a developer asked for the virtualenv outside CI."""
    if in_ci():
        return True
    return os.environ.get(FROM_VENV, "").strip() in ("", "0") and os.environ.get(SKIP_IMAGE, "").strip() in ("", "0")


@dataclass(frozen=True)
class Pod:
    """What a kubelet would run for a Deployment's single container, as stored in the apiserver."""

    deployment: str
    image: str
    args: list[str]  # command[1:] + args, $(VAR) expanded as the kubelet does
    env: dict[str, str]
    user: tuple[int, int]
    read_only_root: bool
    empty_dirs: tuple[str, ...]  # mount paths of emptyDir volumes: the only writable paths
    secrets: dict[str, str]  # mount path -> Secret name
    service_account: str
    probe_path: str


def pod_of(deployment: dict[str, Any], config_map: Callable[[str], Mapping[str, str]]) -> Pod:
    """The pod of a stored Deployment; fails on anything this stand-in would run differently."""
    name = deployment["metadata"]["name"]
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    context = {**(spec.get("securityContext") or {}), **(container.get("securityContext") or {})}
    user = (int(context.get("runAsUser", -1)), int(context.get("runAsGroup", -1)))
    problems = []
    if context.get("runAsNonRoot") is not True or user[0] <= 0 or user[1] < 0:
        problems.append(f"runAsNonRoot with a numeric runAsUser/runAsGroup (got {context})")
    drops_all = (context.get("capabilities") or {}).get("drop") == ["ALL"]
    if not drops_all or context.get("allowPrivilegeEscalation") is not False:
        problems.append("capabilities.drop [ALL] and allowPrivilegeEscalation false, as podman runs it")
    if (context.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append("seccompProfile RuntimeDefault (podman's default profile)")
    if problems:
        raise AssertionError(f"Deployment {name}: the tier runs pods with {'; '.join(problems)}")
    env: dict[str, str] = {}
    for variable in container.get("env") or []:
        if "value" in variable:
            env[variable["name"]] = str(variable["value"])
            continue
        ref = variable["valueFrom"]["configMapKeyRef"]
        env[variable["name"]] = config_map(ref["name"])[ref["key"]]

    def expand(arg: str) -> str:
        return re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), arg)

    volumes = {volume["name"]: volume for volume in spec.get("volumes") or []}
    empty_dirs: list[str] = []
    secrets: dict[str, str] = {}
    for mount in container.get("volumeMounts") or []:
        volume = volumes[mount["name"]]
        if "emptyDir" in volume:
            empty_dirs.append(mount["mountPath"])
        elif "secret" in volume and mount.get("readOnly") is True and "subPath" not in mount:
            secrets[mount["mountPath"]] = volume["secret"]["secretName"]
        else:
            raise AssertionError(f"Deployment {name}: volume mount {mount} is not one the tier can run")
    probe = container.get("readinessProbe") or container.get("livenessProbe") or {}
    return Pod(
        deployment=name,
        image=container["image"],
        args=[expand(str(arg)) for arg in [*container.get("command", [])[1:], *container.get("args", [])]],
        env=env,
        user=user,
        read_only_root=context.get("readOnlyRootFilesystem") is True,
        empty_dirs=tuple(empty_dirs),
        secrets=secrets,
        service_account=spec.get("serviceAccountName") or "default",
        probe_path=(probe.get("httpGet") or {}).get("path", "/healthz"),
    )


def readable_by_pod(directory: Path, user: tuple[int, int] = (0, IMAGE_GID)) -> Path:
    """A directory and its files as a Secret volume has them: root-owned, the pod's group may read."""
    os.chown(directory, 0, user[1])
    directory.chmod(0o750)
    for path in directory.iterdir():
        os.chown(path, 0, user[1])
        path.chmod(0o440)
    return directory


@dataclass
class Launcher:
    """Builds every command line the tier runs istio-federation with."""

    image: BuiltImage | None  # None: the virtualenv's console script
    session: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    aliases: dict[str, str] = field(default_factory=dict)  # a Deployment's image -> a local image

    @property
    def from_image(self) -> bool:
        return self.image is not None

    def console_script(self) -> str:
        return str(Path(sys.executable).with_name("istio-federation"))

    def container_name(self, what: str) -> str:
        return f"istio-federation-rc-{self.session}-{what}-{uuid.uuid4().hex[:6]}"

    def local_image(self, reference: str) -> BuiltImage:
        """The local image a Deployment's ``image:`` resolves to (``imagePullPolicy: Never``)."""
        assert self.image is not None
        local = self.aliases.get(reference, reference)
        if not image_exists(local):
            raise AssertionError(f"ErrImageNeverPull: image {reference!r} is not in podman's local storage")
        return dataclasses.replace(self.image, reference=local)

    def _common(self) -> list[str]:
        return ["--pull=never", "--label", f"{SESSION_LABEL}={self.session}"]

    def pod_argv(
        self,
        pod: Pod,
        args: Sequence[str],
        *,
        name: str,
        service_account_dir: Path,
        api_port: int,
        secrets: Mapping[str, Path],
        extra_mounts: Mapping[str, Path] | None = None,
        entrypoint: str | None = None,
    ) -> list[str]:
        """``podman run`` of ``pod`` with ``args``: the image's entrypoint unless ``entrypoint``."""
        image = self.local_image(pod.image)
        options = [*self._common(), "--user", f"{pod.user[0]}:{pod.user[1]}"]
        options += ["--env", "KUBERNETES_SERVICE_HOST=127.0.0.1", "--env", f"KUBERNETES_SERVICE_PORT={api_port}"]
        for key, value in sorted(pod.env.items()):
            options += ["--env", f"{key}={value}"]
        options += ["--volume", f"{service_account_dir}:{SERVICE_ACCOUNT_DIR}:ro"]
        for mount_path, secret in sorted(pod.secrets.items()):
            if secret not in secrets:
                raise AssertionError(f"{pod.deployment}: Secret {secret} for {mount_path} was not provided")
            options += ["--volume", f"{secrets[secret]}:{mount_path}:ro"]
        for mount_path, directory in sorted((extra_mounts or {}).items()):
            options += ["--volume", f"{directory}:{mount_path}:ro"]
        if entrypoint is not None:
            options += ["--entrypoint", entrypoint]
        return image.run_argv(*args, name=name, options=options, read_only=pod.read_only_root, tmpfs=pod.empty_dirs)

    def one_shot_argv(self, args: Sequence[str], *, name: str, mounts: Sequence[Path] = ()) -> list[str]:
        """``istio-federation ARGS`` once; in the image, ``mounts`` are host paths mounted read-only
        at the same paths, so ``args`` can name them unchanged."""
        if self.image is None:
            return [self.console_script(), *args]
        options = self._common()
        for path in mounts:
            options += ["--volume", f"{path}:{path}:ro"]
        return self.image.run_argv(*args, name=name, options=options, tmpfs=())

    def run(
        self, argv: Sequence[str], *, name: str | None, timeout: float = ONE_SHOT_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run a one-shot command line to completion; its container is removed whatever happens."""
        try:
            return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
        finally:
            if name is not None and self.image is not None:
                remove(name)

    def run_once(
        self, args: Sequence[str], *, mounts: Sequence[Path] = (), timeout: float = ONE_SHOT_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        name = self.container_name("once")
        return self.run(self.one_shot_argv(args, name=name, mounts=mounts), name=name, timeout=timeout)

    def containers(self) -> list[str]:
        """Names of this session's containers that exist (running or not)."""
        if self.image is None:
            return []
        mine = f"label={SESSION_LABEL}={self.session}"
        result = subprocess.run(
            podman_command("ps", "--all", "--filter", mine, "--format", "{{.Names}}"),
            capture_output=True, text=True, timeout=PODMAN_TIMEOUT, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise AssertionError(f"podman ps failed: {result.stderr}")
        return result.stdout.split()

    def remove_all(self) -> list[str]:
        """Remove every container of this session still there; their names."""
        leftovers = self.containers()
        for name in leftovers:
            remove(name)
        return leftovers
