"""pytest-benchmark view of the MLS costs (``pytest bench/test_bench_mls.py --benchmark-only``).

Same operations, groups and state restoration as :mod:`orange_fast.benchmark.mls` (which gives the
side-by-side table with ratios, ``orange-fast bench --mls``); here pytest-benchmark keeps its own
statistics per contender, operation and group size.  The group sizes can be narrowed with
``ORANGE_FAST_MLS_BENCH_SIZES=2,8,32``.  Nothing here asserts a time.
"""

from __future__ import annotations

import gc
import os
from typing import Any, Callable, Dict, Iterator, Tuple

import pytest

from orange_fast.benchmark.mls import DEFAULT_SIZES, OPS, MlsRsBench, OursBench, mls_rs_available

ROUNDS = 5


def _sizes() -> Tuple[int, ...]:
    env = os.environ.get("ORANGE_FAST_MLS_BENCH_SIZES", "")
    if env.strip():
        return tuple(int(v) for v in env.split(",") if v.strip())
    return DEFAULT_SIZES


@pytest.fixture(scope="module")
def built() -> Iterator[Dict[Tuple[str, int], Any]]:
    """Groups built once per contender and size; released before interpreter shutdown (the uniffi
    objects' finalisers need the library still loaded)."""
    cache: Dict[Tuple[str, int], Any] = {}
    yield cache
    cache.clear()
    gc.collect()


def _contender(cache: Dict[Tuple[str, int], Any], name: str, n: int) -> Any:
    key = (name, n)
    if key not in cache:
        if name == "orange_fast":
            cache[key] = OursBench(n, private_handshake=False)  # mls-rs sends commits as PublicMessage
        else:
            if not mls_rs_available():
                pytest.skip("agentvault-mls-rs-uniffi is not installed")
            cache[key] = MlsRsBench(n)
    return cache[key]


def _run(fn: Callable[[], Any]) -> Any:
    return fn()


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("n", _sizes())
@pytest.mark.parametrize("contender", ["orange_fast", "mls-rs"])
def test_mls_operation(benchmark, built: Dict[Tuple[str, int], Any], contender: str, n: int, op: str) -> None:
    c = _contender(built, contender, n)
    if op not in c.ops():
        pytest.skip(f"{op} needs at least two members")
    benchmark.group = f"mls n={n} {op}"
    result = benchmark.pedantic(_run, setup=lambda: ((c.prepare(op),), {}), rounds=ROUNDS, iterations=1)
    assert result is not None
