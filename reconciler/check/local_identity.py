"""Who ``check`` speaks as: this cluster's UUID and trust domain, and what a remote's 401 says about them.

By default both come from ConfigMap ``istio-federation-settings`` (keys ``cluster-uuid`` and
``cluster-domain``, ``manifests/settings.yaml``) in ``--namespace``: the values the exporter
publishes and the reconciler signs with.  ``--cluster-uuid`` and ``--local-trust-domain`` override
them; a flag that differs from the ConfigMap is reported, because remotes know this cluster by the
UUID its exporter publishes, and a token signed for another ``sub`` is refused as unknown.

:func:`explain_refusal` reads a remote's 401 (our exporter's reasons and Deckhouse's) and says whose
the fault is: an unknown subject is the remote's missing IstioFederation, unless check was given a
UUID this cluster does not publish; a wrong audience or a key mismatch are never fixed by creating
an IstioFederation in the remote.  Pure, apart from :func:`read_settings`, which reads the store.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from federation import cluster, resources
from federation.commandline import UsageError
from federation.documents.public import PublicMetadata
from federation.store import ObjectStore, StoreError
from reconciler.check.report import CheckResult, FederationReport
from reconciler.observation import Observation, read_public, refused_for_timing, remote_refusal

SETTINGS_CONFIG_MAP = "istio-federation-settings"
UUID_KEY = "cluster-uuid"
DOMAIN_KEY = "cluster-domain"


@dataclass(frozen=True)
class Settings:
    """What ConfigMap istio-federation-settings says (None: the ConfigMap or the key is absent)."""

    where: str  # "ConfigMap NAMESPACE/istio-federation-settings"
    cluster_uuid: str | None = None
    cluster_domain: str | None = None
    found: bool = False
    problem: str | None = None  # why it could not be read


@dataclass(frozen=True)
class Identity:
    cluster_uuid: str
    trust_domain: str
    settings: Settings
    uuid_flag: bool  # --cluster-uuid was given
    domain_flag: bool

    def notes(self) -> list[str]:
        """Flags that differ from the ConfigMap: remotes know this cluster by the ConfigMap's values."""
        found: list[str] = []
        published = self.settings.cluster_uuid
        if self.uuid_flag and self.uuid_differs and published:
            found.append(
                f"--cluster-uuid {self.cluster_uuid} differs from {UUID_KEY} {published.strip()} in "
                f"{self.settings.where}, the UUID this cluster's exporter publishes and remotes know it by"
            )
        domain = self.settings.cluster_domain
        if self.domain_flag and _set(domain) and str(domain).strip().lower().rstrip(".") != self.trust_domain:
            found.append(
                f"--local-trust-domain {self.trust_domain} differs from {DOMAIN_KEY} {str(domain).strip()} in "
                f"{self.settings.where}"
            )
        return found

    @property
    def uuid_differs(self) -> bool:
        """The UUID check signs with is not the one this cluster publishes (as far as the ConfigMap tells)."""
        published = self.settings.cluster_uuid
        return _set(published) and str(published).strip() != self.cluster_uuid


def _set(value: str | None) -> bool:
    """A value an admin set: present, and not the manifests' placeholder."""
    return bool(value and value.strip() and value.strip().upper() != cluster.PLACEHOLDER)


def read_settings(store: ObjectStore, namespace: str) -> Settings:
    where = f"ConfigMap {namespace}/{SETTINGS_CONFIG_MAP}"
    try:
        config_map = store.read(resources.CONFIG_MAP, namespace, SETTINGS_CONFIG_MAP)
    except StoreError as error:
        return Settings(where, problem=f"cannot read {where}: {error}")
    if config_map is None:
        return Settings(where, problem=f"{where} does not exist")
    data = config_map.get("data") if isinstance(config_map.get("data"), dict) else {}
    assert isinstance(data, dict)

    def value(key: str) -> str | None:
        found = data.get(key)
        return found if isinstance(found, str) else None

    return Settings(where, value(UUID_KEY), value(DOMAIN_KEY), found=True)


def _from_settings(flag: str, key: str, settings: Settings, value: str | None) -> str:
    """The ConfigMap's value for a flag that was not given, or the UsageError saying what to do."""
    if settings.problem is not None:
        raise UsageError(
            f"{flag} not given, and {settings.problem}: pass {flag}, or --namespace where "
            f"{SETTINGS_CONFIG_MAP} lives"
        )
    if value is None:
        raise UsageError(f"{flag} not given, and {settings.where} has no key {key}: pass {flag}, or set {key} there")
    return value


