"""The checks of the metadata exchange: ``endpoint``, ``public`` and ``private``.

Pure: each reads what :func:`reconciler.observe.observe` recorded (the responses, or the exception a
GET ended in) and says what went wrong and how to fix it, in more detail than a status condition.
"""

from __future__ import annotations

import re
import socket
import ssl
from urllib.parse import urlsplit

from federation import conditions, resources, skipsummary
from federation.documents.private import PrivateMetadata, parse_private
from federation.documents.public import PublicMetadata, parse_public
from federation.documents.reading import DocumentError, decode_json
from federation.status import skip_noun
from reconciler.check.report import (
    NO_FEDERATION_HINT,
    CheckResult,
    CheckSettings,
    failing,
    passing,
    plural,
    skipping,
)
from reconciler.fetch import FetchError, Response, TLSSettings, UnusableTrust
from reconciler.observation import (
    Fetched,
    Observation,
    Problem,
    no_gateways,
    printable,
    remote_refusal,
    tls_settings,
    uuid_conflict_message,
)

# Skipped entries named on the private line (status.skippedEntries and -o json carry more).
SKIPS_SHOWN = 5

_X509_V_ERR_HOSTNAME_MISMATCH = 62
_X509_V_ERR_IP_ADDRESS_MISMATCH = 64

def _host_port(url: str) -> str:
    parts = urlsplit(url)
    try:
        port = parts.port or 443
    except ValueError:
        return parts.netloc
    return f"{parts.hostname}:{port}"


def _transport_diagnosis(error: FetchError, url: str, tls: TLSSettings) -> Problem:
    """Why no HTTP exchange happened, from the exception the fetcher chained, and what to do."""
    if isinstance(error, UnusableTrust):  # found before anything was contacted: the spec's fault
        return Problem(error.message, "put the PEM certificate of the CA that signed the endpoint's certificate there")
    cause = error.__cause__
    host = urlsplit(url).hostname or url
    where = _host_port(url)
    if isinstance(cause, ssl.SSLCertVerificationError):
        detail = str(cause.verify_message or cause.reason or cause).rstrip(".")
        if cause.verify_code in (_X509_V_ERR_HOSTNAME_MISMATCH, _X509_V_ERR_IP_ADDRESS_MISMATCH):
            return Problem(
                f"TLS verification failed for {where}: {detail}: the endpoint's certificate does not name {host}",
                f"serve a certificate whose subjectAltName holds {host}, "
                "or set spec.metadataEndpoint to a host name the certificate holds",
            )
        if tls.ca_pem.strip():
            return Problem(
                f"TLS verification failed for {where}: {detail}: spec.metadata.ca is not the CA that signed "
                "the endpoint's certificate",
                "put the CA that signed the endpoint's certificate in spec.metadata.ca",
            )
        return Problem(
            f"TLS verification failed for {where}: {detail}: the CA that signed the endpoint's certificate is "
            "not in the system roots and spec.metadata.ca is empty",
            "put the CA that signed the endpoint's certificate in spec.metadata.ca",
        )
    if isinstance(cause, ssl.SSLError):
        return Problem(error.message, f"check that {where} serves HTTPS with TLS 1.2 or newer (not plain HTTP)")
    if isinstance(cause, ConnectionRefusedError):
        return Problem(
            f"connection to {where} refused",
            "check that the remote's metadata exporter (or the Ingress in front of it) listens there, "
            "and the host and port of spec.metadataEndpoint",
        )
    if isinstance(cause, socket.gaierror):
        return Problem(
            f"{host} does not resolve: {cause.strerror or cause}",
            "check the host name in spec.metadataEndpoint and this cluster's DNS",
        )
    if isinstance(cause, TimeoutError):
        return Problem(error.message, f"check that this cluster can reach {where} (firewall, egress policy, proxy)")
    if cause is None:
        # No exception below: the fetcher refused the URL itself (scheme, missing host).
        return Problem(error.message, "set spec.metadataEndpoint to the remote's https://<host>/metadata/ URL")
    return Problem(error.message, f"check that this cluster can reach {where}")


