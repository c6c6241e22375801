"""docs/install.md steps 10 (upgrade), 12 (troubleshooting) and 11 (uninstall), command by command.

Every ``sh`` command of those sections runs as written and in the written order
(``tests.realcluster.docsteps`` fails on any other), in an admin's shell against the real
apiservers: ``KUBECONFIG`` with the contexts ``cluster-a`` (current) and ``cluster-b``, and
``overlays/cluster-a`` made from ``docs/overlays/cluster-a`` the way step 3 says (every
``CHANGE`` value set; the exporter's host name stays, as no Ingress controller runs here, and the
image is ``istio-federation`` from the nodes' local storage, as in the base) plus what loopback and
1.20 force (the webhook configuration's ``url`` and ``caBundle``; no ``policy/v1``
PodDisruptionBudget). The release installed is ``istio-federation:<version>``, the image built from
this tree; "build and push the new release" tags the same build again, and the overlay's
``newTag`` becomes ``<version>-next``.

These apiservers have no kubelet and no controller-manager, so the test does what they would:
``rollout status`` becomes the old pod stopped and a pod of the Deployment *as stored* started
from the image it names and passing its probe (``Installation.roll``); ``exec deploy/X -- CMD``
becomes CMD in a container of that Deployment's pod (``Installation.exec_in``); and when
``kubectl delete -k`` leaves the namespace ``Terminating``, a stand-in for the namespace controller
stops the pods of deleted Deployments, deletes what is left in the namespace and finalizes it.
What those controllers guarantee themselves (``maxUnavailable: 0``, the PodDisruptionBudget) is
not exercised here.

The module runs last in the tier: it uninstalls istio-federation from cluster-a.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from federation import ownership
from tests.image.podman import podman_command
from tests.realcluster.cluster import wait_for
from tests.realcluster.conftest import Clusters, needs_earlier_steps
from tests.realcluster.docsteps import DocRun, section
from tests.realcluster.story import CONVERGE, HOST, managed, wait_condition, wait_imported
from tests.realcluster.test_30_dry_run import DROP_PDB_ON_1_20
from tests.realcluster.world import (
    COMPONENTS,
    GATEWAYS,
    MANIFESTS,
    NAMESPACE,
    Installation,
    kustomize,
    patch_webhook_client,
    service_account,
    username,
)
from tests.support import REPO_ROOT

EXAMPLE_OVERLAY = REPO_ROOT / "docs" / "overlays" / "cluster-a" / "kustomization.yaml"
EXAMPLE_UUID = "3f0c2a52-9d2e-4c1f-9a57-0d6f1c1b8e21"
EXAMPLE_REGISTRY = "registry.example.com/istio-federation"
IMAGE_NAME = "istio-federation"  # the base's image name, which the tier's pods resolve locally
COMPONENT_LABEL = "app.kubernetes.io/component"
VERSION = importlib.metadata.version("istio-federation")
CHECKOUT_HOST = "checkout.shop.svc.cluster-a.local"
NAMESPACE_TIMEOUT = 120.0
CRD = "customresourcedefinition.apiextensions.k8s.io/istiofederations.deckhouse.io"
# The CRD says `preserveUnknownFields: false`, a default the apiserver does not return, so kubectl's
# client-side apply sends it again every time and reports "configured" for a no-op (docs/install.md 10.2).
ALWAYS_CONFIGURED = (CRD,)
VWC = "validatingwebhookconfiguration.admissionregistration.k8s.io"


@dataclass
class Journey:
    """One admin's walk through the document, and how far it got."""

    federated: Clusters
    home: Path  # the admin's working directory: overlays/cluster-a, keypair.yaml
    kubeconfig: Path  # contexts cluster-a (current) and cluster-b
    old: str  # the release installed: the base's tag, the image built from this tree
    new: str  # the "new release": the same build, tagged again
    reached: set[str] = field(default_factory=set)

    @property
    def a(self) -> Installation:
        return self.federated.a

    @property
    def b(self) -> Installation:
        return self.federated.b

    @property
    def overlay(self) -> Path:
        return self.home / "overlays" / "cluster-a"

    @property
    def from_image(self) -> bool:
        return self.federated.launcher.from_image

    def image(self, tag: str) -> str:
        """What the overlay's ``images:`` makes of ``tag``: the nodes' local image ``istio-federation``
        (``newName`` stays the base's; the test's "registry" is podman's local storage)."""
        return f"{IMAGE_NAME}:{tag}"

    def running(self, tag: str) -> str:
        """The local image a pod of ``image(tag)`` runs (``Launcher.aliases``)."""
        launcher = self.federated.launcher
        return launcher.aliases.get(self.image(tag), "venv") if launcher.from_image else "venv"

    def doc(self, number: int) -> DocRun:
        return DocRun(number, self.home, self.kubeconfig)

    def require(self, *steps: str) -> None:
        missing = sorted(set(steps) - self.reached)
        if missing:
            needs_earlier_steps(f"needs the earlier steps of this module ({', '.join(missing)})")


