"""The TypeScript DeliveryClient against the real Python delivery server (and a hostile one):
HELLO with a join payload, compare-and-append and its conflict, reconnection with resume after an
abrupt drop, PING answered (no eviction while silent past the eviction timeout), BYE; and a
server that skips a sequence number is refused (gap detection)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from web_support import TOKEN, require_build, run_delivery_probe, start_server

from orange_fast.delivery import DeliveryClient, EntryType, LogEntry
from orange_fast.delivery import protocol as P

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]


@pytest.fixture(autouse=True)
def _needs_node() -> None:
    require_build()


async def read_log(url: str) -> list[LogEntry]:
    reader = DeliveryClient(url, "room", TOKEN, "reader", reconnect=False)
    await reader.connect()
    head = reader.ready.head_seq if reader.ready else 0
    entries: list[LogEntry] = []
    while not entries or entries[-1].seq < head:
        entries.append(await reader.next_entry(timeout=5))
    await reader.close(leave=False)
    return [e for e in entries if e.sender != "reader"]


async def test_node_delivery_client_against_python_server(tmp_path: Path) -> None:
    server = await start_server(tmp_path / "log.db", heartbeat_interval=0.2, eviction_timeout=1.5)
    try:
        report = await run_delivery_probe(url=server.url, room="room", token=TOKEN.hex(), client="node-1", idleMs=3200)
        assert report.get("error") is None, report
        assert report["conflict"] == "SEQUENCE_CONFLICT"
        assert report["connections"] == 2  # one abrupt drop, one resumed connection
        assert report["ended"] == "closed" and report["failure"] is None
        log = await read_log(server.url)
        # what the server logged: JOINED (with our payload), our three messages, LEFT; no EVICTED
        assert [(e.entry_type, e.sender, e.kind) for e in log] == [
            (EntryType.JOINED, "node-1", ""),
            (EntryType.MESSAGE, "node-1", "t.a"),
            (EntryType.MESSAGE, "node-1", "t.c"),
            (EntryType.MESSAGE, "node-1", "t.d"),
            (EntryType.LEFT, "node-1", ""),
        ]
        assert log[0].payload == b"\x01\x02\x03"
        assert report["seqs"] == [str(e.seq) for e in log[1:4]]
        # the client saw every entry up to its BYE exactly once, in order, across the reconnection
        seen = [int(e[0]) for e in report["entries"]]
        assert seen == list(range(1, len(seen) + 1)) and seen[-1] >= log[3].seq
    finally:
        await server.stop()


async def test_node_delivery_client_refuses_a_gap() -> None:
    import websockets

    async def hostile(ws) -> None:  # type: ignore[no-untyped-def]
        P.decode_client_frame(await ws.recv())
        await ws.send(P.encode(P.Ready(3, 0, 0, 1000, 5000, 1 << 20)))
        for seq in (1, 3):
            await ws.send(P.encode(LogEntry(seq, 0, EntryType.MESSAGE, 0, "x", "k", b"")))
        await asyncio.sleep(2)

    async with websockets.serve(hostile, "127.0.0.1", 0) as srv:
        port = srv.sockets[0].getsockname()[1]
        report = await run_delivery_probe(
            url=f"ws://127.0.0.1:{port}", room="room", token="00", client="n", scenario="gap"
        )
    assert report["entries"] == [["1", 0, "x", "k"]]
    assert report["ended"] == "ProtocolError" and report["failure"] == "ProtocolError"
