"""Storage contract (SQLite file and in-memory), persistence across reopen, token buckets."""

from __future__ import annotations

import asyncio
import hashlib
import math
import sqlite3
from pathlib import Path
from typing import AsyncIterator

import pytest
import pytest_asyncio

from orange_fast.delivery.entry import FLAG_CREATOR, EntryType, LogEntry, NewEntry
from orange_fast.delivery.errors import SequenceConflictError, StorageError, UnknownRoomError
from orange_fast.delivery.ratelimit import RateLimits, TokenBucket
from orange_fast.delivery.storage import MemoryStorage, SQLiteStorage, Storage, token_hash

pytestmark = pytest.mark.timeout(30)

TOKEN = b"0123456789abcdef-room-token"


@pytest_asyncio.fixture(params=["sqlite", "memory"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    store: Storage = SQLiteStorage(tmp_path / "log.db") if request.param == "sqlite" else MemoryStorage()
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
