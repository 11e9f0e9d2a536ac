"""Two real RTCPeerConnections over 127.0.0.1 with SFrame E2EE (VP8, H.264, Opus)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytest.importorskip("aiortc", reason="aiortc is not installed (pip install 'aiortc>=1.16,<1.17')")
pytest.importorskip("orange_fast.sframe._core", reason="SFrame core not built")

from rtc_call_helpers import TONE_HZ, CallResult, loopback_call, run  # noqa: E402

from orange_fast.rtc import NoFrameKeys, StaticFrameKeys  # noqa: E402

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("loopback_ice")]

SECRET = bytes(range(32))


def _pair(suite: int = 4) -> tuple[StaticFrameKeys, StaticFrameKeys]:
    return StaticFrameKeys(0, 2, SECRET, suite=suite), StaticFrameKeys(1, 2, SECRET, suite=suite)


def _assert_video_decoded(result: CallResult, minimum: int = 15) -> None:
    indices = result.sink.indices
    assert len(indices) >= minimum, f"only {len(indices)} frames decoded"
    # decoded pictures show the number drawn into them, in sending order (a picture
    # whose reference frame was lost on a loaded host may decode to garbage: allow 10%)
    valid = [i for i in indices if i is not None]
    assert len(valid) >= 0.9 * len(indices)
    assert valid == sorted(set(valid))
    assert valid[-1] < result.track.sent


@pytest.mark.parametrize(
    "mime, opts",
    [
        ("video/VP8", {}),
        ("video/VP8", {"vp8_clear_header": True}),
        ("video/H264", {}),
    ],
    ids=["vp8", "vp8-clear-header", "h264"],
)
def test_video_decodes_with_e2ee(mime: str, opts: dict) -> None:
    k1, k2 = _pair()
    result = run(loopback_call(mime, k1, k2, sender_opts=opts, receiver_opts=opts))
    _assert_video_decoded(result)
    send, recv = result.send_stats(), result.recv_stats()
    assert send["encrypted"] >= len(result.sink.indices)
    assert recv["decrypted"] >= len(result.sink.indices)
    assert recv["dropped"] == {}
    assert set(recv["decrypted_by_kid"]) == {str(k1.send_kid())}


def test_opus_tone_survives_e2ee() -> None:
    k1, k2 = _pair()
    result = run(loopback_call("audio/opus", k1, k2))
    assert result.sink.frames >= 40
    assert abs(result.sink.frequency() - TONE_HZ) < 5
    assert result.sink.tone_fraction(TONE_HZ) > 0.5
    recv = result.recv_stats()
    assert recv["codec"] == "opus" and recv["dropped"] == {}
    assert recv["decrypted"] >= 40


@pytest.mark.parametrize("suite", [1, 2, 3, 5])
def test_vp8_other_suites(suite: int) -> None:
    k1, k2 = _pair(suite)
    result = run(loopback_call("video/VP8", k1, k2, seconds=1.5))
    _assert_video_decoded(result, minimum=8)


@pytest.mark.parametrize("mime", ["video/VP8", "video/H264"])
def test_plain_receiver_decodes_nothing(mime: str) -> None:
    """Without hooks the receiver's decoder sees only ciphertext: no picture with a valid index."""
    k1, _ = _pair()
    result = run(loopback_call(mime, k1, None))
    assert result.send_stats()["encrypted"] >= 15
    assert result.sink.valid_indices == []


def test_plain_receiver_hears_no_tone() -> None:
    k1, _ = _pair()
    result = run(loopback_call("audio/opus", k1, None))
    assert result.send_stats()["encrypted"] >= 40
    frames = result.sink.frames
    assert frames == 0 or result.sink.tone_fraction(TONE_HZ) < 0.2


@pytest.mark.parametrize("mime", ["video/VP8", "video/H264", "audio/opus"])
def test_keyless_receiver_decodes_nothing(mime: str) -> None:
    k1, _ = _pair()
    result = run(loopback_call(mime, k1, NoFrameKeys()))
    assert result.sink.frames == 0
    recv = result.recv_stats()
    assert recv["decrypted"] == 0
    assert recv["dropped"].get("unknown_key", 0) >= 10


def test_wrong_key_is_dropped_as_auth_failure() -> None:
    k1 = StaticFrameKeys(0, 2, SECRET)
    other = StaticFrameKeys(1, 2, bytes(32))  # same KIDs, different group secret
    result = run(loopback_call("video/VP8", k1, other))
    assert result.sink.frames == 0
    assert result.recv_stats()["dropped"].get("auth", 0) >= 10


def test_vp8_mode_mismatch_never_decodes() -> None:
    """The clear-header mode is bound into the AEAD: a receiver in the other mode decrypts nothing."""
    k1, k2 = _pair()
    result = run(loopback_call("video/VP8", k1, k2, sender_opts={"vp8_clear_header": True}))
    assert result.sink.frames == 0
    assert result.recv_stats()["decrypted"] == 0


def test_keyless_receiver_keyframe_requests_are_bounded() -> None:
    k1, _ = _pair()
    result = run(loopback_call("video/VP8", k1, NoFrameKeys(), seconds=3.0))
    recv = result.recv_stats()
    failures = recv["dropped"].get("unknown_key", 0)
    assert failures >= 30
    # one request per second at most (plus the first)
    assert 1 <= recv["keyframe_requests_sent"] <= int(result.elapsed) + 2
    assert recv["keyframe_requests_suppressed"] >= failures - recv["keyframe_requests_sent"] - 5


def test_sender_bounds_keyframe_storm_from_plain_receiver() -> None:
    """A receiver without hooks asks for a keyframe on every frame; the sender honours ~1/s."""
    k1, _ = _pair()
    result = run(loopback_call("video/VP8", k1, None, seconds=3.0))
    send = result.send_stats()
    assert send["keyframe_requests_received"] >= 20
    assert send["keyframe_requests_honoured"] <= int(result.elapsed) + 2


