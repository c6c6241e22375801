"""Serving benchmark: which worker model keeps admission answering while clients misbehave.

    .venv/bin/python -m tests.bench.serving [MODEL ...]     (default: every model below)

Prints figures and asserts nothing.  For each model it starts the real webhook app (state
directory with 100 ServiceEntries, TLS from a trustme CA) on loopback, then:

1. the latency of a healthy ``/validate`` request, each on a new TLS connection as a cold
   apiserver client makes it, with nothing else going on, and while the server holds:
   100 idle TCP connections (no ClientHello); 100 idle TLS connections (handshake done, no
   request); 100 connections sending their request head at 1 byte/s; 20 requests whose body is
   shorter than their Content-Length; 20 connections sending bytes that are not HTTP (no CRLF).
   A probe waits at most 5 s; ``starved`` means it got no answer in that time.
2. throughput: 8 client threads, each on a kept-alive TLS connection, for 5 s, against the
   webhook and against a null handler (a Flask route returning fixed bytes) on the same stack.

Models (all under gunicorn 27):
- ``gthread``: what the project ran before: gthread, 1 worker x 8 threads, keepalive 2 s.
- ``gevent``: gunicorn's stock gevent worker (monkey-patched), 1 worker.
- ``asgi``: gunicorn's native asyncio worker, Flask behind a2wsgi (10 threads), 1 worker.
  Needs ``pip install a2wsgi``; skipped when it is not installed.
- ``bounded``: ``serving.worker.BoundedWorker`` (gevent, not patched, deadlines), 1 worker.
- ``bounded-2w``: the same with 2 workers.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import trustme
import yaml

from tests.bench import stop_cleanly_on_sigterm
from tests.reviews import admission_review, federation, service_entry
from tests.support import REPO_ROOT, free_port, wait_until

MODELS = ("gthread", "gevent", "asgi", "bounded", "bounded-2w")
PROBE_TIMEOUT = 5.0
PROBES = 5
SERVICE_NAME = "127.0.0.1"


# -- the server side (run in a subprocess: python -m tests.bench.serving --serve ...) ----------


def _null_app() -> Any:
    from flask import Flask, Response

    app = Flask("null")
    body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {}}).encode()

    @app.post("/validate")
    def validate() -> Response:
        return Response(body, mimetype="application/json")

    @app.get("/readyz")
    def readyz() -> Response:
        return Response(b"{}", mimetype="application/json")

    return app


def _webhook_app(state: Path) -> Any:
    from objectstore.factory import StoreSource
    from webhook.app import create_app
    from webhook.settings import WebhookSettings

    return create_app(WebhookSettings(local_trust_domain="cluster-a.local", source=StoreSource(state=state)))


def _serve(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True, choices=MODELS)
    parser.add_argument("--app", required=True, choices=("webhook", "null"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--state", type=Path, required=True)
    args = parser.parse_args(argv)

    from serving import gunicorn as serving_gunicorn

    def factory() -> Any:
        app = _null_app() if args.app == "null" else _webhook_app(args.state)
        if args.model == "asgi":
            from a2wsgi import WSGIMiddleware

            return WSGIMiddleware(app)
        return app

    tls = {"certfile": args.cert, "keyfile": args.key}
    common = {"bind": [f"127.0.0.1:{args.port}"], "errorlog": "-", "loglevel": "warning", "preload_app": False}
    settings: dict[str, Any]
    if args.model == "gthread":
        settings = {**common, **tls, "worker_class": "gthread", "workers": 1, "threads": 8, "keepalive": 2}
    elif args.model == "gevent":
        settings = {**common, **tls, "worker_class": "gevent", "workers": 1, "keepalive": 2}
    elif args.model == "asgi":
        settings = {**common, **tls, "worker_class": "asgi", "workers": 1, "keepalive": 2}
    else:
        options = serving_gunicorn.ServerOptions(
            host="127.0.0.1",
            port=args.port,
            tls_cert_file=args.cert,
            tls_key_file=args.key,
            workers=2 if args.model == "bounded-2w" else 1,
        )
        settings = {**serving_gunicorn.settings(options), "loglevel": "warning"}
    serving_gunicorn._Application(factory, settings).run()


# -- the client side ---------------------------------------------------------------------------


class Server:
    def __init__(self, model: str, app: str, work: Path) -> None:
        self.port = free_port()
        self.log_path = work / f"{model}-{app}.log"
        command = [sys.executable, "-m", "tests.bench.serving", "--serve", "--model", model, "--app", app,
                   "--port", str(self.port), "--cert", str(work / "tls.crt"), "--key", str(work / "tls.key"),
                   "--state", str(work / "state")]  # fmt: skip
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()


class Client:
    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        self.port = port
        self.context = context
        review = admission_review(service_entry("web", "shop", "web.example.com"))
        self.body = json.dumps(review).encode()

    def probe(self) -> float | None:
        """One healthy review on a new TLS connection: its latency, or None without an answer."""
        started = time.perf_counter()
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=PROBE_TIMEOUT)
        try:
            connection.request("POST", "/validate", body=self.body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                return None
        except (OSError, http.client.HTTPException):
            return None
        finally:
            connection.close()
        return time.perf_counter() - started

    def ready(self) -> bool:
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=2)
        try:
            connection.request("GET", "/readyz")
            return connection.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()


class Hostile:
    """Connections held open against the server; ``close`` releases them all."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.opened = 0
        self.started = time.monotonic()

    def closed_by_server(self) -> int:
        """How many of the held connections the server has answered or closed by now."""
        closed = 0
        for sock in self.sockets:
            try:
                sock.setblocking(False)
                sock.recv(1)  # an answer, or b"" at the end of the connection
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                continue  # still open, nothing said
            except OSError:
                pass  # reset: closed
            closed += 1
        return closed

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=5)
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()


