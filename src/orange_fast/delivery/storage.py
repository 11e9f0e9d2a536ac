"""Where room logs live: the :class:`Storage` interface, :class:`SQLiteStorage` and :class:`MemoryStorage`.

The interface is asynchronous and keyed by room id so that a networked store can implement it
later.  It stores, per room:

* metadata: the SHA-256 of the room token and the creation time (:class:`RoomInfo`);
* the log: entries numbered 1, 2, ... without gaps, appended with optional compare-and-append;
* the presence table: which client ids are present (joined and not yet left), maintained in the
  same transaction as the JOINED / LEFT / EVICTED notices so that it always matches the log.

A storage has exactly one writer: the delivery server that owns it.  The server serialises
appends per room; the storage guarantees atomicity of each append (entry + head + presence).

Tokens are never stored: only ``sha256(token)``, compared with :func:`hmac.compare_digest`.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import hmac
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Collection, TypeVar

from .entry import EntryType, LogEntry, NewEntry, check_id, check_seq
from .errors import SequenceConflictError, StorageError, UnknownRoomError

__all__ = ["RoomInfo", "Storage", "SQLiteStorage", "MemoryStorage", "token_hash"]

_T = TypeVar("_T")


def token_hash(token: bytes) -> bytes:
    """The stored form of a room token."""
    if not isinstance(token, bytes):
        raise TypeError("token must be bytes")
    return hashlib.sha256(b"orange_fast delivery room token\x00" + token).digest()


@dataclass(frozen=True)
class RoomInfo:
    """Room metadata."""

    room: str
    token_hash: bytes
    created_ms: int
    head: int
    """Sequence number of the last entry (0 = empty log)."""

    def __repr__(self) -> str:
        return f"RoomInfo(room={self.room!r}, created_ms={self.created_ms}, head={self.head})"


class Storage(abc.ABC):
    """Persistent per-room ordered logs.  All methods are coroutines; none interprets payloads."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Open (and create if needed) the store.  Idempotent."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Flush and close.  Idempotent."""

    @abc.abstractmethod
    async def get_room(self, room: str) -> RoomInfo | None:
        """Metadata of ``room``, or None if it does not exist."""

    @abc.abstractmethod
    async def create_room(self, room: str, token_hash: bytes, created_ms: int) -> RoomInfo:
        """Create ``room`` unless it exists; return the room's metadata (existing or new)."""

    @abc.abstractmethod
    async def append(self, room: str, entry: NewEntry, expected_seq: int | None = None) -> LogEntry:
        """Append ``entry`` to the room's log and return it with its sequence number.

        With ``expected_seq`` the append happens only if the entry gets exactly that sequence
        number (log head + 1); otherwise :class:`SequenceConflictError` is raised and nothing
        changes.  JOINED entries add ``entry.sender`` to the presence table, LEFT and EVICTED
        entries remove it, atomically with the append.  Raises :class:`UnknownRoomError`.
        """

    @abc.abstractmethod
    async def read(self, room: str, after_seq: int, limit: int) -> list[LogEntry]:
        """Up to ``limit`` entries with ``seq > after_seq``, in order."""

    @abc.abstractmethod
    async def present_clients(self, room: str) -> dict[str, int]:
        """Client ids present in ``room`` mapped to the seq of their JOINED entry."""

    @abc.abstractmethod
    async def rooms_with_presence(self) -> list[str]:
        """Rooms where at least one client is present (to evict stale presence after a restart)."""

    async def check_token(self, room: str, token: bytes) -> bool:
        """True iff ``room`` exists and ``token`` is its token (constant-time comparison)."""
        info = await self.get_room(room)
        if info is None:
            return False
        return hmac.compare_digest(info.token_hash, token_hash(token))

    async def delete_idle_rooms(self, before_ms: int, keep: Collection[str] = (), limit: int = 1000) -> list[str]:
        """Retention: delete rooms nobody is present in whose last activity is before ``before_ms``.

        Last activity is the timestamp of the room's last entry (its creation time if it has
        none).  Rooms named in ``keep`` (in use by the server) are left alone.  Each room goes
        entirely (metadata, log, presence) in one transaction.  Returns the deleted rooms' ids.
        A storage without retention support keeps everything (this default).
        """
        return []


