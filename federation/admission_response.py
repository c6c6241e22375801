"""A validating webhook's answer to one review, as a value both ends of the review share.

The webhook decides an :class:`AdmissionResponse` (``federation.validation.registry.admit``) and
sends it; whoever calls the webhook in the apiserver's place reads one back and reports a denial
the way kube-apiserver does.  Its wire form, inside an AdmissionReview, is built and read only by
:mod:`federation.admission_review`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from federation.api_status import Status, failure_status


@dataclass(frozen=True)
class AdmissionResponse:
    """A webhook's answer to one review: what the webhook sends, and what its caller reads back."""

    allowed: bool
    status: Status | None = None  # read only for a denial, as the apiserver does
    warnings: tuple[str, ...] = ()

    @classmethod
    def failure(cls, *, code: int, reason: str, message: str) -> AdmissionResponse:
        """Fail closed: the webhook could not decide, so the write is refused with this status."""
        return cls(allowed=False, status=failure_status(code=code, reason=reason, message=message))

    @property
    def message(self) -> str:
        """The denial's message, as the webhook wrote it."""
        return str((self.status or {}).get("message") or "")

    @property
    def reason(self) -> str:
        return str((self.status or {}).get("reason") or "")

    @property
    def details(self) -> Any:
        """The denial's ``details``, passed on as the webhook sent them (None when absent)."""
        return (self.status or {}).get("details")

    @property
    def denial_code(self) -> int:
        """The HTTP code of a denial: the Status code, at least 400, as kube-apiserver forces it."""
        raw = (self.status or {}).get("code")
        code = raw if isinstance(raw, int) and not isinstance(raw, bool) else 0
        return code if code >= 400 else 400

    def denial_message(self, webhook_name: str) -> str:
        """kube-apiserver's ``ToStatusErr`` message for a denial by ``webhook_name``."""
        denied_by = f'admission webhook "{webhook_name}" denied the request'
        explanation = self.message or self.reason
        return f"{denied_by}: {explanation}" if explanation else f"{denied_by} without explanation"
