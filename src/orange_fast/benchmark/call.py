"""End-to-end call benchmark: what SFrame costs each participant of an N-party call.

For each participant count N, a real MLS group of N members is created (:mod:`.mlskeys`); every member exports
the SFrame base key and uses its RFC 9605 §5.2 KID.  The traffic model (:mod:`.traffic`) gives every
participant a 30 fps video stream (keyframes every 2 s, 1.5 Mbit/s) and a 50 fps Opus stream.  Every
participant encrypts its own frames and decrypts every frame of the N - 1 others, in time order, tick by tick
(``tick_ms``, 10 ms): the frames that arrive at a receiver during one tick are decrypted together.

Three contenders do the same work on the same frames, interleaved in each round; every timed item (a frame's
encrypt, a receiver's tick batch, a limit stream) keeps its least disturbed timing over the rounds:

``ours``   orange_fast: ``Context.encrypt`` per frame (a sender has one frame at a time) and
           ``Context.decrypt_batch`` per receiver tick (one batch of the frames that arrived), with replay
           windows; one Context per participant holding its send key and the N - 1 receive keys.
``ours_per_frame``  the same, but each receiver calls ``Context.decrypt`` per frame as it arrives: the
           latency-optimal receiver (a frame never waits for the rest of its tick).
``naive``  the SFrame a user would write on ``cryptography`` (:mod:`.naive`): per frame, the KID read from
           the header, the key looked up in a dict, ``AESGCM`` with the header and nonce built in Python.
           No replay window (less work than ours).
``limit``  the per-frame EVP sequence of the linked OpenSSL in a C loop (``sframe._limit.LimitKey``), no
           Python, no locks, no replay window, no allocation: one C loop per frame (encrypt) and per
           (receiver, tick, sender) (decrypt), the receiver's keys interleaved as in ours (the same memory
           access pattern).  The JSON also has its per-stream floor (one C loop over a whole stream with
           one hot key), which ignores the key switching of a real receiver.

Definitions (all per participant, averaged over the N participants):

* **crypto CPU** (µs per second of media): time spent inside the crypto calls (encrypt + decrypt), summed over
  the run, divided by N and by the media duration.  Each call is timed with ``perf_counter_ns`` and the
  timer's own cost (median of empty timings, calibrated in the run) is subtracted; the limit times itself in C.
* **core share**: crypto CPU / 10⁶ µs: the fraction of one core a participant spends on SFrame.
* **frames per core-second**: frame operations (encrypts + decrypts) per second of crypto time.
* **largest N in real time**: the per-participant cost is fitted as ``a + b·(N - 1)`` (own streams plus
  N - 1 incoming) over the measured N; the largest N with ``a + b·(N - 1) <= 10⁶ µs`` per second of media is the
  largest call a participant can sustain on one core (``max_n_per_participant``).  ``max_n_whole_call`` is the
  largest N for which *all* participants' crypto fits on one core (``N·(a + b·(N - 1)) <= 10⁶``).
* **added latency per frame**: encrypt = the duration of that frame's encrypt call; decrypt = the duration of
  the receiver's whole tick batch containing the frame (the plaintexts are available when the batch returns);
  encrypt+decrypt = sum of both for each (frame, receiver) pair.  p50 and p99, in µs.  With
  ``ours_per_frame`` the decrypt latency is that frame's own ``decrypt`` call.
* **join to first frame**: a newcomer's KeyPackage is added by the creator (MLS Commit + Welcome), the
  newcomer joins from the Welcome, derives its epoch keys and installs them (send key + N receive keys) and
  decrypts the first frame the committer encrypts under the new epoch.  In-process, sequential; the loopback
  mode (:mod:`.loopback`) measures the same through the delivery service and a UDP frame relay.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..sframe import BatchDecryptError, CipherSuite, SFrameError
from ..sframe._limit import LimitKey
from .mlskeys import MLSCall, build_group, member_keys, participant_context
from .naive import NaiveSFrame
from .traffic import Schedule, TrafficModel, build_schedule

__all__ = [
    "CallConfig",
    "CONTENDERS",
    "DEFAULT_PARTICIPANTS",
    "QUICK_PARTICIPANTS",
    "run_call_bench",
    "format_call_table",
    "measure_join",
]

DEFAULT_PARTICIPANTS = (2, 4, 8, 16, 32, 64)
QUICK_PARTICIPANTS = (2, 4, 8)
CONTENDERS = ("ours", "ours_per_frame", "naive", "limit")
API = {
    "ours": "Context.encrypt per frame; Context.decrypt_batch per receiver tick",
    "ours_per_frame": "Context.encrypt per frame; Context.decrypt per frame as it arrives (latency-optimal)",
    "naive": "cryptography AESGCM per frame (header, nonce, KID lookup in Python)",
    "limit": "C loop over the linked OpenSSL (LimitKey.seal_loop per frame, open_loop per tick and sender)",
}

Progress = Callable[[float, str], None]


@dataclass
class CallConfig:
    """What to run."""

    participants: tuple[int, ...] = DEFAULT_PARTICIPANTS
    duration: float = 2.0
    """Seconds of media simulated per participant count."""
    rounds: int = 3
    """Interleaved rounds per N (each timed item keeps its minimum over the rounds)."""
    suite: int = int(CipherSuite.AES_128_GCM_SHA256_128)
    tick_ms: float = 10.0
    model: TrafficModel = field(default_factory=TrafficModel)
    seed: int = 1
    verify: bool = True
    """Compare every decrypted frame with the original (untimed)."""


# ----------------------------------------------------------------------------------------- timing helpers


def _timer_overhead() -> int:
    pc = time.perf_counter_ns
    samples = []
    for _ in range(2000):
        t0 = pc()
        samples.append(pc() - t0)
    return int(statistics.median(samples))


def _limit_overheads(suite: int) -> tuple[int, int]:
    """The C loops' own timing cost (a loop over zero frames), encrypt and decrypt."""
    e = LimitKey(suite, bytes(32), 1, True)
    d = LimitKey(suite, bytes(32), 1, False)
    z = np.zeros(1, dtype=np.int64)
    buf = bytearray(64)
    se = [e.seal_loop(b"\0", z, buf, z) for _ in range(2000)]
    so = [d.open_loop(b"\0", z, buf) for _ in range(2000)]
    return int(statistics.median(se)), int(statistics.median(so))


