"""The gunicorn worker: one gevent event loop per process, every connection bounded in time.

Why this model (measured by ``python -m tests.bench.serving``, figures in the README): gunicorn's
gthread worker gives each connection a thread for as long as it takes to send its TLS handshake
and request head, so a handful of idle or slow clients starve every request.  Here a connection
is a greenlet: an idle one costs a few kilobytes and no thread, and every phase has a deadline:

- the TLS handshake: ``tls_handshake_timeout`` from accept;
- the request line and headers: ``header_timeout`` from the handshake (first request) or from
  the first byte (later requests on a kept-alive connection);
- the body: ``body_timeout`` from the headers, enforced by ``serving.body.BoundedInput``;
- the whole request, answer included: ``request_timeout``;
- the wait between requests: ``keepalive_timeout``;
- at most ``max_connections`` connections per worker; later ones wait in the listen backlog.

Expired deadlines and malformed requests are answered with JSON (``serving.errors``) and the
connection is closed; an idle connection is simply closed.  Nothing here logs a traceback for
anything a client can send.  A response leaves in one write (``_Coalescing``).  On SIGTERM the
worker stops accepting, closes its idle connections at once and lets requests in flight finish.

There is **no monkey-patching**: only the server's own sockets are gevent's.  The applications'
background threads (the Kubernetes client's list and watch loops, the state-directory poller)
stay ordinary OS threads with the standard library's blocking sockets, exactly as under gthread,
and the event loop releases the GIL while it waits.  So request handling must not block on I/O
(it does not: admission and the exporter answer from memory).  Application code runs in the
event loop: CPU-bound work is only interrupted at the next I/O, and a worker whose loop is
stuck for longer than gunicorn's ``timeout`` is restarted by the arbiter.

TLS is done here, not by gunicorn: the context comes from ``serving.tls.ReloadingContext``, so
a rotated certificate is served to new connections without a restart.
"""

from __future__ import annotations

import errno
import ssl
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import Any, ClassVar

import gevent
import gevent.socket
import gevent.ssl
from gevent.pool import Pool
from gevent.server import StreamServer
from gunicorn import util
from gunicorn.http import RequestParser, wsgi
from gunicorn.http import errors as http_errors
from gunicorn.http.body import ChunkedReader, LengthReader
from gunicorn.workers.ggevent import GeventWorker

from serving import errors
from serving.body import BodyProblem, BoundedInput
from serving.limits import Limits
from serving.tls import CertificatePair, ReloadingContext

# An unread body left by the application is read and dropped up to this size, so the
# connection can be kept alive; beyond it the connection is closed instead.
DRAIN_MAX_BYTES = 64 * 1024
# A response is sent in pieces of at most this size (see _Coalescing).
COALESCE_MAX_BYTES = 64 * 1024
# Time to write an error answer the client may not be reading.
REFUSAL_WRITE_TIMEOUT = 2.0


class _Expired(BaseException):
    def __init__(self, phase: str, seconds: float) -> None:
        super().__init__(f"{phase} took longer than {seconds:g} seconds")
        self.phase = phase
        self.seconds = seconds


