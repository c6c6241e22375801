"""The admission server: a Flask app factory, run under gunicorn by ``webhook serve``.

State lives in ``app.extensions["istio-federation"]``, not in module globals, so each test gets a
fresh app and each gunicorn worker its own watch cache.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, current_app, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST
from werkzeug.exceptions import HTTPException

from federation import admission_review, resources
from federation.admission_response import AdmissionResponse
from federation.store import ObjectStore, Watch
from federation.validation import registry
from federation.validation.attributes import Context
from objectstore.factory import open_store
from serving import metrics as serving_metrics
from webhook.metrics import AdmissionMetrics, resource_label
from webhook.settings import WebhookSettings

log = logging.getLogger("istio_federation.webhook")
EXTENSION = "istio-federation"
WATCHES = [Watch(resources.ISTIO_FEDERATION), Watch(resources.SERVICE_ENTRY)]


@dataclass
class WebhookState:
    settings: WebhookSettings
    store: ObjectStore
    metrics: AdmissionMetrics


def _state(app: Flask) -> WebhookState:
    state: WebhookState = app.extensions[EXTENSION]
    return state


def cache_synced(app: Flask) -> bool:
    """Whether this app's watch cache finished its first sync (the serving worker's gate)."""
    return _state(app).store.synced


def create_app(settings: WebhookSettings, store: ObjectStore | None = None) -> Flask:
    """Build the app; with no ``store`` given, open and start the one ``settings`` names."""
    app = Flask("istio_federation.webhook")
    if store is None:
        store = open_store(settings.source, WATCHES)
        store.start()
    app.extensions[EXTENSION] = WebhookState(settings, store, AdmissionMetrics.create())
    # Every answer is JSON: no HTML 308 redirect (to a URL built from the Host header) for a path
    # with doubled slashes, which werkzeug would otherwise send before any error handler runs.
    app.url_map.merge_slashes = False
    app.add_url_rule("/validate", view_func=_validate, methods=["POST"])
    app.add_url_rule("/healthz", view_func=_healthz, methods=["GET"])
    app.add_url_rule("/readyz", view_func=_readyz, methods=["GET"])
    app.add_url_rule("/metrics", view_func=_metrics, methods=["GET"])
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    return app


def _json(body: Mapping[str, Any], code: int) -> Response:
    response = jsonify(body)
    response.status_code = code
    return response


def _read_body() -> bytes | None:
    """The request body, or None if it is larger than an AdmissionReview may be.

    Reads at most one byte past the limit, whatever Content-Length or chunking announce.  A body
    that does not arrive in time, breaks its chunked encoding or is cut off is the server's to
    answer (``serving.body.BodyProblem`` passes through this app to the worker: 408 or 400, JSON).
    """
    limit = admission_review.MAX_BODY_BYTES
    if request.content_length is not None and request.content_length > limit:
        return None
    body = request.stream.read(limit + 1)
    return None if len(body) > limit else body


def _validate() -> Response:
    state = _state(current_app)
    started = time.perf_counter()
    body = _read_body()
    try:
        if body is None:
            raise admission_review.MalformedReview(f"body is larger than {admission_review.MAX_BODY_BYTES} bytes")
        parsed = admission_review.parse_request(request.content_type, body)
    except admission_review.MalformedReview as error:
        state.metrics.malformed.inc()
        log.warning("malformed admission request from %s: %s", request.remote_addr, error)
        return _json({"error": "malformed AdmissionReview", "message": str(error)}, 400)
    attributes = parsed.attributes
    result = "error"
    try:
        if not state.store.synced:
            answer = AdmissionResponse.failure(
                code=503,
                reason="ServiceUnavailable",
                message="the istio-federation webhook has not finished loading its cache; retry in a few seconds",
            )
        elif stale := _stale(state):
            # Debug only: the store logs the outage once per change, not once per refused write.
            log.debug("refused %s %s %s/%s: %s", attributes.operation, attributes.kind,
                      attributes.namespace or "-", attributes.name, stale)  # fmt: skip
            answer = AdmissionResponse.failure(
                code=503,
                reason="ServiceUnavailable",
                message="the istio-federation webhook's copy of the cluster's IstioFederations and ServiceEntries "
                f"may be out of date: {stale}; retry in a few seconds, or see the webhook's log",
            )
        else:
            context = Context(
                index=state.store.index,
                local_trust_domain=state.settings.local_trust_domain,
                reconciler_username=state.settings.reconciler_username,
                ip_autoallocate=state.settings.ip_autoallocate,
                now=datetime.datetime.now(datetime.UTC),
            )
            answer = registry.admit(attributes, context)
            result = "allowed" if answer.allowed else "denied"
            if not answer.allowed:
                log.info(
                    "denied %s %s %s/%s user=%s: %s",
                    attributes.operation,
                    attributes.kind,
                    attributes.namespace or "-",
                    attributes.name,
                    attributes.username,
                    answer.message,
                )
    except Exception:
        # Fail closed: an object we could not check must not get in.
        log.exception(
            "validation failed unexpectedly for %s %s %s/%s (uid %s)",
            attributes.operation,
            attributes.kind,
            attributes.namespace or "-",
            attributes.name,
            parsed.uid,
        )
        answer = AdmissionResponse.failure(
            code=500,
            reason="InternalError",
            message=f"internal error while validating {attributes.kind} {attributes.name!r}; see the webhook logs",
        )
    state.metrics.observe(attributes.kind, attributes.operation, result, time.perf_counter() - started)
    return _json(admission_review.build_response(parsed.uid, answer), 200)


def _healthz() -> Response:
    return _json({"status": "ok"}, 200)


def _stale(state: WebhookState) -> str:
    """Why the cache must not be trusted now ('' when it may): a watch failing for longer than
    ``--max-cache-staleness``. Within the bound the cache is used; it may lag by that much."""
    outage = state.store.outage()
    if outage is None or outage.seconds <= state.settings.max_cache_staleness:
        return ""
    return (
        f"{outage.what} for {outage.seconds:.0f}s, longer than --max-cache-staleness "
        f"{state.settings.max_cache_staleness:g}s"
    )


def _readyz() -> Response:
    state = _state(current_app)
    if not state.store.synced:
        return _json({"status": "not ready", "reason": "the watch cache has not completed its first sync"}, 503)
    stale = _stale(state)
    if stale:
        return _json({"status": "not ready", "reason": stale}, 503)
    return _json({"status": "ready", "cached": state.store.index.counts()}, 200)


def _metrics() -> Response:
    state = _state(current_app)
    for resource, count in state.store.index.counts().items():
        state.metrics.cache_objects.labels(resource_label(resource)).set(count)
    return Response(serving_metrics.exposition(state.metrics.registry), mimetype=CONTENT_TYPE_LATEST)


def _http_error(error: HTTPException) -> Response:
    return _json({"error": error.name, "message": error.description or error.name}, error.code or 500)


def _unexpected_error(error: Exception) -> Response:
    log.exception("unexpected error serving %s %s", request.method, request.path)
    return _json({"error": "Internal Server Error", "message": "see the webhook logs"}, 500)
