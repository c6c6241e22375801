"""The servers under attack, started once per session: a real ``webhook serve`` and ``exporter serve``.

Both run as shipped (gunicorn with the project's worker, TLS from trustme, the default limits), with
one worker, the harshest case: one event loop must answer everything.  Only the keep-alive timeout
(to the header timeout's 10 s) and the request timeout (30 s to 15 s) are shortened, so that the
slow-client batch, which waits each of them out, ends within about 20 s.

A :class:`Target` sends raw bytes on a new TLS connection and reads the answers (bounded), probes
with a healthy request, and counts what a case leaves behind: 5xx answers, tracebacks in the log
and objects the server no longer knows.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trustme
import yaml

from federation import keys, tokens
from tests.exporter.cluster import REMOTE_KEY, make_tls, serve_args, world_objects
from tests.exporter.fixtures import CLUSTER_UUID, REMOTE_UUID, root_ca_pem, write_state
from tests.hostile.cases import Case, NoAnswer, SlowCase
from tests.hostile.summary import SUMMARY
from tests.reviews import admission_review, federation, service_entry
from tests.serving import clients as wire
from tests.support import ServerProcess, free_port
from tests.webhook.tls import issue

if TYPE_CHECKING:
    from tests.hostile.slowbatch import SlowBatch

# A healthy request must complete within this (generous: CI shares 2 cores); its latency against
# the issue's 1 s goal is recorded, not asserted (see summary.py).
HEALTHY_TIMEOUT = 10.0
# Every answer a case waits for: longer than any deadline of the servers below (10 s).
ANSWER_TIMEOUT = 25.0
LIMITS = ["--keepalive-timeout", "10", "--request-timeout", "15"]
PUBLIC = "/metadata/public/public.json"
SPIFFE = "/metadata/public/spiffe-bundle-endpoint"
PRIVATE = "/metadata/private/federation.json"
HEALTHY_UID = "healthy-probe"


@dataclass(frozen=True)
class Exchange:
    """What came back on one connection: the answers in order, and whether the server then closed it."""

    answers: tuple[wire.Answer, ...]
    closed: bool | None  # None: not waited for

    @property
    def first(self) -> wire.Answer | None:
        return self.answers[0] if self.answers else None


@dataclass
class Target:
    name: str
    port: int
    server: ServerProcess
    context: ssl.SSLContext
    state: Path
    baseline: dict[str, Any] = field(default_factory=dict)
    _log_seen: int = 0

    # -- connections -------------------------------------------------------------------------

    def connect(self, *, tls: bool = True, timeout: float = 10.0) -> socket.socket:
        return wire.connect(self.port, self.context if tls else None, timeout=timeout)

    def exchange(
        self,
        request: bytes,
        *,
        answers: int = 1,
        head: bool = False,
        tls: bool = True,
        wait_close: bool = False,
        half_close: bool = False,
    ) -> Exchange:
        """Send ``request`` on a new connection and read up to ``answers`` answers (all bounded)."""
        plain = socket.create_connection(("127.0.0.1", self.port), timeout=10.0)
        # A duplicate of the TCP socket shuts the sending side down under TLS (a FIN without
        # close_notify: what a client that dies mid-request leaves).
        tcp = plain.dup()
        try:
            sock = self.context.wrap_socket(plain, server_hostname="127.0.0.1") if tls else plain
        except BaseException:
            plain.close()
            tcp.close()
            raise
        try:
            with contextlib.suppress(OSError):
                sock.sendall(request)
                if half_close:
                    tcp.shutdown(socket.SHUT_WR)
            reader = wire.Reader(sock)
            found: list[wire.Answer] = []
            for _ in range(answers):
                answer = reader.next_answer(timeout=ANSWER_TIMEOUT, head=head)
                if answer is None:
                    break
                found.append(answer)
            closed = None
            if wait_close:
                closed = reader.eof or wire.closed_by_server(sock, timeout=ANSWER_TIMEOUT)
        finally:
            sock.close()
            tcp.close()
        self.count_errors(found)
        return Exchange(tuple(found), closed)

    def count_errors(self, answers: list[wire.Answer] | tuple[wire.Answer, ...]) -> None:
        for answer in answers:
            if answer.status >= 500 or _review_code(answer) >= 500:
                SUMMARY.server_error(self.name)

    # -- the log -----------------------------------------------------------------------------

    def log(self) -> str:
        return self.server.log()

    def new_log(self) -> str:
        """The log written since the last call."""
        text = self.log()
        fresh, self._log_seen = text[self._log_seen :], len(text)
        return fresh

    # -- healthy requests --------------------------------------------------------------------

    def probe(self, during: str = "") -> float:
        """One healthy request on a new connection; asserts its answer, records and returns its latency.

        ``during`` says what else was going on, for the summary's slowest probe.
        """
        started = time.perf_counter()
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context,
                                                 timeout=HEALTHY_TIMEOUT)  # fmt: skip
        try:
            if self.name == "webhook":
                connection.request("POST", "/validate?timeout=10s", body=HEALTHY_REVIEW,
                                   headers={"Content-Type": "application/json"})  # fmt: skip
            else:
                connection.request("GET", PUBLIC)
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        elapsed = time.perf_counter() - started
        if response.status >= 500:
            SUMMARY.server_error(self.name)
        assert response.status == 200, (response.status, body[:300])
        if self.name == "webhook":
            answer = json.loads(body)["response"]
            assert (answer["uid"], answer["allowed"]) == (HEALTHY_UID, True), answer
        else:
            assert body == self.baseline["public"], body[:300]
        SUMMARY.probe(self.name, elapsed, during)
        return elapsed

    # -- what the server knows ---------------------------------------------------------------

    def lost_objects(self) -> int:
        """Objects the server knew before the cases and no longer serves (also recorded)."""
        current = self.inventory()
        lost = 0
        for key, before in self.baseline["inventory"].items():
            now = current.get(key)
            if isinstance(before, int):
                lost += max(0, before - int(now or 0))
            elif isinstance(before, (set, frozenset)):
                lost += len(before - (now or set()))
            elif now != before:
                lost += 1
        if lost:
            SUMMARY.lost(self.name, lost)
        return lost

    def inventory(self) -> dict[str, Any]:
        """What the server holds: files of the state directory (by digest) and what it serves from them."""
        found: dict[str, Any] = {"files": frozenset(_digests(self.state))}
        if self.name == "webhook":
            found.update(self._get_json("/readyz")["cached"])
        else:
            public = self._get("/metadata/public/public.json")
            found["public"] = public
            private = json.loads(self._get(PRIVATE, Authorization=f"Bearer {healthy_token()}"))
            found["services"] = frozenset(service["hostname"] for service in private["publicServices"])
            found["gateways"] = frozenset(json.dumps(gateway) for gateway in private["ingressGateways"])
        return found

    def _get(self, path: str, **headers: str) -> bytes:
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context,
                                                 timeout=HEALTHY_TIMEOUT)  # fmt: skip
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        assert response.status == 200, (path, response.status, body[:300])
        return body

    def _get_json(self, path: str) -> Any:
        return json.loads(self._get(path))


def _review_code(answer: wire.Answer) -> int:
    """The Status code inside an AdmissionReview answer (500: the webhook failed closed on a bug)."""
    if answer.status != 200 or b'"response"' not in answer.body[:200_000]:
        return 0
    with contextlib.suppress(ValueError):
        status = json.loads(answer.body).get("response", {}).get("status") or {}
        code = status.get("code") if isinstance(status, dict) else None
        return code if isinstance(code, int) else 0
    return 0


def _digests(root: Path) -> set[str]:
    return {
        f"{path.relative_to(root)}:{hashlib.sha256(path.read_bytes()).hexdigest()}"
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }


def healthy_token() -> str:
    return tokens.issue(REMOTE_KEY, subject=REMOTE_UUID, audience=CLUSTER_UUID, now=int(time.time()))


HEALTHY_REVIEW = json.dumps(
    admission_review(service_entry("healthy", "probe", "healthy.example.com"), uid=HEALTHY_UID)
).encode()


def _finish(target: Target) -> None:
    """Count the tracebacks the server logged over the session (after it stopped)."""
    SUMMARY.tracebacks(target.name, target.log().count("Traceback"))


# -- the webhook ---------------------------------------------------------------------------------

WEBHOOK_OBJECTS = [
    federation("cluster-b", "cluster-b.local"),
    federation("cluster-c", "cluster-c.local"),
    service_entry("web", "shop", "web.example.com"),
    service_entry("db", "shop", "db.example.com"),
    service_entry("api", "billing", "api.example.com"),
]


@contextlib.contextmanager
def webhook(root: Path) -> Iterator[Target]:
    state = root / "state"
    for number, obj in enumerate(WEBHOOK_OBJECTS):
        path = state / f"{number:02d}-{obj['kind'].lower()}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(obj))
    tls_dir = root / "tls"
    tls_dir.mkdir()
    ca = trustme.CA()
    issue(ca, tls_dir)
    context = ssl.create_default_context()
    ca.configure_trust(context)
    port = free_port()
    args = ["webhook", "serve", "--tls-cert-file", str(tls_dir / "tls.crt"),
            "--tls-private-key-file", str(tls_dir / "tls.key"), "--host", "127.0.0.1", "--port", str(port),
            "--local-trust-domain", "cluster-a.local", "--state", str(state), "--workers", "1", *LIMITS]  # fmt: skip
    server = ServerProcess(args, log_path=root / "webhook.log")
    with server:
        server.wait_http(f"https://127.0.0.1:{port}/readyz", context=context, timeout=60)
        target = Target("webhook", port, server, context, state)
        target.baseline["inventory"] = target.inventory()
        assert target.baseline["inventory"]["serviceentries"] == 3, target.baseline
        target.new_log()
        yield target
    _finish(target)


# -- the exporter --------------------------------------------------------------------------------


@contextlib.contextmanager
def exporter(root: Path) -> Iterator[Target]:
    state = root / "state"
    state.mkdir()
    write_state(state, world_objects(keys.Keypair.generate(), root_ca_pem()))
    certs = make_tls(root)
    context = ssl.create_default_context(cafile=str(certs.ca_file))
    port = free_port()
    server = ServerProcess(serve_args(port, "--state", str(state), tls=certs, extra=tuple(LIMITS)),
                           log_path=root / "exporter.log")  # fmt: skip
    with server:
        server.wait_http(f"https://127.0.0.1:{port}/readyz", context=context, timeout=60)
        target = Target("exporter", port, server, context, state)
        target.baseline["inventory"] = target.inventory()
        target.baseline["public"] = target.baseline["inventory"]["public"]
        assert target.baseline["inventory"]["services"], target.baseline
        target.new_log()
        yield target
    _finish(target)


def during(target: Target, action: Callable[[], Any], label: str = "") -> tuple[Any, float]:
    """Run ``action`` (a hostile exchange) with a healthy probe sent while it is under way."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(action)
        time.sleep(0.005)  # let the hostile request reach the server first
        latency = target.probe(f"while {label!r} was served")
        result = future.result(timeout=ANSWER_TIMEOUT * 2)
    return result, latency


