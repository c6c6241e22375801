"""What one look at a remote shows, and what it means: shared by ``reconciler run`` and ``check``.

:func:`reconciler.observe.observe` makes the GETs (and signs the token) and records the answers
here exactly as they came, exceptions included, so ``check`` can diagnose a transport failure from
its cause.  The pure functions below are the one reading of a spec and of those answers that both
commands use: which spec cannot work (:func:`configuration_problem`), which TLS trust it asks for
(:func:`tls_settings`), whether a public document is usable (:func:`read_public`, which decides
whether a token is sent at all: its root CA must not have expired, and its clusterUUID must be
neither this cluster's nor one another IstioFederation already holds), whether a private document
can be used (:func:`read_private`: it must leave at least one usable ingress gateway), and what a
401 means (:func:`refused_for_timing`, :func:`remote_refusal`).  :func:`metadata_exchange` turns an
observation into the outcome status reports.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from federation import boundedjson, conditions, desired, remotetext, resources, skipsummary, tokens
from federation.documents.ingress_gateways import Network
from federation.documents.private import PrivateMetadata, parse_private
from federation.documents.public import PublicMetadata, parse_public
from federation.documents.reading import DocumentError, decode_json
from federation.resources import KubeObject
from federation.status import MetadataExchange, StageFailure, skip_noun
from reconciler.fetch import FetchError, Response, TLSSettings

UNKNOWN_CLUSTER_HINT = (
    "the remote does not know this cluster yet: create the IstioFederation for this cluster in the remote"
)
CLOCK_SKEW_HINT = (
    "the remote refused the token's validity period: check that the clocks of both clusters are synchronized"
)
# Never a gateway of a remote, whatever this cluster's own domain: Kubernetes' default one.
DEFAULT_CLUSTER_DOMAIN = "cluster.local"
# A 401's JSON body from our exporter: small and flat.
_REFUSAL_LIMITS = boundedjson.Limits(
    max_bytes=8192, max_depth=4, max_number_chars=40, max_string_chars=2048, max_members=16
)


@dataclass(frozen=True)
class LocalCluster:
    """Who is asking: the token's ``sub`` and ``iss``, and the trust domain no remote may claim."""

    cluster_uuid: str
    trust_domain: str
    issuer: str = tokens.ISSUER
    # Refused as remote gateway addresses besides the built-in ranges (--refuse-gateway-cidr):
    # typically this cluster's service and pod CIDRs.
    refused_networks: tuple[Network, ...] = ()
    # exportTo of the managed objects unless a federation's annotation says otherwise (--export-to).
    export_to: tuple[str, ...] = desired.DEFAULT_EXPORT_TO

    @property
    def refused_domains(self) -> tuple[str, ...]:
        """Gateway names under these resolve inside this cluster: its trust domain and cluster.local."""
        own = self.trust_domain.lower().rstrip(".")
        return (own,) if own == DEFAULT_CLUSTER_DOMAIN else (own, DEFAULT_CLUSTER_DOMAIN)


@dataclass(frozen=True)
class Problem:
    """Something that stopped a step before it could talk to the remote, with its fix."""

    message: str
    fix: str


@dataclass(frozen=True)
class ConfigurationProblem(Problem):
    """A spec that cannot work as written, so the endpoint is not contacted at all.

    ``fix`` is the advice ``check`` prints; ``hint`` is the shorter one the
    ``PublicMetadataExchangeReady`` condition has always carried (dashboards match on it).
    """

    hint: str = ""

    @property
    def condition_message(self) -> str:
        return f"{self.message}: {self.hint}"


@dataclass(frozen=True)
class Fetched:
    """One GET: the response (any status), or the FetchError that left no usable response."""

    url: str
    response: Response | None = None
    error: FetchError | None = None


@dataclass(frozen=True)
class Observation:
    federation: KubeObject
    now: datetime
    # Set when the endpoint was not contacted at all (the spec cannot work as written).
    configuration: ConfigurationProblem | None = None
    public: Fetched | None = None
    # Set when the private GET was not attempted although the public document was valid.
    private_blocked: Problem | None = None
    private: Fetched | None = None
    # Trust domains of the other IstioFederations: hosts under them are theirs, never this one's.
    other_trust_domains: tuple[str, ...] = ()
    # clusterUUID -> the other IstioFederation that holds it in status.metadataCache.public: a
    # remote claiming one of these is refused (the exporter would distrust the real owner).
    cluster_uuid_owners: Mapping[str, str] = field(default_factory=dict)
    # The objects' exportTo: from the federation's annotation, else the reconciler's setting.
    export_to: tuple[str, ...] = desired.DEFAULT_EXPORT_TO


def tls_settings(spec: dict[str, Any]) -> TLSSettings:
    """``spec.metadata``: the CA to trust besides the system roots, or no verification at all."""
    settings = spec.get("metadata") if isinstance(spec.get("metadata"), dict) else {}
    assert isinstance(settings, dict)
    return TLSSettings(str(settings.get("ca") or ""), bool(settings.get("insecureSkipVerify")))


