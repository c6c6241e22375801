"""Answers the server gives itself, before or instead of the application: JSON, never HTML.

A request that cannot be parsed (bad request line, oversized or malformed headers, a broken
chunked body), or that runs out of time, gets a short JSON body and ``Connection: close``:
where the next request would start on the connection is unknown.  Texts taken from the request
are shortened and stripped of control characters before they reach a response or a log line.
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus

from gunicorn.http import errors as http_errors

from serving import limits

_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")
MAX_DETAIL = 160


def clean(text: str) -> str:
    """Client-controlled text made fit for a log line or a JSON message: printable and short."""
    text = _UNPRINTABLE.sub("?", text)
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"


def response(status: int, message: str) -> bytes:
    """A complete HTTP/1.1 response with a JSON error body, closing the connection."""
    reason = HTTPStatus(status).phrase
    body = json.dumps({"error": reason, "message": message}).encode() + b"\n"
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "\r\n"
    )
    return head.encode("ascii") + body


def describe(error: BaseException) -> tuple[int, str]:
    """The status and message for a request gunicorn's parser refused."""
    detail = clean(str(error))
    if isinstance(error, http_errors.LimitRequestLine):
        return 414, f"the request line is longer than {limits.MAX_REQUEST_LINE} bytes"
    if isinstance(error, http_errors.LimitRequestHeaders):
        return 431, (
            f"the request headers are too large (at most {limits.MAX_HEADER_FIELDS} fields of "
            f"{limits.MAX_HEADER_FIELD_BYTES} bytes): {detail}"
        )
    if isinstance(error, (http_errors.InvalidChunkSize, http_errors.ChunkMissingTerminator,
                          http_errors.InvalidChunkExtension)):  # fmt: skip
        return 400, f"malformed chunked body: {detail}"
    if isinstance(error, http_errors.UnsupportedTransferCoding):
        # RFC 9112 suggests 501; a coding the client chose is the client's to fix, never a 5xx here.
        return 400, f"unsupported Transfer-Encoding (only chunked): {detail}"
    if isinstance(error, http_errors.ExpectationFailed):
        return 417, f"unsupported Expect header: {detail}"
    if isinstance(error, http_errors.InvalidHTTPVersion):
        return 400, f"unsupported HTTP version: {detail}"
    if isinstance(error, http_errors.InvalidRequestLine):
        return 400, f"malformed request line: {detail}"
    if isinstance(error, http_errors.InvalidRequestMethod):
        return 400, f"malformed request method: {detail}"
    if isinstance(error, (http_errors.InvalidHeader, http_errors.InvalidHeaderName, http_errors.ObsoleteFolding)):
        return 400, f"malformed header: {detail}"
    return 400, f"malformed request: {detail}"
