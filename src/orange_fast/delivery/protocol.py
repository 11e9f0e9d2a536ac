"""Wire protocol between delivery-service clients and the server (version 1).

Transport: WebSocket, one protocol frame per *binary* WebSocket message (text messages are
malformed).  Integers are unsigned big-endian.  Field notation:

=========  =====================================================================================
``u8`` ..  unsigned integers of 1, 2, 4, 8 bytes
``id``     u8 length (1-64) + ASCII ``[A-Za-z0-9._~:@+-]`` (room ids, client ids)
``kind``   u8 length (0-64) + visible ASCII 0x21-0x7E; empty only on notices
``token``  u8 length (1-255) + opaque bytes
``blob``   u32 length + opaque bytes (payloads)
``text``   u16 length (0-1024) + printable ASCII 0x20-0x7E
=========  =====================================================================================

Frames (first byte = frame type):

==========  ====  ======  =============================================================================
frame       type  from    fields after the type byte
==========  ====  ======  =============================================================================
HELLO       0x01  client  version u8, room id, token, client id, resume_from u64, join_payload blob
APPEND      0x02  client  request_id u32, expected_seq u64 (0 = unconditional), kind, payload blob
BYE         0x03  client  (none): leave the room cleanly (a LEFT notice is appended)
PING        0x10  both    nonce u64
PONG        0x11  both    nonce u64 (echo of the PING's)
READY       0x81  server  version u8, head_seq u64, join_seq u64, server_time_ms u64,
                          heartbeat_interval_ms u32, eviction_timeout_ms u32, max_message_size u32
ENTRY       0x82  server  seq u64, timestamp_ms u64, entry_type u8, flags u8, sender id, kind, payload blob
APPEND_OK   0x83  server  request_id u32, seq u64
ERROR       0x84  server  code u16, request_id u32, fatal u8 (0/1), seq u64, detail text
==========  ====  ======  =============================================================================

Parsing is strict: a frame must have a known type, every field must be in range, and the frame
must end exactly after its last field.  Anything else raises :class:`MalformedFrameError`.
Encoding is canonical: ``encode(decode(b)) == b`` for every accepted ``b``.

Semantics are described in ``README.md`` next to this module.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Union

from .entry import MAX_ID_LENGTH, MAX_KIND_LENGTH, LogEntry, check_id, check_kind, check_seq
from .errors import ErrorCode, FieldError, MalformedFrameError

__all__ = [
    "PROTOCOL_VERSION",
    "FrameType",
    "Hello",
    "Append",
    "Bye",
    "Ping",
    "Pong",
    "Ready",
    "AppendOk",
    "Error",
    "LogEntry",
    "Frame",
    "ClientFrame",
    "ServerFrame",
    "encode",
    "decode",
    "decode_client_frame",
    "decode_server_frame",
    "MAX_TOKEN_LENGTH",
    "MAX_DETAIL_LENGTH",
    "MAX_REQUEST_ID",
]

PROTOCOL_VERSION = 1
MAX_TOKEN_LENGTH = 255
MAX_DETAIL_LENGTH = 1024
MAX_REQUEST_ID = 2**32 - 1
_U32 = 2**32 - 1
_U64 = 2**64 - 1


class FrameType(enum.IntEnum):
    HELLO = 0x01
    APPEND = 0x02
    BYE = 0x03
    PING = 0x10
    PONG = 0x11
    READY = 0x81
    ENTRY = 0x82
    APPEND_OK = 0x83
    ERROR = 0x84


def _check_uint(value: object, bits: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < (1 << bits):
        raise FieldError(f"invalid {what}: u{bits} required")
    return value


def _check_bytes(value: object, what: str, max_len: int = _U32) -> bytes:
    if not isinstance(value, bytes) or len(value) > max_len:
        raise FieldError(f"invalid {what}: bytes of at most {max_len} bytes required")
    return value


@dataclass(frozen=True)
class Hello:
    """First frame of a connection: which room, proof of access, who, and where to resume."""

    room: str
    token: bytes
    client_id: str
    resume_from: int = 0
    """Last sequence number the client already has (0 = none): the server sends entries after it."""
    join_payload: bytes = b""
    """Opaque bytes put into the JOINED notice if this HELLO makes the client present."""
    version: int = PROTOCOL_VERSION

    def __post_init__(self) -> None:
        check_id(self.room, "room id")
        check_id(self.client_id, "client id")
        _check_bytes(self.token, "token", MAX_TOKEN_LENGTH)
        if not self.token:
            raise FieldError("invalid token: empty")
        check_seq(self.resume_from, "resume_from")
        _check_bytes(self.join_payload, "join payload")
        _check_uint(self.version, 8, "version")

    def __repr__(self) -> str:  # no token, no payload
        return (
            f"Hello(room={self.room!r}, client_id={self.client_id!r}, resume_from={self.resume_from}, "
            f"join_payload_len={len(self.join_payload)}, version={self.version})"
        )


@dataclass(frozen=True)
class Append:
    """Append ``payload`` to the room's log; ``expected_seq`` (if not 0) makes it compare-and-append."""

    request_id: int
    kind: str
    payload: bytes
    expected_seq: int = 0
    """The sequence number the new entry must get (log head + 1), or 0 for an unconditional append."""

    def __post_init__(self) -> None:
        _check_uint(self.request_id, 32, "request id")
        check_kind(self.kind)
        _check_bytes(self.payload, "payload")
        check_seq(self.expected_seq, "expected_seq")

    def __repr__(self) -> str:
        return (
            f"Append(request_id={self.request_id}, kind={self.kind!r}, expected_seq={self.expected_seq}, "
            f"payload_len={len(self.payload)})"
        )


