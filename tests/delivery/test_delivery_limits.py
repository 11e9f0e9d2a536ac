"""Bounded resources (issue 9 finding 4, issue 14 item 4): caps, push-back, rooms freed, retention."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from delivery_support import TOKEN, ClientFactory, ServerFactory
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from orange_fast.delivery import (
    AccessTokenKey,
    AccessTokens,
    DeliveryClient,
    EntryType,
    MemoryStorage,
    MessageTooLargeError,
    NewEntry,
    RateLimitedError,
    ServerBusyError,
    ServerLimits,
    SQLiteStorage,
    Storage,
)
from orange_fast.delivery.limits import AddressTable, OverloadGauge

pytestmark = [pytest.mark.timeout(60)]

WAIT = 5.0
KEY = AccessTokenKey("k" * 43)


async def connect_fails(server_url: str, client_id: str, room: str = "room", **kw: object) -> BaseException:
    client = DeliveryClient(server_url, room, TOKEN, client_id, reconnect=False, **kw)  # type: ignore[arg-type]
    with pytest.raises(Exception) as info:
        await client.connect()
    await client.close(leave=False)
    return info.value


# ------------------------------------------------------------------ pure parts


def test_limits_validate() -> None:
    with pytest.raises(ValueError):
        ServerLimits(max_connections=0)
    with pytest.raises(ValueError):
        ServerLimits(overload_lag=-1.0)
    with pytest.raises(ValueError):
        ServerLimits(max_join_payload=True)  # type: ignore[arg-type]
    public = ServerLimits.public(max_rooms=5)
    assert public.max_rooms == 5 and public.max_connections_per_address == 64 and public.room_retention


def test_overload_gauge_needs_sustained_lag_and_has_hysteresis() -> None:
    gauge = OverloadGauge(0.25, alpha=0.2)
    assert not gauge.observe(1.0)  # one pause: average 0.2
    assert gauge.observe(1.0)  # sustained: average 0.36
    assert gauge.observe(0.2)  # average 0.328: still above half the threshold
    for _ in range(20):
        shedding = gauge.observe(0.0)
    assert not shedding
    assert not OverloadGauge(None).observe(100.0)


class AddressTableMachine(RuleBasedStateMachine):
    """Counts match a model, never go negative, and the table stays within its bound."""

    def __init__(self) -> None:
        super().__init__()
        self.limits = ServerLimits(max_connections_per_address=3, hellos_per_second_per_address=1.0,
                                   hello_burst_per_address=2.0, max_address_entries=4)
        self.table = AddressTable(self.limits)
        self.open: dict[str, int] = {}
        self.now = 0.0

    @rule(addr=st.sampled_from("abcdefg"))
    def connect(self, addr: str) -> None:
        accepted = self.table.open(addr, self.now)
        assert accepted == (self.open.get(addr, 0) < 3)
        if accepted:
            self.open[addr] = self.open.get(addr, 0) + 1

    @rule(addr=st.sampled_from("abcdefg"))
    def disconnect(self, addr: str) -> None:
        if self.open.get(addr):
            self.table.close(addr)
            self.open[addr] -= 1

    @rule(addr=st.sampled_from("abcdefg"))
    def hello(self, addr: str) -> None:
        self.table.hello(addr, self.now)

    @rule(dt=st.floats(0, 5))
    def tick(self, dt: float) -> None:
        self.now += dt

    @invariant()
    def bounded(self) -> None:
        busy = sum(1 for n in self.open.values() if n)
        assert len(self.table) <= max(4, busy + 1)  # busy entries are never dropped; connections are capped


TestAddressTable = AddressTableMachine.TestCase
TestAddressTable.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)


def test_hello_bucket_refuses_bursts() -> None:
    table = AddressTable(ServerLimits(hellos_per_second_per_address=1.0, hello_burst_per_address=3.0))
    assert [table.hello("1.2.3.4", 0.0) for _ in range(4)] == [True, True, True, False]
    assert table.hello("5.6.7.8", 0.0)  # another address has its own bucket
    assert table.hello("1.2.3.4", 1.0)  # one token back after one second


# ------------------------------------------------------------------ retention in storage


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["sqlite", "memory"])
async def test_delete_idle_rooms(tmp_path: Path, kind: str) -> None:
    storage: Storage = SQLiteStorage(tmp_path / "r.db") if kind == "sqlite" else MemoryStorage()
    await storage.open()
    try:
        h = b"\0" * 32
        for room in ("left", "present", "recent", "kept", "empty"):
            await storage.create_room(room, h, 1000)
        for room in ("left", "present", "recent", "kept"):
            await storage.append(room, NewEntry(EntryType.JOINED, "a", 2000))
        for room in ("left", "kept"):
            await storage.append(room, NewEntry(EntryType.LEFT, "a", 3000))
        await storage.append("recent", NewEntry(EntryType.LEFT, "a", 9000))
        assert sorted(await storage.delete_idle_rooms(5000, keep={"kept"})) == ["empty", "left"]
        assert await storage.get_room("left") is None and await storage.read("left", 0, 10) == []
        for room in ("present", "recent", "kept"):
            assert await storage.get_room(room) is not None
        with pytest.raises(ValueError):
            await storage.delete_idle_rooms(-1)
    finally:
        await storage.close()


# ------------------------------------------------------------------ against a running server


@pytest.mark.asyncio
async def test_join_payload_is_capped(make_server: ServerFactory, make_client: ClientFactory) -> None:
    server = await make_server(limits=ServerLimits(max_join_payload=64))
    error = await connect_fails(server.url, "alice", join_payload=b"x" * 65)
    assert isinstance(error, MessageTooLargeError)
    assert await server.storage.get_room("room") is None
    client = await make_client(server, "bob", join_payload=b"x" * 64, reconnect=False)
    entry = await client.next_entry(WAIT)
    assert entry.payload == b"x" * 64


@pytest.mark.asyncio
async def test_connection_caps_give_typed_errors(make_server: ServerFactory, make_client: ClientFactory) -> None:
    server = await make_server(limits=ServerLimits(max_connections=2))
    await make_client(server, "a", reconnect=False)
    await make_client(server, "b", reconnect=False)
    assert isinstance(await connect_fails(server.url, "c"), ServerBusyError)
    assert server.refusals["SERVER_BUSY"] == 1

    per_address = await make_server(db=Path(str(server.storage.path) + "-2"),  # type: ignore[attr-defined]
                                     limits=ServerLimits(max_connections_per_address=1))
    await make_client(per_address, "a", reconnect=False)
    assert isinstance(await connect_fails(per_address.url, "b"), RateLimitedError)


@pytest.mark.asyncio
async def test_hello_rate_per_address(make_server: ServerFactory, make_client: ClientFactory) -> None:
    server = await make_server(limits=ServerLimits(hellos_per_second_per_address=0.01, hello_burst_per_address=2))
    await make_client(server, "a", reconnect=False)
    await make_client(server, "b", reconnect=False)
    assert isinstance(await connect_fails(server.url, "c"), RateLimitedError)


@pytest.mark.asyncio
async def test_overloaded_server_sheds_new_connections(make_server: ServerFactory, make_client: ClientFactory) -> None:
    server = await make_server(limits=ServerLimits(overload_lag=0.02))
    member = await make_client(server, "member", reconnect=False)
    for _ in range(50):  # keep the event loop busy until the server notices
        time.sleep(0.2)  # noqa: ASYNC251 - deliberately blocking the loop
        await asyncio.sleep(0.06)
        if server.overloaded:
            break
    assert server.overloaded
    assert isinstance(await connect_fails(server.url, "newcomer"), ServerBusyError)
    assert member.connected  # those already in are kept


@pytest.mark.asyncio
async def test_room_cap(make_server: ServerFactory, make_client: ClientFactory) -> None:
    server = await make_server(limits=ServerLimits(max_rooms=1))
    await make_client(server, "a", room="one", reconnect=False)
    await make_client(server, "b", room="one", reconnect=False)  # same room: fine
    assert isinstance(await connect_fails(server.url, "c", room="two"), ServerBusyError)
    assert await server.storage.get_room("two") is None


@pytest.mark.asyncio
async def test_rooms_leave_memory_when_nobody_is_present(
    make_server: ServerFactory, make_client: ClientFactory
) -> None:
    server = await make_server(eviction_timeout=1.0, heartbeat_interval=0.2)
    alice = await make_client(server, "alice", room="r1", reconnect=False)
    bob = await make_client(server, "bob", room="r2", reconnect=False)
    assert server.rooms_in_memory == 2
    await alice.close()  # BYE: nobody left in r1
    await bob.close(leave=False)  # dropped: bob stays present until evicted
    await wait_for(lambda: server.rooms_in_memory <= 1)  # r1 at once (r2 too if the eviction came already)
    await wait_for(lambda: server.rooms_in_memory == 0)  # bob evicted after the timeout
    # the log is still there, and a returning client loads the room again
    back = await make_client(server, "alice", room="r1", resume_from=2, reconnect=False)
    entry = await back.next_entry(WAIT)
    assert (entry.seq, entry.entry_type, entry.sender) == (3, EntryType.JOINED, "alice")
    assert server.rooms_in_memory == 1


@pytest.mark.asyncio
async def test_retention_deletes_logs_of_abandoned_rooms(
    make_server: ServerFactory, make_client: ClientFactory
) -> None:
    now = [1_000_000.0]
    server = await make_server(limits=ServerLimits(room_retention=3600.0), clock=lambda: now[0])
    gone = await make_client(server, "alice", room="gone", reconnect=False)
    await gone.close()
    stays = await make_client(server, "bob", room="stays", reconnect=False)
    await wait_for(lambda: server.rooms_in_memory == 1)  # "gone" left memory (rooms in use are never deleted)
    now[0] += 3601
    assert await server.sweep_retention() == ["gone"]
    assert await server.storage.get_room("gone") is None
    assert await server.storage.get_room("stays") is not None
    assert stays.connected


@pytest.mark.asyncio
async def test_junk_hello_leaves_nothing(make_server: ServerFactory, tmp_path: Path) -> None:
    db = tmp_path / "junk.db"
    server = await make_server(db=db, auth=AccessTokens(KEY))
    before = db.stat().st_size + (Path(str(db) + "-wal").stat().st_size if Path(str(db) + "-wal").exists() else 0)
    for i in range(20):
        await connect_fails(server.url, f"junk{i}", room=f"junk-room-{i}")
    after = db.stat().st_size + (Path(str(db) + "-wal").stat().st_size if Path(str(db) + "-wal").exists() else 0)
    assert after == before
    assert server.rooms_in_memory == 0
    assert server.refusals["AUTH_FAILED"] == 20
    await wait_for(lambda: server.connection_count == 0)


async def wait_for(pred: object, limit: float = 10.0) -> None:
    async def loop() -> None:
        while not pred():  # type: ignore[operator]
            await asyncio.sleep(0.02)

    await asyncio.wait_for(loop(), limit)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 6), max_size=30))
def test_address_table_counts_never_negative(ops: list[int]) -> None:
    table = AddressTable(ServerLimits(max_connections_per_address=2))
    for op in ops:
        addr = f"10.0.0.{op % 3}"
        if op < 3:
            table.open(addr, 0.0)
        else:
            table.close(addr)
    assert all(e.connections >= 0 for e in table._table.values())
