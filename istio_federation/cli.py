# PYTHON_ARGCOMPLETE_OK
"""``istio-federation <component> …``: the one console script.

Each component registers its own subcommands (``<package>.cli.register``); this module only
composes them, which is why it, and not a deployable, may import every deployable.  It is also the
edge where a command line meets the user:

- a subcommand's ``UsageError`` (``federation.commandline``), and an API server that cannot be used
  (``objectstore.preflight``), become one line on stderr and exit code 2;
- any other failure to run (a file that cannot be written, or a bug) is one line and exit code 1,
  with the traceback logged only at ``--log-level DEBUG``: no command prints a traceback for bad input;
- ``--log-level`` and ``--log-format`` are accepted before the subcommand or after it, and configure
  one format for the whole process (``serving.logs``), gunicorn's own lines included;
- every option's help shows its default;
- shell completion (argcomplete): ``istio-federation completion bash|zsh``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.metadata
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from federation.commandline import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, usage_line
from objectstore.preflight import FLAGS as API_FLAGS
from objectstore.preflight import ApiServerProblem
from serving import logs

PROGRAM = "istio-federation"
# (module, what it adds); imported lazily so a broken optional part cannot break `--help`.
_COMPONENTS = (
    "webhook.cli",
    "exporter.cli",
    "reconciler.cli",
    "certs.cli",
    "istio_federation.demo",
)
SHELLS = ("bash", "zsh", "fish", "tcsh", "powershell")

log = logging.getLogger(__name__)


def version() -> str:
    """The installed distribution's version (pyproject.toml's, via package metadata): one source."""
    try:
        return importlib.metadata.version("istio-federation")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def shown_default(value: Any) -> str:
    """A default as a user would type it: ``5m`` rather than ``0:05:00``, ``on``/``off``."""
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
        for unit, size in (("h", 3600), ("m", 60)):
            if seconds >= size and seconds % size == 0:
                return f"{int(seconds // size)}{unit}"
        return f"{seconds:g}s"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    return str(value)


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, with each option's default appended unless its help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            not text
            or default is None
            or default is argparse.SUPPRESS
            or default is False
            or default == []
            or isinstance(action, (argparse._StoreTrueAction, argparse._VersionAction, argparse._HelpAction))
            or "default" in text.lower()
            or not action.option_strings
        ):
            return text
        return f"{text} (default: {shown_default(default).replace('%', '%%')})"


def _add_logging_arguments(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """``--log-level``/``--log-format``: at the top with their defaults; after a subcommand they
    override those only when given (SUPPRESS), so both places work."""
    group = parser.add_argument_group("logging")
    group.add_argument(
        "--log-level",
        type=str.upper,
        choices=logs.LEVELS,
        default=logs.DEFAULT_LEVEL if top else argparse.SUPPRESS,
        help=f"least severe log lines written to stderr (default: {logs.DEFAULT_LEVEL})",
    )
    group.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default=logs.DEFAULT_FORMAT if top else argparse.SUPPRESS,
        help="text: TIME LEVEL LOGGER: MESSAGE; json: one object per line with time, level, component, logger, "
        f"message, and federation and object when known, gunicorn's lines too (default: {logs.DEFAULT_FORMAT})",
    )


def subcommands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every parser under ``parser`` (not itself), with its command path, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield name, child
                for path, grandchild in subcommands(child):
                    yield f"{name} {path}", grandchild


def _completion(args: argparse.Namespace) -> int:
    from argcomplete.shell_integration import shellcode

    sys.stdout.write(shellcode([PROGRAM], shell=args.shell))
    return EXIT_OK


def _register_completion(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "completion",
        help="print the shell completion script (bash, zsh, fish, tcsh, powershell)",
        description="Print the script that completes istio-federation's subcommands and options in SHELL. "
        'bash: eval "$(istio-federation completion bash)" in ~/.bashrc; '
        'zsh: eval "$(istio-federation completion zsh)" in ~/.zshrc (after compinit). '
        "argcomplete's own register-python-argcomplete istio-federation prints the same.",
    )
    parser.add_argument("shell", choices=SHELLS, metavar="SHELL", help=f"one of {', '.join(SHELLS)}")
    parser.set_defaults(handler=_completion)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Federate sovereign Istio clusters (Deckhouse IstioFederation compatible).",
        epilog="Exit status: 0 success, 1 a failure was found (a check failed, an object was denied), "
        "2 the command could not run as given (usage, unreadable input, an unusable API server).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    _add_logging_arguments(parser, top=True)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in _COMPONENTS:
        module = importlib.import_module(module_name)
        register: Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None] = module.register
        register(subparsers)
    _register_completion(subparsers)
    parser.formatter_class = HelpFormatter
    for _, child in subcommands(parser):
        child.formatter_class = HelpFormatter
        _add_logging_arguments(child, top=False)
    _describe_from_help(parser)
    return parser


def _describe_from_help(parser: argparse.ArgumentParser) -> None:
    """A subcommand without a description of its own gets its one-line help, capitalised, as one."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help for choice in action._choices_actions}
        for name, child in action.choices.items():
            text = helps.get(name)
            if child.description is None and text:
                child.description = text[:1].upper() + text[1:] + "."
            _describe_from_help(child)


def _run(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return handler(args)
    except UsageError as error:  # every subcommand reports a command line that cannot work here
        print(usage_line(str(error)), file=sys.stderr)
        return EXIT_USAGE
    except ApiServerProblem as error:
        print(usage_line(f"{API_FLAGS}: {error}"), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except OSError as error:  # a file or directory the command had to read or write
        where = f"{error.filename}: " if error.filename else ""
        print(usage_line(f"{where}{error.strerror or error}"), file=sys.stderr)
        log.debug("the failure in full", exc_info=True)
        return EXIT_FAILED
    except Exception as error:  # a bug: one line for the user, the traceback for --log-level DEBUG
        print(
            usage_line(
                f"unexpected {type(error).__name__}: {error} "
                f"(a bug: please report it with the output of --log-level DEBUG)"
            ),
            file=sys.stderr,
        )
        log.debug("the failure in full", exc_info=True)
        return EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    if argv is None:
        import argcomplete

        # Answers a shell's completion request (environment _ARGCOMPLETE) and exits; otherwise a no-op.
        argcomplete.autocomplete(parser)
    args = parser.parse_args(argv)
    logs.configure(level=args.log_level, log_format=args.log_format, component=args.command)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return _run(handler, args)


if __name__ == "__main__":
    sys.exit(main())
