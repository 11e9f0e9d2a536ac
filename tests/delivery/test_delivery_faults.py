"""Faults under load with real processes: kill -9 of a delivery node, and PostgreSQL crashed and restarted
(``pg_ctl -m immediate``).  Nothing acknowledged is lost or doubled; absent clients are evicted once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from orange_fast.benchmark.delivery import Load, NodeProcess, verify_acked
from orange_fast.delivery import EntryType
from orange_fast.delivery.pglocal import LocalPostgres, PostgresUnavailable
from orange_fast.delivery.pgstorage import PostgresStorage

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]


async def start_nodes(dsn: str, n: int, **kwargs: float) -> list[NodeProcess]:
    return list(await asyncio.gather(*(asyncio.to_thread(NodeProcess, dsn, **kwargs) for _ in range(n))))


async def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def check_logs(store: PostgresStorage, load: Load) -> dict[str, list]:
    """Every room's log is gap-free; every acknowledged append is there exactly once; returns the logs."""
    lost, duplicated = await verify_acked(store, load)
    assert (lost, duplicated) == (0, 0)
    logs = {}
    for room in sorted({room for room, _ in load.acked.values()}):
        log = await store.read(room, 0, 100_000)
        assert [e.seq for e in log] == list(range(1, len(log) + 1))
        logs[room] = log
    return logs


async def test_kill_9_of_a_node_under_load(pg_database: Callable[[], str]) -> None:
    dsn = pg_database()
    nodes = await start_nodes(dsn, 2, eviction_timeout=1.5, heartbeat_interval=0.3)
    load = Load([n.url for n in nodes], clients=16, rate=5.0, absent=2)
    store = PostgresStorage(dsn, min_connections=1, max_connections=2)
    try:
        await load.connect()
        load.start()
        await wait_for(lambda: len(load.acked) >= 40, 20, "appends before the kill")
        moved = load.clients_on(nodes[0].url)
        assert moved and load.absent_ids
        killed_at = time.monotonic()
        nodes[0].kill()
        times = await load.reconnection_times(moved, killed_at, timeout=20)
        assert len(times) == len(moved)  # every client of the dead node is back, on the survivor
        assert all(c.url == nodes[1].url for c in moved)
        acked_at_kill = len(load.acked)
        await wait_for(lambda: len(load.acked) >= acked_at_kill + 40, 20, "appends after the kill")
        await load.stop()
        await store.open()

        async def evicted() -> list[tuple[str, str]]:
            out = []
            for room, client in load.absent_ids:
                out += [(room, e.sender) for e in await store.read(room, 0, 100_000)
                        if e.entry_type == EntryType.EVICTED and e.sender == client]
            return out

        deadline = time.monotonic() + 20
        while len(await evicted()) < len(load.absent_ids) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # further sweeps by the survivor must not evict again
        assert sorted(await evicted()) == sorted(load.absent_ids)  # once each
        logs = await check_logs(store, load)
        for log in logs.values():
            joins = [e.sender for e in log if e.entry_type == EntryType.JOINED]
            assert len(joins) == len(set(joins))  # the clients that moved did not JOIN again
            assert not [e for e in log if e.entry_type == EntryType.EVICTED and not e.sender.startswith("absent")]
        assert all(c.failure is None for c in load._clients)  # no gap, no protocol error anywhere
    finally:
        await load.close()
        await store.close()
        for n in nodes:
            n.stop()


async def test_postgres_crash_and_restart_under_load_loses_no_acknowledged_append() -> None:
    try:
        pg = LocalPostgres()
    except PostgresUnavailable as exc:
        pytest.skip(f"PostgreSQL is not available: {exc}")
    await asyncio.to_thread(pg.init)
    await asyncio.to_thread(pg.start)
    load = None
    nodes: list[NodeProcess] = []
    try:
        dsn = await asyncio.to_thread(pg.create_database, "crash")
        nodes = await start_nodes(dsn, 2, eviction_timeout=10.0, heartbeat_interval=0.3)
        load = Load([n.url for n in nodes], clients=16, rate=5.0)
        await load.connect()
        load.start()
        await wait_for(lambda: len(load.acked) >= 40, 20, "appends before the crash")
        await asyncio.to_thread(pg.stop, "immediate")  # no checkpoint: recovery replays the WAL
        await asyncio.sleep(0.5)
        await asyncio.to_thread(pg.start)
        acked_at_restart = len(load.acked)
        await wait_for(lambda: len(load.acked) >= acked_at_restart + 60, 30, "appends after the restart")
        await load.stop()
        assert load.errors == 0  # every append was retried until acknowledged
        assert any(c.connections > 1 for c in load._clients)  # the crash did reach the clients
        store = PostgresStorage(dsn, min_connections=1, max_connections=2)
        await store.open()
        try:
            await check_logs(store, load)
        finally:
            await store.close()
    finally:
        if load is not None:
            await load.close()
        for n in nodes:
            n.stop()
        await asyncio.to_thread(pg.close)