@dataclass(frozen=True)
class Bye:
    """Leave the room cleanly."""


@dataclass(frozen=True)
class Ping:
    nonce: int

    def __post_init__(self) -> None:
        _check_uint(self.nonce, 64, "nonce")


@dataclass(frozen=True)
class Pong:
    nonce: int

    def __post_init__(self) -> None:
        _check_uint(self.nonce, 64, "nonce")


@dataclass(frozen=True)
class Ready:
    """The server accepted the HELLO.  Entries after the HELLO's ``resume_from`` follow, in order."""

    head_seq: int
    """Log head right after this client's JOINED notice (if any) was appended."""
    join_seq: int
    """Sequence number of the JOINED notice this HELLO produced, or 0 if the client was still present."""
    server_time_ms: int
    heartbeat_interval_ms: int
    eviction_timeout_ms: int
    max_message_size: int
    version: int = PROTOCOL_VERSION

    def __post_init__(self) -> None:
        check_seq(self.head_seq, "head_seq")
        check_seq(self.join_seq, "join_seq")
        _check_uint(self.server_time_ms, 64, "server time")
        _check_uint(self.heartbeat_interval_ms, 32, "heartbeat interval")
        _check_uint(self.eviction_timeout_ms, 32, "eviction timeout")
        _check_uint(self.max_message_size, 32, "max message size")
        _check_uint(self.version, 8, "version")
        if self.join_seq > self.head_seq:
            raise FieldError("join_seq beyond head_seq")


@dataclass(frozen=True)
class AppendOk:
    request_id: int
    seq: int

    def __post_init__(self) -> None:
        _check_uint(self.request_id, 32, "request id")
        check_seq(self.seq, "seq", minimum=1)


@dataclass(frozen=True)
class Error:
    """A typed error.  ``request_id`` names the APPEND it answers (0 otherwise)."""

    code: ErrorCode
    detail: str = ""
    request_id: int = 0
    fatal: bool = False
    seq: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.code, ErrorCode):
            try:
                object.__setattr__(self, "code", ErrorCode(self.code))
            except ValueError:
                raise FieldError("unknown error code") from None
        if (
            not isinstance(self.detail, str)
            or len(self.detail) > MAX_DETAIL_LENGTH
            or any(not 0x20 <= ord(c) <= 0x7E for c in self.detail)
        ):
            raise FieldError(f"invalid detail: printable ASCII of at most {MAX_DETAIL_LENGTH} characters required")
        _check_uint(self.request_id, 32, "request id")
        if not isinstance(self.fatal, bool):
            raise FieldError("fatal must be a bool")
        check_seq(self.seq, "seq")


