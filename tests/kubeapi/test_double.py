"""The kube-apiserver test double, exercised with the real ``kubernetes`` client."""

from __future__ import annotations

import base64
import copy
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml
from kubernetes import client

from federation.resources import CONFIG_MAP, ISTIO_FEDERATION, SERVICE_ENTRY
from tests.kubeapi import KubeApiDouble
from tests.kubeapi.client import Api, api_for, call

REPO = Path(__file__).resolve().parents[2]
SE_PATH = "/apis/networking.istio.io/{version}/namespaces/default/serviceentries"
IF_PATH = "/apis/deckhouse.io/v1alpha1/istiofederations"
WEBHOOK_SERVICE = ("istio-federation", "istio-federation-webhook")
SE_WEBHOOK = "serviceentries.istio-federation.deckhouse.io"


@pytest.fixture
def api(kube_api: KubeApiDouble, tmp_path: Path) -> Iterator[Api]:
    api_client = api_for(kube_api, tmp_path)
    yield api_client
    api_client.close()


def core_api(api_client: Api) -> Any:
    return client.CoreV1Api(api_client)


def se(name: str = "x", hosts: list[str] | None = None, version: str = "v1", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": f"networking.istio.io/{version}",
        "kind": "ServiceEntry",
        "metadata": {"name": name, "labels": labels},
        "spec": {"hosts": hosts or [f"{name}.example.com"]},
    }


def federation(name: str = "b", trust_domain: str = "cluster-b.local") -> dict[str, Any]:
    return {
        "apiVersion": "deckhouse.io/v1alpha1",
        "kind": "IstioFederation",
        "metadata": {"name": name},
        "spec": {"trustDomain": trust_domain, "metadataEndpoint": "https://meta.b.example.com/metadata/"},
    }


def not_found_status(name: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'serviceentries.networking.istio.io "{name}" not found',
        "reason": "NotFound",
        "details": {"name": name, "group": "networking.istio.io", "kind": "serviceentries"},
        "code": 404,
    }


# -- basic verbs ----------------------------------------------------------------------------------


def test_create_get_and_server_set_fields(api: Api) -> None:
    code, created, _ = call(api, "POST", SE_PATH.format(version="v1"), se())
    assert code == 201
    meta = created["metadata"]
    assert meta["namespace"] == "default"
    assert meta["generation"] == 1
    assert meta["uid"]
    assert meta["creationTimestamp"].endswith("Z")
    assert isinstance(meta["resourceVersion"], str)
    code, fetched, _ = call(api, "GET", SE_PATH.format(version="v1") + "/x")
    assert (code, fetched) == (200, created)


def test_not_found_status_is_exact(api: Api) -> None:
    code, body, _ = call(api, "GET", SE_PATH.format(version="v1") + "/x")
    assert code == 404
    assert body == not_found_status("x")
    assert json.dumps(body, separators=(",", ":")) == (
        '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":'
        '"serviceentries.networking.istio.io \\"x\\" not found","reason":"NotFound","details":'
        '{"name":"x","group":"networking.istio.io","kind":"serviceentries"},"code":404}'
    )


def test_core_not_found_has_no_group(api: Api) -> None:
    with pytest.raises(client.ApiException) as caught:
        core_api(api).read_namespaced_config_map("nope", "default")
    assert caught.value.status == 404
    assert json.loads(str(caught.value.body))["details"] == {"name": "nope", "kind": "configmaps"}
    assert json.loads(str(caught.value.body))["message"] == 'configmaps "nope" not found'


def test_already_exists(api: Api) -> None:
    objects = client.CustomObjectsApi(api)
    objects.create_namespaced_custom_object("networking.istio.io", "v1", "default", "serviceentries", se())
    with pytest.raises(client.ApiException) as caught:
        objects.create_namespaced_custom_object("networking.istio.io", "v1", "default", "serviceentries", se())
    assert caught.value.status == 409
    body = json.loads(str(caught.value.body))
    assert body["reason"] == "AlreadyExists"
    assert body["message"] == 'serviceentries.networking.istio.io "x" already exists'
    assert body["details"] == {"name": "x", "group": "networking.istio.io", "kind": "serviceentries"}


