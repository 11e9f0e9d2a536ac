"""``orange-fast serve``: run the delivery service until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse

HELP = "run the delivery service (WebSocket; SQLite or PostgreSQL log) until SIGINT/SIGTERM"


def _token_arg(text: str) -> tuple[str, bytes]:
    room, sep, token = text.partition("=")
    if not sep or not room or not token:
        raise argparse.ArgumentTypeError("expected ROOM=TOKEN")
    return room, token.encode("utf-8")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="TCP port, 0 = any free port (default 8765)")
    parser.add_argument("--db", default="orange-fast-delivery.db",
                        help="SQLite database file (created if missing), or a postgresql://user@host:port/db URL: "
                             "any number of nodes may serve the same PostgreSQL database")
    parser.add_argument("--heartbeat-interval", type=float, default=5.0, metavar="SECONDS")
    parser.add_argument("--eviction-timeout", type=float, default=15.0, metavar="SECONDS")
    parser.add_argument("--max-message-size", type=int, default=1 << 20, metavar="BYTES")
    parser.add_argument("--rate-messages", type=float, default=200.0, metavar="PER_SECOND",
                        help="inbound frames per second per connection (burst: 2x)")
    parser.add_argument("--rate-bytes", type=float, default=4 * 1024 * 1024, metavar="PER_SECOND",
                        help="inbound bytes per second per connection (burst: 2x, at least 2 max messages)")
    parser.add_argument("--room-token", action="append", type=_token_arg, default=[], metavar="ROOM=TOKEN",
                        help="configure a room's token (repeatable)")
    parser.add_argument("--no-room-creation", action="store_true",
                        help="only configured (or already stored) rooms may be entered")
    parser.add_argument("--min-token-length", type=int, default=16, metavar="BYTES",
                        help="shortest token that may create a room (default 16)")
    parser.add_argument("--synchronous", choices=("FULL", "NORMAL"), default="FULL",
                        help="SQLite durability (default FULL)")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import signal
    import sys

    from .errors import StorageError
    from .pgstorage import PostgresStorage, is_postgres_url
    from .ratelimit import RateLimits
    from .server import DeliveryServer, TokenPolicy
    from .storage import SQLiteStorage, Storage

    try:
        limits = RateLimits(
            messages_per_second=args.rate_messages,
            message_burst=2 * args.rate_messages,
            bytes_per_second=args.rate_bytes,
            byte_burst=max(2 * args.rate_bytes, 2 * args.max_message_size + 4096),
        )
        policy = TokenPolicy(
            tokens=dict(args.room_token),
            allow_room_creation=not args.no_room_creation,
            min_token_length=args.min_token_length,
        )
        storage: Storage = (
            PostgresStorage(args.db) if is_postgres_url(args.db) else SQLiteStorage(args.db, synchronous=args.synchronous)
        )
        server = DeliveryServer(
            args.host,
            args.port,
            storage,
            heartbeat_interval=args.heartbeat_interval,
            eviction_timeout=args.eviction_timeout,
            max_message_size=args.max_message_size,
            rate_limits=limits,
            token_policy=policy,
        )
    except (ValueError, TypeError) as exc:
        print(f"orange-fast serve: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await server.start()
        print(f"orange-fast delivery service listening on {server.url}", flush=True)
        try:
            await stop.wait()
        finally:
            await server.stop()
        print("orange-fast delivery service stopped", flush=True)

    try:
        asyncio.run(serve())
    except StorageError as exc:
        print(f"orange-fast serve: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"orange-fast serve: {exc}", file=sys.stderr)
        return 1
    return 0
