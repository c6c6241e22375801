"""``istio-federation demo``: the local two-cluster story (issue 5); placeholder until written."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = subparsers.add_parser("demo", help="run the local two-cluster federation demo")
    demo.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    return 0
