"""Run the shell commands of docs/install.md exactly as written, in the order written.

:func:`commands` reads the ``sh`` code blocks of one section (continuation lines joined, comment
lines dropped). A :class:`DocRun` walks them: :meth:`DocRun.run` runs the next command with
``bash -c`` as a user would (``KUBECONFIG`` holding contexts ``cluster-a`` and ``cluster-b``, the
working directory holding ``overlays/cluster-a``), failing if the test asks for any other command
than the one the document has next; :meth:`DocRun.instead` takes the next command without running
it, for the two that need a kubelet (``rollout status``, ``exec``), and the caller does the
equivalent; :meth:`DocRun.finish` fails unless every command of the section was taken. So a
changed document fails the test until the test exercises the change.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.realcluster.cluster import KubectlResult
from tests.support import REPO_ROOT

INSTALL_DOC = REPO_ROOT / "docs" / "install.md"
COMMAND_TIMEOUT = 120.0


def section(number: int, document: Path = INSTALL_DOC) -> str:
    """The text of ``## <number>. …`` up to the next ``## `` heading."""
    text = document.read_text(encoding="utf-8")
    match = re.search(rf"^## {number}\. .*?(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    if match is None:
        raise AssertionError(f"{document} has no section '## {number}.'")
    return match[0]


def _strip_comment(line: str) -> str:
    """``line`` without a trailing ``# comment`` (a ``#`` after whitespace, outside quotes)."""
    quote = ""
    for index, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip()
    return line.rstrip()


def commands(text: str) -> list[str]:
    """The commands of every ``sh`` block in ``text``, one string each, whitespace normalised."""
    found: list[str] = []
    for block in re.findall(r"^[ \t]*```sh\n(.*?)^[ \t]*```[ \t]*$", text, re.MULTILINE | re.DOTALL):
        pending = ""
        for raw in block.splitlines():
            line = _strip_comment(raw)
            if not line.strip():
                continue
            if line.endswith("\\"):
                pending += line[:-1].strip() + " "
                continue
            found.append(" ".join((pending + line.strip()).split()))
            pending = ""
        if pending:
            raise AssertionError(f"a continuation line ends a block: {pending!r}")
    return found


def normalised(command: str) -> str:
    return " ".join(command.split())


@dataclass
class Taken:
    command: str
    ran: bool  # False: the test did the equivalent (with the reason)
    reason: str = ""


@dataclass
class DocRun:
    """The commands of one section of docs/install.md, run in order in a user's shell."""

    number: int
    cwd: Path
    kubeconfig: Path
    variables: dict[str, str] = field(default_factory=dict)
    taken: list[Taken] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pending = commands(section(self.number))
        assert self.pending, f"section {self.number} of {INSTALL_DOC} has no sh commands"

    def _next(self, command: str) -> str:
        expected = normalised(command)
        position = len(self.taken)
        if position >= len(self.pending):
            raise AssertionError(f"section {self.number} has no command left; the test wants {expected!r}")
        if self.pending[position] != expected:
            raise AssertionError(
                f"section {self.number}, command {position + 1}: the document says\n  {self.pending[position]}\n"
                f"but the test runs\n  {expected}"
            )
        return expected

    def env(self) -> dict[str, str]:
        keep = {key: value for key, value in os.environ.items() if not key.startswith("KUBECONFIG")}
        return {**keep, **self.variables, "KUBECONFIG": str(self.kubeconfig), "HOME": str(self.cwd)}

    def shell(self, command: str, *, timeout: float = COMMAND_TIMEOUT) -> KubectlResult:
        completed = subprocess.run(
            ["bash", "-c", command], cwd=self.cwd, env=self.env(), capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip
        return KubectlResult(completed.returncode, completed.stdout, completed.stderr)

    def run(self, command: str, *, timeout: float = COMMAND_TIMEOUT, expect: int | None = 0) -> KubectlResult:
        """Run the document's next command, which must be ``command``; its exit code must be ``expect``."""
        text = self._next(command)
        assignment = re.fullmatch(r"([A-Z_]+)=(\$\(.*\))", text)
        script = f'{assignment[1]}={assignment[2]}; printf %s "${assignment[1]}"' if assignment else text
        result = self.shell(script, timeout=timeout)
        self.taken.append(Taken(text, ran=True))
        if expect is not None and result.code != expect:
            raise AssertionError(f"`{text}` exited {result.code}, not {expect}:\n{result.output}")
        if assignment:
            self.variables[assignment[1]] = result.stdout
        return result

    def run_until(
        self, command: str, done: Callable[[KubectlResult], bool], *, timeout: float, interval: float = 0.5
    ) -> KubectlResult:
        """Run the next command again and again until ``done`` holds (the document says to wait)."""
        text = self._next(command)
        deadline = time.monotonic() + timeout
        while True:
            result = self.shell(text)
            if done(result):
                self.taken.append(Taken(text, ran=True))
                return result
            if time.monotonic() >= deadline:
                raise AssertionError(f"`{text}` did not give the documented result within {timeout:.0f}s:\n"
                                     f"{result.output}")  # fmt: skip
            time.sleep(interval)

    def instead(self, command: str, reason: str) -> list[str]:
        """Take the next command without running it (the caller does the equivalent); its words as
        the shell expands them (variables of earlier assignments included)."""
        text = self._next(command)
        self.taken.append(Taken(text, ran=False, reason=reason))
        return self.shell(f"printf '%s\\0' {text}").stdout.split("\0")[:-1]

    def finish(self) -> list[Taken]:
        left = self.pending[len(self.taken) :]
        assert left == [], f"section {self.number}: the test did not exercise {left}"
        return self.taken
