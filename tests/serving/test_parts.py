"""The serving package's parts, in process: sizing, limits, TLS checks and reloads, the body stream,
the server's own error answers, and the closed sets of metric labels."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import gevent
import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from gunicorn.http import errors as http_errors

from exporter import metrics as exporter_metrics
from serving import errors, sizing
from serving.body import BodyProblem, BoundedInput
from serving.limits import Limits
from serving.tls import CertificatePair, ReloadingContext, pair_problem
from webhook import metrics as webhook_metrics

# -- sizing --------------------------------------------------------------------------------------------


def _affinity() -> int:
    return len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "50000 100000\n"}, 1),
        ({"cpu.max": "100000 100000\n"}, 1),
        ({"cpu.max": "150000 100000\n"}, min(2, _affinity())),
        ({"cpu.max": "max 100000\n"}, _affinity()),
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, _affinity()),
        ({}, _affinity()),
        ({"cpu.max": "garbage\n"}, _affinity()),
    ],
    ids=["v2-half", "v2-one", "v2-one-and-a-half", "v2-unlimited", "v1-one", "v1-unlimited", "none", "garbage"],
)
def test_usable_cpus_follow_the_container_quota(tmp_path: Path, files: dict[str, str], expected: int) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert sizing.available_cpus(tmp_path) == expected


def test_default_workers_are_capped(tmp_path: Path) -> None:
    assert sizing.default_workers(ceiling=1, cgroup_root=tmp_path) == 1
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    assert sizing.default_workers(ceiling=4, cgroup_root=tmp_path) == 1


# -- limits ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "problem"),
    [
        (Limits(), None),
        (Limits(header_timeout=0), "--header-timeout 0: must be more than 0 and at most 3600 seconds"),
        (Limits(body_timeout=float("inf")), "--body-timeout inf: must be more than 0 and at most 3600 seconds"),
        (Limits(max_connections=0), "--max-connections 0: must be from 1 to 100000"),
        (
            Limits(header_timeout=20, request_timeout=10),
            "--header-timeout 20 is longer than --request-timeout 10: a request's headers are part of its time budget",
        ),
    ],
)
def test_limits_name_the_flag_that_is_wrong(limits: Limits, problem: str | None) -> None:
    assert limits.problem() == problem


# -- TLS ---------------------------------------------------------------------------------------------------


def _write_pair(directory: Path, issued: trustme.LeafCert) -> CertificatePair:
    cert, key = directory / "tls.crt", directory / "tls.key"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    return CertificatePair(str(cert), str(key))


def test_a_matching_pair_has_no_problem(tmp_path: Path) -> None:
    assert pair_problem(_write_pair(tmp_path, trustme.CA().issue_cert("localhost"))) is None


def test_problems_name_both_files(tmp_path: Path) -> None:
    ca = trustme.CA()
    pair = _write_pair(tmp_path, ca.issue_cert("localhost"))
    prefix = f"cannot serve TLS with --tls-cert-file {pair.cert_file} and --tls-private-key-file {pair.key_file}: "
    other = ca.issue_cert("localhost").private_key_pem.bytes()
    Path(pair.key_file).write_bytes(other)
    assert pair_problem(pair) == prefix + "the private key does not belong to the certificate (KEY_VALUES_MISMATCH)"

    key = serialization.load_pem_private_key(other, password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    Path(pair.key_file).write_bytes(encrypted)
    assert pair_problem(pair) == prefix + f"{pair.key_file} is encrypted; give the key unencrypted"

    missing = CertificatePair(str(tmp_path / "gone.crt"), pair.key_file)
    assert pair_problem(missing) == (
        f"cannot serve TLS with --tls-cert-file {tmp_path / 'gone.crt'} and --tls-private-key-file "
        f"{pair.key_file}: {tmp_path / 'gone.crt'} cannot be read (No such file or directory)"
    )


def test_a_rotation_is_served_and_a_half_rotated_pair_keeps_the_last_good_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ca = trustme.CA()
    pair = _write_pair(tmp_path, ca.issue_cert("localhost"))
    contexts = ReloadingContext(pair)
    first = contexts.current()
    assert contexts.current() is first  # unchanged files: the same context, no reload

    renewed = ca.issue_cert("localhost")
    # The kubelet swaps both files at once; a writer that renames one at a time is caught between.
    (tmp_path / "tls.key.new").write_bytes(renewed.private_key_pem.bytes())
    (tmp_path / "tls.key.new").replace(pair.key_file)
    with caplog.at_level(logging.WARNING, logger="istio_federation.serving"):
        assert contexts.current() is first
        assert contexts.current() is first
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1  # said once, not per connection
    assert "still serving the previous certificate" in warnings[0]

    (tmp_path / "tls.crt.new").write_bytes(renewed.cert_chain_pems[0].bytes())
    (tmp_path / "tls.crt.new").replace(pair.cert_file)
    second = contexts.current()
    assert second is not first
    assert contexts.reloads == 1
    assert contexts.current() is second


# -- the body stream ------------------------------------------------------------------------------------


class _Body:
    def __init__(self, action: Any) -> None:
        self.action = action

    def read(self, size: int | None = None) -> bytes:
        result: bytes = self.action()
        return result


def _raise(error: BaseException) -> Any:
    def action() -> bytes:
        raise error

    return action


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (http_errors.InvalidChunkSize(b"zz"), 400, "malformed chunked body: Invalid chunk size: b'zz'"),
        (http_errors.NoMoreData(b""), 400, "the connection closed before the request body was complete"),
        (ConnectionResetError(104, "Connection reset by peer"), 400,
         "the request body could not be read ([Errno 104] Connection reset by peer)"),
    ],
    ids=["bad-chunk", "closed", "reset"],
)  # fmt: skip
def test_a_body_that_cannot_be_read_is_a_body_problem(error: BaseException, status: int, message: str) -> None:
    stream = BoundedInput(_Body(_raise(error)), timeout=5)
    with pytest.raises(BodyProblem) as raised:
        stream.read()
    assert (raised.value.status, raised.value.message) == (status, message)
    assert not isinstance(raised.value, Exception)  # passes through the application's except Exception


def _stalled() -> bytes:
    gevent.sleep(5)
    return b""


def test_a_body_that_does_not_arrive_in_time_is_a_408() -> None:
    stream = BoundedInput(_Body(_stalled), timeout=0.05)
    with pytest.raises(BodyProblem) as raised:
        stream.read(10)
    assert (raised.value.status, raised.value.message) == (408, "the request body did not arrive within 0.05 seconds")


def test_the_deadline_is_shared_by_every_read() -> None:
    now = [0.0]
    stream = BoundedInput(_Body(lambda: b"x"), timeout=2, clock=lambda: now[0])
    assert stream.read(1) == b"x"
    now[0] = 2.5
    with pytest.raises(BodyProblem):
        stream.read(1)


# -- the server's own answers ---------------------------------------------------------------------------


def test_an_error_answer_is_json_and_closes() -> None:
    assert errors.response(408, "late") == (
        b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nContent-Length: 48\r\n"
        b"Connection: close\r\nX-Content-Type-Options: nosniff\r\n\r\n"
        b'{"error": "Request Timeout", "message": "late"}\n'
    )


def test_client_text_is_cleaned_and_capped() -> None:
    assert errors.clean("a\r\nInjected: 1\x00") == "a??Injected: 1?"
    assert len(errors.clean("x" * 10_000)) == errors.MAX_DETAIL


# -- closed label sets -----------------------------------------------------------------------------------


def test_webhook_labels_come_from_closed_sets() -> None:
    assert webhook_metrics.kind_label("ServiceEntry") == "ServiceEntry"
    assert webhook_metrics.kind_label("IstioFederation") == "IstioFederation"
    assert webhook_metrics.kind_label("DestinationRule") == "DestinationRule"
    assert {webhook_metrics.kind_label(f"Kind{n}") for n in range(1000)} == {"other"}
    assert webhook_metrics.kind_label(None) == "other"
    assert webhook_metrics.operation_label("PATCH") == "other"
    assert webhook_metrics.resource_label("secrets") == "other"


def test_exporter_labels_come_from_closed_sets() -> None:
    assert exporter_metrics.closed("/x", {"/metrics"}) == "other"
    assert exporter_metrics.closed("999", exporter_metrics.STATUS_CODES) == "other"
    assert exporter_metrics.fixed_word("no_tls_port") == "no_tls_port"
    assert exporter_metrics.fixed_word('x"} 1\nfake_metric 1') == "other"
    assert {"missing_header", "not_bearer", "expired"} <= exporter_metrics.AUTH_FAILURE_CODES
