"""Admission metrics: counts and latency by kind, operation and result.

Buckets start at 5 ms and 25 ms like the apiserver's own webhook histogram, so the two can be
read side by side.

Every label takes its value from a closed set, never from the request as sent: a client that
invents a new ``request.kind.kind`` per request must not grow ``/metrics`` (or memory) with it.
Kinds the webhook checks keep their name; any other kind is counted as ``other``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from federation.admission_review import OPERATIONS
from federation.validation import registry

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

OTHER: Final = "other"
KINDS: Final = frozenset(resource.kind for resource in registry.CHECKED)
RESULTS: Final = frozenset({"allowed", "denied", "error"})
# Labels of the watch cache's object counts, as the store names the resources: a closed set, the
# resources with rules (the webhook watches those of them its rules look up).
CACHED_RESOURCES: Final = frozenset(resource.plural for resource in registry.CHECKED)


def kind_label(kind: str | None) -> str:
    return kind if kind in KINDS else OTHER


def operation_label(operation: str | None) -> str:
    return operation if operation in OPERATIONS else OTHER


def result_label(result: str) -> str:
    return result if result in RESULTS else OTHER


def resource_label(resource: str) -> str:
    return resource if resource in CACHED_RESOURCES else OTHER


@dataclass(frozen=True)
class AdmissionMetrics:
    registry: CollectorRegistry
    requests: Counter
    duration: Histogram
    malformed: Counter
    cache_objects: Gauge

    @classmethod
    def create(cls) -> AdmissionMetrics:
        # One registry per app: tests build many apps in one process.
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            requests=Counter(
                "istio_federation_admission_requests",
                "Admission reviews answered, by kind (other for kinds the webhook does not check), "
                "operation and result (allowed, denied, error).",
                ["kind", "operation", "result"],
                registry=registry,
            ),
            duration=Histogram(
                "istio_federation_admission_duration_seconds",
                "Time to answer an admission review, by kind, operation and result.",
                ["kind", "operation", "result"],
                buckets=BUCKETS,
                registry=registry,
            ),
            malformed=Counter(
                "istio_federation_admission_malformed_requests",
                "Requests to /validate refused with HTTP 400 because they were not a valid AdmissionReview.",
                registry=registry,
            ),
            cache_objects=Gauge(
                "istio_federation_admission_cached_objects",
                "Objects in the webhook's watch cache, by resource.",
                ["resource"],
                registry=registry,
                # With several workers, the value of the worker that answered the latest scrape.
                multiprocess_mode="livemostrecent",
            ),
        )

    def observe(self, kind: str | None, operation: str | None, result: str, seconds: float) -> None:
        """Count one answered review; every label is mapped into its closed set."""
        labels = (kind_label(kind), operation_label(operation), result_label(result))
        self.requests.labels(*labels).inc()
        self.duration.labels(*labels).observe(seconds)