def test_key_rotation_keeps_media_flowing() -> None:
    k1, k2 = _pair()
    old_kid = k1.send_kid()

    async def rotate(result: CallResult) -> None:
        await asyncio.sleep(1.2)
        k2.advance_epoch(1)  # receivers first (RFC 9605 §9: decrypt keys available before switching)
        k1.advance_epoch(1)
        result.marks["switched_at"] = result.track.sent

    result = run(loopback_call("video/VP8", k1, k2, seconds=3.0, during=rotate))
    new_kid = k1.send_kid()
    assert new_kid != old_kid
    _assert_video_decoded(result, minimum=30)
    send, recv = result.send_stats(), result.recv_stats()
    assert send["keyframes_forced_by_key_change"] == 0  # a self-update: nobody lost a frame
    assert send["encrypted_by_kid"].get(str(old_kid), 0) > 0 and send["encrypted_by_kid"].get(str(new_kid), 0) > 0
    assert recv["decrypted_by_kid"].get(str(old_kid), 0) > 0 and recv["decrypted_by_kid"].get(str(new_kid), 0) > 0
    assert recv["dropped"] == {}
    # no gap: consecutive decoded pictures around the switch
    idx = result.sink.valid_indices
    assert max(b - a for a, b in zip(idx, idx[1:])) <= 5


def test_removed_receiver_stops_decrypting() -> None:
    k1, k2 = _pair()
    old_kid = k1.send_kid()

    async def remove(result: CallResult) -> None:
        await asyncio.sleep(1.2)
        k1.advance_epoch(1, members={0})  # receiver 1 removed: it never gets epoch 1

    result = run(loopback_call("video/VP8", k1, k2, seconds=2.8, during=remove))
    send, recv = result.send_stats(), result.recv_stats()
    sent_old = send["encrypted_by_kid"][str(old_kid)]
    assert recv["dropped"].get("unknown_key", 0) >= 5
    assert set(recv["decrypted_by_kid"]) == {str(old_kid)}
    # every picture it decoded was sent under the old epoch
    assert result.sink.valid_indices and max(result.sink.valid_indices) < sent_old


class _PreEncodedVp8Track:
    """A track that returns pre-encoded VP8 av.Packets (aiortc's `pack` path)."""

    kind = "video"

    def __new__(cls) -> Any:
        import fractions

        import av
        from aiortc.mediastreams import MediaStreamTrack

        from orange_fast.harness.media import NumberedVideoTrack

        class Track(MediaStreamTrack):
            kind = "video"

            def __init__(self) -> None:
                super().__init__()
                self.source = NumberedVideoTrack()
                self.codec = av.CodecContext.create("libvpx", "w")
                self.codec.width, self.codec.height, self.codec.pix_fmt = 320, 240, "yuv420p"
                self.codec.bit_rate = 500000
                self.codec.gop_size = 15  # pre-encoded tracks cannot honour keyframe requests
                self.codec.time_base = fractions.Fraction(1, 90000)  # the source's pts clock
                self.codec.framerate = fractions.Fraction(30, 1)
                self.codec.options = {"deadline": "realtime", "lag-in-frames": "0", "cpu-used": "8"}
                self.sent = 0

            async def recv(self) -> Any:
                while True:
                    frame = await self.source.recv()
                    packets = self.codec.encode(frame)
                    if packets:
                        packet = packets[0]
                        packet.pts, packet.time_base = frame.pts, frame.time_base
                        self.sent = self.source.sent
                        return packet

        return Track()


def test_pre_encoded_packets_are_protected(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tracks that return av.Packet (no encoder in aiortc) go through the same framing."""
    import rtc_call_helpers

    monkeypatch.setattr(rtc_call_helpers, "NumberedVideoTrack", _PreEncodedVp8Track)
    k1, k2 = _pair()
    result = run(loopback_call("video/VP8", k1, k2, seconds=3.0))
    assert result.send_stats()["encrypted"] >= 8, result.send_stats()
    assert result.recv_stats()["decrypted"] >= 3, result.recv_stats()
    _assert_video_decoded(result, minimum=3)


@pytest.mark.parametrize("mime", ["video/VP8", "audio/opus"])
def test_late_receiver_loses_no_frame(mime: str) -> None:
    """The sender switches to the new epoch first; the receiver gets it 300 ms later (a slow
    handshake path).  The receiver holds the new epoch's frames: no frame dropped, no keyframe,
    no gap in the pictures."""
    k1, k2 = _pair()
    old_kid = k1.send_kid()

    async def switch(result: CallResult) -> None:
        await asyncio.sleep(1.0)
        k1.advance_epoch(1)
        result.marks["switched_at"] = result.track.sent
        await asyncio.sleep(0.3)
        k2.advance_epoch(1)

    result = run(loopback_call(mime, k1, k2, seconds=3.0, during=switch))
    send, recv = result.send_stats(), result.recv_stats()
    new_kid = k1.send_kid()
    assert recv["dropped"] == {}
    assert recv["held"] >= 1
    assert recv["decrypted_by_kid"].get(str(old_kid), 0) > 0 and recv["decrypted_by_kid"].get(str(new_kid), 0) > 0
    assert send["keyframes_forced_by_key_change"] == 0
    if mime.startswith("video"):
        valid = result.sink.valid_indices
        switched = result.marks["switched_at"]
        window = set(range(switched - 5, switched + 10))
        assert window <= set(valid), f"pictures missing around the switch: {sorted(window - set(valid))}"
    else:
        assert abs(result.sink.frequency() - TONE_HZ) < 5
