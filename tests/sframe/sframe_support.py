"""Shared helpers of the SFrame tests: hypothesis profiles, strategies, vector access.

Profiles: ``sframe-ci`` (default, moderate example counts so tests/sframe stays well
under a minute on a loaded 2-core machine) and ``sframe-thorough`` (10x the examples),
chosen with ``ORANGE_FAST_SFRAME_PROFILE=thorough``.  Tests declare a base count with
:func:`examples`, which scales it by the profile.
"""

from __future__ import annotations

import os
import random
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from orange_fast.sframe import CipherSuite

PROFILE = os.environ.get("ORANGE_FAST_SFRAME_PROFILE", "ci")
SCALE = {"ci": 1, "thorough": 10}.get(PROFILE, 1)

settings.register_profile(
    "sframe-ci",
    deadline=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def examples(n: int, **kw: Any) -> settings:
    """Settings with ``n`` examples in the ci profile (``10 n`` when thorough)."""
    return settings(settings.get_profile("sframe-ci"), max_examples=n * SCALE, **kw)


ALL_SUITES = [CipherSuite(i) for i in range(1, 9)]
RFC = "sframe/rfc9605.json"
AES256 = "sframe/draft-aes256-ctr-hmac.json"
U64 = 2**64 - 1

suites = st.sampled_from(ALL_SUITES)
kids = st.one_of(
    st.integers(0, 7),
    st.integers(8, 2**16),
    st.integers(2**56, U64),
    st.integers(0, U64),
)
counters = st.one_of(
    st.integers(0, 7),
    st.integers(8, 2**32),
    st.integers(U64 - 1000, U64),
    st.integers(0, U64),
)
base_keys = st.binary(min_size=1, max_size=80)
metadatas = st.one_of(st.just(b""), st.binary(max_size=64))
small_frames = st.binary(max_size=300)


def _pseudo_random(size_seed: tuple[int, int]) -> bytes:
    size, seed = size_seed
    return random.Random(seed).randbytes(size)


#: mostly small frames; sometimes up to 70 KiB (crosses the 32 KiB no-GIL threshold); rarely up to 1 MiB
frames = st.one_of(
    small_frames,
    small_frames,
    small_frames,
    small_frames,
    st.tuples(st.integers(300, 70_000), st.integers(0, 2**32)).map(_pseudo_random),
    st.tuples(st.sampled_from([2**20 - 1, 2**20]), st.integers(0, 2**32)).map(_pseudo_random),
)


def key_material_hex(suite: CipherSuite, kid: int, base_key: bytes) -> list[str]:
    """Hex (both cases) of the base key, derived key and salt: none may ever be printed."""
    from orange_fast.sframe.reference import derive_key_salt

    key, salt = derive_key_salt(suite, kid, base_key)
    out = []
    for blob in (base_key, key, salt, key[: suite.Nka] if suite.Nka else key, key[suite.Nka :]):
        if len(blob) >= 8:
            out += [blob.hex(), blob.hex().upper()]
    return out