def _pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def _packed(frames: Sequence[bytes]) -> tuple[bytes, np.ndarray]:
    offs = np.zeros(len(frames) + 1, dtype=np.int64)
    np.cumsum([len(f) for f in frames], out=offs[1:])
    return b"".join(frames), offs


# ----------------------------------------------------------------------------------------- the workload


@dataclass
class _Workload:
    """One participant count: MLS keys, the schedule, the payloads and the receiver ticks."""

    n: int
    call: MLSCall
    schedule: Schedule
    payloads: list[bytes]
    ticks: list[np.ndarray]
    # per tick and receiver: frame indices (in tick order) that the receiver decrypts
    recv: list[list[list[int]]]
    # per tick: frames grouped by sender {sender: [frame indices]}
    by_sender: list[dict[int, list[int]]]
    senders: list[int]
    pair_frames: np.ndarray  # every (receiver, frame) pair, flat, in recv order: the frame index
    batch_sizes: np.ndarray  # sizes of the non-empty receiver batches, in recv order


def _workload(n: int, cfg: CallConfig) -> _Workload:
    call = build_group(n, cfg.suite)
    sched = build_schedule(n, cfg.duration, cfg.model, seed=cfg.seed + n)
    rng = np.random.default_rng(cfg.seed)
    pool = rng.integers(0, 256, size=int(sched.size.max(initial=1)) + 4096, dtype=np.uint8).tobytes()
    starts = rng.integers(0, 4096, size=len(sched))
    payloads = [pool[int(s) : int(s) + int(z)] for s, z in zip(starts, sched.size)]
    ticks = sched.ticks(cfg.tick_ms)
    senders = sched.sender.tolist()
    recv: list[list[list[int]]] = []
    by_sender: list[dict[int, list[int]]] = []
    for tick in ticks:
        idx = tick.tolist()
        groups: dict[int, list[int]] = {}
        for f in idx:
            groups.setdefault(senders[f], []).append(f)
        by_sender.append(groups)
        recv.append([[f for f in idx if senders[f] != r] for r in range(n)])
    frs = [fr for per_tick in recv for fr in per_tick if fr]
    pair_frames = np.array([f for fr in frs for f in fr], dtype=np.int64)
    sizes = np.array([len(fr) for fr in frs], dtype=np.int64)
    return _Workload(n, call, sched, payloads, ticks, recv, by_sender, senders, pair_frames, sizes)


