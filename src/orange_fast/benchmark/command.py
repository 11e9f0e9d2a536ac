"""``orange-fast bench``: run the benchmarks and print a table (plus JSON, Markdown and plots).

``orange-fast bench`` (or ``orange-fast bench call``) runs the end-to-end call benchmark (:mod:`.call`);
``orange-fast bench frames`` (or ``--frames``) runs the per-frame benchmark (:mod:`.frames`);
``orange-fast bench delivery`` loads the delivery service, SQLite vs PostgreSQL, 1-3 nodes (:mod:`.delivery`).
"""

from __future__ import annotations

import os

# numpy's OpenBLAS would otherwise start one spinning thread per core: on a 2-core machine
# that steals the second core from the 2-thread measurements.  Set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

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


def _float_tuple(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values or any(not v > 0 for v in values):
        raise argparse.ArgumentTypeError("expected positive numbers")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orange-fast bench``."""
    parser.add_argument("what", nargs="?", choices=("call", "frames", "mls", "session", "delivery"), default=None,
                        help="call: end-to-end call benchmark (default); frames: per-frame SFrame benchmark; "
                             "mls: MLS operations against mls-rs; session: join/leave latency on loopback; "
                             "delivery: the delivery service under load (SQLite vs PostgreSQL, 1-3 nodes)")
    parser.add_argument("--frames", action="store_true", help="same as `orange-fast bench frames`")
    parser.add_argument("--quick", action="store_true", help="a few seconds: fewer sizes, N and rounds (for CI)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds per case")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the results as JSON")
    parser.add_argument("--markdown", type=Path, default=None, metavar="PATH", help="write the table as Markdown")
    g = parser.add_argument_group("per-frame benchmark (frames)")
    g.add_argument("--suites", type=_int_tuple, default=None, help="SFrame suites, e.g. 4,5,1")
    g.add_argument("--sizes", type=_int_tuple, default=None, help="frame sizes in bytes")
    g.add_argument("--no-threads", action="store_true", help="skip the 2-thread scaling runs")
    g = parser.add_argument_group("MLS and session benchmarks (mls, session)")
    g.add_argument("--group-sizes", type=_int_tuple, default=None, metavar="N,N,...",
                   help="group sizes (mls default 2,8,32,128,512,1024; session default 2,4,8,16,32,64)")
    g = parser.add_argument_group("delivery service benchmark (delivery)")
    g.add_argument("--clients", type=_int_tuple, default=None, metavar="N,N,...",
                   help="client counts, rooms of 8 (default 256,1000,2000; quick 64)")
    g.add_argument("--nodes", type=_int_tuple, default=None, metavar="N,N,...", help="node counts (default 1,2,3)")
    g.add_argument("--stores", default="sqlite,postgresql", help="stores to compare (default sqlite,postgresql)")
    g.add_argument("--no-kill", action="store_true", help="skip the kill -9 cases")
    g.add_argument("--placement", default="room",
                   help="room: each room's clients on one node (routing by room); spread: every room on every "
                        "node; both: room,spread (default room)")
    g.add_argument("--no-fsync", action="store_true",
                   help="diagnostic: no fsync (PostgreSQL fsync=off, SQLite NORMAL) to see the CPU limit")
    g = parser.add_argument_group("call benchmark (call)")
    g.add_argument("--participants", "-n", type=_int_tuple, default=None, metavar="N,N,...",
                   help="participant counts (default 2,4,8,16,32,64; quick 2,4,8)")
    g.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="seconds of media simulated per N (default 2; quick 0.25)")
    g.add_argument("--suite", type=int, default=4, help="SFrame cipher suite of the call (default 4, AES-128-GCM)")
    g.add_argument("--bitrate", type=float, default=1.5, metavar="MBIT/S", help="video bitrate per sender (1.5)")
    g.add_argument("--keyframe-interval", type=float, default=2.0, metavar="SECONDS", help="seconds between keyframes")
    g.add_argument("--tick-ms", type=float, default=10.0, help="receiver batch tick in milliseconds (10)")
    g.add_argument("--seed", type=int, default=1, help="seed of the traffic model")
    g.add_argument("--plots", type=Path, default=None, metavar="DIR",
                   help="directory for the PNG plots and JSON/Markdown copies "
                        "(default bench/results, with --quick bench/results/quick)")
    g.add_argument("--no-plots", action="store_true", help="write no plots or result files to --plots")
    g.add_argument("--no-loopback", action="store_true", help="skip the loopback mode (delivery service + relay)")
    g.add_argument("--loopback-participants", type=_int_tuple, default=None, metavar="N,N,...",
                   help="participant counts of the loopback mode (default 2,4,8,16; quick 2,4)")
    g.add_argument("--loopback-duration", type=float, default=None, metavar="SECONDS",
                   help="seconds of real-time media per N in the loopback mode (default 2; quick 0.5)")


class _Progress:
    """A progress bar on stderr (plain lines when stderr is not a terminal)."""

    WIDTH = 28

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.t0 = time.monotonic()
        self._last = ""

    def __call__(self, text: str, fraction: float | None = None) -> None:
        elapsed = time.monotonic() - self.t0
        if fraction is None:
            line = f"[{elapsed:6.1f}s] {text}"
        else:
            filled = int(round(max(0.0, min(fraction, 1.0)) * self.WIDTH))
            bar = "#" * filled + "." * (self.WIDTH - filled)
            line = f"[{bar}] {fraction * 100:3.0f}% {elapsed:6.1f}s  {text}"
        if self.tty:
            sys.stderr.write("\r\033[K" + line)
        elif text != self._last:
            sys.stderr.write(line + "\n")
        self._last = text
        sys.stderr.flush()

    def fraction(self, fraction: float, text: str) -> None:
        self(text, fraction)

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _write(path: Path | None, text: str) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark selected (the call benchmark by default)."""
    if args.frames or args.what == "frames":
        return run_frames(args)
    if args.what == "mls":
        return run_mls(args)
    if args.what == "session":
        return run_session(args)
    if args.what == "delivery":
        return run_delivery(args)
    return run_call(args)


def _emit(args: argparse.Namespace, result: dict, table: str) -> int:
    print(table)
    if args.json:
        _write(args.json, json.dumps(result, indent=2, default=str) + "\n")
        print(f"\nJSON written to {args.json}")
    _write(args.markdown, table + "\n")
    return 0


def run_mls(args: argparse.Namespace) -> int:
    """MLS commit / process / Welcome costs per group size, side by side with mls-rs."""
    from .mls import DEFAULT_SIZES, QUICK_SIZES, format_mls_table, run_mls_bench

    sizes = args.group_sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    if any(n < 2 for n in sizes) or (args.rounds is not None and args.rounds < 1):
        print("orange-fast bench: group sizes must be >= 2 and --rounds >= 1", file=sys.stderr)
        return 2
    progress = _Progress()
    kwargs = {} if args.rounds is None else {"rounds": args.rounds}
    result = run_mls_bench(sizes, quick=args.quick, progress=progress, **kwargs)
    progress.done()
    return _emit(args, result, format_mls_table(result))


def run_session(args: argparse.Namespace) -> int:
    """Join and leave latency, messages and bytes per join, on a loopback delivery service."""
    from .session import DEFAULT_SIZES, QUICK_SIZES, format_session_table, run_session_bench

    sizes = args.group_sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    if any(n < 2 for n in sizes) or (args.rounds is not None and args.rounds < 1):
        print("orange-fast bench: group sizes must be >= 2 and --rounds >= 1", file=sys.stderr)
        return 2
    progress = _Progress()
    kwargs = {} if args.rounds is None else {"rounds": args.rounds}
    result = run_session_bench(sizes, progress=progress, transitions=True, **kwargs)
    progress.done()
    return _emit(args, result, format_session_table(result))


def run_delivery(args: argparse.Namespace) -> int:
    """The delivery service under load: clients held, appends/s, latency, CPU, RSS, kill -9."""
    from .delivery import MAX_CLIENTS, MAX_DURATION, format_delivery_table, run_delivery_bench  # noqa: I001

    clients = args.clients or ((64,) if args.quick else (256, 1000, 2000))
    nodes = args.nodes or ((1, 2) if args.quick else (1, 2, 3))
    stores = tuple(s.strip() for s in args.stores.split(",") if s.strip())
    duration = args.duration if args.duration is not None else (3.0 if args.quick else 20.0)
    if (any(not 0 < c <= MAX_CLIENTS for c in clients) or any(not 1 <= n <= 3 for n in nodes)
            or not set(stores) <= {"sqlite", "postgresql"} or not stores or not 0 < duration <= MAX_DURATION):
        print(f"orange-fast bench delivery: need 1..{MAX_CLIENTS} clients, 1..3 nodes, stores sqlite/postgresql, "
              f"0 < --duration <= {MAX_DURATION:g}", file=sys.stderr)
        return 2
    progress = _Progress()
    placements = tuple(p.strip() for p in args.placement.split(",") if p.strip())
    if not placements or not set(placements) <= {"room", "spread"}:
        print("orange-fast bench delivery: --placement takes room and/or spread", file=sys.stderr)
        return 2
    result = run_delivery_bench(clients, nodes, stores, duration, not args.no_kill, progress=progress,
                                durable=not args.no_fsync, placements=placements)
    progress.done()
    return _emit(args, result, format_delivery_table(result))


def run_call(args: argparse.Namespace) -> int:
    """The end-to-end call benchmark: table, JSON, Markdown and plots."""
    from .call import QUICK_PARTICIPANTS, DEFAULT_PARTICIPANTS, CallConfig, format_call_table, run_call_bench
    from .traffic import TrafficModel

    quick = args.quick
    participants = args.participants or (QUICK_PARTICIPANTS if quick else DEFAULT_PARTICIPANTS)
    duration = args.duration if args.duration is not None else (0.25 if quick else 2.0)
    rounds = args.rounds if args.rounds is not None else (1 if quick else 3)
    if rounds < 1 or not duration > 0 or any(n < 2 for n in participants):
        print("orange-fast bench: need --rounds >= 1, --duration > 0 and participant counts >= 2", file=sys.stderr)
        return 2
    try:
        model = TrafficModel(video_bitrate=args.bitrate * 1e6, keyframe_interval=args.keyframe_interval)
        from ..sframe import CipherSuite

        CipherSuite(args.suite)
        if not args.tick_ms > 0:
            raise ValueError("--tick-ms must be > 0")
    except ValueError as exc:
        print(f"orange-fast bench: {exc}", file=sys.stderr)
        return 2
    cfg = CallConfig(participants=tuple(participants), duration=duration, rounds=rounds, suite=args.suite,
                     tick_ms=args.tick_ms, model=model, seed=args.seed)
    progress = _Progress()
    lb_ns = () if args.no_loopback else (
        args.loopback_participants or ((2, 4) if quick else (2, 4, 8, 16)))
    share = 0.85 if lb_ns else 1.0
    result = run_call_bench(cfg, progress=lambda f, text: progress.fraction(f * share, text))
    if lb_ns:
        from .loopback import LoopbackConfig, run_loopback

        lb_duration = args.loopback_duration if args.loopback_duration is not None else (0.5 if quick else 2.0)
        lcfg = LoopbackConfig(participants=tuple(lb_ns), duration=lb_duration, suite=args.suite, model=model,
                              seed=args.seed)
        result["loopback"] = run_loopback(
            lcfg, progress=lambda f, text: progress.fraction(share + (1 - share) * f, "loopback: " + text))
    progress.done()
    table = format_call_table(result)
    print(table)
    text = json.dumps(result, indent=2, default=str) + "\n"
    if args.json:
        _write(args.json, text)
        print(f"\nJSON written to {args.json}")
    _write(args.markdown, table + "\n")
    if not args.no_plots:
        from .plots import write_plots

        plots = args.plots or Path("bench/results/quick" if quick else "bench/results")
        paths = write_plots(result, plots)
        _write(plots / "call.json", text)
        _write(plots / "call.md", table + "\n")
        print("Plots written: " + ", ".join(str(p) for p in paths))
    return 0


def run_frames(args: argparse.Namespace) -> int:
    """Run the frame benchmark with the options given."""
    from .frames import DEFAULT_SIZES, DEFAULT_SUITES, format_table, run_frame_bench

    suites = args.suites or ((4, 1) if args.quick else DEFAULT_SUITES)
    sizes = args.sizes or ((64, 1024, 16384) if args.quick else DEFAULT_SIZES)
    rounds = args.rounds if args.rounds is not None else (3 if args.quick else 15)
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
        _write(args.json, json.dumps(result, indent=2, default=str) + "\n")
        print(f"\nJSON written to {args.json}")
    _write(args.markdown, table + "\n")
    return 0
