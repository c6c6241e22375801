"""federation.conditions: Kubernetes condition semantics with Deckhouse's types and reasons."""

from __future__ import annotations

from datetime import timedelta

import pytest

from federation import conditions
from federation.conditions import Condition


def test_transition_time_changes_only_with_status() -> None:
    first = conditions.merge([], [conditions.public_succeeded()], now="T1", generation=1)
    same = conditions.merge(first, [conditions.public_succeeded()], now="T2", generation=2)
    reason_only = conditions.merge(
        same, [Condition(conditions.PUBLIC, "True", "Other", "other message")], now="T3", generation=2
    )
    flipped = conditions.merge(
        reason_only, [Condition(conditions.PUBLIC, "False", "FetchFailed", "boom")], now="T4", generation=2
    )
    assert first[0]["lastTransitionTime"] == "T1"
    assert same[0] == {**first[0], "observedGeneration": 2}
    assert reason_only[0]["lastTransitionTime"] == "T1"
    assert flipped[0] == {
        "type": conditions.PUBLIC,
        "status": "False",
        "reason": "FetchFailed",
        "message": "boom",
        "lastTransitionTime": "T4",
        "observedGeneration": 2,
    }


def test_foreign_conditions_are_kept_in_place() -> None:
    dataplane = {"type": "DataplaneConnectionReady", "status": "True", "reason": "Succeeded", "message": "ok"}
    merged = conditions.merge([dataplane], [conditions.private_awaiting_public()], now="T", generation=None)
    assert merged[0] == dataplane
    assert merged[1]["reason"] == "AwaitingPublic"
    assert "observedGeneration" not in merged[1]


@pytest.mark.parametrize(
    ("age", "status", "reason"),
    [
        pytest.param(timedelta(minutes=4, seconds=59), "False", "Fresh", id="fresh"),
        pytest.param(timedelta(minutes=5), "True", "LastSyncTooOld", id="stale"),
    ],
)
def test_stale(age: timedelta, status: str, reason: str) -> None:
    condition = conditions.stale(
        last_success="2026-01-01T00:00:00Z", age=age, stale_after=timedelta(minutes=5), expire_after=None
    )
    assert (condition.status, condition.reason) == (status, reason)


def test_stale_message_names_age_and_expiry() -> None:
    condition = conditions.stale(
        last_success="2026-01-01T00:00:00Z",
        age=timedelta(hours=2, minutes=3, seconds=40),
        stale_after=timedelta(minutes=5),
        expire_after=timedelta(hours=24),
    )
    assert condition.message == (
        "Last successful sync 2h3m ago (2026-01-01T00:00:00Z), more than 5m; the last known objects are kept. "
        "Objects are removed after 24h."
    )


def test_never_synced() -> None:
    waiting = conditions.stale(last_success=None, age=timedelta(minutes=1), stale_after=timedelta(minutes=5),
                               expire_after=None)
    late = conditions.stale(last_success=None, age=timedelta(minutes=7), stale_after=timedelta(minutes=5),
                            expire_after=None)
    assert (waiting.status, waiting.reason) == ("Unknown", "AwaitingFirstSync")
    assert (late.status, late.reason) == ("True", "NeverSynced")
    assert late.message == "No successful sync in 7m since first attempt."


def test_synced_counts_and_reasons() -> None:
    assert conditions.synced(imported=2, skipped=[], denied=[]) == Condition(
        "Synced", "True", "Synced", "Imported 2 services, skipped 0, denied 0."
    )
    denied = conditions.synced(imported=1, skipped=["a"], denied=["b"])
    assert (denied.status, denied.reason, denied.message) == (
        "False", "ServicesDenied", "Imported 1 service, skipped 1, denied 1. Denied by admission: b."
    )


def test_ready_names_the_first_problem() -> None:
    public = Condition(conditions.PUBLIC, "False", "NonOKResponse", "HTTP status 500 when fetching public metadata")
    ready = conditions.ready([public, conditions.private_awaiting_public()], imported=3)
    assert ready == Condition(
        "Ready", "False", "NonOKResponse", "PublicMetadataExchangeReady: HTTP status 500 when fetching public metadata"
    )
    fine = conditions.ready([conditions.public_succeeded(), conditions.private_succeeded()], imported=1)
    assert fine == Condition("Ready", "True", "Ready", "Federation is synced: 1 service imported.")


def test_messages_are_cut_and_name_at_most_five_hosts() -> None:
    hosts = [f"h{n}.cluster-b.local" for n in range(8)]
    condition = conditions.synced(imported=0, skipped=hosts, denied=[])
    assert condition.message == (
        "Imported 0 services, skipped 8, denied 0. Refused: h0.cluster-b.local, h1.cluster-b.local, "
        "h2.cluster-b.local, h3.cluster-b.local, h4.cluster-b.local and 3 more."
    )
    merged = conditions.merge(
        [], [Condition(conditions.PRIVATE, "False", "NonOKResponse", "x\n" * 2000)], now="T", generation=None
    )
    assert merged[0]["message"] == "x?" * 512 + "..."
