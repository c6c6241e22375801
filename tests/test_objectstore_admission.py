"""The state directory's stand-in for the apiserver's admission step: how it reads webhook answers."""

from __future__ import annotations

from typing import Any

import pytest
import trustme

from federation import resources
from objectstore.admission import WebhookAdmission
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


def test_a_response_for_another_request_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    outcome = review_with(monkeypatch, lambda request: denial("someone-else", {"code": 422}))
    assert outcome.allowed is False
    assert outcome.code == 500
    assert outcome.message.startswith(
        f'Internal error occurred: failed calling webhook "{WEBHOOK}": received invalid webhook response: '
        "expected response.uid="
    )
    assert outcome.message.endswith(", got 'someone-else'")
