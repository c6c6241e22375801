"""State mode's stand-in for the apiserver's admission step: POST an AdmissionReview to the webhook.

With ``--state DIR`` there is no apiserver to call the validating webhook, so writes (the
reconciler's, or the demo's ``kubectl create``) would go in unchecked. Given the webhook's URL and
CA, the state store calls the webhook first for the resources ``manifests/webhook`` registers
(IstioFederation, ServiceEntry, DestinationRule), and turns a denial into the message ``kubectl``
would print. Like the apiserver's ``failurePolicy: Fail``, a webhook that cannot be reached, or
that answers what the apiserver would refuse, refuses the write.

The review itself is built and read by :mod:`federation.admission_review`; this module only carries
it over HTTPS and draws the apiserver's conclusion.
"""

from __future__ import annotations

import http.client
import json
import ssl
import uuid
from typing import Any
from urllib.parse import urlsplit

from federation import admission_review, resources
from federation.api_status import failure_status
from federation.resources import KubeObject, Resource
from federation.validation import registry
from objectstore.admissionhook import WriteVerdict

TIMEOUT_SECONDS = 5.0
GROUPS = ("system:authenticated",)


class WebhookAdmission:
    """An :class:`objectstore.admissionhook.AdmissionHook` that calls the real webhook over HTTPS."""

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
    ) -> WriteVerdict | None:
        webhook = registry.webhook_name(resource.group, resource.plural)
        if webhook is None:
            return None
        subject = obj if obj is not None else old or {}
        uid = str(uuid.uuid4())
        request = admission_review.build_request(
            uid=uid,
            resource=resource,
            version=str(subject.get("apiVersion") or resource.api_version).rpartition("/")[2],
            operation=operation,
            name=resources.name_of(subject),
            namespace=resources.namespace_of(subject) if resource.namespaced else "",
            username=username,
            groups=GROUPS,
            obj=obj,
            old=old,
        )
        try:
            answer = admission_review.read_response(self._post(json.dumps(request).encode()), uid)
        except (OSError, http.client.HTTPException, ValueError) as error:
            # ValueError covers admission_review.InvalidResponse: what VerifyAdmissionResponse refuses.
            message = f'Internal error occurred: failed calling webhook "{webhook}": {error}'
            status = failure_status(code=500, reason="InternalError", message=message)
            return WriteVerdict(False, message, 500, dict(status))
        if answer.allowed:
            return WriteVerdict(True, warnings=answer.warnings)
        message = answer.denial_message(webhook)
        code = answer.denial_code
        status = failure_status(
            code=code, reason=answer.reason, message=message, details=answer.details or {}
        )
        return WriteVerdict(False, message, code, dict(status), answer.warnings)

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
