"""The exporter's table: hostile tokens, paths, methods, heads and conditional requests, with exact answers.

Sent over TLS to the session's real ``exporter serve`` (``servers.py``), whose state directory
trusts two peers (cluster-b and cluster-c, keys from ``tests/exporter/cluster.py``) and
publishes one service behind one gateway.  Tokens are signed when the case is sent (real time).
The slow clients are at the end.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from federation import keys, tokens
from tests.exporter.cluster import OTHER_KEY, REMOTE_KEY, STRANGER_KEY
from tests.exporter.fixtures import CLUSTER_UUID, OTHER_UUID, REMOTE_UUID, b64url, deckhouse_token
from tests.exporter.test_app import ATTACKS, UNKNOWN, Attack
from tests.exporter.test_hostile_tokens import HOSTILE, Hostile
from tests.hostile import slowbatch
from tests.hostile.cases import Case, Expect, Json, NoAnswer, Observed, Raw, SlowCase
from tests.hostile.requests import http, raw
from tests.hostile.slowbatch import SlowRun

E = "exporter"
PUBLIC = "/metadata/public/public.json"
SPIFFE = "/metadata/public/spiffe-bundle-endpoint"
PRIVATE = "/metadata/private/federation.json"
NOT_FOUND = Json(404, {"error": "not_found", "message": "no such path"})
NOT_BASE64_HEADER = "malformed token: header is not base64url JSON"
# Filled by test_exporter.py from the running server: the ETag of public.json.
SESSION: dict[str, str] = {}


def _case(name: str, request: Callable[[], bytes], expect: Expect, **kwargs: Any) -> Case:
    return Case(E, name, request, expect, **kwargs)


def server(status: int, error: str, message: str) -> Json:
    """The server's own refusal (serving/errors.py): JSON, and the connection closed."""
    return Json(status, {"error": error, "message": message}, headers=(("connection", "close"),))


TOO_LARGE_FIELD = server(431, "Request Header Fields Too Large", "the request headers are too large (at most 100 "
                         "fields of 8190 bytes): limit request headers fields size")  # fmt: skip


def get(path: str, *headers: tuple[str, str], method: str = "GET", body: bytes = b"") -> Callable[[], bytes]:
    return lambda: http(method, path, body, content_type=None, headers=headers)


def refused(reason: str) -> Json:
    return Json(401, {"error": "invalid_token", "reason": reason}, headers=(
        ("www-authenticate", f'Bearer error="invalid_token", error_description="{_header_safe(reason)}"'),
    ))  # fmt: skip


def _header_safe(reason: str) -> str:
    return "".join("?" if not 0x20 <= ord(c) <= 0x7E or c in '"\\' else c for c in reason)[:200]


def with_token(name: str, token: Callable[[], str], expect: Expect, **kwargs: Any) -> Case:
    return _case(name, lambda: http("GET", PRIVATE, content_type=None,
                                    headers=(("Authorization", f"Bearer {token()}"),)), expect, **kwargs)  # fmt: skip


def with_header(name: str, header: Callable[[], dict[str, str]], expect: Expect) -> Case:
    return _case(name, lambda: http("GET", PRIVATE, content_type=None, headers=tuple(header().items())), expect)


def _now() -> int:
    return int(time.time())


def signed(header: dict[str, Any] | bytes, claims: dict[str, Any] | bytes,
           key: ed25519.Ed25519PrivateKey = REMOTE_KEY) -> str:  # fmt: skip
    """A compact JWS over exactly these bytes, signed with ``key``."""
    head = header if isinstance(header, bytes) else json.dumps(header).encode()
    body = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
    signing_input = b64url(head) + "." + b64url(body)
    return signing_input + "." + b64url(key.sign(signing_input.encode("ascii")))


def good_claims(**overrides: Any) -> dict[str, Any]:
    now = _now()
    claims = {"iss": "d8-istio", "sub": REMOTE_UUID, "aud": CLUSTER_UUID, "scope": "private-federation",
              "nbf": now, "exp": now + 60}  # fmt: skip
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def _good() -> str:
    return tokens.issue(REMOTE_KEY, subject=REMOTE_UUID, audience=CLUSTER_UUID, now=_now())


def _hs256_with_the_trusted_key() -> str:
    secret = keys.public_key_pem(REMOTE_KEY.public_key()).encode()
    head = b64url(b'{"alg":"HS256","typ":"JWT"}')
    body = b64url(json.dumps(good_claims()).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(signature)}"


