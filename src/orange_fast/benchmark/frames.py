"""Per-frame SFrame benchmark: the core against the straightforward ``cryptography``
SFrame and the C-loop limit, side by side in one run.

Every contender encrypts (or decrypts) the same frames in interleaved rounds, so the
ratios are taken under the same machine load; each figure is the best round's cost
per frame in nanoseconds (the least disturbed one on a shared machine).

Contenders:
  single  ``Context.encrypt``/``decrypt`` called once per frame from a Python loop
  into    ``encrypt_into``/``decrypt_into`` into a reused buffer
  batch   ``encrypt_batch``/``decrypt_batch`` over a list of frames
  packed  ``encrypt_packed``/``decrypt_packed`` over one array plus offsets, into a reused
          output array (``out=``): no allocation per call
  limit   the same per-frame EVP sequence in a C loop (``sframe._limit``), no Python
  naive   the SFrame a user would write on ``cryptography`` (:mod:`.naive`)
  bare    ``cryptography``'s ``AESGCM.encrypt`` alone, no SFrame work (GCM suites)
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..sframe import CipherSuite, Context
from ..sframe._limit import LimitKey
from .naive import NaiveSFrame

__all__ = ["FrameCase", "run_frame_bench", "DEFAULT_SIZES", "DEFAULT_SUITES"]

DEFAULT_SIZES = (64, 160, 1024, 4096, 16384, 65536)
DEFAULT_SUITES = (4, 5, 1)
KID = 0x123
BASE_KEY = bytes(range(32))
METADATA = b""
CHUNK_BYTES = 1 << 21  # frames per batch call: about 2 MiB of payload (stays in cache)


@dataclass
class FrameCase:
    """Best-round cost per frame (ns) of each contender for one suite, size and operation."""

    suite: int
    size: int
    op: str
    frames: int
    ns: dict[str, float] = field(default_factory=dict)

    def ratios(self) -> dict[str, float]:
        """The ratios the targets are stated in."""
        ns = self.ns
        out: dict[str, float] = {}
        if "naive" in ns:
            out["naive_over_single"] = ns["naive"] / ns["single"]
        out["single_over_limit"] = ns["single"] / ns["limit"]
        out["batch_throughput_vs_limit"] = ns["limit"] / ns["batch"]
        out["packed_throughput_vs_limit"] = ns["limit"] / ns["packed"]
        if "bare" in ns:
            out["bare_over_single"] = ns["bare"] / ns["single"]
        return out


def _frames(size: int, n: int) -> list[bytes]:
    pool = os.urandom(size + 64)
    return [pool[i % 64 : i % 64 + size] for i in range(n)]


def _packed(frames: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    offs = np.zeros(len(frames) + 1, dtype=np.int64)
    np.cumsum([len(f) for f in frames], out=offs[1:])
    return np.frombuffer(b"".join(frames), dtype=np.uint8).copy(), offs


def _timed(fn: Callable[[], Any]) -> int:
    t0 = time.perf_counter_ns()
    fn()
    return time.perf_counter_ns() - t0


def _bench_case(suite: int, size: int, op: str, rounds: int) -> FrameCase:
    n = max(16, min(1024, CHUNK_BYTES // max(size, 1)))
    frames = _frames(size, n)
    data, offs = _packed(frames)
    cs = CipherSuite(suite)
    case = FrameCase(suite, size, op, n)
    best: dict[str, float] = {}

    def note(name: str, ns_total: float) -> None:
        per = ns_total / n
        if per < best.get(name, float("inf")):
            best[name] = per

    naive = NaiveSFrame(cs, KID, BASE_KEY)
    limit = LimitKey(suite, BASE_KEY, KID, op == "encrypt")
    max_out = n * (17 + cs.Nt) + int(offs[-1])
    lim_out = np.empty(max_out, dtype=np.uint8)
    bare = None
    if cs.is_gcm:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        bare = AESGCM(bytes(cs.Nk))

    if op == "encrypt":
        ctx = Context(cs)
        ctx.add_send_key(KID, BASE_KEY)
        enc, enc_into = ctx.encrypt, ctx.encrypt_into
        out = bytearray(size + 17 + cs.Nt)
        # the limit writes with room for a 17-byte header per frame
        lim_oo = np.arange(n + 1, dtype=np.int64) * (17 + cs.Nt) + offs
        nonce = bytes(12)

        def single() -> None:
            for f in frames:
                enc(KID, f)

        def into() -> None:
            for f in frames:
                enc_into(KID, f, out)

        def naive_loop() -> None:
            ne = naive.encrypt
            for f in frames:
                ne(f)

        def bare_loop() -> None:
            assert bare is not None  # only timed when the bare AEAD is available
            be = bare.encrypt
            for f in frames:
                be(nonce, f, b"\x30")

        for _ in range(rounds):
            note("single", _timed(single))
            note("into", _timed(into))
            note("batch", _timed(lambda: ctx.encrypt_batch(KID, frames)))
            note("packed", _timed(lambda: ctx.encrypt_packed(KID, data, offs, out=lim_out)))
            note("limit", limit.seal_loop(data, offs, lim_out, lim_oo))
            note("naive", _timed(naive_loop))
            if bare is not None:
                note("bare", _timed(bare_loop))
    else:
        sender = Context(cs)
        sender.add_send_key(KID, BASE_KEY)
        receivers = {}
        for name in ("single", "into", "batch", "packed"):
            receivers[name] = Context(cs)
            receivers[name].add_receive_key(KID, BASE_KEY)
        fixed = sender.encrypt_batch(KID, frames)
        fixed_data, fixed_offs = _packed(fixed)
        nsender = NaiveSFrame(cs, KID, BASE_KEY)
        naive_cts = [nsender.encrypt(f) for f in frames]
        out = bytearray(size)

        for _ in range(rounds):
            cts = sender.encrypt_batch(KID, frames)
            dec = receivers["single"].decrypt

            def single_open(cts: list[bytes] = cts, dec: Callable[[bytes], bytes] = dec) -> None:
                for c in cts:
                    dec(c)

            note("single", _timed(single_open))
            cts = sender.encrypt_batch(KID, frames)
            dec_into = receivers["into"].decrypt_into

            def into_open(cts: list[bytes] = cts, dec_into: Callable[[bytes, bytearray], int] = dec_into) -> None:
                for c in cts:
                    dec_into(c, out)

            note("into", _timed(into_open))
            cts = sender.encrypt_batch(KID, frames)
            note("batch", _timed(lambda: receivers["batch"].decrypt_batch(cts)))
            pdata, poffs = sender.encrypt_packed(KID, data, offs)
            note("packed", _timed(lambda: receivers["packed"].decrypt_packed(pdata, poffs, out=lim_out)))
            note("limit", limit.open_loop(fixed_data, fixed_offs, lim_out))

            def naive_loop() -> None:
                nd = naive.decrypt
                for c in naive_cts:
                    nd(c)

            note("naive", _timed(naive_loop))
    case.ns = best
    return case


def _thread_scaling(size: int, rounds: int) -> dict[str, float]:
    """Throughput of 2 threads over 1, each thread with its own Context (AES-128-GCM)."""
    n = max(16, min(1024, CHUNK_BYTES // size))
    frames = _frames(size, n)
    data, offs = _packed(frames)
    result: dict[str, float] = {}
    for mode in ("packed", "batch", "single"):
        best = {1: float("inf"), 2: float("inf")}
        for _ in range(rounds):
            for threads in (1, 2):
                ctxs = []
                for _t in range(threads):
                    c = Context(CipherSuite.AES_128_GCM_SHA256_128)
                    c.add_send_key(KID, BASE_KEY)
                    ctxs.append(c)
                barrier = threading.Barrier(threads + 1)
                reps = max(4, (32 << 20) // (n * size))  # ~32 MiB per thread: tens of ms

                def work(c: Context) -> None:
                    out = np.empty(int(offs[-1]) + n * 33, dtype=np.uint8)
                    barrier.wait()
                    for _ in range(reps):
                        if mode == "packed":
                            c.encrypt_packed(KID, data, offs, out=out)
                        elif mode == "batch":
                            c.encrypt_batch(KID, frames)
                        else:
                            enc = c.encrypt
                            for f in frames:
                                enc(KID, f)

                ts = [threading.Thread(target=work, args=(c,)) for c in ctxs]
                for t in ts:
                    t.start()
                barrier.wait()
                t0 = time.perf_counter_ns()
                for t in ts:
                    t.join()
                per_frame = (time.perf_counter_ns() - t0) / (threads * reps * n)
                best[threads] = min(best[threads], per_frame)
        result[f"{mode}_2t_over_1t"] = best[1] / best[2]
    return result


def run_frame_bench(
    suites: tuple[int, ...] = DEFAULT_SUITES,
    sizes: tuple[int, ...] = DEFAULT_SIZES,
    rounds: int = 15,
    threads: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the frame benchmark; return a JSON-ready dict of cases and thread scaling."""
    from ..sframe import openssl_static, openssl_version

    cases = []
    todo = [(s, z, op) for s in suites for z in sizes for op in ("encrypt", "decrypt")]
    for i, (suite, size, op) in enumerate(todo):
        if progress:
            progress(f"[{i + 1}/{len(todo)}] suite {suite} {op} {size} B")
        cases.append(_bench_case(suite, size, op, rounds))
    scaling = {}
    if threads:
        for size in (160, 1024, 16384, 65536):
            if progress:
                progress(f"threads: {size} B")
            scaling[size] = _thread_scaling(size, max(3, rounds // 3))
    return {
        "openssl": openssl_version(),
        "openssl_static": openssl_static(),
        "cpu_count": os.cpu_count(),
        "rounds": rounds,
        "cases": [
            {"suite": c.suite, "size": c.size, "op": c.op, "frames_per_call": c.frames,
             "ns_per_frame": c.ns, "ratios": c.ratios()}
            for c in cases
        ],
        "threads": scaling,
    }


def format_table(result: dict[str, Any]) -> str:
    """A markdown table of the result (ns per frame and the target ratios)."""
    lines = [
        f"OpenSSL: {result['openssl']} ({'static' if result['openssl_static'] else 'shared'}); "
        f"best of {result['rounds']} interleaved rounds, ns per frame",
        "",
        "| suite | op | size | single | into | batch | packed | C-loop limit | naive `cryptography` | bare AESGCM "
        "| naive/single | single/limit | batch vs limit | packed vs limit |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in result["cases"]:
        ns, r = c["ns_per_frame"], c["ratios"]
        bare = f"{ns['bare']:.0f}" if "bare" in ns else "–"
        lines.append(
            f"| {c['suite']} | {c['op']} | {c['size']} | {ns['single']:.0f} | {ns['into']:.0f} | "
            f"{ns['batch']:.0f} | {ns['packed']:.0f} | {ns['limit']:.0f} | {ns['naive']:.0f} | {bare} | "
            f"{r['naive_over_single']:.2f}× | {r['single_over_limit']:.2f}× | "
            f"{r['batch_throughput_vs_limit']:.2f}× | {r['packed_throughput_vs_limit']:.2f}× |"
        )
    if result.get("threads"):
        lines += ["", "| size (AES-128-GCM encrypt, own Context per thread) | 2 threads / 1 thread: packed batch "
                  "| list batch | single calls |", "|---:|---:|---:|---:|"]
        for size, r in result["threads"].items():
            lines.append(f"| {size} | {r['packed_2t_over_1t']:.2f}× | {r['batch_2t_over_1t']:.2f}× "
                         f"| {r['single_2t_over_1t']:.2f}× |")
    return "\n".join(lines)