@dataclass
class _Measure:
    """Raw result of one contender's round.

    ``enc_cpu``/``dec_cpu`` are the timed items whose sum is the CPU figure (per frame and per receiver
    batch for ours and naive; per stream for the limit); ``enc_ns`` per frame and ``dec_lat_ns`` per
    (receiver, frame) pair (in ``_Workload.pair_frames`` order) are the latencies.  Items are identical work
    in every round,
    so rounds combine item by item (:func:`_combine`).
    """

    enc_ns: np.ndarray
    dec_lat_ns: np.ndarray
    enc_cpu: np.ndarray
    dec_cpu: np.ndarray
    decrypted: int
    failures: int = 0
    extra: dict[str, np.ndarray] = field(default_factory=dict)


def _combine(ms: list[_Measure]) -> _Measure:
    """Item-wise minimum over rounds: each frame's and batch's least disturbed timing (the machine is shared;
    a preempted call is noise, not SFrame cost).  Counts must agree across rounds; the worst is kept."""
    first = ms[0]
    return _Measure(
        np.minimum.reduce([m.enc_ns for m in ms]),
        np.minimum.reduce([m.dec_lat_ns for m in ms]),
        np.minimum.reduce([m.enc_cpu for m in ms]),
        np.minimum.reduce([m.dec_cpu for m in ms]),
        min(m.decrypted for m in ms),
        max(m.failures for m in ms),
        {k: np.minimum.reduce([m.extra[k] for m in ms]) for k in first.extra},
    ) if len(ms) > 1 else first


def _run_ours(w: _Workload, cfg: CallConfig, ov: int, *, per_frame: bool = False) -> tuple[_Measure, list[bytes]]:
    """orange_fast: ``encrypt`` per frame; ``decrypt_batch`` per receiver tick (or, with ``per_frame``,
    ``decrypt`` per frame as it arrives: the latency-optimal receiver)."""
    n, kids = w.n, w.call.kids
    ctxs = [w.call.context(i) for i in range(n)]  # installed as the session layer does
    encs = [c.encrypt for c in ctxs]
    decs = [c.decrypt_batch for c in ctxs]
    singles = [c.decrypt for c in ctxs]
    payloads, senders = w.payloads, w.senders
    nf = len(payloads)
    enc_ns = np.zeros(nf, dtype=np.float64)
    cts: list[bytes] = [b""] * nf
    cpu: list[float] = []
    lat: list[float] = []
    decrypted = failures = 0
    verify = cfg.verify
    pc = time.perf_counter_ns
    for t, tick in enumerate(w.ticks):
        for f in tick.tolist():
            s = senders[f]
            enc, kid, p = encs[s], kids[s], payloads[f]
            t0 = pc()
            ct = enc(kid, p)
            t1 = pc()
            enc_ns[f] = max(t1 - t0 - ov, 0)
            cts[f] = ct
        for r in range(n):
            fr = w.recv[t][r]
            if not fr:
                continue
            if per_frame:
                one = singles[r]
                for f in fr:
                    c = cts[f]
                    t0 = pc()
                    try:
                        pt: bytes | None = one(c)
                    except SFrameError:  # counted, never hidden
                        pt = None
                    t1 = pc()
                    d = max(t1 - t0 - ov, 0)
                    cpu.append(d)
                    lat.append(d)
                    if pt is None or (verify and pt != payloads[f]):
                        failures += 1
                    else:
                        decrypted += 1
                continue
            batch = [cts[f] for f in fr]
            dec = decs[r]
            t0 = pc()
            try:
                out = dec(batch)
            except BatchDecryptError as exc:  # counted, never hidden
                out = exc.results
            t1 = pc()
            cpu.append(max(t1 - t0 - ov, 0))
            for f, pt in zip(fr, out):
                if pt is None or (verify and pt != payloads[f]):
                    failures += 1
                else:
                    decrypted += 1
    dec_cpu = np.array(cpu, dtype=np.float64)
    dec_lat = np.array(lat, dtype=np.float64) if per_frame else np.repeat(dec_cpu, w.batch_sizes)
    return _Measure(enc_ns, dec_lat, enc_ns, dec_cpu, decrypted, failures), cts


def _naive_receive(keys: dict[int, NaiveSFrame], batch: list[bytes]) -> list[bytes]:
    """What a user would write: read the KID from the header, look the key up, decrypt."""
    out = []
    for ct in batch:
        c = ct[0] >> 4
        kid = c if c < 8 else int.from_bytes(ct[1 : 2 + (c & 7)], "big")
        out.append(keys[kid].decrypt(ct))
    return out