def export_to(
    federation: KubeObject, default: tuple[str, ...], namespace: str
) -> tuple[str, ...] | ConfigurationProblem:
    """The exportTo of a federation's objects: its annotation, else ``default``; or why not."""
    raw = resources.annotations_of(federation).get(desired.EXPORT_TO_ANNOTATION)
    if raw is None:
        return default
    entries = desired.parse_export_to(str(raw))
    problem = desired.export_to_problem(entries, namespace)
    if problem is None:
        return entries
    shown = remotetext.printable(str(raw), remotetext.VALUE_LIMIT)
    return ConfigurationProblem(
        f"annotation {desired.EXPORT_TO_ANNOTATION} {shown!r} is not a usable exportTo: {problem}",
        f"set the annotation to a comma-separated list of namespaces, or '.', '*' or '~' "
        f"(or remove it to use the reconciler's --export-to, {','.join(default)})",
        hint="fix the annotation, or remove it",
    )


def configuration_problem(spec: dict[str, Any], local_trust_domain: str) -> ConfigurationProblem | None:
    """The spec problems that make contacting the endpoint pointless (the webhook refuses most)."""
    trust_domain = str(spec.get("trustDomain") or "").lower()
    if not trust_domain:
        return ConfigurationProblem(
            "spec.trustDomain is empty",
            "set spec.trustDomain to the remote cluster's trust domain",
            hint="set the remote cluster's trust domain",
        )
    if trust_domain == local_trust_domain.lower():
        return ConfigurationProblem(
            f"spec.trustDomain {trust_domain} is this cluster's own trust domain",
            "set spec.trustDomain to the remote cluster's trust domain (an IstioFederation names a remote)",
            hint="an IstioFederation names a remote cluster",
        )
    if not str(spec.get("metadataEndpoint") or "").strip():
        return ConfigurationProblem(
            "spec.metadataEndpoint is empty",
            "set spec.metadataEndpoint to the remote's https://<host>/metadata/ URL",
            hint="set the remote's https://…/metadata/ URL",
        )
    return None


def printable(body: bytes, limit: int = 200) -> str:
    """A remote's answer, safe to put in a status message or a terminal line: only as much of the
    body is decoded as can be shown."""
    return remotetext.printable(body[: 4 * limit].decode("utf-8", errors="replace").strip(), limit)


def refused_for_timing(said: str) -> bool:
    """Whether a 401's text blames the token's validity period.

    Almost always a 401 means the remote has no IstioFederation for us yet; but a token refused for
    its times means clock skew, and sending the admin to create objects would mislead.
    """
    return any(word in said.lower() for word in ("expired", "not yet valid", "nbf"))


def read_public(
    fetched: Fetched,
    *,
    cluster_uuid: str,
    now: datetime | None = None,
    owners: Mapping[str, str] | None = None,
) -> PublicMetadata | StageFailure:
    """The remote's public document if it is usable (its clusterUUID becomes the token's audience).

    With ``now``, a root CA that has expired refuses the document; ``owners`` are the clusterUUIDs
    other IstioFederations hold (:attr:`Observation.cluster_uuid_owners`).
    """
    if fetched.error is not None:
        return StageFailure(fetched.error.reason, fetched.error.message)
    response = fetched.response
    assert response is not None, "a Fetched holds a response or an error"
    if response.status != 200:
        return StageFailure(
            conditions.NON_OK_RESPONSE, f"HTTP status {response.status} when fetching public metadata"
        )
    try:
        data = decode_json(response.body, "public metadata")
    except DocumentError as error:
        return StageFailure(conditions.INVALID_JSON, str(error))
    try:
        public = parse_public(data, now=now)
    except DocumentError as error:
        return StageFailure(conditions.INVALID_PUBLIC, str(error))
    if public.cluster_uuid == cluster_uuid:
        return StageFailure(
            conditions.INVALID_PUBLIC,
            f"the endpoint serves this cluster's own metadata (clusterUUID {cluster_uuid}): "
            "point spec.metadataEndpoint at the remote cluster",
        )
    owner = (owners or {}).get(public.cluster_uuid)
    if owner is not None:
        return StageFailure(
            conditions.CLUSTER_UUID_CONFLICT,
            uuid_conflict_message(public.cluster_uuid, owner),
            disowned_uuid=public.cluster_uuid,
        )
    return public


def uuid_conflict_message(cluster_uuid: str, owner: str) -> str:
    shown = remotetext.printable(cluster_uuid, remotetext.VALUE_LIMIT)
    return (
        f"the remote claims clusterUUID {shown}, which IstioFederation {owner} already holds "
        f"(its status.metadataCache.public): refused, so that {owner} keeps working; two IstioFederations "
        "cannot name one cluster: check spec.metadataEndpoint, or delete the IstioFederation that is wrong"
    )


