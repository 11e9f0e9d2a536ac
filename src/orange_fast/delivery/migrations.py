"""Versioned schema migrations of the delivery log, owned by the project (SQLite and PostgreSQL).

Each store records the version it is at; on open, every migration above it is applied in order,
each in its own transaction.  A database newer than this code is refused with
:class:`~.errors.StorageError` rather than guessed at.

* SQLite keeps the version in ``meta('schema')``.  Version 1 is the original schema (created by
  :mod:`.storage`); version 2 adds the presence epoch (which attachment of a client is current)
  and the idempotency keys of appends.
* PostgreSQL keeps it in ``orange_fast_schema(version)``; migrations run under an advisory lock
  so that several nodes starting at once apply each exactly once.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from .errors import StorageError

__all__ = ["POSTGRES_MIGRATIONS", "SQLITE_MIGRATIONS", "migrate_postgres", "migrate_sqlite"]

SQLITE_MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        2,
        """
        ALTER TABLE presence ADD COLUMN epoch INTEGER NOT NULL DEFAULT 1;
        CREATE TABLE requests (
            room TEXT NOT NULL,
            client TEXT NOT NULL,
            request_id INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            PRIMARY KEY (room, client, request_id)
        ) WITHOUT ROWID;
        """,
    ),
)
"""(version, script) applied after the version-1 schema of :mod:`.storage`."""

POSTGRES_MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE rooms (
            room text PRIMARY KEY,
            token_hash bytea NOT NULL,
            created_ms bigint NOT NULL,
            head bigint NOT NULL DEFAULT 0
        );
        CREATE TABLE entries (
            room text NOT NULL,
            seq bigint NOT NULL,
            ts bigint NOT NULL,
            type smallint NOT NULL,
            flags smallint NOT NULL,
            sender text NOT NULL,
            kind text NOT NULL,
            payload bytea NOT NULL,
            PRIMARY KEY (room, seq)
        );
        CREATE TABLE presence (
            room text NOT NULL,
            client text NOT NULL,
            join_seq bigint NOT NULL,
            epoch bigint NOT NULL DEFAULT 1,
            owner text,
            detached_at timestamptz,
            PRIMARY KEY (room, client)
        );
        CREATE INDEX presence_owner ON presence (owner);
        CREATE TABLE requests (
            room text NOT NULL,
            client text NOT NULL,
            request_id bigint NOT NULL,
            seq bigint NOT NULL,
            PRIMARY KEY (room, client, request_id)
        );
        CREATE TABLE nodes (
            node text PRIMARY KEY,
            started_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL
        );
        """,
    ),
    (
        2,
        # One round trip per append: the whole append (idempotency check, compare, entry, head,
        # presence, NOTIFY) as one function.  status 0 = stored (or an earlier retry's entry),
        # 1 = unknown room, 2 = sequence conflict (seq = the head).  Types: 1 JOINED, 2 LEFT, 3 EVICTED.
        """
        CREATE FUNCTION orange_fast_append(
            p_room text, p_ts bigint, p_type smallint, p_flags smallint, p_sender text, p_kind text,
            p_payload bytea, p_expected bigint, p_request bigint
        ) RETURNS TABLE (status int, seq bigint, ts bigint, type smallint, flags smallint, sender text,
                         kind text, payload bytea)
        LANGUAGE plpgsql AS $fn$
        #variable_conflict use_column
        DECLARE
            v_head bigint;
            v_seq bigint;
        BEGIN
            SELECT r.head INTO v_head FROM rooms r WHERE r.room = p_room FOR UPDATE;
            IF NOT FOUND THEN
                RETURN QUERY SELECT 1, 0::bigint, 0::bigint, 0::smallint, 0::smallint, ''::text, ''::text, ''::bytea;
                RETURN;
            END IF;
            IF p_request IS NOT NULL THEN
                RETURN QUERY SELECT 0, e.seq, e.ts, e.type, e.flags, e.sender, e.kind, e.payload
                    FROM requests q JOIN entries e ON e.room = q.room AND e.seq = q.seq
                    WHERE q.room = p_room AND q.client = p_sender AND q.request_id = p_request;
                IF FOUND THEN
                    RETURN;
                END IF;
            END IF;
            IF p_expected IS NOT NULL AND p_expected <> v_head + 1 THEN
                RETURN QUERY SELECT 2, v_head, 0::bigint, 0::smallint, 0::smallint, ''::text, ''::text, ''::bytea;
                RETURN;
            END IF;
            v_seq := v_head + 1;
            INSERT INTO entries(room, seq, ts, type, flags, sender, kind, payload)
                VALUES (p_room, v_seq, p_ts, p_type, p_flags, p_sender, p_kind, p_payload);
            UPDATE rooms SET head = v_seq WHERE room = p_room;
            IF p_type = 1 THEN
                INSERT INTO presence(room, client, join_seq, epoch) VALUES (p_room, p_sender, v_seq, 1)
                    ON CONFLICT (room, client)
                    DO UPDATE SET join_seq = v_seq, epoch = 1, owner = NULL, detached_at = NULL;
            ELSIF p_type IN (2, 3) THEN
                DELETE FROM presence WHERE room = p_room AND client = p_sender;
                DELETE FROM requests WHERE room = p_room AND client = p_sender;
            ELSIF p_request IS NOT NULL THEN
                INSERT INTO requests(room, client, request_id, seq) VALUES (p_room, p_sender, p_request, v_seq);
            END IF;
            PERFORM pg_notify('orange_fast_log', p_room || ':' || v_seq::text);
            RETURN QUERY SELECT 0, v_seq, p_ts, p_type, p_flags, p_sender, p_kind, p_payload;
        END
        $fn$;
        """,
    ),
)
"""(version, script) of the PostgreSQL schema."""

SQLITE_VERSION = max(v for v, _ in SQLITE_MIGRATIONS)
POSTGRES_VERSION = max(v for v, _ in POSTGRES_MIGRATIONS)
_PG_LOCK = 0x6F72616E6765  # advisory lock key ("orange")


def migrate_sqlite(conn: sqlite3.Connection) -> int:
    """Bring a SQLite log (at version 1 or later) to :data:`SQLITE_VERSION`; return that version."""
    row = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
    try:
        current = int(row[0]) if row is not None else 1
    except ValueError:
        raise StorageError(f"unsupported database schema version {row[0]!r}") from None
    if current > SQLITE_VERSION or current < 1:
        raise StorageError(f"unsupported database schema version {current!r}")
    for version, script in SQLITE_MIGRATIONS:
        if version <= current:
            continue
        statements = [s.strip() for s in script.split(";") if s.strip()]
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema', ?)", (str(version),))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        current = version
    return current


async def migrate_postgres(conn: Any) -> int:
    """Bring a PostgreSQL database (asyncpg connection) to :data:`POSTGRES_VERSION`; return it."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _PG_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS orange_fast_schema "
            "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        current = await conn.fetchval("SELECT coalesce(max(version), 0) FROM orange_fast_schema")
        if current > POSTGRES_VERSION:
            raise StorageError(f"database schema version {current} is newer than this code ({POSTGRES_VERSION})")
        for version, script in POSTGRES_MIGRATIONS:
            if version > current:
                await conn.execute(script)
                await conn.execute("INSERT INTO orange_fast_schema(version) VALUES ($1)", version)
                current = version
    return int(current)
