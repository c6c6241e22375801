"""The pure half of ``check``: observations in, results out, no I/O."""

from __future__ import annotations

import re
import socket
import ssl
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from federation import conditions, desired, documents, meshconfig, resources
from federation.documents import DocumentError, PrivateMetadata, PublicMetadata
from federation.resources import KubeObject
from reconciler.apply import hostname_of, merged_update
from reconciler.check.observation import Fetched, Observation, Problem
from reconciler.check.report import (
    NO_FEDERATION_HINT,
    CheckResult,
    CheckSettings,
    FederationReport,
    failing,
    passing,
    skipping,
)
from reconciler.fetch import (
    FetchError,
    Response,
    TLSSettings,
)

# OpenSSL's verify codes for a certificate that does not name the host we connected to.
_X509_V_ERR_HOSTNAME_MISMATCH = 62
_X509_V_ERR_IP_ADDRESS_MISMATCH = 64


def tls_settings(spec: dict[str, Any]) -> TLSSettings:
    """spec.metadata as the reconciler reads it (``reconciler.sync``), so both see the same trust."""
    settings = spec.get("metadata") if isinstance(spec.get("metadata"), dict) else {}
    assert isinstance(settings, dict)
    return TLSSettings(str(settings.get("ca") or ""), bool(settings.get("insecureSkipVerify")))


def configuration_problem(spec: dict[str, Any], local_trust_domain: str) -> Problem | None:
    """The spec problems that make contacting the endpoint pointless (the webhook refuses most)."""
    trust_domain = str(spec.get("trustDomain") or "").lower()
    if not trust_domain:
        return Problem("spec.trustDomain is empty", "set spec.trustDomain to the remote cluster's trust domain")
    if trust_domain == local_trust_domain.lower():
        return Problem(
            f"spec.trustDomain {trust_domain} is this cluster's own trust domain",
            "set spec.trustDomain to the remote cluster's trust domain (an IstioFederation names a remote)",
        )
    if not str(spec.get("metadataEndpoint") or "").strip():
        return Problem(
            "spec.metadataEndpoint is empty", "set spec.metadataEndpoint to the remote's https://<host>/metadata/ URL"
        )
    return None


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    try:
        port = parts.port or 443
    except ValueError:
        return parts.netloc
    return f"{parts.hostname}:{port}"


def _printable(body: bytes, limit: int = 200) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    return "".join(char if char.isprintable() else " " for char in text)[:limit]


def _transport_diagnosis(error: FetchError, url: str, tls: TLSSettings) -> Problem:
    """Why no HTTP exchange happened, from the exception the fetcher chained, and what to do."""
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
    said = _printable(response.body)
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
        data = documents.decode_json(response.body, "public metadata")
    except DocumentError as error:
        text, _ = _document_problems(error)
        return failing(
            "public",
            f"GET {fetched.url}: the body is {text}",
            "spec.metadataEndpoint must point at the remote's metadata exporter (https://<host>/metadata/), "
            "not at another web page",
        ), None
    try:
        public = documents.parse_public(data)
    except DocumentError as error:
        text, fields = _document_problems(error)
        wanted = ", ".join(_PUBLIC_FIELD_FIXES.get(name, name) for name in fields) or "a valid document"
        return failing(
            "public",
            f"the public document is invalid: {text}",
            f"the remote's metadata exporter must publish {wanted}: fix it in the remote cluster",
        ), None
    if public.cluster_uuid == settings.cluster_uuid:
        return failing(
            "public",
            f"the endpoint serves this cluster's own metadata (clusterUUID {public.cluster_uuid})",
            "point spec.metadataEndpoint at the remote cluster's metadata endpoint",
        ), None
    return passing(
        "public", f"valid: clusterUUID {public.cluster_uuid}, an Ed25519 authnKeyPub, a CA certificate as rootCA"
    ), public


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


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
        said = _printable(response.body)
        remote_said = f" (the remote said: {said})" if said else ""
        # As in reconciler.sync: a token refused for its times is clock skew, and sending the
        # admin to create objects in the remote would mislead.
        if any(word in said.lower() for word in ("expired", "not yet valid", "nbf")):
            return failing(
                "private",
                f"HTTP 401: the remote refused the token's validity period{remote_said}",
                "synchronize the clocks of both clusters (NTP)",
            ), None
        return failing(
            "private",
            f"HTTP 401: {NO_FEDERATION_HINT}{remote_said}",
            f"create an IstioFederation in the remote cluster with trustDomain {settings.local_trust_domain} and "
            "this cluster's metadata endpoint, and wait for its reconciler to fetch our public metadata",
        ), None
    if response.status != 200:
        problem = _http_problem("private document", fetched, response)
        return failing("private", problem.message, problem.fix), None
    try:
        private = documents.parse_private(documents.decode_json(response.body, "private metadata"))
    except DocumentError as error:
        text, fields = _document_problems(error)
        named = " and ".join(fields) if fields else "the document"
        return failing(
            "private",
            f"the private document is invalid: {text}",
            f"the remote's metadata exporter publishes a bad {named}: fix it in the remote cluster",
        ), None
    gateways = _plural(len(private.ingress_gateways), "ingress gateway")
    services = _plural(len(private.public_services), "public service")
    return passing("private", f"readable with our JWT: {gateways}, {services}"), private


