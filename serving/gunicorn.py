"""Serve a Flask app factory with gunicorn's gthread worker, optionally over TLS.

Why gthread and files rather than a cached SSLContext: gunicorn's sync and gthread workers build
a fresh SSLContext from the certificate files for every accepted connection, so a rotated
Secret volume is served to new connections without a restart.  We only tighten that context
(TLS 1.2 minimum) through the ``ssl_context`` hook, which keeps the per-connection reload.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerOptions:
    host: str = "0.0.0.0"  # noqa: S104 - a server in a pod listens on all interfaces
    port: int = 8443
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    workers: int = 1
    threads: int = 8
    timeout: int = 30
    graceful_timeout: int = 10
    keepalive: int = 2
    access_log: bool = False


def _tls_context(config: Any, default_factory: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    context = default_factory()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


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


def run(factory: Callable[[], Flask], options: ServerOptions) -> None:
    """Block serving until SIGTERM/SIGINT; gunicorn then drains requests and exits."""
    if bool(options.tls_cert_file) != bool(options.tls_key_file):
        raise ValueError("--tls-cert-file and --tls-private-key-file must be given together")
    settings: dict[str, Any] = {
        "bind": [f"{options.host}:{options.port}"],
        "worker_class": "gthread",
        "workers": options.workers,
        "threads": options.threads,
        "timeout": options.timeout,
        "graceful_timeout": options.graceful_timeout,
        "keepalive": options.keepalive,
        "preload_app": False,
        "accesslog": "-" if options.access_log else None,
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "istio-federation",
        # A worker restart must never be caused by a slow client sending headers.
        "limit_request_line": 8190,
    }
    if options.tls_cert_file and options.tls_key_file:
        settings.update(
            certfile=options.tls_cert_file,
            keyfile=options.tls_key_file,
            ssl_context=_tls_context,
        )
    _Application(factory, settings).run()
