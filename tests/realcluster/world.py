"""Install istio-federation as shipped on a real apiserver, and run its components from the image.

What loopback forces, and nothing else, differs from a real install:

- the ValidatingWebhookConfiguration's ``clientConfig`` becomes ``url: https://127.0.0.1:PORT/validate``
  plus ``caBundle`` (a ``service:`` reference cannot be dialled without a cluster network);
- kinds the server does not serve are skipped with a logged reason (``policy/v1``
  PodDisruptionBudget on 1.20); they stay in ``manifests/``;
- there is no kubelet: :meth:`Installation.start` runs the pod of each component's Deployment as
  the apiserver stores it, from the image it names (``tests.realcluster.launch``: ``podman run
  --network host``, read-only root, the image's non-root user, the Deployment's emptyDir mounts as
  the only writable paths, its ServiceAccount's token mounted where the kubelet mounts it, so the
  shipped ``--in-cluster`` is used), with the Deployment's arguments except that listening ports
  become free loopback ports, the exporter serves TLS itself (no Ingress; its certificate is mounted
  at ``/tls`` like the webhook's Secret), and the reconciler's interval is 5 s instead of 60 s so
  the tier converges quickly. ``ISTIO_FEDERATION_REAL_CLUSTER_FROM_VENV=1`` runs the virtualenv's
  console script instead (never under CI).

What Istio would have created is created here: namespace ``istio-system``, its ConfigMap
``istio`` (mesh config), the ``istio-ca-root-cert`` ConfigMap, and the ServiceEntry and
DestinationRule CRDs (``istio-crds.yaml``, minimal). Settings are set the way an overlay does.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import ssl
import subprocess
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
import yaml

from tests.realcluster.cluster import Cluster, Process, wait_for
from tests.realcluster.launch import Launcher, Pod, pod_of, readable_by_pod
from tests.support import REPO_ROOT, free_port

log = logging.getLogger(__name__)

NAMESPACE = "istio-federation"
MESH_NAMESPACE = "istio-system"
MANIFESTS = REPO_ROOT / "manifests"
ISTIO_CRDS = Path(__file__).with_name("istio-crds.yaml")
COMPONENTS = ("webhook", "exporter", "reconciler")
RECONCILER_INTERVAL = "5s"
WEBHOOK_TLS_SECRET = "istio-federation-webhook-tls"
# Data only: the addresses land in ServiceEntries; nothing here ever connects to them.
GATEWAYS = [{"address": "192.0.2.10", "port": 15443}, {"address": "192.0.2.11", "port": 15443}]


def service_account(component: str) -> str:
    return f"istio-federation-{component}"


def username(component: str) -> str:
    return f"system:serviceaccount:{NAMESPACE}:{service_account(component)}"


def load_yaml_documents(text: str) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(text) if document]


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize DIR``: the objects exactly as ``kubectl apply -k DIR`` would send them."""
    built = subprocess.run(
        ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    if built.returncode != 0:
        raise AssertionError(f"kubectl kustomize {directory} failed:\n{built.stderr}")
    return load_yaml_documents(built.stdout)


def write_overlay(directory: Path, *, cluster_domain: str, cluster_uuid: str) -> Path:
    """An overlay of ``manifests/`` that sets this cluster's settings, as docs/install.md tells admins to."""
    directory.mkdir(parents=True, exist_ok=True)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(MANIFESTS, directory)],  # kustomize refuses absolute roots
        "patches": [{
            "target": {"kind": "ConfigMap", "name": "istio-federation-settings"},
            "patch": yaml.safe_dump([
                {"op": "replace", "path": "/data/cluster-domain", "value": cluster_domain},
                {"op": "replace", "path": "/data/cluster-uuid", "value": cluster_uuid},
            ]),
        }],
    }  # fmt: skip
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
    return directory


@dataclass
class Skipped:
    kind: str
    api_version: str
    name: str
    reason: str


def served_kinds(cluster: Cluster, api_versions: set[str]) -> set[tuple[str, str]]:
    """Which (apiVersion, kind) pairs of ``api_versions`` the server serves, from discovery."""
    served: set[tuple[str, str]] = set()
    for api_version in sorted(api_versions):
        path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        result = cluster.kubectl("get", "--raw", path, check=False)
        if result.code != 0:
            continue  # the whole group version is missing (NotFound)
        for resource in json.loads(result.stdout).get("resources", []):
            served.add((api_version, resource["kind"]))
    return served


