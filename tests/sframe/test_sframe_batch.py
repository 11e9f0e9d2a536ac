"""Batch decryption error reporting (list and packed forms)."""

from __future__ import annotations

import numpy as np
import pytest

from orange_fast import sframe

BASE = b"batch-base-key-0"
META = b"meta"


def setup(suite=1):
    tx = sframe.Context(suite)
    tx.add_send_key(1, BASE)
    tx.add_send_key(2, BASE)
    rx = sframe.Context(suite, replay_window=64)
    rx.add_receive_key(1, BASE)  # KID 2 is unknown to the receiver
    return tx, rx


def mixed_batch(tx):
    """Frames and the error each must produce (None = decrypts)."""
    good = [tx.encrypt(1, bytes([i]) * (i * 10), META) for i in range(6)]
    tampered = bytearray(good[2])
    tampered[-1] ^= 4
    frames = [
        good[0],  # ok
        bytes(tampered),  # auth (counter 2 stays unused: good[2] later is fine)
        good[1],  # ok
        b"",  # malformed: empty
        tx.encrypt(2, b"other", META),  # unknown KID
        good[0],  # replay within the batch
        good[2],  # ok, after the forgery of the same counter
        good[3][:3],  # malformed: shorter than header + tag
        good[4],
    ]
    errors = {
        1: sframe.AuthenticationError,
        3: sframe.MalformedHeaderError,
        4: sframe.UnknownKeyError,
        5: sframe.ReplayError,
        7: sframe.MalformedHeaderError,
    }
    plain = {0: b"", 2: b"\x01" * 10, 6: b"\x02" * 20, 8: b"\x04" * 40}
    return frames, errors, plain


@pytest.mark.parametrize("suite", [1, 3, 4, 5, 8])
def test_decrypt_batch_raise_keeps_every_result(suite) -> None:
    tx, rx = setup(suite)
    frames, errors, plain = mixed_batch(tx)
    with pytest.raises(sframe.BatchDecryptError) as info:
        rx.decrypt_batch(frames, META)
    exc = info.value
    assert isinstance(exc, sframe.SFrameError)
    assert len(exc.results) == len(frames)
    assert {i: type(e) for i, e in exc.errors.items()} == errors
    for i in range(len(frames)):
        assert exc.results[i] == plain.get(i)
    # the accepted frames were really accepted (nothing lost, nothing accepted twice)
    for i in plain:
        with pytest.raises(sframe.ReplayError):
            rx.decrypt(frames[i], META)
    assert str(len(errors)) in str(exc)


def test_decrypt_batch_none() -> None:
    tx, rx = setup()
    frames, errors, plain = mixed_batch(tx)
    results = rx.decrypt_batch(frames, META, on_error="none")
    assert results == [plain.get(i) for i in range(len(frames))]
    assert all(results[i] is None for i in errors)


def test_decrypt_batch_per_frame_metadata_and_arguments() -> None:
    tx, rx = setup()
    metas = [b"a", b"bb", b""]
    cts = tx.encrypt_batch(1, [b"x", b"y", b"z"], metas)
    with pytest.raises(ValueError):
        rx.decrypt_batch(cts, metas[:2])
    with pytest.raises(ValueError):
        rx.decrypt_batch(cts, metas, on_error="ignore")
    with pytest.raises(TypeError):
        rx.decrypt_batch(b"not a list of frames")
    assert rx.decrypt_batch(cts, [b"a", b"bX", b""], on_error="none") == [b"x", None, b"z"]
    assert rx.decrypt(cts[1], b"bb") == b"y"  # the failure left counter 1 usable
    assert rx.decrypt_batch([]) == []
    assert rx.decrypt_batch((c for c in [tx.encrypt(1, b"gen")])) == [b"gen"]


def test_all_failures_and_all_successes() -> None:
    tx, rx = setup()
    with pytest.raises(sframe.BatchDecryptError) as info:
        rx.decrypt_batch([b"", b"\x00", b"\x10" * 3])
    assert info.value.results == [None, None, None]
    assert set(info.value.errors) == {0, 1, 2}
    cts = tx.encrypt_batch(1, [b"p"] * 50, META)
    assert rx.decrypt_batch(cts, META) == [b"p"] * 50


def test_packed_status_codes() -> None:
    tx, rx = setup(4)
    frames, errors, plain = mixed_batch(tx)
    data = np.frombuffer(b"".join(frames), dtype=np.uint8)
    offsets = np.cumsum([0] + [len(f) for f in frames], dtype=np.int64)
    out, out_offsets, status = rx.decrypt_packed(data, offsets, META)
    code = {
        sframe.AuthenticationError: sframe.STATUS_AUTH,
        sframe.MalformedHeaderError: sframe.STATUS_MALFORMED,
        sframe.UnknownKeyError: sframe.STATUS_UNKNOWN_KEY,
        sframe.ReplayError: sframe.STATUS_REPLAY,
    }
    assert len({sframe.STATUS_OK, *code.values()}) == 5
    assert list(status) == [code[errors[i]] if i in errors else sframe.STATUS_OK for i in range(len(frames))]
    for i in range(len(frames)):
        got = out[out_offsets[i] : out_offsets[i + 1]].tobytes()
        assert got == plain.get(i, b""), f"slot {i}"
    assert out_offsets[-1] == len(out) == sum(len(p) for p in plain.values())


def test_packed_rejects_bad_offsets_and_types() -> None:
    tx, rx = setup(4)
    ct = tx.encrypt(1, b"abc")
    data = np.frombuffer(ct, np.uint8)
    for offsets in ([0, len(ct) + 1], [1, 0], [-5, 3]):
        with pytest.raises(ValueError):
            rx.decrypt_packed(data, np.array(offsets, np.int64))
    with pytest.raises(TypeError):
        rx.decrypt_packed("text", np.array([0, 1], np.int64))
    with pytest.raises(TypeError):
        rx.decrypt_packed(np.zeros(8, np.uint8)[::2], np.array([0, 1], np.int64))
    out, offs, status = rx.decrypt_packed(data, [0, len(ct)])  # a plain list of offsets works
    assert out.tobytes() == b"abc" and list(status) == [sframe.STATUS_OK]


def test_packed_rejects_float_offsets() -> None:
    """A float offset is a caller bug; silently truncating it mis-splits the frames."""
    tx, rx = setup(4)
    with pytest.raises(TypeError):
        tx.encrypt_packed(1, np.zeros(2, np.uint8), np.array([0.0, 1.5, 2.0]))
    assert tx.next_counter(1) == 0
    ct = tx.encrypt(1, b"abc")
    with pytest.raises(TypeError):
        rx.decrypt_packed(np.frombuffer(ct, np.uint8), np.array([0.0, len(ct) - 0.5]))
    assert rx.decrypt(ct) == b"abc"
