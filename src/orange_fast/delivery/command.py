"""``orange-fast serve``: run the delivery service until SIGINT or SIGTERM.

Secure by default: clients need per-client access tokens (``orange-fast token``) signed with the
key given by ``--token-key FILE`` (created there if missing) or the ``ORANGE_FAST_TOKEN_KEY``
environment variable.  Shared room tokens only with ``--insecure-room-tokens``.  Without either,
``serve`` refuses to start.
"""

from __future__ import annotations

import argparse

HELP = "run the delivery service (WebSocket; SQLite or PostgreSQL log) until SIGINT/SIGTERM"

_SECURITY_HELP = (
    "orange-fast serve needs client credentials: --token-key FILE (signed per-client access tokens; "
    "the file is created if missing; issue tokens with `orange-fast token --key FILE --room R --client C`), "
    "or the key in $ORANGE_FAST_TOKEN_KEY, or --insecure-room-tokens (shared room tokens: any member can "
    "impersonate any other; tests and demos only)"
)


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
    parser.add_argument("--token-key", metavar="FILE",
                        help="key verifying access tokens: HS256 secret or Ed25519 PEM (private or public); "
                             "an HS256 key is created there if the file is missing (default: $ORANGE_FAST_TOKEN_KEY)")
    parser.add_argument("--insecure-room-tokens", action="store_true",
                        help="accept shared room tokens instead of access tokens (INSECURE: members can "
                             "impersonate each other; tests and demos only)")
    parser.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                        help="accept WebSocket connections from this browser Origin (exact match, repeatable; "
                             "'*' = any). Default: browsers (which send Origin) are refused; clients without "
                             "Origin are accepted")
    parser.add_argument("--web", action="store_true",
                        help="also serve the browser call page (orange_fast/web) on --web-port and accept its Origin")
    parser.add_argument("--web-port", type=int, default=None, metavar="PORT",
                        help="with --web: HTTP port of the page (default: --port + 1)")
    parser.add_argument("--janus", default="http://127.0.0.1:8088/janus", metavar="URL",
                        help="with --web: the Janus HTTP API the page uses (default http://127.0.0.1:8088/janus)")
    parser.add_argument("--room-token", action="append", type=_token_arg, default=[], metavar="ROOM=TOKEN",
                        help="with --insecure-room-tokens: configure a room's token (repeatable)")
    parser.add_argument("--no-room-creation", action="store_true",
                        help="only configured (or already stored) rooms may be entered")
    parser.add_argument("--min-token-length", type=int, default=16, metavar="BYTES",
                        help="with --insecure-room-tokens: shortest token that may create a room (default 16)")
    from .limits import ServerLimits  # light: the defaults below are those of ServerLimits.public()

    public = ServerLimits.public()
    parser.add_argument("--max-connections", type=int, default=public.max_connections, metavar="N",
                        help="open connections in all (beyond: SERVER_BUSY; default %(default)s)")
    parser.add_argument("--max-connections-per-address", type=int, default=public.max_connections_per_address,
                        metavar="N", help="open connections per remote IP address (default %(default)s; 0 = no cap)")
    parser.add_argument("--hellos-per-second", type=float, default=public.hellos_per_second_per_address,
                        metavar="RATE",
                        help="HELLO attempts per second per remote IP address, burst 4x (default %(default)s; "
                             "0 = no cap)")
    parser.add_argument("--max-rooms", type=int, default=public.max_rooms, metavar="N",
                        help="rooms held in memory (default %(default)s)")
    parser.add_argument("--max-join-payload", type=int, default=public.max_join_payload, metavar="BYTES",
                        help="largest HELLO join payload (default %(default)s; the session layer sends none)")
    parser.add_argument("--overload-lag", type=float, default=public.overload_lag, metavar="SECONDS",
                        help="shed new connections while the smoothed event-loop lag exceeds this "
                             "(default %(default)s; 0 = never)")
    parser.add_argument("--room-retention", type=float, default=public.room_retention, metavar="SECONDS",
                        help="delete logs of rooms nobody is present in after this long without activity "
                             "(default %(default)s = 7 days; 0 = keep forever)")
    parser.add_argument("--synchronous", choices=("FULL", "NORMAL"), default="FULL",
                        help="SQLite durability (default FULL)")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import os
    import signal
    import sys

    from .auth import KEY_ENV_VAR, AccessTokenKey, AccessTokens, Authenticator, TokenPolicy
    from .errors import StorageError
    from .limits import ServerLimits
    from .pgstorage import PostgresStorage, is_postgres_url
    from .ratelimit import RateLimits
    from .server import DeliveryServer
    from .storage import SQLiteStorage, Storage

    auth: Authenticator
    try:
        if args.insecure_room_tokens:
            if args.token_key:
                raise ValueError("--token-key and --insecure-room-tokens exclude each other")
            print("orange-fast serve: WARNING: --insecure-room-tokens: every room member holds the room token "
                  "and can connect as any other member (tests and demos only)", file=sys.stderr)
            auth = TokenPolicy(
                tokens=dict(args.room_token),
                allow_room_creation=not args.no_room_creation,
                min_token_length=args.min_token_length,
            )
        else:
            if args.room_token:
                raise ValueError("--room-token needs --insecure-room-tokens")
            if args.token_key:
                if os.path.exists(args.token_key):
                    key = AccessTokenKey.from_file(args.token_key)
                else:
                    key = AccessTokenKey.generate(args.token_key)
                    print(f"orange-fast serve: created a new HS256 token key in {os.path.abspath(args.token_key)} "
                          "(mode 0600); issue tokens with `orange-fast token --key FILE --room R --client C`",
                          file=sys.stderr)
            elif os.environ.get(KEY_ENV_VAR):
                key = AccessTokenKey(os.environ[KEY_ENV_VAR])
            else:
                print(_SECURITY_HELP, file=sys.stderr)
                return 2
            auth = AccessTokens(key, allow_room_creation=not args.no_room_creation)
        limits = ServerLimits.public(
            max_connections=args.max_connections,
            max_connections_per_address=args.max_connections_per_address or None,
            hellos_per_second_per_address=args.hellos_per_second or None,
            hello_burst_per_address=4 * args.hellos_per_second if args.hellos_per_second else 40.0,
            max_rooms=args.max_rooms,
            max_join_payload=args.max_join_payload,
            overload_lag=args.overload_lag or None,
            room_retention=args.room_retention or None,
        )
        web = None
        if args.web:
            from ..web.serve import WebServer, page_available

            reason = page_available()
            if reason is not None:
                raise ValueError(reason)
            web_port = args.web_port if args.web_port is not None else (args.port + 1 if args.port else 0)
            if not web_port:
                raise ValueError("--web with --port 0 needs --web-port")
            host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
            web = WebServer(args.host, web_port, config={"ws": f"ws://{host}:{args.port}", "janus": args.janus})
            args.allow_origin.append(f"http://{host}:{web_port}")  # the page's own origin
        origins = None if "*" in args.allow_origin else list(args.allow_origin)
        rate_limits = RateLimits(
            messages_per_second=args.rate_messages,
            message_burst=2 * args.rate_messages,
            bytes_per_second=args.rate_bytes,
            byte_burst=max(2 * args.rate_bytes, 2 * args.max_message_size + 4096),
        )
        storage: Storage = (
            PostgresStorage(args.db)
            if is_postgres_url(args.db)
            else SQLiteStorage(args.db, synchronous=args.synchronous)
        )
        server = DeliveryServer(
            args.host,
            args.port,
            storage,
            heartbeat_interval=args.heartbeat_interval,
            eviction_timeout=args.eviction_timeout,
            max_message_size=args.max_message_size,
            rate_limits=rate_limits,
            auth=auth,
            limits=limits,
            allowed_origins=origins,
        )
    except (ValueError, TypeError, OSError) as exc:
        print(f"orange-fast serve: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await server.start()
        print(f"orange-fast delivery service listening on {server.url}", flush=True)
        if web is not None:
            await web.start()
            print(f"orange-fast call page: open {web.url}?room=ROOM&id=YOUR_NAME&token=TOKEN "
                  f"(Janus {args.janus}, VideoRoom ?janusroom=1234)", flush=True)
        try:
            await stop.wait()
        finally:
            if web is not None:
                await web.stop()
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
