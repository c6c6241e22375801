"""Prometheus metrics of the reconciler, all labelled by federation, and the /metrics endpoint.

Each Reconciler gets its own registry, so tests (and the demo, which runs two clusters in one
process) never share counters.  The two gauges at the bottom are what the PrometheusRule alerts on:
``istio_federation_metadata_endpoint_up == 0`` for 5 minutes, and ``istio_federation_stale == 1``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from federation.documents.skips import SKIP_REASONS

log = logging.getLogger(__name__)

STAGES = ("public", "private", "apply", "internal")
# Where a sync that raised was (sync_errors_total): a closed set, whatever the exception.
SYNC_STAGES = ("observe", "decide", "apply", "status", "report")
# Why entries of a private document were skipped: federation.documents.skips.SKIP_REASONS, anything else "Other".
SKIP_REASON_LABELS = (*SKIP_REASONS, "Other")


class ReconcilerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.fetch_errors = Counter(
            "istio_federation_fetch_errors_total",
            "Failed syncs by the stage that failed (public fetch, private fetch, apply, internal: the sync raised).",
            ["federation", "stage"],
            registry=self.registry,
        )
        self.sync_errors = Counter(
            "istio_federation_sync_errors_total",
            "Syncs that failed unexpectedly (raised: a bug, or input nothing foresaw), by the stage that raised "
            "(observe, decide, apply, status, report); the reconciler's log has the traceback.",
            ["federation", "stage"],
            registry=self.registry,
        )
        self.skipped_entries = Gauge(
            "istio_federation_skipped_entries",
            "Entries (services, ports, gateways) of the last private document that could not be imported, by reason.",
            ["federation", "reason"],
            registry=self.registry,
        )
        self._skip_reasons: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self.sync_duration = Histogram(
            "istio_federation_sync_duration_seconds",
            "Duration of one federation sync (fetches, apply and status).",
            ["federation"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60),
            registry=self.registry,
        )
        self.last_success = Gauge(
            "istio_federation_last_success_timestamp_seconds",
            "Unix time of the last sync that fetched and applied everything.",
            ["federation"],
            registry=self.registry,
        )
        self.imported_services = Gauge(
            "istio_federation_imported_services",
            "Remote services currently imported as ServiceEntries.",
            ["federation"],
            registry=self.registry,
        )
        self.writes = Counter(
            "istio_federation_writes_total",
            "Writes to managed objects by verb (create, update, delete, patch).",
            ["federation", "verb"],
            registry=self.registry,
        )
        self.endpoint_up = Gauge(
            "istio_federation_metadata_endpoint_up",
            "1 when the last public and private metadata fetches succeeded, else 0.",
            ["federation"],
            registry=self.registry,
        )
        self.stale = Gauge(
            "istio_federation_stale",
            "1 when the last successful sync is older than --stale-after.",
            ["federation"],
            registry=self.registry,
        )

    def write(self, federation: str, verb: str) -> None:
        self.writes.labels(federation=federation, verb=verb).inc()

    def set_skipped(self, federation: str, by_reason: Mapping[str, int]) -> None:
        """The skips of the last private document; reasons no longer seen drop to 0."""
        counts: dict[str, int] = {}
        for reason, count in by_reason.items():
            label = reason if reason in SKIP_REASON_LABELS else "Other"
            counts[label] = counts.get(label, 0) + count
        with self._lock:
            previous = self._skip_reasons.get(federation, set())
            for reason in previous - set(counts):
                self.skipped_entries.labels(federation=federation, reason=reason).set(0)
            for reason, count in counts.items():
                self.skipped_entries.labels(federation=federation, reason=reason).set(count)
            self._skip_reasons[federation] = previous | set(counts)

    def forget(self, federation: str) -> None:
        """Drop the series of a deleted federation so alerts about it resolve."""
        for metric in (self.sync_duration, self.last_success, self.imported_services, self.endpoint_up, self.stale):
            with contextlib.suppress(KeyError):
                metric.remove(federation)
        for stage in STAGES:
            with contextlib.suppress(KeyError):
                self.fetch_errors.remove(federation, stage)
        for stage in SYNC_STAGES:
            with contextlib.suppress(KeyError):
                self.sync_errors.remove(federation, stage)
        with self._lock:
            for reason in self._skip_reasons.pop(federation, set()):
                with contextlib.suppress(KeyError):
                    self.skipped_entries.remove(federation, reason)
        for verb in ("create", "update", "delete", "patch"):
            with contextlib.suppress(KeyError):
                self.writes.remove(federation, verb)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MetricsServer:
    """``/metrics`` and ``/healthz`` on a plain HTTP port (scraped inside the cluster)."""

    def __init__(self, metrics: ReconcilerMetrics, *, host: str, port: int, healthy: threading.Event) -> None:
        self.metrics = metrics
        self.healthy = healthy
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] == "/metrics":
                    self._send(200, outer.metrics.exposition(), CONTENT_TYPE_LATEST)
                elif self.path.split("?", 1)[0] == "/healthz":
                    ok = outer.healthy.is_set()
                    self._send(200 if ok else 503, b"ok\n" if ok else b"starting\n", "text/plain; charset=utf-8")
                else:
                    self._send(404, b"not found\n", "text/plain; charset=utf-8")

            def _send(self, code: int, body: bytes, content_type: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                log.debug("metrics: " + format, *args)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="reconciler-metrics", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