def resolve(
    *, flag_uuid: str | None, flag_domain: str | None, settings: Settings
) -> Identity:
    """The identity check speaks as: each flag, else the ConfigMap's value, checked as every component checks it."""
    uuid_source = "--cluster-uuid" if flag_uuid is not None else f"{settings.where} key {UUID_KEY}"
    domain_source = "--local-trust-domain" if flag_domain is not None else f"{settings.where} key {DOMAIN_KEY}"
    cluster_uuid = flag_uuid if flag_uuid is not None else _from_settings(
        "--cluster-uuid", UUID_KEY, settings, settings.cluster_uuid
    )
    domain = flag_domain if flag_domain is not None else _from_settings(
        "--local-trust-domain", DOMAIN_KEY, settings, settings.cluster_domain
    )
    problem = cluster.uuid_problem(uuid_source, cluster_uuid) or cluster.domain_problem(
        domain_source, domain.strip().rstrip(".")
    )
    if problem:
        raise UsageError(problem)
    return Identity(
        cluster_uuid=cluster_uuid.strip(),
        trust_domain=domain.strip().lower().rstrip("."),
        settings=settings,
        uuid_flag=flag_uuid is not None,
        domain_flag=flag_domain is not None,
    )


# -- a remote's 401 ------------------------------------------------------------------------------

UNKNOWN_SUBJECT, WRONG_AUDIENCE, OTHER_KEY = "unknown subject", "wrong audience", "another key"
# What a remote's exporter says when it refuses a token (ours first, then Deckhouse's wording).
_REFUSALS = (
    (WRONG_AUDIENCE, ("wrong audience", "wrong destination cluster")),
    (UNKNOWN_SUBJECT, ("unknown cluster", "unknown source cluster", "calling cluster's uuid) is missing")),
    (OTHER_KEY, ("bad signature", "cannot verify jwt token with known public key")),
)


def refusal(said: str) -> str | None:
    """Which identity claim a remote's 401 text refuses; None when it names none of them."""
    lower = said.lower()
    if refused_for_timing(lower):
        return None
    for kind, phrases in _REFUSALS:
        if any(phrase in lower for phrase in phrases):
            return kind
    return None


def _remote_uuid(observation: Observation, identity: Identity) -> str:
    """The clusterUUID of the remote's public document (the token's audience), when it has a valid
    one: read as every sync reads it, within the document limits."""
    if observation.public is None:
        return ""
    public = read_public(observation.public, cluster_uuid=identity.cluster_uuid)
    return public.cluster_uuid if isinstance(public, PublicMetadata) else ""


def explain_refusal(observation: Observation, result: CheckResult, identity: Identity) -> CheckResult:
    """The ``private`` result of a 401, with the cause it names and whose fix it is."""
    fetched = observation.private
    response = fetched.response if fetched is not None else None
    if result.ok or response is None or response.status != 401:
        return result
    # Our exporter answers JSON ({"error", "reason", ...}): read as the reconciler reads it.
    said = remote_refusal(response.body).said
    kind = refusal(said)
    remote_said = f" (the remote said: {said})" if said else ""
    ours = identity.cluster_uuid
    published = (identity.settings.cluster_uuid or "").strip()
    where = identity.settings.where
    if kind == UNKNOWN_SUBJECT and identity.uuid_differs:
        return replace(
            result,
            message=f"HTTP 401: the remote knows no cluster {ours}, the UUID check signed the token with; this "
            f"cluster publishes {published} ({where}){remote_said}",
            fix=f"run check without --cluster-uuid (or with --cluster-uuid {published}): the remote is not at fault",
        )
    if kind == WRONG_AUDIENCE:
        audience = _remote_uuid(observation, identity)
        named = f" {audience}" if audience else ""
        return replace(
            result,
            message=f"HTTP 401: the remote refused the token's audience{named}, the clusterUUID of its own public "
            f"document{remote_said}",
            fix="fix the remote: its public and private documents come from different clusters' exporters (is "
            "spec.metadataEndpoint a load balancer in front of several clusters?), or its exporter's --cluster-uuid "
            "differs from what it publishes",
        )
    if kind == OTHER_KEY:
        if identity.uuid_differs:
            return replace(
                result,
                message=f"HTTP 401: the remote knows cluster {ours} by another public key{remote_said}; check "
                f"signed as {ours}, but this cluster publishes {published} ({where})",
                fix=f"run check without --cluster-uuid (or with --cluster-uuid {published})",
            )
        return replace(
            result,
            message=f"HTTP 401: the remote knows cluster {ours} by another public key than the one this cluster "
            f"signs with{remote_said}",
            fix="if this cluster's keypair Secret was replaced recently, wait for the remote's next sync to fetch the "
            f"new public key; otherwise another cluster publishes the same UUID {ours}: cluster UUIDs must be unique "
            f"({UUID_KEY} in {SETTINGS_CONFIG_MAP})",
        )
    return result


def explain(report: FederationReport, observation: Observation, identity: Identity) -> FederationReport:
    checks = tuple(
        explain_refusal(observation, check, identity) if check.name == "private" else check for check in report.checks
    )
    return replace(report, checks=checks)
