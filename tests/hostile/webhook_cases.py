"""The webhook's table: hostile AdmissionReviews and hostile HTTP, each with its exact expected answer.

Sent over TLS to the session's real ``webhook serve`` (``servers.py``), whose state directory
federates cluster-b.local and cluster-c.local and holds three ServiceEntries.  The slow clients
are in ``webhook_slow.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.hostile import slowbatch
from tests.hostile.cases import Case, Expect, Json, Malformed, NoAnswer, Observed, Raw, Reviewed, SlowCase
from tests.hostile.requests import (
    DELETE,
    dumps,
    federation_review,
    http,
    literal,
    post,
    post_lazy,
    raw,
    review_with,
    se_review,
    se_with,
)
from tests.hostile.slowbatch import SlowRun
from tests.reviews import service_entry

W = "webhook"
OK = dumps(se_review())
NOT_FOUND = {
    "error": "Not Found",
    "message": "The requested URL was not found on the server. If you entered the URL manually please check your "
    "spelling and try again.",
}
SUBDOMAIN_RULE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)


def _case(name: str, request: Callable[[], bytes], expect: Expect, **kwargs: Any) -> Case:
    return Case(W, name, request, expect, **kwargs)


def _chunked(body: bytes, *headers: tuple[str, str]) -> Callable[[], bytes]:
    return raw(http("POST", "/validate", headers=(("Transfer-Encoding", "chunked"), *headers), length=False) + body)


def _length(value: str, body: bytes = b"") -> Callable[[], bytes]:
    return raw(http("POST", "/validate", headers=(("Content-Length", value),), length=False) + body)


def _server(status: int, error: str, message: str) -> Json:
    """The server's own refusal (serving/errors.py): JSON, and the connection closed."""
    return Json(status, {"error": error, "message": message}, headers=(("connection", "close"),))


def _hosts(count: int) -> bytes:
    obj = service_entry("bar", "shop", "x")
    obj["spec"]["hosts"] = [f"h{number:06d}.example.com" for number in range(count)]
    return dumps(se_review(obj))


def _labels(count: int) -> bytes:
    obj = service_entry("bar", "shop", "bar.example.com")
    obj["spec"]["resolution"] = "STATIC"
    obj["spec"]["endpoints"] = [{"address": "1.1.1.1", "labels": {f"k{n}_": "" for n in range(256)}}] * count
    return dumps(se_review(obj))


def _labels_message() -> str:
    shown = ", ".join(
        f'spec.endpoints[0].labels[k{n}_]: Invalid value: "k{n}_": invalid tag key: "k{n}_"' for n in range(20)
    )
    # 4 endpoints checked (1,024 errors), then the error that says the other 846 were not: 20 shown.
    return f'ServiceEntry "bar" is invalid: [{shown}, and 1005 more errors]'


def _reserved_hosts(count: int) -> bytes:
    obj = service_entry("bar", "shop", "x")
    obj["spec"]["hosts"] = [f"h{number:06d}.svc.cluster-b.local" for number in range(count)]
    return dumps(se_review(obj))


def _reserved(host: str) -> str:
    return (
        f'Forbidden: host "{host}" is in trust domain "cluster-b.local", reserved by IstioFederation "cluster-b": '
        "only ServiceEntries that federation manages may declare it; to reach the remote service, export it in the "
        "remote cluster (label federation.istio.deckhouse.io/public-service) instead"
    )


def _reserved_hosts_message() -> str:
    # 1 error for the list's length, then 256 reserved hosts (the CRD's limit): 20 shown, 237 counted.
    shown = [f"spec.hosts[{n}]: " + _reserved(f"h{n:06d}.svc.cluster-b.local") for n in range(19)]
    return (
        'ServiceEntry "bar" is invalid: [spec.hosts: Invalid value: 100000: must have at most 256 items, '
        + ", ".join(shown)
        + ", and 237 more errors]"
    )


def _cut(text: str) -> str:
    """A value as a message echoes it: 100 characters, Go-quoted, then the rest counted."""
    return f'"{text[:100]}"…({len(text) - 100} more bytes)'