def test_update_conflict_and_missing_resource_version(api: Api) -> None:
    path = SE_PATH.format(version="v1")
    _, created, _ = call(api, "POST", path, se())
    changed = copy.deepcopy(created)
    changed["spec"]["hosts"] = ["y.example.com"]
    code, updated, _ = call(api, "PUT", path + "/x", changed)
    assert code == 200
    assert updated["metadata"]["generation"] == 2
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    code, body, _ = call(api, "PUT", path + "/x", changed)  # stale resourceVersion
    assert code == 409
    assert body["reason"] == "Conflict"
    assert body["message"] == (
        'Operation cannot be fulfilled on serviceentries.networking.istio.io "x": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    del changed["metadata"]["resourceVersion"]
    code, body, _ = call(api, "PUT", path + "/x", changed)
    assert code == 422
    assert body["message"] == (
        'ServiceEntry.networking.istio.io "x" is invalid: metadata.resourceVersion: Invalid value: 0x0: '
        "must be specified for an update"
    )


def test_core_kinds_allow_unconditional_update(api: Api) -> None:
    core = core_api(api)
    core.create_namespaced_config_map("default", {"metadata": {"name": "c"}, "data": {"a": "1"}})
    replaced = core.replace_namespaced_config_map("c", "default", {"metadata": {"name": "c"}, "data": {"a": "2"}})
    assert replaced.data == {"a": "2"}
    assert replaced.metadata.generation is None


def test_noop_update_keeps_resource_version(api: Api, kube_api: KubeApiDouble) -> None:
    path = SE_PATH.format(version="v1")
    _, created, _ = call(api, "POST", path, se())
    before = kube_api.resource_version
    code, same, _ = call(api, "PUT", path + "/x", created)
    assert code == 200
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert kube_api.resource_version == before


def test_label_change_does_not_bump_generation(api: Api) -> None:
    path = SE_PATH.format(version="v1")
    call(api, "POST", path, se())
    code, patched, _ = call(
        api, "PATCH", path + "/x", {"metadata": {"labels": {"a": "b"}}}, content_type="application/merge-patch+json"
    )
    assert code == 200
    assert patched["metadata"]["generation"] == 1
    assert patched["metadata"]["labels"] == {"a": "b"}


def test_merge_patch_and_json_patch(api: Api) -> None:
    path = SE_PATH.format(version="v1")
    call(api, "POST", path, se(hosts=["a.example.com", "b.example.com"], keep="yes", drop="me"))
    code, patched, _ = call(
        api,
        "PATCH",
        path + "/x",
        {"metadata": {"labels": {"drop": None}}, "spec": {"location": "MESH_INTERNAL"}},
        content_type="application/merge-patch+json",
    )
    assert code == 200
    assert patched["metadata"]["labels"] == {"keep": "yes"}
    assert patched["spec"] == {"hosts": ["a.example.com", "b.example.com"], "location": "MESH_INTERNAL"}
    code, patched, _ = call(
        api,
        "PATCH",
        path + "/x",
        [{"op": "test", "path": "/spec/hosts/0", "value": "a.example.com"}, {"op": "remove", "path": "/spec/hosts/0"}],
        content_type="application/json-patch+json",
    )
    assert code == 200
    assert patched["spec"]["hosts"] == ["b.example.com"]
    assert patched["metadata"]["generation"] == 3


def test_patch_with_stale_resource_version_conflicts(api: Api) -> None:
    path = SE_PATH.format(version="v1")
    call(api, "POST", path, se())
    code, body, _ = call(
        api, "PATCH", path + "/x", {"metadata": {"resourceVersion": "1"}}, content_type="application/merge-patch+json"
    )
    assert code == 409
    assert body["reason"] == "Conflict"


def test_unsupported_patch_type_is_415(api: Api) -> None:
    path = SE_PATH.format(version="v1")
    call(api, "POST", path, se())
    code, body, _ = call(api, "PATCH", path + "/x", {"spec": {}}, content_type="application/strategic-merge-patch+json")
    assert code == 415
    assert body["reason"] == "UnsupportedMediaType"
    assert body["message"].startswith("the body of the request was in an unknown format - accepted media types")


def test_core_strategic_merge_patch(api: Api) -> None:
    core = core_api(api)
    core.create_namespaced_config_map("default", {"metadata": {"name": "c"}, "data": {"a": "1"}})
    patched = core.patch_namespaced_config_map("c", "default", {"data": {"b": "2"}})
    assert patched.data == {"a": "1", "b": "2"}


def test_delete_returns_object_for_custom_and_status_for_core(api: Api) -> None:
    path = SE_PATH.format(version="v1")
    call(api, "POST", path, se())
    code, body, _ = call(api, "DELETE", path + "/x")
    assert code == 200
    assert body["kind"] == "ServiceEntry"
    assert call(api, "DELETE", path + "/x")[1] == not_found_status("x")
    core = core_api(api)
    created = core.create_namespaced_config_map("default", {"metadata": {"name": "c"}})
    code, body, _ = call(api, "DELETE", "/api/v1/namespaces/default/configmaps/c")
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": "c", "kind": "configmaps", "uid": created.metadata.uid},
    }


