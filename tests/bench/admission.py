"""Admission benchmark: prints figures, asserts nothing (speed is never a test assertion).

    .venv/bin/python -m tests.bench.admission [--objects 100,10000] [--seconds 5] [--rounds 3]

1. In-process: time of one ``registry.admit`` (index lookups included) with 10, 1 000 and
   10 000 ServiceEntries and federations already indexed; it should not grow with the count.
2. Over the wire, in one run: ``istio-federation webhook serve`` with its defaults (workers sized
   for the machine) over a state directory of 100 and of 10 000 ServiceEntries, and a null handler
   (a Flask route returning fixed bytes) on the same gunicorn/TLS stack with as many workers, each
   driven by 8 client threads on kept-alive TLS connections.  Rounds are interleaved (null, small,
   large, null, ...) and the median of each is compared, so a neighbour's load hits all three alike.
"""

from __future__ import annotations

import argparse
import contextlib
import ssl
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import trustme

from federation.index import ObjectIndex
from federation.validation import registry
from federation.validation.attributes import Attributes, Context
from objectstore.stateformat import dump_all
from serving import sizing
from tests.bench import serving as bench_serving
from tests.bench import stop_cleanly_on_sigterm
from tests.reviews import federation, service_entry
from tests.support import ServerProcess, free_port, wait_until


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


def write_state(state: Path, count: int) -> None:
    """``count`` ServiceEntries, 100 to a file, as a GitOps checkout might hold them."""
    state.mkdir(parents=True, exist_ok=True)
    for start in range(0, count, 100):
        stop = min(count, start + 100)
        documents = [service_entry(f"se-{i}", f"ns-{i % 50}", f"host-{i}.example.com") for i in range(start, stop)]
        (state / f"entries-{start:06d}.yaml").write_text(dump_all(documents))


@dataclass
class Throughput:
    rate: float
    p50_ms: float
    p99_ms: float


@dataclass
class AdmissionFigures:
    workers: int
    objects: dict[int, Throughput]
    null: Throughput
    startup: dict[int, float]

    def p99_ratio_by_size(self) -> float:
        small, large = min(self.objects), max(self.objects)
        return self.objects[large].p99_ms / self.objects[small].p99_ms

    def p99_ratio_to_null(self) -> float:
        return self.objects[max(self.objects)].p99_ms / self.null.p99_ms


def write_tls(work: Path) -> ssl.SSLContext:
    """A serving certificate for 127.0.0.1 in ``work`` (tls.crt, tls.key); a client context trusting it."""
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    leaf.private_key_pem.write_to_path(str(work / "tls.key"))
    leaf.cert_chain_pems[0].write_to_path(str(work / "tls.crt"))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@contextlib.contextmanager
def webhook(
    work: Path, context: ssl.SSLContext, count: int, startup: dict[int, float]
) -> Iterator[bench_serving.Client]:
    """``istio-federation webhook serve`` with its defaults, over ``count`` ServiceEntries."""
    state = work / f"state-{count}"
    write_state(state, count)
    port = free_port()
    args = ["--log-level", "WARNING", "webhook", "serve", "--tls-cert-file", str(work / "tls.crt"),
            "--tls-private-key-file", str(work / "tls.key"), "--host", "127.0.0.1", "--port", str(port),
            "--local-trust-domain", "cluster-a.local", "--state", str(state)]  # fmt: skip
    started = time.monotonic()
    with ServerProcess(args, log_path=work / f"webhook-{count}.log"):
        client = bench_serving.Client(port, context)
        if not wait_until(client.ready, timeout=600, interval=0.2):
            raise RuntimeError(f"the webhook over {count} objects never became ready")
        startup[count] = time.monotonic() - started
        yield client


def over_the_wire(counts: list[int], *, seconds: float, rounds: int, clients: int = 8) -> AdmissionFigures:
    workers = sizing.default_workers()
    null_model = "bounded-2w" if workers == 2 else "bounded"
    with tempfile.TemporaryDirectory() as directory, contextlib.ExitStack() as stack:
        work = Path(directory)
        context = write_tls(work)
        (work / "state").mkdir()
        startup: dict[int, float] = {}
        servers = {count: stack.enter_context(webhook(work, context, count, startup)) for count in counts}
        null_client, _ = stack.enter_context(bench_serving.running(null_model, "null", work, context))
        keys: list[int | str] = [*counts, "null"]
        samples: dict[int | str, list[tuple[float, float, float]]] = {key: [] for key in keys}
        for _ in range(rounds):
            samples["null"].append(bench_serving.throughput(null_client, clients=clients, seconds=seconds))
            for count in counts:
                samples[count].append(bench_serving.throughput(servers[count], clients=clients, seconds=seconds))

    def median(rows: list[tuple[float, float, float]]) -> Throughput:
        return Throughput(*(statistics.median(column) for column in zip(*rows, strict=True)))

    return AdmissionFigures(
        workers, {count: median(samples[count]) for count in counts}, median(samples["null"]), startup
    )


def print_figures(figures: AdmissionFigures) -> None:
    print(f"over TLS, 8 client threads on kept-alive connections, {figures.workers} workers (the default here):")
    for count, result in sorted(figures.objects.items()):
        print(f"  {count:>6} objects   {result.rate:7.0f} req/s  p50 {result.p50_ms:6.2f} ms  "
              f"p99 {result.p99_ms:6.2f} ms  (ready {figures.startup[count]:.1f} s after start)")  # fmt: skip
    null = figures.null
    print(f"  null handler     {null.rate:7.0f} req/s  p50 {null.p50_ms:6.2f} ms  p99 {null.p99_ms:6.2f} ms")
    print(f"  p99 largest/smallest {figures.p99_ratio_by_size():.2f} (limit 1.3)   "
          f"p99 largest/null {figures.p99_ratio_to_null():.2f} (limit 1.3)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", default="100,10000", help="state-directory sizes, comma-separated")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print("in-process admit of a new ServiceEntry (duplicate-host path):")
    for count in (10, 1_000, 10_000):
        p50, p99 = in_process(count)
        print(f"  {count:>6} indexed ServiceEntries: p50 {p50:7.1f} µs  p99 {p99:7.1f} µs")
    counts = [int(n) for n in args.objects.split(",")]
    print_figures(over_the_wire(counts, seconds=args.seconds, rounds=args.rounds))


if __name__ == "__main__":
    stop_cleanly_on_sigterm()
    main()
