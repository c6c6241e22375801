"""``certs install``: keep the webhook's CA, serving certificate and caBundle current in a cluster.

Order matters for rotation: the CA Secret is saved first (nothing may depend on a CA whose key is
lost), then caBundle is patched, and only then does the serving Secret change, so the apiserver
already trusts a new CA by the time the webhook serves a leaf signed by it. Re-running changes
nothing while everything is current. Every action is reported through ``report``, one line each.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from certs import cabundle, lifetime, rotation
from certs.authority import load_certificate
from certs.errors import CertsError
from certs.webhook_cert import IPAddress

TLS_SECRET_TYPE = "kubernetes.io/tls"
LABELS = {"app.kubernetes.io/name": "istio-federation", "app.kubernetes.io/component": "webhook"}
# Writes that lose a resourceVersion race are retried from a fresh read, a bounded number of times.
CONFLICT_ATTEMPTS = 3

Report = Callable[[str], None]


@dataclass(frozen=True)
class Target:
    namespace: str
    service: str
    secret: str  # kubernetes.io/tls Secret mounted by the webhook pods
    ca_secret: str  # the CA's key lives here, never mounted into any pod
    webhook_configuration: str
    dns_names: Sequence[str]
    ip_addresses: Sequence[IPAddress] = ()
    ca_days: int = 3650
    leaf_days: int = 365


def _api_error(error: Exception, action: str) -> CertsError:
    """One line from an ApiException (status + the apiserver's message) or a connection error."""
    status = getattr(error, "status", None)
    body = getattr(error, "body", None)
    message = ""
    if body:
        try:
            message = str(json.loads(body).get("message", ""))
        except (ValueError, AttributeError):
            message = str(body)[:200]
    if status is None:
        return CertsError(f"cannot {action}: cannot reach the Kubernetes API ({type(error).__name__}: {error})")
    hint = " (check the RBAC of the user in the kubeconfig)" if status == 403 else ""
    return CertsError(f"cannot {action}: HTTP {status} {message or getattr(error, 'reason', '')}{hint}".rstrip())


def _decode(data: dict[str, str], key: str) -> bytes | None:
    value = data.get(key)
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _encode(data: dict[str, bytes]) -> dict[str, str]:
    return {key: base64.b64encode(value).decode("ascii") for key, value in data.items()}


class Installer:
    """Talks to the API through the generated client, with plain dicts in and out (no models), so
    fields this client version does not know survive a read-modify-write."""

    def __init__(self, core: Any, admission: Any, report: Report) -> None:
        self._core = core
        self._admission = admission
        self._report = report

    def run(self, target: Target, now: datetime.datetime) -> None:
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                self._run_once(target, now)
                return
            except _Conflict as conflict:
                if attempt == CONFLICT_ATTEMPTS:
                    raise CertsError(
                        f"{conflict} kept changing while we wrote it ({CONFLICT_ATTEMPTS} attempts); "
                        "is another installer running?"
                    ) from None
                self._report(f"retrying: {conflict} changed while we wrote it")

    def _run_once(self, target: Target, now: datetime.datetime) -> None:
        ns = target.namespace
        ca_secret = self._read_secret(ns, target.ca_secret)
        tls_secret = self._read_secret(ns, target.secret)
        if tls_secret is not None and tls_secret.get("type") != TLS_SECRET_TYPE:
            raise CertsError(
                f"Secret {ns}/{target.secret} has type {tls_secret.get('type')!r}, not {TLS_SECRET_TYPE}; "
                "the type cannot change: delete the Secret and run again"
            )
        ca_data = (ca_secret or {}).get("data") or {}
        tls_data = (tls_secret or {}).get("data") or {}
        stored = rotation.Stored(
            ca_cert=_decode(ca_data, "ca.crt"),
            ca_key=_decode(ca_data, "ca.key"),
            previous_ca_cert=_decode(ca_data, "previous-ca.crt"),
            leaf_cert=_decode(tls_data, "tls.crt"),
            leaf_key=_decode(tls_data, "tls.key"),
        )
        plan = rotation.plan(
            stored,
            dns_names=target.dns_names,
            ip_addresses=target.ip_addresses,
            ca_days=target.ca_days,
            leaf_days=target.leaf_days,
            now=now,
            where=f"Secret {ns}/{target.ca_secret}",
        )
        ca_expiry = lifetime.expiry(plan.ca.certificate)
        if plan.ca_reason is None:
            self._report(f"kept CA in Secret {ns}/{target.ca_secret} (valid until {ca_expiry})")
        else:
            ca_payload = {"ca.crt": plan.ca.certificate_pem(), "ca.key": plan.ca.private_key_pem()}
            if plan.previous_ca_cert:
                ca_payload["previous-ca.crt"] = plan.previous_ca_cert
            verb = self._write_secret(ns, target.ca_secret, ca_secret, "Opaque", ca_payload)
            self._report(f"{verb} Secret {ns}/{target.ca_secret}: new CA valid until {ca_expiry} ({plan.ca_reason})")

        self._patch_ca_bundle(target.webhook_configuration, plan.bundle())

        leaf_expiry = lifetime.expiry(load_certificate(plan.leaf_cert, "tls.crt"))
        tls_payload = {"tls.crt": plan.leaf_cert, "tls.key": plan.leaf_key, "ca.crt": plan.bundle()}
        if plan.leaf_reason is None and _decode(tls_data, "ca.crt") == plan.bundle():
            self._report(f"kept serving certificate in Secret {ns}/{target.secret} (valid until {leaf_expiry})")
            return
        verb = self._write_secret(ns, target.secret, tls_secret, TLS_SECRET_TYPE, tls_payload)
        reason = plan.leaf_reason or "ca.crt was out of date"
        self._report(
            f"{verb} Secret {ns}/{target.secret}: serving certificate for {target.dns_names[0]}"
            f" valid until {leaf_expiry} ({reason})"
        )

    # -- Secrets ---------------------------------------------------------------------------------

    def _read_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            response = self._core.read_namespaced_secret(name, namespace, _preload_content=False)
        except Exception as error:
            if getattr(error, "status", None) == 404:
                return None
            raise _api_error(error, f"read Secret {namespace}/{name}") from None
        secret: dict[str, Any] = json.loads(response.data)
        return secret

    def _write_secret(
        self,
        namespace: str,
        name: str,
        existing: dict[str, Any] | None,
        secret_type: str,
        data: dict[str, bytes],
    ) -> str:
        if existing is None:
            body = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace, "labels": dict(LABELS)},
                "type": secret_type,
                "data": _encode(data),
            }
            try:
                self._core.create_namespaced_secret(namespace, body, _preload_content=False)
            except Exception as error:
                if getattr(error, "status", None) == 409:
                    raise _Conflict(f"Secret {namespace}/{name}") from None
                raise _api_error(error, f"create Secret {namespace}/{name}") from None
            return "created"
        body = dict(existing)
        # resourceVersion stays in metadata: a concurrent writer makes this fail with 409, not lose data.
        body["data"] = _encode(data)
        try:
            self._core.replace_namespaced_secret(name, namespace, body, _preload_content=False)
        except Exception as error:
            if getattr(error, "status", None) == 409:
                raise _Conflict(f"Secret {namespace}/{name}") from None
            raise _api_error(error, f"update Secret {namespace}/{name}") from None
        return "updated"

    # -- caBundle --------------------------------------------------------------------------------

    def _patch_ca_bundle(self, name: str, bundle: bytes) -> None:
        what = f"ValidatingWebhookConfiguration {name}"
        try:
            response = self._admission.read_validating_webhook_configuration(name, _preload_content=False)
        except Exception as error:
            if getattr(error, "status", None) == 404:
                raise CertsError(f"{what} not found: apply the manifests first (kubectl apply -k manifests)") from None
            raise _api_error(error, f"read {what}") from None
        configuration: dict[str, Any] = json.loads(response.data)
        webhooks = configuration.get("webhooks") or []
        if not webhooks:
            raise CertsError(f"{what} has no webhooks")
        value = cabundle.encode(bundle)
        stale = [
            hook.get("name", "?") for hook in webhooks if (hook.get("clientConfig") or {}).get("caBundle") != value
        ]
        if not stale:
            self._report(f"kept caBundle of {what} ({len(webhooks)} webhooks)")
            return
        for hook in webhooks:
            hook.setdefault("clientConfig", {})["caBundle"] = value
        try:
            # Read-modify-write with the resourceVersion we read: a concurrent edit gives 409, not a lost update.
            self._admission.replace_validating_webhook_configuration(name, configuration, _preload_content=False)
        except Exception as error:
            if getattr(error, "status", None) == 409:
                raise _Conflict(what) from None
            raise _api_error(error, f"update {what}") from None
        self._report(f"updated caBundle of {what}: {', '.join(stale)}")


class _Conflict(Exception):
    """A resourceVersion conflict (HTTP 409); the whole run is retried from a fresh read."""


def connect(kubeconfig: str | None, in_cluster: bool) -> tuple[Any, Any, Any]:
    """(ApiClient, CoreV1Api, AdmissionregistrationV1Api) from a kubeconfig or the pod's service account.

    The API server is asked once first (``objectstore.preflight``, as every command that talks to it
    does): an unusable kubeconfig or an unreachable server is one line within seconds, never a
    traceback or a retry warning per attempt.
    """
    from kubernetes import client

    from objectstore import preflight

    credentials = preflight.Credentials(kubeconfig=kubeconfig, in_cluster=in_cluster)
    try:
        api_client = preflight.connect(credentials)
    except preflight.ApiServerProblem as problem:
        raise CertsError(f"{preflight.FLAGS}: {problem}") from None
    try:
        preflight.check_reachable(api_client, credentials)
    except preflight.ApiServerProblem as problem:
        api_client.close()
        raise CertsError(f"{preflight.FLAGS}: {problem}") from None
    return api_client, client.CoreV1Api(api_client), client.AdmissionregistrationV1Api(api_client)