def test_delete_precondition(api: Api) -> None:
    path = SE_PATH.format(version="v1")
    call(api, "POST", path, se())
    code, body, _ = call(api, "DELETE", path + "/x", {"preconditions": {"resourceVersion": "1"}})
    assert code == 409
    assert "Precondition failed: ResourceVersion in precondition: 1" in body["message"]


# -- versions, validation, status -----------------------------------------------------------------


def test_service_entry_is_one_storage_in_three_versions(api: Api, kube_api: KubeApiDouble) -> None:
    call(api, "POST", SE_PATH.format(version="v1beta1"), se(version="v1beta1"))
    for version in ("v1", "v1beta1", "v1alpha3"):
        code, body, _ = call(api, "GET", SE_PATH.format(version=version) + "/x")
        assert code == 200
        assert body["apiVersion"] == f"networking.istio.io/{version}"
    assert kube_api.objects(SERVICE_ENTRY)[0]["apiVersion"] == "networking.istio.io/v1"
    dr = "/apis/networking.istio.io/v1alpha3/namespaces/default/destinationrules"
    assert call(api, "GET", dr)[0] == 200


def test_mismatched_api_version_is_bad_request(api: Api) -> None:
    code, body, _ = call(api, "POST", SE_PATH.format(version="v1"), se(version="v1beta1"))
    assert code == 400
    assert body["message"] == (
        "the API version in the data (networking.istio.io/v1beta1) does not match the expected API version "
        "(networking.istio.io/v1)"
    )


def test_name_validation(api: Api) -> None:
    code, body, _ = call(api, "POST", SE_PATH.format(version="v1"), se(name="Bad_Name"))
    assert code == 422
    assert body["message"].startswith(
        'ServiceEntry.networking.istio.io "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": '
        "a lowercase RFC 1123 subdomain must consist of"
    )
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    nameless = se()
    del nameless["metadata"]["name"]
    code, body, _ = call(api, "POST", SE_PATH.format(version="v1"), nameless)
    assert body["message"] == (
        'ServiceEntry.networking.istio.io "" is invalid: '
        "metadata.name: Required value: name or generateName is required"
    )


def test_generate_name(api: Api) -> None:
    body = se()
    body["metadata"] = {"generateName": "gen-"}
    code, created, _ = call(api, "POST", SE_PATH.format(version="v1"), body)
    assert code == 201
    assert created["metadata"]["name"].startswith("gen-")


def test_istio_federation_schema(api: Api) -> None:
    body = federation()
    del body["spec"]["trustDomain"]
    body["spec"]["metadataEndpoint"] = 5
    code, status, _ = call(api, "POST", IF_PATH, body)
    assert code == 422
    assert status["message"] == (
        'IstioFederation.deckhouse.io "b" is invalid: [spec.trustDomain: Required value, spec.metadataEndpoint: '
        'Invalid value: "integer": spec.metadataEndpoint in body must be of type string: "integer"]'
    )
    assert status["details"]["kind"] == "IstioFederation"
    assert status["details"]["group"] == "deckhouse.io"
    assert [cause["field"] for cause in status["details"]["causes"]] == ["spec.trustDomain", "spec.metadataEndpoint"]
    code, status, _ = call(api, "POST", IF_PATH, federation(trust_domain="bad domain"))
    assert status["message"] == (
        'IstioFederation.deckhouse.io "b" is invalid: spec.trustDomain: Invalid value: "bad domain": '
        "spec.trustDomain in body should match '^[0-9a-zA-Z._-]+$'"
    )


