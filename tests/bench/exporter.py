"""Benchmark: requests/s of the exporter's documents, against the same stack serving fixed bytes.

    .venv/bin/python -m tests.bench.exporter [--services 5000] [--seconds 5] [--clients 8] [--rounds 3]

Starts the real ``istio-federation exporter serve`` over a state directory holding S public
services, fetches ``federation.json`` once, and starts a second server on the same stack (our
gunicorn worker, as many workers as the exporter: one) whose only route returns those very bytes
with the same headers.  Both are driven by keep-alive clients on threads, with the same token, in
interleaved rounds; the medians and their ratio are printed.  Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from federation import keys, tokens
from tests.bench import stop_cleanly_on_sigterm
from tests.exporter.cluster import REMOTE_KEY, world_objects
from tests.exporter.fixtures import CLUSTER_DOMAIN, CLUSTER_UUID, REMOTE_UUID, root_ca_pem, service, write_state
from tests.support import REPO_ROOT, ServerProcess, free_port, wait_until

PRIVATE_PATH = "/metadata/private/federation.json"
PUBLIC_PATH = "/metadata/public/public.json"


def drive(url: str, headers: dict[str, str], seconds: float, clients: int) -> tuple[float, float, float]:
    """Requests/s, p50 and p99 (ms) of ``clients`` keep-alive clients for ``seconds``."""
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker() -> None:
        local: list[float] = []
        with requests.Session() as session:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                response = session.get(url, headers=headers, timeout=10)
                local.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise RuntimeError(f"{url}: {response.status_code} {response.text[:200]}")
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    ordered = sorted(latencies)
    if not ordered:
        return 0.0, 0.0, 0.0
    return len(ordered) / seconds, ordered[len(ordered) // 2] * 1e3, ordered[int(0.99 * (len(ordered) - 1))] * 1e3


def _serve_bytes(argv: list[str]) -> None:
    """The comparison server: one route, the given bytes and headers, on the exporter's stack."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--body", type=Path, required=True)
    parser.add_argument("--etag", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    from flask import Flask, Response

    from serving import gunicorn

    body = args.body.read_bytes()

    def factory() -> Flask:
        app = Flask("fixed-bytes")

        @app.get(PRIVATE_PATH)
        def fixed() -> Response:
            response = Response(body, status=200, mimetype="application/json")
            response.set_etag(args.etag)
            response.headers["Cache-Control"] = "private, no-cache"
            response.headers["Vary"] = "Authorization"
            return response

        @app.get("/readyz")
        def ready() -> Response:
            return Response(b"{}", mimetype="application/json")

        return app

    gunicorn.run(factory, gunicorn.ServerOptions(host="127.0.0.1", port=args.port, workers=1))


@dataclass
class ExporterFigures:
    services: int
    body_bytes: int
    public: tuple[float, float, float]
    private: tuple[float, float, float]
    fixed: tuple[float, float, float]

    @property
    def ratio(self) -> float:
        return self.private[0] / self.fixed[0] if self.fixed[0] else 0.0


def measure(services: int, *, seconds: float, clients: int, rounds: int) -> ExporterFigures:
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        state = work / "state"
        state.mkdir()
        write_state(state, world_objects(keys.Keypair.generate(), root_ca_pem()))
        write_state(state, [service(f"svc-{n}", f"ns-{n % 10}") for n in range(services)])
        port = free_port()
        command = ["--log-level", "WARNING", "exporter", "serve", "--cluster-uuid", CLUSTER_UUID,
                   "--cluster-domain", CLUSTER_DOMAIN, "--state", str(state), "--host", "127.0.0.1",
                   "--port", str(port)]  # fmt: skip
        with ServerProcess(command, log_path=work / "exporter.log") as server:
            base = f"http://127.0.0.1:{port}"
            server.wait_http(base + "/readyz", timeout=300)
            token = tokens.issue(REMOTE_KEY, subject=REMOTE_UUID, audience=CLUSTER_UUID, now=int(time.time()), ttl=600)
            headers = {"Authorization": f"Bearer {token}"}
            assert wait_until(lambda: requests.get(base + "/readyz", timeout=5).ok, timeout=60)
            first = requests.get(base + PRIVATE_PATH, headers=headers, timeout=30)
            first.raise_for_status()
            (work / "federation.json").write_bytes(first.content)
            fixed_port = free_port()
            fixed_command = [sys.executable, "-m", "tests.bench.exporter", "--serve-bytes", "--body",
                             str(work / "federation.json"), "--etag", first.headers.get("ETag", '"x"').strip('"'),
                             "--port", str(fixed_port)]  # fmt: skip
            with open(work / "fixed.log", "wb") as log:
                fixed = subprocess.Popen(fixed_command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
                try:
                    fixed_base = f"http://127.0.0.1:{fixed_port}"

                    def fixed_ready() -> bool:
                        try:
                            return requests.get(fixed_base + "/readyz", timeout=2).ok
                        except requests.RequestException:
                            return False

                    if not wait_until(fixed_ready, timeout=60):
                        raise RuntimeError((work / "fixed.log").read_text())
                    rows: dict[str, list[tuple[float, float, float]]] = {"public": [], "private": [], "fixed": []}
                    for _ in range(rounds):
                        rows["public"].append(drive(base + PUBLIC_PATH, {}, seconds, clients))
                        rows["private"].append(drive(base + PRIVATE_PATH, headers, seconds, clients))
                        rows["fixed"].append(drive(fixed_base + PRIVATE_PATH, headers, seconds, clients))
                finally:
                    fixed.terminate()
                    fixed.wait(timeout=30)

    def median(values: list[tuple[float, float, float]]) -> tuple[float, float, float]:
        first, second, third = (statistics.median(column) for column in zip(*values, strict=True))
        return first, second, third

    return ExporterFigures(
        services, len(first.content), median(rows["public"]), median(rows["private"]), median(rows["fixed"])
    )


def print_figures(figures: ExporterFigures, clients: int) -> None:
    print(f"exporter, {figures.services} public services ({figures.body_bytes} bytes of federation.json), "
          f"{clients} keep-alive clients, 1 worker:")  # fmt: skip
    for name, (rate, p50, p99) in (("public.json", figures.public), ("federation.json", figures.private),
                                   ("fixed bytes", figures.fixed)):  # fmt: skip
        print(f"  {name:16} {rate:8.0f} req/s  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms")
    print(f"  federation.json / fixed bytes: {figures.ratio:.2f} x req/s (goal >= 0.8)")


def main(argv: list[str]) -> None:
    if argv[:1] == ["--serve-bytes"]:
        _serve_bytes(argv[1:])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--services", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    figures = measure(args.services, seconds=args.seconds, clients=args.clients, rounds=args.rounds)
    print_figures(figures, args.clients)


if __name__ == "__main__":
    stop_cleanly_on_sigterm()
    main(sys.argv[1:])