def _run_naive(w: _Workload, cfg: CallConfig, ov: int) -> _Measure:
    n, cs, kids, keys = w.n, w.call.sframe_suite, w.call.kids, w.call.base_keys
    send = [NaiveSFrame(cs, kids[i], keys[i]) for i in range(n)]
    # receivers' keys: one per remote sender (keys cached, as a user would)
    recv_keys = [{kids[j]: NaiveSFrame(cs, kids[j], keys[j]) for j in range(n) if j != r} for r in range(n)]
    payloads, senders = w.payloads, w.senders
    nf = len(payloads)
    enc_ns = np.zeros(nf, dtype=np.float64)
    cts: list[bytes] = [b""] * nf
    batches: list[float] = []
    decrypted = failures = 0
    pc = time.perf_counter_ns
    encs = [s.encrypt for s in send]
    for t, tick in enumerate(w.ticks):
        for f in tick.tolist():
            enc, p = encs[senders[f]], payloads[f]
            t0 = pc()
            ct = enc(p)
            t1 = pc()
            enc_ns[f] = max(t1 - t0 - ov, 0)
            cts[f] = ct
        for r in range(n):
            fr = w.recv[t][r]
            if not fr:
                continue
            batch = [cts[f] for f in fr]
            rkeys = recv_keys[r]
            t0 = pc()
            try:
                out: list[bytes | None] = list(_naive_receive(rkeys, batch))
            except Exception:  # noqa: BLE001 - the baseline raises cryptography's InvalidTag
                out = [None] * len(batch)
            t1 = pc()
            batches.append(max(t1 - t0 - ov, 0))
            for f, pt in zip(fr, out):
                if pt is None or (cfg.verify and pt != payloads[f]):
                    failures += 1
                else:
                    decrypted += 1
    dec = np.array(batches, dtype=np.float64)
    return _Measure(enc_ns, np.repeat(dec, w.batch_sizes), enc_ns, dec, decrypted, failures)


class _LimitKeys:
    """The limit's key objects for one workload (stateless, so kept across rounds)."""

    def __init__(self, w: _Workload) -> None:
        suite, kids, keys = int(w.call.sframe_suite), w.call.kids, w.call.base_keys
        self.send = [LimitKey(suite, keys[i], kids[i], True) for i in range(w.n)]
        self.recv = [[LimitKey(suite, keys[s], kids[s], False) if s != r else None for s in range(w.n)]
                     for r in range(w.n)]

    def opener(self, r: int, s: int) -> LimitKey:
        """Receiver ``r``'s key for sender ``s``'s frames (``r != s``)."""
        key = self.recv[r][s]
        if key is None:
            raise ValueError("a member does not open its own frames")
        return key


def _run_limit(w: _Workload, keys: _LimitKeys, cts: list[bytes], ov_enc: int, ov_dec: int) -> _Measure:
    """Limit: one C loop per frame (encrypt) and per (receiver, tick, sender) (decrypt), with the receiver's
    keys interleaved as in a real call: CPU and latency.  Also the per-stream floor (one C loop over each
    stream's frames with one hot key), kept in ``extra``."""
    n, cs = w.n, w.call.sframe_suite
    nt = cs.Nt
    payloads, senders = w.payloads, w.senders
    nf = len(payloads)
    maxlen = max((len(c) for c in cts), default=0) + 64
    out = np.empty(maxlen * 2 + 17 + nt, dtype=np.uint8)
    # --- the per-stream floor
    enc_floor: list[float] = []
    dec_floor: list[float] = []
    decrypted = 0
    per_sender = [[f for f in range(nf) if senders[f] == s] for s in range(n)]
    for s in range(n):
        frames = [payloads[f] for f in per_sender[s]]
        if not frames:
            continue
        data, offs = _packed(frames)
        oo = np.arange(len(frames) + 1, dtype=np.int64) * (17 + nt) + offs
        big = np.empty(int(oo[-1]) + 64, dtype=np.uint8)
        enc_floor.append(max(keys.send[s].seal_loop(data, offs, big, oo, b"", 0) - ov_enc, 0))
        cdata, coffs = _packed([cts[f] for f in per_sender[s]])
        plain = np.empty(max(len(x) for x in frames) + 64, dtype=np.uint8)
        for r in range(n):
            if r == s:
                continue
            dec_floor.append(max(keys.opener(r, s).open_loop(cdata, coffs, plain) - ov_dec, 0))
    # --- latency: per frame (encrypt) and per (receiver, tick) (decrypt)
    enc_ns = np.zeros(nf, dtype=np.float64)
    o2 = np.zeros(2, dtype=np.int64)
    oo2 = np.zeros(2, dtype=np.int64)
    ctr = [0] * n
    batches: list[float] = []
    for t, groups in enumerate(w.by_sender):
        packed = {}
        for s, fs in groups.items():
            for f in fs:
                o2[1] = len(payloads[f])
                oo2[1] = len(payloads[f]) + 17 + nt
                enc_ns[f] = max(keys.send[s].seal_loop(payloads[f], o2, out, oo2, b"", ctr[s]) - ov_enc, 0)
                ctr[s] += 1
            packed[s] = _packed([cts[f] for f in fs])
        for r in range(n):
            fr = w.recv[t][r]
            if not fr:
                continue
            d = 0.0
            for s, (cdata, coffs) in packed.items():
                if s != r:
                    d += max(keys.opener(r, s).open_loop(cdata, coffs, out) - ov_dec, 0)
            batches.append(d)
            decrypted += len(fr)  # open_loop raises on any failure
    dec = np.array(batches, dtype=np.float64)
    return _Measure(enc_ns, np.repeat(dec, w.batch_sizes), enc_ns, dec, decrypted,
                    extra={"stream_floor_encrypt_ns": np.array(enc_floor),
                           "stream_floor_decrypt_ns": np.array(dec_floor)})


