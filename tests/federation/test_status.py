"""federation.status.next_status: one table of syncs, each compared as a whole status and verdict.

Every case starts from a named old status and changes one thing: what the exchange produced, what
apply did, or how much time passed.  A new condition shows up in every expected status here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from federation import conditions, service_states, skipsummary, status
from federation.documents.ingress_gateways import IngressGateway
from federation.documents.private import PrivateMetadata
from federation.documents.public import PublicMetadata
from federation.documents.public_services import PublicService, ServicePort
from federation.documents.skips import SkippedGateway, SkippedPort, SkippedService
from federation.service_states import ServiceState
from federation.status import (
    Applied,
    History,
    MetadataExchange,
    StageFailure,
    StatusSettings,
)

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
LATER = T0 + timedelta(minutes=1)
BAR = "bar.xyz.svc.cluster-b.local"
DB = "db.prod.svc.cluster-c.local"
FOO = "foo.xyz.svc.cluster-b.local"
PUBLIC = PublicMetadata("b2b2b2b2-0000-4000-8000-0000000000b2", "KEY-PEM", "ROOT-PEM")
PRIVATE = PrivateMetadata(
    (IngressGateway("10.0.0.10", 15443),),
    (PublicService(BAR, (ServicePort("http", 8080, "HTTP"),)),),
)
SETTINGS = StatusSettings(
    stale_after=timedelta(minutes=5), ca_overlap=timedelta(hours=24), heartbeat=timedelta(minutes=2)
)
SERVER_ERROR = StageFailure(conditions.NON_OK_RESPONSE, "HTTP status 500 when fetching public metadata")
UNKNOWN_CLUSTER = StageFailure(conditions.NON_OK_RESPONSE, "HTTP status 401 when fetching private metadata")
NO_TRUST_DOMAIN = StageFailure(conditions.CONFIGURATION_ERROR, "spec.trustDomain is empty: set it")
DOWN_READY_MESSAGE = f"PublicMetadataExchangeReady: {SERVER_ERROR.message}"
IMPORTED = Applied((ServiceState(BAR, service_states.STATE_IMPORTED),), complete=True)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(  # noqa: PLR0917 - the five fields of a condition, in the order kubectl shows them
    kind: str, state: str, reason: str, message: str, since: datetime, generation: int | None = 1
) -> Any:
    entry: dict[str, Any] = {
        "type": kind,
        "status": state,
        "reason": reason,
        "message": message,
        "lastTransitionTime": stamp(since),
    }
    if generation is not None:
        entry["observedGeneration"] = generation
    return entry


def public_ok(since: datetime = T0) -> Any:
    return condition(conditions.PUBLIC, "True", "Succeeded", "Public metadata exchange succeeded.", since)


def private_ok(since: datetime = T0) -> Any:
    return condition(conditions.PRIVATE, "True", "Succeeded", "Private metadata exchange succeeded.", since)


def private_awaiting(since: datetime, generation: int | None = 1) -> Any:
    message = "Public metadata exchange has not succeeded yet."
    return condition(conditions.PRIVATE, "Unknown", "AwaitingPublic", message, since, generation)


def synced_awaiting(since: datetime, generation: int | None = 1) -> Any:
    message = "Objects are kept as they are until metadata is fetched successfully."
    return condition(conditions.SYNCED, "Unknown", "AwaitingMetadata", message, since, generation)


def fresh(since: datetime = T0) -> Any:
    return condition(conditions.STALE, "False", "Fresh", "Last successful sync is less than 5m old.", since)


def ready(since: datetime = T0, services: str = "1 service") -> Any:
    return condition(conditions.READY, "True", "Ready", f"Federation is synced: {services} imported.", since)


BAR_IMPORTED = {"hostname": BAR, "state": "Imported", "message": ""}
CACHE = {"public": PUBLIC.to_json(), "private": PRIVATE.to_json()}
ROOT = {"pem": "ROOT-PEM", "firstSeen": stamp(T0)}
SYNCED_AT_T0: dict[str, Any] = {
    "metadataCache": CACHE,
    "services": [BAR_IMPORTED],
    "servicesSummary": {"total": 1, "byState": {"Imported": 1}, "omitted": 0},
    "importedServices": 1,
    "trustedRootCAs": [ROOT],
    "conditions": [
        public_ok(),
        private_ok(),
        condition(conditions.SYNCED, "True", "Synced", "Imported 1 service, skipped 0, denied 0.", T0),
        fresh(),
        ready(),
    ],
    "lastSuccessfulSyncTime": stamp(T0),
}


@dataclass(frozen=True)
class Case:
    name: str
    exchange: MetadataExchange
    applied: Applied | None
    expected: dict[str, Any]
    old: dict[str, Any] = field(default_factory=dict)
    now: datetime = T0
    history: History = field(default_factory=lambda: History(first_attempt=T0))
    generation: int | None = 1
    # The verdict: (succeeded, failed stage, failure, imported, stale).
    verdict: tuple[bool, str, str, int, bool] = (True, "", "", 1, False)


def public_down_after(minutes: int) -> dict[str, Any]:
    since = T0 + timedelta(minutes=minutes)
    return {
        **SYNCED_AT_T0,
        "conditions": [
            condition(conditions.PUBLIC, "False", "NonOKResponse", SERVER_ERROR.message, since),
            private_awaiting(since),
            synced_awaiting(since),
            condition(
                conditions.STALE,
                "True",
                "LastSyncTooOld",
                f"Last successful sync {minutes}m ago ({stamp(T0)}), more than 5m; the last known objects are kept.",
                since,
            )
            if minutes >= 5
            else fresh(),
            condition(conditions.READY, "False", "NonOKResponse", DOWN_READY_MESSAGE, since),
        ],
    }


CASES = [
    Case(
        "first-success",
        MetadataExchange(PUBLIC, PRIVATE),
        IMPORTED,
        expected=SYNCED_AT_T0,
    ),
    Case(
        "configuration-error-without-generation",
        MetadataExchange(NO_TRUST_DOMAIN),
        None,
        now=LATER,
        generation=None,
        expected={
            "conditions": [
                condition(conditions.PUBLIC, "False", "ConfigurationError", NO_TRUST_DOMAIN.message, LATER, None),
                private_awaiting(LATER, None),
                synced_awaiting(LATER, None),
                condition(conditions.STALE, "Unknown", "AwaitingFirstSync", "No successful sync yet.", LATER, None),
                condition(
                    conditions.READY,
                    "False",
                    "ConfigurationError",
                    f"PublicMetadataExchangeReady: {NO_TRUST_DOMAIN.message}",
                    LATER,
                    None,
                ),
            ],
        },
        verdict=(False, "public", NO_TRUST_DOMAIN.message, 0, False),
    ),
    Case(
        "never-synced-turns-stale-after-the-threshold-since-the-first-attempt",
        MetadataExchange(SERVER_ERROR),
        None,
        now=T0 + timedelta(minutes=7),
        history=History(first_attempt=T0 + timedelta(minutes=1)),
        expected={
            "conditions": [
                condition(conditions.PUBLIC, "False", "NonOKResponse", SERVER_ERROR.message, T0 + timedelta(minutes=7)),
                private_awaiting(T0 + timedelta(minutes=7)),
                synced_awaiting(T0 + timedelta(minutes=7)),
                condition(
                    conditions.STALE,
                    "True",
                    "NeverSynced",
                    "No successful sync in 6m since first attempt.",
                    T0 + timedelta(minutes=7),
                ),
                condition(
                    conditions.READY,
                    "False",
                    "NonOKResponse",
                    f"PublicMetadataExchangeReady: {SERVER_ERROR.message}",
                    T0 + timedelta(minutes=7),
                ),
            ],
        },
        verdict=(False, "public", SERVER_ERROR.message, 0, True),
    ),
    Case(
        "public-down-keeps-cache-objects-and-trust",
        MetadataExchange(SERVER_ERROR),
        None,
        old=SYNCED_AT_T0,
        now=T0 + timedelta(minutes=2),
        history=History(first_attempt=T0, last_success=T0),
        expected=public_down_after(2),
        verdict=(False, "public", SERVER_ERROR.message, 1, False),
    ),
    Case(
        "public-down-past-stale-after-turns-stale",
        MetadataExchange(SERVER_ERROR),
        None,
        old=SYNCED_AT_T0,
        now=T0 + timedelta(minutes=6),
        history=History(first_attempt=T0, last_success=T0),
        expected=public_down_after(6),
        verdict=(False, "public", SERVER_ERROR.message, 1, True),
    ),
    Case(
        "last-success-after-a-restart-comes-from-status",
        MetadataExchange(SERVER_ERROR),
        None,
        old=SYNCED_AT_T0,
        now=T0 + timedelta(minutes=6),
        history=History(first_attempt=T0 + timedelta(minutes=5)),
        expected=public_down_after(6),
        verdict=(False, "public", SERVER_ERROR.message, 1, True),
    ),
    Case(
        "private-refused-caches-public-and-trusts-its-root",
        MetadataExchange(PUBLIC, UNKNOWN_CLUSTER),
        None,
        expected={
            "metadataCache": {"public": PUBLIC.to_json()},
            "trustedRootCAs": [ROOT],
            "conditions": [
                public_ok(),
                condition(conditions.PRIVATE, "False", "NonOKResponse", UNKNOWN_CLUSTER.message, T0),
                synced_awaiting(T0),
                condition(conditions.STALE, "Unknown", "AwaitingFirstSync", "No successful sync yet.", T0),
                condition(
                    conditions.READY,
                    "False",
                    "NonOKResponse",
                    f"PrivateMetadataExchangeReady: {UNKNOWN_CLUSTER.message}",
                    T0,
                ),
            ],
        },
        verdict=(False, "private", UNKNOWN_CLUSTER.message, 0, False),
    ),
    Case(
        "refused-and-denied-hosts-are-named-and-the-sync-still-succeeds",
        MetadataExchange(PUBLIC, PRIVATE),
        Applied(
            (
                ServiceState(BAR, service_states.STATE_IMPORTED),
                ServiceState(DB, service_states.STATE_REFUSED, "outside the trust domain"),
                ServiceState(FOO, service_states.STATE_DENIED, "denied by admission"),
            ),
            complete=True,
        ),
        expected={
            **SYNCED_AT_T0,
            "services": [
                BAR_IMPORTED,
                {"hostname": DB, "state": "Refused", "message": "outside the trust domain"},
                {"hostname": FOO, "state": "Denied", "message": "denied by admission"},
            ],
            "servicesSummary": {"total": 3, "byState": {"Denied": 1, "Imported": 1, "Refused": 1}, "omitted": 0},
            "conditions": [
                public_ok(),
                private_ok(),
                condition(
                    conditions.SYNCED,
                    "False",
                    "ServicesDenied",
                    f"Imported 1 service, skipped 1, denied 1. Denied by admission: {FOO}.",
                    T0,
                ),
                fresh(),
                condition(
                    conditions.READY,
                    "False",
                    "ServicesDenied",
                    f"Synced: Imported 1 service, skipped 1, denied 1. Denied by admission: {FOO}.",
                    T0,
                ),
            ],
        },
    ),
    Case(
        "a-failed-write-fails-the-apply-stage",
        MetadataExchange(PUBLIC, PRIVATE),
        Applied((ServiceState(BAR, service_states.STATE_FAILED, "connection refused"),), complete=False),
        expected={
            "metadataCache": CACHE,
            "services": [{"hostname": BAR, "state": "Failed", "message": "connection refused"}],
            "servicesSummary": {"total": 1, "byState": {"Failed": 1}, "omitted": 0},
            "importedServices": 0,
            "trustedRootCAs": [ROOT],
            "conditions": [
                public_ok(),
                private_ok(),
                condition(
                    conditions.SYNCED,
                    "False",
                    "ApplyFailed",
                    f"Imported 0 services, skipped 0, denied 0. Could not apply: {BAR}.",
                    T0,
                ),
                condition(conditions.STALE, "Unknown", "AwaitingFirstSync", "No successful sync yet.", T0),
                condition(
                    conditions.READY,
                    "False",
                    "ApplyFailed",
                    f"Synced: Imported 0 services, skipped 0, denied 0. Could not apply: {BAR}.",
                    T0,
                ),
            ],
        },
        verdict=(False, "apply", f"could not apply {BAR}", 0, False),
    ),
    Case(
        "an-unchanged-sync-within-the-heartbeat-changes-nothing",
        MetadataExchange(PUBLIC, PRIVATE),
        IMPORTED,
        old=SYNCED_AT_T0,
        now=T0 + timedelta(minutes=1),
        history=History(first_attempt=T0, last_success=T0),
        expected=SYNCED_AT_T0,
    ),
    Case(
        "an-unchanged-sync-past-the-heartbeat-refreshes-the-last-success",
        MetadataExchange(PUBLIC, PRIVATE),
        IMPORTED,
        old=SYNCED_AT_T0,
        now=T0 + timedelta(minutes=3),
        history=History(first_attempt=T0, last_success=T0),
        expected={**SYNCED_AT_T0, "lastSuccessfulSyncTime": stamp(T0 + timedelta(minutes=3))},
    ),
    Case(
        "a-new-generation-is-observed-and-the-last-success-refreshed",
        MetadataExchange(PUBLIC, PRIVATE),
        IMPORTED,
        old=SYNCED_AT_T0,
        now=T0 + timedelta(minutes=1),
        generation=2,
        history=History(first_attempt=T0, last_success=T0),
        expected={
            **SYNCED_AT_T0,
            "conditions": [{**entry, "observedGeneration": 2} for entry in SYNCED_AT_T0["conditions"]],
            "lastSuccessfulSyncTime": stamp(T0 + timedelta(minutes=1)),
        },
    ),
    Case(
        "expired-objects-leave-no-services",
        MetadataExchange(SERVER_ERROR),
        Applied((), complete=True, expired=True),
        old=SYNCED_AT_T0,
        now=T0 + timedelta(minutes=6),
        history=History(first_attempt=T0, last_success=T0),
        expected={
            **public_down_after(6),
            "services": [],
            "servicesSummary": {"total": 0, "byState": {}, "omitted": 0},
            "importedServices": 0,
        },
        verdict=(False, "public", SERVER_ERROR.message, 0, True),
    ),
    Case(
        "a-rotated-remote-root-is-trusted-beside-the-retired-one",
        MetadataExchange(PublicMetadata(PUBLIC.cluster_uuid, PUBLIC.authn_key_pub, "NEW-ROOT-PEM"), PRIVATE),
        IMPORTED,
        old=SYNCED_AT_T0,
        now=T0 + timedelta(hours=1),
        history=History(first_attempt=T0, last_success=T0),
        expected={
            **SYNCED_AT_T0,
            "metadataCache": {**CACHE, "public": {**PUBLIC.to_json(), "rootCA": "NEW-ROOT-PEM"}},
            "trustedRootCAs": [
                {"pem": "NEW-ROOT-PEM", "firstSeen": stamp(T0 + timedelta(hours=1))},
                {**ROOT, "retiredAt": stamp(T0 + timedelta(hours=1))},
            ],
            "lastSuccessfulSyncTime": stamp(T0 + timedelta(hours=1)),
        },
    ),
    Case(
        "a-retired-root-is-dropped-after-the-overlap-even-while-the-remote-is-down",
        MetadataExchange(SERVER_ERROR),
        None,
        old={
            **SYNCED_AT_T0,
            "trustedRootCAs": [{"pem": "NEW", "firstSeen": stamp(T0)}, {**ROOT, "retiredAt": stamp(T0)}],
        },
        now=T0 + timedelta(hours=25),
        history=History(first_attempt=T0, last_success=T0),
        expected={
            **SYNCED_AT_T0,
            "trustedRootCAs": [{"pem": "NEW", "firstSeen": stamp(T0)}],
            "conditions": [
                condition(conditions.PUBLIC, "False", "NonOKResponse", SERVER_ERROR.message, T0 + timedelta(hours=25)),
                private_awaiting(T0 + timedelta(hours=25)),
                synced_awaiting(T0 + timedelta(hours=25)),
                condition(
                    conditions.STALE,
                    "True",
                    "LastSyncTooOld",
                    f"Last successful sync 1d1h ago ({stamp(T0)}), more than 5m; the last known objects are kept.",
                    T0 + timedelta(hours=25),
                ),
                condition(
                    conditions.READY,
                    "False",
                    "NonOKResponse",
                    f"PublicMetadataExchangeReady: {SERVER_ERROR.message}",
                    T0 + timedelta(hours=25),
                ),
            ],
        },
        verdict=(False, "public", SERVER_ERROR.message, 1, True),
    ),
]


# -- what the remote could not give, and who it claims to be ---------------------------------------

UNNAMED_UDP = SkippedPort(
    BAR,
    "53",
    "publicServices[0].ports[1]",
    "UnsupportedProtocol",
    'publicServices[0].ports[1].protocol: Invalid value: "UDP": UDP cannot cross the ingress gateway, which '
    "forwards TCP only",
)
EXTERNAL_NAME = SkippedService(
    "ext.xyz.svc.cluster-b.local",
    "publicServices[1]",
    "NoPorts",
    "publicServices[1].ports: Required value: the remote publishes no ports for this service",
)
LOOPBACK_GATEWAY = SkippedGateway(
    "127.0.0.1",
    "ingressGateways[0]",
    "ForbiddenAddress",
    "ingressGateways[0].address: Forbidden: 127.0.0.1 is a loopback address: it would point into this cluster",
)
SKIPS_ITEMS = [
    {
        "path": "publicServices[0].ports[1]",
        "subject": f"{BAR} port 53",
        "reason": "UnsupportedProtocol",
        "message": UNNAMED_UDP.message,
    },
    {
        "path": "publicServices[1]",
        "subject": EXTERNAL_NAME.hostname,
        "reason": "NoPorts",
        "message": EXTERNAL_NAME.message,
    },
]
NO_GATEWAYS = StageFailure(
    conditions.NO_INGRESS_GATEWAYS,
    "every ingress gateway the remote publishes is refused: ...",
    skipped=skipsummary.summarise([LOOPBACK_GATEWAY]),
)
CONFLICT = StageFailure(
    conditions.CLUSTER_UUID_CONFLICT, "the remote claims clusterUUID …", disowned_uuid=PUBLIC.cluster_uuid
)
OUTSIDE = (
    ServiceState("bar.xyz.svc.cluster-c.local", service_states.STATE_REFUSED, "host is outside the trust domain"),
    ServiceState("foo.xyz.svc.cluster-c.local", service_states.STATE_REFUSED, "host is outside the trust domain"),
)
MISMATCH_MESSAGE = (
    "Imported 0 services, skipped 2, denied 0. Every host the remote offers is outside spec.trustDomain "
    "cluster-b.local: its hosts are under cluster-c.local, so spec.trustDomain probably does not match the remote's "
    "real trust domain (create an IstioFederation with the right trustDomain; it is immutable). Refused: "
    "bar.xyz.svc.cluster-c.local, foo.xyz.svc.cluster-c.local."
)

CASES += [
    Case(
        "what-the-private-document-could-not-import-is-summarised",
        MetadataExchange(
            PUBLIC, PrivateMetadata(PRIVATE.ingress_gateways, PRIVATE.public_services, (EXTERNAL_NAME,), (UNNAMED_UDP,))
        ),
        IMPORTED,
        expected={
            **SYNCED_AT_T0,
            "skippedEntries": {
                "total": 2,
                "byReason": {"NoPorts": 1, "UnsupportedProtocol": 1},
                "items": SKIPS_ITEMS,
                "omitted": 0,
            },
            "conditions": [
                public_ok(),
                condition(
                    conditions.PRIVATE,
                    "True",
                    "Succeeded",
                    "Private metadata exchange succeeded. 2 entries skipped (1 NoPorts, 1 UnsupportedProtocol): "
                    f"{BAR} port 53: {UNNAMED_UDP.message}; {EXTERNAL_NAME.hostname}: {EXTERNAL_NAME.message}",
                    T0,
                ),
                *SYNCED_AT_T0["conditions"][2:],
            ],
        },
    ),
    Case(
        "no-usable-gateway-keeps-objects-and-cache-and-names-the-refused-ones",
        MetadataExchange(PUBLIC, NO_GATEWAYS),
        None,
        old=SYNCED_AT_T0,
        now=LATER,
        history=History(first_attempt=T0, last_success=T0),
        expected={
            **SYNCED_AT_T0,
            "skippedEntries": {
                "total": 1,
                "byReason": {"ForbiddenAddress": 1},
                "items": [
                    {
                        "path": "ingressGateways[0]",
                        "subject": "127.0.0.1",
                        "reason": "ForbiddenAddress",
                        "message": LOOPBACK_GATEWAY.message,
                    }
                ],
                "omitted": 0,
            },
            "conditions": [
                public_ok(),
                condition(conditions.PRIVATE, "False", "NoIngressGateways", NO_GATEWAYS.message, LATER),
                synced_awaiting(LATER),
                fresh(),
                condition(
                    conditions.READY,
                    "False",
                    "NoIngressGateways",
                    f"PrivateMetadataExchangeReady: {NO_GATEWAYS.message}",
                    LATER,
                ),
            ],
        },
        verdict=(False, "private", NO_GATEWAYS.message, 1, False),
    ),
    Case(
        "a-cluster-uuid-another-federation-holds-is-dropped-from-the-cache",
        MetadataExchange(CONFLICT),
        None,
        old=SYNCED_AT_T0,
        now=LATER,
        history=History(first_attempt=T0, last_success=T0),
        expected={
            **SYNCED_AT_T0,
            "metadataCache": {"private": CACHE["private"]},
            "conditions": [
                condition(conditions.PUBLIC, "False", "ClusterUUIDConflict", CONFLICT.message, LATER),
                private_awaiting(LATER),
                synced_awaiting(LATER),
                fresh(),
                condition(
                    conditions.READY,
                    "False",
                    "ClusterUUIDConflict",
                    f"PublicMetadataExchangeReady: {CONFLICT.message}",
                    LATER,
                ),
            ],
        },
        verdict=(False, "public", CONFLICT.message, 1, False),
    ),
    Case(
        "every-host-outside-the-trust-domain-blames-spec-trust-domain",
        MetadataExchange(PUBLIC, PrivateMetadata(PRIVATE.ingress_gateways, ())),
        Applied(OUTSIDE, complete=True, trust_domain_mismatch=("cluster-b.local", "cluster-c.local")),
        expected={
            **SYNCED_AT_T0,
            "metadataCache": {"public": PUBLIC.to_json(), "private": {**CACHE["private"], "publicServices": []}},
            "services": [state.to_json() for state in OUTSIDE],
            "servicesSummary": {"total": 2, "byState": {"Refused": 2}, "omitted": 0},
            "importedServices": 0,
            "conditions": [
                public_ok(),
                private_ok(),
                condition(conditions.SYNCED, "False", "TrustDomainMismatch", MISMATCH_MESSAGE, T0),
                fresh(),
                condition(conditions.READY, "False", "TrustDomainMismatch", f"Synced: {MISMATCH_MESSAGE}", T0),
            ],
        },
        verdict=(True, "", "", 0, False),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_next_status(case: Case) -> None:
    result = status.next_status(
        case.old,
        case.exchange,
        case.applied,
        now=case.now,
        settings=SETTINGS,
        history=case.history,
        generation=case.generation,
    )

    assert result.status == case.expected
    assert (result.succeeded, result.failed_stage, result.failure, result.imported, result.stale) == case.verdict
    expected_pems = tuple(entry["pem"] for entry in case.expected.get("trustedRootCAs", []))
    assert result.trusted_pems == expected_pems


def test_next_status_leaves_the_old_status_alone() -> None:
    old = {**SYNCED_AT_T0, "conditions": [dict(entry) for entry in SYNCED_AT_T0["conditions"]]}
    before = repr(old)

    status.next_status(
        old,
        MetadataExchange(SERVER_ERROR),
        None,
        now=T0 + timedelta(hours=1),
        settings=SETTINGS,
        history=History(first_attempt=T0),
        generation=3,
    )

    assert repr(old) == before


@pytest.mark.parametrize(
    ("last_success", "now", "expire_after", "due"),
    [
        pytest.param(None, T0, timedelta(hours=1), False, id="never-succeeded"),
        pytest.param(T0, T0 + timedelta(minutes=59), timedelta(hours=1), False, id="younger"),
        pytest.param(T0, T0 + timedelta(hours=1), timedelta(hours=1), True, id="exactly-that-old"),
        pytest.param(T0, T0 + timedelta(days=9), None, False, id="off-by-default"),
    ],
)
def test_expiry_is_due_once_the_last_success_is_that_old(
    last_success: datetime | None, now: datetime, expire_after: timedelta | None, due: bool
) -> None:
    old = {"lastSuccessfulSyncTime": stamp(last_success)} if last_success else {}

    assert status.expiry_due(old, History(first_attempt=T0), now=now, expire_after=expire_after) is due


def test_service_states_name_why_each_host_is_not_imported() -> None:
    from federation.desired import DesiredState, SkippedService

    plan = DesiredState(
        objects=(),
        imported=(FOO, BAR, "baz.xyz.svc.cluster-b.local", "qux.xyz.svc.cluster-b.local"),
        skipped=(SkippedService(DB, "OutsideTrustDomain", "outside"),),
    )

    states = service_states.service_states(
        plan,
        denied={FOO: "denied"},
        blocked={"baz.xyz.svc.cluster-b.local": "taken"},
        failed={"qux.xyz.svc.cluster-b.local": "refused"},
    )

    assert states == (
        ServiceState(BAR, "Imported"),
        ServiceState("baz.xyz.svc.cluster-b.local", "Conflict", "taken"),
        ServiceState(DB, "Refused", "outside"),
        ServiceState(FOO, "Denied", "denied"),
        ServiceState("qux.xyz.svc.cluster-b.local", "Failed", "refused"),
    )


# -- a sync that raised ------------------------------------------------------------------------------


def test_a_sync_that_raised_says_so_and_turns_stale_like_any_failure() -> None:
    now = T0 + timedelta(minutes=6)

    result = status.internal_error_status(
        SYNCED_AT_T0,
        stage="decide",
        detail="RuntimeError: boom",
        now=now,
        settings=SETTINGS,
        history=History(first_attempt=T0, last_success=T0),
        generation=1,
    )

    synced_message = (
        "The sync failed unexpectedly in its decide stage (RuntimeError: boom); the last known objects are kept; "
        "the reconciler's log has the traceback."
    )
    stale_message = f"Last successful sync 6m ago ({stamp(T0)}), more than 5m; the last known objects are kept."
    assert result.status == {
        **SYNCED_AT_T0,
        "conditions": [
            public_ok(),
            private_ok(),
            condition(conditions.SYNCED, "False", "InternalError", synced_message, now),
            condition(conditions.STALE, "True", "LastSyncTooOld", stale_message, now),
            condition(conditions.READY, "False", "InternalError", f"Synced: {synced_message}", now),
        ],
    }
    assert (result.succeeded, result.failed_stage, result.failure, result.imported, result.stale) == (
        False,
        "internal",
        synced_message,
        1,
        True,
    )
    assert result.trusted_pems == ("ROOT-PEM",)


# -- bounded, whatever the remote publishes ----------------------------------------------------------


def _status_bytes(value: dict[str, Any]) -> int:
    return len(json.dumps(value, separators=(",", ":")))


def test_fifty_thousand_services_keep_status_small() -> None:
    ports = tuple(ServicePort(f"tcp-{n}", 1000 + n, "TCP") for n in range(3))
    services = tuple(PublicService(f"svc{n:05d}.ns.svc.cluster-b.local", ports) for n in range(50_000))
    gateways = tuple(IngressGateway(f"203.0.{n // 256}.{n % 256}", 15443) for n in range(4096))
    states = [ServiceState(service.hostname, service_states.STATE_IMPORTED) for service in services]
    # A few not imported, each with a long admission message: they are listed first.
    states[7] = ServiceState(states[7].hostname, service_states.STATE_DENIED, "denied: " + "x" * 5000)
    states[49_999] = ServiceState(states[49_999].hostname, service_states.STATE_REFUSED, "refused")

    result = status.next_status(
        {},
        MetadataExchange(PUBLIC, PrivateMetadata(gateways, services)),
        Applied(tuple(states), complete=True),
        now=T0,
        settings=SETTINGS,
        history=History(first_attempt=T0),
        generation=1,
    )

    new = result.status
    assert _status_bytes(new) < 64 * 1024, _status_bytes(new)
    assert len(new["services"]) == service_states.MAX_LISTED_SERVICES
    listed = [entry["hostname"] for entry in new["services"]]
    assert listed == sorted(listed)
    assert {states[7].hostname, states[49_999].hostname} <= set(listed)
    denied = next(entry for entry in new["services"] if entry["state"] == "Denied")
    assert denied["message"] == "denied: " + "x" * 1016 + "..."
    assert new["servicesSummary"] == {
        "total": 50_000,
        "byState": {"Denied": 1, "Imported": 49_998, "Refused": 1},
        "omitted": 49_950,
    }
    assert new["importedServices"] == 49_998
    cache = new["metadataCache"]
    kept_services, kept_gateways = len(cache["private"]["publicServices"]), len(cache["private"]["ingressGateways"])
    assert cache["private"]["publicServices"][0] == services[0].to_json()
    assert cache["privateOmitted"] == {
        "ingressGateways": 4096 - kept_gateways,
        "publicServices": 50_000 - kept_services,
    }
    assert 0 < kept_services < 50_000
    assert 0 < kept_gateways < 4096
    synced = conditions.find(new["conditions"], conditions.SYNCED)
    assert synced is not None
    assert synced["message"] == (
        f"Imported 49998 services, skipped 1, denied 1. Denied by admission: {states[7].hostname}."
    )


def test_twenty_thousand_skipped_entries_and_refused_hosts_keep_status_small() -> None:
    skipped = tuple(
        SkippedService(f"bad host {n}\n", f"publicServices[{n}]", "InvalidHostname", "x" * 1000) for n in range(20_000)
    )
    refused = tuple(
        ServiceState(f"svc{n:05d}.ns.svc.cluster-c.local", service_states.STATE_REFUSED, "outside " + "y" * 1000)
        for n in range(20_000)
    )

    result = status.next_status(
        {},
        MetadataExchange(PUBLIC, PrivateMetadata(PRIVATE.ingress_gateways, (), skipped)),
        Applied(refused, complete=True, trust_domain_mismatch=("cluster-b.local", "cluster-c.local")),
        now=T0,
        settings=SETTINGS,
        history=History(first_attempt=T0),
        generation=1,
    )

    new = result.status
    assert _status_bytes(new) < 64 * 1024, _status_bytes(new)
    assert (new["skippedEntries"]["total"], new["skippedEntries"]["omitted"]) == (20_000, 19_980)
    assert new["servicesSummary"] == {"total": 20_000, "byState": {"Refused": 20_000}, "omitted": 19_970}
    for entry in new["conditions"]:
        assert len(entry["message"]) <= conditions.MESSAGE_LIMIT + 3
    synced = conditions.find(new["conditions"], conditions.SYNCED)
    assert synced is not None
    assert synced["message"].endswith(
        "Refused: svc00000.ns.svc.cluster-c.local, svc00001.ns.svc.cluster-c.local, svc00002.ns.svc.cluster-c.local, "
        "svc00003.ns.svc.cluster-c.local, svc00004.ns.svc.cluster-c.local and 19995 more."
    )
