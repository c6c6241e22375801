"""The state directory's stand-in for the apiserver's admission step: how it reads webhook answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trustme

from federation import resources
from objectstore.admission import WebhookAdmission
from objectstore.admissionhook import WriteVerdict
from tests.reviews import service_entry

WEBHOOK = "serviceentries.istio-federation.deckhouse.io"


def review_with(monkeypatch: pytest.MonkeyPatch, answer: Any) -> Any:
    """Send one CREATE, with the webhook answering ``answer(request)``."""
    admission = WebhookAdmission("https://127.0.0.1:9/validate", trustme.CA().cert_pem.bytes().decode())

    def post(self: WebhookAdmission, body: bytes) -> dict[str, Any]:
        import json

        request = json.loads(body)["request"]
        response: dict[str, Any] = answer(request)
        return response

    monkeypatch.setattr(WebhookAdmission, "_post", post)
    return admission.review(
        operation="CREATE",
        resource=resources.SERVICE_ENTRY,
        obj=service_entry("web", "shop", "web.example.com"),
        old=None,
        username="kubernetes-admin",
    )


def denial(uid: str, status: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": uid, "allowed": False, "status": status}}  # fmt: skip


@pytest.mark.parametrize(
    ("status", "code"),
    [({"code": 422, "message": "no"}, 422), ({"code": "four hundred", "message": "no"}, 400), ({"message": "no"}, 400),
     ({"code": 200, "message": "no"}, 400)],
    ids=["422", "code-not-a-number", "no-code", "code-below-400"],
)  # fmt: skip
def test_denial_codes_are_read_as_the_apiserver_does(
    monkeypatch: pytest.MonkeyPatch, status: dict[str, Any], code: int
) -> None:
    outcome = review_with(monkeypatch, lambda request: denial(request["uid"], status))
    assert outcome.allowed is False
    assert outcome.code == code
    assert outcome.message == f'admission webhook "{WEBHOOK}" denied the request: no'


def test_denial_without_explanation(monkeypatch: pytest.MonkeyPatch) -> None:
    outcome = review_with(monkeypatch, lambda request: denial(request["uid"], {}))
    assert outcome.message == f'admission webhook "{WEBHOOK}" denied the request without explanation'


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (lambda request: denial("someone-else", {"code": 422}), 'expected response.uid="{uid}", got "someone-else"'),
        (
            lambda request: {"apiVersion": "v1", "kind": "AdmissionReview", "response": {"uid": request["uid"]}},
            "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got v1, Kind=AdmissionReview",
        ),
        (
            lambda request: {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"},
            "webhook response was absent",
        ),
        (
            lambda request: {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": {"uid": request["uid"], "allowed": True, "patch": "W10=", "patchType": "JSONPatch"},
            },
            "validating webhook may not return response.patch",
        ),
    ],
    ids=["another-uid", "wrong-api-version", "no-response", "patch"],
)
def test_an_answer_the_apiserver_would_refuse_fails_closed(
    monkeypatch: pytest.MonkeyPatch, answer: Callable[[dict[str, Any]], dict[str, Any]], reason: str
) -> None:
    sent: list[dict[str, Any]] = []

    def recorded(request: dict[str, Any]) -> dict[str, Any]:
        sent.append(request)
        return answer(request)

    outcome = review_with(monkeypatch, recorded)
    message = (
        f'Internal error occurred: failed calling webhook "{WEBHOOK}": received invalid webhook response: '
        + reason.format(uid=sent[0]["uid"])
    )
    assert outcome == WriteVerdict(
        False,
        message,
        500,
        {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
         "reason": "InternalError", "code": 500},
    )  # fmt: skip


def test_the_request_is_the_one_the_apiserver_would_send(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[dict[str, Any]] = []

    def allow(request: dict[str, Any]) -> dict[str, Any]:
        sent.append(request)
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "response": {"uid": request["uid"], "allowed": True, "warnings": ["careful"]}}  # fmt: skip

    assert review_with(monkeypatch, allow) == WriteVerdict(True, warnings=("careful",))
    request = sent[0]
    assert request == {
        "uid": request["uid"],
        "kind": {"group": "networking.istio.io", "version": "v1", "kind": "ServiceEntry"},
        "resource": {"group": "networking.istio.io", "version": "v1", "resource": "serviceentries"},
        "requestKind": {"group": "networking.istio.io", "version": "v1", "kind": "ServiceEntry"},
        "requestResource": {"group": "networking.istio.io", "version": "v1", "resource": "serviceentries"},
        "name": "web",
        "namespace": "shop",
        "operation": "CREATE",
        "userInfo": {"username": "kubernetes-admin", "groups": ["system:authenticated"]},
        "object": service_entry("web", "shop", "web.example.com"),
        "oldObject": None,
        "dryRun": False,
    }


def test_a_denial_keeps_the_webhooks_reason_details_and_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    details = {"name": "web", "kind": "ServiceEntry", "causes": [{"field": "spec.hosts[0]", "message": "no"}]}

    def deny(request: dict[str, Any]) -> dict[str, Any]:
        review = denial(request["uid"], {"code": 422, "reason": "Invalid", "message": "bad", "details": details})
        review["response"]["warnings"] = ["first", "second"]
        return review

    message = f'admission webhook "{WEBHOOK}" denied the request: bad'
    assert review_with(monkeypatch, deny) == WriteVerdict(
        False,
        message,
        422,
        {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
         "reason": "Invalid", "code": 422, "details": details},
        ("first", "second"),
    )  # fmt: skip
