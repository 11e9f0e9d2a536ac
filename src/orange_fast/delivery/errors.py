"""Typed errors of the delivery service, and the error codes carried on the wire.

Every error raised by this package derives from :class:`DeliveryError`.  Messages never
contain payload bytes, tokens or any other secret: only codes, sizes, sequence numbers and
identifiers (room and client ids, which are public routing names).
"""

from __future__ import annotations

import enum

__all__ = [
    "ErrorCode",
    "DeliveryError",
    "ProtocolError",
    "MalformedFrameError",
    "FieldError",
    "StorageError",
    "SequenceConflictError",
    "UnknownRoomError",
    "ServerError",
    "AuthenticationFailedError",
    "RoomNotAllowedError",
    "MessageTooLargeError",
    "RateLimitedError",
    "BadResumeError",
    "UnsupportedVersionError",
    "SupersededError",
    "EvictedError",
    "AbuseError",
    "ShuttingDownError",
    "ServerBusyError",
    "ServerSequenceConflictError",
    "ConnectionLostError",
    "ClientClosedError",
    "server_error_for",
]


class ErrorCode(enum.IntEnum):
    """Error codes of ERROR frames (u16 on the wire)."""

    MALFORMED_FRAME = 1
    """The frame does not parse (fatal)."""
    UNSUPPORTED_VERSION = 2
    """The HELLO names a protocol version this server does not speak (fatal)."""
    NOT_AUTHENTICATED = 3
    """A frame other than HELLO before HELLO, or a second HELLO (fatal)."""
    AUTH_FAILED = 4
    """Wrong room token (fatal)."""
    ROOM_NOT_ALLOWED = 5
    """The room does not exist and this server does not let clients create rooms (fatal)."""
    MESSAGE_TOO_LARGE = 6
    """Payload larger than the server's ``max_message_size`` (the frame is dropped)."""
    RATE_LIMITED = 7
    """Per-connection message or byte rate exceeded (the frame is dropped)."""
    SEQUENCE_CONFLICT = 8
    """Compare-and-append failed: the log head moved; ``seq`` carries the current head."""
    BAD_RESUME = 9
    """The client resumes from a sequence number beyond the log head (fatal); ``seq`` = head."""
    SUPERSEDED = 10
    """Another connection with the same client id took over this presence (fatal)."""
    EVICTED = 11
    """The connection was silent longer than the eviction timeout (fatal)."""
    ABUSE = 12
    """Too many rejected frames in a short time (fatal)."""
    INTERNAL_ERROR = 13
    """The server failed (storage error); the frame had no effect."""
    SHUTTING_DOWN = 14
    """The server is stopping; reconnect later (fatal for this connection)."""
    UNEXPECTED_FRAME = 15
    """A well-formed frame that a client may not send (fatal)."""
    SERVER_BUSY = 16
    """The server is at a connection or room cap, or overloaded: it refuses new connections before
    latency runs away (fatal for this connection, close code 1013; retry later with backoff)."""


class DeliveryError(Exception):
    """Base class of every error of :mod:`orange_fast.delivery`."""


class ProtocolError(DeliveryError):
    """The peer broke the wire protocol."""


class MalformedFrameError(ProtocolError, ValueError):
    """A frame that does not parse: truncated, trailing bytes, bad field, unknown type."""


class FieldError(DeliveryError, ValueError):
    """A field value out of its allowed range (raised when building a frame or entry)."""


class StorageError(DeliveryError):
    """The storage backend failed or was used incorrectly."""


class SequenceConflictError(StorageError):
    """Compare-and-append failed because the log head is not what the caller expected.

    Attributes:
        head: the sequence number of the last entry of the room's log (0 for an empty log).
        expected_seq: the sequence number the caller wanted its entry to get.
    """

    def __init__(self, head: int, expected_seq: int) -> None:
        super().__init__(f"sequence conflict: expected new entry at seq {expected_seq}, log head is {head}")
        self.head = head
        self.expected_seq = expected_seq


class UnknownRoomError(StorageError):
    """The room does not exist in the storage."""


class ServerError(DeliveryError):
    """An ERROR frame received from the server (client side).

    Attributes:
        code: the :class:`ErrorCode`.
        fatal: whether the server closes the connection after it.
        seq: the sequence number the error refers to (log head for conflicts), else 0.
        detail: the server's short ASCII explanation.
    """

    code: ErrorCode = ErrorCode.INTERNAL_ERROR

    def __init__(self, detail: str = "", *, code: ErrorCode | None = None, fatal: bool = False, seq: int = 0) -> None:
        if code is not None:
            self.code = code
        super().__init__(f"{self.code.name}: {detail}" if detail else self.code.name)
        self.fatal = fatal
        self.seq = seq
        self.detail = detail


class AuthenticationFailedError(ServerError):
    code = ErrorCode.AUTH_FAILED


class RoomNotAllowedError(ServerError):
    code = ErrorCode.ROOM_NOT_ALLOWED


class MessageTooLargeError(ServerError):
    code = ErrorCode.MESSAGE_TOO_LARGE


class RateLimitedError(ServerError):
    code = ErrorCode.RATE_LIMITED


class BadResumeError(ServerError):
    code = ErrorCode.BAD_RESUME


class UnsupportedVersionError(ServerError):
    code = ErrorCode.UNSUPPORTED_VERSION


class SupersededError(ServerError):
    code = ErrorCode.SUPERSEDED


class EvictedError(ServerError):
    code = ErrorCode.EVICTED


class AbuseError(ServerError):
    code = ErrorCode.ABUSE


class ShuttingDownError(ServerError):
    code = ErrorCode.SHUTTING_DOWN


class ServerBusyError(ServerError):
    """The server refused the connection because it is full or overloaded: retry later."""

    code = ErrorCode.SERVER_BUSY


class ServerSequenceConflictError(ServerError):
    """Compare-and-append refused by the server; ``seq`` is the log head at that moment."""

    code = ErrorCode.SEQUENCE_CONFLICT


class ConnectionLostError(DeliveryError):
    """The connection dropped while a request was in flight: its outcome is unknown.

    Use ``expected_seq`` (compare-and-append) to make a retried append idempotent.
    """


class ClientClosedError(DeliveryError):
    """The client was closed (or failed fatally) and cannot be used any more."""


_BY_CODE: dict[ErrorCode, type[ServerError]] = {
    cls.code: cls
    for cls in (
        AuthenticationFailedError,
        RoomNotAllowedError,
        MessageTooLargeError,
        RateLimitedError,
        BadResumeError,
        UnsupportedVersionError,
        SupersededError,
        EvictedError,
        AbuseError,
        ShuttingDownError,
        ServerBusyError,
        ServerSequenceConflictError,
    )
}


def server_error_for(code: ErrorCode, detail: str, *, fatal: bool, seq: int) -> ServerError:
    """Build the typed exception for an ERROR frame."""
    cls = _BY_CODE.get(code)
    if cls is None:
        return ServerError(detail, code=code, fatal=fatal, seq=seq)
    return cls(detail, fatal=fatal, seq=seq)