def test_istio_federation_pruning_and_defaults(api: Api) -> None:
    body = federation()
    body["spec"]["unknown"] = "x"
    body["spec"]["metadata"] = {"ca": "PEM"}
    code, created, _ = call(api, "POST", IF_PATH, body)
    assert code == 201
    assert "unknown" not in created["spec"]
    assert created["spec"]["metadata"] == {"ca": "PEM", "insecureSkipVerify": False}


def test_status_subresource(api: Api) -> None:
    body = federation()
    body["status"] = {"importedServices": 9}
    _, created, _ = call(api, "POST", IF_PATH, body)
    assert "status" not in created  # status is dropped on create
    code, patched, _ = call(
        api,
        "PATCH",
        IF_PATH + "/b/status",
        {"status": {"importedServices": 2}, "spec": {"trustDomain": "ignored.local"}},
        content_type="application/merge-patch+json",
    )
    assert code == 200
    assert patched["status"] == {"importedServices": 2}
    assert patched["spec"]["trustDomain"] == "cluster-b.local"
    assert patched["metadata"]["generation"] == 1
    changed = copy.deepcopy(patched)
    changed["status"] = {"importedServices": 100}
    changed["spec"]["trustDomain"] = "cluster-c.local"
    code, updated, _ = call(api, "PUT", IF_PATH + "/b", changed)
    assert updated["status"] == {"importedServices": 2}  # the main resource ignores status
    assert updated["spec"]["trustDomain"] == "cluster-c.local"
    assert updated["metadata"]["generation"] == 2
    code, status, _ = call(
        api,
        "PATCH",
        IF_PATH + "/b/status",
        {"status": {"conditions": [{"type": "Ready", "status": "Maybe"}]}},
        content_type="application/merge-patch+json",
    )
    assert code == 422
    assert status["message"] == (
        'IstioFederation.deckhouse.io "b" is invalid: status.conditions[0].status: Unsupported value: "Maybe": '
        'supported values: "True", "False", "Unknown"'
    )


# -- lists and selectors --------------------------------------------------------------------------


def test_list_selectors(api: Api) -> None:
    path = SE_PATH.format(version="v1")
    call(api, "POST", path, se("a", app="x", tier="1"))
    call(api, "POST", path, se("b", app="y"))
    call(api, "POST", path, se("c"))

    def names(query: list[tuple[str, str]]) -> list[str]:
        code, body, _ = call(api, "GET", path, query=query)
        assert code == 200
        return [item["metadata"]["name"] for item in body["items"]]

    assert names([]) == ["a", "b", "c"]
    assert names([("labelSelector", "app=x")]) == ["a"]
    assert names([("labelSelector", "app==x")]) == ["a"]
    assert names([("labelSelector", "app!=x")]) == ["b", "c"]
    assert names([("labelSelector", "app in (x,y)")]) == ["a", "b"]
    assert names([("labelSelector", "app notin (x)")]) == ["b", "c"]
    assert names([("labelSelector", "app")]) == ["a", "b"]
    assert names([("labelSelector", "!app")]) == ["c"]
    assert names([("fieldSelector", "metadata.name=b")]) == ["b"]
    assert names([("fieldSelector", "metadata.namespace=other")]) == []
    code, body, _ = call(api, "GET", path, query=[("fieldSelector", "spec.x=1")])
    assert (code, body["message"]) == (
        400,
        '"spec.x" is not a known field selector: only "metadata.name", "metadata.namespace"',
    )
    code, body, _ = call(api, "GET", path, query=[("labelSelector", "a in x")])
    assert code == 400
    assert body["message"].startswith("unable to parse requirement")


def test_list_items_of_core_kinds_lack_type_fields(api: Api) -> None:
    core_api(api).create_namespaced_config_map("default", {"metadata": {"name": "c"}})
    _, body, _ = call(api, "GET", "/api/v1/configmaps")
    assert body["kind"] == "ConfigMapList"
    assert "kind" not in body["items"][0]
    assert body["metadata"]["resourceVersion"]
    _, body, _ = call(api, "GET", "/apis/networking.istio.io/v1/serviceentries")
    assert body["items"] == []


