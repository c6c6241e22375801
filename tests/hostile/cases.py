"""The case model of the servers' tables: raw bytes in, one exact expected handling out.

A :class:`Case` is sent on a new TLS connection as raw bytes (built lazily: some are megabytes),
and its first answer must match ``expect`` exactly: an AdmissionReview allowed or denied with its
message, a 400 naming what is malformed, or the server's own JSON refusal.  ``closes`` says whether
the server must then close the connection.  A :class:`SlowCase` holds its connection and sends
slowly (or nothing); the batch of them runs concurrently (``slowbatch.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.serving import clients as wire


@dataclass(frozen=True)
class Expect:
    """How the first answer must look; ``check`` raises AssertionError naming the difference."""

    def check(self, answer: wire.Answer | None) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Json(Expect):
    """HTTP ``status`` with exactly this JSON body (the servers' own answers: 4xx, 200 of a route)."""

    status: int
    body: Any
    headers: tuple[tuple[str, str], ...] = ()

    def check(self, answer: wire.Answer | None) -> None:
        assert answer is not None, "no answer: the server closed the connection"
        assert (answer.status, _json(answer)) == (self.status, self.body)
        for name, value in self.headers:
            assert answer.headers.get(name) == value, (name, answer.headers)


@dataclass(frozen=True)
class Raw(Expect):
    """HTTP ``status`` with exactly this body (``None``: any body), e.g. an empty 304."""

    status: int
    body: bytes | None = b""
    headers: tuple[tuple[str, str], ...] = ()

    def check(self, answer: wire.Answer | None) -> None:
        assert answer is not None, "no answer: the server closed the connection"
        assert answer.status == self.status, (answer.status, answer.body[:300])
        if self.body is not None:
            assert answer.body == self.body, answer.body[:300]
        for name, value in self.headers:
            assert answer.headers.get(name) == value, (name, answer.headers)


@dataclass(frozen=True)
class NoAnswer(Expect):
    """The server closes the connection without an HTTP answer (not TLS, or not a request at all)."""

    def check(self, answer: wire.Answer | None) -> None:
        assert answer is None, (answer.status, answer.body[:300]) if answer else None


@dataclass(frozen=True)
class Malformed(Expect):
    """The webhook's 400 for a body that is not a well-formed AdmissionReview."""

    message: str

    def check(self, answer: wire.Answer | None) -> None:
        Json(400, {"error": "malformed AdmissionReview", "message": self.message}).check(answer)


@dataclass(frozen=True)
class Reviewed(Expect):
    """HTTP 200 with an AdmissionReview answer for ``uid``: allowed, or denied with this message."""

    allowed: bool
    message: str = ""
    uid: str = "u"
    code: int | None = None  # the Status code of a denial, when it is not the usual 422
    warnings: tuple[str, ...] = ()
    max_bytes: int = 64 * 1024  # the answer stays small whatever came in (issue 14)

    def check(self, answer: wire.Answer | None) -> None:
        assert answer is not None, "no answer: the server closed the connection"
        assert answer.status == 200, (answer.status, answer.body[:300])
        review = _json(answer)
        response = review["response"]
        assert (review["apiVersion"], review["kind"], response["uid"]) == (
            "admission.k8s.io/v1", "AdmissionReview", self.uid,
        )  # fmt: skip
        assert response["allowed"] is self.allowed, response
        if not self.allowed:
            status = response["status"]
            assert status["message"] == self.message
            assert status["code"] == (self.code or 422), status
        assert tuple(response.get("warnings", ())) == self.warnings, response.get("warnings")
        assert len(answer.body) <= self.max_bytes, len(answer.body)


def _json(answer: wire.Answer) -> Any:
    try:
        return json.loads(answer.body)
    except ValueError as error:
        raise AssertionError(f"not JSON ({error}): {answer.body[:300]!r}") from None


@dataclass(frozen=True)
class Case:
    target: str
    name: str
    request: Callable[[], bytes]
    expect: Expect
    closes: bool | None = None  # must the server close the connection after the answer?
    answers: int = 1  # answers to read: pipelined requests, or an interim 100 Continue first
    rest: Expect | None = None  # how the answers after the first look (default: like the first)
    head: bool = False
    tls: bool = True
    half_close: bool = False  # shut the sending side down (a FIN, no TLS close_notify) after sending
    log: str = ""  # a line the server must log for it (when the client cannot read the answer)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Observed:
    """What a slow client saw: the answer (if any), whether the server closed, and when."""

    answer: wire.Answer | None
    closed: bool
    seconds: float
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SlowCase:
    target: str
    name: str
    # Holds a connection to the server and behaves slowly; calls ``ready`` once its connection is
    # established and it is in its slow phase (the batch probes only then).
    run: Callable[[Any, Callable[[], None]], Observed]
    expect: Expect
    closes: bool = True
    check: Callable[[Observed], None] | None = None  # anything else to assert about what it saw
    log: str = ""  # a line the server must have logged for it

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Explore(Expect):
    """Placeholder while writing a table: fails, showing what came back."""

    def check(self, answer: wire.Answer | None) -> None:
        if answer is None:
            raise AssertionError("EXPLORE: no answer")
        raise AssertionError(f"EXPLORE: {answer.status} {answer.headers} {answer.body[:1500]!r}")
