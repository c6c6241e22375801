"""The exporter's HTTP face: a Flask app serving the pre-rendered snapshot.

| path | auth |
|---|---|
| ``/metadata/public/public.json`` | none |
| ``/metadata/public/spiffe-bundle-endpoint`` | none |
| ``/metadata/private/federation.json`` | ``Authorization: Bearer <EdDSA JWT>`` |
| ``/healthz``, ``/readyz``, ``/metrics`` | none |

Every answer is JSON (``/metrics`` excepted), including 404, 405 and the 500 of a bug, which
never shows a stack trace.  Request bodies are never read.  The app keeps its state in
``app.extensions["exporter"]``, so each test can build a fresh one.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from exporter.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from exporter.metrics import Metrics
from exporter.snapshot import Document, Snapshot
from federation import tokens

log = logging.getLogger(__name__)

PUBLIC_PATH = "/metadata/public/public.json"
SPIFFE_PATH = "/metadata/public/spiffe-bundle-endpoint"
PRIVATE_PATH = "/metadata/private/federation.json"
JSON = "application/json"
EXTENSION = "exporter"

# Failures before a token is even parsed; the rest are tokens.REJECTION_CODES.
MISSING_HEADER = "missing_header"
NOT_BEARER = "not_bearer"
_UNSAFE = re.compile(r"[^\x20-\x7e]|[\"\\]")


class SnapshotSource(Protocol):
    @property
    def current(self) -> Snapshot: ...


@dataclass
class ExporterState:
    """What one app instance serves and counts."""

    source: SnapshotSource
    cluster_uuid: str
    token_leeway: int
    clock: Callable[[], float]
    metrics: Metrics


def state() -> ExporterState:
    found: ExporterState = current_app.extensions[EXTENSION]
    return found


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    response = Response(json.dumps(body) + "\n", status=status, mimetype=JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _unavailable(snapshot: Snapshot, what: str) -> Response:
    return _json(
        503, {"error": "unavailable", "message": f"{what} is not available yet", "reasons": list(snapshot.problems)}
    )


def _document(document: Document, *, private: bool) -> Response:
    """200 with the body, or 304 when the client already holds this version."""
    if request.if_none_match and request.if_none_match.contains_weak(document.etag):
        response = Response(status=304)
    else:
        response = Response(document.body, status=200, mimetype=JSON)
    response.set_etag(document.etag)
    # no-cache = store but revalidate: peers poll, and If-None-Match makes that cheap.
    response.headers["Cache-Control"] = "private, no-cache" if private else "no-cache"
    if private:
        response.headers["Vary"] = "Authorization"
    return response


def _header_safe(reason: str) -> str:
    """A reason fit for a quoted-string in WWW-Authenticate (it may echo attacker input)."""
    return _UNSAFE.sub("?", reason)[:200]


def _reject(code: str, reason: str, clock_offset: int | None = None) -> Response:
    state().metrics.count_auth_failure(code)
    body: dict[str, Any] = {"error": "invalid_token", "reason": reason}
    if clock_offset is not None:
        # Seconds the caller's clock seems ahead of ours (negative: behind), when a token was
        # refused for its times; the reason says the same in words.
        body["clockOffsetSeconds"] = clock_offset
    return _json(
        401,
        body,
        {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{_header_safe(reason)}"'},
    )


def _authenticate(snapshot: Snapshot) -> Response | None:
    """None when the request carries a token of a trusted cluster, else the 401 to send."""
    header = request.headers.get("Authorization")
    if header is None or not header.strip():
        return _reject(MISSING_HEADER, "Bearer authorization required")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return _reject(NOT_BEARER, "Bearer authorization required (the scheme must be Bearer)")
    current = state()
    try:
        claims = tokens.verify(
            token.strip(),
            own_cluster_uuid=current.cluster_uuid,
            known_keys=snapshot.known_keys,
            now=int(current.clock()),
            leeway=current.token_leeway,
        )
    except tokens.TokenRejected as rejected:
        log.info("private metadata refused: %s (code=%s, from %s)", rejected.reason, rejected.code, request.remote_addr)
        return _reject(rejected.code, rejected.reason, rejected.clock_offset)
    g.remote_cluster = claims.subject
    return None


def public_json() -> Response:
    snapshot = state().source.current
    if snapshot.public is None:
        return _unavailable(snapshot, "public metadata")
    return _document(snapshot.public, private=False)


def spiffe_bundle() -> Response:
    snapshot = state().source.current
    if snapshot.spiffe_bundle is None:
        return _unavailable(snapshot, "the SPIFFE bundle")
    return _document(snapshot.spiffe_bundle, private=False)


def federation_json() -> Response:
    # One snapshot for the whole request: the trusted keys and the body belong together.
    snapshot = state().source.current
    if not snapshot.synced:
        # Until the IstioFederations are listed every caller would look unknown: say "not yet".
        return _unavailable(snapshot, "private metadata")
    refused = _authenticate(snapshot)
    if refused is not None:
        return refused
    if snapshot.private is None:
        return _unavailable(snapshot, "private metadata")
    return _document(snapshot.private, private=True)


def healthz() -> Response:
    return _json(200, {"status": "ok"})


def readyz() -> Response:
    snapshot = state().source.current
    if snapshot.ready:
        return _json(200, {"ready": True})
    return _json(503, {"ready": False, "reasons": list(snapshot.problems)})


def metrics() -> Response:
    return Response(state().metrics.render(), status=200, content_type=METRICS_CONTENT_TYPE)


_ROUTES: tuple[tuple[str, Callable[[], Response]], ...] = (
    (PUBLIC_PATH, public_json),
    (SPIFFE_PATH, spiffe_bundle),
    (PRIVATE_PATH, federation_json),
    ("/healthz", healthz),
    ("/readyz", readyz),
    ("/metrics", metrics),
)

_PATHS = frozenset(path for path, _ in _ROUTES)


def create_app(
    source: SnapshotSource,
    *,
    cluster_uuid: str,
    token_leeway: int = tokens.DEFAULT_LEEWAY_SECONDS,
    clock: Callable[[], float] = time.time,
) -> Flask:
    app = Flask("exporter")
    # Never let Flask or werkzeug render an HTML debugger page or traceback.
    app.config.update(DEBUG=False, TESTING=False, PROPAGATE_EXCEPTIONS=False, TRAP_HTTP_EXCEPTIONS=False)
    app.url_map.strict_slashes = True
    # No redirects either: werkzeug would answer a path with doubled slashes with an HTML 308 to
    # an absolute URL built from the client's Host header; such a path is simply not one of ours.
    app.url_map.merge_slashes = False
    app.extensions[EXTENSION] = ExporterState(
        source=source,
        cluster_uuid=cluster_uuid,
        token_leeway=token_leeway,
        clock=clock,
        metrics=Metrics(lambda: source.current, paths=_PATHS),
    )
    for path, view in _ROUTES:
        # GET (and HEAD, which Flask derives from it) only; OPTIONS would otherwise answer 200.
        app.add_url_rule(path, endpoint=view.__name__, view_func=view, methods=["GET"], provide_automatic_options=False)

    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _count(response: Response) -> Response:
        # A bounded label set: known routes (also when the method was wrong), else "other".
        if request.url_rule is not None:
            rule = request.url_rule.rule
        else:
            rule = request.path if request.path in _PATHS else "other"
        started = g.get("started")
        elapsed = time.perf_counter() - started if started is not None else None
        state().metrics.observe_request(rule, response.status_code, elapsed)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        code = error.code or 500
        headers: dict[str, str] = {}
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            headers["Allow"] = ", ".join(sorted(error.valid_methods))
        name = (error.name or "error").lower().replace(" ", "_")
        messages = {404: "no such path", 405: f"method {request.method} is not allowed here"}
        return _json(code, {"error": name, "message": messages.get(code, error.name or "error")}, headers)

    @app.errorhandler(Exception)
    def _bug(error: Exception) -> Response:
        log.exception("internal error answering %s %s", request.method, request.path)
        return _json(500, {"error": "internal_error", "message": "internal error; see the exporter's log"})

    return app
