"""Several delivery nodes on one real PostgreSQL: one log, one creator, one CAS winner, SUPERSEDED and
eviction across nodes, idempotent retries, and SessionClients spread over nodes forming one group."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from delivery_support import TOKEN, ClientFactory
from websockets.asyncio.client import connect

from orange_fast.delivery import (
    DeliveryClient,
    DeliveryServer,
    EntryType,
    LogEntry,
    ServerError,
)
from orange_fast.delivery import protocol as P
from orange_fast.delivery.errors import (
    ConnectionLostError,
    ErrorCode,
    ServerSequenceConflictError,
)
from orange_fast.delivery.pgstorage import PostgresStorage

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]

NodeFactory = Callable[..., Awaitable[DeliveryServer]]


@pytest_asyncio.fixture
async def make_node(pg_database: Callable[[], str]) -> AsyncIterator[NodeFactory]:
    """``make(dsn=None, **kwargs)``: a node on the test's database (or ``dsn``); all stopped at teardown."""
    dsn = pg_database()
    nodes: list[DeliveryServer] = []

    async def make(**kwargs: Any) -> DeliveryServer:
        kwargs.setdefault("heartbeat_interval", 0.2)
        kwargs.setdefault("eviction_timeout", 5.0)
        node = DeliveryServer("127.0.0.1", 0, PostgresStorage(kwargs.pop("dsn", dsn)), **kwargs)
        await node.start()
        nodes.append(node)
        return node

    make.dsn = dsn  # type: ignore[attr-defined]
    yield make
    for node in nodes:
        await node.stop()


async def read_log(dsn: str, room: str = "room") -> list[LogEntry]:
    store = PostgresStorage(dsn, min_connections=1, max_connections=1)
    await store.open()
    try:
        return await store.read(room, 0, 100_000)
    finally:
        await store.close()


async def entries_until(client: DeliveryClient, seq: int, timeout: float = 10.0) -> list[LogEntry]:
    """The client's next entries (from its queue), up to and including ``seq``."""
    got: list[LogEntry] = []
    while not got or got[-1].seq < seq:
        got.append(await client.next_entry(timeout))
    return got


async def caught_up(client: DeliveryClient, seq: int, timeout: float = 10.0) -> None:
    async def wait() -> None:
        while client.last_seq < seq:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(wait(), timeout)


async def test_clients_on_three_nodes_see_one_log(make_node: NodeFactory, make_client: ClientFactory) -> None:
    nodes = [await make_node() for _ in range(3)]
    clients = [await make_client(nodes[i % 3], f"c{i}") for i in range(6)]
    # everyone appends through its own node, concurrently
    acked = await asyncio.gather(*(c.append("k", f"{c.client_id}-{n}".encode()) for c in clients for n in range(5)))
    head = 6 + 30
    assert sorted(acked) == list(range(7, head + 1))  # gap-free, no seq given twice
    logs = [[(e.seq, e.entry_type, e.sender, e.payload, e.flags) for e in await entries_until(c, head)]
            for c in clients]
    assert all(log == logs[0] for log in logs) and len(logs[0]) == head
    assert [e.seq for e in await read_log(make_node.dsn)] == list(range(1, head + 1))  # type: ignore[attr-defined]
    creators = [s for (_, t, s, _, f) in logs[0] if t == EntryType.JOINED and f]
    assert creators == ["c0"]  # one creator, decided in the database


async def test_compare_and_append_race_across_nodes_has_one_winner(
    make_node: NodeFactory, make_client: ClientFactory
) -> None:
    nodes = [await make_node() for _ in range(3)]
    clients = [await make_client(nodes[i], f"committer{i}") for i in range(3)]
    for round_ in range(5):
        head = len(await read_log(make_node.dsn))  # type: ignore[attr-defined]
        await asyncio.gather(*(caught_up(c, head) for c in clients))
        results = await asyncio.gather(
            *(c.append("commit", f"r{round_}-{c.client_id}".encode(), expected_seq=head + 1) for c in clients),
            return_exceptions=True,
        )
        winners = [r for r in results if isinstance(r, int)]
        losers = [r for r in results if isinstance(r, ServerSequenceConflictError)]
        assert winners == [head + 1] and len(losers) == 2, results
        assert all(exc.seq == head + 1 for exc in losers)  # the conflict reports the new head
    log = await read_log(make_node.dsn)  # type: ignore[attr-defined]
    assert [e.seq for e in log] == list(range(1, len(log) + 1))
    assert sum(1 for e in log if e.kind == "commit") == 5


