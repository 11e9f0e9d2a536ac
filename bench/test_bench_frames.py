"""pytest-benchmark view of the per-frame costs (``pytest bench/ --benchmark-only``).

The side-by-side ratios (interleaved rounds, one run) come from ``orange-fast bench``
(:mod:`orange_fast.benchmark.frames`); these give pytest-benchmark's statistics per
contender.  Nothing here asserts a time.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from orange_fast.benchmark.naive import NaiveSFrame
from orange_fast.sframe import CipherSuite, Context
from orange_fast.sframe._limit import LimitKey

SIZES = (64, 160, 1024, 4096, 16384, 65536)
SUITES = (4, 5, 1)
KID = 0x123
KEY = bytes(range(32))
BATCH = 64


def _frames(size: int, n: int = BATCH) -> list[bytes]:
    return [os.urandom(size) for _ in range(n)]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("suite", SUITES)
def test_encrypt_single(benchmark, suite: int, size: int) -> None:
    ctx = Context(suite)
    ctx.add_send_key(KID, KEY)
    frame = os.urandom(size)
    ct = benchmark(ctx.encrypt, KID, frame)
    assert ctx.plaintext_size(ct) == size


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("suite", SUITES)
def test_encrypt_naive(benchmark, suite: int, size: int) -> None:
    naive = NaiveSFrame(CipherSuite(suite), KID, KEY)
    frame = os.urandom(size)
    ct = benchmark(naive.encrypt, frame)
    rx = Context(suite)
    rx.add_receive_key(KID, KEY)
    assert rx.decrypt(ct) == frame


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("suite", SUITES)
def test_encrypt_batch(benchmark, suite: int, size: int) -> None:
    ctx = Context(suite)
    ctx.add_send_key(KID, KEY)
    frames = _frames(size)
    out = benchmark(ctx.encrypt_batch, KID, frames)
    assert len(out) == BATCH


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("suite", SUITES)
def test_encrypt_c_loop_limit(benchmark, suite: int, size: int) -> None:
    cs = CipherSuite(suite)
    frames = _frames(size)
    offs = np.arange(BATCH + 1, dtype=np.int64) * size
    data = np.frombuffer(b"".join(frames), dtype=np.uint8)
    oo = offs + np.arange(BATCH + 1, dtype=np.int64) * (17 + cs.Nt)
    out = np.empty(int(oo[-1]), dtype=np.uint8)
    key = LimitKey(suite, KEY, KID, True)
    benchmark(key.seal_loop, data, offs, out, oo)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("suite", SUITES)
def test_decrypt_single(benchmark, suite: int, size: int) -> None:
    tx = Context(suite)
    tx.add_send_key(KID, KEY)
    rx = Context(suite, replay_window=0)  # the same frame again and again: no replay window here
    rx.add_receive_key(KID, KEY)
    frame = os.urandom(size)
    ct = tx.encrypt(KID, frame)
    assert benchmark(rx.decrypt, ct) == frame
