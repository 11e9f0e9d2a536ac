"""The packed calls writing into a caller's reusable output array (``out=``)."""

from __future__ import annotations

import numpy as np
import pytest

from orange_fast.sframe import BufferTooSmallError, Context, STATUS_AUTH, STATUS_OK
from orange_fast.sframe.reference import Context as RefContext

KEY = b"packed-out-key!!"


def _packed(frames: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    offs = np.zeros(len(frames) + 1, dtype=np.int64)
    np.cumsum([len(f) for f in frames], out=offs[1:])
    return np.frombuffer(b"".join(frames) or b"\0", dtype=np.uint8)[: offs[-1]].copy(), offs


@pytest.mark.parametrize("suite", [1, 4, 5, 8])
def test_encrypt_into_reused_array_matches_reference(suite: int) -> None:
    frames = [bytes([i]) * (i * 7) for i in range(12)]
    data, offs = _packed(frames)
    tx = Context(suite)
    tx.add_send_key(9, KEY)
    ref = RefContext(suite)
    ref.add_receive_key(9, KEY)
    out = np.zeros(4096, dtype=np.uint8)
    for _ in range(3):  # the same array, reused
        ct, ct_offs = tx.encrypt_packed(9, data, offs, out=out)
        assert np.shares_memory(ct, out)
        for i, frame in enumerate(frames):
            assert ref.decrypt(bytes(ct[ct_offs[i] : ct_offs[i + 1]])) == frame


def test_encrypt_out_too_small_uses_no_counter() -> None:
    frames = [b"a" * 100, b"b" * 50]
    data, offs = _packed(frames)
    tx = Context(4)
    tx.add_send_key(9, KEY)
    need = sum(1 + len(f) + 16 for f in frames)  # KID 9 and counters 0, 1: 2-byte headers
    with pytest.raises(BufferTooSmallError):
        tx.encrypt_packed(9, data, offs, out=bytearray(need))
    assert tx.next_counter(9) == 0
    ct, _ = tx.encrypt_packed(9, data, offs, out=bytearray(need + 2))
    assert len(ct) == need + 2
    assert tx.next_counter(9) == 2


def test_decrypt_into_reused_array_and_failed_slots() -> None:
    frames = [b"x" * 30, b"y" * 40, b"z" * 50]
    data, offs = _packed(frames)
    tx = Context(4)
    tx.add_send_key(9, KEY)
    rx = Context(4)
    rx.add_receive_key(9, KEY)
    ct, ct_offs = tx.encrypt_packed(9, data, offs)
    ct = ct.copy()
    ct[ct_offs[1] + 5] ^= 0x01  # corrupt frame 1
    out = np.full(200, 0xAA, dtype=np.uint8)
    pt, pt_offs, status = rx.decrypt_packed(ct, ct_offs, out=out)
    assert list(status) == [STATUS_OK, STATUS_AUTH, STATUS_OK]
    assert bytes(pt[pt_offs[0] : pt_offs[1]]) == frames[0]
    assert pt_offs[1] == pt_offs[2]  # the failed frame's slot is empty
    assert bytes(pt[pt_offs[2] : pt_offs[3]]) == frames[2]
    assert b"y" * 40 not in out.tobytes()


def test_decrypt_out_too_small_changes_no_state() -> None:
    frames = [b"q" * 64]
    data, offs = _packed(frames)
    tx = Context(4)
    tx.add_send_key(9, KEY)
    rx = Context(4)
    rx.add_receive_key(9, KEY)
    ct, ct_offs = tx.encrypt_packed(9, data, offs)
    with pytest.raises(BufferTooSmallError):
        rx.decrypt_packed(ct, ct_offs, out=bytearray(63))
    _, _, status = rx.decrypt_packed(ct, ct_offs, out=bytearray(64))
    assert list(status) == [STATUS_OK]  # the window did not move on the refused call


def test_out_overlapping_input_or_readonly_is_refused() -> None:
    arena = np.zeros(1000, dtype=np.uint8)
    arena[:100] = 7
    offs = np.array([0, 100], dtype=np.int64)
    tx = Context(4)
    tx.add_send_key(9, KEY)
    with pytest.raises(ValueError):
        tx.encrypt_packed(9, arena[:100], offs, out=arena[50:])
    with pytest.raises(TypeError):
        tx.encrypt_packed(9, arena[:100], offs, out=bytes(500))
    assert tx.next_counter(9) == 0