def _open_many(count: int, opener: Callable[[], socket.socket | None]) -> Hostile:
    hostile = Hostile()
    with ThreadPoolExecutor(max_workers=20) as pool:
        for sock in pool.map(lambda _: opener(), range(count)):
            if sock is not None:
                hostile.sockets.append(sock)
    hostile.opened = len(hostile.sockets)
    return hostile


def _tcp(port: int) -> socket.socket | None:
    try:
        return socket.create_connection(("127.0.0.1", port), timeout=3)
    except OSError:
        return None


def _tls(port: int, context: ssl.SSLContext) -> socket.socket | None:
    raw = _tcp(port)
    if raw is None:
        return None
    try:
        return context.wrap_socket(raw, server_hostname=SERVICE_NAME)
    except OSError:
        raw.close()
        return None


def idle_tcp(port: int, context: ssl.SSLContext) -> Hostile:
    return _open_many(100, lambda: _tcp(port))


def idle_tls(port: int, context: ssl.SSLContext) -> Hostile:
    return _open_many(100, lambda: _tls(port, context))


def slow_headers(port: int, context: ssl.SSLContext) -> Hostile:
    hostile = _open_many(100, lambda: _tls(port, context))
    head = b"POST /validate HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\n" + b"X-Slow: " + b"a" * 200

    def trickle() -> None:
        for position in range(len(head)):  # bounded: one byte a second, at most len(head) seconds
            for sock in hostile.sockets:
                with contextlib.suppress(OSError):
                    sock.sendall(head[position : position + 1])
            if hostile.stop.wait(1.0):
                return

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    hostile.threads.append(thread)
    return hostile


def short_bodies(port: int, context: ssl.SSLContext) -> Hostile:
    def opener() -> socket.socket | None:
        sock = _tls(port, context)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.sendall(b"POST /validate HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 100000\r\n\r\n{\"apiVersion\": ")  # fmt: skip
        return sock

    return _open_many(20, opener)


def garbage(port: int, context: ssl.SSLContext) -> Hostile:
    def opener() -> socket.socket | None:
        sock = _tls(port, context)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.sendall(os.urandom(4096).replace(b"\n", b"x"))
        return sock

    return _open_many(20, opener)


SCENARIOS: list[tuple[str, Callable[[int, ssl.SSLContext], Hostile]]] = [
    ("100 idle TCP", idle_tcp),
    ("100 idle TLS", idle_tls),
    ("100 slow headers", slow_headers),
    ("20 short bodies", short_bodies),
    ("20 garbage", garbage),
]


