"""Log entries of a room and the rules for the names that appear in them.

A room's log is a sequence of :class:`LogEntry` numbered 1, 2, 3, ... without gaps.  Entries
are either opaque client messages (:attr:`EntryType.MESSAGE`) or server notices
(:attr:`EntryType.JOINED`, :attr:`EntryType.LEFT`, :attr:`EntryType.EVICTED`), so that every
client sees one total order of joins, leaves and handshake messages.

Room ids and client ids are public routing names (they appear in logs): 1 to 64 characters
from ``A-Z a-z 0-9 . _ ~ : @ + -``.  Message kinds are 1 to 64 visible ASCII characters
(0x21-0x7E); the server stores and forwards them and only checks their size and charset.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from .errors import FieldError

__all__ = [
    "EntryType",
    "FLAG_CREATOR",
    "ENTRY_FLAGS_MASK",
    "MAX_ID_LENGTH",
    "MAX_KIND_LENGTH",
    "MAX_SEQ",
    "LogEntry",
    "NewEntry",
    "check_id",
    "check_kind",
    "check_seq",
]

MAX_ID_LENGTH = 64
MAX_KIND_LENGTH = 64
MAX_SEQ = 2**63 - 1  # SQLite INTEGER range; far beyond any real log

_ID_RE = re.compile(r"[A-Za-z0-9._~:@+\-]{1,64}")
_KIND_RE = re.compile(r"[\x21-\x7e]{1,64}")

FLAG_CREATOR = 0x01
"""Set on a JOINED entry whose client joined a room with nobody present (see :class:`LogEntry`)."""
ENTRY_FLAGS_MASK = FLAG_CREATOR


class EntryType(enum.IntEnum):
    """What a log entry is (u8 on the wire)."""

    MESSAGE = 0
    """An opaque payload appended by ``sender``."""
    JOINED = 1
    """``sender`` became present in the room; payload = the join payload of its HELLO."""
    LEFT = 2
    """``sender`` left cleanly (BYE)."""
    EVICTED = 3
    """``sender`` was declared left by the server: silent or disconnected past the eviction timeout."""


def check_id(value: object, what: str = "id") -> str:
    """Return ``value`` if it is a valid room/client id, else raise :class:`FieldError`."""
    if not isinstance(value, str) or _ID_RE.fullmatch(value) is None:
        raise FieldError(f"invalid {what}: 1-{MAX_ID_LENGTH} characters from [A-Za-z0-9._~:@+-] required")
    return value


def check_kind(value: object) -> str:
    """Return ``value`` if it is a valid message kind, else raise :class:`FieldError`."""
    if not isinstance(value, str) or _KIND_RE.fullmatch(value) is None:
        raise FieldError(f"invalid kind: 1-{MAX_KIND_LENGTH} visible ASCII characters required")
    return value


def check_seq(value: object, what: str = "seq", *, minimum: int = 0) -> int:
    """Return ``value`` if it is an int in ``[minimum, MAX_SEQ]``, else raise :class:`FieldError`."""
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= MAX_SEQ:
        raise FieldError(f"invalid {what}: integer in [{minimum}, {MAX_SEQ}] required")
    return value


def _check_entry_shape(entry_type: EntryType, flags: int, kind: str, payload: bytes) -> None:
    if entry_type == EntryType.MESSAGE:
        check_kind(kind)
    elif kind != "":
        raise FieldError("notices carry no kind")
    if entry_type in (EntryType.LEFT, EntryType.EVICTED) and payload:
        raise FieldError("leave notices carry no payload")
    if flags & ~ENTRY_FLAGS_MASK:
        raise FieldError("unknown entry flags")
    if flags & FLAG_CREATOR and entry_type != EntryType.JOINED:
        raise FieldError("the creator flag is only valid on JOINED entries")


@dataclass(frozen=True)
class NewEntry:
    """An entry before the storage assigned its sequence number."""

    entry_type: EntryType
    sender: str
    timestamp_ms: int
    kind: str = ""
    payload: bytes = b""
    flags: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.entry_type, EntryType):
            object.__setattr__(self, "entry_type", _entry_type(self.entry_type))
        check_id(self.sender, "sender")
        check_seq(self.timestamp_ms, "timestamp")
        if not isinstance(self.payload, bytes):
            raise FieldError("payload must be bytes")
        if not isinstance(self.flags, int):
            raise FieldError("flags must be an int")
        _check_entry_shape(self.entry_type, self.flags, self.kind, self.payload)

    def with_seq(self, seq: int) -> LogEntry:
        """The stored entry at ``seq``."""
        return LogEntry(seq, self.timestamp_ms, self.entry_type, self.flags, self.sender, self.kind, self.payload)


@dataclass(frozen=True)
class LogEntry:
    """One entry of a room's ordered log.

    Attributes:
        seq: position in the room's log, starting at 1, without gaps.
        timestamp_ms: server wall clock (ms since the Unix epoch) when the entry was appended.
        entry_type: :class:`EntryType`.
        flags: :data:`FLAG_CREATOR` on the JOINED entry of a client that joined while nobody was
            present in the room (every earlier JOINED client has a LEFT/EVICTED entry before this
            one).  Clients can recompute it from the log; it is how the server's order decides who
            creates the group (COMMITTER.md gap 3).
        sender: the client id that sent the message or that the notice is about.
        kind: the client's message kind tag (MESSAGE only; empty for notices).
        payload: opaque bytes (MESSAGE: the message; JOINED: the HELLO's join payload).
    """

    seq: int
    timestamp_ms: int
    entry_type: EntryType
    flags: int
    sender: str
    kind: str
    payload: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.entry_type, EntryType):
            object.__setattr__(self, "entry_type", _entry_type(self.entry_type))
        check_seq(self.seq, "seq", minimum=1)
        check_seq(self.timestamp_ms, "timestamp")
        check_id(self.sender, "sender")
        if not isinstance(self.payload, bytes):
            raise FieldError("payload must be bytes")
        if not isinstance(self.flags, int) or isinstance(self.flags, bool):
            raise FieldError("flags must be an int")
        _check_entry_shape(self.entry_type, self.flags, self.kind, self.payload)

    @property
    def is_creator(self) -> bool:
        """True for the JOINED entry that makes its client the group creator."""
        return bool(self.flags & FLAG_CREATOR)

    def __repr__(self) -> str:  # never show payload bytes
        return (
            f"LogEntry(seq={self.seq}, type={self.entry_type.name}, sender={self.sender!r}, "
            f"kind={self.kind!r}, flags={self.flags}, payload_len={len(self.payload)})"
        )


def _entry_type(value: object) -> EntryType:
    try:
        return EntryType(value)  # type: ignore[arg-type]
    except ValueError:
        raise FieldError("unknown entry type") from None