def version_gate(objects: list[dict[str, Any]], served: set[tuple[str, str]], server_version: str) -> tuple[
    list[dict[str, Any]], list[Skipped]
]:
    """The objects this server can store, and the others with the reason (logged, not silently dropped)."""
    keep: list[dict[str, Any]] = []
    skipped: list[Skipped] = []
    defined = {
        (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
        for crd in objects if crd["kind"] == "CustomResourceDefinition"
        for version in crd["spec"]["versions"]
    }  # fmt: skip
    for obj in objects:
        key = (obj["apiVersion"], obj["kind"])
        if key in served or key in defined:
            keep.append(obj)
            continue
        reason = f"{obj['apiVersion']} {obj['kind']} is not served by kube-apiserver {server_version}"
        skipped.append(Skipped(obj["kind"], obj["apiVersion"], obj["metadata"]["name"], reason))
        log.warning("not installed: %s %s: %s", obj["kind"], obj["metadata"]["name"], reason)
    return keep, skipped


def patch_webhook_client(objects: list[dict[str, Any]], url: str, ca_pem: bytes) -> None:
    """The one change loopback forces on the VWC: its clientConfig (URL and caBundle)."""
    bundle = base64.b64encode(ca_pem).decode()
    for obj in objects:
        if obj["kind"] == "ValidatingWebhookConfiguration":
            for hook in obj["webhooks"]:
                path = hook["clientConfig"].get("service", {}).get("path", "/validate")
                hook["clientConfig"] = {"url": f"{url}{path}", "caBundle": bundle}


@dataclass
class Component:
    name: str
    process: Process
    port: int
    pod: Pod
    image: str  # the local image it runs (its content-hash or test tag), or "venv"


@dataclass
class Installation:
    """istio-federation installed on one cluster, with its components running."""

    cluster: Cluster
    launcher: Launcher
    cluster_uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    mesh_ca: trustme.CA = field(default_factory=trustme.CA)  # the cluster's Istio root CA
    tls_ca: trustme.CA = field(default_factory=trustme.CA)  # signs the webhook's and exporter's certificates
    webhook_port: int = field(default_factory=free_port)
    exporter_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    skipped: list[Skipped] = field(default_factory=list)
    components: dict[str, Component] = field(default_factory=dict)

    @property
    def workdir(self) -> Path:
        return self.cluster.workdir

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.exporter_port}/metadata/"

    # -- install -------------------------------------------------------------------------------

    def install(self) -> None:
        cluster = self.cluster
        crds = load_yaml_documents(ISTIO_CRDS.read_text())
        cluster.apply(crds)
        cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": MESH_NAMESPACE}})
        cluster.apply({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio", "namespace": MESH_NAMESPACE},
            "data": {"mesh": f"trustDomain: {cluster.domain}\nenableAutoMtls: true\n"},
        })  # fmt: skip
        overlay = write_overlay(self.workdir / "overlay", cluster_domain=cluster.domain, cluster_uuid=self.cluster_uuid)
        objects = kustomize(overlay)
        patch_webhook_client(objects, f"https://127.0.0.1:{self.webhook_port}", self.tls_ca.cert_pem.bytes())
        version = json.loads(cluster.kubectl("version", "-o", "json", check=False).stdout)["serverVersion"]
        served = served_kinds(cluster, {obj["apiVersion"] for obj in objects})
        objects, self.skipped = version_gate(objects, served, version["gitVersion"])
        # CRDs and the namespace first; the webhook configuration last, once the webhook answers.
        first = [o for o in objects if o["kind"] in ("CustomResourceDefinition", "Namespace")]
        webhook_configs = [o for o in objects if o["kind"] == "ValidatingWebhookConfiguration"]
        rest = [o for o in objects if o not in first and o not in webhook_configs]
        cluster.apply(first)
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        cluster.apply(rest)
        cluster.apply({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "istio-ca-root-cert", "namespace": NAMESPACE},
            "data": {"root-cert.pem": self.mesh_ca.cert_pem.bytes().decode()},
        })  # fmt: skip
        self._webhook_configs = webhook_configs

    def register_webhook(self) -> None:
        self.cluster.apply(self._webhook_configs)

    # -- components ----------------------------------------------------------------------------

    def settings(self) -> dict[str, str]:
        return self.config_map("istio-federation-settings")

    def config_map(self, name: str) -> dict[str, str]:
        return dict(self.cluster.get_json("configmap", name, "-n", NAMESPACE)["data"])

    def pod(self, component: str) -> Pod:
        """The pod the component's Deployment, as the apiserver stores it now, asks for."""
        deployment = self.cluster.get_json("deployment", service_account(component), "-n", NAMESPACE)
        return pod_of(deployment, self.config_map)

    def _tls_dir(self, component: str) -> Path:
        """A fresh serving certificate for 127.0.0.1 (the webhook's Secret ``istio-federation-webhook-tls``;
        for the exporter, what its Ingress would terminate)."""
        tls = self.workdir / "tls" / component
        tls.mkdir(parents=True, exist_ok=True)
        for path in tls.iterdir():
            path.unlink()
        leaf = self.tls_ca.issue_cert("127.0.0.1", "localhost")
        leaf.cert_chain_pems[0].write_to_path(str(tls / "tls.crt"))
        leaf.private_key_pem.write_to_path(str(tls / "tls.key"))
        return readable_by_pod(tls) if self.launcher.from_image else tls

    def _loopback_args(self, component: str, args: list[str], tls: str) -> list[str]:
        """What loopback forces on the Deployment's arguments: free ports, 127.0.0.1, TLS on the
        exporter (no Ingress), one webhook worker, a 5 s reconciler interval."""
        if component == "webhook":
            args = _set_flag(args, "--tls-cert-file", f"{tls}/tls.crt")
            args = _set_flag(args, "--tls-private-key-file", f"{tls}/tls.key")
            args = _set_flag(args, "--port", str(self.webhook_port))
            return [*args, "--host", "127.0.0.1", "--workers", "1"]
        if component == "exporter":
            args = _set_flag(args, "--port", str(self.exporter_port))
            return [*args, "--host", "127.0.0.1", "--tls-cert-file", f"{tls}/tls.crt",
                    "--tls-private-key-file", f"{tls}/tls.key"]  # fmt: skip
        if component == "reconciler":
            args = _set_flag(args, "--metrics-port", str(self.metrics_port))
            args = _set_flag(args, "--interval", RECONCILER_INTERVAL)
            return [*args, "--metrics-host", "127.0.0.1"]
        raise AssertionError(f"no component {component!r}")

    def service_account_dir(self, pod: Pod) -> Path:
        """The ServiceAccount's token volume, made once (a token lasts 12 h) and then shared by its
        pods, as the kubelet's projected token is: never rewritten under a running component."""
        directory = self.workdir / "serviceaccount" / pod.service_account
        if not (directory / "token").exists():
            self.cluster.service_account_volume(pod.service_account, NAMESPACE, directory)
        return readable_by_pod(directory, pod.user)

    def launch(self, component: str, pod: Pod) -> tuple[list[str], str | None, str]:
        """The command line of the component's pod: (argv, container name or None, image run)."""
        if component not in COMPONENTS:
            raise AssertionError(f"no component {component!r}")
        host_tls = self._tls_dir(component) if component != "reconciler" else None
        if not self.launcher.from_image:
            args = self._loopback_args(component, pod.args, str(host_tls))
            kubeconfig = self.cluster.service_account_kubeconfig(pod.service_account, NAMESPACE)
            args = _replace_flag(args, "--in-cluster", ["--kubeconfig", str(kubeconfig)])
            return [self.launcher.console_script(), *args], None, "venv"
        secrets = {WEBHOOK_TLS_SECRET: host_tls} if component == "webhook" and host_tls else {}
        # The exporter's Deployment has no certificate (its Ingress terminates TLS): mounted like the webhook's.
        extra = {"/tls": host_tls} if component == "exporter" and host_tls else {}
        name = self.launcher.container_name(f"{self.cluster.name}-{component}")
        argv = self.launcher.pod_argv(
            pod, self._loopback_args(component, pod.args, "/tls"), name=name,
            service_account_dir=self.service_account_dir(pod), api_port=self.cluster.api_port,
            secrets=secrets, extra_mounts=extra,
        )  # fmt: skip
        return argv, name, self.launcher.local_image(pod.image).reference

    def start(self, component: str) -> Component:
        """Run the pod of the component's stored Deployment (what the kubelet would do)."""
        pod = self.pod(component)
        argv, container, image = self.launch(component, pod)
        process = Process(
            f"{self.cluster.name}-{component}", argv, self.workdir / f"{component}.log", container=container
        ).start()
        port = {"webhook": self.webhook_port, "exporter": self.exporter_port, "reconciler": self.metrics_port}
        started = Component(component, process, port[component], pod, image)
        self.components[component] = started
        return started

    def exec_in(
        self, component: str, command: list[str], *, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """What ``kubectl exec deploy/<component> -- COMMAND`` runs: COMMAND in a container of the
        Deployment's pod (its image, user, read-only root, emptyDirs, ServiceAccount token and Secrets)."""
        pod = self.pod(component)
        if not self.launcher.from_image:
            script = Path(self.launcher.console_script()).with_name(command[0])
            kubeconfig = self.cluster.service_account_kubeconfig(pod.service_account, NAMESPACE)
            args = command[1:]
            if "--in-cluster" in args:
                args = _replace_flag(args, "--in-cluster", ["--kubeconfig", str(kubeconfig)])
            return self.launcher.run([str(script), *args], name=None, timeout=timeout)
        secrets = {WEBHOOK_TLS_SECRET: self.workdir / "tls" / "webhook"} if component == "webhook" else {}
        name = self.launcher.container_name(f"{self.cluster.name}-exec-{component}")
        argv = self.launcher.pod_argv(
            pod, command[1:], name=name, service_account_dir=self.service_account_dir(pod),
            api_port=self.cluster.api_port, secrets=secrets, entrypoint=command[0],
        )  # fmt: skip
        return self.launcher.run(argv, name=name, timeout=timeout)

    def roll(self, component: str) -> Component:
        """What ``kubectl rollout status`` waits for, done by hand: the old pod stopped, a pod of the
        stored Deployment started and passing its probe."""
        self.stop(component)
        started = self.start(component)
        self.wait_ready(component, started.pod.probe_path)
        return started

    def stop(self, component: str) -> None:
        started = self.components.pop(component, None)
        if started is not None:
            started.process.stop()

    def stop_all(self) -> None:
        """Stop every component at once (each stop waits for a graceful exit, bounded)."""
        with ThreadPoolExecutor(max_workers=len(COMPONENTS)) as pool:
            list(pool.map(self.stop, list(self.components)))

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.tls_ca.configure_trust(context)
        return context

    def get(self, component: str, path: str) -> tuple[int, Any]:
        """GET a component's own endpoint (HTTPS for webhook and exporter, HTTP for reconciler metrics)."""
        started = self.components[component]
        scheme = "http" if component == "reconciler" else "https"
        context = None if component == "reconciler" else self.client_context()
        url = f"{scheme}://127.0.0.1:{started.port}{path}"
        try:
            with urllib.request.urlopen(url, context=context, timeout=5) as response:
                body = response.read()
                status = int(response.status)
        except urllib.error.HTTPError as error:
            body, status = error.read(), error.code
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body.decode(errors="replace")

    def wait_ready(self, component: str, path: str = "/readyz", timeout: float = 60.0) -> None:
        started = self.components[component]

        def ready() -> bool:
            if not started.process.running:
                raise AssertionError(f"{component} of {self.cluster.name} exited:\n{started.process.tail()}")
            status, _ = self.get(component, path)
            return status == 200

        try:
            wait_for(ready, timeout=timeout, interval=0.3, what=f"{component} of {self.cluster.name} {path}")
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- {component} log ---\n{started.process.tail(60)}") from None


def _replace_flag(args: list[str], flag: str, replacement: list[str]) -> list[str]:
    if flag not in args:
        raise AssertionError(f"the shipped arguments {args} have no {flag}")
    index = args.index(flag)
    return [*args[:index], *replacement, *args[index + 1 :]]


def _set_flag(args: list[str], flag: str, value: str) -> list[str]:
    if flag not in args:
        raise AssertionError(f"the shipped arguments {args} have no {flag}")
    index = args.index(flag)
    return [*args[: index + 1], value, *args[index + 2 :]]
