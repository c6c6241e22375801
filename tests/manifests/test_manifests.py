"""The kustomize base as ``kubectl apply -k manifests`` would send it: objects, settings and schemas."""

from __future__ import annotations

import copy
import importlib.metadata
import os
import re
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
COMPONENT = MANIFESTS / "components" / "prometheus-rule"
NS = "istio-federation"
KUBECTL = "/usr/bin/kubectl"
# The oldest Kubernetes minor we claim to support, and the newest the installed schemas know.
SCHEMA_VERSIONS = ("1.33", kubernetes_validate.latest_version())
# Kinds from CRDs have no schema in kubernetes_validate; they get the structural checks below.
CUSTOM_KINDS = {"PrometheusRule", "PodMonitor"}

Obj = dict[str, Any]

# The image the manifests run: tagged with the package's version (pyproject.toml, via the installed
# metadata), running as the numeric user and group of the Containerfile's USER line.
VERSION = importlib.metadata.version("istio-federation")
IMAGE = f"istio-federation:{VERSION}"
EXAMPLE_OVERLAY = REPO / "docs" / "overlays" / "cluster-a"


def image_user() -> tuple[int, int]:
    (user,) = re.findall(r"^USER (\d+):(\d+)$", (REPO / "Containerfile").read_text(encoding="utf-8"), re.MULTILINE)
    return int(user[0]), int(user[1])


