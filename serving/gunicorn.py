"""Serve a Flask app factory under gunicorn with the bounded worker, optionally over TLS.

gunicorn's arbiter forks the workers, restarts one that dies or hangs longer than ``timeout``,
and drains them on SIGTERM.  Each worker runs ``serving.worker.BoundedWorker`` (a gevent event
loop with deadlines on every phase of a connection) and calls the factory after the fork, so
background threads (watch loops) start in the worker that serves from them.

TLS is checked before gunicorn starts (``serving.tls.pair_problem``: the caller turns it into a
usage error) and reloaded by the worker when the files change, so a rotated Secret volume is
served to new connections without a restart.

Several workers mean several copies of the application: each keeps its own watch cache (memory,
and one list and watch against the apiserver per worker) and answers ``/readyz`` for itself.
So each worker accepts connections only once its own app is ready (``ServerOptions.ready``), and
their metrics are merged (``serving.metrics``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from gunicorn import glogging
from gunicorn.app.base import BaseApplication

from serving import limits as serving_limits
from serving import metrics as serving_metrics
from serving.limits import Limits
from serving.tls import CertificatePair

log = logging.getLogger(__name__)

WORKER_CLASS = "serving.worker.BoundedWorker"


@dataclass(frozen=True)
class ServerOptions:
    host: str = "0.0.0.0"  # noqa: S104 - a server in a pod listens on all interfaces
    port: int = 8443
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    workers: int = 1
    limits: Limits = field(default_factory=Limits)
    # A worker whose event loop is stuck this long (CPU-bound code, a deadlock) is restarted.
    timeout: int = 30
    graceful_timeout: int = 10
    access_log: bool = False
    # With several workers, each accepts connections only once this says its app is ready (its
    # watch cache synced), or after ``ready_wait`` seconds: a pod that one worker makes Ready
    # must not hand requests to another that would refuse them.
    ready: Callable[[Any], bool] | None = None
    ready_wait: float = 30.0


class _Application(BaseApplication):  # type: ignore[misc]
    def __init__(self, factory: Callable[[], Flask], settings: dict[str, Any]) -> None:
        self._factory = factory
        self._settings = settings
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._settings.items():
            self.cfg.set(key, value)
        # gunicorn 27 opens a control socket under $HOME by default: two servers on one machine
        # would fight over it, and a read-only root filesystem has no $HOME to write. We never use it.
        if "control_socket_disable" in self.cfg.settings:
            self.cfg.set("control_socket_disable", True)

    def load(self) -> Flask:
        # Called in each worker after fork: background threads (watch loops) start there.
        return self._factory()


def worker_class(options: ServerOptions, tls: CertificatePair | None) -> type[Any]:
    """The worker class carrying the limits, the certificate pair and the readiness gate."""
    from serving.worker import BoundedWorker  # gevent is imported only where it serves

    attributes: dict[str, Any] = {"limits": options.limits, "tls": tls, "__module__": "serving.worker"}
    if options.ready is not None and options.workers > 1:
        attributes["ready"] = staticmethod(options.ready)
        attributes["ready_wait"] = options.ready_wait
    return type("BoundedWorker", (BoundedWorker,), attributes)


def settings(options: ServerOptions) -> dict[str, Any]:
    """The gunicorn settings for these options (TLS is the worker's, not gunicorn's)."""
    if bool(options.tls_cert_file) != bool(options.tls_key_file):
        raise ValueError("--tls-cert-file and --tls-private-key-file must be given together")
    problem = options.limits.problem()
    if problem:
        raise ValueError(problem)
    tls = None
    if options.tls_cert_file and options.tls_key_file:
        tls = CertificatePair(options.tls_cert_file, options.tls_key_file)
    return {
        "bind": [f"{options.host}:{options.port}"],
        "worker_class": worker_class(options, tls),
        "workers": options.workers,
        "worker_connections": options.limits.max_connections,
        "timeout": options.timeout,
        "graceful_timeout": options.graceful_timeout,
        # Only makes gunicorn's responses offer keep-alive; the worker enforces the wait itself.
        "keepalive": max(1, round(options.limits.keepalive_timeout)),
        "preload_app": False,
        "accesslog": "-" if options.access_log else None,
        "errorlog": "-",
        "loglevel": logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower(),
        # gunicorn's own lines in the process's format (serving.logs: text or JSON).
        "logger_class": GunicornLogger,
        "proc_name": "istio-federation",
        "limit_request_line": serving_limits.MAX_REQUEST_LINE,
        "limit_request_fields": serving_limits.MAX_HEADER_FIELDS,
        "limit_request_field_size": serving_limits.MAX_HEADER_FIELD_BYTES,
        "post_fork": serving_metrics.worker_forked,
        "child_exit": serving_metrics.worker_exited,
    }


class GunicornLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger, with its error and access lines handed to the root logger's handler.

    gunicorn otherwise writes its own ``[time] [pid] [LEVEL]`` lines with handlers of its own; here
    its loggers keep no handler and propagate, so the format (text or JSON) and the level are the
    process's.  Access lines carry the request's method, path, status and duration as fields.
    """

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):
                log.removeHandler(handler)
            log.propagate = True
        self.error_log.setLevel(logging.getLogger().getEffectiveLevel())

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        atoms = self.atoms_wrapper_class(self.atoms(resp, req, environ, request_time))
        fields = {
            "method": atoms["m"],
            "path": atoms["U"],
            "status": atoms["s"],
            "duration_ms": round(request_time.total_seconds() * 1000, 3),
            "remote": atoms["h"],
        }
        try:
            self.access_log.info(self.cfg.access_log_format, atoms, extra=fields)
        except Exception:
            self.error_log.exception("could not write an access log line")


def run(factory: Callable[[], Flask], options: ServerOptions) -> None:
    """Block serving until SIGTERM/SIGINT; gunicorn then drains requests and exits."""
    configured = settings(options)
    if options.tls_cert_file:
        log.info("serving HTTPS with %s, reloaded when it changes", options.tls_cert_file)
    shared = serving_metrics.start_shared() if options.workers > 1 else None
    try:
        _Application(factory, configured).run()
    finally:
        serving_metrics.stop_shared(shared)