def probes(client: Client) -> str:
    samples: list[float] = []
    failures = 0
    for _ in range(PROBES):
        latency = client.probe()
        if latency is None:
            failures += 1
            if failures >= 2:
                break
        else:
            samples.append(latency)
    if not samples:
        return f"starved ({failures}/{failures} no answer in {PROBE_TIMEOUT:g} s)"
    text = f"max {max(samples) * 1e3:7.1f} ms"
    if failures:
        text += f", {failures} starved"
    return text


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of ``pid`` and its children (gunicorn's master and workers)."""
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    pids.append(int(entry.name))
    total = 0
    for one in pids:
        with contextlib.suppress(OSError):
            fields = (Path("/proc") / str(one) / "stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def measured(client: Client, pid: int, *, clients: int = 8, seconds: float = 3.0) -> tuple[float, float, float, float]:
    """req/s, p50 ms, p99 ms and the server's CPU ms per request."""
    before = _cpu_seconds(pid)
    rate, p50, p99 = throughput(client, clients=clients, seconds=seconds)
    cpu = _cpu_seconds(pid) - before
    return rate, p50, p99, (cpu / (rate * seconds) * 1e3) if rate else 0.0


def throughput(client: Client, *, clients: int = 8, seconds: float = 5.0) -> tuple[float, float, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    failures = [0]

    def worker() -> None:
        local: list[float] = []
        connection = http.client.HTTPSConnection("127.0.0.1", client.port, context=client.context, timeout=10)
        try:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                try:
                    connection.request("POST", "/validate", body=client.body,
                                       headers={"Content-Type": "application/json"})  # fmt: skip
                    connection.getresponse().read()
                except (OSError, http.client.HTTPException):
                    failures[0] += 1
                    connection.close()
                    continue
                local.append(time.perf_counter() - started)
        finally:
            connection.close()
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 30)
    if not latencies:
        return 0.0, 0.0, 0.0
    ordered = sorted(latencies)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return len(latencies) / seconds, p50 * 1e3, p99 * 1e3


@contextlib.contextmanager
def running(model: str, app: str, work: Path, context: ssl.SSLContext) -> Iterator[tuple[Client, int]]:
    server = Server(model, app, work)
    try:
        client = Client(server.port, context)
        if not wait_until(client.ready, timeout=60, interval=0.2):
            raise RuntimeError(f"{model} {app} never became ready:\n{server.log_path.read_text()}")
        yield client, server.process.pid
    finally:
        server.stop()


def _median(rows: list[tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    columns = list(zip(*rows, strict=True))
    middle = len(rows) // 2
    picked = [sorted(column)[middle] for column in columns]
    return picked[0], picked[1], picked[2], picked[3]


def bench(model: str, work: Path, context: ssl.SSLContext, *, release_after: float, rounds: int) -> None:
    print(f"\n== {model}")
    with running(model, "webhook", work, context) as (client, pid), running(model, "null", work, context) as null:
        print(f"  {'nothing else':<20} {probes(client)}")
        for name, make in SCENARIOS:
            hostile = make(client.port, context)
            time.sleep(1.0)
            result = probes(client)
            released = ""
            if release_after:
                time.sleep(max(0.0, hostile.started + release_after - time.monotonic()))
                released = f", {hostile.closed_by_server()} closed by the server after {release_after:g} s"
            hostile.close()
            print(f"  {name:<20} {result}   ({hostile.opened} held{released})")
            time.sleep(0.5)
        print(f"  {'after all of them':<20} {probes(client)}")
        # Alternate the two servers, so that load from elsewhere on the machine hits both alike.
        hook_rows, null_rows = [], []
        for _ in range(rounds):
            hook_rows.append(measured(client, pid))
            null_rows.append(measured(null[0], null[1]))
    for name, rows in (("webhook", hook_rows), ("null", null_rows)):
        rate, p50, p99, cpu = _median(rows)
        print(f"  throughput {name:<9} {rate:7.0f} req/s  p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  "
              f"server CPU {cpu:5.2f} ms/req  (median of {rounds})")  # fmt: skip
    hook, null_row = _median(hook_rows), _median(null_rows)
    if null_row[0] and null_row[2]:
        print(f"  webhook/null         {hook[0] / null_row[0]:7.2f} x req/s, p99 {hook[2] / null_row[2]:.2f} x")


def main(argv: list[str]) -> None:
    if argv[:1] == ["--serve"]:
        _serve(argv[1:])
        return
    parser = argparse.ArgumentParser(prog="python -m tests.bench.serving")
    parser.add_argument("models", nargs="*", metavar="MODEL", help=f"default all: {', '.join(MODELS)}")
    parser.add_argument("--release-after", type=float, default=12.0, metavar="SECONDS",
                        help="count the held connections the server closed this long after they opened (0: skip)")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds per server (median shown)")
    args = parser.parse_args(argv)
    models = args.models or list(MODELS)
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        (work / "state").mkdir()
        documents = [service_entry(f"se-{i}", f"ns-{i % 10}", f"host-{i}.example.com") for i in range(100)]
        (work / "state" / "objects.yaml").write_text(yaml.safe_dump_all([federation(), *documents]))
        ca = trustme.CA()
        leaf = ca.issue_cert(SERVICE_NAME)
        leaf.private_key_pem.write_to_path(str(work / "tls.key"))
        leaf.cert_chain_pems[0].write_to_path(str(work / "tls.crt"))
        context = ssl.create_default_context()
        ca.configure_trust(context)
        print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; probe timeout {PROBE_TIMEOUT:g} s")
        for model in models:
            if model == "asgi":
                try:
                    import a2wsgi  # noqa: F401
                except ImportError:
                    print("\n== asgi: skipped (pip install a2wsgi to measure it)")
                    continue
            bench(model, work, context, release_after=args.release_after, rounds=args.rounds)


if __name__ == "__main__":
    stop_cleanly_on_sigterm()
    main(sys.argv[1:])
