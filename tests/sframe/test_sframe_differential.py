"""Hypothesis differential tests: the compiled core against the pure-Python reference.

Encryption is deterministic given (suite, KID, base key, counter, metadata, frame), so
the two implementations must produce identical bytes; each must also decrypt what the
other produced.  Covers the single call, ``*_into``, list batches and the packed form.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sframe_support import U64, base_keys, counters, examples, frames, kids, metadatas, small_frames, suites

from orange_fast import sframe
from orange_fast.sframe import reference as ref


def _pair(suite, kid, base_key, start):
    core, oracle = sframe.Context(suite), ref.Context(suite)
    core.add_send_key(kid, base_key, start_counter=start)
    oracle.add_send_key(kid, base_key, start_counter=start)
    return core, oracle


def _receivers(suite, kid, base_key, window=128):
    core, oracle = sframe.Context(suite, replay_window=window), ref.Context(suite, replay_window=window)
    core.add_receive_key(kid, base_key)
    oracle.add_receive_key(kid, base_key)
    return core, oracle


@examples(120)
@given(suite=suites, kid=kids, ctr=counters, base_key=base_keys, meta=metadatas, frame=frames)
def test_single_frame_matches_reference(suite, kid, ctr, base_key, meta, frame) -> None:
    core, oracle = _pair(suite, kid, base_key, ctr)
    ct = core.encrypt(kid, frame, meta)
    assert ct == oracle.encrypt(kid, frame, meta)
    assert len(ct) == len(sframe.encode_header(kid, ctr)) + len(frame) + suite.Nt
    assert sframe.decode_header(ct) == (kid, ctr, len(ref.encode_header(kid, ctr)))
    rc, ro = _receivers(suite, kid, base_key)
    # core -> reference and reference -> core (the bytes are equal, so use a second frame too)
    assert ro.decrypt_with_kid(ct, meta) == (kid, ctr, frame)
    assert rc.decrypt_with_kid(ct, meta) == (kid, ctr, frame)
    if ctr < U64:
        ct2 = oracle.encrypt(kid, frame[::-1], meta)
        assert rc.decrypt(ct2, meta) == frame[::-1]
        assert core.encrypt(kid, frame[::-1], meta) == ct2
        assert ro.decrypt(ct2, meta) == frame[::-1]


@examples(60)
@given(
    suite=suites, kid=kids, ctr=counters, base_key=base_keys, meta=metadatas, frame=small_frames,
    out_kind=st.sampled_from(["bytearray", "numpy", "memoryview"]), slack=st.integers(0, 40),
)
def test_into_forms_match_reference(suite, kid, ctr, base_key, meta, frame, out_kind, slack) -> None:
    core, oracle = _pair(suite, kid, base_key, ctr)
    expected = oracle.encrypt(kid, frame, meta)
    size = core.ciphertext_size(kid, len(frame))
    assert size == len(expected) <= core.max_ciphertext_size(len(frame))

    def make(n):
        if out_kind == "numpy":
            return np.zeros(n, dtype=np.uint8)
        if out_kind == "memoryview":
            return memoryview(bytearray(n))
        return bytearray(n)

    out = make(size + slack)
    assert core.encrypt_into(kid, frame, out, meta) == size
    assert bytes(out[:size]) == expected
    rc, _ = _receivers(suite, kid, base_key)
    assert rc.plaintext_size(expected) == len(frame)
    pt_out = make(len(frame) + slack)
    assert rc.decrypt_into(np.frombuffer(expected, dtype=np.uint8), pt_out, meta) == len(frame)
    assert bytes(pt_out[: len(frame)]) == frame


@examples(60)
@given(
    suite=suites, kid=kids, ctr=counters, base_key=base_keys,
    meta=metadatas, batch=st.lists(small_frames, max_size=20),
)
def test_list_batch_matches_reference(suite, kid, ctr, base_key, meta, batch) -> None:
    core, oracle = _pair(suite, kid, base_key, ctr)
    if batch and ctr + len(batch) - 1 > U64:
        for impl in (core, oracle):
            with pytest.raises(sframe.CounterExhaustedError):
                impl.encrypt_batch(kid, batch, meta)
        assert core.next_counter(kid) == ctr  # nothing used
        return
    cts = core.encrypt_batch(kid, batch, meta)
    assert cts == oracle.encrypt_batch(kid, batch, meta)
    assert [sframe.decode_header(c)[1] for c in cts] == list(range(ctr, ctr + len(batch)))
    rc, ro = _receivers(suite, kid, base_key, window=64)
    assert rc.decrypt_batch(cts, meta) == batch
    assert [ro.decrypt(c, meta) for c in cts] == batch


@examples(40)
@given(
    suite=suites, kids_=st.lists(kids, min_size=1, max_size=4, unique=True), base_key=base_keys,
    data=st.data(),
)
def test_list_batch_several_kids_and_metadata(suite, kids_, base_key, data) -> None:
    n = data.draw(st.integers(0, 12))
    per_kid = data.draw(st.lists(st.sampled_from(kids_), min_size=n, max_size=n))
    batch = data.draw(st.lists(small_frames, min_size=n, max_size=n))
    metas = data.draw(st.lists(metadatas, min_size=n, max_size=n))
    core, oracle = sframe.Context(suite), ref.Context(suite)
    rc, ro = sframe.Context(suite), ref.Context(suite)
    for k in kids_:
        core.add_send_key(k, base_key + k.to_bytes(8, "big"))
        oracle.add_send_key(k, base_key + k.to_bytes(8, "big"))
        rc.add_receive_key(k, base_key + k.to_bytes(8, "big"))
        ro.add_receive_key(k, base_key + k.to_bytes(8, "big"))
    cts = core.encrypt_batch(per_kid, batch, metas)
    assert cts == [oracle.encrypt(k, f, m) for k, f, m in zip(per_kid, batch, metas)]
    assert rc.decrypt_batch(cts, metas) == batch
    assert [ro.decrypt(c, m) for c, m in zip(cts, metas)] == batch


@examples(40)
@given(
    suite=suites, kid=kids, ctr=st.integers(0, 2**40), base_key=base_keys, meta=metadatas,
    batch=st.lists(small_frames, max_size=16),
    shift=st.integers(0, 7),
)
def test_packed_matches_reference(suite, kid, ctr, base_key, meta, batch, shift) -> None:
    core, oracle = _pair(suite, kid, base_key, ctr)
    # pack with a leading gap to check that offsets (not the array start) are honoured
    blob = bytes(shift) + b"".join(batch)
    data = np.frombuffer(blob, dtype=np.uint8)
    offsets = np.cumsum([shift] + [len(f) for f in batch], dtype=np.int64)
    out, out_offsets = core.encrypt_packed(kid, data, offsets, meta)
    expected = [oracle.encrypt(kid, f, meta) for f in batch]
    assert out_offsets.dtype == np.int64 and out.dtype == np.uint8
    assert list(out_offsets) == list(np.cumsum([0] + [len(c) for c in expected]))
    assert out.tobytes() == b"".join(expected)
    rc, ro = _receivers(suite, kid, base_key)
    pt, pt_offsets, status = rc.decrypt_packed(out, out_offsets, meta)
    assert list(status) == [sframe.STATUS_OK] * len(batch)
    assert [pt[pt_offsets[i] : pt_offsets[i + 1]].tobytes() for i in range(len(batch))] == batch
    # reference -> core packed
    rc2, _ = _receivers(suite, kid, base_key)
    more = [oracle.encrypt(kid, f, meta) for f in batch]
    packed = np.frombuffer(b"".join(more), dtype=np.uint8)
    offs = np.cumsum([0] + [len(c) for c in more], dtype=np.int64)
    pt2, pt2_offsets, status2 = rc2.decrypt_packed(packed, offs, meta)
    assert list(status2) == [sframe.STATUS_OK] * len(batch)
    assert pt2.tobytes() == b"".join(batch)


@examples(3)
@given(suite=suites, kid=kids, base_key=base_keys, meta=metadatas)
def test_megabyte_frames(suite, kid, base_key, meta) -> None:
    """A few 1 MiB frames (both directions) beyond what the random strategy usually draws."""
    import random

    frame = random.Random(kid).randbytes(2**20)
    core, oracle = _pair(suite, kid, base_key, 0)
    ct = core.encrypt(kid, frame, meta)
    assert ct == oracle.encrypt(kid, frame, meta)
    rc, ro = _receivers(suite, kid, base_key)
    assert ro.decrypt(ct, meta) == frame
    assert rc.decrypt(ct, meta) == frame



_STATUS = {
    sframe.MalformedHeaderError: sframe.STATUS_MALFORMED,
    sframe.UnknownKeyError: sframe.STATUS_UNKNOWN_KEY,
    sframe.AuthenticationError: sframe.STATUS_AUTH,
    sframe.ReplayError: sframe.STATUS_REPLAY,
}


@examples(60)
@given(
    suite=suites, window=st.sampled_from([0, 1, 3, 64, 70]), data=st.data(),
    picks=st.lists(st.tuples(st.integers(0, 30), st.sampled_from(["ok", "flip", "cut", "kid"])), max_size=30),
)
def test_batches_equal_sequential_reference(suite, window, data, picks) -> None:
    """decrypt_batch / decrypt_packed == the reference decrypting the same frames one by one."""
    base = b"batch-diff"
    tx = ref.Context(suite)
    tx.add_send_key(5, base, start_counter=data.draw(st.integers(0, 2**40), label="start"))
    tx.add_send_key(6, base)
    pool = [tx.encrypt(5, bytes([i]) * i) for i in range(31)]
    stray = tx.encrypt(6, b"kid 6 has no receive key")
    frames = []
    for i, how in picks:
        ct = pool[i]
        if how == "flip":
            ct = ct[:-1] + bytes([ct[-1] ^ 0x40])
        elif how == "cut":
            ct = ct[: len(ct) // 2]
        elif how == "kid":
            ct = stray
        frames.append(ct)
    expected = []
    oracle = ref.Context(suite, replay_window=window)
    oracle.add_receive_key(5, base)
    for ct in frames:
        try:
            expected.append(oracle.decrypt(ct))
        except sframe.SFrameError as exc:
            expected.append(type(exc))
    core = sframe.Context(suite, replay_window=window)
    core.add_receive_key(5, base)
    assert core.decrypt_batch(frames, on_error="none") == [e if isinstance(e, bytes) else None for e in expected]
    packed_rx = sframe.Context(suite, replay_window=window)
    packed_rx.add_receive_key(5, base)
    blob = np.frombuffer(b"".join(frames), np.uint8)
    offs = np.cumsum([0] + [len(f) for f in frames], dtype=np.int64)
    out, out_offs, status = packed_rx.decrypt_packed(blob, offs)
    assert list(status) == [sframe.STATUS_OK if isinstance(e, bytes) else _STATUS[e] for e in expected]
    assert [out[out_offs[i] : out_offs[i + 1]].tobytes() for i in range(len(frames))] == [
        e if isinstance(e, bytes) else b"" for e in expected
    ]
    raise_rx = sframe.Context(suite, replay_window=window)
    raise_rx.add_receive_key(5, base)
    if all(isinstance(e, bytes) for e in expected):
        assert raise_rx.decrypt_batch(frames) == expected
    else:
        with pytest.raises(sframe.BatchDecryptError) as info:
            raise_rx.decrypt_batch(frames)
        assert {i: type(e) for i, e in info.value.errors.items()} == {
            i: e for i, e in enumerate(expected) if not isinstance(e, bytes)
        }