def _desired_plan(
    observation: Observation, settings: CheckSettings, public: PublicMetadata, private: PrivateMetadata
) -> desired.DesiredState:
    """The same filter and objects a sync computes (``reconciler.sync`` calls the same function)."""
    spec = resources.spec(observation.federation)
    return desired.desired_state(
        private,
        desired.FederationSettings(
            federation_name=resources.name_of(observation.federation),
            namespace=settings.namespace,
            trust_domain=str(spec.get("trustDomain") or "").lower(),
            remote_cluster_uuid=public.cluster_uuid,
            local_trust_domain=settings.local_trust_domain,
            other_trust_domains=observation.other_trust_domains,
        ),
    )


def _status(federation: KubeObject) -> dict[str, Any]:
    status = federation.get("status")
    return status if isinstance(status, dict) else {}


def _recorded_states(federation: KubeObject) -> dict[str, str]:
    """hostname → ``State: message`` from status.services, to say why a host is not imported."""
    found: dict[str, str] = {}
    for entry in _status(federation).get("services") or []:
        if isinstance(entry, dict) and entry.get("state") not in (None, "Imported"):
            message = str(entry.get("message") or "")
            found[str(entry.get("hostname"))] = f"{entry['state']}: {message}" if message else str(entry["state"])
    return found


def services_check(
    observation: Observation, plan: desired.DesiredState | None, private: PrivateMetadata | None
) -> CheckResult:
    if plan is None or private is None:
        return skipping("services", "needs the private document")
    wanted = {hostname_of(obj): obj for obj in plan.objects if obj.get("kind") == resources.SERVICE_ENTRY.kind}
    actual = {hostname_of(obj): obj for obj in observation.managed_entries}
    exported = len(private.public_services)
    imported = sorted(set(wanted) & set(actual))
    missing = sorted(set(wanted) - set(actual))
    extra = sorted(set(actual) - set(wanted))
    outdated = [host for host in imported if merged_update(actual[host], wanted[host]) is not None]
    summary = f"{len(imported)} imported of {exported} exported"
    if plan.skipped:
        summary += f" ({len(plan.skipped)} not importable, see refused)"
    if not (missing or extra or outdated):
        return passing("services", summary)
    recorded = _recorded_states(observation.federation)
    parts = [summary]
    if missing:
        named = ", ".join(f"{host} ({recorded[host]})" if host in recorded else host for host in missing)
        parts.append(f"no managed ServiceEntry for {named}")
    if outdated:
        parts.append(f"ServiceEntry differs from the remote's offer for {', '.join(outdated)}")
    if extra:
        parts.append(f"managed ServiceEntry for a host the remote no longer exports: {', '.join(extra)}")
    fixes = []
    if missing or outdated:
        fixes.append(
            "run the reconciler (istio-federation reconciler run) and read status.services of IstioFederation "
            f"{resources.name_of(observation.federation)} and the reconciler's log for why it did not apply them"
        )
    if extra:
        fixes.append("the next successful sync deletes the ServiceEntries of hosts no longer exported")
    return failing("services", "; ".join(parts), "; ".join(fixes))


_REFUSAL_FIXES = {
    desired.REASON_OUTSIDE_TRUST_DOMAIN: (
        "a remote may only export hosts under spec.trustDomain ({trust_domain}): correct spec.trustDomain if it "
        "is not the remote's trust domain, else the remote must stop publishing these hosts"
    ),
    desired.REASON_LOCAL_DOMAIN: (
        "the remote publishes names under this cluster's trust domain {local}: every cluster needs its own "
        "cluster domain, and the remote must not publish ours"
    ),
    desired.REASON_OTHER_FEDERATION: (
        "these hosts belong to another IstioFederation's trust domain: nothing to do unless the trust domains "
        "overlap by mistake"
    ),
    desired.REASON_NO_PORTS: "the remote must publish the ports of these services",
    desired.REASON_NO_GATEWAYS: "the remote must publish an ingress gateway (an AUTO_PASSTHROUGH Gateway on 15443)",
    desired.REASON_DUPLICATE_PORT: "the remote must publish each port name and number once per service",
    desired.REASON_NAME_COLLISION: "these hosts map to the same object name: the remote must rename one",
}


def refused_check(observation: Observation, settings: CheckSettings, plan: desired.DesiredState | None) -> CheckResult:
    if plan is None:
        return skipping("refused", "needs the private document")
    if not plan.skipped:
        return passing("refused", "no host refused by the security filter")
    trust_domain = str(resources.spec(observation.federation).get("trustDomain") or "").lower()
    named = "; ".join(f"{skipped.hostname}: {skipped.message}" for skipped in plan.skipped)
    reasons = sorted({skipped.reason for skipped in plan.skipped})
    fixes = [
        _REFUSAL_FIXES.get(reason, "see the message").format(
            trust_domain=trust_domain, local=settings.local_trust_domain
        )
        for reason in reasons
    ]
    return failing("refused", f"{_plural(len(plan.skipped), 'host')} not imported: {named}", "; ".join(fixes))


