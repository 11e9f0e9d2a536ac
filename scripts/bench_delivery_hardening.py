"""Measure what a stranger's junk HELLO costs the delivery server, and the cost of fan-out.

Runs in-process against whichever ``orange_fast`` is on ``PYTHONPATH``, so the same script
measures main and a branch side by side::

    git archive main src | tar -x -C /tmp/delivery-main
    PYTHONPATH=/tmp/delivery-main/src python scripts/bench_delivery_hardening.py --label main
    PYTHONPATH=src python scripts/bench_delivery_hardening.py --label branch

``junk``: N HELLOs, each for a new room with a random 16-byte token and the largest join payload
the server accepts (1 MiB on main).  Reports, per HELLO: bytes added to the SQLite file (+WAL),
rooms left in memory, and Python heap still allocated after the connections closed (tracemalloc).
On a branch with access tokens it measures the embedded default (shared room tokens, still
accepting strangers' rooms but with the join payload capped) and the CLI's access tokens.

``fanout``: one room, R receivers (raw WebSockets that only count frames), one sender appending
M entries of 300 B over MemoryStorage (no disk); the server runs alone in a child process and
reports its own CPU time: server CPU microseconds per delivered entry.
Prints one JSON object per measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import secrets
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from orange_fast.delivery import (
    DeliveryClient,
    DeliveryServer,
    MemoryStorage,
    SQLiteStorage,
)
from orange_fast.delivery import protocol as P


def _disk(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())


async def _junk_hello(url: str, i: int, payload: bytes) -> str:
    try:
        async with connect(url, compression=None, ping_interval=None, max_size=None) as ws:
            await ws.send(P.encode(P.Hello(f"junk-{i}", secrets.token_bytes(16), "stranger", 0, payload)))
            frame = P.decode_server_frame(await asyncio.wait_for(ws.recv(), 10))
            return type(frame).__name__ if not isinstance(frame, P.Error) else frame.code.name
    except Exception as exc:  # noqa: BLE001 - refused at the handshake or closed: counted by type
        return type(exc).__name__


async def junk(n: int, mode: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "junk.db"
        kwargs: dict[str, Any] = {"max_message_size": 1 << 20}
        if mode == "access-tokens":
            from orange_fast.delivery import AccessTokenKey, AccessTokens

            kwargs["auth"] = AccessTokens(AccessTokenKey(secrets.token_urlsafe(32)))
        server = DeliveryServer("127.0.0.1", 0, SQLiteStorage(db, synchronous="NORMAL"), **kwargs)
        await server.start()
        try:
            limits = getattr(server, "max_join_payload", server.max_message_size)
            payload = b"\x00" * limits
            disk0 = _disk(db)
            # one warm-up HELLO, so that imports and caches do not count as lasting memory
            await _junk_hello(server.url, -1, payload)
            gc.collect()
            disk0, rooms0 = _disk(db), len(server._rooms)
            tracemalloc.start()
            mem0 = tracemalloc.get_traced_memory()[0]
            outcomes: dict[str, int] = {}
            for i in range(n):
                o = await _junk_hello(server.url, i, payload)
                outcomes[o] = outcomes.get(o, 0) + 1
            await asyncio.sleep(0.5)  # let the handlers finish
            gc.collect()
            mem1 = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            return {
                "measure": "junk-hello", "mode": mode, "hellos": n, "join_payload": len(payload),
                "outcomes": outcomes,
                "disk_bytes_per_hello": round((_disk(db) - disk0) / n),
                "rooms_in_memory_per_hello": round((len(server._rooms) - rooms0) / n, 3),
                "heap_bytes_per_hello": round((mem1 - mem0) / n),
            }
        finally:
            await server.stop()


def _serve_child(conn: Any) -> None:
    """Child process: a server over MemoryStorage; answers "cpu" with its own CPU seconds."""
    import threading

    async def run() -> None:
        server = DeliveryServer("127.0.0.1", 0, MemoryStorage(), heartbeat_interval=30, eviction_timeout=60)
        await server.start()
        conn.send(server.port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def answer() -> None:
            while True:
                if conn.recv() == "stop":
                    loop.call_soon_threadsafe(stop.set)
                    return
                conn.send(time.process_time())

        threading.Thread(target=answer, daemon=True).start()
        await stop.wait()
        await server.stop()

    asyncio.run(run())


async def fanout(receivers: int, entries: int) -> dict[str, Any]:
    """Server CPU per delivered entry, the server alone in its own process."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve_child, args=(child,), daemon=True)
    proc.start()
    url = f"ws://127.0.0.1:{parent.recv()}"
    token = b"fanout-room-token-0123456789"
    conns = []
    try:
        for i in range(receivers):
            ws = await connect(url, compression=None, ping_interval=None)
            await ws.send(P.encode(P.Hello("room", token, f"r{i}")))
            await ws.recv()
            conns.append(ws)
        sender = DeliveryClient(url, "room", token, "sender", reconnect=False)
        await sender.connect()
        target = receivers + entries  # JOINED notices of the later receivers + the sender, then the entries
        counts = [0] * receivers
        done = asyncio.Event()

        async def count(i: int, ws: Any) -> None:
            async for message in ws:
                if message[0] == P.FrameType.ENTRY:
                    counts[i] += 1
                    if counts[i] >= target - i and all(c >= target - j for j, c in enumerate(counts)):
                        done.set()

        readers = [asyncio.create_task(count(i, ws)) for i, ws in enumerate(conns)]
        await asyncio.sleep(0.5)  # catch-up traffic done
        parent.send("cpu")
        cpu0, wall0 = parent.recv(), time.perf_counter()
        payload = b"x" * 300
        for _ in range(entries):
            await sender.append("m", payload)
        await asyncio.wait_for(done.wait(), 300)
        parent.send("cpu")
        cpu, wall = parent.recv() - cpu0, time.perf_counter() - wall0
        for t in readers:
            t.cancel()
        await sender.close(leave=False)
        return {
            "measure": "fanout", "receivers": receivers, "entries": entries,
            "server_cpu_us_per_delivery": round(cpu / (receivers * entries) * 1e6, 2),
            "wall_s": round(wall, 3),
        }
    finally:
        for ws in conns:
            await ws.close()
        parent.send("stop")
        proc.join(10)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", default=os.environ.get("LABEL", "?"))
    parser.add_argument("--hellos", type=int, default=60)
    parser.add_argument("--receivers", type=int, default=50)
    parser.add_argument("--entries", type=int, default=200)
    args = parser.parse_args()
    import orange_fast.delivery as D

    modes = ["default"] + (["access-tokens"] if hasattr(D, "AccessTokens") else [])
    for mode in modes:
        print(json.dumps({"label": args.label, **await junk(args.hellos, mode)}), flush=True)
    print(json.dumps({"label": args.label, **await fanout(args.receivers, args.entries)}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
