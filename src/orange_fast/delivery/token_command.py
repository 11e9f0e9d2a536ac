"""``orange-fast token``: issue an access token for the delivery service, or create a token key.

    orange-fast token --key FILE --room R --client C [--ttl SECONDS]   # prints the token
    orange-fast token --key FILE --generate [--algorithm EdDSA]        # creates FILE (0600)

The key may also come from the ``ORANGE_FAST_TOKEN_KEY`` environment variable (its text).  For
EdDSA, ``--generate`` prints the public key: a server given only that key verifies but cannot issue.
"""

from __future__ import annotations

import argparse

HELP = "issue a delivery-service access token (or create a token key)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--key", metavar="FILE", help="token key file (default: $ORANGE_FAST_TOKEN_KEY)")
    parser.add_argument("--room", help="room id the token admits to")
    parser.add_argument("--client", help="client id the token is for (the JWT 'sub')")
    parser.add_argument("--ttl", type=float, default=3600.0, metavar="SECONDS", help="validity (default 3600)")
    parser.add_argument("--generate", action="store_true", help="create a new key in --key FILE (never overwrites)")
    parser.add_argument("--algorithm", choices=("HS256", "EdDSA"), default="HS256",
                        help="algorithm of a generated key (default HS256)")


def run(args: argparse.Namespace) -> int:
    import os
    import sys

    from .auth import KEY_ENV_VAR, AccessTokenKey

    try:
        if args.generate:
            if not args.key:
                raise ValueError("--generate needs --key FILE")
            key = AccessTokenKey.generate(args.key, args.algorithm)
            print(f"created {args.algorithm} token key in {os.path.abspath(args.key)}", file=sys.stderr)
            if key.algorithm == "EdDSA":
                sys.stdout.write(key.public_pem().decode("ascii"))
            return 0
        if args.key:
            key = AccessTokenKey.from_file(args.key)
        elif os.environ.get(KEY_ENV_VAR):
            key = AccessTokenKey(os.environ[KEY_ENV_VAR])
        else:
            raise ValueError(f"give --key FILE or set {KEY_ENV_VAR}")
        if not args.room or not args.client:
            raise ValueError("--room and --client are required")
        token = key.issue(args.room, args.client, args.ttl)
    except FileExistsError:
        print(f"orange-fast token: {args.key} exists; not overwriting it", file=sys.stderr)
        return 1
    except (ValueError, OSError) as exc:
        print(f"orange-fast token: {exc}", file=sys.stderr)
        return 2
    print(token.decode("ascii"))
    return 0