ClientFrame = Union[Hello, Append, Bye, Ping, Pong]
ServerFrame = Union[Ready, LogEntry, AppendOk, Error, Ping, Pong]
Frame = Union[Hello, Append, Bye, Ping, Pong, Ready, LogEntry, AppendOk, Error]

_B = struct.Struct(">B")
_H = struct.Struct(">H")
_I = struct.Struct(">I")
_Q = struct.Struct(">Q")


def _id(value: str) -> bytes:
    raw = value.encode("ascii")
    return _B.pack(len(raw)) + raw


def _blob(value: bytes) -> bytes:
    return _I.pack(len(value)) + value


def encode(frame: Frame) -> bytes:
    """Serialise a frame (fields were validated when the frame was built)."""
    if isinstance(frame, Hello):
        return b"".join(
            (
                _B.pack(FrameType.HELLO),
                _B.pack(frame.version),
                _id(frame.room),
                _B.pack(len(frame.token)) + frame.token,
                _id(frame.client_id),
                _Q.pack(frame.resume_from),
                _blob(frame.join_payload),
            )
        )
    if isinstance(frame, Append):
        return b"".join(
            (
                _B.pack(FrameType.APPEND),
                _I.pack(frame.request_id),
                _Q.pack(frame.expected_seq),
                _id(frame.kind),
                _blob(frame.payload),
            )
        )
    if isinstance(frame, Bye):
        return _B.pack(FrameType.BYE)
    if isinstance(frame, Ping):
        return _B.pack(FrameType.PING) + _Q.pack(frame.nonce)
    if isinstance(frame, Pong):
        return _B.pack(FrameType.PONG) + _Q.pack(frame.nonce)
    if isinstance(frame, Ready):
        return b"".join(
            (
                _B.pack(FrameType.READY),
                _B.pack(frame.version),
                _Q.pack(frame.head_seq),
                _Q.pack(frame.join_seq),
                _Q.pack(frame.server_time_ms),
                _I.pack(frame.heartbeat_interval_ms),
                _I.pack(frame.eviction_timeout_ms),
                _I.pack(frame.max_message_size),
            )
        )
    if isinstance(frame, LogEntry):
        kind = frame.kind.encode("ascii")
        return b"".join(
            (
                _B.pack(FrameType.ENTRY),
                _Q.pack(frame.seq),
                _Q.pack(frame.timestamp_ms),
                _B.pack(frame.entry_type),
                _B.pack(frame.flags),
                _id(frame.sender),
                _B.pack(len(kind)) + kind,
                _blob(frame.payload),
            )
        )
    if isinstance(frame, AppendOk):
        return _B.pack(FrameType.APPEND_OK) + _I.pack(frame.request_id) + _Q.pack(frame.seq)
    if isinstance(frame, Error):
        detail = frame.detail.encode("ascii")
        return b"".join(
            (
                _B.pack(FrameType.ERROR),
                _H.pack(frame.code),
                _I.pack(frame.request_id),
                _B.pack(1 if frame.fatal else 0),
                _Q.pack(frame.seq),
                _H.pack(len(detail)) + detail,
            )
        )
    raise TypeError(f"not a delivery frame: {type(frame).__name__}")


class _Reader:
    """Cursor over a received frame; every read checks the remaining length."""

    __slots__ = ("_buf", "_pos")

    def __init__(self, buf: bytes) -> None:
        self._buf = buf
        self._pos = 0

    def take(self, n: int) -> bytes:
        end = self._pos + n
        if end > len(self._buf):
            raise MalformedFrameError("truncated frame")
        out = self._buf[self._pos : end]
        self._pos = end
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(_H.unpack(self.take(2))[0])

    def u32(self) -> int:
        return int(_I.unpack(self.take(4))[0])

    def u64(self) -> int:
        return int(_Q.unpack(self.take(8))[0])

    def ascii(self, length: int) -> str:
        raw = self.take(length)
        if not raw.isascii():
            raise MalformedFrameError("non-ASCII text")
        return raw.decode("ascii")

    def ident(self) -> str:
        n = self.u8()
        if not 1 <= n <= MAX_ID_LENGTH:
            raise MalformedFrameError("bad id length")
        return self.ascii(n)

    def kind(self) -> str:
        n = self.u8()
        if n > MAX_KIND_LENGTH:
            raise MalformedFrameError("bad kind length")
        return self.ascii(n)

    def blob(self) -> bytes:
        return self.take(self.u32())

    def end(self) -> None:
        if self._pos != len(self._buf):
            raise MalformedFrameError("trailing bytes after frame")


