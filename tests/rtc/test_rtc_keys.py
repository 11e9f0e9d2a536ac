"""Key provider, KID layout (RFC 9605 §5.2), rate limiter, aiortc version check, hook API errors."""

from __future__ import annotations

import pytest

pytest.importorskip("aiortc", reason="aiortc is not installed (pip install 'aiortc>=1.16,<1.17')")
pytest.importorskip("orange_fast.sframe._core", reason="SFrame core not built")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from orange_fast import sframe  # noqa: E402
from orange_fast.rtc import (  # noqa: E402
    AlreadyProtectedError,
    FrameKeys,
    NoFrameKeys,
    StaticFrameKeys,
    UnsupportedAiortcError,
    mls_kid,
)
from orange_fast.rtc import compat  # noqa: E402
from orange_fast.rtc.ratelimit import KeyframeLimiter  # noqa: E402

SECRET = b"k" * 32


@pytest.mark.parametrize(
    "epoch, index, context, expected",
    [
        # RFC 9605 §5.2 figure, E=4, S=6 (group of 64)
        (14, 3, 0, 0x3E),
        (14, 20, 0, 0x14E),
        (16, 2, 2, 0x820),
        (16, 2, 3, 0xC20),
        (17, 33, 0, 0x211),
        (17, 51, 0, 0x331),
    ],
)
def test_mls_kid_rfc_examples(epoch: int, index: int, context: int, expected: int) -> None:
    assert mls_kid(epoch, index, 64, epoch_bits=4, context=context) == expected


def test_mls_kid_rejects_bad_arguments() -> None:
    for args in [(0, 5, 4), (0, -1, 4), (-1, 0, 4), (0, 0, 0)]:
        with pytest.raises(ValueError):
            mls_kid(*args)
    with pytest.raises(ValueError):
        mls_kid(0, 0, 2, epoch_bits=33)
    with pytest.raises(ValueError):
        mls_kid(0, 0, 2, context=1 << 63)


def test_static_keys_interoperate_and_rotate() -> None:
    a, b = StaticFrameKeys(0, 3, SECRET), StaticFrameKeys(1, 3, SECRET)
    assert isinstance(a, FrameKeys) and isinstance(NoFrameKeys(), FrameKeys)
    ct = a.context.encrypt(a.send_kid(), b"frame")
    assert b.context.decrypt(ct) == b"frame"
    gen = a.key_generation()
    b.advance_epoch(1)
    a.advance_epoch(1)
    assert a.key_generation() != gen
    ct2 = a.context.encrypt(a.send_kid(), b"frame2")
    assert b.context.decrypt(ct2) == b"frame2"
    assert b.context.decrypt(a.context.encrypt(a.kid(0, 0), b"old")) == b"old"  # grace: old epoch held
    b.expire_epoch(0)
    with pytest.raises(sframe.UnknownKeyError):
        b.context.decrypt(ct)
    with pytest.raises(ValueError):
        b.advance_epoch(1)
    with pytest.raises(ValueError):
        b.expire_epoch(1)  # the current epoch cannot be expired
    with pytest.raises(ValueError):
        StaticFrameKeys(0, 2, b"short")


def test_static_keys_drop_epoch_with_same_low_bits() -> None:
    k = StaticFrameKeys(0, 2, SECRET, epoch_bits=1)
    k.advance_epoch(1)
    k.advance_epoch(2)  # same low bit as epoch 0: epoch 0 must be gone
    assert k.epochs == [1, 2]


def test_removed_member_gets_no_send_key() -> None:
    k = StaticFrameKeys(1, 3, SECRET)
    k.advance_epoch(1, members={0, 2})
    assert k.send_kid() is None
    assert NoFrameKeys().send_kid() is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=50), st.floats(0.1, 10))
def test_limiter_grants_at_most_one_per_interval(times: list[float], interval: float) -> None:
    limiter = KeyframeLimiter(interval)
    granted = [t for t in sorted(times) if limiter.try_acquire(t)]
    assert granted and granted[0] == min(times)
    assert all(b - a >= interval for a, b in zip(granted, granted[1:]))


def test_limiter_coalesces_pending_requests() -> None:
    limiter = KeyframeLimiter(1.0)
    assert limiter.request(10.0)
    assert not limiter.request(10.2) and not limiter.request(10.5)
    assert limiter.pending
    assert not limiter.poll(10.9)
    assert limiter.poll(11.0)
    assert not limiter.poll(12.5)  # coalesced into one
    limiter.request(12.6)
    limiter.force(12.7)
    assert not limiter.pending
    with pytest.raises(ValueError):
        KeyframeLimiter(-1)


def test_compat_accepts_installed_aiortc() -> None:
    compat.check_aiortc()
    assert compat.SUPPORTED_AIORTC[0] <= compat.aiortc_version()[:2] < compat.SUPPORTED_AIORTC[1]