# ----------------------------------------------------------------------------------------- join


def measure_join(call: MLSCall, payload: bytes) -> dict[str, float]:
    """Time a newcomer's join to its first decrypted frame (in-process, sequential), in milliseconds.

    Mutates ``call`` (the group grows by one member): run it last.
    """
    from .. import mls

    pc = time.perf_counter
    suite = mls.CipherSuite(call.mls_suite)
    cs = call.sframe_suite
    creator = call.groups[0]
    t0 = pc()
    signer = mls.SignatureKeyPair.generate(suite)
    kp, priv = mls.KeyPackage.generate(suite, identity=b"newcomer", signer=signer)
    kp_bytes = kp.to_bytes()
    t1 = pc()
    out = creator.add([kp_bytes])
    creator.merge_pending_commit()
    t2 = pc()
    joiner = mls.Group.join_from_welcome(out.welcome, priv)
    t3 = pc()
    ctx = participant_context(joiner, cs)
    t4 = pc()
    cctx = participant_context(creator, cs)
    ckid = member_keys(creator, cs)[creator.own_leaf_index][0]
    t5 = pc()
    ct = cctx.encrypt(ckid, payload)
    pt = ctx.decrypt(ct)
    t6 = pc()
    if pt != payload:
        raise RuntimeError("the newcomer decrypted a wrong first frame")
    t7 = pc()
    if len(call.groups) > 1:
        call.groups[1].process(out.commit)
    t8 = pc()
    ms = 1000.0
    return {
        "key_package_ms": (t1 - t0) * ms,
        "commit_welcome_ms": (t2 - t1) * ms,
        "join_from_welcome_ms": (t3 - t2) * ms,
        "key_install_ms": (t4 - t3) * ms,
        "first_frame_ms": (t6 - t5) * ms,
        "member_process_commit_ms": (t8 - t7) * ms,
        "total_ms": ((t2 - t1) + (t3 - t2) + (t4 - t3) + (t6 - t5)) * ms,
        "welcome_bytes": float(len(out.welcome or b"")),
        "commit_bytes": float(len(out.commit)),
    }


# ----------------------------------------------------------------------------------------- summaries


