"""``orange-fast record``: record a call as a member (see :mod:`orange_fast.recorder`).

Top level stays light: aiortc, PyAV and MLS are imported by :func:`run` only.
"""

from __future__ import annotations

import argparse
import os

__all__ = ["add_arguments", "run"]

TOKEN_ENV = "ORANGE_FAST_ROOM_TOKEN"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orange-fast record``."""
    parser.add_argument("--room", required=True, help="the session room (on the delivery service)")
    parser.add_argument("--ds", required=True, metavar="URL", help="the delivery service, e.g. ws://127.0.0.1:8765")
    parser.add_argument("--janus", required=True, metavar="URL", help="the Janus HTTP API, e.g. http://host:8088/janus")
    parser.add_argument("--sfu-room", required=True, type=int, metavar="N", help="the Janus VideoRoom number")
    parser.add_argument("--token-file", metavar="PATH",
                        help=f"file holding the room token (default: ${TOKEN_ENV})")
    parser.add_argument("--out", default="recording", metavar="DIR", help="output directory (default ./recording)")
    parser.add_argument("--identity", help="this member's MLS identity (default recorder-<random>)")
    parser.add_argument(
        "--duration", type=float, metavar="SECONDS", help="stop after this long (default: SIGINT/SIGTERM)"
    )
    parser.add_argument("--join-timeout", type=float, default=60.0, metavar="SECONDS")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")


def _token(args: argparse.Namespace) -> bytes | None:
    if args.token_file:
        with open(args.token_file, "rb") as fh:
            return fh.read().rstrip(b"\r\n")
    value = os.environ.get(TOKEN_ENV)
    return value.encode("utf-8") if value else None


def run(args: argparse.Namespace) -> int:
    """Join, record until stopped, leave; exit status 0, or 2 on a usage or connection error."""
    import asyncio
    import json
    import logging
    import resource
    import signal
    import sys
    import threading

    from .member import Recorder, RecordingError, format_summary

    logging.getLogger("aiortc").setLevel(logging.ERROR)
    if args.duration is not None and not args.duration > 0:
        print("orange-fast record: --duration must be > 0", file=sys.stderr)
        return 2
    try:
        token = _token(args)
    except OSError as exc:
        print(f"orange-fast record: cannot read the token file: {exc.strerror}", file=sys.stderr)
        return 2
    if not token:
        print(f"orange-fast record: no room token (--token-file or ${TOKEN_ENV})", file=sys.stderr)
        return 2

    def show(event: object) -> None:
        kind = getattr(event, "kind", "")
        if not args.json and kind in ("joined", "left", "safety"):
            detail = getattr(event, "identity", None) or getattr(event, "detail", "")
            print(f"[{kind}] {detail}", flush=True)

    recorder = Recorder(args.ds, args.room, token, args.out, identity=args.identity, on_event=show)
    stop = threading.Event()
    try:
        recorder.join(timeout=args.join_timeout)
        if not args.json:
            print(f"joined {args.room} as {recorder.identity}; safety number {recorder.safety_number}; "
                  f"roster {', '.join(recorder.roster)}", flush=True)

        async def main() -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await recorder.record(args.janus, args.sfu_room, duration=args.duration, stop=stop)

        asyncio.run(main())
    except (RecordingError, ValueError) as exc:
        print(f"orange-fast record: {exc}", file=sys.stderr)
        return 2
    finally:
        recorder.leave()
    summary = recorder.summary()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    summary["cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 3)  # the whole process: join, record, leave
    print(json.dumps(summary) if args.json else format_summary(summary))
    return 0