def test_discovery(api: Api) -> None:
    assert call(api, "GET", "/api")[1]["versions"] == ["v1"]
    groups = {group["name"] for group in call(api, "GET", "/apis")[1]["groups"]}
    assert {"deckhouse.io", "networking.istio.io", "coordination.k8s.io", "admissionregistration.k8s.io"} <= groups
    names = [r["name"] for r in call(api, "GET", "/apis/deckhouse.io/v1alpha1")[1]["resources"]]
    assert names == ["istiofederations", "istiofederations/status"]
    assert call(api, "GET", "/apis/nothing.io/v1/things")[0] == 404


# -- users ----------------------------------------------------------------------------------------


def test_unknown_token_is_401(api: Api) -> None:
    api.configuration.api_key = {"authorization": "Bearer wrong"}
    api.configuration.refresh_api_key_hook = None
    code, body, _ = call(api, "GET", SE_PATH.format(version="v1"))
    assert code == 401
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


def test_kubeconfig_user_reaches_admission(kube_api: KubeApiDouble, tmp_path: Path, webhook: Webhook) -> None:
    other = api_for(kube_api, tmp_path, "alice")
    try:
        assert call(other, "POST", SE_PATH.format(version="v1"), se())[0] == 201
    finally:
        other.close()
    user = kube_api.admission_log[-1]["request"]["userInfo"]
    assert user == {"username": "alice", "groups": ["system:authenticated"]}


# -- watch ----------------------------------------------------------------------------------------


def open_watch(api_client: Api, path: str, **params: str) -> Any:
    query = [("watch", "true"), *params.items()]
    request = api_client.param_serialize(
        "GET", path, query_params=query, header_params={"Accept": "application/json"}, auth_settings=["BearerToken"]
    )
    response = api_client.call_api(*request, _request_timeout=(5, 10))
    assert response.status == 200
    return response.response


def read_events(stream: Any, count: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    buffer = b""
    for chunk in stream.stream(amt=65536):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            events.append(json.loads(line))
            if len(events) == count:
                return events
    return events


def test_watch_streams_events_with_selectors(api: Api) -> None:
    path = SE_PATH.format(version="v1")
    _, created, _ = call(api, "POST", path, se("a", app="x"))
    stream = open_watch(
        api, path, resourceVersion=created["metadata"]["resourceVersion"], labelSelector="app=x", timeoutSeconds="5"
    )
    try:
        call(api, "POST", path, se("b", app="other"))  # filtered out
        merge = "application/merge-patch+json"
        call(api, "PATCH", path + "/a", {"spec": {"hosts": ["z.example.com"]}}, content_type=merge)
        call(api, "PATCH", path + "/b", {"metadata": {"labels": {"app": "x"}}}, content_type=merge)
        call(api, "PATCH", path + "/a", {"metadata": {"labels": {"app": None}}}, content_type=merge)
        call(api, "DELETE", path + "/b")
        events = read_events(stream, 4)
    finally:
        stream.release_conn()
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("MODIFIED", "a"),
        ("ADDED", "b"),
        ("DELETED", "a"),
        ("DELETED", "b"),
    ]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions)


def test_watch_ends_at_timeout(api: Api, kube_api: KubeApiDouble) -> None:
    stream = open_watch(
        api, SE_PATH.format(version="v1"), resourceVersion=str(kube_api.resource_version), timeoutSeconds="1"
    )
    started = time.monotonic()
    assert read_events(stream, 1) == []
    assert time.monotonic() - started < 5


def test_watch_bookmarks(api: Api, kube_api: KubeApiDouble) -> None:
    kube_api.bookmark_interval = 0.2
    stream = open_watch(
        api, IF_PATH, resourceVersion=str(kube_api.resource_version), allowWatchBookmarks="true", timeoutSeconds="3"
    )
    try:
        event = read_events(stream, 1)[0]
    finally:
        stream.release_conn()
    assert event["type"] == "BOOKMARK"
    assert event["object"]["kind"] == "IstioFederation"
    assert event["object"]["metadata"]["resourceVersion"] == str(kube_api.resource_version)


def test_watch_too_old_gets_410_event(api: Api, kube_api: KubeApiDouble) -> None:
    path = SE_PATH.format(version="v1")
    _, created, _ = call(api, "POST", path, se())
    old = created["metadata"]["resourceVersion"]
    call(api, "POST", path, se("y"))
    kube_api.compact()
    current = kube_api.resource_version
    stream = open_watch(api, path, resourceVersion=old, timeoutSeconds="5")
    events = read_events(stream, 2)
    assert events == [
        {
            "type": "ERROR",
            "object": {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": f"too old resource version: {old} ({current})",
                "reason": "Expired",
                "code": 410,
            },
        }
    ]