async def test_superseded_and_resume_across_nodes(make_node: NodeFactory, make_client: ClientFactory) -> None:
    a, b = await make_node(), await make_node()
    old = await make_client(a, "alice", reconnect=False)
    bob = await make_client(b, "bob")
    await old.append("k", b"one")
    await caught_up(old, 3)
    new = await make_client(b, "alice", resume_from=old.last_seq)
    assert new.ready is not None and new.ready.join_seq == 0  # still present: no second JOINED
    with pytest.raises(ServerError) as exc:
        while True:
            await old.next_entry(10)
    assert exc.value.code == ErrorCode.SUPERSEDED
    seq = await new.append("k", b"two")
    got = await entries_until(bob, seq)
    assert [e.payload for e in got if e.entry_type == EntryType.MESSAGE][-1] == b"two"
    log = await read_log(make_node.dsn)  # type: ignore[attr-defined]
    assert [(e.entry_type, e.sender) for e in log if e.entry_type != EntryType.MESSAGE] == [
        (EntryType.JOINED, "alice"), (EntryType.JOINED, "bob")]


async def test_absent_client_is_evicted_once_by_some_node(make_node: NodeFactory, make_client: ClientFactory) -> None:
    nodes = [await make_node(eviction_timeout=0.6) for _ in range(3)]
    watcher = await make_client(nodes[0], "watcher")
    gone = await make_client(nodes[1], "gone", reconnect=False)
    await gone.close(leave=False)  # dropped, never comes back
    got = []
    while not any(e.entry_type == EntryType.EVICTED for e in got):
        got.append(await watcher.next_entry(10))
    await asyncio.sleep(1.0)  # more sweeps on every node: still exactly one EVICTED
    log = await read_log(make_node.dsn)  # type: ignore[attr-defined]
    assert [(e.entry_type, e.sender) for e in log] == [
        (EntryType.JOINED, "watcher"), (EntryType.JOINED, "gone"), (EntryType.EVICTED, "gone")]


async def test_dead_nodes_clients_are_evicted_unless_they_come_back(
    make_node: NodeFactory, make_client: ClientFactory
) -> None:
    """A node that stops renewing its lease (as if killed): a survivor evicts only the clients that stay away."""
    survivor = await make_node(eviction_timeout=0.8)
    doomed = await make_node(eviction_timeout=0.8)
    watcher = await make_client(survivor, "watcher")
    mover = await make_client([doomed.url, survivor.url], "mover")
    await make_client(doomed, "stayer", reconnect=False)
    # "kill" the node: no lease renewal, no release, connections cut without any notice being written
    assert doomed._cluster is not None
    for task in doomed._cluster._tasks:
        task.cancel()
    doomed._cluster._tasks = []
    doomed._cluster = None
    doomed._stopping = True
    assert doomed._server is not None
    doomed._server.close(close_connections=False)  # stop listening
    for conn in list(doomed._conns):
        conn.ws.transport.abort()

    async def moved() -> None:
        while mover.connections < 2 or not mover.connected:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(moved(), 10)
    assert mover.url == survivor.url
    seq = await mover.append("k", b"moved")
    got = await entries_until(watcher, seq)
    while not any(e.entry_type == EntryType.EVICTED for e in got):
        got.append(await watcher.next_entry(15))
    await asyncio.sleep(0.5)
    log = await read_log(make_node.dsn)  # type: ignore[attr-defined]
    assert [(e.entry_type, e.sender) for e in log if e.entry_type != EntryType.MESSAGE] == [
        (EntryType.JOINED, "watcher"), (EntryType.JOINED, "mover"), (EntryType.JOINED, "stayer"),
        (EntryType.EVICTED, "stayer")]