def _check_append_args(room: str, entry: NewEntry, expected_seq: int | None) -> None:
    check_id(room, "room id")
    if not isinstance(entry, NewEntry):
        raise TypeError("entry must be a NewEntry")
    if expected_seq is not None:
        check_seq(expected_seq, "expected_seq", minimum=1)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rooms (
    room TEXT PRIMARY KEY,
    token_hash BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    head INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS entries (
    room TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    type INTEGER NOT NULL,
    flags INTEGER NOT NULL,
    sender TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (room, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS presence (
    room TEXT NOT NULL,
    client TEXT NOT NULL,
    join_seq INTEGER NOT NULL,
    PRIMARY KEY (room, client)
) WITHOUT ROWID;
"""
_SCHEMA_VERSION = "1"


class SQLiteStorage(Storage):
    """A SQLite file in WAL mode.  Survives restarts; every append is one transaction.

    All SQLite calls run on one dedicated worker thread, so the event loop never blocks on disk
    and the connection is only ever used from one thread.

    Args:
        path: database file (created if missing).
        synchronous: SQLite ``synchronous`` pragma: ``"FULL"`` (default: an acknowledged append
            survives power loss) or ``"NORMAL"`` (survives a process crash, faster).
    """

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "FULL") -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError("synchronous must be 'FULL' or 'NORMAL'")
        self.path = os.fspath(path)
        self._synchronous = synchronous
        self._conn: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"SQLiteStorage({self.path!r})"

    async def _run(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._conn is None or self._executor is None:
            raise StorageError("storage is not open")
        conn = self._conn

        def call() -> _T:
            try:
                return fn(conn)
            except sqlite3.Error as exc:
                raise StorageError(f"sqlite error: {type(exc).__name__}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def open(self) -> None:
        if self._conn is not None:
            return
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="orange-fast-sqlite")

        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA synchronous={self._synchronous}")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.executescript(_SCHEMA)
                row = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
                if row is None:
                    conn.execute("INSERT INTO meta(key, value) VALUES ('schema', ?)", (_SCHEMA_VERSION,))
                elif row[0] != _SCHEMA_VERSION:
                    raise StorageError(f"unsupported database schema version {row[0]!r}")
            except BaseException:
                conn.close()
                raise
            return conn

        try:
            conn = await asyncio.get_running_loop().run_in_executor(executor, connect)
        except sqlite3.Error as exc:
            executor.shutdown(wait=False)
            raise StorageError(f"cannot open database: {type(exc).__name__}: {exc}") from exc
        except BaseException:
            executor.shutdown(wait=False)
            raise
        self._conn, self._executor = conn, executor

    async def close(self) -> None:
        if self._conn is None or self._executor is None:
            return
        conn, executor = self._conn, self._executor
        self._conn = self._executor = None
        await asyncio.get_running_loop().run_in_executor(executor, conn.close)
        executor.shutdown(wait=True)

    async def get_room(self, room: str) -> RoomInfo | None:
        check_id(room, "room id")

        def q(conn: sqlite3.Connection) -> RoomInfo | None:
            row = conn.execute("SELECT token_hash, created_ms, head FROM rooms WHERE room=?", (room,)).fetchone()
            return None if row is None else RoomInfo(room, bytes(row[0]), row[1], row[2])

        return await self._run(q)

    async def create_room(self, room: str, token_hash: bytes, created_ms: int) -> RoomInfo:
        check_id(room, "room id")
        if not isinstance(token_hash, bytes) or len(token_hash) != 32:
            raise ValueError("token_hash must be 32 bytes")
        check_seq(created_ms, "created_ms")

        def q(conn: sqlite3.Connection) -> RoomInfo:
            conn.execute(
                "INSERT OR IGNORE INTO rooms(room, token_hash, created_ms, head) VALUES (?, ?, ?, 0)",
                (room, token_hash, created_ms),
            )
            row = conn.execute("SELECT token_hash, created_ms, head FROM rooms WHERE room=?", (room,)).fetchone()
            return RoomInfo(room, bytes(row[0]), row[1], row[2])

        return await self._run(q)

    async def append(self, room: str, entry: NewEntry, expected_seq: int | None = None) -> LogEntry:
        _check_append_args(room, entry, expected_seq)

        def q(conn: sqlite3.Connection) -> LogEntry:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT head FROM rooms WHERE room=?", (room,)).fetchone()
                if row is None:
                    raise UnknownRoomError(f"unknown room {room!r}")
                seq = row[0] + 1
                if expected_seq is not None and expected_seq != seq:
                    raise SequenceConflictError(row[0], expected_seq)
                stored = entry.with_seq(seq)
                conn.execute(
                    "INSERT INTO entries(room, seq, ts, type, flags, sender, kind, payload) VALUES (?,?,?,?,?,?,?,?)",
                    (room, seq, stored.timestamp_ms, int(stored.entry_type), stored.flags, stored.sender,
                     stored.kind, stored.payload),
                )
                conn.execute("UPDATE rooms SET head=? WHERE room=?", (seq, room))
                if stored.entry_type == EntryType.JOINED:
                    conn.execute(
                        "INSERT OR REPLACE INTO presence(room, client, join_seq) VALUES (?,?,?)",
                        (room, stored.sender, seq),
                    )
                elif stored.entry_type in (EntryType.LEFT, EntryType.EVICTED):
                    conn.execute("DELETE FROM presence WHERE room=? AND client=?", (room, stored.sender))
                conn.execute("COMMIT")
                return stored
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        return await self._run(q)

    async def read(self, room: str, after_seq: int, limit: int) -> list[LogEntry]:
        check_id(room, "room id")
        check_seq(after_seq, "after_seq")
        if not isinstance(limit, int) or limit < 1:
            raise ValueError("limit must be a positive int")

        def q(conn: sqlite3.Connection) -> list[LogEntry]:
            rows = conn.execute(
                "SELECT seq, ts, type, flags, sender, kind, payload FROM entries "
                "WHERE room=? AND seq>? ORDER BY seq LIMIT ?",
                (room, after_seq, limit),
            ).fetchall()
            return [LogEntry(r[0], r[1], EntryType(r[2]), r[3], r[4], r[5], bytes(r[6])) for r in rows]

        return await self._run(q)

    async def present_clients(self, room: str) -> dict[str, int]:
        check_id(room, "room id")

        def q(conn: sqlite3.Connection) -> dict[str, int]:
            rows = conn.execute("SELECT client, join_seq FROM presence WHERE room=?", (room,)).fetchall()
            return {r[0]: r[1] for r in rows}

        return await self._run(q)

    async def rooms_with_presence(self) -> list[str]:
        def q(conn: sqlite3.Connection) -> list[str]:
            return [r[0] for r in conn.execute("SELECT DISTINCT room FROM presence ORDER BY room").fetchall()]

        return await self._run(q)

    async def delete_idle_rooms(self, before_ms: int, keep: Collection[str] = (), limit: int = 1000) -> list[str]:
        _check_retention_args(before_ms, limit)
        kept = frozenset(keep)

        def q(conn: sqlite3.Connection) -> list[str]:
            conn.execute("BEGIN IMMEDIATE")
            try:
                rooms = [r[0] for r in conn.execute(_IDLE_ROOMS, (before_ms, limit + len(kept))).fetchall()]
                rooms = [r for r in rooms if r not in kept][:limit]
                for room in rooms:
                    conn.execute("DELETE FROM entries WHERE room=?", (room,))
                    conn.execute("DELETE FROM presence WHERE room=?", (room,))
                    conn.execute("DELETE FROM rooms WHERE room=?", (room,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return rooms

        return await self._run(q)


_IDLE_ROOMS = """
SELECT r.room FROM rooms r
WHERE NOT EXISTS (SELECT 1 FROM presence p WHERE p.room = r.room)
  AND COALESCE((SELECT e.ts FROM entries e WHERE e.room = r.room AND e.seq = r.head), r.created_ms) < ?
LIMIT ?
"""


def _check_retention_args(before_ms: int, limit: int) -> None:
    check_seq(before_ms, "before_ms")
    if not isinstance(limit, int) or limit < 1:
        raise ValueError("limit must be a positive int")


class MemoryStorage(Storage):
    """The same semantics in memory (for simulations and models; nothing survives the process)."""

    def __init__(self) -> None:
        self._rooms: dict[str, RoomInfo] = {}
        self._logs: dict[str, list[LogEntry]] = {}
        self._presence: dict[str, dict[str, int]] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def get_room(self, room: str) -> RoomInfo | None:
        check_id(room, "room id")
        return self._rooms.get(room)

    async def create_room(self, room: str, token_hash: bytes, created_ms: int) -> RoomInfo:
        check_id(room, "room id")
        if not isinstance(token_hash, bytes) or len(token_hash) != 32:
            raise ValueError("token_hash must be 32 bytes")
        check_seq(created_ms, "created_ms")
        if room not in self._rooms:
            self._rooms[room] = RoomInfo(room, token_hash, created_ms, 0)
            self._logs[room] = []
            self._presence[room] = {}
        return self._rooms[room]

    async def append(self, room: str, entry: NewEntry, expected_seq: int | None = None) -> LogEntry:
        _check_append_args(room, entry, expected_seq)
        info = self._rooms.get(room)
        if info is None:
            raise UnknownRoomError(f"unknown room {room!r}")
        seq = info.head + 1
        if expected_seq is not None and expected_seq != seq:
            raise SequenceConflictError(info.head, expected_seq)
        stored = entry.with_seq(seq)
        self._logs[room].append(stored)
        self._rooms[room] = RoomInfo(room, info.token_hash, info.created_ms, seq)
        if stored.entry_type == EntryType.JOINED:
            self._presence[room][stored.sender] = seq
        elif stored.entry_type in (EntryType.LEFT, EntryType.EVICTED):
            self._presence[room].pop(stored.sender, None)
        return stored

    async def read(self, room: str, after_seq: int, limit: int) -> list[LogEntry]:
        check_id(room, "room id")
        check_seq(after_seq, "after_seq")
        if not isinstance(limit, int) or limit < 1:
            raise ValueError("limit must be a positive int")
        log = self._logs.get(room, [])
        return log[after_seq : after_seq + limit]

    async def present_clients(self, room: str) -> dict[str, int]:
        check_id(room, "room id")
        return dict(self._presence.get(room, {}))

    async def rooms_with_presence(self) -> list[str]:
        return sorted(r for r, p in self._presence.items() if p)

    async def delete_idle_rooms(self, before_ms: int, keep: Collection[str] = (), limit: int = 1000) -> list[str]:
        _check_retention_args(before_ms, limit)
        deleted: list[str] = []
        for room, info in list(self._rooms.items()):
            log = self._logs[room]
            last = log[-1].timestamp_ms if log else info.created_ms
            if room in keep or self._presence[room] or last >= before_ms:
                continue
            del self._rooms[room], self._logs[room], self._presence[room]
            deleted.append(room)
            if len(deleted) >= limit:
                break
        return deleted