def test_bounded_history_expires_old_versions(tmp_path: Path) -> None:
    double = KubeApiDouble(history_limit=2)
    double.start()
    other = api_for(double, tmp_path)
    try:
        start = double.resource_version
        for index in range(4):
            double.seed({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{index}"}})
        stream = open_watch(other, "/api/v1/configmaps", resourceVersion=str(start), timeoutSeconds="2")
        events = read_events(stream, 1)
        assert events[0]["object"]["message"] == f"too old resource version: {start} ({start + 2})"
    finally:
        other.close()
        double.stop()


def test_drop_watches_cuts_streams(api: Api, kube_api: KubeApiDouble) -> None:
    stream = open_watch(
        api, SE_PATH.format(version="v1"), resourceVersion=str(kube_api.resource_version), timeoutSeconds="20"
    )
    deadline = time.monotonic() + 5
    while kube_api.watch_count == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    kube_api.drop_watches()
    with pytest.raises(Exception, match=r"(?i)connection|ended|broken|incomplete"):
        read_events(stream, 1)
    assert time.monotonic() - started < 5


def test_stop_ends_open_watches_promptly(tmp_path: Path) -> None:
    double = KubeApiDouble()
    double.start()
    api_client = api_for(double, tmp_path)
    stream = open_watch(api_client, IF_PATH, timeoutSeconds="30")
    started = time.monotonic()
    double.stop()
    assert time.monotonic() - started < 5
    with pytest.raises(Exception, match=r"(?i)connection|ended|broken|incomplete"):
        read_events(stream, 1)
    api_client.close()


# -- admission ------------------------------------------------------------------------------------


class Webhook:
    """A TLS webhook server for the double to call; ``answer`` decides each response."""

    def __init__(self) -> None:
        self.ca = trustme.CA()
        cert = self.ca.issue_cert("istio-federation-webhook.istio-federation.svc")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self.requests: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.answer: Callable[[dict[str, Any]], tuple[int, Any]] = self.allow
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append((self.path, dict(self.headers), body))
                code, answer = owner.answer(body)
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @staticmethod
    def review(body: dict[str, Any], **response: Any) -> dict[str, Any]:
        return {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {"uid": body["request"]["uid"], **response},
        }

    def allow(self, body: dict[str, Any]) -> tuple[int, Any]:
        return 200, self.review(body, allowed=True)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def configuration(ca_pem: bytes, *, failure_policy: str = "Fail") -> dict[str, Any]:
    vwc = yaml.safe_load((REPO / "manifests" / "webhook" / "validatingwebhookconfiguration.yaml").read_text())
    for hook in vwc["webhooks"]:
        hook["clientConfig"]["caBundle"] = base64.b64encode(ca_pem).decode()
        hook["failurePolicy"] = failure_policy
    return dict(vwc)


@pytest.fixture
def webhook(kube_api: KubeApiDouble) -> Iterator[Webhook]:
    server = Webhook()
    kube_api.register_webhooks(configuration(server.ca.cert_pem.bytes()), {WEBHOOK_SERVICE: ("127.0.0.1", server.port)})
    yield server
    server.stop()


def test_admission_review_sent_like_the_apiserver(api: Api, kube_api: KubeApiDouble, webhook: Webhook) -> None:
    code, _, _ = call(api, "POST", SE_PATH.format(version="v1beta1"), se(version="v1beta1"))
    assert code == 201
    path, headers, body = webhook.requests[-1]
    assert path == "/validate?timeout=5s"
    assert headers["Content-Type"] == "application/json"
    assert headers["Host"] == "istio-federation-webhook.istio-federation.svc:443"
    request = body["request"]
    assert body["apiVersion"] == "admission.k8s.io/v1"
    assert request["operation"] == "CREATE"
    # Equivalent match: the rule lists v1beta1 itself, so no conversion happens here.
    assert request["kind"] == {"group": "networking.istio.io", "version": "v1beta1", "kind": "ServiceEntry"}
    assert request["requestKind"] == request["kind"]
    assert request["namespace"] == "default"
    assert request["name"] == "x"
    assert request["object"]["spec"]["hosts"] == ["x.example.com"]
    assert request["oldObject"] is None
    assert request["userInfo"] == {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]}
    assert request["options"] == {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
    assert request["dryRun"] is False
    assert kube_api.admission_log[-1] == body


def test_equivalent_match_converts_version(api: Api, kube_api: KubeApiDouble) -> None:
    server = Webhook()
    try:
        vwc = configuration(server.ca.cert_pem.bytes())
        vwc["webhooks"][1]["rules"][0]["apiVersions"] = ["v1"]
        kube_api.register_webhooks(vwc, {WEBHOOK_SERVICE: ("127.0.0.1", server.port)})
        call(api, "POST", SE_PATH.format(version="v1alpha3"), se(version="v1alpha3"))
        request = server.requests[-1][2]["request"]
        assert request["kind"]["version"] == "v1"
        assert request["resource"] == {"group": "networking.istio.io", "version": "v1", "resource": "serviceentries"}
        assert request["requestKind"]["version"] == "v1alpha3"
        assert request["requestResource"]["version"] == "v1alpha3"
        assert request["object"]["apiVersion"] == "networking.istio.io/v1"
        vwc["webhooks"][1]["matchPolicy"] = "Exact"
        kube_api.register_webhooks(vwc, {})
        before = len(server.requests)
        call(api, "POST", SE_PATH.format(version="v1alpha3"), se("y", version="v1alpha3"))
        assert len(server.requests) == before
    finally:
        server.stop()


def test_update_and_delete_send_old_object(api: Api, webhook: Webhook) -> None:
    path = SE_PATH.format(version="v1")
    call(api, "POST", path, se())
    call(api, "PATCH", path + "/x", {"spec": {"hosts": ["y.example.com"]}}, content_type="application/merge-patch+json")
    update = webhook.requests[-1][2]["request"]
    assert update["operation"] == "UPDATE"
    assert update["oldObject"]["spec"]["hosts"] == ["x.example.com"]
    assert update["object"]["spec"]["hosts"] == ["y.example.com"]
    assert update["options"]["kind"] == "UpdateOptions"
    call(api, "DELETE", path + "/x")
    delete = webhook.requests[-1][2]["request"]
    assert delete["operation"] == "DELETE"
    assert delete["object"] is None
    assert delete["oldObject"]["spec"]["hosts"] == ["y.example.com"]


def test_status_writes_skip_webhooks_without_a_status_rule(api: Api, webhook: Webhook) -> None:
    call(api, "POST", IF_PATH, federation())
    before = len(webhook.requests)
    code, _, _ = call(
        api,
        "PATCH",
        IF_PATH + "/b/status",
        {"status": {"importedServices": 1}},
        content_type="application/merge-patch+json",
    )
    assert code == 200
    assert len(webhook.requests) == before


def test_denial_and_warnings(api: Api, webhook: Webhook) -> None:
    webhook.answer = lambda body: (
        200,
        Webhook.review(
            body,
            allowed=False,
            status={"code": 200, "message": 'host "x.example.com" is taken'},
            warnings=["first warning", 'has "quotes"'],
        ),
    )
    code, body, headers = call(api, "POST", SE_PATH.format(version="v1"), se())
    assert code == 400
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f'admission webhook "{SE_WEBHOOK}" denied the request: host "x.example.com" is taken',
        "code": 400,
    }
    assert headers.getlist("Warning") == ['299 - "first warning"', '299 - "has \\"quotes\\""']
    webhook.answer = lambda body: (
        200,
        Webhook.review(body, allowed=False, status={"code": 422, "reason": "Invalid", "message": "no"}),
    )
    code, body, _ = call(api, "POST", SE_PATH.format(version="v1"), se())
    assert (code, body["reason"]) == (422, "Invalid")
    webhook.answer = lambda body: (200, Webhook.review(body, allowed=True, warnings=["just so you know"]))
    code, _, headers = call(api, "POST", SE_PATH.format(version="v1"), se())
    assert code == 201
    assert headers.getlist("Warning") == ['299 - "just so you know"']


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (
            lambda body: (
                200,
                {
                    "apiVersion": "admission.k8s.io/v1",
                    "kind": "AdmissionReview",
                    "response": {"uid": "wrong", "allowed": True},
                },
            ),
            'received invalid webhook response: expected response.uid="{uid}", got "wrong"',
        ),
        (
            lambda body: (200, {"apiVersion": "v1", "kind": "AdmissionReview", "response": {}}),
            "received invalid webhook response: expected webhook response of admission.k8s.io/v1, "
            "Kind=AdmissionReview, got v1, Kind=AdmissionReview",
        ),
        (
            lambda body: (200, Webhook.review(body, allowed=True, patch="W10=", patchType="JSONPatch")),
            "received invalid webhook response: validating webhook may not return response.patch",
        ),
    ],
)
def test_invalid_responses_fail_closed(
    api: Api,
    kube_api: KubeApiDouble,
    webhook: Webhook,
    answer: Callable[[dict[str, Any]], tuple[int, Any]],
    reason: str,
) -> None:
    webhook.answer = answer
    code, body, _ = call(api, "POST", SE_PATH.format(version="v1"), se())
    uid = kube_api.admission_log[-1]["request"]["uid"]
    message = f'failed calling webhook "{SE_WEBHOOK}": {reason.format(uid=uid)}'
    assert code == 500
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f"Internal error occurred: {message}",
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    }
    assert kube_api.objects(SERVICE_ENTRY) == []