def _parse(r: _Reader, ftype: int) -> Frame:
    if ftype == FrameType.HELLO:
        version = r.u8()
        room = r.ident()
        token = r.take(r.u8())
        client_id = r.ident()
        resume_from = r.u64()
        join_payload = r.blob()
        r.end()
        return Hello(room, token, client_id, resume_from, join_payload, version)
    if ftype == FrameType.APPEND:
        request_id = r.u32()
        expected_seq = r.u64()
        kind = r.kind()
        payload = r.blob()
        r.end()
        return Append(request_id, kind, payload, expected_seq)
    if ftype == FrameType.BYE:
        r.end()
        return Bye()
    if ftype == FrameType.PING:
        nonce = r.u64()
        r.end()
        return Ping(nonce)
    if ftype == FrameType.PONG:
        nonce = r.u64()
        r.end()
        return Pong(nonce)
    if ftype == FrameType.READY:
        version = r.u8()
        head, join, now = r.u64(), r.u64(), r.u64()
        hb, ev, mx = r.u32(), r.u32(), r.u32()
        r.end()
        return Ready(head, join, now, hb, ev, mx, version)
    if ftype == FrameType.ENTRY:
        seq, ts = r.u64(), r.u64()
        etype, flags = r.u8(), r.u8()
        sender = r.ident()
        kind = r.kind()
        payload = r.blob()
        r.end()
        return LogEntry(seq, ts, etype, flags, sender, kind, payload)  # type: ignore[arg-type]
    if ftype == FrameType.APPEND_OK:
        request_id, seq = r.u32(), r.u64()
        r.end()
        return AppendOk(request_id, seq)
    if ftype == FrameType.ERROR:
        code, request_id, fatal, seq = r.u16(), r.u32(), r.u8(), r.u64()
        detail = r.ascii(r.u16())
        r.end()
        if fatal > 1:
            raise MalformedFrameError("bad fatal flag")
        if code not in _ERROR_CODES:
            raise MalformedFrameError("unknown error code")
        return Error(ErrorCode(code), detail, request_id, bool(fatal), seq)
    raise MalformedFrameError("unknown frame type")


_ERROR_CODES = frozenset(int(c) for c in ErrorCode)
_CLIENT_TYPES = (Hello, Append, Bye, Ping, Pong)
_SERVER_TYPES = (Ready, LogEntry, AppendOk, Error, Ping, Pong)


def decode(data: object) -> Frame:
    """Parse one frame strictly; raise :class:`MalformedFrameError` on anything invalid."""
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise MalformedFrameError("frames are binary messages")
    if not data:
        raise MalformedFrameError("empty frame")
    r = _Reader(data)
    ftype = r.u8()
    try:
        return _parse(r, ftype)
    except FieldError as exc:  # a field parsed but is out of range
        raise MalformedFrameError(str(exc)) from None


def decode_client_frame(data: object) -> ClientFrame:
    """Parse a frame a client may send (HELLO, APPEND, BYE, PING, PONG)."""
    frame = decode(data)
    if not isinstance(frame, _CLIENT_TYPES):
        raise MalformedFrameError("frame type not allowed from a client")
    return frame


def decode_server_frame(data: object) -> ServerFrame:
    """Parse a frame a server may send (READY, ENTRY, APPEND_OK, ERROR, PING, PONG)."""
    frame = decode(data)
    if not isinstance(frame, _SERVER_TYPES):
        raise MalformedFrameError("frame type not allowed from a server")
    return frame
