"""The command-line contract every ``istio-federation`` subcommand keeps: exit codes and usage errors.

A subcommand that is given a command line (or configuration) that cannot work raises
:class:`UsageError` with one line that names the flag and the fix; the launcher
(``istio_federation.cli``) prints it as ``istio-federation: error: <message>`` and exits
``EXIT_USAGE``, as argparse does for its own errors.  Printing stays at that edge: this module only
says what the codes and the line are, so the deployables share it without importing each other.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

import yaml

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran and found a failure (a federation did not sync, a check failed)
EXIT_USAGE = 2  # the command could not run as given: argparse's code for a bad command line

PROGRAM = "istio-federation"


class UsageError(ValueError):
    """A command line that cannot work; the message names the flag and the fix."""


def usage_line(message: str) -> str:
    """The one line a usage error is reported as, in argparse's own style."""
    return f"{PROGRAM}: error: {message}"


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number of seconds")
    return value


def positive_seconds(text: str) -> float:
    """An argparse ``type``: a finite number of seconds above zero (an interval, a timeout)."""
    value = _seconds(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 seconds")
    return value


def non_negative_seconds(text: str) -> float:
    """An argparse ``type``: a finite number of seconds, zero allowed (a bound that may be off)."""
    value = _seconds(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


OUTPUTS = ("text", "json", "yaml")
"""``-o/--output`` of the commands that print a report (``validate``, ``check``)."""


def dump_document(document: Any, output: str) -> str:
    """``document`` as ``-o json`` or ``-o yaml`` prints it: keys in their order, no line folding."""
    if output == "yaml":
        return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=1_000_000)
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
