"""The ``orange-fast`` command line.

Each subcommand lives in its own module, imported only when it is used (``orange-fast serve``
does not load the SFrame core or MLS).  A subcommand module provides::

    def add_arguments(parser: argparse.ArgumentParser) -> None
    def run(args: argparse.Namespace) -> int      # exit status

and is registered in :data:`COMMANDS` below with its one-line help.  Keep module top levels free of heavy imports:
``add_arguments`` runs for the selected subcommand only, ``run`` may import anything.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

__all__ = ["COMMANDS", "main", "build_parser"]

COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("orange_fast.delivery.command", "run the delivery service until SIGINT/SIGTERM"),
    "token": ("orange_fast.delivery.token_command", "issue a delivery-service access token (or create a token key)"),
    "bench": (
        "orange_fast.benchmark.command",
        "end-to-end call benchmark per participant count (`bench frames`: per frame)",
    ),
    "call": ("orange_fast.harness.command", "E2EE call demo: aiortc participants through a Janus SFU"),
    "record": ("orange_fast.recorder.command", "record an E2EE call as a member: one file per remote"),
}
"""Subcommand name -> (module implementing it, one-line help)."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported to add its arguments."""
    parser = argparse.ArgumentParser(
        prog="orange-fast", description="orange_fast: end-to-end encryption for group video calls"
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"orange-fast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module_name).add_arguments(sp)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``orange-fast`` console script; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in args_list if a in COMMANDS), None)
    parser = build_parser(command)
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