def kustomize(directory: Path) -> list[Obj]:
    result = subprocess.run(
        [KUBECTL, "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def overlay(tmp_path: Path, body: str) -> list[Obj]:
    """Build a throwaway overlay on top of the base; kustomize only accepts relative paths."""
    base = os.path.relpath(MANIFESTS, tmp_path)
    (tmp_path / "kustomization.yaml").write_text(body.replace("BASE", base), encoding="utf-8")
    return kustomize(tmp_path)


@pytest.fixture(scope="module")
def built() -> list[Obj]:
    return kustomize(MANIFESTS)


@pytest.fixture(scope="module")
def with_component(tmp_path_factory: pytest.TempPathFactory) -> list[Obj]:
    return overlay(
        tmp_path_factory.mktemp("overlay"), "resources: [BASE]\ncomponents: [BASE/components/prometheus-rule]\n"
    )


def find(objects: list[Obj], kind: str, name: str, namespace: str | None = None) -> Obj:
    matches = [
        o
        for o in objects
        if o["kind"] == kind and o["metadata"]["name"] == name and o["metadata"].get("namespace") == namespace
    ]
    assert len(matches) == 1, f"expected one {kind} {namespace}/{name}, found {len(matches)}"
    return matches[0]


def containers(objects: list[Obj], name: str) -> Iterator[Obj]:
    yield from find(objects, "Deployment", name, NS)["spec"]["template"]["spec"]["containers"]


def rules(objects: list[Obj], kind: str, name: str, namespace: str | None = None) -> list[Obj]:
    return [
        {key: rule[key] for key in ("apiGroups", "resources", "resourceNames", "verbs") if key in rule}
        for rule in find(objects, kind, name, namespace)["rules"]
    ]


# -- inventory -----------------------------------------------------------------------------------


def test_the_base_holds_exactly_the_expected_objects(built: list[Obj]) -> None:
    inventory = sorted((o["kind"], o["metadata"].get("namespace") or "", o["metadata"]["name"]) for o in built)
    expected = [("Namespace", "", NS), ("CustomResourceDefinition", "", "istiofederations.deckhouse.io")]
    expected += [("ConfigMap", NS, "istio-federation-settings")]
    expected += [("ValidatingWebhookConfiguration", "", "istio-federation")]
    expected += [("Role", "istio-system", "istio-federation-reconciler-mesh-config")]
    expected += [("RoleBinding", "istio-system", "istio-federation-reconciler-mesh-config")]
    expected += [("Role", "default", "istio-federation-reconciler-events")]
    expected += [("RoleBinding", "default", "istio-federation-reconciler-events")]
    expected += [("PodDisruptionBudget", NS, "istio-federation-webhook")]
    expected += [("Ingress", NS, "istio-federation-exporter")]
    for component in ("webhook", "exporter", "reconciler"):
        name = f"istio-federation-{component}"
        expected += [("ServiceAccount", NS, name), ("Deployment", NS, name), ("ClusterRole", "", name)]
        expected += [("ClusterRoleBinding", "", name)]
    expected += [("Service", NS, "istio-federation-webhook"), ("Service", NS, "istio-federation-exporter")]
    for component in ("exporter", "reconciler"):
        expected += [
            ("Role", NS, f"istio-federation-{component}"),
            ("RoleBinding", NS, f"istio-federation-{component}"),
        ]
    assert inventory == sorted(expected)


def test_every_object_is_labelled_part_of_istio_federation(built: list[Obj]) -> None:
    unlabelled = [
        o["metadata"]["name"] for o in built if o["metadata"]["labels"].get("app.kubernetes.io/part-of") != NS
    ]
    assert unlabelled == []


def test_settings_are_placeholders_the_admin_must_replace(built: list[Obj]) -> None:
    settings = find(built, "ConfigMap", "istio-federation-settings", NS)
    assert settings["data"] == {"cluster-domain": "SET-ME", "cluster-uuid": "SET-ME"}


# -- schemas -------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_every_built_in_object_matches_the_kubernetes_openapi_schema(
    built: list[Obj], with_component: list[Obj], version: str
) -> None:
    validated, custom = 0, []
    for obj in with_component:
        if obj["kind"] in CUSTOM_KINDS:
            custom.append(obj["kind"])
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{obj['kind']} {obj['metadata']['name']} is invalid for {version}: {error.message}")
        validated += 1
    assert validated == len(built)  # every object of the base, nothing skipped
    assert sorted(custom) == sorted(CUSTOM_KINDS)


# -- webhook -------------------------------------------------------------------------------------


def test_validating_webhook_configuration_settings(built: list[Obj]) -> None:
    vwc = find(built, "ValidatingWebhookConfiguration", "istio-federation")
    assert [hook["name"] for hook in vwc["webhooks"]] == [
        "istiofederations.istio-federation.deckhouse.io",
        "serviceentries.istio-federation.deckhouse.io",
        "destinationrules.istio-federation.deckhouse.io",
    ]
    for hook in vwc["webhooks"]:
        assert hook["failurePolicy"] == "Fail"
        assert hook["sideEffects"] == "None"
        assert hook["timeoutSeconds"] == 5
        assert hook["matchPolicy"] == "Equivalent"
        assert hook["admissionReviewVersions"] == ["v1"]
        assert hook["clientConfig"]["service"] == {
            "name": "istio-federation-webhook",
            "namespace": NS,
            "path": "/validate",
            "port": 443,
        }
    assert vwc["webhooks"][0]["rules"] == [
        {
            "apiGroups": ["deckhouse.io"],
            "apiVersions": ["v1alpha1"],
            "operations": ["CREATE", "UPDATE", "DELETE"],
            "resources": ["istiofederations"],
            "scope": "Cluster",
        }
    ]
    assert vwc["webhooks"][1]["rules"] == [
        {
            "apiGroups": ["networking.istio.io"],
            "apiVersions": ["v1", "v1beta1", "v1alpha3"],
            "operations": ["CREATE", "UPDATE", "DELETE"],
            "resources": ["serviceentries"],
            "scope": "Namespaced",
        }
    ]
    assert "objectSelector" not in vwc["webhooks"][1]  # every ServiceEntry is checked
    assert vwc["webhooks"][2]["rules"] == [
        {
            "apiGroups": ["networking.istio.io"],
            "apiVersions": ["v1", "v1beta1", "v1alpha3"],
            "operations": ["CREATE", "UPDATE", "DELETE"],
            "resources": ["destinationrules"],
            "scope": "Namespaced",
        }
    ]
    # Only managed DestinationRules reach the webhook: the rest of the mesh never depends on it.
    assert vwc["webhooks"][2]["objectSelector"] == {"matchLabels": {"app.kubernetes.io/managed-by": "istio-federation"}}


def test_webhook_service_reaches_the_https_port(built: list[Obj]) -> None:
    service = find(built, "Service", "istio-federation-webhook", NS)
    assert service["spec"]["ports"] == [{"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}]
    (container,) = containers(built, "istio-federation-webhook")
    assert container["ports"] == [{"name": "https", "containerPort": 8443, "protocol": "TCP"}]
    template = find(built, "Deployment", "istio-federation-webhook", NS)["spec"]["template"]
    template_labels = template["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= template_labels.items()


def test_webhook_deployment(built: list[Obj]) -> None:
    deployment = find(built, "Deployment", "istio-federation-webhook", NS)
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "istio-federation-webhook"
    assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }
    assert pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    (container,) = pod["containers"]
    assert [*container["command"], *container["args"]] == [
        "istio-federation", "webhook", "serve",
        "--tls-cert-file", "/tls/tls.crt",
        "--tls-private-key-file", "/tls/tls.key",
        "--port", "8443",
        "--local-trust-domain", "$(CLUSTER_DOMAIN)",
        "--reconciler-username", "system:serviceaccount:istio-federation:istio-federation-reconciler",
        "--in-cluster",
    ]  # fmt: skip
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "https", "scheme": "HTTPS"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "https", "scheme": "HTTPS"}


def test_webhook_tls_secret_is_mounted_as_a_directory_so_rotation_reaches_the_pod(built: list[Obj]) -> None:
    pod = find(built, "Deployment", "istio-federation-webhook", NS)["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "istio-federation-webhook-tls"
    (container,) = pod["containers"]
    mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
    assert mounts["tls"] == {"name": "tls", "mountPath": "/tls", "readOnly": True}


def test_no_container_mounts_with_subpath(built: list[Obj]) -> None:
    for deployment in (o for o in built if o["kind"] == "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            for mount in container.get("volumeMounts", []):
                assert "subPath" not in mount, deployment["metadata"]["name"]
                assert "subPathExpr" not in mount, deployment["metadata"]["name"]


def test_webhook_pod_disruption_budget(built: list[Obj]) -> None:
    pdb = find(built, "PodDisruptionBudget", "istio-federation-webhook", NS)
    assert pdb["spec"] == {
        "minAvailable": 1,
        "selector": {
            "matchLabels": {"app.kubernetes.io/name": "istio-federation", "app.kubernetes.io/component": "webhook"}
        },
    }


# -- exporter ------------------------------------------------------------------------------------


def test_exporter_deployment_service_and_ingress(built: list[Obj]) -> None:
    deployment = find(built, "Deployment", "istio-federation-exporter", NS)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert [*container["command"], *container["args"]] == [
        "istio-federation", "exporter", "serve",
        "--cluster-uuid", "$(CLUSTER_UUID)",
        "--cluster-domain", "$(CLUSTER_DOMAIN)",
        "--in-cluster",
        "--namespace", "istio-federation",
        "--port", "8080",
        "--gateway-namespace", "istio-system",
        "--gateway-selector", "istio=ingressgateway",
    ]  # fmt: skip
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    service = find(built, "Service", "istio-federation-exporter", NS)
    assert service["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}]
    ingress = find(built, "Ingress", "istio-federation-exporter", NS)["spec"]
    assert ingress["tls"] == [{"hosts": ["istio-metadata.example.com"], "secretName": "istio-federation-metadata-tls"}]
    (rule,) = ingress["rules"]
    assert rule["host"] == "istio-metadata.example.com"
    assert rule["http"]["paths"] == [
        {
            "path": "/metadata/",
            "pathType": "Prefix",
            "backend": {"service": {"name": "istio-federation-exporter", "port": {"name": "http"}}},
        }
    ]


# -- reconciler ----------------------------------------------------------------------------------


def test_reconciler_deployment(built: list[Obj]) -> None:
    deployment = find(built, "Deployment", "istio-federation-reconciler", NS)
    assert deployment["spec"]["replicas"] == 2
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert [*container["command"], *container["args"]] == [
        "istio-federation", "reconciler", "run",
        "--cluster-uuid", "$(CLUSTER_UUID)",
        "--local-trust-domain", "$(CLUSTER_DOMAIN)",
        "--in-cluster",
        "--namespace", "istio-federation",
        "--interval", "60s",
        "--metrics-port", "9090",
    ]  # fmt: skip
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["ports"] == [{"name": "metrics", "containerPort": 9090, "protocol": "TCP"}]


# -- every Deployment ----------------------------------------------------------------------------


@pytest.mark.parametrize("component", ["webhook", "exporter", "reconciler"])
def test_deployment_is_restricted_and_sized(built: list[Obj], component: str) -> None:
    name = f"istio-federation-{component}"
    deployment = find(built, "Deployment", name, NS)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == name
    uid, gid = image_user()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (uid, gid)
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector == {"app.kubernetes.io/name": "istio-federation", "app.kubernetes.io/component": component}
    settings = find(built, "ConfigMap", "istio-federation-settings", NS)["data"]
    for container in pod["containers"]:
        assert container["image"] == IMAGE
        security = container["securityContext"]
        assert security == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": uid,
            "runAsGroup": gid,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert set(container["resources"]["requests"]) == {"cpu", "memory"}
        assert set(container["resources"]["limits"]) == {"cpu", "memory"}
        for env in container["env"]:  # every $(VAR) comes from a key that exists
            ref = env["valueFrom"]["configMapKeyRef"]
            assert ref["name"] == "istio-federation-settings"
            assert ref["key"] in settings


def test_writable_volumes_only_where_a_component_writes(built: list[Obj]) -> None:
    """gunicorn (webhook, exporter) keeps its worker heartbeat files and shared metrics in /tmp; the
    reconciler writes nothing to disk. Everything else is read-only (tests/image runs them so)."""
    tmp = {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}
    writable: dict[str, list[str]] = {}
    for component in ("webhook", "exporter", "reconciler"):
        pod = find(built, "Deployment", f"istio-federation-{component}", NS)["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
        mounts = container.get("volumeMounts", [])
        assert {mount["name"] for mount in mounts} == set(volumes)
        writable[component] = [mount["mountPath"] for mount in mounts if not mount.get("readOnly")]
        for mount in mounts:
            if not mount.get("readOnly"):
                assert volumes[mount["name"]] == tmp
    assert writable == {"webhook": ["/tmp"], "exporter": ["/tmp"], "reconciler": []}


def test_image_tag_is_the_package_version_from_one_source() -> None:
    with (REPO / "pyproject.toml").open("rb") as handle:
        pyproject_version = tomllib.load(handle)["project"]["version"]
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text(encoding="utf-8"))
    assert kustomization["images"] == [{"name": "istio-federation", "newTag": VERSION}]
    overlay = yaml.safe_load((EXAMPLE_OVERLAY / "kustomization.yaml").read_text(encoding="utf-8"))
    assert overlay["images"] == [
        {"name": "istio-federation", "newName": "registry.example.com/istio-federation", "newTag": VERSION}
    ]
    assert pyproject_version == VERSION


def test_example_overlay_changes_only_settings_ingress_host_and_image(built: list[Obj]) -> None:
    objects = kustomize(EXAMPLE_OVERLAY)
    host = "istio-metadata.cluster-a.example.com"
    expected = copy.deepcopy(built)
    for obj in expected:
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == "istio-federation-settings":
            obj["data"] = {"cluster-domain": "cluster-a.local", "cluster-uuid": "3f0c2a52-9d2e-4c1f-9a57-0d6f1c1b8e21"}
        if obj["kind"] == "Ingress":
            obj["spec"]["rules"][0]["host"] = host
            obj["spec"]["tls"][0]["hosts"] = [host]
        if obj["kind"] == "Deployment":
            for container in obj["spec"]["template"]["spec"]["containers"]:
                container["image"] = f"registry.example.com/istio-federation:{VERSION}"
    assert objects == expected


def test_image_is_overridable_with_kustomize_images(tmp_path: Path) -> None:
    objects = overlay(
        tmp_path,
        "resources: [BASE]\nimages:\n  - name: istio-federation\n"
        "    newName: registry.example.com/istio-federation\n    newTag: 0.2.0\n",
    )
    images = {
        container["image"]
        for o in objects
        if o["kind"] == "Deployment"
        for container in o["spec"]["template"]["spec"]["containers"]
    }
    assert images == {"registry.example.com/istio-federation:0.2.0"}


# -- RBAC ----------------------------------------------------------------------------------------

WATCH = ["list", "watch"]  # what a component that only reads through its watch cache needs


def test_webhook_rbac_is_read_only(built: list[Obj]) -> None:
    assert rules(built, "ClusterRole", "istio-federation-webhook") == [
        {"apiGroups": ["deckhouse.io"], "resources": ["istiofederations"], "verbs": WATCH},
        {"apiGroups": ["networking.istio.io"], "resources": ["serviceentries"], "verbs": WATCH},
    ]


def test_exporter_rbac(built: list[Obj]) -> None:
    assert rules(built, "ClusterRole", "istio-federation-exporter") == [
        {"apiGroups": [""], "resources": ["services", "pods", "nodes"], "verbs": WATCH},
        {"apiGroups": ["deckhouse.io"], "resources": ["istiofederations"], "verbs": WATCH},
    ]
    assert rules(built, "Role", "istio-federation-exporter", NS) == [
        {"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": WATCH},
    ]


def test_reconciler_rbac(built: list[Obj]) -> None:
    assert rules(built, "ClusterRole", "istio-federation-reconciler") == [
        {"apiGroups": ["deckhouse.io"], "resources": ["istiofederations"], "verbs": WATCH},
        {"apiGroups": ["deckhouse.io"], "resources": ["istiofederations/status"], "verbs": ["patch"]},
    ]
    # Events about the cluster-scoped IstioFederation: only in `default`, as the apiserver requires.
    assert rules(built, "Role", "istio-federation-reconciler-events", "default") == [
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    ]
    assert rules(built, "Role", "istio-federation-reconciler", NS) == [
        {
            "apiGroups": ["networking.istio.io"],
            "resources": ["serviceentries", "destinationrules"],
            "verbs": ["get", "list", "watch", "create", "update", "delete"],
        },
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]},
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["istio-federation-settings"],
            "verbs": ["get"],
        },
    ]
    assert rules(built, "Role", "istio-federation-reconciler-mesh-config", "istio-system") == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["istio"],
            "verbs": ["get", "list", "watch", "update"],
        },
    ]


