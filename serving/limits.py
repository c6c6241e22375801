"""The limits every connection and request is held to, and the ``serve`` flags that set them.

Each limit bounds what one client can cost a worker, whatever it sends or withholds:

| limit | bounds |
|---|---|
| ``tls_handshake_timeout`` | from accept to the end of the TLS handshake (a silent or slow ClientHello) |
| ``header_timeout`` | a request's line and headers, from the first byte or the end of the handshake |
| ``body_timeout`` | a request's body, from the end of its headers (a Content-Length that never arrives) |
| ``request_timeout`` | everything of one request: headers, body, the application and writing the answer |
| ``keepalive_timeout`` | the wait for the next request on an idle kept-alive connection |
| ``max_connections`` | open connections per worker process; beyond it new ones wait in the listen backlog |

Request heads are also bounded in size (``MAX_REQUEST_LINE``, ``MAX_HEADER_FIELDS``,
``MAX_HEADER_FIELD_BYTES``): larger ones are answered 414 or 431.  Request bodies are bounded by the
application that reads them (an AdmissionReview is at most 3 MiB; the exporter never reads one);
a body the application did not read is never drained beyond 64 KiB: the connection is closed.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, fields

# gunicorn's own ceilings for a request head: an 8 KiB request line, 100 fields of up to 8 KiB.
MAX_REQUEST_LINE = 8190
MAX_HEADER_FIELDS = 100
MAX_HEADER_FIELD_BYTES = 8190


@dataclass(frozen=True)
class Limits:
    tls_handshake_timeout: float = 5.0
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    request_timeout: float = 30.0
    keepalive_timeout: float = 30.0
    max_connections: int = 1000

    def problem(self) -> str | None:
        """What is wrong with these limits, naming the flag; None when they can work."""
        for item in fields(self):
            value = getattr(self, item.name)
            flag = flag_name(item.name)
            if item.name == "max_connections":
                if not 1 <= value <= 100_000:
                    return f"{flag} {value}: must be from 1 to 100000"
            elif not (math.isfinite(value) and 0 < value <= 3600):
                return f"{flag} {value:g}: must be more than 0 and at most 3600 seconds"
        if self.header_timeout > self.request_timeout:
            return (
                f"--header-timeout {self.header_timeout:g} is longer than --request-timeout "
                f"{self.request_timeout:g}: a request's headers are part of its time budget"
            )
        return None


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


_HELP = {
    "tls_handshake_timeout": "seconds a new connection has to complete its TLS handshake",
    "header_timeout": "seconds a request has to send its request line and headers",
    "body_timeout": "seconds a request has to send its body, once its headers are in",
    "request_timeout": "seconds one request may take in all: headers, body, answer",
    "keepalive_timeout": "seconds an idle kept-alive connection waits for its next request",
    "max_connections": "open connections per worker; more wait in the listen backlog",
}


def add_arguments(parser: argparse.ArgumentParser, *, tls: bool, defaults: Limits | None = None) -> None:
    """Add one flag per limit, each showing its default in ``--help``."""
    defaults = defaults or Limits()
    group = parser.add_argument_group("connection limits (each client's cost to a worker is bounded by these)")
    for item in fields(Limits):
        if item.name == "tls_handshake_timeout" and not tls:
            help_text = _HELP[item.name] + " (with --tls-cert-file)"
        else:
            help_text = _HELP[item.name]
        default = getattr(defaults, item.name)
        group.add_argument(
            flag_name(item.name),
            dest=f"limit_{item.name}",
            type=int if item.name == "max_connections" else float,
            default=default,
            metavar="N" if item.name == "max_connections" else "SECONDS",
            help=f"{help_text} (default {default:g})",
        )


def from_args(args: argparse.Namespace) -> Limits:
    """The limits the command line asked for; check them with ``Limits.problem``."""
    values = {item.name: getattr(args, f"limit_{item.name}") for item in fields(Limits)}
    return Limits(**values)