def test_unreachable_webhook_fail_and_ignore(api: Api, kube_api: KubeApiDouble) -> None:
    server = Webhook()
    port = server.port
    server.stop()
    kube_api.register_webhooks(configuration(server.ca.cert_pem.bytes()), {WEBHOOK_SERVICE: ("127.0.0.1", port)})
    code, body, _ = call(api, "POST", SE_PATH.format(version="v1"), se())
    assert code == 500
    assert body["message"] == (
        f'Internal error occurred: failed calling webhook "{SE_WEBHOOK}": failed to call webhook: Post '
        f'"https://istio-federation-webhook.istio-federation.svc:443/validate?timeout=5s": '
        f"dial tcp 127.0.0.1:{port}: connect: connection refused"
    )
    kube_api.register_webhooks(
        configuration(server.ca.cert_pem.bytes(), failure_policy="Ignore"), {WEBHOOK_SERVICE: ("127.0.0.1", port)}
    )
    assert call(api, "POST", SE_PATH.format(version="v1"), se())[0] == 201


def test_untrusted_webhook_certificate(api: Api, kube_api: KubeApiDouble, webhook: Webhook) -> None:
    kube_api.register_webhooks(
        configuration(trustme.CA().cert_pem.bytes()), {WEBHOOK_SERVICE: ("127.0.0.1", webhook.port)}
    )
    code, body, _ = call(api, "POST", SE_PATH.format(version="v1"), se())
    assert code == 500
    assert body["message"].endswith("tls: failed to verify certificate: x509: certificate signed by unknown authority")
    assert webhook.requests == []


