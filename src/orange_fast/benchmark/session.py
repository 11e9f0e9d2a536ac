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
import functools
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

__all__ = [
    "run_session_bench",
    "format_session_table",
    "run_transition_bench",
    "format_transition_table",
    "DEFAULT_SIZES",
    "QUICK_SIZES",
]

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


async def _start_server(tmp: str) -> Any:
    """A delivery service on 127.0.0.1 with its SQLite log in ``tmp``, started."""
    from ..delivery import DeliveryServer, SQLiteStorage

    server = DeliveryServer(
        "127.0.0.1", 0, SQLiteStorage(Path(tmp) / "log.db", synchronous="NORMAL"),
        heartbeat_interval=1.0, eviction_timeout=30.0,
    )
    await server.start()
    return server


async def _bench_size(n: int, rounds: int, timeout: float) -> dict[str, Any]:
    from ..session.client import SessionClient, SessionConfig
    from ..session.testing import crash

    config = SessionConfig(tick_interval=0.2, grace_period=1.0, update_interval=0)
    options = {"backoff_initial": 0.02, "backoff_max": 0.2}
    with tempfile.TemporaryDirectory(prefix="orange-fast-session-bench-") as tmp:
        server = await _start_server(tmp)
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
    sizes: Sequence[int] = DEFAULT_SIZES,
    progress: Progress = None,
    *,
    rounds: int = 3,
    timeout: float = 120.0,
    transitions: bool = False,
) -> dict[str, Any]:
    """Measure joins and leaves for each group size (see the module docstring); returns a dict.

    ``transitions``: also :func:`run_transition_bench` (frames lost and keyframes per epoch
    change under media, before and after holding), under the key ``"transitions"``.
    """
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
    extra: dict[str, Any] = {}
    if transitions:
        if progress is not None:
            progress("session: epoch transitions under media")
        extra["transitions"] = run_transition_bench(timeout=timeout)
    return {
        **extra,
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
        "| members | join ms | leave ms | msgs/join | log bytes/join | delivered bytes/join | msgs/leave "
        "| log bytes/leave |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in result["cases"]:
        lines.append(
            f"| {c['size']} | {c['join_s'] * 1000:.1f} | {c['leave_s'] * 1000:.1f} | {c['join_messages']:.0f} | "
            f"{c['join_log_bytes']:.0f} | {c['join_delivered_bytes']:.0f} | {c['leave_messages']:.0f} | "
            f"{c['leave_log_bytes']:.0f} |"
        )
    if "transitions" in result:
        lines += [
            "",
            (
                "Epoch transitions under media (3 members who stay, 50 frames/s each, a churner joins and leaves; "
                "each member's media gets each epoch's keys U(0, 300 ms) after its session processed the commit):"
            ),
            "",
            format_transition_table(result["transitions"]),
        ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- epoch transitions (issue 13)


class _Track:
    """What the rtc hooks read of an aiortc sender/receiver: the media kind."""

    kind = "video"
    _RTCRtpReceiver__kind = "video"


async def _transition_run(
    members: int, changes: int, max_delay: float, legacy: bool, seed: int, timeout: float
) -> dict[str, Any]:
    import queue
    import random
    import threading

    from ..rtc.framing import transform_for
    from ..rtc.receiver import FrameDropped, ReceiverProtection
    from ..rtc.sender import SenderProtection
    from ..rtc.stats import percentile
    from ..rtc.transition import TransitionPolicy
    from ..session.client import SessionClient, SessionConfig
    from ..session.keys import EXPORTER_LABEL
    from ..session.testing import crash

    policy = TransitionPolicy.legacy() if legacy else TransitionPolicy()
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    config = SessionConfig(tick_interval=0.2)
    options = {"backoff_initial": 0.02, "backoff_max": 0.2}
    transform = transform_for("audio/opus")  # the frame is the SFrame payload: no codec framing to model
    delays: list[float] = []

    def slow_handshake(client: SessionClient) -> None:
        """Each epoch's keys reach this client's media ``U(0, max_delay)`` s after it processed the commit."""
        keys = client.frame_keys
        install = keys.install
        ready = [0.0]

        def delayed(export_secret: Callable[..., bytes], epoch: int, own: int, indices: Any, now: float) -> int:
            base = export_secret(EXPORTER_LABEL, b"", int(keys.suite.Nk))  # this epoch's secret, now
            delay = rng.uniform(0.0, max_delay)
            delays.append(delay)
            at = max(loop.time() + delay, ready[0])  # epochs stay in order
            ready[0] = at
            members_now = list(indices)
            loop.call_at(at, lambda: install(lambda *_: base, epoch, own, members_now, loop.time()))
            return 0

        keys.install = delayed  # type: ignore[method-assign,assignment]

    with tempfile.TemporaryDirectory(prefix="orange-fast-transition-bench-") as tmp:
        server = await _start_server(tmp)
        core: list[SessionClient] = []
        threads: list[threading.Thread] = []
        queues: dict[tuple[int, int], queue.Queue] = {}
        try:
            for i in range(members):
                client = SessionClient(server.url, _ROOM, _TOKEN, f"core{i}", config=config, delivery_options=options)
                await client.start()
                core.append(client)

            def converged() -> bool:
                keys = {(c.gen, c.epoch, c.send_kid() is not None) for c in core}
                return len(keys) == 1 and all(c.in_group and len(c.roster) == members for c in core)

            await _until(converged, timeout)
            for c in core:
                slow_handshake(c)
            senders = [SenderProtection(_Track(), c, transitions=policy) for c in core]  # type: ignore[arg-type]
            receivers: dict[tuple[int, int], ReceiverProtection] = {}
            for r, c in enumerate(core):
                for s in range(members):
                    if s != r:
                        receivers[(r, s)] = ReceiverProtection(_Track(), c, transitions=policy)  # type: ignore[arg-type]
                        queues[(r, s)] = queue.Queue()

            def decoder(key: tuple[int, int]) -> None:  # like aiortc's decoder thread
                q, hook = queues[key], receivers[key]
                while (item := q.get()) is not None:
                    hook.hold.consumed(len(item))
                    try:
                        hook.unprotect("audio/opus", item)
                    except FrameDropped:
                        pass

            for key in queues:
                threads.append(threading.Thread(target=decoder, args=(key,), daemon=True))
                threads[-1].start()
            running = True
            sent = [0]

            async def media() -> None:  # 50 frames/s per member, every member receives every other
                while running:
                    for s, hook in enumerate(senders):
                        kid, _force = hook.begin_frame(False)
                        wire = hook.protect(transform, kid, b"frame %d" % sent[0])
                        sent[0] += 1
                        if wire is None:
                            continue
                        for r in range(members):
                            if r != s:
                                receivers[(r, s)].hold.queued(len(wire))
                                queues[(r, s)].put(wire)
                    await asyncio.sleep(0.02)

            media_task = asyncio.ensure_future(media())
            await asyncio.sleep(0.5)
            epoch0 = core[0].epoch or 0
            joiner: SessionClient | None = None
            for k in range(changes):
                target = (core[0].epoch or 0) + 1
                if joiner is None:
                    joiner = SessionClient(server.url, _ROOM, _TOKEN, f"j{k}", config=config, delivery_options=options)
                    await joiner.start()
                else:
                    await joiner.leave()
                    joiner = None
                await _until(functools.partial(_reached, core, target), timeout)
                await asyncio.sleep(max_delay + 0.3 + rng.uniform(0.0, 0.2))
            epochs = (core[0].epoch or 0) - epoch0
            running = False
            await media_task
            await asyncio.sleep(0.2)
            if joiner is not None:
                await crash(joiner)
        finally:
            for q in queues.values():
                q.put(None)
            for t in threads:
                t.join(5)
            for c in core:
                await crash(c)
            await server.stop()
    recv = [h.stats.snapshot() for h in receivers.values()]
    lost = sum(sum(r["dropped"].values()) for r in recv)
    holds = [v for r in recv for v in r["hold_ms"]]
    keyframes = sum(hook.stats.snapshot()["keyframes_forced_by_key_change"] for hook in senders)
    dropped: dict[str, int] = {}
    for snap in recv:
        for reason, n in snap["dropped"].items():
            dropped[reason] = dropped.get(reason, 0) + n
    return {
        "policy": "legacy (no hold, keyframe on every key change)" if legacy else "hold + keyframes on joins",
        "members": members,
        "epoch_changes": epochs,
        "frames_sent": sent[0],
        "frames_decrypted": sum(r["decrypted"] for r in recv),
        "frames_lost": lost,
        "frames_lost_per_change": lost / max(1, epochs),
        "keyframes_forced": keyframes,
        "keyframes_per_change": keyframes / max(1, epochs),
        "dropped": dropped,
        "held_frames": len(holds),
        "hold_ms_p50": percentile(holds, 0.5),
        "hold_ms_p99": percentile(holds, 0.99),
        "delay_ms_max": max(delays, default=0.0) * 1000,
    }


def _reached(clients: Sequence[Any], epoch: int) -> bool:
    return all((c.epoch or 0) >= epoch for c in clients)


def run_transition_bench(
    *, members: int = 3, changes: int = 8, max_delay: float = 0.3, seed: int = 13, timeout: float = 60.0
) -> dict[str, Any]:
    """Joins and leaves under media on loopback, before (legacy) and after (hold); see :func:`_transition_run`.

    ``members`` stay for the whole run and exchange 50 frames/s each through the real rtc hooks
    (decoder threads as in aiortc); a churner joins and leaves ``changes`` times; each member's
    media sees each epoch's keys a random ``U(0, max_delay)`` s after its session processed
    the commit (a slow handshake path per receiver).  Frames lost, keyframes and hold latency
    count the members who stay.
    """
    if members < 2 or changes < 1 or not 0 <= max_delay <= 1.0:
        raise ValueError("members >= 2, changes >= 1 and max_delay within 0..1 s")
    return {
        "before": asyncio.run(_transition_run(members, changes, max_delay, True, seed, timeout)),
        "after": asyncio.run(_transition_run(members, changes, max_delay, False, seed, timeout)),
    }


def format_transition_table(result: dict[str, Any]) -> str:
    """The result of :func:`run_transition_bench` as a Markdown table (one row per policy)."""
    lines = [
        "| policy | epoch changes | frames lost / change | keyframes / change | held frames | hold p50 ms "
        "| hold p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in ("before", "after"):
        r = result[name]
        lines.append(
            f"| {name}: {r['policy']} | {r['epoch_changes']} | {r['frames_lost_per_change']:.1f} | "
            f"{r['keyframes_per_change']:.2f} | {r['held_frames']} | {r['hold_ms_p50']:.0f} | {r['hold_ms_p99']:.0f} |"
        )
    return "\n".join(lines)