class _Coalescing:
    """The connection as one response writes to it: headers and body leave in one send.

    gunicorn writes a response's headers and each body piece separately; over TLS each write is
    a record and a system call.  Collecting them (up to ``COALESCE_MAX_BYTES``) and sending once
    when the response is complete halves both for the small JSON answers served here.
    """

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self._pending = bytearray()

    def sendall(self, data: bytes) -> None:
        self._pending += data
        if len(self._pending) >= COALESCE_MAX_BYTES:
            self.flush()

    def send(self, data: bytes) -> int:
        # Only gunicorn's interim "100 Continue" uses send: it must leave now, or no body comes.
        self.flush()
        sent: int = self._connection.send(data)
        return sent

    def flush(self) -> None:
        if self._pending:
            data, self._pending = bytes(self._pending), bytearray()
            self._connection.sendall(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


class BoundedWorker(GeventWorker):  # type: ignore[misc]
    """gunicorn's gevent worker with deadlines on every phase of a connection (see module doc).

    ``serving.gunicorn.run`` makes a subclass with the ``limits`` and ``tls`` it was given.
    """

    limits: ClassVar[Limits] = Limits()
    tls: ClassVar[CertificatePair | None] = None
    # Set (as a staticmethod) when several workers share the port: see _wait_until_ready.
    ready: ClassVar[Callable[[Any], bool] | None] = None
    ready_wait: ClassVar[float] = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.worker_connections = self.limits.max_connections
        self._contexts: ReloadingContext | None = None
        self._idle: set[Any] = set()  # greenlets waiting between requests, closed first on shutdown

    # -- process -----------------------------------------------------------------------------

    def patch(self) -> None:
        """Make the listening sockets gevent's; patch nothing else (see the module doc)."""
        self.sockets: list[Any] = [
            gevent.socket.socket(listener.FAMILY, gevent.socket.SOCK_STREAM, fileno=listener.sock.detach())
            for listener in self.sockets
        ]

    def init_process(self) -> None:
        if self.tls is not None:
            self._contexts = ReloadingContext(self.tls, gevent.ssl.SSLContext)
        super().init_process()

    def _wait_until_ready(self) -> None:
        """With several workers, accept nothing until this worker's app is ready (bounded).

        Another worker may already make the pod Ready; requests this one accepted before its
        cache synced would be refused.  After ``ready_wait`` it accepts anyway, so that its
        ``/healthz`` and ``/readyz`` can say what is wrong.
        """
        check = type(self).ready
        if check is None:
            return
        deadline = time.monotonic() + self.ready_wait
        while self.alive and time.monotonic() < deadline:
            try:
                if check(self.wsgi):
                    return
            except Exception:
                self.log.exception("readiness check failed")
                return
            self.notify()
            gevent.sleep(0.05)
        if self.alive:
            self.log.warning("worker %s not ready after %gs; accepting connections anyway", self.pid, self.ready_wait)

    def run(self) -> None:
        self._wait_until_ready()
        servers: list[StreamServer] = []
        pools: list[Pool] = []
        for listener in self.sockets:
            listener.setblocking(True)
            pool = Pool(self.worker_connections)
            server = StreamServer(listener, handle=partial(self.handle, listener), spawn=pool)
            if self.cfg.workers > 1:
                server.max_accept = 1  # share new connections fairly between the workers
            server.start()
            servers.append(server)
            pools.append(pool)
        while self.alive:
            self.notify()
            gevent.sleep(1.0)
        # Stop accepting; close idle kept-alive connections; let requests in flight finish.
        for server in servers:
            server.close()
        deadline = time.monotonic() + self.cfg.graceful_timeout
        while time.monotonic() < deadline:
            self._close_idle()
            if all(pool.free_count() == pool.size for pool in pools):
                return
            self.notify()
            gevent.sleep(0.1)
        self.log.warning("Worker graceful timeout (pid:%s)", self.pid)
        for server in servers:
            server.stop(timeout=1)

    def _close_idle(self) -> None:
        for greenlet in list(self._idle):
            greenlet.kill(block=False)

    # -- connection --------------------------------------------------------------------------

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        """Serve one connection until it closes, misbehaves or runs out of time."""
        connection = client
        try:
            client.setblocking(1)
            if self._contexts is not None:
                connection = self._contexts.current().wrap_socket(
                    client, server_side=True, do_handshake_on_connect=False, suppress_ragged_eofs=True
                )
                seconds = self.limits.tls_handshake_timeout
                with gevent.Timeout(seconds, _Expired("TLS handshake", seconds)):
                    connection.do_handshake()
            self._serve(listener.getsockname(), connection, addr)
        except _Expired as expired:
            self.log.debug("closing connection from %s: %s", _peer(addr), expired)
        except gevent.GreenletExit:
            pass
        except (ssl.SSLError, OSError, http_errors.NoMoreData) as error:
            # Handshake failures, resets and EOFs: the client's doing, nothing to answer.
            self.log.debug("connection from %s ended: %s", _peer(addr), errors.clean(str(error)))
        except Exception:
            self.log.exception("unexpected error serving a connection from %s", _peer(addr))
        finally:
            util.close(connection)

    def _serve(self, listener_name: Any, connection: Any, addr: Any) -> None:
        parser = RequestParser(self.cfg, connection, addr)
        header_timeout = self.limits.header_timeout
        first = True
        while self.alive:
            # The first request's head is due header_timeout after the handshake; a later one
            # may start up to keepalive_timeout after the previous answer, then has header_timeout.
            waited_from = time.monotonic()
            idle = header_timeout if first else self.limits.keepalive_timeout
            if not self._wait_for_request(connection, parser, idle):
                if first and self.alive:
                    self._refuse_head_timeout(connection, addr)
                return
            started = time.monotonic()
            seconds = header_timeout - (started - waited_from) if first else header_timeout
            first = False
            try:
                with gevent.Timeout(max(seconds, 0.001), _Expired("request head", header_timeout)):
                    request = next(parser)
            except StopIteration:
                return
            except _Expired:
                self._refuse_head_timeout(connection, addr)
                return
            except http_errors.ParseException as error:
                status, message = errors.describe(error)
                self._refuse(connection, addr, status, message)
                return
            if request is None:
                return
            deadline = started + self.limits.request_timeout
            if not self._handle_request(listener_name, request, connection, addr, deadline):
                return

    def _refuse_head_timeout(self, connection: Any, addr: Any) -> None:
        message = f"the request line and headers did not arrive within {self.limits.header_timeout:g} seconds"
        self._refuse(connection, addr, 408, message)

    def _wait_for_request(self, connection: Any, parser: RequestParser, seconds: float) -> bool:
        """Wait up to ``seconds`` for the first byte of a request; False when none comes.

        The wait is idle: a worker that stops closes such connections at once.
        """
        if parser.unreader.buf.tell() or (isinstance(connection, ssl.SSLSocket) and connection.pending()):
            return True  # pipelined, or already decrypted
        current = gevent.getcurrent()
        self._idle.add(current)
        try:
            gevent.socket.wait_read(connection.fileno(), timeout=seconds, timeout_exc=_Expired("idle wait", seconds))
        except _Expired:
            return False
        finally:
            self._idle.discard(current)
        return True  # a request is coming: served even while stopping, with Connection: close

    # -- request -----------------------------------------------------------------------------

    def _handle_request(self, listener_name: Any, request: Any, connection: Any, addr: Any, deadline: float) -> bool:
        """Run the application for one request; True when the connection may serve another."""
        environ: dict[str, Any] = {}
        response = None
        started = datetime.now()
        budget = max(0.0, deadline - time.monotonic())
        try:
            with gevent.Timeout(budget, _Expired("request", self.limits.request_timeout)):
                self.cfg.pre_request(self, request)
                writer = _Coalescing(connection)
                response, environ = wsgi.create(request, writer, addr, listener_name, self.cfg)
                if self._contexts is not None:
                    environ["wsgi.url_scheme"] = "https"
                    environ["HTTPS"] = "on"
                environ["wsgi.multithread"] = True
                reader = request.body.reader
                length = reader.length if isinstance(reader, LengthReader) else None
                stream = BoundedInput(request.body, self.limits.body_timeout, length=length)
                environ["wsgi.input"] = stream
                self.nr += 1
                if not self.alive:
                    response.force_close()
                body = self.wsgi(environ, response.start_response)
                try:
                    for item in body:
                        response.write(item)
                    response.close()
                    writer.flush()
                finally:
                    if hasattr(body, "close"):
                        body.close()
                return not response.should_close() and self._finish_body(request, stream)
        except BodyProblem as problem:
            if response is None or not response.headers_sent:
                self._refuse(connection, addr, problem.status, problem.message)
            return False
        except _Expired as expired:
            if response is None or not response.headers_sent:
                self._refuse(connection, addr, 408, str(expired))
            else:
                self.log.warning("closing connection from %s: %s", _peer(addr), expired)
            return False
        except (OSError, http_errors.NoMoreData):
            return False  # the client went away while we answered
        except Exception:
            self.log.exception("error handling %s %s", request.method, errors.clean(request.uri))
            if response is None or not response.headers_sent:
                self._refuse(connection, addr, 500, "internal server error; see the server's log", warn=False)
            return False
        finally:
            if response is not None:
                self.log.access(response, request, environ, datetime.now() - started)
            try:
                self.cfg.post_request(self, request, environ, response)
            except Exception:
                self.log.exception("Exception in post_request hook")

    def _finish_body(self, request: Any, stream: BoundedInput) -> bool:
        """Drop what the application left of the body, if small; False when the connection must close.

        Reads go through ``stream``, so they share the body's deadline; a body that fails now
        raises ``BodyProblem`` after the answer was sent, which only closes the connection.
        """
        if request.body.failed:
            return False
        reader = request.body.reader
        if isinstance(reader, LengthReader) and reader.length == 0:
            return True
        if isinstance(reader, LengthReader) and reader.length > DRAIN_MAX_BYTES:
            return False  # more than would be drained: close now, rather than wait for it to arrive
        if isinstance(reader, ChunkedReader) and reader.parser is None:
            return True
        drained = 0
        while drained <= DRAIN_MAX_BYTES:
            data = stream.read(8192)
            if not data:
                return True
            drained += len(data)
        return False

    def _refuse(self, connection: Any, addr: Any, status: int, message: str, *, warn: bool = True) -> None:
        """Answer ``status`` with a JSON error, then close the connection gracefully."""
        if warn:
            self.log.warning("refused a request from %s: %d %s", _peer(addr), status, message)
        try:
            with gevent.Timeout(REFUSAL_WRITE_TIMEOUT):
                connection.sendall(errors.response(status, message))
                util.close_graceful(connection, timeout=REFUSAL_WRITE_TIMEOUT)
        except gevent.Timeout:
            self.log.debug("could not answer %s: it does not read", _peer(addr))
        except OSError as error:
            if error.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, None):
                self.log.debug("could not answer %s: %s", _peer(addr), error)


def _peer(addr: Any) -> str:
    if isinstance(addr, tuple) and addr:
        return str(addr[0])
    return str(addr or "-")
