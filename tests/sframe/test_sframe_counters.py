"""Send counters: start at 0 (or ``start_counter``), never reused, refused at exhaustion;
the last counter 2**64-1 is usable; batches are all-or-nothing."""

from __future__ import annotations

import numpy as np
import pytest

from orange_fast import sframe

U64 = 2**64 - 1
BASE = b"counter-test-base-key"


def ctr_of(ct: bytes) -> int:
    return sframe.decode_header(ct)[1]


def make(start=None, kid=3, suite=4) -> sframe.Context:
    ctx = sframe.Context(suite)
    ctx.add_send_key(kid, BASE, start_counter=start)
    return ctx


def assert_exhausted(ctx, kid=3) -> None:
    with pytest.raises(sframe.CounterExhaustedError):
        ctx.encrypt(kid, b"x")
    out = bytearray(64)
    with pytest.raises(sframe.CounterExhaustedError):
        ctx.encrypt_into(kid, b"x", out)
    assert out == bytearray(64)
    with pytest.raises(sframe.CounterExhaustedError):
        ctx.encrypt_batch(kid, [b"x"])
    with pytest.raises(sframe.CounterExhaustedError):
        ctx.encrypt_packed(kid, np.zeros(2, np.uint8), np.array([0, 1, 2], np.int64))
    with pytest.raises(sframe.CounterExhaustedError):
        ctx.next_counter(kid)


def test_counters_start_at_zero_and_increase() -> None:
    ctx = make()
    assert ctx.next_counter(3) == 0
    cts = [ctx.encrypt(3, b"a") for _ in range(10)]
    cts += ctx.encrypt_batch(3, [b"b"] * 5)
    out = bytearray(100)
    n = ctx.encrypt_into(3, b"c", out)
    cts.append(bytes(out[:n]))
    packed, offs = ctx.encrypt_packed(3, np.zeros(3, np.uint8), np.array([0, 1, 2, 3], np.int64))
    cts += [packed[offs[i] : offs[i + 1]].tobytes() for i in range(3)]
    assert [ctr_of(c) for c in cts] == list(range(19))
    assert ctx.next_counter(3) == 19


@pytest.mark.parametrize("suite", [1, 4, 5, 8])
def test_last_counter_usable_then_exhausted(suite) -> None:
    ctx = make(U64 - 2, suite=suite)
    rx = sframe.Context(suite)
    rx.add_receive_key(3, BASE)
    for expected in (U64 - 2, U64 - 1, U64):
        assert ctx.next_counter(3) == expected
        ct = ctx.encrypt(3, b"frame")
        assert ctr_of(ct) == expected
        assert rx.decrypt_with_kid(ct) == (3, expected, b"frame")
    assert_exhausted(ctx)
    assert_exhausted(ctx)  # stays exhausted


def test_start_at_max_counter() -> None:
    ctx = make(U64)
    assert ctr_of(ctx.encrypt(3, b"")) == U64
    assert_exhausted(ctx)
    ctx2 = make(U64)
    out = bytearray(40)
    n = ctx2.encrypt_into(3, b"", out)
    assert ctr_of(bytes(out[:n])) == U64
    assert_exhausted(ctx2)


def test_batch_crossing_the_end_is_all_or_nothing() -> None:
    ctx = make(U64 - 2)
    with pytest.raises(sframe.CounterExhaustedError):
        ctx.encrypt_batch(3, [b"x"] * 4)
    assert ctx.next_counter(3) == U64 - 2
    with pytest.raises(sframe.CounterExhaustedError):
        ctx.encrypt_packed(3, np.zeros(4, np.uint8), np.arange(5, dtype=np.int64))
    assert ctx.next_counter(3) == U64 - 2
    # several KIDs: KID 4 has room, KID 3 not; nothing is used on either
    ctx.add_send_key(4, BASE)
    with pytest.raises(sframe.CounterExhaustedError):
        ctx.encrypt_batch([4, 3, 3, 4, 3, 3], [b"y"] * 6)
    assert ctx.next_counter(3) == U64 - 2 and ctx.next_counter(4) == 0
    # exactly enough is fine and ends exhausted
    cts = ctx.encrypt_batch(3, [b"x"] * 3)
    assert [ctr_of(c) for c in cts] == [U64 - 2, U64 - 1, U64]
    assert_exhausted(ctx)
    assert ctx.encrypt_batch(3, []) == []  # an empty batch needs no counter


def test_batch_argument_errors_use_no_counter() -> None:
    ctx = make()
    ctx.encrypt(3, b"")
    with pytest.raises(ValueError):
        ctx.encrypt_batch([3, 3], [b"a", b"b", b"c"])
    with pytest.raises(ValueError):
        ctx.encrypt_batch(3, [b"a", b"b"], [b"m"])
    with pytest.raises(sframe.UnknownKeyError):
        ctx.encrypt_batch([3, 99], [b"a", b"b"])
    with pytest.raises(TypeError):
        ctx.encrypt_batch(3, [b"a", "b"])
    for offsets in ([0, 2, 1], [0, 5], [-1, 1], [], [[0, 1], [1, 2]]):
        with pytest.raises((ValueError, TypeError)):
            ctx.encrypt_packed(3, np.zeros(4, np.uint8), np.array(offsets, np.int64))
    assert ctx.next_counter(3) == 1


def test_readding_a_removed_send_kid_continues_its_counter() -> None:
    ctx = make()
    for _ in range(5):
        ctx.encrypt(3, b"x")
    ctx.remove_key(3)
    assert not ctx.has_key(3)
    with pytest.raises(sframe.UnknownKeyError):
        ctx.encrypt(3, b"x")
    ctx.add_send_key(3, b"a different base key")
    assert ctx.next_counter(3) == 5
    assert ctr_of(ctx.encrypt(3, b"x")) == 5
    ctx.remove_key(3)
    with pytest.raises(ValueError):
        ctx.add_send_key(3, BASE, start_counter=5)  # would reuse counter 5
    assert not ctx.has_key(3)
    ctx.add_send_key(3, BASE, start_counter=6)
    assert ctx.next_counter(3) == 6
    ctx.remove_key(3)
    ctx.add_send_key(3, BASE, start_counter=1000)
    assert ctr_of(ctx.encrypt(3, b"")) == 1000


def test_readding_an_exhausted_kid_stays_exhausted() -> None:
    ctx = make(U64)
    ctx.encrypt(3, b"")
    ctx.remove_key(3)
    ctx.add_send_key(3, BASE)
    assert_exhausted(ctx)
    ctx.remove_key(3)
    with pytest.raises(ValueError):
        ctx.add_send_key(3, BASE, start_counter=U64)


def test_receive_key_removal_does_not_touch_send_counters() -> None:
    ctx = make()
    ctx.encrypt(3, b"")
    ctx.add_receive_key(9, BASE)
    ctx.remove_key(9)
    assert ctx.next_counter(3) == 1


def test_failed_encrypt_uses_no_counter() -> None:
    ctx = make()
    with pytest.raises(TypeError):
        ctx.encrypt(3, "text")
    with pytest.raises(sframe.BufferTooSmallError):
        ctx.encrypt_into(3, b"abc", bytearray(3))
    with pytest.raises(ValueError):
        view = memoryview(bytearray(100))
        ctx.encrypt_into(3, view[:10], view[5:])
    assert ctx.next_counter(3) == 0
    assert ctr_of(ctx.encrypt(3, b"")) == 0