@dataclass(frozen=True)
class RemoteRefusal:
    """What a 401 said: the text (our exporter's JSON ``reason``, else the body) and, when the
    remote measured it, how many seconds this cluster's clock is ahead of the remote's."""

    said: str
    clock_offset: int | None = None

    @property
    def timing(self) -> bool:
        return self.clock_offset is not None or refused_for_timing(self.said)

    def clock_text(self) -> str:
        """``this cluster's clock is 600 s ahead of the remote's (measured by the remote)``, or ""."""
        if self.clock_offset is None:
            return ""
        if self.clock_offset == 0:
            return "the remote measured no clock offset"
        way = "ahead of" if self.clock_offset > 0 else "behind"
        return f"this cluster's clock is {abs(self.clock_offset)} s {way} the remote's (measured by the remote)"


def remote_refusal(body: bytes) -> RemoteRefusal:
    """A 401's body, read: our exporter answers ``{"error", "reason", "clockOffsetSeconds"}``,
    Deckhouse's a line of text."""
    try:
        data = boundedjson.loads(body, _REFUSAL_LIMITS)
    except boundedjson.InvalidJSON:
        return RemoteRefusal(printable(body))
    if not isinstance(data, dict) or not isinstance(data.get("reason"), str):
        return RemoteRefusal(printable(body))
    offset = data.get("clockOffsetSeconds")
    usable = isinstance(offset, int) and not isinstance(offset, bool) and abs(offset) <= tokens.SKEW_REPORT_SECONDS
    return RemoteRefusal(remotetext.printable(data["reason"].strip(), 200), offset if usable else None)


def _unauthorized(body: bytes) -> StageFailure:
    refusal = remote_refusal(body)
    said = f" (the remote said: {refusal.said})" if refusal.said else ""
    if refusal.timing:
        clock = refusal.clock_text()
        hint = f"{CLOCK_SKEW_HINT}: {clock}" if clock else CLOCK_SKEW_HINT
    else:
        hint = UNKNOWN_CLUSTER_HINT
    return StageFailure(conditions.NON_OK_RESPONSE, f"HTTP status 401 when fetching private metadata: {hint}{said}")


def no_gateways(private: PrivateMetadata) -> StageFailure:
    """Nothing could reach the remote's services: the peer counts as unavailable (no apply, no GC)."""
    kept = "the last known objects are kept until it publishes a usable one"
    if not private.skipped_gateways:
        return StageFailure(
            conditions.NO_INGRESS_GATEWAYS,
            f"the remote publishes no ingress gateway, so none of its services can be reached; {kept}",
        )
    summary = skipsummary.summarise(private.skipped_gateways)
    return StageFailure(
        conditions.NO_INGRESS_GATEWAYS,
        "every ingress gateway the remote publishes is refused: "
        f"{summary.message(what=skip_noun(summary.total, 'gateway'), shown=5)}; {kept}",
        skipped=skipsummary.summarise(private.skipped),
    )


def read_private(fetched: Fetched, local: LocalCluster | None = None) -> PrivateMetadata | StageFailure:
    """The remote's private document if it can be used; gateways are checked against ``local``'s
    refused networks and domains."""
    if fetched.error is not None:
        return StageFailure(fetched.error.reason, fetched.error.message)
    response = fetched.response
    assert response is not None, "a Fetched holds a response or an error"
    if response.status == 401:
        return _unauthorized(response.body)
    if response.status != 200:
        return StageFailure(
            conditions.NON_OK_RESPONSE, f"HTTP status {response.status} when fetching private metadata"
        )
    try:
        data = decode_json(response.body, "private metadata")
    except DocumentError as error:
        return StageFailure(conditions.INVALID_JSON, str(error))
    try:
        private = parse_private(
            data,
            refused_networks=local.refused_networks if local is not None else (),
            refused_domains=local.refused_domains if local is not None else (),
        )
    except DocumentError as error:
        return StageFailure(conditions.INVALID_PRIVATE, str(error))
    if not private.ingress_gateways:
        return no_gateways(private)
    return private


def metadata_exchange(
    observation: Observation,
    *,
    local: LocalCluster,
    private_reader: Callable[[Fetched, LocalCluster], PrivateMetadata | StageFailure] = read_private,
) -> MetadataExchange:
    """The observation as status reports it: each document, or the reason and message of its failure.
    ``private_reader`` reads the private document (the reconciler's reuses an unchanged one)."""
    if observation.configuration is not None:
        return MetadataExchange(
            StageFailure(conditions.CONFIGURATION_ERROR, observation.configuration.condition_message)
        )
    assert observation.public is not None, "observe() fetches the public document whenever the spec is usable"
    public = read_public(
        observation.public,
        cluster_uuid=local.cluster_uuid,
        now=observation.now,
        owners=observation.cluster_uuid_owners,
    )
    if isinstance(public, StageFailure):
        return MetadataExchange(public)
    if observation.private_blocked is not None:
        return MetadataExchange(
            public, StageFailure(conditions.TOKEN_GENERATION_FAILED, observation.private_blocked.message)
        )
    assert observation.private is not None, "observe() fetches the private document after a valid public one"
    return MetadataExchange(public, private_reader(observation.private, local))
