"""The room logs in PostgreSQL (asyncpg): one database shared by any number of delivery nodes.

Same contract as :class:`~.storage.SQLiteStorage`, with what several writers need:

* every append is one transaction that locks the room's head row (``FOR UPDATE``), so numbering
  stays gap-free and compare-and-append exact across nodes; the reply comes after the commit
  (``synchronous_commit`` on: after fsync);
* the transaction also sends ``NOTIFY orange_fast_log, 'room:seq'`` (delivered only on commit),
  which :mod:`.cluster` turns into fan-out on the other nodes;
* presence rows carry an ``epoch`` (bumped on every attachment), the ``owner`` node and, once
  the connection ended, ``detached_at`` (database clock); attaching notifies
  ``orange_fast_attach`` so that the node holding an older connection closes it (SUPERSEDED);
* node leases (table ``nodes``) and :meth:`PostgresStorage.evict_stale`, which any node may run:
  a client whose connection ended, or whose node's lease expired, more than the eviction timeout
  ago gets one EVICTED notice (the room lock and a re-check make it exactly once).

The schema is created and upgraded by :func:`~.migrations.migrate_postgres` on :meth:`open`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .entry import EntryType, LogEntry, NewEntry, check_id, check_seq
from .errors import SequenceConflictError, StorageError, UnknownRoomError
from .migrations import migrate_postgres
from .storage import (
    Attachment,
    RoomInfo,
    Storage,
    _check_append_args,
    _check_attach_args,
    _check_remove_args,
    _creator,
)

__all__ = ["ATTACH_CHANNEL", "LOG_CHANNEL", "PostgresStorage", "is_postgres_url"]

LOG_CHANNEL = "orange_fast_log"
"""NOTIFY channel of appends; payload ``room:seq``."""
ATTACH_CHANNEL = "orange_fast_attach"
"""NOTIFY channel of attachments; payload ``epoch node room client`` (space-separated)."""

_T = TypeVar("_T")
_ENTRY_COLUMNS = "seq, ts, type, flags, sender, kind, payload"


def is_postgres_url(text: str) -> bool:
    """True if ``--db`` names a PostgreSQL database rather than a SQLite file."""
    return bool(re.match(r"^postgres(ql)?://", text))


def _entry(row: Any) -> LogEntry:
    return LogEntry(row[0], row[1], EntryType(row[2]), row[3], row[4], row[5], bytes(row[6]))


class PostgresStorage(Storage):
    """A PostgreSQL database (``postgresql://user@host:port/db``), shared by several nodes.

    Args:
        dsn: libpq-style URL.  Never logged (it may hold a password).
        min_connections, max_connections: asyncpg pool size.
    """

    shared = True

    def __init__(self, dsn: str, *, min_connections: int = 2, max_connections: int = 10) -> None:
        if not isinstance(dsn, str) or not is_postgres_url(dsn):
            raise ValueError("dsn must be a postgresql:// URL")
        if not 1 <= min_connections <= max_connections:
            raise ValueError("need 1 <= min_connections <= max_connections")
        self.dsn = dsn
        self._min, self._max = min_connections, max_connections
        self._pool: Any = None

    def __repr__(self) -> str:
        return "PostgresStorage(<dsn>)"

    # ------------------------------------------------------------------ plumbing

    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            import asyncpg  # type: ignore[import-untyped]
        except ImportError as exc:  # pragma: no cover - the 'postgres' extra is missing
            raise StorageError("PostgreSQL storage needs asyncpg (pip install orange_fast[postgres])") from exc
        try:
            pool = await asyncpg.create_pool(self.dsn, min_size=self._min, max_size=self._max)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError) as exc:
            raise StorageError(f"cannot open database: {type(exc).__name__}") from exc
        try:
            async with pool.acquire() as conn:
                await migrate_postgres(conn)
        except BaseException as exc:
            await pool.close()
            if isinstance(exc, StorageError):
                raise
            if isinstance(exc, Exception):
                raise StorageError(f"cannot migrate database: {type(exc).__name__}") from exc
            raise
        self._pool = pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 5.0)
            except (asyncio.TimeoutError, OSError):
                pool.terminate()

    async def _call(self, fn: Callable[[Any], Awaitable[_T]], *, transaction: bool = True) -> _T:
        if self._pool is None:
            raise StorageError("storage is not open")
        import asyncpg  # type: ignore[import-untyped]

        try:
            async with self._pool.acquire() as conn:
                if not transaction:
                    return await fn(conn)
                async with conn.transaction():
                    return await fn(conn)
        except (UnknownRoomError, SequenceConflictError):
            raise
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError) as exc:
            raise StorageError(f"postgresql error: {type(exc).__name__}") from exc

    # ------------------------------------------------------------------ the Storage contract

    async def get_room(self, room: str) -> RoomInfo | None:
        check_id(room, "room id")
        row = await self._call(
            lambda c: c.fetchrow("SELECT token_hash, created_ms, head FROM rooms WHERE room=$1", room),
            transaction=False,
        )
        return None if row is None else RoomInfo(room, bytes(row[0]), row[1], row[2])

    async def create_room(self, room: str, token_hash: bytes, created_ms: int) -> RoomInfo:
        check_id(room, "room id")
        if not isinstance(token_hash, bytes) or len(token_hash) != 32:
            raise ValueError("token_hash must be 32 bytes")
        check_seq(created_ms, "created_ms")

        async def q(c: Any) -> RoomInfo:
            await c.execute(
                "INSERT INTO rooms(room, token_hash, created_ms, head) VALUES ($1, $2, $3, 0) "
                "ON CONFLICT (room) DO NOTHING",
                room, token_hash, created_ms,
            )
            row = await c.fetchrow("SELECT token_hash, created_ms, head FROM rooms WHERE room=$1", room)
            return RoomInfo(room, bytes(row[0]), row[1], row[2])

        return await self._call(q)

    @staticmethod
    async def _append_in(
        c: Any, room: str, entry: NewEntry, expected_seq: int | None, request_id: int | None
    ) -> LogEntry:
        """The append, in one round trip (``orange_fast_append``, see :mod:`.migrations`)."""
        row = await c.fetchrow(
            "SELECT status, seq, ts, type, flags, sender, kind, payload "
            "FROM orange_fast_append($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            room, entry.timestamp_ms, int(entry.entry_type), entry.flags, entry.sender, entry.kind, entry.payload,
            expected_seq, request_id,
        )
        if row[0] == 1:
            raise UnknownRoomError(f"unknown room {room!r}")
        if row[0] == 2 and expected_seq is not None:
            raise SequenceConflictError(row[1], expected_seq)
        if row[0] != 0:
            raise StorageError(f"orange_fast_append returned status {row[0]}")
        return _entry(tuple(row)[1:])

    async def append(
        self, room: str, entry: NewEntry, expected_seq: int | None = None, request_id: int | None = None
    ) -> LogEntry:
        _check_append_args(room, entry, expected_seq, request_id)
        # one statement: its own transaction, no BEGIN/COMMIT round trips
        return await self._call(lambda c: self._append_in(c, room, entry, expected_seq, request_id),
                                transaction=False)

    async def attach(self, room: str, entry: NewEntry, owner: str) -> Attachment:
        _check_attach_args(room, entry, owner)

        async def q(c: Any) -> Attachment:
            if await c.fetchval("SELECT head FROM rooms WHERE room=$1 FOR UPDATE", room) is None:
                raise UnknownRoomError(f"unknown room {room!r}")
            row = await c.fetchrow(
                "UPDATE presence SET epoch=epoch+1, owner=$3, detached_at=NULL WHERE room=$1 AND client=$2 "
                "RETURNING join_seq, epoch",
                room, entry.sender, owner,
            )
            if row is not None:
                await c.execute(
                    "SELECT pg_notify($1, $2)", ATTACH_CHANNEL, f"{row[1]} {owner} {room} {entry.sender}"
                )
                return Attachment(None, row[0], row[1])
            anyone = await c.fetchval("SELECT 1 FROM presence WHERE room=$1 LIMIT 1", room)
            joined = await self._append_in(c, room, _creator(entry, anyone is None), None, None)
            await c.execute("UPDATE presence SET owner=$3 WHERE room=$1 AND client=$2", room, entry.sender, owner)
            return Attachment(joined, joined.seq, 1)

        return await self._call(q)

    async def remove(self, room: str, entry: NewEntry, epoch: int | None = None) -> LogEntry | None:
        _check_remove_args(room, entry, epoch)
        return await self._call(lambda c: self._remove_in(c, room, entry, epoch, None))

    async def _remove_in(
        self, c: Any, room: str, entry: NewEntry, epoch: int | None, stale_after_s: float | None
    ) -> LogEntry | None:
        if await c.fetchval("SELECT head FROM rooms WHERE room=$1 FOR UPDATE", room) is None:
            return None
        current = await c.fetchrow(
            "SELECT epoch FROM presence p WHERE room=$1 AND client=$2"
            + ("" if stale_after_s is None else " AND " + _stale(3)),
            room, entry.sender, *(() if stale_after_s is None else (stale_after_s,)),
        )
        if current is None or (epoch is not None and current[0] != epoch):
            return None
        return await self._append_in(c, room, entry, None, None)

    async def detach(self, room: str, client: str, epoch: int) -> None:
        check_id(room, "room id")
        check_id(client, "client id")
        await self._call(
            lambda c: c.execute(
                "UPDATE presence SET owner=NULL, detached_at=now() WHERE room=$1 AND client=$2 AND epoch=$3",
                room, client, epoch,
            ),
            transaction=False,
        )

    async def read(self, room: str, after_seq: int, limit: int) -> list[LogEntry]:
        check_id(room, "room id")
        check_seq(after_seq, "after_seq")
        if not isinstance(limit, int) or limit < 1:
            raise ValueError("limit must be a positive int")
        rows = await self._call(
            lambda c: c.fetch(
                f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE room=$1 AND seq>$2 ORDER BY seq LIMIT $3",
                room, after_seq, limit,
            ),
            transaction=False,
        )
        return [_entry(r) for r in rows]

    async def present_clients(self, room: str) -> dict[str, int]:
        check_id(room, "room id")
        rows = await self._call(
            lambda c: c.fetch("SELECT client, join_seq FROM presence WHERE room=$1", room), transaction=False
        )
        return {r[0]: r[1] for r in rows}

    async def rooms_with_presence(self) -> list[str]:
        rows = await self._call(
            lambda c: c.fetch("SELECT DISTINCT room FROM presence ORDER BY room"), transaction=False
        )
        return [r[0] for r in rows]

    # ------------------------------------------------------------------ nodes

    async def renew_lease(self, node: str, ttl_s: float) -> None:
        """Hold (or extend) ``node``'s lease until ``ttl_s`` seconds from now (database clock)."""
        await self._call(
            lambda c: c.execute(
                "INSERT INTO nodes(node, expires_at) VALUES ($1, now() + make_interval(secs => $2)) "
                "ON CONFLICT (node) DO UPDATE SET expires_at = EXCLUDED.expires_at",
                node, float(ttl_s),
            ),
            transaction=False,
        )

    async def release_node(self, node: str) -> None:
        """A node stops cleanly: its clients count as disconnected from now on; drop its lease."""

        async def q(c: Any) -> None:
            await c.execute("UPDATE presence SET owner=NULL, detached_at=now() WHERE owner=$1", node)
            await c.execute("DELETE FROM nodes WHERE node=$1", node)

        await self._call(q)

    async def evict_stale(
        self, eviction_timeout_s: float, now_ms: Callable[[], int], limit: int = 200
    ) -> list[tuple[str, LogEntry]]:
        """Append EVICTED for clients gone longer than ``eviction_timeout_s`` (database clock).

        Gone: the connection ended (``detached_at``) or the owner node's lease expired that long
        ago.  Safe to run on every node at once: each candidate is re-checked under its room's
        lock, so each client gets exactly one EVICTED entry.  Returns (room, entry) appended.
        """
        rows = await self._call(
            lambda c: c.fetch(f"SELECT room, client, epoch FROM presence p WHERE {_stale(1)} LIMIT $2",
                              float(eviction_timeout_s), limit),
            transaction=False,
        )
        evicted: list[tuple[str, LogEntry]] = []
        for room, client, epoch in rows:
            stored = await self._evict_one(room, NewEntry(EntryType.EVICTED, client, now_ms()), epoch,
                                           float(eviction_timeout_s))
            if stored is not None:
                evicted.append((room, stored))
        return evicted

    async def _evict_one(self, room: str, entry: NewEntry, epoch: int, timeout_s: float) -> LogEntry | None:
        return await self._call(lambda c: self._remove_in(c, room, entry, epoch, timeout_s))


def _stale(param: int) -> str:
    """SQL condition on presence ``p``: gone longer than the seconds in parameter ``$param``."""
    age = f"now() - make_interval(secs => ${param})"
    return (
        f"((p.owner IS NULL AND p.detached_at < {age}) OR "
        f"(p.owner IS NOT NULL AND NOT EXISTS (SELECT 1 FROM nodes n WHERE n.node = p.owner "
        f"AND n.expires_at > {age})))"
    )
