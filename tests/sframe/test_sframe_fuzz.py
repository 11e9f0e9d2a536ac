"""Fuzzing ``decrypt`` and ``decode_header``: only SFrameError subclasses may escape,
and the core agrees with the reference on every input.

* hypothesis: raw random bytes and structured mutations of valid ciphertexts;
* atheris (coverage-guided, optional): a bounded subprocess run of ``sframe_fuzz_target.py``.
  ``ORANGE_FAST_FUZZ_SECONDS`` sets its duration (default 4 s).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sframe_support import examples

from orange_fast import sframe
from orange_fast.sframe import reference as ref

HERE = Path(__file__).resolve().parent
BASE = b"fuzz-base-key-16"
KIDS = (0, 7, 8, 0x123, 2**56 + 1, 2**64 - 1)
META = b"IETF SFrame WG"


def _pair(suite):
    core, oracle = sframe.Context(suite, replay_window=0), ref.Context(suite, replay_window=0)
    for ctx in (core, oracle):
        for kid in KIDS:
            ctx.add_receive_key(kid, BASE)
    return core, oracle


PAIRS = {int(s): _pair(s) for s in sframe.CipherSuite}


def _valid(suite: int, kid: int, ctr: int, pt: bytes) -> bytes:
    tx = sframe.Context(suite)
    tx.add_send_key(kid, BASE, start_counter=ctr)
    return tx.encrypt(kid, pt, META)


def _outcome(fn, *args):
    try:
        return fn(*args)
    except sframe.SFrameError as exc:
        return type(exc)


def _check(suite: int, data: bytes) -> None:
    core, oracle = PAIRS[suite]
    assert _outcome(sframe.decode_header, data) == _outcome(ref.decode_header, data)
    got = _outcome(core.decrypt, data, META)
    assert got == _outcome(oracle.decrypt, data, META)
    out = bytearray(len(data))
    got_into = _outcome(core.decrypt_into, data, out, META)
    if isinstance(got, bytes):
        assert got_into == len(got) and bytes(out[: len(got)]) == got
    else:
        assert got_into == got and not any(out)
    try:
        size = core.plaintext_size(data)
    except sframe.MalformedHeaderError:
        assert not isinstance(got, bytes)
    else:
        assert not isinstance(got, bytes) or size == len(got)


@examples(300)
@given(suite=st.integers(1, 8), data=st.binary(max_size=120))
def test_fuzz_raw_bytes(suite, data) -> None:
    _check(suite, data)


_mutation = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 10_000), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.integers(1, 8)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000), st.just(0)),
    st.tuples(st.just("append"), st.just(0), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("header"), st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)),
)


def _mutate(ct: bytes, mutations) -> bytes:
    buf = bytearray(ct)
    for kind, a, b in mutations:
        pos = a % (len(buf) + 1)
        if kind == "set" and buf:
            buf[pos % len(buf)] = b
        elif kind == "insert":
            buf[pos:pos] = b
        elif kind == "delete":
            del buf[pos : pos + b]
        elif kind == "truncate":
            del buf[pos:]
        elif kind == "append":
            buf += b
        elif kind == "header" and buf:
            try:
                hlen = sframe.decode_header(bytes(buf))[2]
            except sframe.MalformedHeaderError:
                hlen = 1
            buf[:hlen] = sframe.encode_header(a if a % 3 else KIDS[a % len(KIDS)], b)
    return bytes(buf)


@examples(300)
@given(
    suite=st.integers(1, 8),
    kid=st.sampled_from(KIDS),
    ctr=st.one_of(st.integers(0, 300), st.integers(0, 2**64 - 1)),
    pt=st.binary(max_size=64),
    mutations=st.lists(_mutation, min_size=0, max_size=4),
)
def test_fuzz_mutated_ciphertexts(suite, kid, ctr, pt, mutations) -> None:
    ct = _valid(suite, kid, ctr, pt)
    mutated = _mutate(ct, mutations)
    _check(suite, mutated)
    if mutated == ct:
        assert PAIRS[suite][0].decrypt(ct, META) == pt


@examples(60)
@given(suite=st.integers(1, 8), frames=st.lists(st.binary(max_size=60), max_size=12))
def test_fuzz_batches(suite, frames) -> None:
    """Batch decryption of garbage: BatchDecryptError or None entries, never a crash."""
    import numpy as np

    core, oracle = PAIRS[suite]
    results = core.decrypt_batch(frames, META, on_error="none")
    assert results == [o if isinstance(o, bytes) else None for o in (_outcome(oracle.decrypt, f, META) for f in frames)]
    data = np.frombuffer(b"".join(frames), np.uint8)
    offsets = np.cumsum([0] + [len(f) for f in frames], dtype=np.int64)
    out, out_offsets, status = core.decrypt_packed(data, offsets, META)
    assert [(s == sframe.STATUS_OK) for s in status] == [r is not None for r in results]


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris is not installed (optional)")
def test_atheris_coverage_guided_run(tmp_path) -> None:
    seconds = int(os.environ.get("ORANGE_FAST_FUZZ_SECONDS", "4"))
    corpus = tmp_path / "corpus"
    corpus.mkdir()  # the target seeds an empty corpus with valid ciphertexts of every suite
    env = dict(os.environ)
    # the fuzz target must import the same orange_fast as this test (the installed wheel in
    # CI, the source tree in development), not whatever src/ happens to hold
    pkg_parent = str(Path(sframe.__file__).resolve().parent.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_parent, env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run(
        [sys.executable, str(HERE / "sframe_fuzz_target.py"), f"-max_total_time={seconds}",
         "-rss_limit_mb=1024", "-timeout=10", f"-artifact_prefix={tmp_path}/", str(corpus)],
        capture_output=True, text=True, timeout=seconds + 120, env=env,
    )
    tail = proc.stderr[-3000:]
    assert proc.returncode == 0, f"fuzzer found a problem:\n{tail}"
    assert "Done" in tail or "DONE" in tail, tail
    assert len(list(corpus.iterdir())) >= 8 * 6, "the corpus was not seeded"