def test_compat_rejects_other_versions_and_missing_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compat, "_checked", False)
    monkeypatch.setattr(compat, "aiortc_version", lambda: (1, 15, 0))
    with pytest.raises(UnsupportedAiortcError, match="1.15"):
        compat.check_aiortc()
    monkeypatch.setattr(compat, "aiortc_version", lambda: (1, 16, 0))
    monkeypatch.setattr(compat, "_REQUIRED", compat._REQUIRED + (("aiortc.rtcrtpsender", "RTCRtpSender._gone"),))
    with pytest.raises(UnsupportedAiortcError, match="_gone"):
        compat.check_aiortc()


def test_enable_twice_is_refused() -> None:
    import asyncio

    from aiortc import RTCConfiguration, RTCPeerConnection

    from orange_fast.rtc import enable_e2ee, protect_receiver, protect_sender

    async def scenario() -> None:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            keys = StaticFrameKeys(0, 2, SECRET)
            protection = enable_e2ee(pc, keys)
            transceiver = pc.addTransceiver("video")
            assert len(protection.senders) == 1 and len(protection.receivers) == 1  # future transceivers hooked
            with pytest.raises(AlreadyProtectedError):
                enable_e2ee(pc, keys)
            with pytest.raises(AlreadyProtectedError):
                protect_sender(transceiver.sender, keys)
            with pytest.raises(AlreadyProtectedError):
                protect_receiver(transceiver.receiver, keys)
        finally:
            await pc.close()

    asyncio.run(scenario())


def test_hooks_require_a_key_provider() -> None:
    import asyncio

    from aiortc import RTCConfiguration, RTCPeerConnection

    from orange_fast.rtc import enable_e2ee

    async def scenario() -> None:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            with pytest.raises(TypeError):
                enable_e2ee(pc, object())  # type: ignore[arg-type]
            with pytest.raises(ValueError):
                enable_e2ee(pc, NoFrameKeys(), keyframe_interval=-1)
        finally:
            await pc.close()

    asyncio.run(scenario())


def test_netns_is_created_entered_and_swept() -> None:
    import socket
    import subprocess

    from orange_fast.harness.netns import Netns, netns_available, sweep_stale

    reason = netns_available()
    if reason is not None:
        pytest.skip(reason)
    with Netns(prefix="oftest") as ns:
        def interfaces() -> set[str]:
            return {name for _, name in socket.if_nameindex()}

        assert ns.run(interfaces, timeout=10) == {"lo", ns.interface, "ofv1"}
        assert ns.interface not in interfaces()  # the veth exists only inside the namespace
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert ns.name in listed
    assert ns.name not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    # a namespace whose owner process is gone is swept
    stale = Netns("oftest-999999999-abc123")
    subprocess.run(["ip", "netns", "add", stale.name], check=True)
    assert stale.name in sweep_stale("oftest")
    assert stale.name not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def test_sender_keyframe_decisions_with_a_controlled_clock() -> None:
    """Key changes force exactly one keyframe; remote requests are coalesced to one per interval."""
    import asyncio

    from aiortc import RTCConfiguration, RTCPeerConnection

    from orange_fast.rtc import protect_receiver, protect_sender

    now = [100.0]
    keys = StaticFrameKeys(0, 2, SECRET, members={0})

    async def scenario() -> None:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            transceiver = pc.addTransceiver("video")
            hook = protect_sender(transceiver.sender, keys, keyframe_interval=1.0, clock=lambda: now[0])
            kid0 = keys.send_kid()
            assert hook.begin_frame(False) == (kid0, True)  # first frame
            assert hook.begin_frame(False) == (kid0, False)
            for _ in range(50):  # a storm of PLIs (e.g. a new subscriber, then a broken one)
                transceiver.sender._send_keyframe()
            assert hook.begin_frame(False) == (kid0, True)  # the first request is honoured at once
            assert hook.begin_frame(False) == (kid0, False)
            now[0] += 0.5
            assert hook.begin_frame(False) == (kid0, False)
            now[0] += 0.5
            assert hook.begin_frame(False) == (kid0, True)  # one deferred keyframe for the other 49
            now[0] += 5
            assert hook.begin_frame(False) == (kid0, False)
            transceiver.sender._send_keyframe()  # a lone request long after: honoured at once
            assert hook.begin_frame(False) == (kid0, True)
            assert hook.begin_frame(False) == (kid0, False)
            keys.advance_epoch(1)  # a self-update (same members): receivers hold, no keyframe
            kid1 = keys.send_kid()
            assert kid1 != kid0
            assert hook.begin_frame(False) == (kid1, False)
            keys.advance_epoch(2, members={0, 1})  # a join: the joiner needs a keyframe
            kid2 = keys.send_kid()
            assert hook.begin_frame(False) == (kid2, True)
            assert hook.begin_frame(False) == (kid2, False)
            assert hook.begin_frame(False, video=False) == (kid2, False)
            keys.advance_epoch(3, members={0})  # a leave: no keyframe
            assert hook.begin_frame(False) == (keys.send_kid(), False)
            stats = hook.stats.snapshot()
            assert stats["keyframe_requests_received"] == 51
            assert stats["keyframe_requests_honoured"] == 3
            assert stats["keyframes_forced_by_key_change"] == 1

            rx = protect_receiver(transceiver.receiver, keys, keyframe_interval=2.0, clock=lambda: now[0])
            grants = []
            for _ in range(10):
                grants.append(rx.allow_keyframe_request())
                now[0] += 0.5
            assert grants == [True, False, False, False, True, False, False, False, True, False]
            assert rx.stats.snapshot()["keyframe_requests_suppressed"] == 7
        finally:
            await pc.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "mime, base",
    [("video/VP8", "Vp8Encoder"), ("video/H264", "H264Encoder"), ("audio/opus", "OpusEncoder")],
)
def test_protected_encoders_keep_aiortc_behaviour(mime: str, base: str) -> None:
    """The protecting encoder is a subclass of aiortc's: REMB (target_bitrate) and the rest are inherited."""
    import asyncio

    import aiortc.codecs as codecs
    from aiortc import RTCConfiguration, RTCPeerConnection

    from orange_fast.rtc import UnsupportedCodecError, protect_sender

    async def scenario() -> None:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            transceiver = pc.addTransceiver(mime.split("/")[0])
            hook = protect_sender(transceiver.sender, StaticFrameKeys(0, 2, SECRET))
            codec = [c for c in codecs.CODECS[mime.split("/")[0]] if c.mimeType.lower() == mime.lower()][0]
            encoder = hook.make_encoder(codec)
            assert isinstance(encoder, getattr(codecs, base))
            if hasattr(encoder, "target_bitrate"):
                encoder.target_bitrate = 700000
                assert encoder.target_bitrate == 700000
            with pytest.raises(UnsupportedCodecError):
                hook.make_encoder(codecs.RTCRtpCodecParameters(mimeType="video/VP9", clockRate=90000, payloadType=98))
        finally:
            await pc.close()

    asyncio.run(scenario())


