"""Epoch transitions in the receive hook: hold, no gap, bounds, removed member, sender binding.

These drive :class:`ReceiverProtection.unprotect` directly (the decoder thread's call) with
frames a real sender context encrypted, from real threads; no network.
"""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("aiortc", reason="aiortc is not installed (pip install 'aiortc>=1.16,<1.17')")
pytest.importorskip("orange_fast.sframe._core", reason="SFrame core not built")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from orange_fast.rtc import NoFrameKeys, StaticFrameKeys  # noqa: E402
from orange_fast.rtc.framing import transform_for  # noqa: E402
from orange_fast.rtc.receiver import FrameDropped, ReceiverProtection  # noqa: E402
from orange_fast.rtc.transition import HoldState, TransitionPolicy  # noqa: E402

pytestmark = pytest.mark.timeout(120)

SECRET = bytes(range(32))
MIME = "audio/opus"  # a codec without framing rules beyond SFrame: the frame is the payload


class _Receiver:
    _RTCRtpReceiver__kind = "audio"


def _hook(keys: object, **policy: object) -> ReceiverProtection:
    return ReceiverProtection(_Receiver(), keys, transitions=TransitionPolicy(**policy))  # type: ignore[arg-type]


def _protect(keys: StaticFrameKeys, payload: bytes) -> bytes:
    kid = keys.send_kid()
    assert kid is not None
    return transform_for(MIME).protect(keys.context, kid, payload)


def _decrypt_all(hook: ReceiverProtection, wires: list[bytes]) -> list[bytes | str]:
    out: list[bytes | str] = []
    for wire in wires:
        try:
            out.append(hook.unprotect(MIME, wire))
        except FrameDropped as exc:
            out.append(exc.reason)
    return out


def test_frames_of_an_epoch_not_reached_are_held_then_decrypted_in_order() -> None:
    """The sender switches first; the receiver installs the epoch 150 ms later: no frame lost."""
    sender = StaticFrameKeys(0, 3, SECRET)
    receiver = StaticFrameKeys(1, 3, SECRET)
    hook = _hook(receiver, hold_time=2.0)
    wires = [_protect(sender, b"old %d" % i) for i in range(5)]
    sender.advance_epoch(1)
    wires += [_protect(sender, b"new %d" % i) for i in range(5)]
    timer = threading.Timer(0.15, receiver.advance_epoch, args=(1,))
    timer.start()
    try:
        out = _decrypt_all(hook, wires)
    finally:
        timer.join()
    assert out == [b"old %d" % i for i in range(5)] + [b"new %d" % i for i in range(5)]
    stats = hook.stats.snapshot()
    assert stats["dropped"] == {}
    assert stats["held"] == 1  # only the first new-epoch frame waited; the rest found the key
    assert stats["hold_ms"][0] >= 100.0


def test_hold_times_out_once_then_drops_at_once() -> None:
    """A key that never comes (a fork, or we were removed): one bounded wait, then immediate drops."""
    sender = StaticFrameKeys(0, 3, SECRET)
    receiver = StaticFrameKeys(1, 3, SECRET)
    hook = _hook(receiver, hold_time=0.2)
    sender.advance_epoch(1)
    wires = [_protect(sender, b"f%d" % i) for i in range(20)]
    t0 = time.monotonic()
    out = _decrypt_all(hook, wires)
    elapsed = time.monotonic() - t0
    assert out == ["hold_timeout"] + ["unknown_key"] * 19
    assert elapsed >= 0.2
    # after a key change the receiver holds again (bounded per key change)
    receiver.advance_epoch(1)
    assert _decrypt_all(hook, [_protect(sender, b"late")]) == [b"late"]


def test_removed_member_decrypts_nothing_sent_after_its_removal() -> None:
    sender = StaticFrameKeys(0, 3, SECRET)
    removed = StaticFrameKeys(2, 3, SECRET)
    hook = _hook(removed, hold_time=0.3)
    before = [_protect(sender, b"before %d" % i) for i in range(3)]
    sender.advance_epoch(1, members={0, 1})  # the commit removing member 2
    after = [_protect(sender, b"after %d" % i) for i in range(10)]
    # (the static keys stand in for MLS: a removed member never gets the new epoch's secret)
    out = _decrypt_all(hook, before + after)
    assert out[:3] == [b"before %d" % i for i in range(3)]
    assert all(isinstance(r, str) for r in out[3:])
    assert hook.stats.snapshot()["decrypted"] == 3