def _twice(token: str) -> bytes:
    return http("GET", PRIVATE, content_type=None, headers=(("Authorization", f"Bearer {token}"),)) * 2


def _if_none_match(make: Callable[[], str], path: str = PUBLIC) -> Callable[[], bytes]:
    return lambda: http("GET", path, content_type=None, headers=(("If-None-Match", make()),))


def _attack(attack: Attack) -> Case:
    return with_header(f"token: {attack.name}", lambda: attack.headers(_now()), refused(attack.reason))


def _hostile(case: Hostile) -> Case:
    return with_token(f"token: {case.name}", case.token, refused(case.reason))


MALFORMED_JWS = "malformed token: expected a compact JWS (header.payload.signature)"

TOKEN_CASES: list[Case] = [
    *(_attack(attack) for attack in ATTACKS),
    *(_hostile(case) for case in HOSTILE),
    with_token("token: alg None", lambda: signed({"alg": "None"}, good_claims()),
               refused("algorithm must be EdDSA, got 'None'")),
    with_token("token: alg RS256", lambda: signed({"alg": "RS256"}, good_claims()),
               refused("algorithm must be EdDSA, got 'RS256'")),
    with_token("token: alg Ed25519", lambda: signed({"alg": "Ed25519"}, good_claims()),
               refused("algorithm must be EdDSA, got 'Ed25519'")),
    with_token("token: alg with a NUL", lambda: signed({"alg": "EdDSA\x00"}, good_claims()),
               refused("algorithm must be EdDSA, got 'EdDSA\\x00'")),
    with_token("token: HS256 signed with the trusted public key", _hs256_with_the_trusted_key,
               refused("algorithm must be EdDSA, got 'HS256'")),
    with_token("token: a critical header", lambda: signed({"alg": "EdDSA", "crit": ["exp"]}, good_claims()),
               refused("unsupported critical header (crit)")),
    with_token("token: jku and kid pointing elsewhere, signed by a stranger", lambda: signed(
               {"alg": "EdDSA", "jku": "https://169.254.169.254/keys", "kid": "../../etc/passwd"}, good_claims(),
               STRANGER_KEY), refused("bad signature")),
    with_token("token: header an array", lambda: signed(b'["EdDSA"]', good_claims()),
               refused("malformed token: header is not a JSON object")),
    with_token("token: payload a string", lambda: signed({"alg": "EdDSA"}, b'"claims"'),
               refused("malformed token: payload is not a JSON object")),
    with_token("token: sub missing", lambda: signed({"alg": "EdDSA"}, good_claims(sub=None)),
               refused("sub (the calling cluster's UUID) is missing")),
    with_token("token: sub is this cluster", lambda: signed({"alg": "EdDSA"}, good_claims(sub=CLUSTER_UUID)),
               refused(UNKNOWN)),
    with_token("token: exp a string", lambda: signed({"alg": "EdDSA"}, good_claims(exp="9999999999")),
               refused("exp is missing")),
    with_token("token: exp true", lambda: signed({"alg": "EdDSA"}, good_claims(exp=True)), refused("exp is missing")),
    with_token("token: nbf a string", lambda: signed({"alg": "EdDSA"}, good_claims(nbf="0")),
               refused("nbf must be a number")),
    with_token("token: replayed ten days on (nbf ten days ago)", lambda: signed({"alg": "EdDSA"},
               good_claims(nbf=_now() - 864_000)), refused("lifetime too long (at most 600 s)")),
    with_token("token: valid for ten years", lambda: signed({"alg": "EdDSA"}, good_claims(nbf=None,
               exp=_now() + 315_360_000)), refused("lifetime too long (at most 600 s)")),
    with_token("token: many dots", lambda: ".".join(_good().split(".") * 3), refused(MALFORMED_JWS)),
    with_token("token: two segments", lambda: _good().rsplit(".", 1)[0], refused(MALFORMED_JWS)),
    with_token("token: empty segments", lambda: "..", refused(NOT_BASE64_HEADER)),
    with_token("token: header not base64", lambda: "*!*." + _good().split(".", 1)[1], refused(NOT_BASE64_HEADER)),
    with_token("token: signature not base64", lambda: _good().rsplit(".", 1)[0] + ".*!*",
               refused("malformed token: Invalid crypto padding")),
    with_token("token: base64 padding", lambda: ".".join(part + "==" for part in _good().split(".")),
               refused("malformed token: Invalid header padding")),
    with_token("token: 4,096 bytes of junk", lambda: "a." + "b" * 4092 + ".c", refused(NOT_BASE64_HEADER)),
    with_token("token: signed by the other peer, as itself", lambda: deckhouse_token(
               OTHER_KEY, sub=OTHER_UUID, aud=CLUSTER_UUID, now=_now()), Raw(200, None)),
    with_header("token: scheme in lower case", lambda: {"Authorization": f"bearer {_good()}"}, Raw(200, None)),
    with_header("token: a tab after Bearer", lambda: {"Authorization": f"Bearer\t{_good()}"},
                refused("Bearer authorization required (the scheme must be Bearer)")),
    with_header("token: two Authorization headers", lambda: {"Authorization": f"Bearer {_good()}",
                                                             "authorization": "Basic eA=="},
                refused("malformed token: Invalid crypto padding")),
    # A token may be replayed within its minute (Deckhouse's tokens carry no jti): both are served.
    _case("token: the same token twice", lambda: _twice(_good()), Raw(200, None), answers=2),
]