def _summary(m: _Measure, w: _Workload, duration: float) -> dict[str, Any]:
    n, nframes = w.n, len(w.payloads)
    enc_total, dec_total = float(m.enc_cpu.sum()), float(m.dec_cpu.sum())
    enc_us = enc_total / 1000.0 / n / duration
    dec_us = dec_total / 1000.0 / n / duration
    total = enc_us + dec_us
    dec_lat = m.dec_lat_ns
    both = m.enc_ns[w.pair_frames] + dec_lat
    ops = nframes + nframes * (n - 1)
    crypto_s = (enc_total + dec_total) / 1e9
    return {
        "cpu_us_per_media_s": {"encrypt": enc_us, "decrypt": dec_us, "total": total},
        "core_share": total / 1e6,
        "frames_per_core_second": ops / crypto_s if crypto_s > 0 else float("inf"),
        "latency_us": {
            "encrypt": {"p50": _pct(m.enc_ns, 50) / 1e3, "p99": _pct(m.enc_ns, 99) / 1e3},
            "decrypt": {"p50": _pct(dec_lat, 50) / 1e3, "p99": _pct(dec_lat, 99) / 1e3},
            "total": {"p50": _pct(both, 50) / 1e3, "p99": _pct(both, 99) / 1e3},
        },
        "frames_decrypted": m.decrypted,
        "decrypt_failures": m.failures,
        **({"cpu_us_per_media_s_stream_floor": {
            "encrypt": float(m.extra["stream_floor_encrypt_ns"].sum()) / 1000.0 / n / duration,
            "decrypt": float(m.extra["stream_floor_decrypt_ns"].sum()) / 1000.0 / n / duration,
            "total": float(m.extra["stream_floor_encrypt_ns"].sum() + m.extra["stream_floor_decrypt_ns"].sum())
            / 1000.0 / n / duration,
        }} if "stream_floor_encrypt_ns" in m.extra else {}),
    }


def _fit_max_n(points: list[tuple[int, float]]) -> dict[str, float | None]:
    """Fit cost(N) = a + b·(N-1) (µs per media second per participant) and solve for one core."""
    if not points:
        return {"a": None, "b": None, "max_n_per_participant": None, "max_n_whole_call": None}
    if len(points) == 1:
        n, c = points[0]
        a, b = 0.0, c / max(n - 1, 1)
    else:
        x = np.array([p[0] - 1 for p in points], dtype=float)
        y = np.array([p[1] for p in points], dtype=float)
        b, a = np.polyfit(x, y, 1)
        a = max(float(a), 0.0)
        b = max(float(b), 1e-9)
    budget = 1e6
    cap = 1 << 20  # beyond any KID layout; a flat fit means "more than we can say"
    per_participant = min(1 + math.floor((budget - a) / b), cap) if a < budget else 0
    # N·(a + b(N-1)) <= budget  ->  b N² + (a - b) N - budget <= 0
    disc = (a - b) ** 2 + 4 * b * budget
    whole = min(math.floor((-(a - b) + math.sqrt(disc)) / (2 * b)), cap)
    return {"a": a, "b": b, "max_n_per_participant": int(per_participant), "max_n_whole_call": int(whole)}


def _ratio(x: float, y: float) -> float:
    return x / y if y > 0 else float("inf")


# ----------------------------------------------------------------------------------------- run


