"""A session client as a process, driven over stdin/stdout (used by the end-to-end tests).

Usage::

    ORANGE_FAST_ROOM_TOKEN=... python -m orange_fast.harness.session_runner --url ws://127.0.0.1:8765 --room r \\
        --id alice

It joins the room and prints one JSON object per line on stdout:

* ``{"type": "state", ...}`` after every epoch change or group loss (gen, epoch, epoch
  authenticator, safety number, roster from MLS state, send KID, ...);
* answers to commands read from stdin, one per line:

  ``status``            -> ``{"type": "status", ...}``
  ``encrypt <hex>``     -> ``{"type": "frame", "ct": <hex>}`` (SFrame under the current send key)
  ``decrypt <hex>``     -> ``{"type": "decrypted", "ok": bool, "pt": <hex>|null, "error": <name>|null}``
  ``leave``             -> leaves the room (BYE), keeps the process (and its dropped keys) for questions
  ``exit``              -> leaves if needed and exits with status 0

A ``{"type": "failed"}`` or ``{"type": "superseded"}`` line says the session ended for good.

Secrets never appear on stdout: only public values (authenticators are public to members,
safety numbers are meant to be shown).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from typing import Any

from ..sframe import SFrameError
from ..session.client import SessionClient, SessionConfig, SessionEvent

__all__ = ["main"]


def _print(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


async def _run(args: argparse.Namespace) -> int:
    token = os.environ.get(args.token_env, "").encode("utf-8")
    if not token:
        print(f"runner: set {args.token_env}", file=sys.stderr)
        return 2
    config = SessionConfig(
        tick_interval=args.tick, grace_period=args.grace, update_interval=args.update_interval
    )
    client: SessionClient | None = None

    def on_event(event: SessionEvent) -> None:
        if event.kind in ("epoch", "lost") and client is not None:
            _print({"type": "state", "event": event.kind, "detail": event.detail, **client.status()})
        elif event.kind in ("failed", "superseded"):
            _print({"type": event.kind, "detail": event.detail})

    client = SessionClient(
        args.url, args.room, token, args.id, config=config, on_event=on_event,
        delivery_options={"backoff_initial": 0.02, "backoff_max": 0.5},
    )
    await client.start()
    _print({"type": "started", "client": args.id})
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    left = False
    while True:
        line = await reader.readline()
        if not line:
            break
        parts = line.decode("ascii", "replace").split()
        if not parts:
            continue
        cmd = parts[0]
        try:
            if cmd == "status":
                _print({"type": "status", **client.status()})
            elif cmd == "encrypt" and len(parts) == 2:
                kid = client.send_kid()
                if kid is None:
                    _print({"type": "frame", "ct": None, "error": "no send key"})
                else:
                    _print({"type": "frame", "ct": client.context.encrypt(kid, bytes.fromhex(parts[1])).hex()})
            elif cmd == "decrypt" and len(parts) == 2:
                try:
                    pt = client.context.decrypt(bytes.fromhex(parts[1]))
                except SFrameError as exc:
                    _print({"type": "decrypted", "ok": False, "pt": None, "error": type(exc).__name__})
                else:
                    _print({"type": "decrypted", "ok": True, "pt": pt.hex(), "error": None})
            elif cmd == "leave":
                if not left:
                    await client.leave()
                    left = True
                _print({"type": "left", **client.status()})
            elif cmd == "exit":
                break
            else:
                _print({"type": "error", "error": "unknown command"})
        except ValueError:
            _print({"type": "error", "error": "bad argument"})
    if not left:
        await client.leave()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m orange_fast.harness.session_runner", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--room", required=True)
    parser.add_argument("--id", required=True, help="client id and MLS identity")
    parser.add_argument(
        "--token-env", default="ORANGE_FAST_ROOM_TOKEN", help="environment variable holding the room token"
    )
    parser.add_argument("--tick", type=float, default=0.2)
    parser.add_argument("--grace", type=float, default=1.0)
    parser.add_argument("--update-interval", type=int, default=0)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    try:
        return asyncio.run(_run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
