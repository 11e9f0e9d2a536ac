"""``orange-fast bench``: run the benchmarks and print a table (plus JSON and Markdown on request)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

__all__ = ["add_arguments", "run"]


def _int_tuple(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError("expected non-negative integers")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orange-fast bench``."""
    parser.add_argument("--quick", action="store_true", help="a few seconds: fewer sizes and rounds (for CI)")
    parser.add_argument("--suites", type=_int_tuple, default=None, help="SFrame suites, e.g. 4,5,1")
    parser.add_argument("--sizes", type=_int_tuple, default=None, help="frame sizes in bytes")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds per case")
    parser.add_argument("--no-threads", action="store_true", help="skip the 2-thread scaling runs")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the results as JSON")
    parser.add_argument("--markdown", type=Path, default=None, metavar="PATH", help="write the table as Markdown")


class _Progress:
    """A one-line progress indicator on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.t0 = time.monotonic()

    def __call__(self, text: str) -> None:
        line = f"[{time.monotonic() - self.t0:6.1f}s] {text}"
        if self.tty:
            sys.stderr.write("\r\033[K" + line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    """Run the frame benchmark with the options given."""
    from .frames import DEFAULT_SIZES, DEFAULT_SUITES, format_table, run_frame_bench

    suites = args.suites or ((4, 1) if args.quick else DEFAULT_SUITES)
    sizes = args.sizes or ((64, 1024, 16384) if args.quick else DEFAULT_SIZES)
    rounds = args.rounds or (3 if args.quick else 15)
    if rounds < 1:
        print("orange-fast bench: --rounds must be >= 1", file=sys.stderr)
        return 2
    progress = _Progress()
    result = run_frame_bench(suites=suites, sizes=sizes, rounds=rounds,
                             threads=not args.no_threads, progress=progress)
    progress.done()
    table = format_table(result)
    print(table)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"\nJSON written to {args.json}")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table + "\n")
    return 0