def test_bytes_queued_behind_a_held_frame_end_the_hold() -> None:
    sender = StaticFrameKeys(0, 2, SECRET)
    receiver = StaticFrameKeys(1, 2, SECRET)
    hook = _hook(receiver, hold_time=30.0, hold_bytes=1000)
    sender.advance_epoch(1)
    wire = _protect(sender, b"x" * 100)
    threading.Timer(0.1, hook.hold.queued, args=(5000,)).start()  # the decoder queue fills up
    t0 = time.monotonic()
    assert _decrypt_all(hook, [wire]) == ["hold_overflow"]
    assert time.monotonic() - t0 < 10


def test_stopping_the_receiver_ends_a_hold() -> None:
    sender = StaticFrameKeys(0, 2, SECRET)
    hook = _hook(StaticFrameKeys(1, 2, SECRET), hold_time=30.0)
    sender.advance_epoch(1)
    threading.Timer(0.1, hook.hold.stop).start()
    t0 = time.monotonic()
    assert _decrypt_all(hook, [_protect(sender, b"x")]) == ["unknown_key"]
    assert time.monotonic() - t0 < 10
    assert _decrypt_all(hook, [_protect(sender, b"y")]) == ["unknown_key"]  # no hold after a stop


def test_a_keyless_receiver_holds_nothing() -> None:
    hook = _hook(NoFrameKeys(), hold_time=30.0)
    t0 = time.monotonic()
    assert _decrypt_all(hook, [_protect(StaticFrameKeys(0, 2, SECRET), b"x")]) == ["unknown_key"]
    assert time.monotonic() - t0 < 10 and hook.stats.snapshot()["held"] == 0


def test_legacy_policy_drops_at_once() -> None:
    sender = StaticFrameKeys(0, 2, SECRET)
    receiver = StaticFrameKeys(1, 2, SECRET)
    hook = ReceiverProtection(_Receiver(), receiver, transitions=TransitionPolicy.legacy())  # type: ignore[arg-type]
    sender.advance_epoch(1)
    assert _decrypt_all(hook, [_protect(sender, b"x")]) == ["unknown_key"]


