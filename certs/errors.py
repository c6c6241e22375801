"""The one error type of the certificate tooling."""

from __future__ import annotations


class CertsError(Exception):
    """A problem the user can fix. The CLI prints it as one line and exits 2, never a traceback."""