def user_kubeconfig(path: Path, federated: Clusters) -> Path:
    """An admin's kubeconfig: one context per cluster, named like it; cluster-a current."""
    config: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "current-context": "cluster-a",
                              "clusters": [], "users": [], "contexts": []}  # fmt: skip
    for installation in federated:
        cluster = installation.cluster
        user = f"admin@{cluster.name}"
        config["clusters"].append(
            {"name": cluster.name, "cluster": {"server": cluster.server, "certificate-authority": str(cluster.ca_file)}}
        )
        config["users"].append({"name": user, "user": {"token": cluster.admin_token}})
        config["contexts"].append({"name": cluster.name, "context": {"cluster": cluster.name, "user": user}})
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def journey(federated: Clusters, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Journey]:
    home = tmp_path_factory.mktemp("admin")
    (home / "overlays" / "cluster-a").mkdir(parents=True)
    launcher = federated.launcher
    kubeconfig = user_kubeconfig(home / "kubeconfig", federated)
    found = Journey(federated, home, kubeconfig, old=VERSION, new=f"{VERSION}-next")
    # "Build and push the new release": the same build under a tag of this session's own (the version
    # tag is shared with other sessions on this machine), which the Deployment's new image resolves to.
    tag = f"localhost/istio-federation-rc-{launcher.session}:{found.new}"
    if launcher.image is not None:
        assert launcher.aliases[found.image(found.old)] == launcher.image.reference
        _podman("tag", launcher.image.reference, tag)
        launcher.aliases[found.image(found.new)] = tag
    try:
        yield found
    finally:
        if launcher.image is not None:
            launcher.aliases.pop(found.image(found.new), None)
            subprocess.run(podman_command("untag", launcher.image.reference, tag), capture_output=True, timeout=60,
                           check=False)  # fmt: skip


