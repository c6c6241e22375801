"""The webhook in Kubernetes mode, called by the test double per manifests/ as kube-apiserver would.

The webhook watches the double with the real ``kubernetes`` client; writes made with the real
client come back with the denial text a ``kubectl apply`` user sees.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from federation import ownership
from federation.validation.attributes import DEFAULT_RECONCILER_USERNAME
from tests.kubeapi import KubeApiDouble
from tests.kubeapi.client import Api, api_for, call
from tests.kubeapi.webhook import RunningWebhook, real_webhook
from tests.reviews import federation, service_entry

IF_PATH = "/apis/deckhouse.io/v1alpha1/istiofederations"
SE_PATH = "/apis/networking.istio.io/{version}/namespaces/{namespace}/serviceentries"


@pytest.fixture
def webhook(kube_api: KubeApiDouble, tmp_path: Path) -> Iterator[RunningWebhook]:
    with real_webhook(kube_api, tmp_path / "webhook", local_trust_domain="cluster-a.local") as running:
        yield running


@pytest.fixture
def admin(kube_api: KubeApiDouble, tmp_path: Path) -> Iterator[Api]:
    api = api_for(kube_api, tmp_path)
    yield api
    api.close()


@pytest.fixture
def reconciler(kube_api: KubeApiDouble, tmp_path: Path) -> Iterator[Api]:
    kube_api.add_user(DEFAULT_RECONCILER_USERNAME)
    api = api_for(kube_api, tmp_path, DEFAULT_RECONCILER_USERNAME)
    yield api
    api.close()


def with_version(obj: dict[str, Any], version: str) -> dict[str, Any]:
    return {**obj, "apiVersion": f"networking.istio.io/{version}"}


def test_second_federation_with_the_same_trust_domain_is_denied_like_kubectl_shows(
    webhook: RunningWebhook, admin: Api
) -> None:
    code, _, _ = call(admin, "POST", IF_PATH, federation())
    assert code == 201
    webhook.wait_cached("istiofederations", 1)
    code, body, _ = call(admin, "POST", IF_PATH, federation("cluster-b-again"))
    assert code == 422
    assert body["reason"] == "Invalid"
    assert body["message"] == (
        'admission webhook "istiofederations.istio-federation.deckhouse.io" denied the request: IstioFederation '
        '"cluster-b-again" is invalid: [spec.trustDomain: Duplicate value: "cluster-b.local": already federated by '
        'IstioFederation "cluster-b"; each remote cluster needs exactly one IstioFederation: edit "cluster-b" instead, '
        'spec.metadataEndpoint: Duplicate value: "https://meta.cluster-b.local.example.com/metadata/": already used by '
        'IstioFederation "cluster-b"; one remote cluster is federated by one IstioFederation]'
    )
    assert [cause["field"] for cause in body["details"]["causes"]] == ["spec.trustDomain", "spec.metadataEndpoint"]


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha3"])
def test_service_entry_claiming_a_federated_host_is_denied_in_every_version(
    webhook: RunningWebhook, admin: Api, version: str
) -> None:
    call(admin, "POST", IF_PATH, federation())
    webhook.wait_cached("istiofederations", 1)
    obj = with_version(service_entry("bar", "shop", "bar.xyz.svc.cluster-b.local"), version)
    code, body, _ = call(admin, "POST", SE_PATH.format(version=version, namespace="shop"), obj)
    assert code == 422
    assert body["message"] == (
        'admission webhook "serviceentries.istio-federation.deckhouse.io" denied the request: ServiceEntry "bar" is '
        'invalid: spec.hosts[0]: Forbidden: host "bar.xyz.svc.cluster-b.local" is in trust domain "cluster-b.local", '
        'reserved by IstioFederation "cluster-b": only ServiceEntries that federation manages may declare it; to '
        "reach the remote service, export it in the remote cluster (label "
        "federation.istio.deckhouse.io/public-service) instead"
    )
    assert "denied the request" not in body["message"].split("denied the request: ", 1)[1]


def test_duplicate_host_names_the_existing_entry_after_a_watch_event(webhook: RunningWebhook, admin: Api) -> None:
    call(admin, "POST", SE_PATH.format(version="v1", namespace="shop"), service_entry("web", "shop", "web.example.com"))
    webhook.wait_cached("serviceentries", 1)
    code, body, _ = call(
        admin, "POST", SE_PATH.format(version="v1", namespace="shop"), service_entry("web2", "shop", "WEB.example.com")
    )
    assert code == 422
    assert body["message"].endswith(
        'ServiceEntry "web2" is invalid: spec.hosts[0]: Duplicate value: "WEB.example.com": host is already declared '
        "by ServiceEntry shop/web and both are visible to the same namespaces (Istio would silently use the older "
        "one); remove the host from one of them, or make their exportTo scopes disjoint"
    )


def test_webhook_keeps_its_cache_after_410_gone_and_dropped_streams(
    webhook: RunningWebhook, admin: Api, kube_api: KubeApiDouble
) -> None:
    kube_api.compact()
    kube_api.drop_watches()
    call(admin, "POST", SE_PATH.format(version="v1", namespace="shop"), service_entry("web", "shop", "web.example.com"))
    webhook.wait_cached("serviceentries", 1)
    code, _, _ = call(
        admin, "POST", SE_PATH.format(version="v1", namespace="shop"), service_entry("web2", "shop", "web.example.com")
    )
    assert code == 422


def test_managed_entries_belong_to_the_reconciler(webhook: RunningWebhook, admin: Api, reconciler: Api) -> None:
    call(admin, "POST", IF_PATH, federation())
    webhook.wait_cached("istiofederations", 1)
    host = "bar.xyz.svc.cluster-b.local"
    managed = service_entry(ownership.managed_name(host), "istio-federation", host)
    managed["metadata"]["labels"] = ownership.ownership_labels("cluster-b")
    managed["spec"].update(
        location="MESH_INTERNAL",
        resolution="STATIC",
        endpoints=[{"address": "203.0.113.10", "ports": {"https": 15443}}],
    )
    path = SE_PATH.format(version="v1", namespace="istio-federation")
    code, created, _ = call(reconciler, "POST", path, managed)
    assert code == 201
    webhook.wait_cached("serviceentries", 1)
    changed = copy.deepcopy(created)
    changed["spec"]["endpoints"][0]["address"] = "198.51.100.1"
    code, body, _ = call(admin, "PUT", f"{path}/{created['metadata']['name']}", changed)
    assert code == 422
    assert body["message"] == (
        'admission webhook "serviceentries.istio-federation.deckhouse.io" denied the request: ServiceEntry '
        '"bar-xyz-svc-cluster-b-local-9qv7cmchrxqdhvnv" is invalid: '
        "metadata.labels[federation.istio.deckhouse.io/federation]: Forbidden: ServiceEntry "
        "istio-federation/bar-xyz-svc-cluster-b-local-9qv7cmchrxqdhvnv is managed by IstioFederation "
        '"cluster-b" and only the reconciler may change it; it is regenerated on every sync; change the remote service '
        "or the IstioFederation instead"
    )
    code, _, _ = call(admin, "DELETE", f"{path}/{created['metadata']['name']}")
    assert code == 422
    code, _, _ = call(reconciler, "DELETE", f"{path}/{created['metadata']['name']}")
    assert code == 200


def test_warnings_reach_the_client_as_warning_headers(webhook: RunningWebhook, admin: Api) -> None:
    code, _, headers = call(
        admin,
        "POST",
        SE_PATH.format(version="v1", namespace="shop"),
        service_entry("api", "shop", "api.default.svc.cluster-a.local"),
    )
    assert code == 201
    assert headers.getlist("Warning") == [
        '299 - "spec.hosts[0]: api.default.svc.cluster-a.local is under the local trust domain and shadows a local '
        'Service"'
    ]


def test_deleting_a_federation_is_allowed(webhook: RunningWebhook, admin: Api) -> None:
    call(admin, "POST", IF_PATH, federation())
    webhook.wait_cached("istiofederations", 1)
    code, _, _ = call(admin, "DELETE", f"{IF_PATH}/cluster-b")
    assert code == 200


DR_PATH = "/apis/networking.istio.io/v1/namespaces/{namespace}/destinationrules"


def test_only_managed_destination_rules_reach_the_webhook_and_they_are_protected(
    webhook: RunningWebhook, admin: Api, reconciler: Api, kube_api: KubeApiDouble
) -> None:
    call(admin, "POST", IF_PATH, federation())
    webhook.wait_cached("istiofederations", 1)
    plain = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "reviews", "namespace": "shop"},
        "spec": {"host": "reviews.shop.svc.cluster-a.local"},
    }
    before = len(kube_api.admission_log)
    code, _, _ = call(admin, "POST", DR_PATH.format(namespace="shop"), plain)
    assert code == 201
    assert len(kube_api.admission_log) == before  # objectSelector: not sent to the webhook at all

    host = "bar.xyz.svc.cluster-b.local"
    managed = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {
            "name": ownership.managed_name(host),
            "namespace": "istio-federation",
            "labels": ownership.ownership_labels("cluster-b"),
        },
        "spec": {"host": host, "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}},
    }
    path = DR_PATH.format(namespace="istio-federation")
    code, created, _ = call(reconciler, "POST", path, managed)
    assert code == 201
    changed = copy.deepcopy(created)
    changed["spec"]["trafficPolicy"]["tls"]["mode"] = "DISABLE"
    code, body, _ = call(admin, "PUT", f"{path}/{created['metadata']['name']}", changed)
    assert code == 422
    assert body["message"].startswith(
        'admission webhook "destinationrules.istio-federation.deckhouse.io" denied the request: DestinationRule '
        '"bar-xyz-svc-cluster-b-local-9qv7cmchrxqdhvnv" is invalid: '
        "metadata.labels[federation.istio.deckhouse.io/federation]: Forbidden: DestinationRule "
        "istio-federation/bar-xyz-svc-cluster-b-local-9qv7cmchrxqdhvnv is managed by IstioFederation "
        '"cluster-b" and only the reconciler may change it'
    )