def _reached(fetched: Fetched) -> bool:
    """True when an HTTP response arrived (a FetchError other than FetchFailed still had one)."""
    return fetched.error is None or fetched.error.reason != conditions.FETCH_FAILED


def endpoint_check(observation: Observation) -> CheckResult:
    if observation.configuration is not None:
        return failing("endpoint", observation.configuration.message, observation.configuration.fix)
    fetched = observation.public
    assert fetched is not None, "observe() fetches the public document whenever the spec is usable"
    tls = tls_settings(resources.spec(observation.federation))
    if not _reached(fetched):
        assert fetched.error is not None
        problem = _transport_diagnosis(fetched.error, fetched.url, tls)
        return failing("endpoint", problem.message, problem.fix)
    endpoint = str(resources.spec(observation.federation).get("metadataEndpoint") or "").strip()
    if tls.ca_pem.strip():
        how = "TLS verifies against spec.metadata.ca"
    elif tls.insecure_skip_verify:
        how = "TLS is NOT verified (spec.metadata.insecureSkipVerify)"
    else:
        how = "TLS verifies against the system roots"
    return passing("endpoint", f"{endpoint} resolves and {how}")


def _document_problems(error: DocumentError) -> tuple[str, list[str]]:
    """The errors as text, and the top-level fields they are about (to name them in the fix)."""
    texts: list[str] = []
    fields: list[str] = []
    for item in error.errors:
        path = str(item.path)
        texts.append(item.render() if path else item.detail)
        top = re.split(r"[.\[]", path, maxsplit=1)[0]
        if top and top not in fields:
            fields.append(top)
    return "; ".join(texts), fields


_PUBLIC_FIELD_FIXES = {
    "clusterUUID": "its cluster UUID as clusterUUID",
    "authnKeyPub": "its Ed25519 identity public key as authnKeyPub",
    "rootCA": "its Istio root CA certificate as rootCA",
}


def _http_problem(what: str, fetched: Fetched, response: Response) -> Problem:
    said = printable(response.body)
    message = f"GET {fetched.url}: HTTP {response.status}" + (f": {said}" if said else "")
    if response.status == 404:
        return Problem(message, f"check spec.metadataEndpoint: the {what} must be served at {fetched.url}")
    if response.status >= 500:
        return Problem(message, "the remote's metadata exporter is failing: look at its logs in the remote cluster")
    return Problem(message, "check spec.metadataEndpoint and the remote's metadata exporter")


def public_check(observation: Observation, settings: CheckSettings) -> tuple[CheckResult, PublicMetadata | None]:
    fetched = observation.public
    if observation.configuration is not None or fetched is None or not _reached(fetched):
        return skipping("public", "the endpoint check failed"), None
    if fetched.error is not None:  # a response arrived but was refused, e.g. for its size
        fix = "spec.metadataEndpoint must point at the remote's metadata exporter (https://<host>/metadata/)"
        return failing("public", fetched.error.message, fix), None
    response = fetched.response
    assert response is not None
    if response.status != 200:
        problem = _http_problem("public document", fetched, response)
        return failing("public", problem.message, problem.fix), None
    try:
        data = decode_json(response.body, "public metadata")
    except DocumentError as error:
        text, _ = _document_problems(error)
        return failing(
            "public",
            f"GET {fetched.url}: the body is {text}",
            "spec.metadataEndpoint must point at the remote's metadata exporter (https://<host>/metadata/), "
            "not at another web page",
        ), None
    try:
        public = parse_public(data, now=observation.now)
    except DocumentError as error:
        text, fields = _document_problems(error)
        wanted = ", ".join(_PUBLIC_FIELD_FIXES.get(name, name) for name in fields) or "a valid document"
        return failing(
            "public",
            f"the public document is invalid: {text}",
            f"the remote's metadata exporter must publish {wanted}: fix it in the remote cluster",
        ), None
    if public.cluster_uuid == settings.local.cluster_uuid:
        return failing(
            "public",
            f"the endpoint serves this cluster's own metadata (clusterUUID {public.cluster_uuid})",
            "point spec.metadataEndpoint at the remote cluster's metadata endpoint",
        ), None
    owner = observation.cluster_uuid_owners.get(public.cluster_uuid)
    if owner is not None:
        return failing(
            "public",
            uuid_conflict_message(public.cluster_uuid, owner),
            f"if {owner} is right, correct or delete IstioFederation "
            f"{resources.name_of(observation.federation)}; if it is the wrong one, fix or delete {owner}",
        ), None
    return passing(
        "public", f"valid: clusterUUID {public.cluster_uuid}, an Ed25519 authnKeyPub, a CA certificate as rootCA"
    ), public


