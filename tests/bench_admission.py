"""Admission benchmark: prints figures, asserts nothing (speed is never a test assertion).

    .venv/bin/python -m tests.bench_admission

1. In-process: time of one ``registry.admit`` (index lookups included) with 10, 1 000 and
   10 000 ServiceEntries and federations already indexed; it should not grow with the count.
2. Over the wire: a real gunicorn webhook (gthread, TLS) with 10 000 cached ServiceEntries,
   answering reviews sequentially on one keep-alive connection, as the apiserver's client does.
"""

from __future__ import annotations

import http.client
import json
import ssl
import tempfile
import time
from pathlib import Path

import trustme
import yaml

from federation.index import ObjectIndex
from federation.validation import registry
from federation.validation.attributes import Attributes, Context
from tests.reviews import admission_review, federation, service_entry
from tests.support import ServerProcess, free_port


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def populated_index(count: int) -> ObjectIndex:
    index = ObjectIndex()
    for position in range(count):
        index.apply("ADDED", service_entry(f"se-{position}", f"ns-{position % 50}", f"host-{position}.example.com"))
    for position in range(max(1, count // 100)):
        index.apply("ADDED", federation(f"fed-{position}", f"cluster-{position}.remote"))
    return index


def in_process(count: int, rounds: int = 3000) -> tuple[float, float]:
    context = Context(index=populated_index(count), local_trust_domain="cluster-a.local")
    obj = service_entry("new", "ns-1", "host-new.example.com")
    attributes = Attributes("CREATE", "networking.istio.io", "serviceentries", "ServiceEntry", "new", "ns-1", obj,
                            None, "kubernetes-admin")  # fmt: skip
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        registry.admit(attributes, context)
        samples.append(time.perf_counter() - started)
    return percentile(samples, 0.5) * 1e6, percentile(samples, 0.99) * 1e6


def over_the_wire(count: int, requests: int = 1000) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        state = root / "state"
        state.mkdir()
        documents = [service_entry(f"se-{i}", f"ns-{i % 50}", f"host-{i}.example.com") for i in range(count)]
        (state / "entries.yaml").write_text(yaml.safe_dump_all(documents))
        ca = trustme.CA()
        leaf = ca.issue_cert("127.0.0.1")
        leaf.private_key_pem.write_to_path(str(root / "tls.key"))
        leaf.cert_chain_pems[0].write_to_path(str(root / "tls.crt"))
        port = free_port()
        args = ["webhook", "serve", "--tls-cert-file", str(root / "tls.crt"), "--tls-private-key-file",
                str(root / "tls.key"), "--host", "127.0.0.1", "--port", str(port), "--local-trust-domain",
                "cluster-a.local", "--state", str(state)]  # fmt: skip
        context = ssl.create_default_context()
        ca.configure_trust(context)
        with ServerProcess(args, log_path=root / "webhook.log") as server:
            server.wait_http(f"https://127.0.0.1:{port}/readyz", context=context, timeout=60)
            body = json.dumps(admission_review(service_entry("new", "ns-1", "host-1.example.com"))).encode()
            connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
            samples = []
            started_all = time.perf_counter()
            for _ in range(requests):
                started = time.perf_counter()
                connection.request("POST", "/validate", body=body, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                samples.append(time.perf_counter() - started)
            elapsed = time.perf_counter() - started_all
            connection.close()
    return percentile(samples, 0.5) * 1e3, percentile(samples, 0.99) * 1e3, requests / elapsed


def main() -> None:
    print("in-process admit of a new ServiceEntry (duplicate-host path):")
    for count in (10, 1_000, 10_000):
        p50, p99 = in_process(count)
        print(f"  {count:>6} indexed ServiceEntries: p50 {p50:7.1f} µs  p99 {p99:7.1f} µs")
    p50, p99, rate = over_the_wire(10_000)
    print("over TLS to a real gunicorn webhook with 10 000 cached ServiceEntries (1 000 sequential reviews):")
    print(f"  p50 {p50:.2f} ms  p99 {p99:.2f} ms  {rate:.0f} reviews/s on one connection")


if __name__ == "__main__":
    main()
