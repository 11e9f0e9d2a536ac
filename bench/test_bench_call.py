"""pytest-benchmark: one receiver's work in a 32-party call (31 incoming video + audio streams), per tick and
per second of media, orange_fast against the straightforward `cryptography` SFrame; keys from a real MLS
group.  The full comparison with the C-loop limit, latency percentiles and plots is `orange-fast bench`.

Run from the project root:  pytest bench/test_bench_call.py --benchmark-only --benchmark-group-by=group
"""

from __future__ import annotations

import pytest

from orange_fast.benchmark.call import CallConfig, _naive_receive, _workload
from orange_fast.benchmark.naive import NaiveSFrame
from orange_fast.sframe import Context

N = 32
RECEIVER = 0


@pytest.fixture(scope="module")
def call():
    w = _workload(N, CallConfig(participants=(N,), duration=1.0))
    cs, kids, keys = w.call.sframe_suite, w.call.kids, w.call.base_keys
    senders = [Context(cs) for _ in range(N)]
    for c, kid, key in zip(senders, kids, keys):
        c.add_send_key(kid, key)
    cts = [senders[w.senders[f]].encrypt(kids[w.senders[f]], p) for f, p in enumerate(w.payloads)]
    ticks = [[cts[f] for f in per_tick[RECEIVER]] for per_tick in w.recv if per_tick[RECEIVER]]
    naive_cts = []
    naive_tx = [NaiveSFrame(cs, kid, key) for kid, key in zip(kids, keys)]
    for f, p in enumerate(w.payloads):
        naive_cts.append(naive_tx[w.senders[f]].encrypt(p))
    naive_ticks = [[naive_cts[f] for f in per_tick[RECEIVER]] for per_tick in w.recv if per_tick[RECEIVER]]
    return w, ticks, naive_ticks


def _receiver(w) -> Context:
    ctx = Context(w.call.sframe_suite)
    for j, kid in enumerate(w.call.kids):
        if j != RECEIVER:
            ctx.add_receive_key(kid, w.call.base_keys[j])
    return ctx


def test_ours_one_second_of_media(benchmark, call) -> None:
    """decrypt_batch per 10 ms tick over one second of 31 incoming streams (fresh replay windows per round)."""
    w, ticks, _ = call
    benchmark.group = f"receiver, N={N}, 1 s of media"
    benchmark.pedantic(lambda ctx: [ctx.decrypt_batch(t) for t in ticks], setup=lambda: ((_receiver(w),), {}),
                       rounds=10, warmup_rounds=1)


def test_naive_one_second_of_media(benchmark, call) -> None:
    w, _, naive_ticks = call
    keys = {kid: NaiveSFrame(w.call.sframe_suite, kid, w.call.base_keys[j])
            for j, kid in enumerate(w.call.kids) if j != RECEIVER}
    benchmark.group = f"receiver, N={N}, 1 s of media"
    benchmark.pedantic(lambda: [_naive_receive(keys, t) for t in naive_ticks], rounds=10, warmup_rounds=1)


def test_ours_largest_tick(benchmark, call) -> None:
    """The tick with the most bytes (keyframes): the p100 of the receiver's added latency."""
    w, ticks, _ = call
    big = max(ticks, key=lambda t: sum(len(c) for c in t))
    benchmark.group = f"receiver, N={N}, largest tick"
    benchmark.pedantic(lambda ctx: ctx.decrypt_batch(big), setup=lambda: ((_receiver(w),), {}),
                       rounds=200, warmup_rounds=5)


def test_naive_largest_tick(benchmark, call) -> None:
    w, _, naive_ticks = call
    keys = {kid: NaiveSFrame(w.call.sframe_suite, kid, w.call.base_keys[j])
            for j, kid in enumerate(w.call.kids) if j != RECEIVER}
    big = max(naive_ticks, key=lambda t: sum(len(c) for c in t))
    benchmark.group = f"receiver, N={N}, largest tick"
    benchmark.pedantic(lambda: _naive_receive(keys, big), rounds=200, warmup_rounds=5)
