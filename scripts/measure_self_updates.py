"""Cost of periodic self-updates (post-compromise security) per member, measured on real clients.

    PYTHONPATH=src python scripts/measure_self_updates.py [--sizes 2 8 32]

For each room size N: a delivery server (SQLite in a temporary directory) and N
``SessionClient``s in this process form a room; then every member refreshes its leaf once,
one after the other, as the periodic timer would make it do (a non-committer appends an
Update proposal, the designated committer commits it with a path; the committer's own
refresh is a path-only commit).  Reported per update: log entries and bytes appended,
bytes delivered to the room (every member reads every entry), and process CPU (server and
all clients share this process, so it is the whole room's CPU) minus the same wall time
idle, in total and per member.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from orange_fast.delivery import DeliveryServer, SQLiteStorage
from orange_fast.session.client import SessionClient, SessionConfig
from orange_fast.session.testing import crash

ROOM = "pcs"
NEVER = 10**9  # ticks: the timer never fires on its own; the script makes each update due


def _converged(clients: list[SessionClient]) -> bool:
    states = {(c.gen, c.epoch, c.epoch_authenticator) for c in clients}
    return all(c.in_group for c in clients) and len(states) == 1 and all(
        len(c.roster) == len(clients) and c.committer.view.idle() for c in clients
    )


async def _until(pred, timeout: float) -> None:  # noqa: ANN001
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise TimeoutError("no convergence")
        await asyncio.sleep(0.005)


async def measure(n: int) -> dict[str, float]:
    config = SessionConfig(tick_interval=0.05, grace_period=1.0, update_interval=NEVER)
    with tempfile.TemporaryDirectory() as tmp:
        server = DeliveryServer("127.0.0.1", 0, SQLiteStorage(Path(tmp) / "log.db", synchronous="NORMAL"))
        await server.start()
        token = os.urandom(16)
        clients: list[SessionClient] = []
        try:
            for i in range(n):
                c = SessionClient(server.url, ROOM, token, f"m{i}", config=config,
                                  delivery_options={"backoff_initial": 0.02, "backoff_max": 0.2})
                await c.start()
                clients.append(c)
            await _until(lambda: _converged(clients), 60 + 5 * n)
            seq0 = max(c.last_seq for c in clients)
            wall0, cpu0 = time.perf_counter(), time.process_time()
            for c in clients:
                epoch = c.epoch or 0
                c.committer._l.ticks = NEVER  # noqa: SLF001 - make this member's refresh due now
                await _until(lambda e=epoch: _converged(clients) and (clients[0].epoch or 0) > e, 30)
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            idle0 = time.process_time()
            await asyncio.sleep(wall)
            idle = time.process_time() - idle0
            entries = [e for e in await server.storage.read(ROOM, seq0, 1_000_000)]
            size = sum(len(e.payload) for e in entries)
        finally:
            for c in clients:
                await crash(c)
            await server.stop()
    per = (cpu - idle) / n
    return {
        "members": n,
        "entries_per_update": len(entries) / n,
        "log_bytes_per_update": size / n,
        "delivered_bytes_per_update": size,  # size / n bytes, read by each of the n members
        "room_cpu_ms_per_update": 1000 * per,
        "cpu_ms_per_update_per_member": 1000 * per / n,
        "wall_s": wall,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2, 8, 32])
    args = parser.parse_args(argv)
    print("| members | entries/update | log bytes/update | bytes delivered/update | room CPU ms/update "
          "| CPU ms/update/member |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        r = asyncio.run(measure(n))
        print(f"| {n} | {r['entries_per_update']:.2f} | {r['log_bytes_per_update']:.0f} "
              f"| {r['delivered_bytes_per_update']:.0f} | {r['room_cpu_ms_per_update']:.1f} "
              f"| {r['cpu_ms_per_update_per_member']:.2f} |")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
