"""``orange-fast call``: the E2EE call demo as a CLI subcommand (see :mod:`orange_fast.cli`).

Top level stays light: aiortc and the SFrame core are imported by :func:`run` only.
"""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orange-fast call``."""
    parser.add_argument("-n", "--participants", type=int, default=3, help="number of participants (default 3)")
    parser.add_argument("--seconds", type=float, default=None, help="seconds of media (default 5; 12 with --churn)")
    parser.add_argument("--codec", choices=["vp8", "h264"], default="vp8", help="video codec (default vp8)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.add_argument("--static-keys", action="store_true",
                        help="fixed demo keys instead of the session layer (no delivery service, no MLS)")
    parser.add_argument("--record", metavar="DIR",
                        help="add a recording member (orange_fast.recorder) that writes one file per remote to DIR")
    parser.add_argument("--churn", action="store_true",
                        help="joins, leaves and self-updates during the call (7 epoch changes, static keys; "
                             "12 s unless --seconds is given); the JSON gets `churn` and `transitions`")
    parser.add_argument("--delay", type=float, default=0.0, metavar="MS",
                        help="with --churn: extra delay (0-300 ms) before participant 1 processes each commit")
    parser.add_argument("--browsers", type=int, default=0, metavar="K",
                        help="add K headless Chromium participants (the call page, driven by Playwright; "
                             "needs Debian's chromium); the JSON marks each participant's kind")
    parser.add_argument("--transform", choices=["script", "streams"], default=None,
                        help="with --browsers: the encoded-frame API of the pages (default: RTCRtpScriptTransform "
                             "when present, else createEncodedStreams)")
    parser.add_argument("--legacy-transitions", action="store_true",
                        help="no hold and a keyframe on every key change (the behaviour before holding)")


def run(args: argparse.Namespace) -> int:
    """Run the demo call; exit status 0 on success, 2 if the SFU cannot run here."""
    import json
    import logging
    import sys

    from .demo import format_summary, run_call
    from .errors import JanusError, NetnsError

    logging.getLogger("aiortc").setLevel(logging.ERROR)
    args.seconds_given = args.seconds is not None
    if args.seconds is None:
        args.seconds = 5.0
    if args.participants < 1 or args.participants + max(args.browsers, 0) < 2:
        print("orange-fast call: a call needs at least 2 participants (one of them aiortc)", file=sys.stderr)
        return 2
    if args.churn and not 0 <= args.delay <= 300:
        print("orange-fast call: --delay must be within 0..300 ms", file=sys.stderr)
        return 2
    from ..rtc.transition import TransitionPolicy

    policy = TransitionPolicy.legacy() if args.legacy_transitions else TransitionPolicy()
    if args.record and (args.static_keys or args.churn):
        print("orange-fast call: --record needs the session layer (not --static-keys or --churn)", file=sys.stderr)
        return 2
    if args.browsers < 0 or (args.browsers and (args.churn or args.static_keys)):
        print("orange-fast call: --browsers K needs K >= 0 and the session layer (not --churn, --static-keys)",
              file=sys.stderr)
        return 2
    try:
        if args.browsers or args.record:
            from ..recorder.member import RecordingError

            try:
                if args.browsers:
                    from .browser import run_browser_call

                    summary = run_browser_call(args.participants, args.browsers, args.seconds, videocodec=args.codec,
                                               transform=args.transform, record_dir=args.record)
                else:
                    from ..recorder.demo import run_recorded_call

                    summary = run_recorded_call(args.participants, args.seconds, args.record, videocodec=args.codec)
            except RecordingError as exc:
                print(f"orange-fast call: {exc}", file=sys.stderr)
                return 2
        elif args.churn:
            from .call import ChurnPlan

            seconds = args.seconds if args.seconds_given else 12.0
            summary = run_call(max(args.participants, 3), seconds, videocodec=args.codec,
                               churn=ChurnPlan.default(seconds, delay=args.delay / 1000.0), transitions=policy)
        elif args.static_keys:
            summary = run_call(args.participants, args.seconds, videocodec=args.codec, transitions=policy)
        else:
            from .session_room import SessionRoom

            # the delivery service and one session client per participant agree on an MLS
            # group first; the hooks then take their SFrame keys from those clients
            with SessionRoom(args.participants) as room:
                summary = run_call(args.participants, args.seconds, videocodec=args.codec,
                                   keys=room.clients, safety_numbers=room.safety_numbers(), transitions=policy)
                summary["delivery_service"] = room.url
                summary["epoch"] = room.clients[0].epoch
    except (JanusError, NetnsError, ValueError, TimeoutError) as exc:
        print(f"orange-fast call: {exc}", file=sys.stderr)
        return 2
    if not args.json and "delivery_service" in summary:
        print(f"delivery service {summary['delivery_service']}; MLS epoch {summary['epoch']}; "
              "SFrame keys from the MLS exporter")
    print(json.dumps(summary) if args.json else format_summary(summary))
    if not args.json and "recorder" in summary:
        from ..recorder.member import format_summary as format_recording

        print(format_recording(summary["recorder"]))
        in_call = summary["recorder"].get("in_call")
        if in_call is not None:
            print(f"recorder during the call: safety number {in_call['safety_number']}; "
                  f"roster {', '.join(in_call['roster'])}")
        after = summary["recorder"].get("after_leave")
        if after is not None:
            print(f"recorder left: the participants are at MLS epoch {after['epoch']} with "
                  f"{', '.join(after['roster'])}")
    return 0