def test_no_wildcards_anywhere_in_rbac(built: list[Obj]) -> None:
    for role in (o for o in built if o["kind"] in {"Role", "ClusterRole"}):
        assert "aggregationRule" not in role
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(key, []), f"{role['kind']} {role['metadata']['name']} {key}"
            assert "nonResourceURLs" not in rule


def test_bindings_grant_each_role_to_its_own_service_account(built: list[Obj]) -> None:
    bindings = [o for o in built if o["kind"] in {"RoleBinding", "ClusterRoleBinding"}]
    assert len(bindings) == 7
    for binding in bindings:
        ref = binding["roleRef"]
        role_kind = "ClusterRole" if binding["kind"] == "ClusterRoleBinding" else "Role"
        assert ref == {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": binding["metadata"]["name"]}
        find(built, role_kind, ref["name"], binding["metadata"].get("namespace"))
        component = ref["name"].removeprefix("istio-federation-").removesuffix("-mesh-config").removesuffix("-events")
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": f"istio-federation-{component}", "namespace": NS}
        ]


# -- optional monitoring component ---------------------------------------------------------------


def test_component_adds_only_monitoring_objects(built: list[Obj], with_component: list[Obj]) -> None:
    extra = [o for o in with_component if o not in built]
    assert sorted((o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in extra) == [
        ("PodMonitor", NS, "istio-federation-reconciler"),
        ("PrometheusRule", NS, "istio-federation"),
    ]


def test_prometheus_rule_alerts_per_federation(with_component: list[Obj]) -> None:
    rule = find(with_component, "PrometheusRule", "istio-federation", NS)
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    (group,) = rule["spec"]["groups"]
    alerts = [(r["alert"], r["expr"], r["for"]) for r in group["rules"]]
    assert alerts == [
        (
            "IstioFederationMetadataEndpointDown",
            "max by (federation) (istio_federation_metadata_endpoint_up == 0)",
            "5m",
        ),
        ("IstioFederationStale", "max by (federation) (istio_federation_stale == 1)", "5m"),
        (
            "IstioFederationStale",
            "max by (federation) (time() - istio_federation_last_success_timestamp_seconds) > 600",
            "5m",
        ),
        (
            "IstioFederationSyncCrashed",
            "max by (federation, stage) (increase(istio_federation_sync_errors_total[15m])) > 0",
            "1m",
        ),
    ]
    for alert in group["rules"]:
        assert set(alert) == {"alert", "expr", "for", "labels", "annotations"}
        assert alert["labels"]["severity"] == "warning"
        assert "{{ $labels.federation }}" in alert["annotations"]["summary"]


def test_pod_monitor_scrapes_the_reconciler_metrics_port(with_component: list[Obj]) -> None:
    monitor = find(with_component, "PodMonitor", "istio-federation-reconciler", NS)["spec"]
    assert monitor["podMetricsEndpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s"}]
    deployment = find(with_component, "Deployment", "istio-federation-reconciler", NS)
    assert monitor["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "metrics" in {port["name"] for port in container["ports"]}
