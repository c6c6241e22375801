"""The reconciler's table: what a hostile remote serves, and the exact handling a sync must give it.

Each case changes the remote cluster-b (``remote.py``) after a good sync, then one more sync runs
through the real Syncer in state-directory mode (``test_reconciler.py``).  Expected: the sync's
result, the condition of the stage that saw the problem (status, reason, exact message), and the
imported objects afterwards: by default exactly the ones before (the stale policy keeps the last
good objects and the last good root CA), or the hosts a valid document legitimately leaves.
``{public}`` and ``{private}`` in a message stand for the remote's URLs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from federation import conditions
from tests import pki
from tests.hostile import remote as behave
from tests.hostile.remote import PRIVATE, PUBLIC, HostileRemote

R = "reconciler"
LOCAL_UUID = "a1a1a1a1-0000-4000-8000-0000000000a1"
REMOTE_UUID = "5d6c1e2f-0000-4000-8000-0000000000b2"
HEALTHY_UUID = "6e7d2f30-0000-4000-8000-0000000000c3"
HOSTS = ("bar.xyz.svc.cluster-b.local", "baz.xyz.svc.cluster-b.local", "qux.shop.svc.cluster-b.local")
SERVICES: list[dict[str, Any]] = [
    {"hostname": HOSTS[0], "ports": [{"name": "http", "port": 8080}]},
    {"hostname": HOSTS[1], "ports": [{"name": "grpc-api", "port": 9090}, {"name": "tls", "port": 443}]},
    {"hostname": HOSTS[2], "ports": [{"name": "tcp-db", "port": 5432}]},
]
GATEWAYS: list[dict[str, Any]] = [{"address": "10.0.0.10", "port": 15443}, {"address": "10.0.0.11", "port": 15443}]
KEPT = "the last known objects are kept until it publishes a usable one"
EXPLORE = "<explore>"


@dataclass(frozen=True)
class RemoteCase:
    name: str
    hostile: Callable[[HostileRemote], None]
    ok: bool
    condition: str
    status: str
    reason: str
    message: str
    imported: frozenset[str] | None = None  # hosts imported afterwards; None: every object exactly as before
    target: str = R

    def __str__(self) -> str:
        return self.name


def case(name: str, hostile: Callable[[HostileRemote], None], *, ok: bool = False,
         condition: str = conditions.PUBLIC, status: str = "False", reason: str = "", message: str = EXPLORE,
         imported: frozenset[str] | tuple[str, ...] | None = None) -> RemoteCase:  # fmt: skip
    hosts = frozenset(imported) if imported is not None else None
    return RemoteCase(name, hostile, ok, condition, status, reason, message, hosts)


# -- what the remote serves ----------------------------------------------------------------------


def public_bytes(data: bytes) -> Callable[[HostileRemote], None]:
    def apply(remote: HostileRemote) -> None:
        remote.public_body = data

    return apply


def private_bytes(data: bytes | Callable[[], bytes]) -> Callable[[HostileRemote], None]:
    def apply(remote: HostileRemote) -> None:
        remote.private_body = data() if callable(data) else data

    return apply


def public_with(**changes: Any) -> Callable[[HostileRemote], None]:
    """The good public document with these members replaced (``None`` removes one)."""

    def apply(remote: HostileRemote) -> None:
        document = {**remote.cluster.public_document(), **changes}
        remote.public_body = json.dumps({k: v for k, v in document.items() if v is not None}).encode()

    return apply


def private_with(**changes: Any) -> Callable[[HostileRemote], None]:
    """The good private document with these members replaced (``None`` removes one)."""

    def apply(remote: HostileRemote) -> None:
        document = {**remote.cluster.private_document(), **changes}
        remote.private_body = json.dumps({k: v for k, v in document.items() if v is not None}).encode()

    return apply


def gateways(*entries: Any) -> Callable[[HostileRemote], None]:
    def apply(remote: HostileRemote) -> None:
        remote.cluster.gateways = list(entries)

    return apply


def services(*entries: Any) -> Callable[[HostileRemote], None]:
    def apply(remote: HostileRemote) -> None:
        remote.cluster.services = list(entries)

    return apply


def port_named(name: str) -> Callable[[HostileRemote], None]:
    """The first service with one more port, named ``name`` (the service stays; the port is skipped)."""
    return services({"hostname": HOSTS[0], "ports": [{"name": "http", "port": 8080}, {"name": name, "port": 9000}]},
                    *SERVICES[1:])  # fmt: skip


def port_number(value: Any) -> Callable[[HostileRemote], None]:
    return services({"hostname": HOSTS[0], "ports": [{"name": "http", "port": 8080}, {"name": "extra", "port": value}]},
                    *SERVICES[1:])  # fmt: skip


def hostname(value: Any) -> Callable[[HostileRemote], None]:
    """One more service, with this hostname."""
    return services(*SERVICES, {"hostname": value, "ports": [{"name": "http", "port": 80}]})


def http(path: str, behaviour: behave.Behaviour) -> Callable[[HostileRemote], None]:
    def apply(remote: HostileRemote) -> None:
        remote.behaviours[path] = behaviour

    return apply


def root_ca(pem: Callable[[], str]) -> Callable[[HostileRemote], None]:
    def apply(remote: HostileRemote) -> None:
        remote.cluster.root_ca_pem = pem()

    return apply


def _expired_root() -> str:
    return pki.certificate_pem("expired-root", not_before=datetime(2019, 1, 1, tzinfo=UTC),
                               not_after=datetime(2020, 1, 1, tzinfo=UTC))  # fmt: skip


def _future_root() -> str:
    # A fixed date, so the refusal's text is fixed too.
    start = datetime(2099, 1, 1, tzinfo=UTC)
    return pki.certificate_pem("future-root", not_before=start, not_after=start + timedelta(days=365))


def _leaf_root() -> str:
    return pki.certificate_pem("not-a-ca", ca=False)


DEEP = b"[" * 100_000 + b"]" * 100_000
HUGE_NUMBER = b"1" * 5000


def _many_invalid_services(count: int) -> Callable[[], bytes]:
    def make() -> bytes:
        entries = [{"hostname": f"bad host {n}\n", "ports": []} for n in range(count)]
        return json.dumps({"ingressGateways": GATEWAYS, "publicServices": entries}).encode()

    return make


def _big_document(size: int) -> bytes:
    return json.dumps({"padding": "x" * 60_000, "more": ["y" * 60_000] * (size // 60_000)}).encode()


ALL = frozenset(HOSTS)
P, Q = conditions.PUBLIC, conditions.PRIVATE


def bad_public(detail: str, reason: str = conditions.INVALID_PUBLIC) -> dict[str, Any]:
    return {"condition": P, "reason": reason, "message": f"invalid public metadata: {detail}"}


def bad_public_json(detail: str) -> dict[str, Any]:
    return bad_public(f'Invalid value: "<body>": {detail}', conditions.INVALID_JSON)


def bad_private(detail: str, reason: str = conditions.INVALID_PRIVATE) -> dict[str, Any]:
    return {"condition": Q, "reason": reason, "message": f"invalid private metadata: {detail}"}


def bad_private_json(detail: str) -> dict[str, Any]:
    return bad_private(f'Invalid value: "<body>": {detail}', conditions.INVALID_JSON)


def fetch_failed(path: str, detail: str) -> dict[str, Any]:
    return {"condition": P if path == "public" else Q, "reason": conditions.FETCH_FAILED,
            "message": f"GET {{{path}}}: {detail}"}  # fmt: skip


def deadline(path: str) -> dict[str, Any]:
    return fetch_failed(path, "timed out: the remote did not answer within 3s (the total deadline of a fetch)")


def status(path: str, code: int) -> dict[str, Any]:
    return {"condition": P if path == "public" else Q, "reason": conditions.NON_OK_RESPONSE,
            "message": f"HTTP status {code} when fetching {path} metadata"}  # fmt: skip


def too_big(path: str) -> dict[str, Any]:
    return {"condition": P if path == "public" else Q, "reason": conditions.INVALID_JSON,
            "message": f"GET {{{path}}}: response of 5280373 bytes is larger than 4194304 bytes"}  # fmt: skip


def no_gateway(skipped: str) -> dict[str, Any]:
    return {"condition": Q, "reason": conditions.NO_INGRESS_GATEWAYS,
            "message": f"every ingress gateway the remote publishes is refused: 1 gateway skipped ({skipped}; {KEPT}"}


def forbidden_gateway(address: str, why: str) -> dict[str, Any]:
    return no_gateway(f"1 ForbiddenAddress): {address}: ingressGateways[0].address: Forbidden: {address} {why}")


def gateway_port(value: str, rule: str = "must be from 1 to 65535") -> dict[str, Any]:
    return no_gateway(f"1 InvalidPortNumber): 10.0.0.10: ingressGateways[0].port: Invalid value: {value}: {rule}")


def imported(*, skipped: str = "", hosts: frozenset[str] | tuple[str, ...] = ALL) -> dict[str, Any]:
    """A usable private document: the sync succeeds; ``skipped`` is what the condition says it left out."""
    message = conditions.PRIVATE_SUCCEEDED_MESSAGE + (f" 1 entry skipped ({skipped}" if skipped else "")
    return {"ok": True, "condition": Q, "status": "True", "reason": conditions.SUCCEEDED, "message": message,
            "imported": hosts}  # fmt: skip


def port_skipped(port: str, reason: str, detail: str) -> dict[str, Any]:
    return imported(skipped=f"1 {reason}): {HOSTS[0]} port {port}: publicServices[0].ports[1].{detail}")


def bad_port_name(shown: str) -> dict[str, Any]:
    return port_skipped("9000", "InvalidPortName", f'name: Invalid value: "{shown}": {PORT_NAME_RULE}')


def host_skipped(shown: str, value: str) -> dict[str, Any]:
    return imported(skipped=f'1 InvalidHostname): {shown}: publicServices[3].hostname: Invalid value: "{value}": '
                    "must be a valid DNS name")


def refused_hosts(message: str, *, reason: str = conditions.HOSTS_REFUSED,
                  hosts: frozenset[str] | tuple[str, ...] = ALL) -> dict[str, Any]:  # fmt: skip
    """A usable document some of whose hosts the security filter refuses (Synced says which)."""
    return {"ok": True, "condition": conditions.SYNCED, "reason": reason, "message": message, "imported": hosts}


def served_as(path: str, content_type: str) -> Callable[[HostileRemote], None]:
    """The good document, with a Content-Type that is not JSON's (Deckhouse's is text/plain)."""

    def apply(remote: HostileRemote) -> None:
        document = remote.cluster.public_document() if path == PUBLIC else remote.cluster.private_document()
        remote.behaviours[path] = behave.respond(json.dumps(document).encode(), content_type=content_type)

    return apply


PORT_NAME_RULE = (
    "must be a Service port name (IANA_SVC_NAME): 1 to 15 lowercase letters and digits, a letter among them, and "
    "single '-' between them"
)
LOOPBACK = "is a loopback address: it would point into this cluster"
LINK_LOCAL = "is a link-local address, where cloud metadata services listen: it would point into this cluster"
NOT_JSON = "not valid JSON: Expecting value: line 1 column 1 (char 0)"
OUTSIDE = [{**entry, "hostname": entry["hostname"].replace("cluster-b.local", "cluster-c.local")} for entry in SERVICES]
RSA_AS_KEY = (
    "authnKeyPub: Invalid value: \"<PEM>\": authnKeyPub has PEM label 'CERTIFICATE', expected PUBLIC KEY or ED25519 "
    "PUBLIC KEY"
)
def c(name: str, hostile: Callable[[HostileRemote], None], expected: dict[str, Any], **marks: Any) -> Any:
    """A case of the table; ``xfail=REASON`` marks a product bug (routed, strict)."""
    made = case(name, hostile, **{"status": "False", **expected})
    if "xfail" in marks:
        return pytest.param(made, marks=pytest.mark.xfail(strict=True, reason=marks["xfail"]), id=name)
    return made


PUBLIC_CASES: list[Any] = [
    c("public: 100,000 deep", public_bytes(DEEP),
      bad_public_json("nested deeper than the limit of 32 levels at line 1 column 33 (char 32)")),
    c("public: a 5,000-digit number", public_bytes(b'{"clusterUUID": ' + HUGE_NUMBER + b"}"),
      bad_public_json("number 11111111111111111111... has 5000 characters, more than the limit of 40")),
    c("public: NaN", public_bytes(b'{"clusterUUID": NaN}'),
      bad_public_json("NaN is not a JSON number (only finite numbers are)")),
    c("public: -Infinity", public_bytes(b'{"clusterUUID": -Infinity}'),
      bad_public_json("-Infinity is not a JSON number (only finite numbers are)")),
    c("public: 1e999", public_bytes(b'{"clusterUUID": 1e999}'),
      bad_public_json("number 1e999 is out of range (not a finite number)")),
    c("public: a 100,000-character string", public_with(rootCA="x" * 100_000),
      bad_public_json("string at rootCA has 100000 characters, more than the limit of 65536")),
    c("public: 30,000 members", public_bytes(json.dumps({f"k{n}": n for n in range(30_000)}).encode()),
      bad_public_json("object at the top level has 30000 members, more than the limit of 20000")),
    c("public: 5 MiB with its length", http(PUBLIC, behave.respond(_big_document(5 << 20))), too_big("public")),
    c("public: 5 MiB, chunked", http(PUBLIC, behave.chunked([b"[" + b"0," * (1 << 20)] * 3)),
      bad_public('Invalid value: "4194305 bytes": larger than 4194304 bytes', conditions.INVALID_JSON)),
    c("public: HTML", public_bytes(b"<html><body>login</body></html>"), bad_public_json(NOT_JSON)),
    c("public: empty body", public_bytes(b""), bad_public_json(NOT_JSON)),
    c("public: a JSON array", public_bytes(b"[]"), bad_public('Invalid value: "array": must be a JSON object')),
    c("public: JSON null", public_bytes(b"null"), bad_public('Invalid value: "null": must be a JSON object')),
    c("public: not UTF-8", public_bytes(b'{"clusterUUID": "\xff\xfe"}'), bad_public_json("not valid UTF-8 at byte 17")),
    c("public: clusterUUID missing", public_with(clusterUUID=None),
      bad_public("clusterUUID: Required value: must be a non-empty string")),
    c("public: clusterUUID a number", public_with(clusterUUID=7),
      bad_public("clusterUUID: Invalid value: 7: must be a string")),
    c("public: clusterUUID with control characters", public_with(clusterUUID="uuid\r\nInjected: 1"),
      bad_public('clusterUUID: Invalid value: "uuid\\r\\nInjected: 1": must be printable, at most 253 characters')),
    c("public: clusterUUID of 300 characters", public_with(clusterUUID="u" * 300),
      bad_public(f'clusterUUID: Invalid value: "{"u" * 64}...": must be printable, at most 253 characters')),
    c("public: this cluster's own clusterUUID", public_with(clusterUUID=LOCAL_UUID),
      {"condition": P, "reason": conditions.INVALID_PUBLIC, "message": "the endpoint serves this cluster's own "
       f"metadata (clusterUUID {LOCAL_UUID}): point spec.metadataEndpoint at the remote cluster"}),
    c("public: another federation's clusterUUID", public_with(clusterUUID=HEALTHY_UUID),
      {"condition": P, "reason": conditions.CLUSTER_UUID_CONFLICT, "message": f"the remote claims clusterUUID "
       f"{HEALTHY_UUID}, which IstioFederation cluster-c already holds (its status.metadataCache.public): refused, so "
       "that cluster-c keeps working; two IstioFederations cannot name one cluster: check spec.metadataEndpoint, or "
       "delete the IstioFederation that is wrong"}),
    c("public: authnKeyPub not a key",
      public_with(authnKeyPub="-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
      bad_public('authnKeyPub: Invalid value: "<PEM>": authnKeyPub is not a valid PKIX public key')),
    c("public: authnKeyPub a certificate", public_with(authnKeyPub=pki.certificate_pem("rsa")), bad_public(RSA_AS_KEY)),
    c("public: an expired root CA", root_ca(_expired_root), bad_public(
      'rootCA: Invalid value: "<PEM>": certificate CN=expired-root expired at 2020-01-01T00:00:00Z: the remote must '
      "publish its current root CA")),
    c("public: a root CA valid only from 2099", root_ca(_future_root), bad_public(
      'rootCA: Invalid value: "<PEM>": certificate CN=future-root is not valid before 2099-01-01T00:00:00Z and no '
      "certificate in rootCA is valid now: the remote must publish the root CA it signs with today (beside its next "
      "one)")),
    c("public: a root CA that is no CA", root_ca(_leaf_root),
      bad_public('rootCA: Invalid value: "<PEM>": certificate is not a CA (basicConstraints CA:FALSE)')),
    c("public: rootCA not PEM", public_with(rootCA="not a certificate"),
      bad_public('rootCA: Invalid value: "<PEM>": must be a PEM X.509 certificate')),
    c("public: rootCA empty", public_with(rootCA=""), bad_public("rootCA: Required value: must be a non-empty string")),
    c("public: duplicate keys, the last one wins", public_bytes(b'{"clusterUUID": "a", "clusterUUID": "b"}'),
      bad_public("authnKeyPub: Required value: must be a non-empty string; rootCA: Required value: must be a "
                 "non-empty string")),
    c("public: HTTP 500", http(PUBLIC, behave.respond(b"oops", status=500, content_type="text/plain")),
      status("public", 500)),
    c("public: HTTP 404", http(PUBLIC, behave.respond(b"404 page not found", status=404)), status("public", 404)),
    c("public: 302 to cloud metadata, not followed", http(PUBLIC, behave.respond(b"", status=302, headers=(
      ("Location", "http://169.254.169.254/latest/meta-data/"),))), status("public", 302)),
    c("public: 301 to itself, not followed", http(PUBLIC, behave.respond(b"", status=301, headers=(
      ("Location", "/metadata/public/public.json"),))), status("public", 301)),
    c("public: status line at 2 bytes a second", http(PUBLIC, behave.drip(b"HTTP/1.1 200 OK\r\n" * 10)),
      deadline("public")),
    c("public: headers at 2 bytes a second", http(PUBLIC, behave.drip(b"X-Slow: " + b"a" * 100 + b"\r\n",
      prefix=b"HTTP/1.1 200 OK\r\n")), deadline("public")),
    c("public: body at 2 bytes a second", http(PUBLIC, behave.drip(b'{"clusterUUID": "' + b"a" * 200,
      prefix=b"HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n")), deadline("public")),
    c("public: 10,000 interim 100 Continue", http(PUBLIC, behave.raw(b"HTTP/1.1 100 Continue\r\n\r\n" * 10_000)),
      fetch_failed("public", "Remote end closed connection without response")),
    c("public: body cut short", http(PUBLIC, behave.raw(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{}")),
      fetch_failed("public", "the connection closed after 2 of 1000 bytes")),
    c("public: closed before the status line", http(PUBLIC, behave.raw(b"")),
      fetch_failed("public", "Remote end closed connection without response")),
    c("public: not HTTP", http(PUBLIC, behave.raw(b"SSH-2.0-OpenSSH_9.6\r\n")),
      fetch_failed("public", "SSH-2.0-OpenSSH_9.6??")),
    c("public: broken chunking", http(PUBLIC, behave.chunked([b"{}"], terminator=b"zz\r\n")),
      fetch_failed("public", "IncompleteRead(0 bytes read)")),
    c("public: 200 headers", http(PUBLIC, behave.raw(b"HTTP/1.1 200 OK\r\n"
      + b"".join(b"X-%d: 1\r\n" % n for n in range(200)) + b"\r\n")),
      fetch_failed("public", "got more than 100 headers")),
    c("public: a header of 100 KB", http(PUBLIC, behave.raw(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 100_000
      + b"\r\n\r\n")), fetch_failed("public", "got more than 65536 bytes when reading header line")),
    # Deckhouse serves its documents as text/plain: the content type is not what makes them usable.
    c("public: served as image/png", served_as(PUBLIC, "image/png"),
      {"ok": True, "condition": P, "status": "True", "reason": conditions.SUCCEEDED,
       "message": conditions.PUBLIC_SUCCEEDED_MESSAGE, "imported": ALL}),
]

PRIVATE_CASES: list[Any] = [
    c("private: 100,000 deep", private_bytes(DEEP),
      bad_private_json("nested deeper than the limit of 32 levels at line 1 column 33 (char 32)")),
    c("private: a 5,000-digit number", private_bytes(b'{"ingressGateways": ' + HUGE_NUMBER + b"}"),
      bad_private_json("number 11111111111111111111... has 5000 characters, more than the limit of 40")),
    c("private: NaN port", private_with(ingressGateways=[{"address": "10.0.0.10", "port": float("nan")}]),
      bad_private_json("NaN is not a JSON number (only finite numbers are)")),
    c("private: 30,000 invalid services", private_bytes(_many_invalid_services(30_000)),
      bad_private_json("array at publicServices has 30000 members, more than the limit of 20000")),
    c("private: 5 MiB", http(PRIVATE, behave.respond(_big_document(5 << 20))), too_big("private")),
    c("private: HTML", private_bytes(b"<html></html>"), bad_private_json(NOT_JSON)),
    c("private: a JSON array", private_bytes(b"[]"), bad_private('Invalid value: "array": must be a JSON object')),
    c("private: publicServices a string", private_with(publicServices="all"),
      bad_private('publicServices: Invalid value: "string": must be a list')),
    c("private: publicServices missing", private_with(publicServices=None),
      bad_private("publicServices: Required value: must be present (an empty list is allowed)")),
    c("private: ingressGateways missing", private_with(ingressGateways=None),
      bad_private("ingressGateways: Required value: must be present (an empty list is allowed)")),
    c("private: 5,000 gateways", private_with(ingressGateways=[{"address": f"10.1.{n // 250}.{n % 250 + 1}",
      "port": 15443} for n in range(5000)]),
      bad_private('ingressGateways: Invalid value: "array": has 5000 gateways; a ServiceEntry holds at most 4096 '
                  "endpoints")),
    c("private: no ingress gateway", gateways(), {"condition": Q, "reason": conditions.NO_INGRESS_GATEWAYS,
      "message": f"the remote publishes no ingress gateway, so none of its services can be reached; {KEPT}"}),
    c("private: gateway 127.0.0.1", gateways({"address": "127.0.0.1", "port": 15443}),
      forbidden_gateway("127.0.0.1", LOOPBACK)),
    c("private: gateway 169.254.169.254", gateways({"address": "169.254.169.254", "port": 80}),
      forbidden_gateway("169.254.169.254", LINK_LOCAL)),
    c("private: gateway 0.0.0.0", gateways({"address": "0.0.0.0", "port": 15443}),  # noqa: S104
      forbidden_gateway("0.0.0.0", "is an unspecified address: it would point into this cluster")),  # noqa: S104
    c("private: gateway 224.0.0.1", gateways({"address": "224.0.0.1", "port": 15443}),
      forbidden_gateway("224.0.0.1", "is a multicast address, not a gateway")),
    c("private: gateway ::1", gateways({"address": "::1", "port": 15443}), forbidden_gateway("::1", LOOPBACK)),
    c("private: gateway fe80::1", gateways({"address": "fe80::1", "port": 15443}),
      forbidden_gateway("fe80::1", LINK_LOCAL)),
    c("private: gateway ::ffff:127.0.0.1", gateways({"address": "::ffff:127.0.0.1", "port": 15443}),
      forbidden_gateway("::ffff:127.0.0.1", LOOPBACK)),
    c("private: gateway localhost", gateways({"address": "localhost", "port": 15443}),
      forbidden_gateway("localhost", "is a loopback name (RFC 6761): it would point into this cluster")),
    c("private: gateway in this cluster's domain", gateways({"address": "gw.istio-system.svc.cluster-a.local",
      "port": 15443}), forbidden_gateway("gw.istio-system.svc.cluster-a.local",
                                         "is under cluster-a.local, a domain of this cluster")),
    c("private: gateway with CRLF", gateways({"address": "10.0.0.10\r\nInjected: 1", "port": 15443}),
      no_gateway('1 InvalidAddress): 10.0.0.10??Injected: 1: ingressGateways[0].address: Invalid value: '
                 '"10.0.0.10\\r\\nInjected: 1": must be an IP address or a DNS name')),
    c("private: gateway port 0", gateways({"address": "10.0.0.10", "port": 0}), gateway_port("0")),
    c("private: gateway port 70000", gateways({"address": "10.0.0.10", "port": 70_000}), gateway_port("70000")),
    c("private: gateway port a string", gateways({"address": "10.0.0.10", "port": "15443"}),
      gateway_port('"15443"', "must be an integer from 1 to 65535")),
    c("private: cloud metadata beside a good gateway", gateways({"address": "169.254.169.254", "port": 80},
      GATEWAYS[0]), imported(skipped="1 ForbiddenAddress): 169.254.169.254: ingressGateways[0].address: Forbidden: "
                             f"169.254.169.254 {LINK_LOCAL}")),
    # The remote withdrew every host of its trust domain: a valid document, so their objects go.
    c("private: hosts outside the trust domain", services(*OUTSIDE), refused_hosts(
      "Imported 0 services, skipped 3, denied 0. Every host the remote offers is outside spec.trustDomain "
      "cluster-b.local: its hosts are under cluster-c.local, so spec.trustDomain probably does not match the "
      "remote's real trust domain (create an IstioFederation with the right trustDomain; it is immutable). Refused: "
      "bar.xyz.svc.cluster-c.local, baz.xyz.svc.cluster-c.local, qux.shop.svc.cluster-c.local.",
      reason=conditions.TRUST_DOMAIN_MISMATCH, hosts=())),
    c("private: a host in this cluster's trust domain", hostname("api.default.svc.cluster-a.local"),
      refused_hosts("Imported 3 services, skipped 1, denied 0. Refused: api.default.svc.cluster-a.local.")),
    c("private: a wildcard host", hostname("*.xyz.svc.cluster-b.local"),
      host_skipped("*.xyz.svc.cluster-b.local", "*.xyz.svc.cluster-b.local")),
    c("private: the trust domain itself", hostname("cluster-b.local"), imported(hosts=ALL | {"cluster-b.local"})),
    c("private: an upper-case host, imported in lower case", hostname("BAR2.xyz.svc.cluster-b.local"),
      imported(hosts=ALL | {"bar2.xyz.svc.cluster-b.local"})),
    c("private: a host with a NUL", hostname("a\x00.xyz.svc.cluster-b.local"),
      host_skipped("a?.xyz.svc.cluster-b.local", "a\\u0000.xyz.svc.cluster-b.local")),
    c("private: a 60,000-character host", hostname("a" * 60_000 + ".cluster-b.local"),
      host_skipped("a" * 128 + "...", "a" * 64 + "...")),
    c("private: a host whose name once collided", hostname("bar.xyz-svc.cluster-b.local"),
      imported(hosts=ALL | {"bar.xyz-svc.cluster-b.local"})),
    c("private: port name ../x", port_named("../x"), bad_port_name("../x")),
    c("private: port name a/b", port_named("a/b"), bad_port_name("a/b")),
    c("private: port name with NUL", port_named("x\x00"), bad_port_name("x\\u0000")),
    c("private: port name UPPER", port_named("UPPER"), bad_port_name("UPPER")),
    c("private: port name of 30 characters", port_named("a" * 30), bad_port_name("a" * 30)),
    c("private: port name with a header injection", port_named("http\nInjected: 1"),
      bad_port_name("http\\nInjected: 1")),
    c("private: port number 0", port_number(0), port_skipped("0", "InvalidPortNumber",
      "port: Invalid value: 0: must be from 1 to 65535")),
    c("private: port number 65536", port_number(65_536), port_skipped("65536", "InvalidPortNumber",
      "port: Invalid value: 65536: must be from 1 to 65535")),
    c("private: port number a string", port_number("80"), port_skipped("80", "InvalidPortNumber",
      'port: Invalid value: "80": must be an integer from 1 to 65535')),
    c("private: port number 1.5", port_number(1.5), port_skipped("1.5", "InvalidPortNumber",
      "port: Invalid value: 1.5: must be an integer from 1 to 65535")),
    # A service published in a form that is refused is no longer offered: its objects go, and the
    # condition names it (the stale policy covers failed syncs, not refused entries).
    c("private: 300 ports", services({"hostname": HOSTS[0], "ports": [{"name": f"p{n}", "port": 1000 + n}
      for n in range(300)]}, *SERVICES[1:]), imported(skipped=f"1 TooManyPorts): {HOSTS[0]}: publicServices[0].ports: "
                                                      'Invalid value: "array": has 300 ports; a ServiceEntry holds at '
                                                      "most 256", hosts=HOSTS[1:])),
    c("private: a UDP port", services({"hostname": HOSTS[0], "ports": [{"name": "http", "port": 8080},
      {"name": "dns", "port": 53, "protocol": "UDP"}]}, *SERVICES[1:]), port_skipped("53", "UnsupportedProtocol",
      'protocol: Invalid value: "UDP": UDP cannot cross the ingress gateway, which forwards TCP only')),
    c("private: the same host twice", services(*SERVICES, SERVICES[0]), refused_hosts(
      f"Imported 3 services, skipped 1, denied 0. Refused: {HOSTS[0]}.")),
    c("private: the same host twice, other ports second", services(*SERVICES, {"hostname": HOSTS[0], "ports": [
      {"name": "ssh", "port": 22}]}), refused_hosts(f"Imported 3 services, skipped 1, denied 0. Refused: {HOSTS[0]}.")),
    c("private: the same port name twice", services({"hostname": HOSTS[0], "ports": [
      {"name": "http", "port": 8080}, {"name": "http", "port": 8081}]}, *SERVICES[1:]), refused_hosts(
      f"Imported 2 services, skipped 1, denied 0. Refused: {HOSTS[0]}.", hosts=HOSTS[1:])),
    c("private: HTTP 401", http(PRIVATE, behave.respond(b"Authentication error: JWT token expired\n", status=401,
      content_type="text/plain")), {"condition": Q, "reason": conditions.NON_OK_RESPONSE, "message": "HTTP status 401 "
      "when fetching private metadata: the remote refused the token's validity period: check that the clocks of "
      "both clusters are synchronized (the remote said: Authentication error: JWT token expired)"}),
    c("private: HTTP 500", http(PRIVATE, behave.respond(b"oops", status=500)), status("private", 500)),
    c("private: 307 elsewhere, not followed", http(PRIVATE, behave.respond(b"", status=307, headers=(
      ("Location", "https://127.0.0.1:1/steal"),))), status("private", 307)),
    c("private: status line at 2 bytes a second", http(PRIVATE, behave.drip(b"HTTP/1.1 200 OK\r\n" * 10)),
      deadline("private")),
    c("private: body cut short", http(PRIVATE, behave.raw(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{")),
      fetch_failed("private", "the connection closed after 1 of 500 bytes")),
    c("private: served as text/html", served_as(PRIVATE, "text/html"), imported()),
    # A valid document that no longer offers two services: their objects go, legitimately.
    c("private: two services withdrawn", services(SERVICES[0]), imported(hosts=(HOSTS[0],))),
]

CASES: list[Any] = [*PUBLIC_CASES, *PRIVATE_CASES]
