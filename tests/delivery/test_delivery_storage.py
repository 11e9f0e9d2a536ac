"""Storage contract (SQLite file, PostgreSQL, in-memory), migrations, persistence across reopen, token buckets."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import math
import sqlite3
from pathlib import Path
from typing import AsyncIterator, Callable

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orange_fast.delivery.entry import FLAG_CREATOR, EntryType, LogEntry, NewEntry
from orange_fast.delivery.errors import SequenceConflictError, StorageError, UnknownRoomError
from orange_fast.delivery.pgstorage import PostgresStorage
from orange_fast.delivery.ratelimit import RateLimits, TokenBucket
from orange_fast.delivery.storage import MemoryStorage, SQLiteStorage, Storage, token_hash

pytestmark = pytest.mark.timeout(30)

TOKEN = b"0123456789abcdef-room-token"


@pytest_asyncio.fixture(params=["sqlite", "memory", "postgresql"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    store: Storage
    if request.param == "sqlite":
        store = SQLiteStorage(tmp_path / "log.db")
    elif request.param == "memory":
        store = MemoryStorage()
    else:
        store = PostgresStorage(request.getfixturevalue("pg_database")())
    await store.open()
    yield store
    await store.close()


def msg(sender: str, payload: bytes, ts: int = 1000) -> NewEntry:
    return NewEntry(EntryType.MESSAGE, sender, ts, kind="k", payload=payload)


@pytest.mark.asyncio
async def test_append_assigns_consecutive_seqs_and_reads_back(storage: Storage) -> None:
    info = await storage.create_room("r1", token_hash(TOKEN), 5)
    assert (info.room, info.head, info.created_ms) == ("r1", 0, 5)
    got = [await storage.append("r1", msg("a", bytes([i]))) for i in range(5)]
    assert [e.seq for e in got] == [1, 2, 3, 4, 5]
    assert await storage.read("r1", 0, 100) == got
    assert await storage.read("r1", 3, 100) == got[3:]
    assert await storage.read("r1", 1, 2) == got[1:3]
    assert await storage.read("r1", 5, 10) == []
    assert got[2] == LogEntry(3, 1000, EntryType.MESSAGE, 0, "a", "k", b"\x02")
    assert (await storage.get_room("r1")).head == 5  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_rooms_are_independent(storage: Storage) -> None:
    await storage.create_room("r1", token_hash(TOKEN), 0)
    await storage.create_room("r2", token_hash(b"other-token-xxxxxxxx"), 0)
    await storage.append("r1", msg("a", b"1"))
    e = await storage.append("r2", msg("b", b"2"))
    assert e.seq == 1
    assert [x.payload for x in await storage.read("r1", 0, 10)] == [b"1"]


@pytest.mark.asyncio
async def test_compare_and_append_conflict_changes_nothing(storage: Storage) -> None:
    await storage.create_room("r", token_hash(TOKEN), 0)
    await storage.append("r", msg("a", b"1"), expected_seq=1)
    with pytest.raises(SequenceConflictError) as exc:
        await storage.append("r", msg("a", b"stale"), expected_seq=1)
    assert (exc.value.head, exc.value.expected_seq) == (1, 1)
    with pytest.raises(SequenceConflictError):
        await storage.append("r", msg("a", b"future"), expected_seq=3)
    assert [e.payload for e in await storage.read("r", 0, 10)] == [b"1"]
    assert (await storage.append("r", msg("a", b"2"), expected_seq=2)).seq == 2


@pytest.mark.asyncio
async def test_presence_follows_notices(storage: Storage) -> None:
    await storage.create_room("r", token_hash(TOKEN), 0)
    await storage.append("r", NewEntry(EntryType.JOINED, "a", 0, flags=FLAG_CREATOR))
    await storage.append("r", NewEntry(EntryType.JOINED, "b", 0, payload=b"kp"))
    await storage.append("r", msg("a", b"x"))
    assert await storage.present_clients("r") == {"a": 1, "b": 2}
    assert await storage.rooms_with_presence() == ["r"]
    await storage.append("r", NewEntry(EntryType.LEFT, "a", 0))
    await storage.append("r", NewEntry(EntryType.EVICTED, "b", 0))
    assert await storage.present_clients("r") == {}
    assert await storage.rooms_with_presence() == []


@pytest.mark.asyncio
async def test_unknown_room_and_bad_arguments(storage: Storage) -> None:
    with pytest.raises(UnknownRoomError):
        await storage.append("nope", msg("a", b""))
    assert await storage.get_room("nope") is None
    assert await storage.read("nope", 0, 10) == []
    assert not await storage.check_token("nope", TOKEN)
    with pytest.raises(ValueError):
        await storage.create_room("r", b"short", 0)
    with pytest.raises(ValueError):
        await storage.create_room("bad room", token_hash(TOKEN), 0)
    await storage.create_room("r", token_hash(TOKEN), 0)
    with pytest.raises(ValueError):
        await storage.append("r", msg("a", b""), expected_seq=0)
    with pytest.raises(TypeError):
        await storage.append("r", "entry")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await storage.read("r", 0, 0)
    assert (await storage.get_room("r")).head == 0  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_create_room_keeps_first_token_and_checks_in_constant_time(storage: Storage) -> None:
    await storage.create_room("r", token_hash(TOKEN), 1)
    again = await storage.create_room("r", token_hash(b"attacker-token-xxxxxx"), 2)
    assert again.token_hash == hashlib.sha256(b"orange_fast delivery room token\x00" + TOKEN).digest()
    assert again.created_ms == 1
    assert await storage.check_token("r", TOKEN)
    assert not await storage.check_token("r", TOKEN + b"x")
    assert not await storage.check_token("r", b"attacker-token-xxxxxx")


@pytest.mark.asyncio
async def test_sqlite_survives_reopen_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "persist.db"
    store = SQLiteStorage(path)
    await store.open()
    await store.create_room("r", token_hash(TOKEN), 0)
    await store.append("r", NewEntry(EntryType.JOINED, "a", 0, payload=b"kp"))
    written = await store.append("r", msg("a", b"\x00\xffbinary"))
    await store.close()
    await store.close()  # idempotent

    reopened = SQLiteStorage(path)
    await reopened.open()
    assert (await reopened.get_room("r")).head == 2  # type: ignore[union-attr]
    assert (await reopened.read("r", 1, 10)) == [written]
    assert await reopened.present_clients("r") == {"a": 1}
    assert (await reopened.append("r", msg("a", b"next"))).seq == 3
    await reopened.close()

    with sqlite3.connect(path) as raw:  # an independent reader sees a real WAL database
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT COUNT(*) FROM entries WHERE room='r'").fetchone()[0] == 3
        assert TOKEN not in b"".join(bytes(r[0]) for r in raw.execute("SELECT token_hash FROM rooms"))


@pytest.mark.asyncio
async def test_sqlite_concurrent_appends_are_serialised(tmp_path: Path) -> None:
    store = SQLiteStorage(tmp_path / "c.db", synchronous="NORMAL")
    await store.open()
    await store.create_room("r", token_hash(TOKEN), 0)
    results = await asyncio.gather(*(store.append("r", msg("a", str(i).encode())) for i in range(50)))
    assert sorted(e.seq for e in results) == list(range(1, 51))
    assert [e.seq for e in await store.read("r", 0, 100)] == list(range(1, 51))
    await store.close()


@pytest.mark.asyncio
async def test_sqlite_errors_are_typed(tmp_path: Path) -> None:
    store = SQLiteStorage(tmp_path / "x.db")
    with pytest.raises(StorageError):
        await store.get_room("r")  # not open
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StorageError):
        await SQLiteStorage(tmp_path / "dir.db").open()
    bad = tmp_path / "garbage.db"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError):
        await SQLiteStorage(bad).open()
    with pytest.raises(ValueError):
        SQLiteStorage(tmp_path / "y.db", synchronous="OFF")


# --------------------------------------------------------------------------- token buckets


def test_token_bucket_refills_at_rate_up_to_burst() -> None:
    bucket = TokenBucket(rate=2.0, burst=3.0, now=0.0)
    assert [bucket.try_consume(1, 0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.try_consume(1, 0.5)  # 0.5 s * 2/s = 1 token
    assert not bucket.try_consume(1, 0.5)
    assert not bucket.try_consume(4, 100.0)  # never more than the burst
    assert bucket.try_consume(3, 100.0)
    assert not bucket.try_consume(1, 99.0)  # time going backwards adds nothing


def test_token_bucket_unlimited_and_validation() -> None:
    bucket = TokenBucket(math.inf, math.inf, 0.0)
    assert all(bucket.try_consume(10**9, 0.0) for _ in range(100))
    for rate, burst in ((0, 1), (1, 0), (-1, 1), (math.nan, 1)):
        with pytest.raises(ValueError):
            TokenBucket(rate, burst, 0.0)
    with pytest.raises(ValueError):
        RateLimits(messages_per_second=0)
    with pytest.raises(ValueError):
        RateLimits(byte_burst=math.nan)
    assert RateLimits.unlimited().messages_per_second == math.inf


# --------------------------------------------------------------------------- attach / remove / idempotency


def joined(client: str, payload: bytes = b"") -> NewEntry:
    return NewEntry(EntryType.JOINED, client, 1000, payload=payload)


@pytest.mark.asyncio
async def test_attach_decides_presence_and_creator_in_the_store(storage: Storage) -> None:
    await storage.create_room("r", token_hash(TOKEN), 0)
    a = await storage.attach("r", joined("a", b"kp-a"), "node-1")
    assert a.joined is not None and (a.joined.seq, a.joined.flags, a.join_seq, a.epoch) == (1, FLAG_CREATOR, 1, 1)
    again = await storage.attach("r", joined("a", b"ignored"), "node-2")  # still present: nothing appended
    assert (again.joined, again.join_seq, again.epoch) == (None, 1, 2)
    b = await storage.attach("r", joined("b"), "node-1")
    assert b.joined is not None and (b.joined.seq, b.joined.flags) == (2, 0)
    # a LEFT for an old attachment of "a" changes nothing; the current one removes it once
    assert await storage.remove("r", NewEntry(EntryType.LEFT, "a", 1), epoch=1) is None
    left = await storage.remove("r", NewEntry(EntryType.LEFT, "a", 1), epoch=2)
    assert left is not None and left.seq == 3
    assert await storage.remove("r", NewEntry(EntryType.EVICTED, "a", 1)) is None
    assert await storage.present_clients("r") == {"b": 2}
    await storage.remove("r", NewEntry(EntryType.EVICTED, "b", 1))
    c = await storage.attach("r", joined("c"), "node-1")  # the room emptied: a creator again
    assert c.joined is not None and c.joined.flags == FLAG_CREATOR
    assert [e.entry_type for e in await storage.read("r", 0, 10)] == [
        EntryType.JOINED, EntryType.JOINED, EntryType.LEFT, EntryType.EVICTED, EntryType.JOINED]
    with pytest.raises(UnknownRoomError):
        await storage.attach("nope", joined("a"), "node-1")
    with pytest.raises(ValueError):
        await storage.attach("r", NewEntry(EntryType.JOINED, "a", 1, flags=FLAG_CREATOR), "node-1")
    with pytest.raises(ValueError):
        await storage.remove("r", msg("a", b""))


@pytest.mark.asyncio
async def test_a_retried_request_is_applied_once(storage: Storage) -> None:
    await storage.create_room("r", token_hash(TOKEN), 0)
    await storage.attach("r", joined("a"), "n")
    first = await storage.append("r", msg("a", b"once"), request_id=7)
    assert first.seq == 2
    await storage.append("r", msg("b", b"other"), request_id=7)  # another client's key is its own
    retry = await storage.append("r", msg("a", b"once"), expected_seq=2, request_id=7)  # before the CAS check
    assert retry == first
    assert [e.payload for e in await storage.read("r", 0, 10)] == [b"", b"once", b"other"]
    # after the client left, its keys are gone: the same id is a new request
    await storage.remove("r", NewEntry(EntryType.LEFT, "a", 1))
    assert (await storage.append("r", msg("a", b"again"), request_id=7)).seq == 5
    for bad in (0, 1 << 32, -1):
        with pytest.raises(ValueError):
            await storage.append("r", msg("a", b""), request_id=bad)


# --------------------------------------------------------------------------- migrations


@pytest.mark.asyncio
async def test_sqlite_version_1_file_is_migrated_and_keeps_its_log(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE rooms (room TEXT PRIMARY KEY, token_hash BLOB NOT NULL, created_ms INTEGER NOT NULL,"
        " head INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE entries (room TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL, type INTEGER NOT NULL,"
        " flags INTEGER NOT NULL, sender TEXT NOT NULL, kind TEXT NOT NULL, payload BLOB NOT NULL,"
        " PRIMARY KEY (room, seq)) WITHOUT ROWID;"
        "CREATE TABLE presence (room TEXT NOT NULL, client TEXT NOT NULL, join_seq INTEGER NOT NULL,"
        " PRIMARY KEY (room, client)) WITHOUT ROWID;"
        "INSERT INTO meta VALUES ('schema', '1');"
    )
    conn.execute("INSERT INTO rooms VALUES ('r', ?, 5, 1)", (token_hash(TOKEN),))
    conn.execute("INSERT INTO entries VALUES ('r', 1, 9, 2, 1, 'a', '', x'')")
    conn.execute("INSERT INTO presence VALUES ('r', 'a', 1)")
    conn.commit()
    conn.close()
    store = SQLiteStorage(path)
    await store.open()
    try:
        again = await store.attach("r", joined("a"), "n")  # the migrated presence row has epoch 1
        assert (again.joined, again.join_seq, again.epoch) == (None, 1, 2)
        assert (await store.append("r", msg("a", b"x"), request_id=3)).seq == 2
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone() == ("2",)
    conn.execute("UPDATE meta SET value='99' WHERE key='schema'")
    conn.commit()
    conn.close()
    with pytest.raises(StorageError, match="schema version"):
        await SQLiteStorage(path).open()


@pytest.mark.asyncio
async def test_postgres_schema_is_versioned_and_shared_by_concurrent_openers(pg_database: Callable[[], str]) -> None:
    import asyncpg

    dsn = pg_database()
    stores = [PostgresStorage(dsn) for _ in range(3)]
    await asyncio.gather(*(s.open() for s in stores))  # three nodes starting at once migrate once
    try:
        await stores[0].create_room("r", token_hash(TOKEN), 0)
        assert (await stores[1].get_room("r")) is not None
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    conn = await asyncpg.connect(dsn)
    try:
        assert [tuple(r) for r in await conn.fetch("SELECT version FROM orange_fast_schema ORDER BY version")] == [
            (1,), (2,)]
        await conn.execute("INSERT INTO orange_fast_schema(version) VALUES (99)")
    finally:
        await conn.close()
    with pytest.raises(StorageError, match="newer than this code"):
        await PostgresStorage(dsn).open()
    with pytest.raises(StorageError, match="cannot open"):
        await PostgresStorage(dsn.rsplit("/", 1)[0] + "/no_such_database").open()
    assert "postgres@" not in repr(PostgresStorage(dsn))


# --------------------------------------------------------------------------- the stores agree (property)


_OPS = st.lists(
    st.tuples(
        st.sampled_from(["attach", "leave", "evict", "append", "cas"]),
        st.sampled_from(["a", "b", "c"]),
        st.integers(min_value=1, max_value=4),
    ),
    max_size=25,
)


async def _replay(store: Storage, room: str, ops: list[tuple[str, str, int]]) -> list[object]:
    await store.create_room(room, token_hash(TOKEN), 0)
    out: list[object] = []
    for op, client, n in ops:
        try:
            if op == "attach":
                out.append(await store.attach(room, joined(client), "n"))
            elif op in ("leave", "evict"):
                kind = EntryType.LEFT if op == "leave" else EntryType.EVICTED
                out.append(await store.remove(room, NewEntry(kind, client, 1), epoch=n if n < 3 else None))
            elif op == "append":
                out.append(await store.append(room, msg(client, bytes([n])), request_id=n))
            else:
                out.append(await store.append(room, msg(client, b"cas"), expected_seq=n))
        except SequenceConflictError as exc:
            out.append(("conflict", exc.head))
    out.append(await store.read(room, 0, 100))
    out.append(await store.present_clients(room))
    return out


@pytest.mark.asyncio
async def test_sqlite_and_postgresql_agree_with_the_memory_model(
    tmp_path: Path, pg_database: Callable[[], str]
) -> None:
    """Random attach/remove/append/CAS/retry sequences give identical results on all three stores."""
    stores: list[Storage] = [MemoryStorage(), SQLiteStorage(tmp_path / "p.db", synchronous="NORMAL"),
                             PostgresStorage(pg_database())]
    for store in stores:
        await store.open()
    rooms = itertools.count()
    loop = asyncio.get_running_loop()

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(_OPS)
    def check(ops: list[tuple[str, str, int]]) -> None:
        room = f"r{next(rooms)}"
        results = [asyncio.run_coroutine_threadsafe(_replay(s, room, ops), loop).result(30) for s in stores]
        assert results[1] == results[0]
        assert results[2] == results[0]

    try:
        await loop.run_in_executor(None, check)
    finally:
        for store in stores:
            await store.close()
