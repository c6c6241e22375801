"""The request body as the application sees it (``wsgi.input``): bounded in time, failing cleanly.

The application reads the body when and as far as it wants; the server cannot know in advance.
So the body stream itself carries the limit: every read shares one deadline, ``body_timeout``
after the headers arrived.  A read that would pass it, a malformed chunked encoding, or a
connection that closes mid-body raises ``BodyProblem``.  (gunicorn's reader of a Content-Length
body returns what arrived when the connection ends early; the stream counts the bytes against the
declared length, so a truncated body never reaches the application as if it were whole.)

``BodyProblem`` derives from ``BaseException`` on purpose: it travels through the application's
``except Exception`` handlers (Flask's included, which would answer 500) up to the worker, which
answers it (408 or 400, JSON) and closes the connection.  It never means a bug.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import gevent
from gunicorn.http import errors as http_errors

from serving import errors

T = TypeVar("T")


class BodyProblem(BaseException):
    """The request body cannot be read; the server answers ``status`` and closes the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_MALFORMED = (
    http_errors.InvalidChunkSize,
    http_errors.ChunkMissingTerminator,
    http_errors.InvalidChunkExtension,
    http_errors.InvalidHeader,
    http_errors.InvalidHeaderName,
    http_errors.LimitRequestHeaders,
)


TRUNCATED = "the connection closed before the request body was complete"


class BoundedInput:
    """A WSGI input stream over gunicorn's request body, with one deadline for all reads.

    ``length`` is the body's declared Content-Length (None for a chunked body, whose reader
    notices an early end itself).
    """

    def __init__(
        self, body: Any, timeout: float, clock: Callable[[], float] = time.monotonic, *, length: int | None = None
    ) -> None:
        self._body = body
        self._timeout = timeout
        self._clock = clock
        self._deadline = clock() + timeout
        self._length = length
        self._received = 0

    def _counted(self, data: bytes, *, ended: bool) -> bytes:
        """``data`` as read; ``ended`` when the read stopped short of what it asked for."""
        self._received += len(data)
        if ended and self._length is not None and self._received < self._length:
            raise BodyProblem(400, TRUNCATED)
        return data

    def _bounded(self, read: Callable[..., T], *args: Any) -> T:
        remaining = self._deadline - self._clock()
        expired = BodyProblem(408, f"the request body did not arrive within {self._timeout:g} seconds")
        if remaining <= 0:
            raise expired
        try:
            with gevent.Timeout(remaining, expired):
                return read(*args)
        except _MALFORMED as error:
            status, message = errors.describe(error)
            raise BodyProblem(status, message) from None
        except http_errors.NoMoreData:
            raise BodyProblem(400, TRUNCATED) from None
        except OSError as error:
            raise BodyProblem(400, f"the request body could not be read ({errors.clean(str(error))})") from None

    def read(self, size: int | None = -1) -> bytes:
        data: bytes = self._bounded(self._body.read, size)
        # gunicorn's body reads until it has ``size`` bytes or the body (or connection) ends.
        return self._counted(data, ended=size is None or size < 0 or len(data) < size)

    def readline(self, size: int | None = -1) -> bytes:
        data: bytes = self._bounded(self._body.readline, size)
        return self._counted(data, ended=not data)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        lines: list[bytes] = self._bounded(self._body.readlines, hint)
        self._counted(b"".join(lines), ended=True)
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while True:
            line = self.readline()
            if not line:
                return
            yield line