# -- one case, start to end ------------------------------------------------------------------------


def check_case(target: Target, case: Case) -> None:
    """Send ``case`` with a healthy probe under way; check its answer, a probe after it, the objects, the log."""

    def send() -> Exchange:
        return target.exchange(case.request(), answers=case.answers, head=case.head, tls=case.tls,
                               wait_close=case.closes is not None, half_close=case.half_close)  # fmt: skip

    exchange, _ = during(target, send, case.name)
    case.expect.check(exchange.first)
    if not isinstance(case.expect, NoAnswer):
        assert len(exchange.answers) == case.answers, exchange.answers
        for answer in exchange.answers[1:]:
            (case.rest or case.expect).check(answer)
    if case.closes is not None:
        assert exchange.closed is case.closes
    target.probe(f"after {case.name!r}")
    assert target.lost_objects() == 0
    log = target.new_log()
    assert "Traceback" not in log, log
    assert case.log in log, log


def check_slow(target: Target, batch: SlowBatch, case: SlowCase) -> None:
    """What slow client ``case`` of the batch saw; probes were answered while it held its connection."""
    observed = batch.result(case.name)
    case.expect.check(observed.answer)
    assert observed.closed is case.closes, observed
    if case.check is not None:
        case.check(observed)
    assert case.log in target.log()
    assert batch.probes, "no healthy request was probed while the slow clients held their connections"
    assert batch.probe_failures == []
    target.probe(f"after slow client {case.name!r}")
    assert target.lost_objects() == 0
    assert "Traceback" not in target.log()
