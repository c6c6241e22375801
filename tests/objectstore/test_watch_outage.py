"""Watch outages, without a server: the backoff's bounds, the outage clock, and one log line per
change of state.  (The real apiserver restart is in tests/realcluster/test_40_watch_restart.py.)"""

from __future__ import annotations

import logging

import kubernetes.client
import pytest
import urllib3

from federation.resources import SERVICE_ENTRY
from federation.store import Unavailable, Watch
from objectstore.kube import KubernetesStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def store_with(clock: Clock) -> KubernetesStore:
    return KubernetesStore(kubernetes.client.ApiClient(), [Watch(SERVICE_ENTRY)], name="test", clock=clock)


def test_backoff_grows_from_the_minimum_and_is_capped_with_jitter() -> None:
    store = store_with(Clock())
    for _ in range(200):
        assert 0.05 <= store._backoff(1) <= 0.1
        assert 0.1 <= store._backoff(2) <= 0.2
        assert 0.5 <= store._backoff(5) <= 1.0
        assert 0.5 <= store._backoff(10_000) <= 1.0


def test_the_outage_is_timed_from_when_it_was_noticed_and_logged_once_per_change(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    store = store_with(clock)
    (state,) = store._states
    refused = urllib3.exceptions.MaxRetryError(None, "/apis", "Connection refused")  # type: ignore[arg-type]
    caplog.set_level(logging.INFO, logger="objectstore.kubewatch")
    assert store.outage() is None
    for _ in range(25):  # one second of attempts at the cap, and more
        store._failed(state, refused)
        clock.now += 0.5
    # The list path sees the same refusal as Unavailable: the same cause, no new line.
    store._failed(state, Unavailable("GET /apis: cannot reach the Kubernetes API: Connection refused"))
    outage = store.outage()
    assert outage is not None
    assert outage.seconds == 12.5
    assert outage.what == "the watch of serviceentries.networking.istio.io is failing (unreachable)"
    store._failed(state, Unavailable("the server is starting", code=503))
    store._healthy(state)
    assert store.outage() is None
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 3, messages
    assert messages[0].startswith("test: serviceentries.networking.istio.io: MaxRetryError: ")
    assert messages[1].startswith("test: serviceentries.networking.istio.io: Unavailable: the server is starting")
    assert messages[2] == "test: serviceentries.networking.istio.io: recovered after 12.5s (27 failed attempts)"
