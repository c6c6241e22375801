"""Prometheus metrics of one exporter app, in its own registry (no module-level globals).

Request and auth-failure counters are incremented by the app.  Everything that describes the
snapshot (exported services and gateways, skips, trusted clusters, readiness) is read from the
current snapshot at scrape time by a collector, so it can never drift from what is served.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.snapshot import Snapshot

PREFIX = "istio_federation_exporter"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


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
        gateways.add_metric([snapshot.gateway_source or "none"], float(snapshot.gateways))
        yield gateways
        skipped = GaugeMetricFamily(
            f"{PREFIX}_skipped",
            "Services, ports and gateways currently left out of federation.json, by kind and reason.",
            labels=["kind", "reason"],
        )
        for (kind, reason), count in sorted(Tally((skip.kind, skip.reason) for skip in snapshot.skips).items()):
            skipped.add_metric([kind, reason], float(count))
        yield skipped
        known = GaugeMetricFamily(f"{PREFIX}_trusted_clusters", "Remote clusters whose tokens are accepted.")
        known.add_metric([], float(len(snapshot.known_keys)))
        yield known
        generation = GaugeMetricFamily(f"{PREFIX}_snapshot_generation", "Rebuilds of the served snapshot.")
        generation.add_metric([], float(snapshot.generation))
        yield generation


class Metrics:
    def __init__(self, current: Callable[[], Snapshot]) -> None:
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

    def render(self) -> bytes:
        return generate_latest(self.registry)
