"""The AdmissionReview wire format, on its own: both ends round-trip, and what each end refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from federation import admission_review, fields, resources
from federation.admission_response import AdmissionResponse
from federation.admission_review import InvalidResponse, MalformedReview
from federation.api_status import invalid_status
from federation.fields import Path
from federation.validation.attributes import Attributes
from tests.reviews import federation, service_entry

WEBHOOK = "serviceentries.istio-federation.deckhouse.io"


def request_body(**changes: Any) -> bytes:
    arguments: dict[str, Any] = {
        "uid": "uid-1",
        "resource": resources.SERVICE_ENTRY,
        "version": "v1beta1",
        "operation": "UPDATE",
        "name": "web",
        "namespace": "shop",
        "username": "alice",
        "groups": ("system:authenticated",),
        "obj": service_entry("web", "shop", "web.example.com"),
        "old": service_entry("web", "shop", "old.example.com"),
        "dry_run": True,
    }
    arguments.update(changes)
    return json.dumps(admission_review.build_request(**arguments)).encode()


def test_a_built_request_parses_back_to_its_attributes() -> None:
    parsed = admission_review.parse_request("application/json; charset=utf-8", request_body())
    assert parsed == admission_review.ParsedRequest(
        uid="uid-1",
        attributes=Attributes(
            operation="UPDATE",
            group="networking.istio.io",
            resource="serviceentries",
            kind="ServiceEntry",
            name="web",
            namespace="shop",
            obj=service_entry("web", "shop", "web.example.com"),
            old=service_entry("web", "shop", "old.example.com"),
            username="alice",
            dry_run=True,
        ),
    )


def test_a_request_is_written_as_the_apiserver_writes_it() -> None:
    review = json.loads(request_body(request_version="v1", subresource="status", options={"kind": "UpdateOptions"}))
    assert review == {
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": "uid-1",
            "kind": {"group": "networking.istio.io", "version": "v1beta1", "kind": "ServiceEntry"},
            "resource": {"group": "networking.istio.io", "version": "v1beta1", "resource": "serviceentries"},
            "subResource": "status",
            "requestKind": {"group": "networking.istio.io", "version": "v1", "kind": "ServiceEntry"},
            "requestResource": {"group": "networking.istio.io", "version": "v1", "resource": "serviceentries"},
            "requestSubResource": "status",
            "name": "web",
            "namespace": "shop",
            "operation": "UPDATE",
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": service_entry("web", "shop", "web.example.com"),
            "oldObject": service_entry("web", "shop", "old.example.com"),
            "dryRun": True,
            "options": {"kind": "UpdateOptions"},
        },
    }


def test_an_omitted_name_and_namespace_are_read_from_the_object() -> None:
    body = request_body(resource=resources.ISTIO_FEDERATION, version="v1alpha1", name="", namespace="",
                        operation="DELETE", obj=None, old=federation("cluster-b"))  # fmt: skip
    assert "name" not in json.loads(body)["request"]
    attributes = admission_review.parse_request("application/json", body).attributes
    assert (attributes.kind, attributes.name, attributes.namespace, attributes.obj) == (
        "IstioFederation",
        "cluster-b",
        "",
        None,
    )


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        ("application/json", b"x" * (admission_review.MAX_BODY_BYTES + 1), "body is larger than 3145728 bytes"),
        ("application/json", b"[" * 100_000 + b"]" * 100_000, "body is nested too deeply to be an AdmissionReview"),
        ("application/yaml", b"{}", "Content-Type must be application/json, got 'application/yaml'"),
        (None, b"{}", "Content-Type must be application/json, got 'none'"),
        ("application/json", b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}', "request is missing"),
    ],
    ids=["too-large", "too-deep", "yaml", "no-content-type", "no-request"],
)
def test_malformed_requests_say_what_is_wrong(content_type: str | None, body: bytes, message: str) -> None:
    with pytest.raises(MalformedReview) as raised:
        admission_review.parse_request(content_type, body)
    assert str(raised.value) == message


def test_an_answer_round_trips_from_the_webhook_to_its_caller() -> None:
    error = fields.forbidden(Path("spec.hosts").index(0), "reserved")
    status = invalid_status(kind="ServiceEntry", group="networking.istio.io", name="web",
                                             errors=[error])  # fmt: skip
    sent = AdmissionResponse(allowed=False, status=status, warnings=("careful",))
    review = admission_review.build_response("uid-1", sent)
    assert review == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {
            "uid": "uid-1",
            "allowed": False,
            "status": {
                "status": "Failure",
                "message": 'ServiceEntry "web" is invalid: spec.hosts[0]: Forbidden: reserved',
                "reason": "Invalid",
                "code": 422,
                "details": {
                    "name": "web",
                    "group": "networking.istio.io",
                    "kind": "ServiceEntry",
                    "causes": [
                        {"reason": "FieldValueForbidden", "message": "Forbidden: reserved", "field": "spec.hosts[0]"}
                    ],
                },
            },
            "warnings": ["careful"],
        },
    }
    received = admission_review.read_response(json.loads(json.dumps(review)), "uid-1")
    assert received.allowed is False
    assert received.warnings == ("careful",)
    assert received.denial_code == 422
    assert received.denial_message(WEBHOOK) == (
        f'admission webhook "{WEBHOOK}" denied the request: ServiceEntry "web" is invalid: spec.hosts[0]: '
        "Forbidden: reserved"
    )
    assert received.details == status["details"]


def test_an_allowed_answer_carries_no_status() -> None:
    review = admission_review.build_response("u", AdmissionResponse(allowed=True, status={"message": "ignored"}))
    assert review == {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                      "response": {"uid": "u", "allowed": True}}  # fmt: skip
    assert admission_review.read_response(review, "u") == AdmissionResponse(allowed=True)


def test_a_failure_answer_fails_closed() -> None:
    answer = AdmissionResponse.failure(code=503, reason="ServiceUnavailable", message="not ready")
    assert admission_review.build_response("u", answer)["response"] == {
        "uid": "u",
        "allowed": False,
        "status": {"status": "Failure", "message": "not ready", "reason": "ServiceUnavailable", "code": 503},
    }
    assert answer.message == "not ready"


@pytest.mark.parametrize(
    ("status", "code", "message"),
    [
        ({"code": 403, "message": "no"}, 403, f'admission webhook "{WEBHOOK}" denied the request: no'),
        ({"code": 200, "reason": "Nope"}, 400, f'admission webhook "{WEBHOOK}" denied the request: Nope'),
        ({"code": True}, 400, f'admission webhook "{WEBHOOK}" denied the request without explanation'),
        (None, 400, f'admission webhook "{WEBHOOK}" denied the request without explanation'),
    ],
    ids=["code-and-message", "code-below-400-and-reason", "code-not-a-number", "no-status"],
)
def test_a_denial_reads_as_the_apiserver_reports_it(status: Any, code: int, message: str) -> None:
    document = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "response": {"uid": "u", "allowed": False, "status": status}}  # fmt: skip
    received = admission_review.read_response(document, "u")
    assert (received.denial_code, received.denial_message(WEBHOOK)) == (code, message)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (None, "webhook response was absent"),
        ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}, "webhook response was absent"),
        (
            {"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "response": {"uid": "u"}},
            "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, "
            "got admission.k8s.io/v1beta1, Kind=AdmissionReview",
        ),
        (
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": "other"}},
            'expected response.uid="u", got "other"',
        ),
        (
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"allowed": True}},
            'expected response.uid="u", got ""',
        ),
        (
            {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
             "response": {"uid": "u", "allowed": True, "patchType": "JSONPatch"}},
            "validating webhook may not return response.patchType",
        ),
    ],
    ids=["not-an-object", "no-response", "wrong-api-version", "another-uid", "no-uid", "patch-type"],
)  # fmt: skip
def test_answers_the_apiserver_refuses(document: Any, reason: str) -> None:
    with pytest.raises(InvalidResponse) as raised:
        admission_review.read_response(document, "u")
    assert str(raised.value) == f"received invalid webhook response: {reason}"


# --- bounded parsing: whatever arrives, a 400 that says what, or a review ---------------------------------


def depth(value: Any) -> int:
    """Nesting depth as the bounded parser counts it: each array or object is one level."""
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


def nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"x": value}
    return value


def review_with_options(options: Any) -> bytes:
    review = json.loads(request_body())
    review["request"]["options"] = options
    return json.dumps(review).encode()


def test_a_real_review_with_managed_fields_is_well_within_the_depth_limit() -> None:
    """kubectl apply --server-side: managedFields mirror the object three levels deeper than the object."""
    obj = service_entry("web", "shop", "web.example.com")
    obj["spec"]["workloadSelector"] = {"labels": {"app": "web"}}
    obj["metadata"]["managedFields"] = [
        {
            "manager": "kubectl",
            "operation": "Apply",
            "apiVersion": "networking.istio.io/v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:hosts": {}, "f:workloadSelector": {"f:labels": {"f:app": {}}}}},
        }
    ]
    body = request_body(obj=obj)
    assert depth(json.loads(body)) == 11
    assert admission_review.parse_request("application/json", body).attributes.obj == obj


@pytest.mark.parametrize(("levels", "accepted"), [(64, True), (65, False)], ids=["at-the-limit", "one-deeper"])
def test_the_depth_limit_is_64_levels(levels: int, accepted: bool) -> None:
    body = review_with_options(nested(levels - 2))  # the review and its request are two levels
    assert depth(json.loads(body)) == levels
    if accepted:
        admission_review.parse_request("application/json", body)
    else:
        with pytest.raises(MalformedReview) as raised:
            admission_review.parse_request("application/json", body)
        assert str(raised.value) == "body is nested too deeply to be an AdmissionReview"


def port_number_body(number: str) -> bytes:
    text = request_body().decode()
    assert text.count('"number": 443') == 2  # the object and the old object
    return text.replace('"number": 443', f'"number": {number}', 1).encode()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            port_number_body("1" * 5000),
            "body is beyond what an AdmissionReview may hold: number 11111111111111111111... has 5000 characters, "
            "more than the limit of 40",
            id="5000-digit-port",
        ),
        pytest.param(
            port_number_body("1e999"),
            "body is beyond what an AdmissionReview may hold: number 1e999 is out of range (not a finite number)",
            id="infinite-port",
        ),
        pytest.param(
            port_number_body("NaN"),
            "body is not valid JSON: NaN is not a JSON number (only finite numbers are)",
            id="nan-port",
        ),
        pytest.param(
            review_with_options("x" * (1024 * 1024 + 1)),
            "body is beyond what an AdmissionReview may hold: string at request.options has 1048577 characters, "
            "more than the limit of 1048576",
            id="2-MiB-string",
        ),
        pytest.param(
            review_with_options([0] * 131_073),
            "body is beyond what an AdmissionReview may hold: array at request.options has 131073 members, "
            "more than the limit of 131072",
            id="too-many-members",
        ),
        pytest.param(
            json.dumps({"apiVersion": "v" * 100_000, "kind": "AdmissionReview"}).encode(),
            f"apiVersion must be admission.k8s.io/v1, got '{'v' * 100}'…(99900 more bytes)",
            id="huge-api-version-is-cut",
        ),
        pytest.param(
            json.dumps(
                {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                 "request": {"uid": "u", "operation": "PATCH\n" * 1000}}
            ).encode(),
            "request.operation must be one of CREATE, UPDATE, DELETE, CONNECT, got "
            + repr("PATCH\n" * 16 + "PATC")
            + "…(5900 more bytes)",
            id="huge-operation-is-cut",
        ),
    ],
)
def test_bodies_beyond_an_admission_reviews_limits_are_malformed(body: bytes, message: str) -> None:
    """kube-apiserver refuses a port beyond int32 before calling us, so a huge number is a malformed review
    (400), not a field error; the message names the limit, and never echoes more than 100 characters."""
    with pytest.raises(MalformedReview) as raised:
        admission_review.parse_request("application/json", body)
    assert str(raised.value) == message


def test_a_large_port_number_that_is_a_number_reaches_validation() -> None:
    parsed = admission_review.parse_request("application/json", port_number_body("99999999999"))
    assert parsed.attributes.obj is not None
    assert parsed.attributes.obj["spec"]["ports"][0]["number"] == 99_999_999_999


def test_a_denial_renders_at_most_20_errors_and_counts_the_rest() -> None:
    errors = [fields.forbidden(Path("spec.hosts").index(position), "reserved") for position in range(25)]
    status = invalid_status(kind="ServiceEntry", group="networking.istio.io", name="web",
                                             errors=errors)  # fmt: skip
    shown = ", ".join(f"spec.hosts[{position}]: Forbidden: reserved" for position in range(20))
    assert status["message"] == f'ServiceEntry "web" is invalid: [{shown}, and 5 more errors]'
    causes = status["details"]["causes"]
    assert len(causes) == 21
    assert causes[19] == {"reason": "FieldValueForbidden", "message": "Forbidden: reserved", "field": "spec.hosts[19]"}
    assert causes[20] == {"message": "and 5 more errors"}


def test_one_more_error_is_singular() -> None:
    errors = [fields.required(Path("spec").child(f"f{position}")) for position in range(21)]
    message = fields.invalid_message("ServiceEntry", "web", errors)
    assert message.endswith("spec.f19: Required value, and 1 more error]")


def test_a_huge_name_is_cut_in_the_message_and_the_details() -> None:
    error = fields.required(Path("spec"))
    status = invalid_status(kind="ServiceEntry", group="networking.istio.io", name="n" * 5000,
                                             errors=[error])  # fmt: skip
    assert status["message"] == f'ServiceEntry "{"n" * 100}"…(4900 more bytes) is invalid: spec: Required value'
    assert status["details"]["name"] == "n" * 253 + "…"