PATH_CASES: list[Case] = [
    _case("path: .. into private", get("/metadata/public/../private/federation.json"), NOT_FOUND),
    _case("path: %2e%2e into private", get("/metadata/public/%2e%2e/private/federation.json"), NOT_FOUND),
    _case("path: /../../etc/passwd", get("/../../etc/passwd"), NOT_FOUND),
    # Were an HTML 308 to https://<the client's Host header>/... (werkzeug's merge_slashes, now off).
    _case("path: double slash", get("/metadata//public/public.json"), NOT_FOUND),
    _case("path: double slash into private", get("/metadata//private/federation.json"), NOT_FOUND),
    # gunicorn reads a leading "//" as "/": the same route, the same token check.
    _case("path: leading double slash", get("//metadata/public/public.json"), Raw(200, None)),
    _case("path: leading double slash into private", get("//metadata/private/federation.json"),
          refused("Bearer authorization required")),
    _case("path: trailing slash", get(PUBLIC + "/"), NOT_FOUND),
    _case("path: encoded NUL", get(PUBLIC + "%00"), NOT_FOUND),
    _case("path: semicolon parameter", get(PRIVATE + ";x=1"), NOT_FOUND),
    _case("path: upper case", get(PUBLIC.upper()), NOT_FOUND),
    _case("path: non-ASCII", get("/metadata/public/p%C3%BCblic.json"), NOT_FOUND),
    _case("path: absolute URI", get(f"https://evil.example{PUBLIC}"), Raw(200, None)),
    _case("path: a 5,000-character query", get(PUBLIC + "?x=" + "a" * 5000), Raw(200, None)),
    _case("path: the private document without a token", get(PRIVATE),
          refused("Bearer authorization required")),
]

