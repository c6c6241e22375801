"""Prometheus metrics of one exporter app, in its own registry (no module-level globals).

Request and auth-failure counters are incremented by the app.  Everything that describes the
snapshot (exported services and gateways, skips, trusted clusters, readiness) is read from the
current snapshot at scrape time by a collector, so it can never drift from what is served.

Every label takes its value from a closed set, never from a request as sent: the route (known
paths, else ``other``), the status code (the codes the exporter answers, else ``other``), the
token rejection code (``federation.tokens.REJECTION_CODES`` and the two header failures, else
``other``).  The snapshot's labels are the exporter's own fixed words; anything else is
counted as ``other`` too.
"""

from __future__ import annotations

import re
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter import published_gateways
from exporter.snapshot import Snapshot
from federation import tokens

PREFIX = "istio_federation_exporter"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

OTHER: Final = "other"
# The codes the exporter answers itself; anything else (none expected) is counted as other.
STATUS_CODES: Final = frozenset({"200", "304", "400", "401", "404", "405", "413", "414", "431", "500", "503"})
# Why private metadata was refused: before a token is parsed, then the token's own codes.
AUTH_FAILURE_CODES: Final = frozenset({"missing_header", "not_bearer", *tokens.REJECTION_CODES})
GATEWAY_SOURCES: Final = frozenset(
    {
        "none",
        published_gateways.SOURCE_FLAG,
        published_gateways.SOURCE_CONFIGMAP,
        published_gateways.SOURCE_LOAD_BALANCER,
        published_gateways.SOURCE_NODE_PORT,
    }
)
SKIP_KINDS: Final = frozenset({"service", "port", "gateway"})
_FIXED_WORD = re.compile(r"[a-z][a-z0-9_]{0,47}")


def closed(value: str, allowed: Iterable[str]) -> str:
    return value if value in allowed else OTHER


def fixed_word(value: str) -> str:
    """A reason the exporter names itself (a short snake_case word); anything else is other."""
    return value if _FIXED_WORD.fullmatch(value) else OTHER


class _SnapshotCollector(Collector):
    def __init__(self, current: Callable[[], Snapshot]) -> None:
        self._current = current

    def describe(self) -> Iterator[Metric]:
        # Without this the registry would call collect() at registration, before any snapshot.
        return iter(())

    def collect(self) -> Iterator[Metric]:
        snapshot = self._current()
        ready = GaugeMetricFamily(f"{PREFIX}_ready", "1 when public and private metadata are being served.")
        ready.add_metric([], 1.0 if snapshot.ready else 0.0)
        yield ready
        services = GaugeMetricFamily(f"{PREFIX}_public_services", "Public services in federation.json.")
        services.add_metric([], float(snapshot.services))
        yield services
        gateways = GaugeMetricFamily(
            f"{PREFIX}_ingress_gateways", "Ingress gateways in federation.json, by source.", labels=["source"]
        )
        gateways.add_metric([closed(snapshot.gateway_source or "none", GATEWAY_SOURCES)], float(snapshot.gateways))
        yield gateways
        skipped = GaugeMetricFamily(
            f"{PREFIX}_skipped",
            "Services, ports and gateways currently left out of federation.json, by kind and reason.",
            labels=["kind", "reason"],
        )
        tally = Tally((closed(skip.kind, SKIP_KINDS), fixed_word(skip.reason)) for skip in snapshot.skips)
        for (kind, reason), count in sorted(tally.items()):
            skipped.add_metric([kind, reason], float(count))
        yield skipped
        known = GaugeMetricFamily(f"{PREFIX}_trusted_clusters", "Remote clusters whose tokens are accepted.")
        known.add_metric([], float(len(snapshot.known_keys)))
        yield known
        generation = GaugeMetricFamily(f"{PREFIX}_snapshot_generation", "Rebuilds of the served snapshot.")
        generation.add_metric([], float(snapshot.generation))
        yield generation


class Metrics:
    def __init__(self, current: Callable[[], Snapshot], paths: Iterable[str] = ()) -> None:
        self.paths = frozenset(paths)
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            f"{PREFIX}_requests", "HTTP requests by route and status code.", ["path", "code"], registry=self.registry
        )
        self.auth_failures = Counter(
            f"{PREFIX}_auth_failures",
            "Requests for private metadata refused, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.duration = Histogram(
            f"{PREFIX}_request_duration_seconds",
            "Time to answer a request, by route.",
            ["path"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )
        self.registry.register(_SnapshotCollector(current))

    def observe_request(self, path: str, code: int, seconds: float | None) -> None:
        """Count one answered request; the labels are mapped into their closed sets."""
        route = closed(path, self.paths)
        self.requests.labels(route, closed(str(code), STATUS_CODES)).inc()
        if seconds is not None:
            self.duration.labels(route).observe(seconds)

    def count_auth_failure(self, code: str) -> None:
        self.auth_failures.labels(closed(code, AUTH_FAILURE_CODES)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
