"""Admission metrics: counts and latency by kind, operation and result.

Buckets start at 5 ms and 25 ms like the apiserver's own webhook histogram, so the two can be
read side by side.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


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
                "Admission reviews answered, by kind, operation and result (allowed, denied, error).",
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
            ),
        )
