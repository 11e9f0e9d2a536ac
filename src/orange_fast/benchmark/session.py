"""Session benchmark: how long a join and a leave take end to end, and what they cost on the wire.

For each group size ``n`` a real :class:`~orange_fast.delivery.DeliveryServer` (127.0.0.1,
SQLite in a temporary directory) and ``n - 1`` :class:`~orange_fast.session.client.SessionClient`
members run in one event loop.  Then, ``rounds`` times:

* **join**: a new client starts (connect, KeyPackage, the committer's Commit + Welcome, every
  member processes the commit); the time runs until the joiner decrypts its first SFrame frame
  from the committer under the new epoch.  The group then has ``n`` members.
* **leave**: that client leaves (BYE); the time runs until the first frame under the next
  epoch is decrypted by a remaining member (for ``n = 2``: until the last member has the new
  epoch's send key).

Messages and bytes per join/leave are the log entries appended meanwhile and their payload
sizes (``log_bytes``), and what the delivery service sends out (``delivered_bytes`` = each
entry's payload times the clients in the room; WebSocket framing not counted).

All clients share one event loop and the machine's cores, so every member's commit processing
is serialised into the measured time: the figures are upper bounds for one machine, not for
clients running in parallel on their own devices.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

__all__ = ["run_session_bench", "format_session_table", "DEFAULT_SIZES", "QUICK_SIZES"]

DEFAULT_SIZES = (2, 4, 8, 16, 32, 64)
QUICK_SIZES = (2, 8)
_TOKEN = b"session-bench-token-0123456789"
_ROOM = "bench"

Progress = Optional[Callable[[str], None]]


async def _until(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the session did not reach the expected state in time")
        await asyncio.sleep(0.0005)


def _try_decrypt(receiver: Any, ct: bytes) -> bool:
    from ..sframe import SFrameError

    try:
        receiver.context.decrypt(ct)
    except SFrameError:
        return False
    return True


async def _log_cost(server: Any, after_seq: int, clients: int) -> tuple[int, int, int]:
    entries = await server.storage.read(_ROOM, after_seq, 1_000_000)
    size = sum(len(e.payload) for e in entries)
    return len(entries), size, size * clients


async def _bench_size(n: int, rounds: int, timeout: float) -> dict[str, Any]:
    from ..delivery import DeliveryServer, SQLiteStorage
    from ..session.client import SessionClient, SessionConfig
    from ..session.testing import crash

    config = SessionConfig(tick_interval=0.2, grace_period=1.0, update_interval=0)
    options = {"backoff_initial": 0.02, "backoff_max": 0.2}
    with tempfile.TemporaryDirectory(prefix="orange-fast-session-bench-") as tmp:
        server = DeliveryServer(
            "127.0.0.1", 0, SQLiteStorage(Path(tmp) / "log.db", synchronous="NORMAL"),
            heartbeat_interval=1.0, eviction_timeout=30.0,
        )
        await server.start()
        members: list[SessionClient] = []
        try:
            for i in range(n - 1):
                client = SessionClient(server.url, _ROOM, _TOKEN, f"m{i}", config=config, delivery_options=options)
                await client.start()
                members.append(client)

            def converged(group: list[SessionClient]) -> bool:
                keys = {(c.gen, c.epoch, c.epoch_authenticator) for c in group}
                return (
                    len(keys) == 1
                    and all(c.in_group and len(c.roster) == len(group) for c in group)
                    and all(c.committer.view.idle() for c in group)
                )

            await _until(lambda: converged(members), timeout)
            committer = members[0]
            joins: list[float] = []
            leaves: list[float] = []
            join_cost: list[tuple[int, int, int]] = []
            leave_cost: list[tuple[int, int, int]] = []
            for r in range(rounds):
                # ---- join
                seq0 = committer.last_seq
                t0 = time.perf_counter()
                joiner = SessionClient(server.url, _ROOM, _TOKEN, f"j{r}", config=config, delivery_options=options)
                await joiner.start()
                target = None

                def joined() -> bool:
                    nonlocal target
                    if joiner.epoch is None or committer.epoch != joiner.epoch or committer.gen != joiner.gen:
                        return False
                    kid = committer.send_kid()
                    if kid is None:
                        return False
                    target = committer.context.encrypt(kid, b"first frame")
                    return _try_decrypt(joiner, target)

                await _until(joined, timeout)
                joins.append(time.perf_counter() - t0)
                group = members + [joiner]
                await _until(lambda: converged(group), timeout)
                join_cost.append(await _log_cost(server, seq0, len(group)))
                # ---- leave
                seq0 = committer.last_seq
                epoch0 = committer.epoch or 0
                t0 = time.perf_counter()
                await joiner.leave()
                receiver = members[1] if len(members) > 1 else None

                def left() -> bool:
                    if committer.epoch is None or committer.epoch <= epoch0:
                        return False
                    kid = committer.send_kid()
                    if kid is None:
                        return False
                    if receiver is None:
                        return True
                    if receiver.epoch != committer.epoch:
                        return False
                    return _try_decrypt(receiver, committer.context.encrypt(kid, b"after leave"))

                await _until(left, timeout)
                leaves.append(time.perf_counter() - t0)
                await _until(lambda: converged(members), timeout)
                leave_cost.append(await _log_cost(server, seq0, len(members) + 1))
        finally:
            for c in members:
                await crash(c)
            await server.stop()

    def med(values: Sequence[float]) -> float:
        return statistics.median(values)

    return {
        "size": n,
        "join_s": med(joins),
        "join_best_s": min(joins),
        "leave_s": med(leaves),
        "leave_best_s": min(leaves),
        "join_messages": med([c[0] for c in join_cost]),
        "join_log_bytes": med([c[1] for c in join_cost]),
        "join_delivered_bytes": med([c[2] for c in join_cost]),
        "leave_messages": med([c[0] for c in leave_cost]),
        "leave_log_bytes": med([c[1] for c in leave_cost]),
        "leave_delivered_bytes": med([c[2] for c in leave_cost]),
    }


def run_session_bench(
    sizes: Sequence[int] = DEFAULT_SIZES, progress: Progress = None, *, rounds: int = 3, timeout: float = 120.0
) -> dict[str, Any]:
    """Measure joins and leaves for each group size (see the module docstring); returns a dict."""
    sizes = [int(n) for n in sizes]
    if any(n < 2 for n in sizes):
        raise ValueError("group sizes must be >= 2")
    if rounds < 1:
        raise ValueError("rounds must be >= 1")
    cases = []
    for n in sizes:
        if progress is not None:
            progress(f"session: group of {n}")
        cases.append(asyncio.run(_bench_size(n, rounds, timeout)))
    return {
        "sizes": sizes,
        "rounds": rounds,
        "cases": cases,
        "note": "one event loop for the server and every client on 127.0.0.1 (SQLite synchronous=NORMAL); "
        "median of rounds",
    }


def format_session_table(result: dict[str, Any]) -> str:
    """The result of :func:`run_session_bench` as a Markdown table."""
    lines = [
        f"Session layer on loopback (delivery service + MLS + SFrame), median of {result['rounds']} rounds. "
        "Join: join request -> joiner decrypts its first frame. Leave: leave -> first frame under the new epoch "
        "decrypted. Messages = log entries; log bytes = their payloads; delivered = payload x clients.",
        "",
        "| members | join ms | leave ms | msgs/join | log bytes/join | delivered bytes/join | msgs/leave | log bytes/leave |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in result["cases"]:
        lines.append(
            f"| {c['size']} | {c['join_s'] * 1000:.1f} | {c['leave_s'] * 1000:.1f} | {c['join_messages']:.0f} | "
            f"{c['join_log_bytes']:.0f} | {c['join_delivered_bytes']:.0f} | {c['leave_messages']:.0f} | "
            f"{c['leave_log_bytes']:.0f} |"
        )
    return "\n".join(lines)