HUGE_HOST = "a." * (256 * 1024)
HUGE_HOST_MESSAGE = (
    f'ServiceEntry "bar" is invalid: [spec.hosts[0]: Invalid value: {_cut(HUGE_HOST)}: domain name {_cut(HUGE_HOST)} '
    f"too long (max 255), spec.hosts[0]: Invalid value: {_cut(HUGE_HOST)}: hosts must be FQDN or contain only "
    f"prefix wildcards if no endpoints are provided for resolution mode DNS, domain name {_cut(HUGE_HOST)} too long "
    "(max 255)]"
)


def _host_invalid(host: str, label: str, quoted: str | None = None) -> str:
    """Istio's two errors for a host with an invalid label (``quoted``: the value as JSON-escaped)."""
    value = quoted or host
    return (
        f'ServiceEntry "bar" is invalid: [spec.hosts[0]: Invalid value: "{value}": domain name "{host}" invalid '
        f'(label "{label}" invalid), spec.hosts[0]: Invalid value: "{value}": hosts must be FQDN or contain only '
        f'prefix wildcards if no endpoints are provided for resolution mode DNS, domain name "{host}" invalid '
        f'(label "{label}" invalid)]'
    )


def _not_json(body: bytes) -> Malformed:
    """The 400 for a body Python's JSON parser refuses, with its own words."""
    try:
        json.loads(body)
    except ValueError as error:
        return Malformed(f"body is not valid JSON: {error}")
    raise AssertionError("valid JSON")


def _wildcards() -> bytes:
    obj = service_entry("bar", "shop", "x")
    obj["spec"]["hosts"] = [f"*w{n}.example.com" for n in range(256)]
    obj["spec"]["resolution"] = "NONE"
    return dumps(se_review(obj))


def _claimed_by_a_user() -> bytes:
    obj = service_entry("bar", "shop", "bar.xyz.svc.cluster-b.local")
    obj["metadata"]["labels"] = {"app.kubernetes.io/managed-by": "istio-federation",
                                 "federation.istio.deckhouse.io/federation": "cluster-b"}  # fmt: skip
    return dumps(se_review(obj))


def _port(value: object) -> str:
    return (
        f'ServiceEntry "bar" is invalid: spec.ports[0].number: Invalid value: {value}: port number {value} must be '
        "in the range 1..65535"
    )


def _deep(levels: int) -> bytes:
    return literal(se_with("spec.exportTo", "@@"), "@@", b"[" * levels + b"]" * levels)


