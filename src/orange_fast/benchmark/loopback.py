"""Loopback mode of the call benchmark: the system cost of a call on 127.0.0.1, in real time.

Per participant count N:

* a real MLS group of N members gives the SFrame keys (:mod:`.mlskeys`);
* a UDP frame relay runs as its own process (:mod:`.relay`, the SFU stand-in); every participant has its own
  UDP socket registered with it;
* the traffic model's frames are sent in real time: each sender encrypts a frame when it is due
  (``Context.encrypt``) and sends it to the relay, which forwards it to the N - 1 others; a receiver decrypts,
  in one ``Context.decrypt_batch``, every datagram that arrived in the same event-loop iteration;
* then a newcomer joins through the **delivery service** (``orange_fast.delivery``, WebSocket + SQLite on
  127.0.0.1): it connects with its KeyPackage as join payload, the committer (member 0) sees the JOINED entry,
  appends Commit + Welcome as one message (compare-and-append), merges on seeing it in the log, and keeps
  sending frames under the new epoch every 5 ms through the relay; the newcomer joins from the Welcome,
  installs its keys and decrypts its first frame.

* and the same join once more through the real session layer (``SessionClient``: designated committer, MLS,
  SFrame key installation with grace period): N clients form the room, a newcomer starts, timed to its first
  decrypted frame of member 0's media.

Reported: frames delivered and decrypted over expected (loss on loopback is possible under load), end-to-end
latency per frame (before encrypt at the sender to after decrypt at the receiver, through the relay process)
p50/p99, this process's CPU per participant per media second (everything: crypto, sockets, event loop) and the
relay's, crypto CPU alone, and the join time (connect to the delivery service -> first decrypted frame).

All participants run in this one process and one event loop, so at larger N the loop itself becomes the
bottleneck: that is the system cost of Python networking, not of SFrame, and it is why the default loopback N
stops at 16.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..sframe import Context
from .mlskeys import MLSCall, build_group, member_keys, participant_context
from .relay import MEDIA, QUIT
from .traffic import TrafficModel, build_schedule

__all__ = ["LoopbackConfig", "run_loopback"]

HDR = struct.Struct(">BHIQ")  # kind, sender, frame index, send time (perf_counter_ns)
JOIN_PROBE_INTERVAL = 0.005
Progress = Callable[[float, str], None]


@dataclass
class LoopbackConfig:
    participants: tuple[int, ...] = (2, 4, 8, 16)
    duration: float = 2.0
    suite: int = 4
    model: TrafficModel = field(default_factory=TrafficModel)
    seed: int = 1
    verify: bool = True
    join_timeout: float = 20.0
    session: bool = True
    """Also time the join through the real session layer (SessionClient + designated committer)."""


class _Peer(asyncio.DatagramProtocol):
    """One participant's media socket: batches what arrives in one loop iteration into one decrypt."""

    def __init__(self, index: int, ctx: Context | None, payloads: list[bytes], verify: bool, timer_ov: int) -> None:
        self.index = index
        self.ctx = ctx
        self.payloads = payloads
        self.verify = verify
        self.ov = timer_ov
        self.pending: list[bytes] = []
        self.scheduled = False
        self.latencies: list[int] = []
        self.decrypted = 0
        self.failures = 0
        self.crypto_ns = 0
        self.transport: asyncio.DatagramTransport | None = None
        self.registered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.on_frame: Callable[[int, int], None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if data == b"R":
            if not self.registered.done():
                self.registered.set_result(None)
            return
        if len(data) < HDR.size or data[0] != MEDIA:
            return
        self.pending.append(data)
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        items, self.pending, self.scheduled = self.pending, [], False
        ctx = self.ctx
        if ctx is None or not items:
            self.failures += len(items)
            return
        cts = [memoryview(d)[HDR.size :] for d in items]
        t0 = time.perf_counter_ns()
        out = ctx.decrypt_batch(cts, on_error="none")
        t1 = time.perf_counter_ns()
        self.crypto_ns += max(t1 - t0 - self.ov, 0)
        for d, pt in zip(items, out):
            _k, s, f, ts = HDR.unpack_from(d)
            if pt is None or (self.verify and f < len(self.payloads) and pt != self.payloads[f]):
                self.failures += 1
                continue
            self.decrypted += 1
            self.latencies.append(t1 - ts)
            if self.on_frame is not None:
                self.on_frame(s, f)


def _settle(fut: asyncio.Future[None]) -> None:
    """Resolve ``fut`` unless it already is (a frame callback fires for every frame)."""
    if not fut.done():
        fut.set_result(None)


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def _start_relay() -> tuple[subprocess.Popen[str], int]:
    env = dict(os.environ)
    pkg_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.Popen([sys.executable, "-m", "orange_fast.benchmark.relay", "--host", "127.0.0.1", "--port", "0"],
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("PORT "):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"the relay did not start (said {line!r})")
    return proc, int(line.split()[1])


def _stop_relay(proc: subprocess.Popen[str], port: int) -> str:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(bytes([QUIT]), ("127.0.0.1", port))
    try:
        out, _ = proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, _ = proc.communicate(timeout=5)
    return out.strip()


async def _open_peer(index: int, ctx: Context | None, payloads: list[bytes], relay: tuple[str, int], verify: bool,
                     ov: int) -> _Peer:
    loop = asyncio.get_running_loop()
    _t, peer = await loop.create_datagram_endpoint(lambda: _Peer(index, ctx, payloads, verify, ov),
                                                   local_addr=("127.0.0.1", 0))
    import socket

    sock = _t.get_extra_info("socket")
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, 4 << 20)
        except OSError:  # pragma: no cover
            pass
    for _ in range(50):
        _t.sendto(b"R", relay)
        try:
            await asyncio.wait_for(asyncio.shield(peer.registered), 0.1)
            break
        except asyncio.TimeoutError:
            continue
    else:
        raise RuntimeError("the relay does not answer")
    return peer