def test_webhook_timeout(api: Api, kube_api: KubeApiDouble, webhook: Webhook) -> None:
    vwc = configuration(webhook.ca.cert_pem.bytes())
    vwc["webhooks"][1]["timeoutSeconds"] = 1

    def slow(body: dict[str, Any]) -> tuple[int, Any]:
        time.sleep(1.5)
        return webhook.allow(body)

    webhook.answer = slow
    kube_api.register_webhooks(vwc, {WEBHOOK_SERVICE: ("127.0.0.1", webhook.port)})
    code, body, _ = call(api, "POST", SE_PATH.format(version="v1"), se())
    assert code == 500
    assert body["message"].endswith('/validate?timeout=1s": context deadline exceeded')


def test_seed_bypasses_admission(kube_api: KubeApiDouble, webhook: Webhook) -> None:
    webhook.answer = lambda body: (200, Webhook.review(body, allowed=False))
    seeded = kube_api.seed(se())
    assert seeded["metadata"]["namespace"] == "default"
    assert kube_api.objects(SERVICE_ENTRY)[0]["metadata"]["name"] == "x"
    assert webhook.requests == []
    assert kube_api.get_object(CONFIG_MAP, "default", "x") is None
    assert kube_api.objects(ISTIO_FEDERATION) == []


def test_denial_without_explanation(api: Api, webhook: Webhook) -> None:
    webhook.answer = lambda body: (200, Webhook.review(body, allowed=False))
    code, body, _ = call(api, "POST", IF_PATH, federation())
    assert code == 400
    assert body["message"] == (
        'admission webhook "istiofederations.istio-federation.deckhouse.io" denied the request without explanation'
    )