CASES: list[Case] = [
    # -- bodies that are not JSON, or not an AdmissionReview --------------------------------------
    _case("empty body", post(b""), Malformed("body is not valid JSON: Expecting value: line 1 column 1 (char 0)")),
    _case("truncated JSON", post(OK[: len(OK) // 2]), _not_json(OK[: len(OK) // 2])),
    _case("trailing garbage", post(OK + b"}{"), _not_json(OK + b"}{")),
    _case("not UTF-8", post(b'{"apiVersion": "\xff\xfe"}'),
          Malformed("body is not UTF-8: 'utf-8' codec can't decode byte 0xff in position 16: invalid start byte")),
    _case("UTF-8 BOM", post(b"\xef\xbb\xbf" + OK),
          Malformed("body is not valid JSON: Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 (char 0)")),
    _case("a JSON array", post(b"[" + OK + b"]"), Malformed("body must be a JSON object")),
    _case("a JSON string", post(b'"AdmissionReview"'), Malformed("body must be a JSON object")),
    _case("JSON null", post(b"null"), Malformed("body must be a JSON object")),
    _case("wrong apiVersion", post(dumps(review_with("apiVersion", "admission.k8s.io/v1beta1"))),
          Malformed("apiVersion must be admission.k8s.io/v1, got 'admission.k8s.io/v1beta1'")),
    _case("megabyte apiVersion", post_lazy(lambda: dumps({"apiVersion": "x" * 1_000_000, "kind": "AdmissionReview"})),
          Malformed(f"apiVersion must be admission.k8s.io/v1, got '{'x' * 100}'…(999900 more bytes)")),
    _case("wrong kind", post(dumps(review_with("kind", "AdmissionResponse"))),
          Malformed("kind must be AdmissionReview, got 'AdmissionResponse'")),
    _case("kind a list", post(dumps(review_with("kind", ["AdmissionReview"]))),
          Malformed("kind must be AdmissionReview, got ['AdmissionReview']")),
    _case("duplicate keys, the last one wins", post(OK[:-1] + b', "kind": "Other"}'),
          Malformed("kind must be AdmissionReview, got 'Other'")),
    _case("request missing", post(dumps(review_with("request", DELETE))), Malformed("request is missing")),
    _case("request a list", post(dumps(review_with("request", [1, 2]))), Malformed("request is missing")),
    _case("uid missing", post(dumps(review_with("request.uid", DELETE))), Malformed("request.uid is missing")),
    _case("uid empty", post(dumps(review_with("request.uid", ""))), Malformed("request.uid is missing")),
    _case("uid a number", post(dumps(review_with("request.uid", 7))), Malformed("request.uid is missing")),
    _case("uid of 10 KiB, echoed", post(dumps(review_with("request.uid", "u" * 10240))),
          Reviewed(True, uid="u" * 10240, max_bytes=16 * 1024)),
    _case("uid with control characters, echoed as JSON", post(dumps(review_with("request.uid", "u\r\nX: 1\x00"))),
          Reviewed(True, uid="u\r\nX: 1\x00")),
    _case("bogus operation", post(dumps(review_with("request.operation", "HACK"))),
          Malformed("request.operation must be one of CREATE, UPDATE, DELETE, CONNECT, got 'HACK'")),
    _case("lowercase operation", post(dumps(review_with("request.operation", "create"))),
          Malformed("request.operation must be one of CREATE, UPDATE, DELETE, CONNECT, got 'create'")),
    _case("operation a number", post(dumps(review_with("request.operation", 1))),
          Malformed("request.operation must be one of CREATE, UPDATE, DELETE, CONNECT, got 1")),
    _case("request.kind a string", post(dumps(review_with("request.kind", "ServiceEntry"))),
          Malformed("request.kind must be an object with group, version and kind/resource")),
    _case("request.kind.kind a number", post(dumps(review_with("request.kind.kind", 5))),
          Malformed("request.kind must be an object with group, version and kind/resource")),
    _case("resource missing", post(dumps(review_with("request.resource", DELETE))),
          Malformed("request.resource must be an object with group, version and kind/resource")),
    _case("unknown resource is allowed", post(dumps(review_with("request.resource.resource", "invented"))),
          Reviewed(True)),
    # The resource decides the validator; the kind is only a (closed-set) metric label.
    _case("megabyte kind", post_lazy(lambda: dumps(review_with("request.kind.kind", "K" * 1_000_000))),
          Reviewed(True)),
    _case("kind with control characters", post(dumps(review_with("request.kind.kind", "Service\nEntry\x1b[31m"))),
          Reviewed(True)),
    _case("object a string", post(dumps(review_with("request.object", "spec"))),
          Malformed("request.object must be an object or null")),
    _case("object null on CREATE", post(dumps(review_with("request.object", None))),
          Malformed("request.object is required for CREATE")),
    _case("oldObject a list", post(dumps(review_with("request.oldObject", [1]))),
          Malformed("request.oldObject must be an object or null")),
    _case("userInfo a string", post(dumps(review_with("request.userInfo", "admin"))),
          Malformed("request.userInfo must be an object")),
    _case("name a number", post(dumps(review_with("request.name", 42))),
          Malformed("request.name and request.namespace must be strings")),
    _case("CONNECT is allowed", post(dumps(review_with("request.operation", "CONNECT"))), Reviewed(True)),
    _case("DELETE of nothing", post(dumps(review_with("request.operation", "DELETE",
                                                      review_with("request.object", None)))), Reviewed(True)),
    _case("managed labels claimed by a user", post(_claimed_by_a_user()), Reviewed(False,
          'ServiceEntry "bar" is invalid: metadata.labels[federation.istio.deckhouse.io/federation]: Forbidden: the '
          "labels app.kubernetes.io/managed-by and federation.istio.deckhouse.io/federation are reserved for "
          "ServiceEntries the reconciler creates for IstioFederation \"cluster-b\"; remove them from ServiceEntry "
          "shop/bar")),
    # -- numbers and limits ----------------------------------------------------------------------
    _case("NaN port", post(literal(se_with("spec.ports.0.number", "@@"), "@@", b"NaN")),
          Malformed("body is not valid JSON: NaN is not a JSON number (only finite numbers are)")),
    _case("-Infinity port", post(literal(se_with("spec.ports.0.number", "@@"), "@@", b"-Infinity")),
          Malformed("body is not valid JSON: -Infinity is not a JSON number (only finite numbers are)")),
    _case("5,000-digit port", post(literal(se_with("spec.ports.0.number", "@@"), "@@", b"1" * 5000)),
          Malformed("body is beyond what an AdmissionReview may hold: number 11111111111111111111... has 5000 "
                    "characters, more than the limit of 40")),
    _case("1e999 port", post(literal(se_with("spec.ports.0.number", "@@"), "@@", b"1e999")),
          Malformed("body is beyond what an AdmissionReview may hold: number 1e999 is out of range (not a finite "
                    "number)")),
    _case("port 99999999999", post(dumps(se_with("spec.ports.0.number", 99_999_999_999))),
          Reviewed(False, _port(99_999_999_999))),
    _case("port -1", post(dumps(se_with("spec.ports.0.number", -1))), Reviewed(False, _port(-1))),
    _case("port a string", post(dumps(se_with("spec.ports.0.number", "443"))), Reviewed(False,
          'ServiceEntry "bar" is invalid: spec.ports[0].number: Invalid value: "string": must be an integer')),
    _case("port 1.5", post(dumps(se_with("spec.ports.0.number", 1.5))), Reviewed(False,
          'ServiceEntry "bar" is invalid: spec.ports[0].number: Invalid value: "number": must be an integer')),
    _case("100,000 deep", post(_deep(100_000)), Malformed("body is nested too deeply to be an AdmissionReview")),
    _case("65 deep, one past the limit", post(_deep(61)),
          Malformed("body is nested too deeply to be an AdmissionReview")),
    _case("64 deep, the limit", post(_deep(60)), Reviewed(False,
          'ServiceEntry "bar" is invalid: spec.exportTo[0]: Invalid value: "array": must be a string')),
    _case("200,000 members", post_lazy(lambda: literal(se_with("spec.exportTo", "@@"), "@@",
                                                      b"[" + b"0," * 199_999 + b"0]")),
          Malformed("body is beyond what an AdmissionReview may hold: array at request.object.spec.exportTo has "
                    "200000 members, more than the limit of 131072")),
    _case("a 2 MiB string", post_lazy(lambda: dumps(se_with("metadata.annotations", {"a": "x" * (2 << 20)}))),
          Malformed("body is beyond what an AdmissionReview may hold: string at request.object.metadata.annotations.a "
                    "has 2097152 characters, more than the limit of 1048576")),
    _case("body over 3 MiB", post_lazy(lambda: dumps(se_with("metadata.annotations", {"a": "x" * (3 << 20)}))),
          Malformed("body is larger than 3145728 bytes")),
    _case("Content-Length of 4 GiB, no body", _length("4294967296"), Malformed("body is larger than 3145728 bytes"),
          closes=True),
    # -- objects the rules refuse, at a bounded cost ---------------------------------------------
    _case("512 KiB host", post_lazy(lambda: dumps(se_with("spec.hosts", [HUGE_HOST]))),
          Reviewed(False, HUGE_HOST_MESSAGE, max_bytes=4096)),
    _case("100,000 reserved hosts in 3 MiB", post_lazy(lambda: _reserved_hosts(100_000)),
          Reviewed(False, _reserved_hosts_message(), max_bytes=32 * 1024)),
    _case("850 endpoints of invalid labels", post_lazy(lambda: _labels(850)),
          Reviewed(False, _labels_message(), max_bytes=16 * 1024)),
    _case("256 wildcard hosts, 20 warnings", post_lazy(_wildcards), Reviewed(True, warnings=(
          *(f'spec.hosts[{n}]: partial wildcard "*w{n}.example.com" not allowed' for n in range(20)),
          "and 236 more warnings"), max_bytes=4096)),
    # kube-apiserver checks names and labels before it calls the webhook; the webhook's rules pass them.
    _case("100,000-character name", post(dumps(se_with("metadata.name", "n" * 100_000))), Reviewed(True)),
    _case("10,000 labels", post(dumps(se_with("metadata.labels", {f"l{n}": "v" for n in range(10_000)}))),
          Reviewed(True)),
    _case("host with NUL", post(dumps(se_with("spec.hosts", ["bar\x00.example.com"]))),
          Reviewed(False, _host_invalid("bar\\x00.example.com", "bar\\x00", "bar\\u0000.example.com"))),
    _case("host with a trailing newline", post(dumps(se_with("spec.hosts", ["bar.example.com\n"]))), Reviewed(False,
          'ServiceEntry "bar" is invalid: [spec.hosts[0]: Invalid value: "bar.example.com\\n": domain name '
          '"example.com\\n" invalid (label "com\\n" invalid), spec.hosts[0]: Invalid value: "bar.example.com\\n": '
          "hosts must be FQDN or contain only prefix wildcards if no endpoints are provided for resolution mode DNS, "
          'domain name "bar.example.com\\n" invalid (label "com\\n" invalid)]')),
    _case("host in Cyrillic", post(dumps(se_with("spec.hosts", ["бар.example.com"]))),
          Reviewed(False, _host_invalid("бар.example.com", "бар"))),
    _case("hosts a string", post(dumps(se_with("spec.hosts", "bar.example.com"))), Reviewed(False,
          'ServiceEntry "bar" is invalid: spec.hosts: Invalid value: "string": must be a list of strings')),
    _case("spec a list", post(dumps(se_with("spec", [1]))),
          Reviewed(False, 'ServiceEntry "bar" is invalid: spec: Invalid value: "array": must be an object')),
    _case("metadata a string", post(dumps(se_with("metadata", "m"))),
          Reviewed(False, 'ServiceEntry "bar" is invalid: metadata: Invalid value: "string": must be an object')),
    _case("port name with CRLF", post(dumps(se_with("spec.ports.0.name", "https\r\nX: 1"))), Reviewed(False,
          'ServiceEntry "bar" is invalid: spec.ports[0].name: Invalid value: "https\\r\\nX: 1": invalid port name: '
          '"https\\r\\nX: 1"')),
    _case("host in a federated trust domain", post(dumps(se_with("spec.hosts", ["bar.xyz.svc.cluster-b.local"]))),
          Reviewed(False, 'ServiceEntry "bar" is invalid: spec.hosts[0]: '
                   + _reserved("bar.xyz.svc.cluster-b.local"))),
    _case("host of another namespace's ServiceEntry", post(dumps(se_with("spec.hosts", ["web.example.com"]))),
          Reviewed(False, 'ServiceEntry "bar" is invalid: spec.hosts[0]: Duplicate value: "web.example.com": host is '
                   "already declared by ServiceEntry shop/web and both are visible to the same namespaces (Istio "
                   "would silently use the older one); remove the host from one of them, or make their exportTo "
                   "scopes disjoint")),
    _case("trustDomain with a trailing newline", post(dumps(federation_review(trustDomain="cluster-d.local\n"))),
          Reviewed(False, 'IstioFederation "cluster-d" is invalid: spec.trustDomain: Invalid value: '
                   f'"cluster-d.local\\n": {SUBDOMAIN_RULE} (character "\\n" at position 15 is not allowed)')),
    _case("metadataEndpoint with CRLF", post(dumps(federation_review(
          metadataEndpoint="https://meta.cluster-d.example.com/metadata/\r\nInjected: 1"))),
          Reviewed(False, 'IstioFederation "cluster-d" is invalid: spec.metadataEndpoint: Invalid value: '
                   '"https://meta.cluster-d.example.com/metadata/\\r\\nInjected: 1": must not contain spaces or '
                   'control characters (character "\\r" at position 44)')),
    _case("a megabyte trustDomain", post_lazy(lambda: dumps(federation_review(trustDomain="d" * 1_000_000))),
          Reviewed(False, 'IstioFederation "cluster-d" is invalid: spec.trustDomain: Invalid value: '
                   f"{_cut('d' * 1_000_000)}: must be no more than 253 characters")),
    _case("trustDomain already federated", post(dumps(federation_review(trustDomain="cluster-b.local"))),
          Reviewed(False, 'IstioFederation "cluster-d" is invalid: spec.trustDomain: Duplicate value: '
                   '"cluster-b.local": already federated by IstioFederation "cluster-b"; each remote cluster needs '
                   'exactly one IstioFederation: edit "cluster-b" instead')),
    _case("trustDomain a number", post(dumps(federation_review(trustDomain=7))), Reviewed(False,
          'IstioFederation "cluster-d" is invalid: spec.trustDomain: Invalid value: 7: must be a string')),
    _case("metadataEndpoint over plain HTTP", post(dumps(federation_review(
          metadataEndpoint="http://169.254.169.254/latest/"))), Reviewed(False,
          'IstioFederation "cluster-d" is invalid: spec.metadataEndpoint: Invalid value: '
          "\"http://169.254.169.254/latest/\": must be an https:// URL (got scheme 'http'); metadata must be fetched "
          "over TLS")),
    # -- content types ---------------------------------------------------------------------------
    _case("no Content-Type", post(OK, content_type=None),
          Malformed("Content-Type must be application/json, got 'none'")),
    _case("text/plain", post(OK, content_type="text/plain"),
          Malformed("Content-Type must be application/json, got 'text/plain'")),
    _case("application/yaml", post(OK, content_type="application/yaml"),
          Malformed("Content-Type must be application/json, got 'application/yaml'")),
    _case("a 5,000-character Content-Type", post(OK, content_type="a/" + "b" * 5000),
          Malformed(f"Content-Type must be application/json, got 'a/{'b' * 98}'")),
    _case("JSON with a charset, any case", post(OK, content_type="Application/JSON; charset=latin-1"), Reviewed(True)),
    # -- HTTP that is not what the apiserver sends ------------------------------------------------
    _case("GET /validate", raw(http("GET", "/validate")),
          Json(405, {"error": "Method Not Allowed", "message": "The method is not allowed for the requested URL."})),
    _case("PUT /validate", raw(http("PUT", "/validate", OK)),
          Json(405, {"error": "Method Not Allowed", "message": "The method is not allowed for the requested URL."})),
    _case("POST to an unknown path", raw(http("POST", "/mutate", OK)), Json(404, NOT_FOUND)),
    _case("path traversal", raw(http("POST", "/../validate", OK)), Json(404, NOT_FOUND)),
    # gunicorn reads a leading "//" as "/"; a doubled slash further on was an HTML 308 to
    # https://<the client's Host header>/... (werkzeug's merge_slashes, now off).
    _case("leading doubled slash", raw(http("POST", "//validate", OK)), Reviewed(True)),
    _case("doubled slash", raw(http("POST", "/validate//", OK)), Json(404, NOT_FOUND)),
    _case("chunk size not hex", _chunked(b"zz\r\n{}\r\n0\r\n\r\n"),
          _server(400, "Bad Request", "malformed chunked body: Invalid chunk size: b'zz'"), closes=True),
    _case("negative chunk size", _chunked(b"-5\r\n{}\r\n0\r\n\r\n"),
          _server(400, "Bad Request", "malformed chunked body: Invalid chunk size: b'-5'"), closes=True),
    _case("chunk without terminator", _chunked(b"2\r\n{}XX0\r\n\r\n"),
          _server(400, "Bad Request", "malformed chunked body: Invalid chunk terminator is not '\\r\\n': b'XX'"),
          closes=True),
    _case("a valid chunked review", _chunked(b"%x\r\n" % len(OK) + OK + b"\r\n0\r\n\r\n"), Reviewed(True)),
    _case("chunked and Content-Length", _chunked(b"0\r\n\r\n", ("Content-Length", "5")),
          _server(400, "Bad Request", "malformed header: Invalid HTTP Header: 'CONTENT-LENGTH'"), closes=True),
    _case("two Content-Lengths", raw(http("POST", "/validate", OK, headers=(("Content-Length", "1"),))),
          _server(400, "Bad Request", "malformed header: Invalid HTTP Header: 'CONTENT-LENGTH'"), closes=True),
    _case("Content-Length not a number", _length("12a", OK),
          _server(400, "Bad Request", "malformed header: Invalid HTTP Header: 'CONTENT-LENGTH'"), closes=True),
    _case("negative Content-Length", _length("-1"),
          _server(400, "Bad Request", "malformed header: Invalid HTTP Header: 'CONTENT-LENGTH'"), closes=True),
    _case("unknown Transfer-Encoding", raw(http("POST", "/validate", headers=(("Transfer-Encoding", "zstd"),),
                                                length=False)),
          _server(400, "Bad Request", "unsupported Transfer-Encoding (only chunked): Unsupported transfer coding: "
                  "'zstd'"), closes=True),
    # A FIN without TLS's close_notify: no answer can come back over TLS, and the truncated body
    # must never reach the application as if it were whole (it did: serving/body.py now counts it).
    _case("body cut short, then FIN", raw(http("POST", "/validate", OK)[:-10]), NoAnswer(), half_close=True,
          log="refused a request from 127.0.0.1: 400 the connection closed before the request body was complete"),
    _case("a whole review under a longer Content-Length, then FIN", _length(str(len(OK) + 10), OK), NoAnswer(),
          half_close=True,
          log="refused a request from 127.0.0.1: 400 the connection closed before the request body was complete"),
    _case("Expect: 100-continue", raw(http("POST", "/validate", OK, headers=(("Expect", "100-continue"),))),
          Raw(100), rest=Reviewed(True), answers=2),
    _case("Expect: something else", raw(http("POST", "/validate", OK, headers=(("Expect", "teapot"),))),
          _server(417, "Expectation Failed", "unsupported Expect header: Unable to comply with expectation: 'teapot'"),
          closes=True),
    _case("garbage request line", raw(b"\x00\x01garbage\r\n\r\n"),
          _server(400, "Bad Request", "malformed request line: Invalid HTTP request line: '\\x00\\x01garbage'"),
          closes=True),
    _case("HTTP/2 preface", raw(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
          _server(400, "Bad Request", "malformed request line: Invalid HTTP request line: 'PRI * HTTP/2.0'"),
          closes=True),
    _case("HTTP/9.9", raw(http("GET", "/healthz", version="HTTP/9.9")),
          _server(400, "Bad Request", "unsupported HTTP version: Invalid HTTP Version: (9, 9)"), closes=True),
    _case("HTTP/0.9", raw(b"GET /healthz\r\n\r\n"),
          _server(400, "Bad Request", "malformed request line: Invalid HTTP request line: 'GET /healthz'"),
          closes=True),
    _case("request line of 9,000 bytes", raw(http("GET", "/" + "a" * 9000)),
          _server(414, "Request-URI Too Long", "the request line is longer than 8190 bytes"), closes=True),
    _case("header of 9,000 bytes", raw(http("GET", "/healthz", headers=(("X-Big", "a" * 9000),))),
          _server(431, "Request Header Fields Too Large", "the request headers are too large (at most 100 fields of "
                  "8190 bytes): limit request headers fields size"), closes=True),
    _case("150 headers", raw(http("GET", "/healthz", headers=tuple((f"X-{n}", "1") for n in range(150)))),
          _server(431, "Request Header Fields Too Large", "the request headers are too large (at most 100 fields of "
                  "8190 bytes): limit request headers fields"), closes=True),
    _case("header with NUL", raw(http("GET", "/healthz", headers=(("X-Nul", "a\x00b"),))),
          _server(400, "Bad Request", "malformed header: Invalid HTTP Header: 'X-NUL'"), closes=True),
    _case("header name with space", raw(http("GET", "/healthz", headers=(("X Bad", "1"),))),
          _server(400, "Bad Request", "malformed header: Invalid HTTP header name: 'X Bad'"), closes=True),
    _case("obsolete line folding", raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n"),
          _server(400, "Bad Request", "malformed header: Obsolete line folding is unacceptable: 'X-A'"), closes=True),
    _case("lowercase method", raw(http("post", "/validate", OK)),
          _server(400, "Bad Request", "malformed request method: Invalid HTTP method: 'post'"), closes=True),
    _case("three reviews pipelined", raw(http("POST", "/validate", OK) * 3), Reviewed(True), answers=3),
    _case("TLS record garbage", raw(b"\x16\x03\x01\x00\x05hello" + bytes(range(256))), NoAnswer(), tls=False),
    _case("plain HTTP on the TLS port", raw(http("POST", "/validate", OK)), NoAnswer(), tls=False),
    _case("healthz, for comparison", raw(http("GET", "/healthz")), Json(200, {"status": "ok"})),
]


# -- slow clients (run at once, in the background of the cases above: test_webhook.py) -----------

HEAD_TIMEOUT = Json(408, {"error": "Request Timeout",
                          "message": "the request line and headers did not arrive within 10 seconds"})  # fmt: skip
BODY_TIMEOUT = Json(408, {"error": "Request Timeout", "message": "the request body did not arrive within 10 seconds"})
HEAD = http("POST", "/validate", OK)[: -len(OK)]
BIG_UID = dumps(se_review(uid="u" * 1_000_000))


def _cut_off(observed: Observed) -> None:
    """The server closed the connection before it could send all ten answers (about 10 MB)."""
    assert observed.notes["received"] < 10 * len(BIG_UID), observed.notes


def _slow(name: str, run: SlowRun, expect: Expect, **kwargs: Any) -> SlowCase:
    return SlowCase(W, name, run, expect, **kwargs)


SLOW: list[SlowCase] = [
    _slow("idle TCP, no ClientHello", slowbatch.idle_tcp(), NoAnswer()),
    _slow("ClientHello at 2 bytes a second", slowbatch.slow_handshake(), NoAnswer()),
    _slow("idle TLS, no request", slowbatch.idle_tls(), HEAD_TIMEOUT),
    _slow("request head at 2 bytes a second", slowbatch.trickle(HEAD), HEAD_TIMEOUT),
    _slow("a header line a second", slowbatch.trickle([b"POST /validate HTTP/1.1\r\n",
                                                        *(b"X-%d: 1\r\n" % n for n in range(60))], every=1.0),
          HEAD_TIMEOUT),
    _slow("garbage without a line end", slowbatch.send_then_wait(bytes(range(14, 256)) * 4), HEAD_TIMEOUT),
    _slow("body at 2 bytes a second", slowbatch.trickle(OK, prefix=HEAD), BODY_TIMEOUT),
    _slow("body shorter than its Content-Length", slowbatch.send_then_wait(HEAD + OK[:100]), BODY_TIMEOUT),
    _slow("chunk size of 2^64", slowbatch.send_then_wait(
          http("POST", "/validate", headers=(("Transfer-Encoding", "chunked"),), length=False)
          + b"10000000000000000\r\n{}\r\n"), BODY_TIMEOUT),
    _slow("chunked body at a chunk a second", slowbatch.trickle(
          [b"1\r\n%c\r\n" % byte for byte in OK[:60]],
          prefix=http("POST", "/validate", headers=(("Transfer-Encoding", "chunked"),), length=False), every=1.0),
          BODY_TIMEOUT),
    _slow("Expect: 100-continue, then no body", slowbatch.send_then_wait(
          http("POST", "/validate", OK, headers=(("Expect", "100-continue"),))[: -len(OK)]), BODY_TIMEOUT),
    _slow("kept alive, then idle", slowbatch.answered_then_idle(http("GET", "/healthz")),
          Json(200, {"status": "ok"})),
    _slow("ten 1 MB answers, never read", slowbatch.never_reads(http("POST", "/validate", BIG_UID), 10, pause=25.0),
          NoAnswer(), check=_cut_off,
          log="closing connection from 127.0.0.1: request took longer than 15 seconds"),
]