def _age_text(age: timedelta) -> str:
    return "<1m" if age < timedelta(minutes=1) else conditions.format_age(age)


def stale_check(observation: Observation, settings: CheckSettings) -> CheckResult:
    status = _status(observation.federation)
    threshold = conditions.format_duration(settings.stale_after)
    condition = conditions.find(status.get("conditions") or [], conditions.STALE)
    said = (
        f"; condition Stale is {condition.get('status')} ({condition.get('reason')})" if condition is not None else ""
    )
    recorded = str(status.get("lastSuccessfulSyncTime") or "")
    last = meshconfig.parse_time(recorded)
    if last is None:
        return failing(
            "stale",
            "no successful sync recorded (status.lastSuccessfulSyncTime is empty)" + said,
            "check that the reconciler runs; the checks above say what fails",
        )
    age = max(observation.now - last, timedelta(0))
    text = f"last successful sync {_age_text(age)} ago ({meshconfig.format_time(last)})"
    if age >= settings.stale_after:
        return failing(
            "stale",
            f"{text}, more than {threshold}{said}",
            "check that the reconciler runs (and, in Kubernetes, holds its Lease) and read its log; "
            "the checks above say what fails now",
        )
    return passing("stale", f"{text}, within {threshold}")


def trust_check(observation: Observation, settings: CheckSettings, public: PublicMetadata | None) -> CheckResult:
    status = _status(observation.federation)
    trust_domain = str(resources.spec(observation.federation).get("trustDomain") or "").lower()
    if public is not None:
        root_ca, source = public.root_ca, "the public document"
    else:
        cache = status.get("metadataCache")
        cached = cache.get("public") if isinstance(cache, dict) else None
        root_ca = str(cached.get("rootCA") or "") if isinstance(cached, dict) else ""
        source = "status.metadataCache.public"
    if not trust_domain:
        return skipping("trust", "spec.trustDomain is empty")
    if not root_ca.strip():
        return skipping("trust", "no remote root CA known: no valid public document and none in status.metadataCache")
    where = f"ConfigMap {settings.mesh_namespace}/{meshconfig.CONFIG_MAP_NAME}"
    config_map = observation.mesh_config_map
    if config_map is None:
        return failing(
            "trust",
            f"{where} does not exist",
            "install Istio (it creates the ConfigMap), or pass --mesh-config-namespace with Istio's namespace",
        )
    data = config_map.get("data") if isinstance(config_map.get("data"), dict) else {}
    assert isinstance(data, dict)
    try:
        entries = meshconfig.mesh_entries(str(data.get(meshconfig.MESH_KEY) or ""))
    except meshconfig.MeshConfigError as error:
        return failing("trust", f"{where} key {meshconfig.MESH_KEY}: {error}", "repair Istio's mesh config")
    same = [entry for entry in entries if meshconfig.same_pem(str(entry.get("pem") or ""), root_ca)]
    for entry in same:
        domains = entry.get("trustDomains")
        if isinstance(domains, list) and trust_domain in (str(domain).lower() for domain in domains):
            return passing(
                "trust", f"the remote root CA (from {source}) is in caCertificates of {where} for {trust_domain}"
            )
    if same:
        listed = sorted({str(d) for entry in same for d in entry.get("trustDomains") or [] if isinstance(d, str)})
        return failing(
            "trust",
            f"the remote root CA (from {source}) is in caCertificates of {where} only for "
            f"{', '.join(listed) or 'no trust domain'}, not for {trust_domain}",
            f"give its caCertificates entry trustDomains: [{trust_domain}] (the reconciler manages entries with "
            "exactly one trust domain)",
        )
    known = [meshconfig.TrustedCA.from_json(item) for item in status.get("trustedRootCAs") or []]
    seen = any(entry is not None and meshconfig.same_pem(entry.pem, root_ca) for entry in known)
    note = "" if seen else "; status.trustedRootCAs does not list it either, so no sync has seen it yet"
    return failing(
        "trust",
        f"the remote root CA (from {source}) is not in caCertificates of {where} for {trust_domain}{note}",
        "the reconciler adds it after a successful sync unless it runs with --no-mesh-trust: run it and read its "
        f"log for errors writing {where}",
    )


def evaluate(observation: Observation, settings: CheckSettings) -> FederationReport:
    """Every check of one federation, from what :func:`observe` saw; no I/O."""
    public_result, public = public_check(observation, settings)
    private_result, private = private_check(observation, settings, public)
    plan = _desired_plan(observation, settings, public, private) if public and private else None
    spec = resources.spec(observation.federation)
    return FederationReport(
        name=resources.name_of(observation.federation),
        trust_domain=str(spec.get("trustDomain") or ""),
        endpoint=str(spec.get("metadataEndpoint") or ""),
        checks=(
            endpoint_check(observation),
            public_result,
            private_result,
            services_check(observation, plan, private),
            refused_check(observation, settings, plan),
            stale_check(observation, settings),
            trust_check(observation, settings, public),
        ),
    )