def _podman(*args: str) -> str:
    result = subprocess.run(podman_command(*args), capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"podman {' '.join(args)}: {result.stderr}"
    return result.stdout


def write_overlay(journey: Journey, tag: str) -> Path:
    """docs/overlays/cluster-a with every CHANGE value set for this cluster, and what loopback forces."""
    a = journey.a
    text = EXAMPLE_OVERLAY.read_text()
    changes = {
        "../../../manifests": os.path.relpath(MANIFESTS, journey.overlay),
        EXAMPLE_UUID: a.cluster_uuid,
        EXAMPLE_REGISTRY: IMAGE_NAME,
    }
    for old, new in changes.items():
        assert text.count(old) == 1, f"{EXAMPLE_OVERLAY} no longer has {old!r} once"
        text = text.replace(old, new)
    text, tags = re.subn(r"newTag: \S+", f"newTag: {tag}", text)
    assert tags == 1
    assert "value: cluster-a.local" in text  # this cluster's domain, as the example has it
    kustomization = yaml.safe_load(text)
    (vwc,) = [obj for obj in kustomize(MANIFESTS) if obj["kind"] == "ValidatingWebhookConfiguration"]
    patch_webhook_client([vwc], f"https://127.0.0.1:{a.webhook_port}", a.tls_ca.cert_pem.bytes())
    loopback = [{"op": "replace", "path": f"/webhooks/{index}/clientConfig", "value": hook["clientConfig"]}
                for index, hook in enumerate(vwc["webhooks"])]  # fmt: skip
    kustomization["patches"] += [
        {"target": {"kind": "ValidatingWebhookConfiguration", "name": vwc["metadata"]["name"]},
         "patch": yaml.safe_dump(loopback)},
        DROP_PDB_ON_1_20,
    ]  # fmt: skip
    (journey.overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
    return journey.overlay


def printed_name(obj: dict[str, Any]) -> str:
    """How kubectl apply/delete names an object: ``kind[.group]/name``."""
    group = obj["apiVersion"].rpartition("/")[0]
    return f"{obj['kind'].lower()}{'.' + group if group else ''}/{obj['metadata']['name']}"


def overlay_objects(journey: Journey, component: str | None = None) -> set[str]:
    objects = kustomize(journey.overlay)
    return {printed_name(obj) for obj in objects
            if component is None or obj["metadata"].get("labels", {}).get(COMPONENT_LABEL) == component}  # fmt: skip


def applied(stdout: str) -> dict[str, str]:
    """``kind[.group]/name verb`` lines of kubectl apply: object -> verb."""
    found = {}
    for line in stdout.splitlines():
        name, _, verb = line.partition(" ")
        found[name] = verb
    return found


def diff_by_object(output: str) -> dict[str, str]:
    """kubectl diff's output split per object (``group.version.Kind.namespace.name``)."""
    found: dict[str, str] = {}
    for chunk in re.split(r"^(?=diff -u -N )", output, flags=re.MULTILINE):
        match = re.match(r"diff -u -N \S+/(\S+) \S+\n", chunk)
        if match:
            found[match[1]] = chunk
    return found


def stored_images(installation: Installation) -> dict[str, str]:
    images = {}
    for component in COMPONENTS:
        deployment = installation.cluster.get_json("deployment", service_account(component), "-n", NAMESPACE)
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        images[component] = container["image"]
    return images


def service_entry_ports(installation: Installation) -> list[str]:
    (entry,) = managed(installation, "serviceentries")
    return [port["name"] for port in entry["spec"]["ports"]]


def set_bar_ports(installation: Installation, names: list[str]) -> None:
    ports = [{"name": name, "port": 8080 + 1010 * index} for index, name in enumerate(names)]
    installation.cluster.kubectl("patch", "service", "bar", "-n", "xyz", "--type=merge",
                                 "-p", json.dumps({"spec": {"ports": ports}}))  # fmt: skip


def wait_ports(installation: Installation, names: list[str]) -> None:
    wait_for(lambda: service_entry_ports(installation) == names, timeout=CONVERGE, interval=0.5,
             what=f"{installation.cluster.name}'s ServiceEntry for {HOST} with ports {names}")  # fmt: skip


def lease_holder(installation: Installation) -> str:
    lease = installation.cluster.get_json("lease", "istio-federation-reconciler", "-n", NAMESPACE)
    return str(lease["spec"].get("holderIdentity") or "")


# -- step 4 of the document, with the example overlay: the release the upgrade starts from -------------


def test_install_from_the_documented_overlay(journey: Journey) -> None:
    a, b = journey.a, journey.b
    # cluster-a's ingress gateway addresses, as cluster-b's were in the story: without them cluster-b's
    # federation with cluster-a cannot be Ready (and cluster-a could not export a service later on).
    a.cluster.apply({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "metadata-exporter-ingressgateway-advertise", "namespace": NAMESPACE},
                     "data": {"gateways.json": json.dumps(GATEWAYS)}})  # fmt: skip
    write_overlay(journey, journey.old)
    doc = journey.doc(4)
    result = doc.run("kubectl apply -k overlays/cluster-a")
    doc.finish()
    verbs = applied(result.stdout)
    assert set(verbs) == overlay_objects(journey)
    # The tier installed the same objects from the base: only the exporter's host differs (and the
    # CRD, which kubectl always reports as configured: see ALWAYS_CONFIGURED). The running pods stay.
    assert {name for name, verb in verbs.items() if verb != "unchanged"} == {
        "ingress.networking.k8s.io/istio-federation-exporter", *ALWAYS_CONFIGURED,
    }  # fmt: skip
    assert stored_images(a) == dict.fromkeys(COMPONENTS, journey.image(journey.old))
    assert {a.components[c].image for c in COMPONENTS} == {journey.running(journey.old)}
    wait_imported(a)
    wait_condition(b, "cluster-a", "Ready", "True")
    journey.reached.add("installed")


# -- step 10: upgrade ----------------------------------------------------------------------------------

KUBELET_REASON = "no kubelet on the test apiserver: the test runs the stored Deployment's pod and waits for its probe"


def test_upgrade_as_documented(journey: Journey) -> None:
    journey.require("installed")
    a, b = journey.a, journey.b
    old, new = journey.image(journey.old), journey.image(journey.new)
    running_old, running_new = journey.running(journey.old), journey.running(journey.new)
    doc = journey.doc(10)

    # 1. the new tag in the overlay; review before applying anything
    write_overlay(journey, journey.new)
    listed = doc.run("kubectl kustomize overlays/cluster-a | grep image:")
    assert [line.strip() for line in listed.stdout.splitlines()] == [f"image: {new}"] * 3
    diff = doc.run("kubectl diff -k overlays/cluster-a", expect=1)  # 1: there are differences
    compared = diff_by_object(diff.stdout)
    deployments = [f"apps.v1.Deployment.{NAMESPACE}.{service_account(c)}" for c in sorted(COMPONENTS)]
    others = "".join(text for name, text in compared.items() if name not in deployments)
    assert sorted(compared) == deployments, f"kubectl diff shows more than the Deployments:\n{others}"
    assert re.findall(r"^-\s+image: (\S+)$", diff.stdout, re.MULTILINE) == [old] * 3
    assert re.findall(r"^\+\s+image: (\S+)$", diff.stdout, re.MULTILINE) == [new] * 3

    # Every object but the namespace is applied by one component label; step 6 applies the namespace.
    labelled = set().union(*(overlay_objects(journey, label) for label in ("crd", "settings", *COMPONENTS)))
    assert overlay_objects(journey) - labelled == {"namespace/istio-federation"}

    # 2. the CRD and the settings first
    result = doc.run("kubectl apply -k overlays/cluster-a -l app.kubernetes.io/component=crd")
    assert set(applied(result.stdout)) == overlay_objects(journey, "crd")
    assert applied(result.stdout) == {CRD: "configured"}  # see ALWAYS_CONFIGURED; kubectl diff showed no change
    result = doc.run("kubectl wait --for condition=Established crd/istiofederations.deckhouse.io --timeout=60s")
    assert result.stdout == f"{CRD} condition met\n"
    result = doc.run("kubectl apply -k overlays/cluster-a -l app.kubernetes.io/component=settings")
    assert applied(result.stdout) == {"configmap/istio-federation-settings": "unchanged"}

    # 3. the webhook, while the old reconciler keeps writing through it
    result = doc.run("kubectl apply -k overlays/cluster-a -l app.kubernetes.io/component=webhook")
    verbs = applied(result.stdout)
    assert set(verbs) == overlay_objects(journey, "webhook")
    assert {name: verb for name, verb in verbs.items() if verb != "unchanged"} == {
        "deployment.apps/istio-federation-webhook": "configured"
    }
    assert stored_images(a) == {"webhook": new, "exporter": old, "reconciler": old}
    doc.instead("kubectl -n istio-federation rollout status deployment/istio-federation-webhook --timeout=5m",
                KUBELET_REASON)  # fmt: skip
    a.roll("webhook")
    (entry,) = managed(a, "serviceentries")
    uid = entry["metadata"]["uid"]
    running = {c: a.components[c].image for c in COMPONENTS}
    assert running == {"webhook": running_new, "exporter": running_old, "reconciler": running_old}
    set_bar_ports(b, ["http", "grpc"])  # the old reconciler's update passes the new webhook
    wait_ports(a, ["http", "grpc"])

    # 4. the exporter; the peer keeps its last good copy, then reads the new one
    result = doc.run("kubectl apply -k overlays/cluster-a -l app.kubernetes.io/component=exporter")
    verbs = applied(result.stdout)
    assert set(verbs) == overlay_objects(journey, "exporter")
    assert {name: verb for name, verb in verbs.items() if verb != "unchanged"} == {
        "deployment.apps/istio-federation-exporter": "configured"
    }
    doc.instead("kubectl -n istio-federation rollout status deployment/istio-federation-exporter --timeout=5m",
                KUBELET_REASON)  # fmt: skip
    a.roll("exporter")
    wait_condition(b, "cluster-a", "Ready", "True")

    # 5. the reconciler last: the Lease passes to the new pod, nothing is written twice
    result = doc.run("kubectl apply -k overlays/cluster-a -l app.kubernetes.io/component=reconciler")
    verbs = applied(result.stdout)
    assert set(verbs) == overlay_objects(journey, "reconciler")
    assert {name: verb for name, verb in verbs.items() if verb != "unchanged"} == {
        "deployment.apps/istio-federation-reconciler": "configured"
    }
    holder = lease_holder(a)
    doc.instead("kubectl -n istio-federation rollout status deployment/istio-federation-reconciler --timeout=5m",
                KUBELET_REASON)  # fmt: skip
    a.roll("reconciler")
    wait_for(lambda: lease_holder(a) not in ("", holder), timeout=CONVERGE, interval=0.5,
             what="the new reconciler holding the Lease")  # fmt: skip
    set_bar_ports(b, ["http"])  # the new reconciler follows the remote
    wait_ports(a, ["http"])
    (entry,) = managed(a, "serviceentries")
    assert entry["metadata"]["uid"] == uid  # updated in place through the whole upgrade, never recreated
    assert {a.components[c].image for c in COMPONENTS} == {running_new}

    # 6. the whole overlay: nothing left to change; the version the pods run
    result = doc.run("kubectl apply -k overlays/cluster-a")
    assert applied(result.stdout) == {**dict.fromkeys(overlay_objects(journey), "unchanged"),
                                      **dict.fromkeys(ALWAYS_CONFIGURED, "configured")}  # fmt: skip
    words = doc.instead(
        "kubectl -n istio-federation exec deploy/istio-federation-webhook -- istio-federation --version",
        "no kubelet: the command runs in a container of the Deployment's pod",
    )
    assert words[:6] == ["kubectl", "-n", NAMESPACE, "exec", "deploy/istio-federation-webhook", "--"]
    version = a.exec_in("webhook", words[6:])
    assert (version.returncode, version.stdout) == (0, f"istio-federation {VERSION}\n"), version.stderr
    doc.finish()

    # Troubleshooting's image check (step 12) names the new image everywhere.
    images = "kubectl -n istio-federation get deployments -o jsonpath='{..image}'"
    assert f"`{images}`" in section(12)
    assert doc.shell(images).stdout.split() == [new] * 3
    journey.reached.add("upgraded")


# -- step 12: troubleshooting starts with `istio-federation check` -----------------------------------------


def test_check_in_the_reconcilers_pod_passes_with_its_permissions(journey: Journey) -> None:
    journey.require("upgraded")
    a = journey.a
    doc = journey.doc(12)
    uuid = doc.run("UUID=$(kubectl -n istio-federation get configmap istio-federation-settings "
                   "-o jsonpath='{.data.cluster-uuid}')")  # fmt: skip
    domain = doc.run("DOMAIN=$(kubectl -n istio-federation get configmap istio-federation-settings "
                     "-o jsonpath='{.data.cluster-domain}')")  # fmt: skip
    assert (uuid.stdout, domain.stdout) == (a.cluster_uuid, "cluster-a.local")
    words = doc.instead(
        'kubectl -n istio-federation exec deploy/istio-federation-reconciler -- istio-federation check '
        '--cluster-uuid "$UUID" --local-trust-domain "$DOMAIN" --in-cluster',
        "no kubelet: the command runs in a container of the Deployment's pod, with its ServiceAccount token",
    )
    assert words[:6] == ["kubectl", "-n", NAMESPACE, "exec", "deploy/istio-federation-reconciler", "--"]
    assert words[6:] == ["istio-federation", "check", "--cluster-uuid", a.cluster_uuid,
                         "--local-trust-domain", "cluster-a.local", "--in-cluster"]  # fmt: skip
    since = time.time()
    result = a.exec_in("reconciler", words[6:])
    doc.finish()
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    header = f"IstioFederation cluster-b: trust domain cluster-b.local, endpoint {journey.b.endpoint}"
    assert lines[0] == header, lines
    assert re.fullmatch(r"all \d+ checks passed", lines[-1]), lines
    # Only the reconciler's RBAC: the real apiserver refused none of the requests made with its token
    # meanwhile (check's own, such as its initial lists, and the running reconciler's).
    mine = [event for event in a.cluster.audit_events()
            if event["user"]["username"] == username("reconciler") and received(event) >= since]  # fmt: skip
    assert [event for event in mine if event["verb"] == "list"], "check listed nothing as the reconciler"
    assert [event["requestURI"] for event in mine if event["responseStatus"]["code"] == 403] == []
    journey.reached.add("checked")


# -- step 11: uninstall, with cluster-a leaving ------------------------------------------------------------


def received(event: dict[str, Any]) -> float:
    return timestamp(event["requestReceivedTimestamp"])


def completed(event: dict[str, Any]) -> float:
    return timestamp(event["stageTimestamp"])


def timestamp(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def peer_domain(host: str) -> str:
    return host.split(".svc.", 1)[1] if ".svc." in host else ""


@dataclass
class Sample:
    at: float
    cluster: str
    hosts: list[str]  # of ServiceEntries naming a peer's host
    trusted: list[str]  # trust domains with a root in meshConfig.caCertificates


class TrustWatch(threading.Thread):
    """Samples each cluster's ServiceEntries and mesh trust about ten times a second: a workload
    loses trust mid-way if a ServiceEntry routes to a peer whose root is no longer trusted."""

    def __init__(self, federated: Clusters) -> None:
        super().__init__(name="trust-watch", daemon=True)
        self.installations = list(federated)
        self.samples: list[Sample] = []
        self.errors: list[str] = []
        self.halt = threading.Event()

    def _get(self, installation: Installation, path: str) -> Any:
        cluster = installation.cluster
        request = urllib.request.Request(cluster.server + path,
                                         headers={"Authorization": f"Bearer {cluster.admin_token}"})  # fmt: skip
        try:
            with urllib.request.urlopen(request, context=cluster.ssl_context(), timeout=5) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise

    def _trusted(self, installation: Installation) -> set[str]:
        config_map = self._get(installation, "/api/v1/namespaces/istio-system/configmaps/istio")
        return set(trust_domains(yaml.safe_load(config_map["data"]["mesh"]) or {}))

    def sample(self, installation: Installation) -> Sample:
        """The ServiceEntries read between two reads of the mesh trust, a root counted as trusted if
        either read had it. Two GETs are not one snapshot: a ServiceEntry deleted and its root
        removed right after, between the GETs, would look like a route without trust (and a root
        added and its ServiceEntry created between them, the same), though at no moment was there
        one. A route without trust that lasts across the three reads is still seen."""
        before = self._trusted(installation)
        entries = self._get(installation, "/apis/networking.istio.io/v1/serviceentries") or {"items": []}
        hosts = sorted(host for entry in entries["items"] for host in entry["spec"].get("hosts", [])
                       if peer_domain(host))  # fmt: skip
        after = self._trusted(installation)
        return Sample(time.time(), installation.cluster.name, hosts, sorted(before | after))

    def run(self) -> None:
        while not self.halt.is_set():
            for installation in self.installations:
                try:
                    self.samples.append(self.sample(installation))
                except Exception as error:  # a failed sample is reported, never fatal to the thread
                    self.errors.append(f"{installation.cluster.name}: {type(error).__name__}: {error}")
            self.halt.wait(0.1)

    def stop(self) -> list[Sample]:
        """Stop sampling, after one last sample of each cluster: the state the test has just waited
        for may have come after the thread's last round."""
        self.halt.set()
        self.join(timeout=30)
        for installation in self.installations:
            self.samples.append(self.sample(installation))
        return self.samples

    def untrusted_routes(self) -> list[Sample]:
        return [s for s in self.samples if any(peer_domain(host) not in s.trusted for host in s.hosts)]


class NamespaceController(threading.Thread):
    """What kube-controller-manager's namespace controller and the kubelet do when a namespace is
    deleted; neither runs on the test apiserver, so without this ``kubectl delete -k`` would wait
    for the namespace forever. Once the namespace is ``Terminating`` (its objects still there), it
    stops the pod of each component whose Deployment is gone, deletes what is left in the namespace
    and removes the ``kubernetes`` finalizer."""

    def __init__(self, installation: Installation, namespace: str) -> None:
        super().__init__(name="namespace-controller", daemon=True)
        self.installation = installation
        self.namespace = namespace
        self.terminating_with: list[str] = []  # what the components made there, still in it while Terminating
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as error:  # reported by the test
            self.error = error

    def _run(self) -> None:
        cluster = self.installation.cluster
        wait_for(lambda: cluster.get_json("namespace", self.namespace)["metadata"].get("deletionTimestamp"),
                 timeout=NAMESPACE_TIMEOUT, interval=0.2, what=f"namespace {self.namespace} Terminating")  # fmt: skip
        made = cluster.kubectl("get", "secrets,leases", "-n", self.namespace, "-o", "name").stdout
        self.terminating_with = sorted(made.split())

        def pods_of_deleted_deployments_stopped() -> bool:
            left = {item["metadata"]["name"] for item in cluster.get_json("deployments", "-n", self.namespace)["items"]}
            for component in list(self.installation.components):
                if service_account(component) not in left:
                    self.installation.stop(component)
            return not self.installation.components

        wait_for(pods_of_deleted_deployments_stopped, timeout=NAMESPACE_TIMEOUT, interval=0.5,
                 what="every component's Deployment deleted")  # fmt: skip
        kinds = cluster.kubectl("api-resources", "--namespaced=true", "--verbs=list,delete", "-o", "name").stdout
        cluster.kubectl("delete", ",".join(kinds.split()), "--all", "-n", self.namespace, "--wait=false",
                        "--ignore-not-found")  # fmt: skip
        namespace = cluster.get_json("namespace", self.namespace)
        namespace["spec"]["finalizers"] = []
        cluster.kubectl("replace", "--raw", f"/api/v1/namespaces/{self.namespace}/finalize", "-f", "-",
                        stdin=json.dumps(namespace))  # fmt: skip


def export_checkout(journey: Journey) -> None:
    """cluster-a publishes a service (step 7's command), so that cluster-b imports it before cluster-a leaves."""
    a, b = journey.a, journey.b
    a.cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    a.cluster.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "checkout", "namespace": "shop"},
                     "spec": {"ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}})  # fmt: skip
    label = 'kubectl -n shop label service checkout federation.istio.deckhouse.io/public-service=""'
    assert label in section(7)
    assert journey.doc(7).shell(label).stdout == "service/checkout labeled\n"
    wait_for(lambda: CHECKOUT_HOST in [h for e in managed(b, "serviceentries") for h in e["spec"]["hosts"]],
             timeout=CONVERGE, interval=0.5, what=f"cluster-b importing {CHECKOUT_HOST}")  # fmt: skip


def trust_domains(mesh: dict[str, Any]) -> list[str]:
    """The trust domains meshConfig.caCertificates holds roots for."""
    return sorted({domain for entry in mesh.get("caCertificates") or [] for domain in entry.get("trustDomains", [])})


def trusts(installation: Installation) -> list[str]:
    config_map = installation.cluster.get_json("configmap", "istio", "-n", "istio-system")
    return trust_domains(yaml.safe_load(config_map["data"]["mesh"]) or {})


def reconciler_writes(installation: Installation, since: float) -> list[dict[str, Any]]:
    """The reconciler's successful writes (deletes, updates, patches) from ``since``, in order."""
    return sorted(
        (event for event in installation.cluster.audit_events()
         if event["user"]["username"] == username("reconciler") and event["verb"] in ("delete", "update", "patch")
         and event["responseStatus"]["code"] < 300 and received(event) >= since),
        key=received,
    )  # fmt: skip


def is_mesh_write(event: dict[str, Any]) -> bool:
    ref = event["objectRef"]
    return bool(ref["resource"] == "configmaps" and ref.get("name") == "istio")


def is_managed_delete(event: dict[str, Any]) -> bool:
    return bool(event["verb"] == "delete" and event["objectRef"]["resource"] in ("serviceentries", "destinationrules"))


def test_uninstall_as_documented(journey: Journey) -> None:
    journey.require("upgraded")
    a, b = journey.a, journey.b
    export_checkout(journey)
    assert (trusts(a), trusts(b)) == (["cluster-b.local"], ["cluster-a.local"])
    watch = TrustWatch(journey.federated)
    watch.start()
    doc = journey.doc(11)
    try:
        # 1. cluster-a stops exporting; cluster-b deletes its ServiceEntry and keeps trusting cluster-a
        listed = doc.run("kubectl get services -A -l federation.istio.deckhouse.io/public-service")
        rows = [line.split()[:2] for line in listed.stdout.splitlines()]
        assert rows == [["NAMESPACE", "NAME"], ["shop", "checkout"]]
        step1 = time.time()
        result = doc.run("kubectl label services -A -l federation.istio.deckhouse.io/public-service "
                         "federation.istio.deckhouse.io/public-service-")  # fmt: skip
        assert result.stdout == "service/checkout unlabeled\n"
        doc.run_until(
            "kubectl --context cluster-b get serviceentries -A -o custom-columns=NAMESPACE:.metadata.namespace,"
            "NAME:.metadata.name,HOSTS:.spec.hosts --no-headers | grep 'cluster-a\\.local'",
            lambda r: (r.code, r.stdout, r.stderr) == (1, "", ""), timeout=CONVERGE,
        )  # fmt: skip
        assert trusts(b) == ["cluster-a.local"]
        b_writes = reconciler_writes(b, step1)
        deleted = sorted(e["objectRef"]["resource"] for e in b_writes if is_managed_delete(e))
        assert deleted == ["destinationrules", "serviceentries"]
        assert [e for e in b_writes if is_mesh_write(e)] == []

        # 2. cluster-a deletes its IstioFederations: ServiceEntries and DestinationRules first, then the roots
        step2 = time.time()
        result = doc.run("kubectl delete istiofederations --all")
        assert result.stdout == 'istiofederation.deckhouse.io "cluster-b" deleted\n'
        assert "Warning: IstioFederation cluster-b owns 1 ServiceEntry; the reconciler deletes them with their " \
               "DestinationRules" in result.stderr  # fmt: skip
        doc.run_until("kubectl get serviceentries,destinationrules -A -l app.kubernetes.io/managed-by=istio-federation",
                      lambda r: (r.code, r.stdout, r.stderr) == (0, "", "No resources found\n"), timeout=CONVERGE)
        doc.run_until("kubectl -n istio-system get configmap istio -o jsonpath='{.data.mesh}' | grep -A2 trustDomains",
                      lambda r: (r.code, r.stdout, r.stderr) == (1, "", ""), timeout=CONVERGE)  # fmt: skip
        a_writes = reconciler_writes(a, step2)
        deletes = [e for e in a_writes if is_managed_delete(e)]
        mesh_writes = [e for e in a_writes if is_mesh_write(e)]
        assert sorted(e["objectRef"]["resource"] for e in deletes) == ["destinationrules", "serviceentries"]
        assert mesh_writes, "the reconciler never removed cluster-b's root"
        assert max(map(completed, deletes)) <= min(map(received, mesh_writes)), (
            "cluster-b's root left cluster-a's mesh trust before the ServiceEntry routing to it"
        )
        assert trusts(b) == ["cluster-a.local"]  # cluster-b still trusts the leaving cluster

        # 3. the peer deletes its IstioFederation for cluster-a: cluster-a's root leaves its mesh trust
        result = doc.run("kubectl --context cluster-b delete istiofederation cluster-a")
        assert result.stdout == 'istiofederation.deckhouse.io "cluster-a" deleted\n'
        wait_for(lambda: trusts(b) == [], timeout=CONVERGE, interval=0.5, what="cluster-a's root gone from cluster-b")
    finally:
        samples = watch.stop()
    assert watch.errors == []
    assert watch.untrusted_routes() == [], "a ServiceEntry routed to a peer whose root was not trusted"
    seen = {(s.cluster, tuple(s.hosts), tuple(s.trusted)) for s in samples}
    assert ("cluster-b", (CHECKOUT_HOST,), ("cluster-a.local",)) in seen  # before step 1 took effect
    assert ("cluster-b", (), ("cluster-a.local",)) in seen  # between steps 1 and 3
    assert ("cluster-a", (), ()) in seen
    assert ("cluster-b", (), ()) in seen

    # 4. the keypair saved, the webhook configuration before the webhook, then everything else
    result = doc.run("kubectl -n istio-federation get secret istio-federation-authn-keypair -o yaml > keypair.yaml")
    saved = yaml.safe_load((journey.home / "keypair.yaml").read_text())
    assert sorted(saved["data"]) == ["priv.pem", "pub.pem"]
    result = doc.run("kubectl delete validatingwebhookconfiguration istio-federation")
    assert result.stdout == f'{VWC} "istio-federation" deleted\n'
    expected = overlay_objects(journey) - {f"{VWC}/istio-federation"}
    controller = NamespaceController(a, NAMESPACE)
    controller.start()
    result = doc.run("kubectl delete -k overlays/cluster-a --ignore-not-found", timeout=NAMESPACE_TIMEOUT + 60)
    controller.join(timeout=NAMESPACE_TIMEOUT)
    assert not controller.is_alive(), "the namespace controller stand-in did not finish"
    assert controller.error is None, controller.error
    assert sorted(_deleted_name(line) for line in result.stdout.splitlines()) == sorted(expected), result.output
    # The namespace was left Terminating with what the reconciler made in it, until its controller ran.
    assert controller.terminating_with == [
        "lease.coordination.k8s.io/istio-federation-reconciler", "secret/istio-federation-authn-keypair",
    ]  # fmt: skip
    doc.run("kubectl get namespace istio-federation", expect=1)
    leftovers = doc.run("kubectl get customresourcedefinitions,clusterroles,clusterrolebindings,"
                        "validatingwebhookconfigurations,roles,rolebindings -A "
                        "-l app.kubernetes.io/part-of=istio-federation")  # fmt: skip
    assert (leftovers.stdout, leftovers.stderr) == ("", "No resources found\n")
    doc.finish()

    # No pod of cluster-a is left, and ServiceEntries are written without any webhook.
    assert a.components == {}
    assert [name for name in journey.federated.launcher.containers() if "-cluster-a-" in name] == []
    entry = {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
             "metadata": {"name": "after-uninstall", "namespace": "default"},
             "spec": {"hosts": ["after.example.com"], "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
                      "resolution": "DNS"}}  # fmt: skip
    assert a.cluster.apply(entry).stdout == "serviceentry.networking.istio.io/after-uninstall created\n"
    # What stays, as the document says: the Events (the apiserver expires them after an hour).
    selector = "involvedObject.kind=IstioFederation,involvedObject.name=cluster-b"
    assert a.cluster.get_json("events", "-n", "default", "--field-selector", selector)["items"]
    assert ownership.selector() == "app.kubernetes.io/managed-by=istio-federation"  # what step 2 lists by
    journey.reached.add("uninstalled")


def _deleted_name(line: str) -> str:
    """``kind.group "name" deleted`` (kubectl delete) as ``kind.group/name``."""
    match = re.fullmatch(r'(\S+) "([^"]+)" deleted', line)
    assert match, line
    return f"{match[1]}/{match[2]}"