def _contexts(call: MLSCall) -> list[Context]:
    return [call.context(i) for i in range(len(call.kids))]


async def _media(n: int, cfg: LoopbackConfig, call: MLSCall, relay: tuple[str, int], relay_pid: int,
                 ov: int) -> dict[str, Any]:
    sched = build_schedule(n, cfg.duration, cfg.model, seed=cfg.seed + 1000 + n)
    rng = np.random.default_rng(cfg.seed)
    pool = rng.integers(0, 256, size=int(sched.size.max(initial=1)) + 4096, dtype=np.uint8).tobytes()
    starts = rng.integers(0, 4096, size=len(sched))
    payloads = [pool[int(s) : int(s) + int(z)] for s, z in zip(starts, sched.size)]
    ctxs = _contexts(call)
    peers = [await _open_peer(i, ctxs[i], payloads, relay, cfg.verify, ov) for i in range(n)]
    loop = asyncio.get_running_loop()
    times = sched.time.tolist()
    senders = sched.sender.tolist()
    encs = [c.encrypt for c in ctxs]
    kids = call.kids
    pack = HDR.pack
    enc_ns = 0
    pc = time.perf_counter_ns
    cpu0, relay0 = time.process_time(), _proc_cpu(relay_pid)
    start = loop.time() + 0.02
    late = 0
    for f, t in enumerate(times):
        delay = start + t - loop.time()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        elif delay < -0.005:
            late += 1
        s = senders[f]
        ts = pc()
        ct = encs[s](kids[s], payloads[f])
        enc_ns += max(pc() - ts - ov, 0)
        peers[s].transport.sendto(pack(MEDIA, s, f, ts) + ct, relay)  # type: ignore[union-attr]
    # let the last frames arrive
    expected = len(payloads) * (n - 1)
    for _ in range(100):
        if sum(p.decrypted + p.failures for p in peers) >= expected:
            break
        await asyncio.sleep(0.01)
    cpu = time.process_time() - cpu0
    relay_cpu = _proc_cpu(relay_pid) - relay0
    lat = np.array([x for p in peers for x in p.latencies], dtype=np.float64)
    for p in peers:
        p.transport.close()  # type: ignore[union-attr]
    crypto_ns = enc_ns + sum(p.crypto_ns for p in peers)
    return {
        "frames_sent": len(payloads),
        "frames_expected": expected,
        "frames_decrypted": sum(p.decrypted for p in peers),
        "decrypt_failures": sum(p.failures for p in peers),
        "frames_sent_late": late,
        "latency_ms": {"p50": float(np.percentile(lat, 50)) / 1e6 if len(lat) else float("nan"),
                       "p99": float(np.percentile(lat, 99)) / 1e6 if len(lat) else float("nan")},
        "process_cpu_ms_per_media_s": cpu * 1000.0 / n / cfg.duration,
        "relay_cpu_ms_per_media_s": relay_cpu * 1000.0 / cfg.duration,
        "crypto_us_per_media_s": crypto_ns / 1000.0 / n / cfg.duration,
    }