async def test_retried_append_after_a_lost_ack_is_applied_once(make_node: NodeFactory) -> None:
    a, b = await make_node(), await make_node()

    async def hello(url: str, resume_from: int) -> Any:
        ws = await connect(url, compression=None)
        await ws.send(P.encode(P.Hello("room", TOKEN, "raw", resume_from)))
        assert isinstance(P.decode_server_frame(await ws.recv()), P.Ready)
        return ws

    ws = await hello(a.url, 0)
    await ws.send(P.encode(P.Append(77, "k", b"exactly-once")))
    acked = None
    while acked is None:
        frame = P.decode_server_frame(await ws.recv())
        if isinstance(frame, P.AppendOk):
            acked = frame.seq
    ws.transport.abort()  # as if the ack had been lost: the client retries on another node
    ws = await hello(b.url, acked)
    await ws.send(P.encode(P.Append(77, "k", b"exactly-once")))
    while True:
        frame = P.decode_server_frame(await ws.recv())
        if isinstance(frame, P.AppendOk):
            break
    assert frame.seq == acked
    await ws.close()
    log = await read_log(make_node.dsn)  # type: ignore[attr-defined]
    assert sum(1 for e in log if e.payload == b"exactly-once") == 1


async def test_session_clients_spread_over_nodes_form_one_group(make_node: NodeFactory) -> None:
    from session.session_client_support import close_all, start_client, wait_converged

    nodes = [await make_node(eviction_timeout=1.0), await make_node(eviction_timeout=1.0)]
    urls = [n.url for n in nodes]
    clients = []
    try:
        for i in range(4):
            clients.append(await start_client(urls[i % 2:] + urls[: i % 2], f"member{i}"))  # type: ignore[arg-type]
        await wait_converged(clients)
        assert {c._delivery.url for c in clients} == set(urls)  # really spread over both nodes
        epoch = clients[0].epoch
        assert epoch is not None and epoch >= 1  # the adds were committed (possibly in one commit)
        leaving = clients.pop(1)
        await leaving.leave()
        await wait_converged(clients)
        clients.append(await start_client(urls[::-1], "member4"))  # type: ignore[arg-type]
        await wait_converged(clients)
        assert clients[0].epoch is not None and clients[0].epoch > epoch  # the group rotated epochs
        assert len({c.epoch_authenticator for c in clients}) == 1
    finally:
        await close_all(clients)


async def test_client_evicted_by_another_node_is_disconnected_here(
    make_node: NodeFactory, make_client: ClientFactory
) -> None:
    """As when a node lost its lease for longer than the eviction timeout: its connection must not live on."""
    from orange_fast.delivery import NewEntry

    node = await make_node()
    alice = await make_client(node, "alice", reconnect=False)
    other = PostgresStorage(make_node.dsn, min_connections=1, max_connections=1)  # type: ignore[attr-defined]
    await other.open()
    try:
        assert await other.remove("room", NewEntry(EntryType.EVICTED, "alice", 1)) is not None
    finally:
        await other.close()
    got = []
    with pytest.raises(ConnectionLostError):  # closed by the server (EVICTED), and reconnect is off
        while True:
            got.append(await alice.next_entry(10))
    assert [(e.entry_type, e.sender) for e in got] == [(EntryType.JOINED, "alice"), (EntryType.EVICTED, "alice")]
    assert "room" not in node._rooms or "alice" not in node._rooms["room"].presence


async def test_entries_committed_while_listen_was_down_are_delivered(
    make_node: NodeFactory, make_client: ClientFactory
) -> None:
    """A lost LISTEN connection loses notifications: the node re-reads its rooms when it listens again."""
    import asyncpg

    a = await make_node(heartbeat_interval=3.0, eviction_timeout=20.0)  # LISTEN health checked every 3 s
    b = await make_node(heartbeat_interval=3.0, eviction_timeout=20.0)
    writer = await make_client(a, "writer")
    reader = await make_client(b, "reader")
    await caught_up(reader, 2)
    assert b._cluster is not None and b._cluster.listen_connections == 1
    admin = await asyncpg.connect(make_node.dsn)  # type: ignore[attr-defined]
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            f"orange-fast-listen {b.node_id}",
        )
    finally:
        await admin.close()
    assert killed == 1
    seq = await writer.append("k", b"while b was deaf")
    assert b._cluster.listen_connections == 1  # b has not noticed yet: its notification is lost
    got = await entries_until(reader, seq)
    assert got[-1].payload == b"while b was deaf"
    assert b._cluster.listen_connections == 2
