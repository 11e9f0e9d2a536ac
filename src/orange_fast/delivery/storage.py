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

from .entry import FLAG_CREATOR, EntryType, LogEntry, NewEntry, check_id, check_seq
from .errors import SequenceConflictError, StorageError, UnknownRoomError
from .migrations import migrate_sqlite

__all__ = ["Attachment", "RoomInfo", "Storage", "SQLiteStorage", "MemoryStorage", "token_hash"]

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


@dataclass(frozen=True)
class Attachment:
    """What :meth:`Storage.attach` decided, inside the store's transaction."""

    joined: LogEntry | None
    """The JOINED entry appended (None: the client was already present, nothing appended)."""
    join_seq: int
    """Seq of the client's current JOINED entry."""
    epoch: int
    """How many times this presence was attached (a later attachment supersedes earlier ones)."""


class Storage(abc.ABC):
    """Persistent per-room ordered logs.  All methods are coroutines; none interprets payloads.

    ``shared`` is True for a store that several delivery nodes use at once (PostgreSQL): the
    server then fans out through :mod:`.cluster` instead of trusting its own memory.
    """

    shared = False

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
    async def append(
        self, room: str, entry: NewEntry, expected_seq: int | None = None, request_id: int | None = None
    ) -> LogEntry:
        """Append ``entry`` to the room's log and return it with its sequence number.

        With ``expected_seq`` the append happens only if the entry gets exactly that sequence
        number (log head + 1); otherwise :class:`SequenceConflictError` is raised and nothing
        changes.  JOINED entries add ``entry.sender`` to the presence table, LEFT and EVICTED
        entries remove it, atomically with the append.  Raises :class:`UnknownRoomError`.

        With ``request_id`` the append is idempotent per (room, sender, request id) while the
        sender stays present: a retry returns the entry stored the first time (before any
        ``expected_seq`` check) and appends nothing.
        """

    @abc.abstractmethod
    async def attach(self, room: str, entry: NewEntry, owner: str) -> Attachment:
        """A client (``entry.sender``) connects to node ``owner``, in one transaction.

        If the client is absent, append ``entry`` (a JOINED notice) with :data:`FLAG_CREATOR`
        set exactly when nobody is present; otherwise append nothing and bump the presence
        epoch.  Raises :class:`UnknownRoomError`.
        """

    @abc.abstractmethod
    async def remove(self, room: str, entry: NewEntry, epoch: int | None = None) -> LogEntry | None:
        """Append ``entry`` (LEFT or EVICTED) only if its sender is present (at ``epoch`` if given).

        Returns the entry, or None (nothing appended) if the client is absent or was attached
        again since; so each departure is recorded once even when several nodes try.
        """

    # An optional hook, not abstract: a store that keeps no detach time (memory, SQLite) needs nothing here.
    async def detach(self, room: str, client: str, epoch: int) -> None:  # noqa: B027
        """The client's connection (attachment ``epoch``) ended; it stays present.

        Shared stores record when (database clock) so any node can evict it later.
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


def _check_append_args(room: str, entry: NewEntry, expected_seq: int | None, request_id: int | None = None) -> None:
    check_id(room, "room id")
    if not isinstance(entry, NewEntry):
        raise TypeError("entry must be a NewEntry")
    if expected_seq is not None:
        check_seq(expected_seq, "expected_seq", minimum=1)
    if request_id is not None:
        if not isinstance(request_id, int) or isinstance(request_id, bool) or not 0 < request_id < 1 << 32:
            raise ValueError("request_id must be an int in [1, 2**32)")
        if entry.entry_type != EntryType.MESSAGE:
            raise ValueError("only MESSAGE appends carry a request id")


def _check_attach_args(room: str, entry: NewEntry, owner: str) -> None:
    _check_append_args(room, entry, None)
    if entry.entry_type != EntryType.JOINED or entry.flags:
        raise ValueError("attach needs a JOINED entry without flags (the store decides the creator flag)")
    if not isinstance(owner, str) or not owner:
        raise ValueError("owner must be a non-empty node id")


def _check_remove_args(room: str, entry: NewEntry, epoch: int | None) -> None:
    _check_append_args(room, entry, None)
    if entry.entry_type not in (EntryType.LEFT, EntryType.EVICTED):
        raise ValueError("remove needs a LEFT or EVICTED entry")
    if epoch is not None:
        check_seq(epoch, "epoch", minimum=1)


def _creator(entry: NewEntry, creator: bool) -> NewEntry:
    """``entry`` (JOINED) with :data:`FLAG_CREATOR` iff ``creator``."""
    if not creator:
        return entry
    return NewEntry(entry.entry_type, entry.sender, entry.timestamp_ms, entry.kind, entry.payload, FLAG_CREATOR)


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
                migrate_sqlite(conn)
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

    async def _transaction(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        def q(conn: sqlite3.Connection) -> _T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return await self._run(q)

    @staticmethod
    def _append_in(
        conn: sqlite3.Connection, room: str, entry: NewEntry, expected_seq: int | None, request_id: int | None
    ) -> LogEntry:
        row = conn.execute("SELECT head FROM rooms WHERE room=?", (room,)).fetchone()
        if row is None:
            raise UnknownRoomError(f"unknown room {room!r}")
        if request_id is not None:
            done = conn.execute(
                "SELECT e.seq, e.ts, e.type, e.flags, e.sender, e.kind, e.payload FROM requests r "
                "JOIN entries e ON e.room=r.room AND e.seq=r.seq WHERE r.room=? AND r.client=? AND r.request_id=?",
                (room, entry.sender, request_id),
            ).fetchone()
            if done is not None:
                return LogEntry(done[0], done[1], EntryType(done[2]), done[3], done[4], done[5], bytes(done[6]))
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
                "INSERT OR REPLACE INTO presence(room, client, join_seq, epoch) VALUES (?,?,?,1)",
                (room, stored.sender, seq),
            )
        elif stored.entry_type in (EntryType.LEFT, EntryType.EVICTED):
            conn.execute("DELETE FROM presence WHERE room=? AND client=?", (room, stored.sender))
            conn.execute("DELETE FROM requests WHERE room=? AND client=?", (room, stored.sender))
        elif request_id is not None:
            conn.execute(
                "INSERT INTO requests(room, client, request_id, seq) VALUES (?,?,?,?)",
                (room, stored.sender, request_id, seq),
            )
        return stored

    async def append(
        self, room: str, entry: NewEntry, expected_seq: int | None = None, request_id: int | None = None
    ) -> LogEntry:
        _check_append_args(room, entry, expected_seq, request_id)
        return await self._transaction(lambda conn: self._append_in(conn, room, entry, expected_seq, request_id))

    async def attach(self, room: str, entry: NewEntry, owner: str) -> Attachment:
        _check_attach_args(room, entry, owner)

        def q(conn: sqlite3.Connection) -> Attachment:
            if conn.execute("SELECT 1 FROM rooms WHERE room=?", (room,)).fetchone() is None:
                raise UnknownRoomError(f"unknown room {room!r}")
            row = conn.execute(
                "SELECT join_seq, epoch FROM presence WHERE room=? AND client=?", (room, entry.sender)
            ).fetchone()
            if row is not None:
                conn.execute(
                    "UPDATE presence SET epoch=epoch+1 WHERE room=? AND client=?", (room, entry.sender)
                )
                return Attachment(None, row[0], row[1] + 1)
            anyone = conn.execute("SELECT 1 FROM presence WHERE room=? LIMIT 1", (room,)).fetchone()
            joined = self._append_in(conn, room, _creator(entry, anyone is None), None, None)
            return Attachment(joined, joined.seq, 1)

        return await self._transaction(q)

    async def remove(self, room: str, entry: NewEntry, epoch: int | None = None) -> LogEntry | None:
        _check_remove_args(room, entry, epoch)

        def q(conn: sqlite3.Connection) -> LogEntry | None:
            row = conn.execute(
                "SELECT epoch FROM presence WHERE room=? AND client=?", (room, entry.sender)
            ).fetchone()
            if row is None or (epoch is not None and row[0] != epoch):
                return None
            return self._append_in(conn, room, entry, None, None)

        return await self._transaction(q)

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
        self._epochs: dict[tuple[str, str], int] = {}
        self._requests: dict[tuple[str, str, int], int] = {}

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

    async def append(
        self, room: str, entry: NewEntry, expected_seq: int | None = None, request_id: int | None = None
    ) -> LogEntry:
        _check_append_args(room, entry, expected_seq, request_id)
        info = self._rooms.get(room)
        if info is None:
            raise UnknownRoomError(f"unknown room {room!r}")
        if request_id is not None and (room, entry.sender, request_id) in self._requests:
            return self._logs[room][self._requests[room, entry.sender, request_id] - 1]
        seq = info.head + 1
        if expected_seq is not None and expected_seq != seq:
            raise SequenceConflictError(info.head, expected_seq)
        stored = entry.with_seq(seq)
        self._logs[room].append(stored)
        self._rooms[room] = RoomInfo(room, info.token_hash, info.created_ms, seq)
        if stored.entry_type == EntryType.JOINED:
            self._presence[room][stored.sender] = seq
            self._epochs[room, stored.sender] = 1
        elif stored.entry_type in (EntryType.LEFT, EntryType.EVICTED):
            self._presence[room].pop(stored.sender, None)
            self._epochs.pop((room, stored.sender), None)
            for key in [k for k in self._requests if k[0] == room and k[1] == stored.sender]:
                del self._requests[key]
        elif request_id is not None:
            self._requests[room, stored.sender, request_id] = seq
        return stored

    async def attach(self, room: str, entry: NewEntry, owner: str) -> Attachment:
        _check_attach_args(room, entry, owner)
        if room not in self._rooms:
            raise UnknownRoomError(f"unknown room {room!r}")
        present = self._presence[room]
        if entry.sender in present:
            self._epochs[room, entry.sender] += 1
            return Attachment(None, present[entry.sender], self._epochs[room, entry.sender])
        joined = await self.append(room, _creator(entry, not present))
        return Attachment(joined, joined.seq, 1)

    async def remove(self, room: str, entry: NewEntry, epoch: int | None = None) -> LogEntry | None:
        _check_remove_args(room, entry, epoch)
        current = self._epochs.get((room, entry.sender))
        if current is None or (epoch is not None and current != epoch):
            return None
        return await self.append(room, entry)

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