def test_receiver_hook_turns_any_bad_frame_into_a_drop() -> None:
    """Hostile frames end as av.error.InvalidDataError (aiortc drops them), never another exception."""
    import asyncio

    import av.error
    from aiortc import RTCConfiguration, RTCPeerConnection
    from hypothesis import HealthCheck

    from orange_fast.rtc import protect_receiver

    async def make() -> tuple[RTCPeerConnection, object]:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        transceiver = pc.addTransceiver("video")
        return pc, protect_receiver(transceiver.receiver, StaticFrameKeys(1, 2, SECRET))

    loop = asyncio.new_event_loop()
    try:
        pc, hook = loop.run_until_complete(make())

        @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(st.binary(max_size=100), st.sampled_from(["video/vp8", "video/h264", "audio/opus", "video/vp9"]))
        def check(data: bytes, mime: str) -> None:
            with pytest.raises(av.error.InvalidDataError):
                hook.unprotect(mime, data)  # type: ignore[attr-defined]

        check()
        dropped = hook.stats.snapshot()["dropped"]  # type: ignore[attr-defined]
        assert sum(dropped.values()) >= 200 and "unsupported_codec" in dropped
        loop.run_until_complete(pc.close())
    finally:
        loop.close()


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 16), st.integers(1, 24), st.integers(0, 2**24 - 1), st.integers(0, 2**40), st.integers(0, 2**40)
)
def test_kid_layout_reads_back_sender_and_epoch_distance(e: int, s: int, idx: int, epoch: int, current: int) -> None:
    """One KID layout for every layer: the sender and the epoch distance a receiver reads from a KID."""
    from orange_fast.sframe.kid import KidLayout

    layout = KidLayout(epoch_bits=e, sender_bits=s)
    idx %= 1 << s
    kid = layout.kid(idx, epoch)
    assert layout.sender_of(kid) == idx
    assert layout.epoch_bits_of(kid) == epoch % (1 << e)
    ahead = layout.epochs_ahead(kid, current)
    assert ahead is not None and 0 <= ahead < 1 << e
    assert (current + ahead) % (1 << e) == epoch % (1 << e)
    assert layout.epochs_ahead(kid, None) is None
    # the rtc helper and the session layer agree with the RFC layout for a power-of-two group
    assert mls_kid(epoch, idx, 1 << s, epoch_bits=e) == kid


def test_kid_layout_rejects_kids_out_of_range() -> None:
    from orange_fast.sframe.kid import KidLayout, KidLayoutError

    for bad in (-1, 1 << 64):
        with pytest.raises(KidLayoutError):
            KidLayout().sender_of(bad)
        with pytest.raises(KidLayoutError):
            KidLayout().epoch_bits_of(bad)
    with pytest.raises(TypeError):
        KidLayout().sender_of("1")  # type: ignore[arg-type]
