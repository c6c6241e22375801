"""Benchmark: requests/s and latency of public.json and federation.json over loopback HTTP.

Run: ``.venv/bin/python -m tests.bench_exporter [--seconds 5] [--clients 8] [--services 200]``.
It starts the real ``istio-federation exporter serve`` (gunicorn gthread) over a state directory,
drives it with keep-alive clients on threads, prints figures, and stops the server.  Figures are
printed, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import requests

from federation import keys, tokens
from tests.support import ServerProcess, free_port, wait_until
from tests.test_exporter_app import REMOTE_KEY
from tests.test_exporter_e2e import world_objects
from tests.test_exporter_fixtures import CLUSTER_DOMAIN, CLUSTER_UUID, REMOTE_UUID, root_ca_pem, service, write_state


def drive(url: str, headers: dict[str, str], seconds: float, clients: int) -> tuple[int, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker() -> None:
        local: list[float] = []
        with requests.Session() as session:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                response = session.get(url, headers=headers, timeout=5)
                local.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise RuntimeError(f"{url}: {response.status_code} {response.text}")
        with lock:
            latencies.extend(local)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 30)
    return len(latencies), latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--services", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        state = Path(directory) / "state"
        state.mkdir()
        write_state(state, world_objects(keys.Keypair.generate(), root_ca_pem()))
        write_state(state, [service(f"svc-{n}", f"ns-{n % 10}") for n in range(args.services)])
        port = free_port()
        # --log-level belongs to the launcher, before the subcommand.
        command = ["--log-level", "WARNING", "exporter", "serve", "--cluster-uuid", CLUSTER_UUID]
        command += [
            "--cluster-domain",
            CLUSTER_DOMAIN,
            "--state",
            str(state),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        with ServerProcess(command, log_path=Path(directory) / "server.log") as server:
            base = f"http://127.0.0.1:{port}"
            server.wait_http(base + "/readyz", timeout=30)
            assert wait_until(lambda: requests.get(base + "/readyz", timeout=5).ok)
            token = tokens.issue(REMOTE_KEY, subject=REMOTE_UUID, audience=CLUSTER_UUID, now=int(time.time()), ttl=600)
            for name, path, headers in (
                ("public.json", "/metadata/public/public.json", {}),
                ("federation.json", "/metadata/private/federation.json", {"Authorization": f"Bearer {token}"}),
            ):
                count, latencies = drive(base + path, headers, args.seconds, args.clients)
                quantiles = statistics.quantiles(latencies, n=100)
                size = len(requests.get(base + path, headers=headers, timeout=5).content)
                print(
                    f"{name:16} {count / args.seconds:8.0f} req/s  p50 {quantiles[49] * 1000:6.2f} ms  "
                    f"p99 {quantiles[98] * 1000:6.2f} ms  "
                    f"({args.clients} clients, {size} bytes, {args.services} services)"
                )


if __name__ == "__main__":
    main()
