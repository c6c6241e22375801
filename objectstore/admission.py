"""State mode's stand-in for the apiserver's admission step: POST an AdmissionReview to the webhook.

With ``--state DIR`` there is no apiserver to call the validating webhook, so writes (the
reconciler's, or the demo's ``kubectl create``) would go in unchecked. Given the webhook's URL and
CA, the state store calls the webhook first for the resources ``manifests/webhook`` registers
(IstioFederation, ServiceEntry), and turns a denial into the message ``kubectl`` would print.
Like the apiserver's ``failurePolicy: Fail``, a webhook that cannot be reached refuses the write.
"""

from __future__ import annotations

import http.client
import json
import ssl
import uuid
from typing import Any
from urllib.parse import urlsplit

from federation import resources
from federation.resources import KubeObject, Resource
from federation.validation import registry
from objectstore.statedir import AdmissionOutcome

TIMEOUT_SECONDS = 5.0


class WebhookAdmission:
    """An :class:`objectstore.statedir.AdmissionHook` that calls the real webhook over HTTPS."""

    def __init__(self, url: str, ca_pem: str, *, timeout: float = TIMEOUT_SECONDS) -> None:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"--admission-webhook must be an https:// URL, got {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 443
        self.path = parts.path or "/validate"
        self.timeout = timeout
        self.context = ssl.create_default_context(cadata=ca_pem)

    def review(
        self,
        *,
        operation: str,
        resource: Resource,
        obj: KubeObject | None,
        old: KubeObject | None,
        username: str,
    ) -> AdmissionOutcome | None:
        webhook = registry.webhook_name(resource.group, resource.plural)
        if webhook is None:
            return None
        subject = obj if obj is not None else old or {}
        version = str(subject.get("apiVersion") or resource.api_version).rpartition("/")[2]
        request: dict[str, Any] = {
            "uid": str(uuid.uuid4()),
            "kind": {"group": resource.group, "version": version, "kind": resource.kind},
            "resource": {"group": resource.group, "version": version, "resource": resource.plural},
            "requestKind": {"group": resource.group, "version": version, "kind": resource.kind},
            "requestResource": {"group": resource.group, "version": version, "resource": resource.plural},
            "name": resources.name_of(subject),
            "operation": operation,
            "userInfo": {"username": username, "groups": ["system:authenticated"]},
            "object": obj,
            "oldObject": old,
            "dryRun": False,
            "options": None,
        }
        if resource.namespaced:
            request["namespace"] = resources.namespace_of(subject)
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
        try:
            answer = self._post(body.encode())
        except (OSError, http.client.HTTPException, ValueError) as error:
            message = f'Internal error occurred: failed calling webhook "{webhook}": {error}'
            return AdmissionOutcome(False, message, 500, _status(message, 500, "InternalError"))
        response = answer.get("response") if isinstance(answer.get("response"), dict) else {}
        assert isinstance(response, dict)
        if response.get("uid") != request["uid"]:
            # What the apiserver's VerifyAdmissionResponse refuses; failurePolicy Fail then denies.
            message = (
                f'Internal error occurred: failed calling webhook "{webhook}": received invalid webhook response: '
                f"expected response.uid={request['uid']!r}, got {response.get('uid')!r}"
            )
            return AdmissionOutcome(False, message, 500, _status(message, 500, "InternalError"))
        warnings = tuple(str(w) for w in response.get("warnings") or [])
        if response.get("allowed") is True:
            return AdmissionOutcome(True, warnings=warnings)
        result = response.get("status") if isinstance(response.get("status"), dict) else {}
        assert isinstance(result, dict)
        raw_code = result.get("code")
        code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else 0
        code = code if code >= 400 else 400  # as the apiserver forces it
        explanation = result.get("message") or result.get("reason")
        message = (
            f'admission webhook "{webhook}" denied the request: {explanation}'
            if explanation
            else f'admission webhook "{webhook}" denied the request without explanation'
        )
        status = {**_status(message, code, str(result.get("reason") or "")), "details": result.get("details") or {}}
        return AdmissionOutcome(False, message, code, status, warnings)

    def _post(self, body: bytes) -> dict[str, Any]:
        connection = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.context)
        try:
            connection.request("POST", self.path, body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            payload = response.read(4 * 1024 * 1024)
        finally:
            connection.close()
        if response.status != 200:
            raise ValueError(f"the webhook answered HTTP {response.status}")
        document = json.loads(payload)
        if not isinstance(document, dict):
            raise ValueError("the webhook answered something that is not an AdmissionReview")
        return document


def _status(message: str, code: int, reason: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
