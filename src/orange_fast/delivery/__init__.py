"""The delivery service: a per-room, totally ordered, persistent log of opaque handshake messages.

It orders MLS handshake traffic (KeyPackages, Welcomes, Commits) and presence notices (joined,
left, evicted) for a room without ever parsing them or holding key material.  See
``README.md`` in this directory for the protocol.

Server side: :class:`DeliveryServer` over a :class:`Storage` (:class:`SQLiteStorage` by default).
Client side: :class:`DeliveryClient`.  Wire format: :mod:`orange_fast.delivery.protocol`.
"""

from __future__ import annotations

from .auth import AccessTokenKey, AccessTokens, Authenticator
from .client import DeliveryClient
from .entry import FLAG_CREATOR, EntryType, LogEntry, NewEntry
from .errors import *  # noqa: F401,F403
from .errors import __all__ as _error_names
from .limits import ServerLimits
from .ratelimit import RateLimits, TokenBucket
from .server import DeliveryServer, TokenPolicy
from .storage import MemoryStorage, RoomInfo, SQLiteStorage, Storage

__all__ = [
    "DeliveryServer",
    "DeliveryClient",
    "TokenPolicy",
    "Authenticator",
    "AccessTokens",
    "AccessTokenKey",
    "ServerLimits",
    "RateLimits",
    "TokenBucket",
    "Storage",
    "SQLiteStorage",
    "MemoryStorage",
    "RoomInfo",
    "EntryType",
    "LogEntry",
    "NewEntry",
    "FLAG_CREATOR",
    *_error_names,
]
