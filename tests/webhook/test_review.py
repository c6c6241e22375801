"""The /validate endpoint's two error channels, checked through the Flask app.

Malformed requests get HTTP 400 with a JSON error, never a 5xx; well-formed reviews of bad objects
get HTTP 200 with ``allowed: false``; a crash inside validation fails closed with code 500.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation.admission_response import AdmissionResponse
from federation.validation import registry
from objectstore.factory import StoreSource
from objectstore.statedir import StateDirStore
from tests.reviews import admission_review, federation, service_entry
from webhook.app import WATCHES, create_app
from webhook.settings import WebhookSettings


@pytest.fixture
def state(tmp_path: Path) -> Path:
    root = tmp_path / "state"
    (root / "_cluster").mkdir(parents=True)
    (root / "_cluster" / "federations.yaml").write_text(yaml.safe_dump(federation()))
    return root


@pytest.fixture
def app(state: Path) -> Iterator[Flask]:
    store = StateDirStore(state, WATCHES, poll_interval=0)
    store.start()
    settings = WebhookSettings(local_trust_domain="cluster-a.local", source=StoreSource(state=state))
    yield create_app(settings, store=store)
    store.stop()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def post(client: FlaskClient, body: Any, content_type: str = "application/json") -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post("/validate", data=data, content_type=content_type)
    return response.status_code, json.loads(response.data)


def valid_review() -> dict[str, Any]:
    return admission_review(service_entry("web", "shop", "web.example.com"), uid="uid-1")


def without(path: list[str]) -> dict[str, Any]:
    review = valid_review()
    target = review
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return review


def replaced(path: list[str], value: Any) -> dict[str, Any]:
    review = valid_review()
    target = review
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return review


MALFORMED: list[tuple[str, bytes | dict[str, Any] | list[Any], str, str]] = [
    (
        "not-json",
        b"{not json",
        "application/json",
        "body is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
    ),
    (
        "not-utf8",
        b"\xff\xfe",
        "application/json",
        "body is not UTF-8: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte",
    ),
    ("empty-body", b"", "application/json", "body is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
    ("json-array", [1, 2], "application/json", "body must be a JSON object"),
    ("wrong-content-type", valid_review(), "text/plain", "Content-Type must be application/json, got 'text/plain'"),
    ("no-content-type", valid_review(), "", "Content-Type must be application/json, got 'none'"),
    (
        "wrong-api-version",
        replaced(["apiVersion"], "admission.k8s.io/v1beta1"),
        "application/json",
        "apiVersion must be admission.k8s.io/v1, got 'admission.k8s.io/v1beta1'",
    ),
    ("wrong-kind", replaced(["kind"], "Review"), "application/json", "kind must be AdmissionReview, got 'Review'"),
    ("no-request", without(["request"]), "application/json", "request is missing"),
    ("request-not-object", replaced(["request"], "x"), "application/json", "request is missing"),
    ("no-uid", without(["request", "uid"]), "application/json", "request.uid is missing"),
    ("empty-uid", replaced(["request", "uid"], ""), "application/json", "request.uid is missing"),
    ("uid-not-string", replaced(["request", "uid"], 7), "application/json", "request.uid is missing"),
    (
        "bad-operation",
        replaced(["request", "operation"], "PATCH"),
        "application/json",
        "request.operation must be one of CREATE, UPDATE, DELETE, CONNECT, got 'PATCH'",
    ),
    (
        "kind-not-object",
        replaced(["request", "kind"], "ServiceEntry"),
        "application/json",
        "request.kind must be an object with group, version and kind/resource",
    ),
    (
        "object-not-object",
        replaced(["request", "object"], [1]),
        "application/json",
        "request.object must be an object or null",
    ),
    (
        "create-without-object",
        replaced(["request", "object"], None),
        "application/json",
        "request.object is required for CREATE",
    ),
    (
        "user-info-not-object",
        replaced(["request", "userInfo"], "admin"),
        "application/json",
        "request.userInfo must be an object",
    ),
    (
        "name-not-string",
        replaced(["request", "name"], 5),
        "application/json",
        "request.name and request.namespace must be strings",
    ),
]


@pytest.mark.parametrize(("body", "content_type", "message"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_reviews_get_400_with_a_json_error(
    client: FlaskClient, body: Any, content_type: str, message: str
) -> None:
    code, payload = post(client, body, content_type)
    assert code == 400
    assert payload == {"error": "malformed AdmissionReview", "message": message}


def test_oversized_body_gets_400(client: FlaskClient) -> None:
    review = valid_review()
    review["request"]["object"]["metadata"]["annotations"] = {"padding": "x" * (3 * 1024 * 1024)}
    code, payload = post(client, review)
    assert code == 400
    assert payload == {"error": "malformed AdmissionReview", "message": "body is larger than 3145728 bytes"}


def test_allowed_review_echoes_uid_api_version_and_kind_without_patch(client: FlaskClient) -> None:
    code, payload = post(client, valid_review())
    assert code == 200
    assert payload == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "uid-1", "allowed": True},
    }


def test_denied_review_carries_an_invalid_status_with_causes(client: FlaskClient) -> None:
    review = admission_review(service_entry("bar", "shop", "bar.xyz.svc.cluster-b.local"), uid="uid-2")
    code, payload = post(client, review)
    assert code == 200
    response = payload["response"]
    assert response["uid"] == "uid-2"
    assert response["allowed"] is False
    assert "patch" not in response
    assert "patchType" not in response
    status = response["status"]
    assert status["code"] == 422
    assert status["reason"] == "Invalid"
    assert status["status"] == "Failure"
    assert status["message"] == (
        'ServiceEntry "bar" is invalid: spec.hosts[0]: Forbidden: host "bar.xyz.svc.cluster-b.local" is in trust '
        'domain "cluster-b.local", reserved by IstioFederation "cluster-b": only ServiceEntries that federation '
        "manages may declare it; to reach the remote service, export it in the remote cluster (label "
        "federation.istio.deckhouse.io/public-service) instead"
    )
    assert status["details"]["causes"] == [
        {
            "reason": "FieldValueForbidden",
            "message": status["message"].split("spec.hosts[0]: ", 1)[1],
            "field": "spec.hosts[0]",
        }
    ]
    assert status["details"]["kind"] == "ServiceEntry"
    assert status["details"]["group"] == "networking.istio.io"


def test_warnings_are_returned_on_allowed_reviews(client: FlaskClient) -> None:
    review = admission_review(service_entry("api", "shop", "api.default.svc.cluster-a.local"), uid="uid-3")
    _, payload = post(client, review)
    assert payload["response"] == {
        "uid": "uid-3",
        "allowed": True,
        "warnings": [
            "spec.hosts[0]: api.default.svc.cluster-a.local is under the local trust domain and shadows a local Service"
        ],
    }


def test_unexpected_exception_fails_closed_with_code_500(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(*_: Any) -> AdmissionResponse:
        raise RuntimeError("boom")

    monkeypatch.setattr(registry, "admit", explode)
    code, payload = post(client, valid_review())
    assert code == 200
    assert payload["response"] == {
        "uid": "uid-1",
        "allowed": False,
        "status": {
            "status": "Failure",
            "code": 500,
            "reason": "InternalError",
            "message": "internal error while validating ServiceEntry 'web'; see the webhook logs",
        },
    }
    assert "validation failed unexpectedly for CREATE ServiceEntry shop/web (uid uid-1)" in caplog.text
    assert "RuntimeError: boom" in caplog.text


def test_requests_before_the_first_sync_fail_closed_and_readyz_is_503(tmp_path: Path) -> None:
    store = StateDirStore(tmp_path, WATCHES, poll_interval=0)  # never started: not synced
    app = create_app(WebhookSettings("cluster-a.local", StoreSource(state=tmp_path)), store=store)
    client = app.test_client()
    assert client.get("/readyz").status_code == 503
    _, payload = post(client, valid_review())
    assert payload["response"]["allowed"] is False
    assert payload["response"]["status"]["code"] == 503
    store.start()
    assert client.get("/readyz").status_code == 200
    store.stop()


def test_health_and_unknown_routes(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json() == {
        "status": "ready",
        "cached": {"istiofederations": 1, "serviceentries": 0},
    }
    missing = client.get("/nope")
    assert missing.status_code == 404
    assert missing.get_json()["error"] == "Not Found"
    wrong_method = client.get("/validate")
    assert wrong_method.status_code == 405
    assert wrong_method.get_json()["error"] == "Method Not Allowed"


def test_metrics_count_by_kind_operation_and_result(client: FlaskClient) -> None:
    post(client, valid_review())
    post(client, admission_review(service_entry("bar", "shop", "bar.xyz.svc.cluster-b.local")))
    post(client, b"garbage")
    text = client.get("/metrics").get_data(as_text=True)
    assert (
        'istio_federation_admission_requests_total{kind="ServiceEntry",operation="CREATE",result="allowed"} 1.0' in text
    )
    assert (
        'istio_federation_admission_requests_total{kind="ServiceEntry",operation="CREATE",result="denied"} 1.0' in text
    )
    assert "istio_federation_admission_malformed_requests_total 1.0" in text
    assert (
        'istio_federation_admission_duration_seconds_count{kind="ServiceEntry",operation="CREATE",result="denied"} 1.0'
        in text
    )
    assert 'istio_federation_admission_cached_objects{resource="istiofederations"} 1.0' in text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=st.dictionaries(st.sampled_from(sorted(valid_review()["request"])), json_values, max_size=12))
def test_any_request_shape_gets_400_or_an_answer_never_a_5xx(client: FlaskClient, request: dict[str, Any]) -> None:
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    response = client.post("/validate", data=json.dumps(review), content_type="application/json")
    assert response.status_code in (200, 400)
    payload = response.get_json()
    if response.status_code == 200:
        assert payload["response"]["uid"] == request["uid"]
        assert set(payload["response"]) <= {"uid", "allowed", "status", "warnings"}


def test_webhook_names_match_the_manifest() -> None:
    manifest = Path(__file__).resolve().parents[2] / "manifests" / "webhook" / "validatingwebhookconfiguration.yaml"
    hooks = {hook["name"]: hook for hook in yaml.safe_load(manifest.read_text())["webhooks"]}
    assert hooks[registry.WEBHOOK_ISTIO_FEDERATIONS]["rules"][0]["resources"] == ["istiofederations"]
    assert hooks[registry.WEBHOOK_SERVICE_ENTRIES]["rules"][0]["resources"] == ["serviceentries"]
    assert registry.webhook_name("deckhouse.io", "istiofederations") == registry.WEBHOOK_ISTIO_FEDERATIONS
