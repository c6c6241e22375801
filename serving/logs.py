"""How every ``istio-federation`` process writes its log lines: text for people, JSON for pipelines.

``--log-format text`` (the default) keeps the familiar line, ``TIME LEVEL LOGGER: MESSAGE``.
``--log-format json`` writes one JSON object per line (python-json-logger), with the fields a log
pipeline needs::

    {"time": "2026-01-31T12:00:00.123Z", "level": "INFO", "component": "reconciler",
     "logger": "reconciler.apply", "message": "created ServiceEntry …", "federation": "cluster-b"}

- ``time``: RFC 3339, UTC, milliseconds; ``level``; ``component``: the subcommand that runs
  (``webhook``, ``exporter``, ``reconciler``, ``check``, ``validate``, ``certs``, ``demo``);
  ``logger``: the Python module; ``message``;
- ``federation`` and ``object`` when known: given as ``extra={"federation": …, "object": …}``, bound
  for a block of code with :func:`context`, or read from the message in the code base's conventions,
  ``federation=NAME`` and ``Kind namespace/name`` (``-/name`` for cluster-scoped objects);
- ``exception``: the traceback, when there is one (a bug), in the same object.

gunicorn's own lines (its error log, and the access log when it is on) go through the same handler:
:class:`serving.gunicorn.GunicornLogger` is gunicorn's ``logger_class`` and hands them to the root logger, so a
pipeline sees one format from the app and from the server.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import re
import sys
from collections.abc import Iterator
from contextvars import ContextVar

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

FORMATS = ("text", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DEFAULT_FORMAT = "text"
DEFAULT_LEVEL = "INFO"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The fields every JSON line has, in this order; ``federation`` and ``object`` follow when known.
_JSON_FIELDS = "%(asctime)s %(levelname)s %(component)s %(name)s %(message)s"
_RENAMED = {"asctime": "time", "levelname": "level", "name": "logger", "exc_info": "exception"}
_FEDERATION_IN_MESSAGE = re.compile(r"\bfederation=([a-z0-9][a-z0-9.-]{0,252})\b")
# "ServiceEntry istio-federation/bar-…", "IstioFederation -/cluster-b": the way every component names an object.
_OBJECT_IN_MESSAGE = re.compile(
    r"\b(IstioFederation|ServiceEntry|DestinationRule|ConfigMap|Secret|Lease|Service)"
    r" ((?:-|[a-z0-9][a-z0-9.-]{0,252})/[a-z0-9][a-z0-9.-]{0,252})"
)

_bound: ContextVar[dict[str, str]] = ContextVar("istio_federation_log_fields", default={})  # noqa: B039 - never mutated


@contextlib.contextmanager
def context(**fields: str) -> Iterator[None]:
    """Add ``fields`` (``federation=…``, ``object=…``) to every line logged in this block (and thread)."""
    token = _bound.set({**_bound.get(), **fields})
    try:
        yield
    finally:
        _bound.reset(token)


class _Fields(logging.Filter):
    """Puts ``component``, the bound fields and a ``federation=NAME`` of the message on each record."""

    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "component", None):
            record.component = self.component
        for key, value in _bound.get().items():
            if not getattr(record, key, None):
                setattr(record, key, value)
        if not getattr(record, "federation", None) or not getattr(record, "object", None):
            with contextlib.suppress(Exception):  # a message that cannot be rendered is logging's to report
                message = record.getMessage()
                if not getattr(record, "federation", None) and (found := _FEDERATION_IN_MESSAGE.search(message)):
                    record.federation = found[1]
                if not getattr(record, "object", None) and (found := _OBJECT_IN_MESSAGE.search(message)):
                    record.object = f"{found[1]} {found[2]}"
        return True


class JsonLines(JsonFormatter):
    """One JSON object per line: time, level, component, logger, message, then federation, object."""

    def __init__(self) -> None:
        super().__init__(
            _JSON_FIELDS,
            rename_fields=dict(_RENAMED),
            # The reconciler's dry-run marker is a flag of the line, not a field worth its own name.
            reserved_attrs=[*RESERVED_ATTRS, "dry_run_marked"],
            json_ensure_ascii=False,
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        moment = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonLines()
    return logging.Formatter(TEXT_FORMAT)


class _OurHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure` installs (and replaces when called again)."""


def configure(*, level: str = DEFAULT_LEVEL, log_format: str = DEFAULT_FORMAT, component: str = "") -> None:
    """Send every log line of this process to stderr, in ``log_format``, from ``level`` up.

    Like ``logging.basicConfig``, it leaves a root logger that already has someone else's handlers
    alone (an embedding program, or pytest's log capture).
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _OurHandler):
            root.removeHandler(handler)
    if root.handlers:
        return
    root.setLevel(getattr(logging, level.upper()))
    handler = _OurHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(_Fields(component))
    root.addHandler(handler)
    # Python warnings (an unverified HTTPS request, a deprecation) become lines of the same format.
    logging.captureWarnings(True)
