"""Replay window: a window of W counters ending at the highest accepted one, checked
before decryption and advanced only after the tag verifies (RFC 9605 §7.3 / RFC 3711).

Expected outcomes are computed by hand or by the pure-Python reference window.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sframe_support import U64, examples, suites

from orange_fast import sframe
from orange_fast.sframe import reference as ref

BASE = b"replay-window-base-key"
KID = 0x77


class FrameFactory:
    """Valid (and forged) frames for any counter of one KID, made by the reference."""

    def __init__(self, suite=sframe.CipherSuite.AES_128_GCM_SHA256_128, kid=KID, base=BASE):
        self.suite, self.kid = sframe.CipherSuite(suite), kid
        self.key, self.salt = ref.derive_key_salt(self.suite, kid, base)

    def frame(self, ctr: int, pt: bytes = b"media", meta: bytes = b"") -> bytes:
        hdr = ref.encode_header(self.kid, ctr)
        return hdr + ref.aead_seal(self.suite, self.key, ref.make_nonce(self.salt, ctr), hdr + meta, pt)

    def forged(self, ctr: int) -> bytes:
        good = bytearray(self.frame(ctr))
        good[-1] ^= 0x01
        return bytes(good)


def receiver(window: int, suite=4) -> sframe.Context:
    ctx = sframe.Context(suite, replay_window=window)
    ctx.add_receive_key(KID, BASE)
    return ctx


def accepts(ctx, data) -> bool:
    try:
        ctx.decrypt(data)
    except sframe.ReplayError:
        return False
    return True


WINDOWS = [1, 2, 3, 63, 64, 65, 100, 127, 128, 129, 200, 1000]


@pytest.mark.parametrize("w", WINDOWS)
def test_window_edges(w) -> None:
    f = FrameFactory()
    top = 5 * w + 17
    ctx = receiver(w)
    assert ctx.decrypt(f.frame(top)) == b"media"
    with pytest.raises(sframe.ReplayError):
        ctx.decrypt(f.frame(top))  # the top itself is a replay
    with pytest.raises(sframe.ReplayError):
        ctx.decrypt(f.frame(top - w))  # exactly W below the top: too old
    with pytest.raises(sframe.ReplayError):
        ctx.decrypt(f.frame(0))
    if w > 1:
        assert ctx.decrypt(f.frame(top - (w - 1))) == b"media"  # exactly W-1 below: inside
        with pytest.raises(sframe.ReplayError):
            ctx.decrypt(f.frame(top - (w - 1)))
    # every other counter of the window is accepted once, in any order
    inside = [top - d for d in range(1, w - 1)]
    for ctr in inside[::-1]:
        assert accepts(ctx, f.frame(ctr))
    for ctr in inside:
        assert not accepts(ctx, f.frame(ctr))
    assert ctx.decrypt(f.frame(top + 1)) == b"media"


@pytest.mark.parametrize("w", WINDOWS)
@pytest.mark.parametrize("jump_in_windows", [1, 2, 3, 50])
def test_jump_larger_than_ring_clears_stale_bits(w, jump_in_windows) -> None:
    """Fill the whole window, then jump ahead by a multiple of W (+ offsets): counters
    that share ring slots with the old ones must not be reported as replays."""
    f = FrameFactory()
    ctx = receiver(w)
    for ctr in range(w):
        assert accepts(ctx, f.frame(ctr))
    for offset in (0, 1, w - 1):
        ctx2 = receiver(w)
        for ctr in range(w):
            ctx2.decrypt(f.frame(ctr))
        top = (w - 1) + jump_in_windows * w + offset
        assert accepts(ctx2, f.frame(top))
        for ctr in range(top - w + 1, top):
            assert accepts(ctx2, f.frame(ctr)), f"counter {ctr} wrongly rejected after jump to {top}"
        for ctr in range(max(0, top - 2 * w), top - w + 1):
            assert not accepts(ctx2, f.frame(ctr))


def test_window_zero_disables_replay_protection() -> None:
    f = FrameFactory()
    ctx = receiver(0)
    assert ctx.replay_window == 0
    frame = f.frame(10)
    for _ in range(3):
        assert ctx.decrypt(frame) == b"media"
    assert ctx.decrypt(f.frame(2**40)) == b"media"
    assert ctx.decrypt(f.frame(0)) == b"media"
    assert ctx.decrypt(frame) == b"media"


def test_replay_checked_before_decryption_and_forgeries_do_not_advance() -> None:
    f = FrameFactory()
    ctx = receiver(16)
    assert ctx.decrypt(f.frame(100)) == b"media"
    # a forged frame with a replayed / too-old counter is a ReplayError (checked first)
    with pytest.raises(sframe.ReplayError):
        ctx.decrypt(f.forged(100))
    with pytest.raises(sframe.ReplayError):
        ctx.decrypt(f.forged(50))
    # forged frames far ahead must not move the window
    for ctr in (101, 1000, 2**63, U64):
        with pytest.raises(sframe.AuthenticationError):
            ctx.decrypt(f.forged(ctr))
    assert ctx.decrypt(f.frame(90)) == b"media"  # still inside [85, 100]
    # and a forged frame must not mark its counter as seen
    with pytest.raises(sframe.AuthenticationError):
        ctx.decrypt(f.forged(95))
    assert ctx.decrypt(f.frame(95)) == b"media"
    assert ctx.decrypt(f.frame(U64)) == b"media"  # the largest counter is usable
    with pytest.raises(sframe.ReplayError):
        ctx.decrypt(f.frame(U64))
    with pytest.raises(sframe.ReplayError):
        ctx.decrypt(f.frame(101))


def test_windows_are_per_kid_and_reset_by_new_key() -> None:
    a, b = FrameFactory(kid=1), FrameFactory(kid=2)
    ctx = sframe.Context(4, replay_window=8)
    ctx.add_receive_key(1, BASE)
    ctx.add_receive_key(2, BASE)
    assert ctx.decrypt(a.frame(1000)) == b"media"
    assert ctx.decrypt(b.frame(3)) == b"media"  # KID 2 is unaffected by KID 1's top
    with pytest.raises(sframe.ReplayError):
        ctx.decrypt(a.frame(3))
    # replacing a receive key starts a fresh window (a new key restarts its sender)
    ctx.add_receive_key(1, BASE)
    assert ctx.decrypt(a.frame(3)) == b"media"
    ctx.remove_key(2)
    ctx.add_receive_key(2, BASE)
    assert ctx.decrypt(b.frame(3)) == b"media"


def test_failed_decrypt_into_keeps_window() -> None:
    f = FrameFactory()
    ctx = receiver(32)
    small = bytearray(2)
    with pytest.raises(sframe.BufferTooSmallError):
        ctx.decrypt_into(f.frame(7), small)
    assert small == bytearray(2)
    out = bytearray(5)
    assert ctx.decrypt_into(f.frame(7), out) == 5 and out == b"media"


_event = st.tuples(st.integers(0, 400), st.booleans())


@examples(80)
@given(
    suite=suites,
    window=st.sampled_from([0, 1, 2, 5, 63, 64, 65, 128, 130]),
    base=st.one_of(st.integers(0, 300), st.integers(0, U64 - 400), st.integers(U64 - 800, U64 - 400)),
    events=st.lists(_event, max_size=60),
)
def test_window_matches_reference(suite, window, base, events) -> None:
    """Random arrival orders with duplicates and forgeries: core == reference, step by step."""
    f = FrameFactory(suite)
    core = sframe.Context(suite, replay_window=window)
    oracle = ref.Context(suite, replay_window=window)
    core.add_receive_key(KID, BASE)
    oracle.add_receive_key(KID, BASE)
    for offset, forged in events:
        ctr = base + offset
        data = f.forged(ctr) if forged else f.frame(ctr)
        outcomes = []
        for impl in (core, oracle):
            try:
                outcomes.append(impl.decrypt(data))
            except sframe.SFrameError as exc:
                outcomes.append(type(exc))
        assert outcomes[0] == outcomes[1], f"counter {ctr} forged={forged}: core {outcomes[0]} reference {outcomes[1]}"


@pytest.mark.parametrize("w", [2**20 - 1, 2**20])
def test_largest_windows(w) -> None:
    f = FrameFactory()
    ctx = receiver(w)
    top = U64 - 3
    assert accepts(ctx, f.frame(top))
    assert accepts(ctx, f.frame(top - (w - 1)))
    assert not accepts(ctx, f.frame(top - w))
    assert accepts(ctx, f.frame(top - w // 2))
    assert not accepts(ctx, f.frame(top - w // 2))
    assert accepts(ctx, f.frame(U64))
    # the window moved by 3: top - (w - 1) is now too old, top - (w - 4) still inside
    assert not accepts(ctx, f.frame(top - (w - 1) + 2))
    assert accepts(ctx, f.frame(top - (w - 1) + 3))
