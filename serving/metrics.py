"""Prometheus metrics when gunicorn runs several workers: one exposition for all of them.

A scrape reaches one worker.  With one worker its own registry is the whole truth.  With
several, each would show only its own counters, and a scrape alternating between workers would
see counters jump back and forth (read as resets).  So with several workers the master creates
a directory (``PROMETHEUS_MULTIPROC_DIR``), each worker switches ``prometheus_client`` to its
multi-process values before the application creates its metrics, the exposition merges every
worker's files, and the files of a worker that exits are marked dead.

Only metrics that store values (counters, histograms, gauges) cross workers; a custom collector
that computes at scrape time does not, which is why the exporter, whose snapshot metrics are
such a collector, keeps one worker.  Gauges should say how workers combine
(``multiprocess_mode``); without it every worker's value is shown with a ``pid`` label.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest, multiprocess, values

log = logging.getLogger("istio_federation.serving")

ENVIRONMENT = "PROMETHEUS_MULTIPROC_DIR"


def start_shared(prefix: str = "istio-federation-metrics-") -> str | None:
    """In the master, before forking several workers: the directory their metrics share.

    None (each worker then shows its own metrics, with a warning) when no directory can be made.
    """
    try:
        directory = tempfile.mkdtemp(prefix=prefix)
    except OSError as error:
        log.warning("metrics are per worker: no directory for shared metrics (%s)", error)
        return None
    os.environ[ENVIRONMENT] = directory
    return directory


def stop_shared(directory: str | None) -> None:
    if directory is not None:
        os.environ.pop(ENVIRONMENT, None)
        shutil.rmtree(directory, ignore_errors=True)


def worker_forked(server: Any, worker: Any) -> None:
    """gunicorn's post_fork hook: metrics created from now on in this worker are shared."""
    if os.environ.get(ENVIRONMENT):
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


def worker_exited(server: Any, worker: Any) -> None:
    """gunicorn's child_exit hook: drop the live gauges of a worker that is gone."""
    if os.environ.get(ENVIRONMENT):
        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def exposition(registry: CollectorRegistry) -> bytes:
    """The text exposition of ``registry``, merged across workers when they share metrics."""
    directory = os.environ.get(ENVIRONMENT)
    # Shared only once this worker switched its values (worker_forked): not in tests, not in the master.
    if directory and getattr(values.ValueClass, "__name__", "") == "MmapedValue":
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=directory)  # type: ignore[no-untyped-call]
        return generate_latest(merged)
    return generate_latest(registry)