async def _join(n: int, call: MLSCall, relay: tuple[str, int], url: str, cfg: LoopbackConfig,
                ov: int) -> dict[str, Any]:
    from .. import mls
    from ..delivery import DeliveryClient, EntryType

    room = f"bench-call-{n}"
    token = os.urandom(16)
    suite = mls.CipherSuite(call.mls_suite)
    cs = call.sframe_suite
    committer = call.groups[0]
    probe = os.urandom(120)
    c_client = DeliveryClient(url, room, token, "p0", reconnect=False)
    await c_client.connect()
    first = await c_client.next_entry(timeout=cfg.join_timeout)
    last_seq = first.seq
    c_peer = await _open_peer(0, None, [], relay, False, ov)
    signer = mls.SignatureKeyPair.generate(suite)
    kp, priv = mls.KeyPackage.generate(suite, identity=b"newcomer", signer=signer)
    kp_bytes = kp.to_bytes()
    j_peer = await _open_peer(n, None, [probe], relay, True, ov)
    loop = asyncio.get_running_loop()
    got_frame: asyncio.Future[None] = loop.create_future()
    j_peer.on_frame = lambda s, f: _settle(got_frame)
    stats: dict[str, Any] = {}

    async def committer_side() -> None:
        nonlocal last_seq
        pending = False
        while True:
            e = await c_client.next_entry(timeout=cfg.join_timeout)
            last_seq = e.seq
            if e.entry_type == EntryType.JOINED and e.sender == "newcomer" and not pending:
                out = committer.add([e.payload])
                bundle = struct.pack(">I", len(out.commit)) + out.commit + (out.welcome or b"")
                stats["handshake_bytes"] = len(bundle) + len(e.payload)
                await c_client.append("commit+welcome", bundle, expected_seq=e.seq + 1)
                pending = True
            elif e.entry_type == EntryType.MESSAGE and e.sender == "p0" and pending:
                committer.merge_pending_commit()
                kid = member_keys(committer, cs)[committer.own_leaf_index][0]
                ctx = participant_context(committer, cs)
                ctr = 0
                while not got_frame.done():
                    ts = time.perf_counter_ns()
                    ct = ctx.encrypt(kid, probe)
                    c_peer.transport.sendto(HDR.pack(MEDIA, 0, 0, ts) + ct, relay)  # type: ignore[union-attr]
                    ctr += 1
                    await asyncio.sleep(JOIN_PROBE_INTERVAL)
                stats["probe_frames_sent"] = ctr
                return

    t0 = time.perf_counter()
    c_task = asyncio.create_task(committer_side())
    j_client = DeliveryClient(url, room, token, "newcomer", join_payload=kp_bytes, reconnect=False)
    try:
        await j_client.connect()
        while True:
            e = await j_client.next_entry(timeout=cfg.join_timeout)
            if e.entry_type == EntryType.MESSAGE and e.kind == "commit+welcome":
                (clen,) = struct.unpack_from(">I", e.payload)
                welcome = e.payload[4 + clen :]
                t_welcome = time.perf_counter()
                joiner = mls.Group.join_from_welcome(welcome, priv)
                j_peer.ctx = participant_context(joiner, cs)
                stats["welcome_to_keys_ms"] = (time.perf_counter() - t_welcome) * 1000.0
                break
        await asyncio.wait_for(got_frame, cfg.join_timeout)
        t1 = time.perf_counter()
        await asyncio.wait_for(c_task, cfg.join_timeout)
    finally:
        if not c_task.done():
            c_task.cancel()
        await j_client.close(leave=False)
        await c_client.close(leave=False)
        for p in (c_peer, j_peer):
            p.transport.close()  # type: ignore[union-attr]
    stats["join_ms"] = (t1 - t0) * 1000.0
    stats["frames_dropped_before_keys"] = j_peer.failures
    return stats