def run_call_bench(cfg: CallConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Run the in-process call benchmark; return a JSON-ready dict."""
    from ..sframe import openssl_static, openssl_version

    if not cfg.participants or any(n < 2 for n in cfg.participants):
        raise ValueError("participant counts must be >= 2")
    if cfg.rounds < 1 or not cfg.duration > 0:
        raise ValueError("rounds must be >= 1 and duration > 0")
    suite = CipherSuite(cfg.suite)
    ov = _timer_overhead()
    ov_enc, ov_dec = _limit_overheads(int(suite))
    weights = [n * n for n in cfg.participants]
    total_w = float(sum(weights) * cfg.rounds * len(CONTENDERS))
    done_w = 0.0

    def report(text: str) -> None:
        if progress:
            progress(min(done_w / total_w, 1.0), text)

    _warm_up(cfg)
    per_n: list[dict[str, Any]] = []
    for n, wgt in zip(cfg.participants, weights):
        report(f"N={n}: MLS group and traffic")
        w = _workload(n, cfg)
        lkeys = _LimitKeys(w)
        rounds: dict[str, list[_Measure]] = {k: [] for k in CONTENDERS}
        for rnd in range(cfg.rounds):
            report(f"N={n}: round {rnd + 1}/{cfg.rounds} ours")
            m, cts = _run_ours(w, cfg, ov)
            rounds["ours"].append(m)
            done_w += wgt
            report(f"N={n}: round {rnd + 1}/{cfg.rounds} ours, per-frame decrypt")
            rounds["ours_per_frame"].append(_run_ours(w, cfg, ov, per_frame=True)[0])
            done_w += wgt
            report(f"N={n}: round {rnd + 1}/{cfg.rounds} naive")
            rounds["naive"].append(_run_naive(w, cfg, ov))
            done_w += wgt
            report(f"N={n}: round {rnd + 1}/{cfg.rounds} limit")
            rounds["limit"].append(_run_limit(w, lkeys, cts, ov_enc, ov_dec))
            done_w += wgt
        nframes = len(w.payloads)
        report(f"N={n}: join")
        epoch = w.call.epoch
        join = measure_join(w.call, w.payloads[0])
        res = {name: _summary(_combine(rounds[name]), w, cfg.duration) for name in CONTENDERS}
        for name in CONTENDERS:
            res[name]["api"] = API[name]
        cpu = {k: res[k]["cpu_us_per_media_s"]["total"] for k in CONTENDERS}
        p99 = {k: res[k]["latency_us"]["total"]["p99"] for k in CONTENDERS}
        per_n.append({
            "participants": n,
            "media_seconds": cfg.duration,
            "frames_sent": nframes,
            "frames_expected_decrypted": nframes * (n - 1),
            "traffic": w.schedule.stats(),
            "mls_setup_seconds": w.call.setup_seconds,
            "epoch": epoch,
            "contenders": res,
            "ratios": {
                "cpu_naive_over_ours": _ratio(cpu["naive"], cpu["ours"]),
                "cpu_ours_over_limit": _ratio(cpu["ours"], cpu["limit"]),
                "cpu_naive_over_limit": _ratio(cpu["naive"], cpu["limit"]),
                "cpu_naive_over_ours_per_frame": _ratio(cpu["naive"], cpu["ours_per_frame"]),
                "p99_naive_over_ours": _ratio(p99["naive"], p99["ours"]),
                "p99_ours_over_limit": _ratio(p99["ours"], p99["limit"]),
                "p99_naive_over_ours_per_frame": _ratio(p99["naive"], p99["ours_per_frame"]),
            },
            "join": join,
        })
    fits = {k: _fit_max_n([(r["participants"], r["contenders"][k]["cpu_us_per_media_s"]["total"]) for r in per_n])
            for k in CONTENDERS}
    if progress:
        progress(1.0, "done")
    return {
        "benchmark": "call",
        "openssl": openssl_version(),
        "openssl_static": openssl_static(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "config": {
            "participants": list(cfg.participants),
            "media_seconds": cfg.duration,
            "rounds": cfg.rounds,
            "sframe_suite": int(suite),
            "sframe_suite_name": suite.name,
            "mls_suite": 1,
            "tick_ms": cfg.tick_ms,
            "traffic": cfg.model.to_dict(),
            "timer_overhead_ns": ov,
            "limit_timer_overhead_ns": {"encrypt": ov_enc, "decrypt": ov_dec},
        },
        "api": dict(API),
        "results": per_n,
        "realtime": fits,
        "targets": _targets(per_n),
    }


def _warm_up(cfg: CallConfig) -> None:
    """One short untimed pass of every contender (imports, caches, OpenSSL's first-use setup)."""
    small = CallConfig(participants=(2,), duration=0.1, rounds=1, suite=cfg.suite, tick_ms=cfg.tick_ms,
                       model=cfg.model, seed=cfg.seed, verify=False)
    w = _workload(2, small)
    _m, cts = _run_ours(w, small, 0)
    _run_ours(w, small, 0, per_frame=True)
    _run_naive(w, small, 0)
    _run_limit(w, _LimitKeys(w), cts, 0, 0)


def _targets(per_n: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's targets, evaluated where the run has the participant count (reported, never asserted)."""
    out: dict[str, Any] = {}
    by_n = {r["participants"]: r for r in per_n}
    if 32 in by_n:
        r = by_n[32]["ratios"]
        out["n32_cpu_naive_over_ours"] = {"value": r["cpu_naive_over_ours"], "target": ">= 4",
                                          "met": r["cpu_naive_over_ours"] >= 4}
        out["n32_cpu_ours_over_limit"] = {"value": r["cpu_ours_over_limit"], "target": "<= 1.3",
                                          "met": r["cpu_ours_over_limit"] <= 1.3}
    if 64 in by_n:
        c = by_n[64]["contenders"]
        p = c["ours_per_frame"]["latency_us"]["total"]["p99"]
        out["n64_p99_latency_us_per_frame_decrypt"] = {"value": p, "target": "< 50", "met": p < 50}
        p = c["ours"]["latency_us"]["total"]["p99"]
        out["n64_p99_latency_us_tick_batch"] = {"value": p, "target": "< 50", "met": p < 50}
    return out


# ----------------------------------------------------------------------------------------- output


def format_call_table(result: dict[str, Any]) -> str:
    """The terminal / Markdown table of a call-benchmark result."""
    cfg = result["config"]
    lines = [
        f"Call benchmark: {cfg['sframe_suite_name']}, {cfg['media_seconds']:g} s of media per N, per-item minimum "
        f"of {cfg['rounds']} rounds; OpenSSL {result['openssl']} "
        f"({'static' if result['openssl_static'] else 'shared'})",
        f"Traffic per sender: video {cfg['traffic']['video_bitrate'] / 1e6:g} Mbit/s at "
        f"{cfg['traffic']['video_fps']:g} fps (keyframe every {cfg['traffic']['keyframe_interval']:g} s), "
        f"Opus {cfg['traffic']['audio_fps']:g} fps; receivers decrypt one batch per {cfg['tick_ms']:g} ms tick",
        "",
        "| N | crypto CPU µs per media s per participant: ours | ours, per-frame decrypt | naive | limit "
        "| naive/ours | ours/limit | core share (ours) | frames/core-s (ours) | enc+dec latency µs: p50 ours "
        "| p99 ours (tick batch) | p99 ours (per-frame decrypt) | p99 naive | p99 limit | join→first frame ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["results"]:
        c = r["contenders"]
        cpu = {k: c[k]["cpu_us_per_media_s"]["total"] for k in CONTENDERS}
        lat = {k: c[k]["latency_us"]["total"] for k in CONTENDERS}
        lines.append(
            f"| {r['participants']} | {cpu['ours']:,.0f} | {cpu['ours_per_frame']:,.0f} | {cpu['naive']:,.0f} | "
            f"{cpu['limit']:,.0f} | "
            f"{r['ratios']['cpu_naive_over_ours']:.2f}× | {r['ratios']['cpu_ours_over_limit']:.2f}× | "
            f"{c['ours']['core_share'] * 100:.2f} % | {c['ours']['frames_per_core_second']:,.0f} | "
            f"{lat['ours']['p50']:.1f} | {lat['ours']['p99']:.1f} | {lat['ours_per_frame']['p99']:.1f} | "
            f"{lat['naive']['p99']:.1f} | "
            f"{lat['limit']['p99']:.1f} | {r['join']['total_ms']:.1f} |"
        )
    rt = result["realtime"]
    lines.append("")
    lines.append("Largest call on one core (fit a + b·(N−1) µs per media second per participant): "
                 + ", ".join(f"{k}: {rt[k]['max_n_per_participant']} per participant, "
                             f"{rt[k]['max_n_whole_call']} whole call" for k in CONTENDERS))
    for name, t in result.get("targets", {}).items():
        lines.append(f"Target {name}: {t['value']:.2f} (target {t['target']}) -> {'met' if t['met'] else 'NOT met'}")
    if result.get("loopback"):
        lines += ["", _format_loopback(result["loopback"])]
    lines.append("")
    lines.append("APIs: " + "; ".join(f"{k}: {v}" for k, v in result["api"].items()))
    return "\n".join(lines)


def _session_cell(r: dict[str, Any]) -> str:
    s = r.get("session_join")
    if not s:
        return "–"
    if "join_ms" in s:
        return f"{s['join_ms']:.1f}"
    return "error (see JSON)"


def _format_loopback(lb: dict[str, Any]) -> str:
    lines = [
        "Loopback (delivery service over WebSocket + UDP frame relay process on 127.0.0.1, real time):",
        "",
        "| N | frames decrypted/expected | frames sent >5 ms late | e2e latency p50 ms | p99 ms "
        "| process CPU ms per media s per participant | relay CPU ms per media s "
        "| crypto µs per media s per participant | join→first frame ms: MLS via delivery service "
        "| via session layer |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in lb["results"]:
        lines.append(
            f"| {r['participants']} | {r['frames_decrypted']}/{r['frames_expected']} | "
            f"{r['frames_sent_late']}/{r['frames_sent']}"
            f"{' (behind real time)' if r['frames_sent_late'] > 0.1 * r['frames_sent'] else ''} | "
            f"{r['latency_ms']['p50']:.2f} | {r['latency_ms']['p99']:.2f} | {r['process_cpu_ms_per_media_s']:.1f} | "
            f"{r['relay_cpu_ms_per_media_s']:.0f} | "
            f"{r['crypto_us_per_media_s']:,.0f} | {r['join_ms']:.1f} | {_session_cell(r)} |"
        )
    return "\n".join(lines)
