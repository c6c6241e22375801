"""Entries of the private document that are not imported: the skip records, and why.

A gateway, a service or a port the remote published but that cannot be imported is left out with
one reason from a closed set (:data:`SKIP_REASONS`, fit for status and metric labels) and a message
naming the field and the problem.  Every record has ``path``, ``subject``, ``reason`` and
``message``, so :mod:`federation.skipsummary` can summarise them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from federation import remotetext
from federation.fields import FieldError

# Why an entry of the private document is skipped: a closed set, fit for status and metric labels.
SKIP_NOT_AN_OBJECT: Final = "NotAnObject"
SKIP_INVALID_HOSTNAME: Final = "InvalidHostname"
SKIP_INVALID_PORTS: Final = "InvalidPorts"
SKIP_NO_PORTS: Final = "NoPorts"
SKIP_TOO_MANY_PORTS: Final = "TooManyPorts"
SKIP_NO_IMPORTABLE_PORT: Final = "NoImportablePort"
SKIP_INVALID_PORT_NUMBER: Final = "InvalidPortNumber"
SKIP_INVALID_PORT_NAME: Final = "InvalidPortName"
SKIP_DUPLICATE_PORT_NAME: Final = "DuplicatePortName"
SKIP_UNSUPPORTED_PROTOCOL: Final = "UnsupportedProtocol"
SKIP_INVALID_ADDRESS: Final = "InvalidAddress"
SKIP_FORBIDDEN_ADDRESS: Final = "ForbiddenAddress"
SKIP_REASONS: Final = (
    SKIP_NOT_AN_OBJECT,
    SKIP_INVALID_HOSTNAME,
    SKIP_INVALID_PORTS,
    SKIP_NO_PORTS,
    SKIP_TOO_MANY_PORTS,
    SKIP_NO_IMPORTABLE_PORT,
    SKIP_INVALID_PORT_NUMBER,
    SKIP_INVALID_PORT_NAME,
    SKIP_DUPLICATE_PORT_NAME,
    SKIP_UNSUPPORTED_PROTOCOL,
    SKIP_INVALID_ADDRESS,
    SKIP_FORBIDDEN_ADDRESS,
)

_SKIP_MESSAGE_LIMIT: Final = 400


@dataclass(frozen=True)
class SkippedService:
    """A public service of the private document that is not imported, and why.

    ``hostname`` is what the remote wrote (short and printable), empty when it gave none;
    ``path`` (``publicServices[3]``) tells entries apart either way.  ``reason`` is one of
    :data:`SKIP_REASONS`; ``message`` names the field and the problem.
    """

    hostname: str
    path: str
    reason: str
    message: str

    @property
    def subject(self) -> str:
        return self.hostname


@dataclass(frozen=True)
class SkippedPort:
    """A port of an imported (or skipped) service that is left out, and why.

    ``port`` is the port number as the remote wrote it, or its name when the number is unusable.
    """

    hostname: str
    port: str
    path: str
    reason: str
    message: str

    @property
    def subject(self) -> str:
        if not self.port:
            return self.hostname
        return f"{self.hostname} port {self.port}" if self.hostname else f"port {self.port}"


@dataclass(frozen=True)
class SkippedGateway:
    """An ingress gateway the remote published that is not used, and why."""

    address: str
    path: str
    reason: str
    message: str

    @property
    def subject(self) -> str:
        return self.address


Skipped = SkippedService | SkippedPort | SkippedGateway


def skip_message(errors: list[FieldError]) -> str:
    """The message of a skip: every problem of the entry, short and printable."""
    return remotetext.printable("; ".join(error.render() for error in errors), _SKIP_MESSAGE_LIMIT)
