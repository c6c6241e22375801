"""The webhook refuses to vouch for a cache whose watch has failed beyond --max-cache-staleness:
/readyz answers 503 and reviews are refused with 503, so failurePolicy: Fail blocks writes instead of
admitting them from a stale cache.  (The real apiserver restart is in tests/realcluster.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from federation.store import Outage
from objectstore.factory import StoreSource
from objectstore.statedir import StateDirStore
from tests.reviews import admission_review, service_entry
from webhook.app import WATCHES, create_app
from webhook.settings import WebhookSettings


class OutageStore(StateDirStore):
    """A synced store whose watch has been failing for ``seconds``."""

    def __init__(self, root: Path, seconds: float) -> None:
        super().__init__(root, WATCHES, poll_interval=0)
        self.seconds = seconds

    def outage(self) -> Outage | None:
        return Outage(self.seconds, "the watch of serviceentries.networking.istio.io is failing (unreachable)")


@pytest.mark.parametrize(("seconds", "ready"), [(4.9, True), (7.0, False)])
def test_the_webhook_vouches_for_its_cache_only_within_the_bound(tmp_path: Path, seconds: float, ready: bool) -> None:
    store = OutageStore(tmp_path, seconds)
    store.start()
    try:
        app = create_app(WebhookSettings("cluster-a.local", StoreSource(state=tmp_path)), store=store)
        client = app.test_client()
        readyz = client.get("/readyz")
        body = json.loads(client.post(
            "/validate", data=json.dumps(admission_review(service_entry("web", "shop", "web.example.com"), uid="u1")),
            content_type="application/json",
        ).data)["response"]  # fmt: skip
    finally:
        store.stop()
    if ready:
        assert readyz.status_code == 200
        assert body["allowed"] is True
        return
    reason = (
        "the watch of serviceentries.networking.istio.io is failing (unreachable) for 7s, longer than "
        "--max-cache-staleness 5s"
    )
    assert (readyz.status_code, readyz.get_json()) == (503, {"status": "not ready", "reason": reason})
    assert body["allowed"] is False
    assert body["status"]["code"] == 503
    assert body["status"]["reason"] == "ServiceUnavailable"
    assert body["status"]["message"] == (
        "the istio-federation webhook's copy of the cluster's IstioFederations and ServiceEntries may be out of "
        f"date: {reason}; retry in a few seconds, or see the webhook's log"
    )