METHOD_CASES: list[Case] = [
    *(
        _case(f"method: {method} {path}", get(path, method=method, body=b'{"x": 1}'),
              Json(405, {"error": "method_not_allowed", "message": f"method {method} is not allowed here"},
                   headers=(("allow", "GET, HEAD"),)))
        for method, path in [("POST", PUBLIC), ("PUT", PRIVATE), ("DELETE", PUBLIC), ("PATCH", SPIFFE),
                             ("OPTIONS", PUBLIC), ("TRACE", PRIVATE), ("PROPFIND", PUBLIC)]
    ),
    _case("method: HEAD", get(PUBLIC, method="HEAD"), Raw(200, b""), head=True),
    _case("method: lower case", get(PUBLIC, method="get"),
          server(400, "Bad Request", "malformed request method: Invalid HTTP method: 'get'"), closes=True),
    _case("method: CONNECT", raw(b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n"),
          NOT_FOUND),
    _case("method: 100 characters", get(PUBLIC, method="X" * 100),
          server(400, "Bad Request", f"malformed request method: Invalid HTTP method: '{'X' * 100}'"), closes=True),
]

HEAD_CASES: list[Case] = [
    _case("head: header of 9,000 bytes", get(PUBLIC, ("X-Big", "a" * 9000)), TOO_LARGE_FIELD, closes=True),
    _case("head: 150 headers", get(PUBLIC, *((f"X-{n}", "1") for n in range(150))),
          server(431, "Request Header Fields Too Large", "the request headers are too large (at most 100 fields of "
                 "8190 bytes): limit request headers fields"), closes=True),
    _case("head: request line of 9,000 bytes", get("/" + "a" * 9000),
          server(414, "Request-URI Too Long", "the request line is longer than 8190 bytes"), closes=True),
    _case("head: an Authorization header of 8,000 bytes", get(PRIVATE, ("Authorization", "Bearer " + "a" * 8000)),
          refused("token too large")),
    _case("head: no Host", raw(f"GET {PUBLIC} HTTP/1.1\r\n\r\n".encode()), Raw(200, None)),
    _case("head: two Hosts", get(PUBLIC, ("Host", "evil.example")),
          server(400, "Bad Request", "malformed header: Invalid HTTP Header: 'HOST'"), closes=True),
    _case("head: NUL in a header", get(PUBLIC, ("X-Nul", "a\x00b")),
          server(400, "Bad Request", "malformed header: Invalid HTTP Header: 'X-NUL'"), closes=True),
    _case("head: obsolete line folding", raw(f"GET {PUBLIC} HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n b\r\n\r\n".encode()),
          server(400, "Bad Request", "malformed header: Obsolete line folding is unacceptable: 'X-A'"), closes=True),
    _case("head: garbage request line", raw(b"\x00\x01garbage\r\n\r\n"),
          server(400, "Bad Request", "malformed request line: Invalid HTTP request line: '\\x00\\x01garbage'"),
          closes=True),
    _case("head: HTTP/2 preface", raw(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
          server(400, "Bad Request", "malformed request line: Invalid HTTP request line: 'PRI * HTTP/2.0'"),
          closes=True),
    _case("head: HTTP/0.9", raw(f"GET {PUBLIC}\r\n\r\n".encode()),
          server(400, "Bad Request", f"malformed request line: Invalid HTTP request line: 'GET {PUBLIC}'"),
          closes=True),
    _case("head: HTTP/1.0", raw(f"GET {PUBLIC} HTTP/1.0\r\n\r\n".encode()), Raw(200, None), closes=True),
    _case("head: HTTP/9.9", raw(f"GET {PUBLIC} HTTP/9.9\r\nHost: x\r\n\r\n".encode()),
          server(400, "Bad Request", "unsupported HTTP version: Invalid HTTP Version: (9, 9)"), closes=True),
    _case("head: Expect something", get(PUBLIC, ("Expect", "teapot")),
          server(417, "Expectation Failed", "unsupported Expect header: Unable to comply with expectation: 'teapot'"),
          closes=True),
    _case("head: chunked and Content-Length", get(PUBLIC, ("Transfer-Encoding", "chunked"), ("Content-Length", "3")),
          server(400, "Bad Request", "malformed header: Invalid HTTP Header: 'CONTENT-LENGTH'"), closes=True),
    _case("head: unknown Transfer-Encoding", get(PUBLIC, ("Transfer-Encoding", "zstd")),
          server(400, "Bad Request", "unsupported Transfer-Encoding (only chunked): Unsupported transfer coding: "
                 "'zstd'"), closes=True),
    # The exporter never reads a body: a small one is dropped, a large one closes the connection.
    _case("body: 10 bytes on a GET", get(PUBLIC, body=b"0123456789"), Raw(200, None)),
    _case("body: 100,000 bytes on a GET", get(PUBLIC, body=b"\x00" * 100_000), Raw(200, None), closes=True),
    _case("body: broken chunking on a GET", raw(http("GET", PUBLIC, content_type=None,
          headers=(("Transfer-Encoding", "chunked"),)) + b"zz\r\n"), Raw(200, None), closes=True),
    _case("pipelined: 20 GETs at once", raw(http("GET", PUBLIC, content_type=None) * 20), Raw(200, None),
          answers=20),
    _case("TLS record garbage", raw(b"\x16\x03\x01\x00\x05hello" + bytes(range(256))), NoAnswer(), tls=False),
    _case("plain HTTP on the TLS port", get(PUBLIC), NoAnswer(), tls=False),
]

CONDITIONAL_CASES: list[Case] = [
    _case("conditional: the current ETag", _if_none_match(lambda: f'"{SESSION["etag"]}"'), Raw(304)),
    _case("conditional: the current ETag, weak", _if_none_match(lambda: f'W/"{SESSION["etag"]}"'), Raw(304)),
    _case("conditional: *", get(PUBLIC, ("If-None-Match", "*")), Raw(304)),
    _case("conditional: 500 stale ETags", get(PUBLIC, ("If-None-Match", ", ".join(f'"{n:012d}"' for n in range(500)))),
          Raw(200, None)),
    _case("conditional: an unterminated ETag", get(PUBLIC, ("If-None-Match", '"abc')), Raw(200, None)),
    _case("conditional: garbage If-Modified-Since", get(PUBLIC, ("If-Modified-Since", "yesterday")), Raw(200, None)),
    _case("conditional: DEL in If-Modified-Since", get(PUBLIC, ("If-Modified-Since", "yesterday\x7f")),
          server(400, "Bad Request", "malformed header: Invalid HTTP Header: 'IF-MODIFIED-SINCE'"), closes=True),
    _case("conditional: If-Match that fails", get(PUBLIC, ("If-Match", '"nope"')), Raw(200, None)),
    _case("conditional: a Range", get(PUBLIC, ("Range", "bytes=0-10")), Raw(200, None)),
    _case("conditional: 1,000 Ranges", get(PUBLIC, ("Range", "bytes=" + ",".join(f"{n}-{n}" for n in range(1000)))),
          Raw(200, None)),
    _case("conditional: a Range of 9 KiB", get(PUBLIC, ("Range", "bytes=" + ",".join(f"{n}-{n}" for n in range(1500)))),
          TOO_LARGE_FIELD, closes=True),
    _case("conditional: the private document's * without a token", get(PRIVATE, ("If-None-Match", "*")),
          refused("Bearer authorization required")),
]

CASES: list[Case] = [*TOKEN_CASES, *PATH_CASES, *METHOD_CASES, *HEAD_CASES, *CONDITIONAL_CASES]


# -- slow clients ----------------------------------------------------------------------------------

HEAD_TIMEOUT = Json(408, {"error": "Request Timeout",
                          "message": "the request line and headers did not arrive within 10 seconds"})  # fmt: skip
GET_HEAD = http("GET", PUBLIC, content_type=None)


def _all_twenty(observed: Observed) -> None:
    """Every answer was written (into the kernel's buffers) before the idle connection was closed."""
    assert observed.notes["received"] > 20 * 1000, observed.notes


def _slow(name: str, run: SlowRun, expect: Expect, **kwargs: Any) -> SlowCase:
    return SlowCase(E, name, run, expect, **kwargs)


SLOW: list[SlowCase] = [
    _slow("idle TCP, no ClientHello", slowbatch.idle_tcp(), NoAnswer()),
    _slow("ClientHello at 2 bytes a second", slowbatch.slow_handshake(), NoAnswer()),
    _slow("idle TLS, no request", slowbatch.idle_tls(), HEAD_TIMEOUT),
    _slow("request head at 2 bytes a second", slowbatch.trickle(GET_HEAD), HEAD_TIMEOUT),
    _slow("a header line a second", slowbatch.trickle([f"GET {PUBLIC} HTTP/1.1\r\n".encode(),
                                                        *(b"X-%d: 1\r\n" % n for n in range(60))], every=1.0),
          HEAD_TIMEOUT),
    _slow("garbage without a line end", slowbatch.send_then_wait(bytes(range(14, 256)) * 4), HEAD_TIMEOUT),
    _slow("a token at 2 bytes a second", slowbatch.trickle(b"Authorization: Bearer " + b"a" * 200 + b"\r\n\r\n",
          prefix=f"GET {PRIVATE} HTTP/1.1\r\nHost: x\r\n".encode()), HEAD_TIMEOUT),
    # Answered at once (the body is never read), then closed when the unread body's deadline passes.
    _slow("a GET whose body never comes", slowbatch.send_then_wait(
          http("GET", PUBLIC, content_type=None, headers=(("Content-Length", "1000"),), length=False) + b"x"),
          Raw(200, None)),
    _slow("kept alive, then idle", slowbatch.answered_then_idle(http("GET", "/healthz", content_type=None)),
          Json(200, {"status": "ok"})),
    # Unread answers hold nothing: once written, the connection is idle and closed at the keep-alive
    # timeout.  (The answers here are too small to block the server's writes: the webhook's table has
    # the slow reader that does, which the request timeout cuts off.)
    _slow("20 answers, never read", slowbatch.never_reads(GET_HEAD, 20, pause=12.0), NoAnswer(), check=_all_twenty),
]