def private_check(
    observation: Observation, settings: CheckSettings, public: PublicMetadata | None
) -> tuple[CheckResult, PrivateMetadata | None]:
    if public is None:
        return skipping("private", "needs a valid public document (its clusterUUID is the JWT's audience)"), None
    if observation.private_blocked is not None:
        return failing("private", observation.private_blocked.message, observation.private_blocked.fix), None
    fetched = observation.private
    assert fetched is not None, "observe() fetches the private document whenever the public one is valid"
    tls = tls_settings(resources.spec(observation.federation))
    if fetched.error is not None:
        if not _reached(fetched):
            problem = _transport_diagnosis(fetched.error, fetched.url, tls)
            return failing("private", problem.message, problem.fix), None
        return failing("private", fetched.error.message, "fix the remote's metadata exporter"), None
    response = fetched.response
    assert response is not None
    if response.status == 401:
        refusal = remote_refusal(response.body)
        remote_said = f" (the remote said: {refusal.said})" if refusal.said else ""
        if refusal.timing:
            clock = refusal.clock_text()
            return failing(
                "private",
                f"HTTP 401: the remote refused the token's validity period{remote_said}",
                f"synchronize the clocks of both clusters (NTP): {clock}"
                if clock
                else "synchronize the clocks of both clusters (NTP)",
            ), None
        return failing(
            "private",
            f"HTTP 401: {NO_FEDERATION_HINT}{remote_said}",
            f"create an IstioFederation in the remote cluster with trustDomain {settings.local.trust_domain} and "
            "this cluster's metadata endpoint, and wait for its reconciler to fetch our public metadata",
        ), None
    if response.status != 200:
        problem = _http_problem("private document", fetched, response)
        return failing("private", problem.message, problem.fix), None
    try:
        private = parse_private(
            decode_json(response.body, "private metadata"),
            refused_networks=settings.local.refused_networks,
            refused_domains=settings.local.refused_domains,
        )
    except DocumentError as error:
        text, fields = _document_problems(error)
        named = " and ".join(fields) if fields else "the document"
        return failing(
            "private",
            f"the private document is invalid: {text}",
            f"the remote's metadata exporter publishes a bad {named}: fix it in the remote cluster",
        ), None
    summary = skipsummary.summarise(private.skipped)
    details = {"skippedEntries": summary.to_status()} if summary.total else {}
    if not private.ingress_gateways:
        fix = (
            "the remote must publish an ingress gateway this cluster can reach (its exporter's --advertise, or "
            "its gateway Service's load balancer); until then the last known objects are kept"
        )
        result = failing("private", no_gateways(private).message, fix)
        return CheckResult(result.name, False, result.message, result.fix, details=details), None
    gateways = plural(len(private.ingress_gateways), "ingress gateway")
    services = plural(len(private.public_services), "public service")
    message = f"readable with our JWT: {gateways}, {services}"
    if summary.total:
        message += f"; {summary.message(what=skip_noun(summary.total), shown=SKIPS_SHOWN)}"
    return CheckResult("private", True, message, details=details), private