async def _session_join(n: int, relay: tuple[str, int], url: str, cfg: LoopbackConfig, ov: int) -> dict[str, Any]:
    """The same join through the real session layer (``orange_fast.session.SessionClient``: designated
    committer, MLS, SFrame keys): N clients form the room through the delivery service, then a newcomer
    starts; timed from its start to its first decrypted frame of member 0's media (sent every 5 ms)."""
    from ..session.client import SessionClient, SessionConfig

    room = f"bench-session-{n}"
    token = os.urandom(16)
    conf = SessionConfig(mls_suite=1, sframe_suite=cfg.suite, tick_interval=0.1, grace_period=2.0, update_interval=0)
    opts = {"backoff_initial": 0.02, "backoff_max": 0.2, "connect_timeout": 5.0}
    clients: list[Any] = []

    def ready(cs: list[Any]) -> bool:
        if not all(c.in_group and c.send_kid() is not None for c in cs):
            return False
        return len({(c.epoch, c.epoch_authenticator) for c in cs}) == 1 and all(len(c.roster) == len(cs) for c in cs)

    async def until(pred: Callable[[], bool], timeout: float) -> None:
        async def loop() -> None:
            while not pred():
                await asyncio.sleep(0.005)

        await asyncio.wait_for(loop(), timeout)

    t_form = time.perf_counter()
    sender_peer = joiner_peer = None
    sending: asyncio.Task[None] | None = None
    try:
        for i in range(n):
            c = SessionClient(url, room, token, f"member-{i}", config=conf, delivery_options=opts)
            await c.start()
            clients.append(c)
        await until(lambda: ready(clients), cfg.join_timeout + n)
        form_s = time.perf_counter() - t_form
        sender = clients[0]
        sender_peer = await _open_peer(0, None, [], relay, False, ov)
        newcomer = SessionClient(url, room, token, "newcomer", config=conf, delivery_options=opts)
        joiner_peer = await _open_peer(n, newcomer.context, [], relay, False, ov)
        loop = asyncio.get_running_loop()
        got: asyncio.Future[None] = loop.create_future()
        joiner_peer.on_frame = lambda s, f: _settle(got)
        probe = os.urandom(120)

        async def send() -> None:
            while True:
                kid = sender.send_kid()
                if kid is not None:
                    ts = time.perf_counter_ns()
                    ct = sender.context.encrypt(kid, probe)
                    sender_peer.transport.sendto(HDR.pack(MEDIA, 0, 0, ts) + ct, relay)  # type: ignore[union-attr]
                await asyncio.sleep(JOIN_PROBE_INTERVAL)

        sending = asyncio.create_task(send())
        t0 = time.perf_counter()
        await newcomer.start()
        clients.append(newcomer)
        await asyncio.wait_for(got, cfg.join_timeout)
        join_ms = (time.perf_counter() - t0) * 1000.0
        await until(lambda: ready(clients), cfg.join_timeout)
        converge_ms = (time.perf_counter() - t0) * 1000.0
        return {"join_ms": join_ms, "all_converged_ms": converge_ms, "room_formation_s": form_s,
                "frames_dropped_before_keys": joiner_peer.failures,
                "newcomer_entries": newcomer.stats.entries, "newcomer_entry_bytes": newcomer.stats.entry_bytes}
    finally:
        if sending is not None:
            sending.cancel()
        for p in (sender_peer, joiner_peer):
            if p is not None and p.transport is not None:
                p.transport.close()
        for c in clients:
            with contextlib.suppress(Exception):
                await c.leave(timeout=2.0)


async def _one(n: int, cfg: LoopbackConfig, db_dir: str, ov: int) -> dict[str, Any]:
    from ..delivery import DeliveryServer, SQLiteStorage

    call = build_group(n, cfg.suite)
    proc, port = _start_relay()
    relay = ("127.0.0.1", port)
    server = DeliveryServer("127.0.0.1", 0, SQLiteStorage(os.path.join(db_dir, f"delivery-{n}.db")))
    await server.start()
    try:
        res = await _media(n, cfg, call, relay, proc.pid, ov)
        res["participants"] = n
        res["media_seconds"] = cfg.duration
        join = await _join(n, call, relay, server.url, cfg, ov)
        res["join_ms"] = join.pop("join_ms")
        res["join"] = join
        if cfg.session:
            try:
                res["session_join"] = await _session_join(n, relay, server.url, cfg, ov)
            except Exception as exc:  # noqa: BLE001 - reported, the benchmark goes on
                res["session_join"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    finally:
        await server.stop()
        res_relay = _stop_relay(proc, port)
    if res_relay:
        res["relay"] = res_relay.splitlines()[-1]
    return res


def run_loopback(cfg: LoopbackConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Run the loopback mode for every N of ``cfg``; return a JSON-ready dict."""
    from .call import _timer_overhead

    if not cfg.participants or any(n < 2 for n in cfg.participants) or not cfg.duration > 0:
        raise ValueError("participant counts must be >= 2 and duration > 0")
    ov = _timer_overhead()
    results = []
    with tempfile.TemporaryDirectory(prefix="orange-fast-bench-") as d:
        for i, n in enumerate(cfg.participants):
            if progress:
                progress(i / len(cfg.participants), f"N={n}: real-time media through the relay, then a join")
            results.append(asyncio.run(_one(n, cfg, d, ov)))
    if progress:
        progress(1.0, "done")
    return {
        "mode": "loopback",
        "relay": "UDP forwarder process on 127.0.0.1 (orange_fast.benchmark.relay)",
        "delivery_service": "orange_fast.delivery over WebSocket, SQLite storage",
        "api": "Context.encrypt per frame when due; Context.decrypt_batch per event-loop iteration of arrivals",
        "media_seconds": cfg.duration,
        "results": results,
    }
