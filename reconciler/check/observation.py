"""What the I/O half of ``check`` saw, handed to the pure half."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from federation.resources import KubeObject
from reconciler.fetch import (
    FetchError,
    Response,
)


@dataclass(frozen=True)
class Problem:
    """Something that stopped a step before it could talk to the remote, with its fix."""

    message: str
    fix: str


@dataclass(frozen=True)
class Fetched:
    """One GET: the response (any status), or the FetchError that left no usable response."""

    url: str
    response: Response | None = None
    error: FetchError | None = None


@dataclass(frozen=True)
class Observation:
    federation: KubeObject
    now: datetime
    # Set when the endpoint was not contacted at all (the spec cannot work as written).
    configuration: Problem | None = None
    public: Fetched | None = None
    # Set when the private GET was not attempted although the public document was valid.
    private_blocked: Problem | None = None
    private: Fetched | None = None
    managed_entries: tuple[KubeObject, ...] = ()
    other_trust_domains: tuple[str, ...] = ()
    mesh_config_map: KubeObject | None = None
