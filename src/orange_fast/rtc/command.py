"""``orange-fast call``: the E2EE call demo as a CLI subcommand (see :mod:`orange_fast.cli`).

Top level stays light: aiortc and the SFrame core are imported by :func:`run` only.
"""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orange-fast call``."""
    parser.add_argument("-n", "--participants", type=int, default=3, help="number of participants (default 3)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of media (default 5)")
    parser.add_argument("--codec", choices=["vp8", "h264"], default="vp8", help="video codec (default vp8)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")


def run(args: argparse.Namespace) -> int:
    """Run the demo call; exit status 0 on success, 2 if the SFU cannot run here."""
    import json
    import logging
    import sys

    from .demo import format_summary, run_call
    from .errors import JanusError, NetnsError

    logging.getLogger("aiortc").setLevel(logging.ERROR)
    try:
        summary = run_call(args.participants, args.seconds, videocodec=args.codec)
    except (JanusError, NetnsError, ValueError) as exc:
        print(f"orange-fast call: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary) if args.json else format_summary(summary))
    return 0