@pytest.mark.parametrize(
    "kwargs", [{"hold_time": -1}, {"hold_time": 61}, {"hold_bytes": -1}, {"keyframes": "never"}, {"hold_time": True}]
)
def test_policy_rejects_bad_values(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        TransitionPolicy(**kwargs)


# --------------------------------------------------------------------------- binding (issue 9, finding 5)


def test_sfu_swap_of_another_members_frames_is_dropped() -> None:
    """An SFU moves member 0's authenticated frames into member 1's track: the bound receiver drops them."""
    alice = StaticFrameKeys(0, 3, SECRET)
    bob = StaticFrameKeys(1, 3, SECRET)
    carol = StaticFrameKeys(2, 3, SECRET)
    track_of_bob = _hook(carol)
    track_of_bob.bind_sender(1)
    assert track_of_bob.expected_sender == 1
    swapped = [_protect(alice, b"alice %d" % i) for i in range(3)]
    genuine = [_protect(bob, b"bob %d" % i) for i in range(3)]
    out = _decrypt_all(track_of_bob, swapped + genuine)
    assert out == ["wrong_sender"] * 3 + [b"bob %d" % i for i in range(3)]
    stats = track_of_bob.stats.snapshot()
    assert stats["dropped"] == {"wrong_sender": 3} and stats["bound_sender"] == 1
    assert stats["decrypted"] == 3
    # unbound, the same swapped frames decrypt (what the finding reported)
    unbound = _hook(StaticFrameKeys(2, 3, SECRET))
    assert _decrypt_all(unbound, [_protect(alice, b"a")]) == [b"a"]


def test_binding_survives_epoch_changes_and_rejects_bad_arguments() -> None:
    alice, carol = StaticFrameKeys(0, 3, SECRET), StaticFrameKeys(2, 3, SECRET)
    hook = _hook(carol)
    hook.bind_sender(0)
    alice.advance_epoch(1)
    carol.advance_epoch(1)
    assert _decrypt_all(hook, [_protect(alice, b"e1")]) == [b"e1"]
    for bad in (-1, "0", True, 1.0):
        with pytest.raises(TypeError):
            hook.bind_sender(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _hook(NoFrameKeys()).bind_sender(0)  # cannot name a KID's sender
    hook.bind_sender(None)
    assert hook.expected_sender is None


# --------------------------------------------------------------------------- property: any delay below the bound


@settings(max_examples=25, deadline=None)
@given(
    delays=st.lists(st.floats(min_value=0.0, max_value=0.05), min_size=1, max_size=3),
    per_epoch=st.integers(min_value=1, max_value=4),
)
def test_no_frame_lost_for_any_receiver_delay_below_the_hold(delays: list[float], per_epoch: int) -> None:
    """Sender and receiver go through the same epochs; the receiver installs each one ``delay`` later."""
    sender = StaticFrameKeys(0, 2, SECRET, epoch_bits=2)
    receiver = StaticFrameKeys(1, 2, SECRET, epoch_bits=2)
    hook = _hook(receiver, hold_time=2.0)
    expected: list[bytes | str] = []
    for epoch, delay in enumerate(delays, start=1):
        sender.advance_epoch(epoch)
        wires = []
        for i in range(per_epoch):
            payload = b"%d/%d" % (epoch, i)
            wires.append(_protect(sender, payload))
            expected.append(payload)
        timer = threading.Timer(delay, receiver.advance_epoch, args=(epoch,))
        timer.start()
        got = _decrypt_all(hook, wires)
        timer.join()
        assert got == expected[-per_epoch:]
    assert hook.stats.snapshot()["dropped"] == {}


def test_hold_state_queue_accounting() -> None:
    state = HoldState(TransitionPolicy())
    state.queued(10)
    state.consumed(25)  # never negative
    state.queued(5)
    assert state.should_hold(0)
    assert not HoldState(TransitionPolicy.legacy()).should_hold(0)


def test_frames_of_an_earlier_epoch_are_not_held() -> None:
    """A joiner (first epoch 1) gets frames a slow sender still sends under epoch 0: never
    decryptable, so they are dropped at once instead of stalling the track."""
    sender = StaticFrameKeys(0, 3, SECRET)
    joiner = StaticFrameKeys(2, 3, SECRET, epoch=1)
    hook = _hook(joiner, hold_time=30.0)
    t0 = time.monotonic()
    assert _decrypt_all(hook, [_protect(sender, b"pre-join %d" % i) for i in range(3)]) == ["unknown_key"] * 3
    assert time.monotonic() - t0 < 10
    sender.advance_epoch(1)
    assert _decrypt_all(hook, [_protect(sender, b"joined")]) == [b"joined"]
    assert hook.stats.snapshot()["held"] == 0


@pytest.mark.parametrize(
    "mime, opts, frame",
    [
        ("video/vp8", {}, b"\x10\x02\x00" + bytes(40)),
        ("video/vp8", {"vp8_clear_header": True}, b"\x10\x02\x00" + bytes(40)),
        ("video/h264", {}, b"\x00\x00\x00\x01\x65" + bytes(range(1, 60))),
        ("audio/opus", {}, bytes(30)),
    ],
)
def test_transforms_read_the_kid_of_a_protected_frame(mime: str, opts: dict, frame: bytes) -> None:
    keys = StaticFrameKeys(1, 3, SECRET, epoch=5)
    transform = transform_for(mime, **opts)
    kid = keys.send_kid()
    assert kid is not None
    assert transform.kid_of(transform.protect(keys.context, kid, frame)) == kid
    assert keys.epochs_ahead(kid) == 0 and keys.sender_of(kid) == 1
    assert keys.epochs_ahead(keys.kid(6, 0)) == 1 and keys.epochs_ahead(keys.kid(4, 0)) == 255
