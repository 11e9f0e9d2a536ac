"""Per-codec E2EE framing: round trips through aiortc's real packetizers, binding, parsers."""

from __future__ import annotations

import struct

import pytest

pytest.importorskip("aiortc", reason="aiortc is not installed (pip install 'aiortc>=1.16,<1.17')")
pytest.importorskip("orange_fast.sframe._core", reason="SFrame core not built")

from aiortc.codecs.h264 import H264Encoder, h264_depayload  # noqa: E402
from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from orange_fast import sframe  # noqa: E402
from orange_fast.rtc import FramingError, UnsupportedCodecError  # noqa: E402
from orange_fast.rtc import h264  # noqa: E402
from orange_fast.rtc.framing import H264Transform, OpaqueTransform, Vp8Transform, transform_for  # noqa: E402

KEY = bytes(range(16))
KID = 7


def contexts(suite: int = 4) -> tuple[sframe.Context, sframe.Context]:
    tx, rx = sframe.Context(suite), sframe.Context(suite)
    tx.add_send_key(KID, KEY)
    rx.add_receive_key(KID, KEY)
    return tx, rx


def aiortc_h264_wire(nals: list[bytes]) -> bytes:
    """What an aiortc receiver reassembles from the sender's NAL units (real packetizer + depayloader)."""
    return b"".join(h264_depayload(p) for p in H264Encoder._packetize(iter(nals)))


def aiortc_vp8_wire(frame: bytes) -> bytes:
    return b"".join(vp8_depayload(p) for p in Vp8Encoder._packetize(frame, 1234))


# --- H.264 -------------------------------------------------------------------------------

nal_types = st.sampled_from([1, 5, 6, 7, 8, 9])
nal_units = st.builds(
    lambda t, nri, body: bytes([(nri << 5) | t]) + body,
    nal_types,
    st.integers(0, 3),
    # real NAL bodies carry no start code and end in the RBSP stop bit (never in 00)
    st.binary(min_size=1, max_size=3000).map(lambda b: h264.escape(b) + b"\x80"),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(nal_units, min_size=1, max_size=6), st.sampled_from([1, 4]))
def test_h264_round_trip_through_aiortc_packetizer(nals: list[bytes], suite: int) -> None:
    tx, rx = contexts(suite)
    transform = H264Transform()
    annexb = b"".join(b"\x00\x00\x01" + n for n in nals)
    wire_nals = transform.protect_nals(tx, KID, annexb)
    # NAL headers stay intact and no start code appears inside a NAL unit
    assert [n[0] for n in wire_nals] == [n[0] for n in nals]
    assert all(b"\x00\x00\x01" not in n and b"\x00\x00\x00" not in n for n in wire_nals)
    kid, plain = transform.unprotect(rx, aiortc_h264_wire(wire_nals))
    assert kid == KID
    assert plain == h264.join_annexb(nals)


def test_h264_real_x264_access_unit() -> None:
    import fractions

    import av

    from orange_fast.harness.media import draw_frame_index

    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = 320, 240, "yuv420p"
    codec.time_base = fractions.Fraction(1, 30)
    codec.options = {"tune": "zerolatency"}
    frame = av.VideoFrame.from_ndarray(draw_frame_index(5), format="yuv420p")
    frame.pts = 0
    au = b"".join(bytes(p) for p in codec.encode(frame))
    tx, rx = contexts()
    wire = aiortc_h264_wire(H264Transform().protect_nals(tx, KID, au))
    assert {n[0] & 0x1F for n in h264.parse_wire(wire)} >= {7, 8, 5}  # SPS, PPS, IDR visible to the SFU
    _, plain = H264Transform().unprotect(rx, wire)
    assert plain == h264.join_annexb(h264.split_annexb(au))
    # no plaintext slice body travels
    idr = [n for n in h264.split_annexb(au) if n[0] & 0x1F == 5][0]
    assert idr[1:33] not in wire


@settings(max_examples=150, deadline=None)
@given(st.lists(nal_units, min_size=1, max_size=4), st.data())
def test_h264_tampering_is_detected(nals: list[bytes], data: st.DataObject) -> None:
    tx, rx = contexts()
    transform = H264Transform()
    wire = bytearray(aiortc_h264_wire(transform.protect_nals(tx, KID, b"".join(b"\x00\x00\x01" + n for n in nals))))
    pos = data.draw(st.integers(4, len(wire) - 1))
    wire[pos] ^= data.draw(st.integers(1, 255))
    with pytest.raises((FramingError, sframe.SFrameError)):
        transform.unprotect(rx, bytes(wire))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_h264_unprotect_arbitrary_input_raises_typed_errors(data: bytes) -> None:
    _, rx = contexts()
    for candidate in (data, b"\x00\x00\x00\x01" + data):
        with pytest.raises((FramingError, sframe.SFrameError)):
            H264Transform().unprotect(rx, candidate)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_escape_round_trip_and_no_start_code(data: bytes) -> None:
    escaped = h264.escape(data)
    assert h264.unescape(escaped) == data
    for bad in (b"\x00\x00\x00", b"\x00\x00\x01", b"\x00\x00\x02"):
        assert bad not in escaped


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_unescape_accepts_only_escaped_strings(data: bytes) -> None:
    try:
        plain = h264.unescape(data)
    except FramingError:
        return
    assert h264.escape(plain) == data


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=100))
def test_parse_wire_and_split_annexb_typed_errors(data: bytes) -> None:
    for parser in (h264.parse_wire, h264.split_annexb):
        try:
            nals = parser(data)
        except FramingError:
            continue
        assert all(isinstance(n, bytes) and n for n in nals)


def test_escape_known_values() -> None:
    assert h264.escape(b"\x00\x00\x01") == b"\x00\x00\x03\x01"
    assert h264.escape(b"\x00\x00\x00\x00") == b"\x00\x00\x03\x00\x00"
    assert h264.escape(b"\x00\x00\x04") == b"\x00\x00\x04"
    assert h264.escape(b"\x00\x00") == b"\x00\x00"
    with pytest.raises(FramingError):
        h264.unescape(b"\x00\x00\x01")
    with pytest.raises(FramingError):
        h264.unescape(b"\x00\x00\x03")


def test_h264_rejects_unprotectable_nal_types() -> None:
    tx, _ = contexts()
    for header in (0x18, 0x1C, 0x80 | 0x05, 0x00):
        with pytest.raises(FramingError):
            H264Transform().protect_nals(tx, KID, b"\x00\x00\x01" + bytes([header]) + b"\x11\x22")
    with pytest.raises(FramingError):
        H264Transform().protect_nals(tx, KID, b"\x00\x00\x01\x0a")  # only an end-of-sequence NAL


def test_h264_nal_boundaries_are_authenticated() -> None:
    """Re-cutting the chunks between NAL units (same bytes overall) must fail."""
    tx, rx = contexts()
    wire_nals = H264Transform().protect_nals(
        tx, KID, b"\x00\x00\x01\x67" + b"\x42" * 40 + b"\x00\x00\x01\x68" + b"\xce" * 40
    )
    (ha, a), (hb, b) = [(n[:1], h264.unescape(n[1:])) for n in wire_nals]
    moved = [ha + h264.escape(a[:-1]), hb + h264.escape(a[-1:] + b)]
    with pytest.raises(sframe.AuthenticationError):
        H264Transform().unprotect(rx, h264.join_annexb(moved))
    # and the untouched frame still decrypts
    assert H264Transform().unprotect(rx, h264.join_annexb(wire_nals))[1].count(b"\x42" * 40) == 1


# --- VP8 ---------------------------------------------------------------------------------

vp8_frames = st.binary(min_size=11, max_size=4000)


@settings(max_examples=200, deadline=None)
@given(vp8_frames, st.booleans())
def test_vp8_round_trip_through_aiortc_packetizer(frame: bytes, clear: bool) -> None:
    tx, rx = contexts()
    transform = Vp8Transform(clear)
    wire = transform.protect(tx, KID, frame)
    received = aiortc_vp8_wire(wire)
    assert received == wire  # VP8 frames arrive byte-identical
    kid, plain = transform.unprotect(rx, received)
    assert (kid, plain) == (KID, frame)


def test_vp8_clear_header_sizes_and_keyframe_bit() -> None:
    tx, rx = contexts()
    keyframe = bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A, 0x40, 0x01, 0xF0, 0x00]) + b"K" * 50  # P bit 0
    interframe = bytes([0x31, 0x02, 0x00]) + b"I" * 50  # P bit 1
    t = Vp8Transform(clear_header=True)
    wk, wi = t.protect(tx, KID, keyframe), t.protect(tx, KID, interframe)
    assert wk[:10] == keyframe[:10] and wk[0] & 1 == 0
    assert wi[:3] == interframe[:3] and wi[0] & 1 == 1
    assert b"K" * 16 not in wk and b"I" * 16 not in wi
    # the clear bytes are bound into the AEAD
    for wire in (wk, wi):
        tampered = bytes([wire[0], wire[1] ^ 0x01]) + wire[2:]
        with pytest.raises(sframe.AuthenticationError):
            t.unprotect(rx, tampered)
    with pytest.raises(FramingError):
        t.protect(tx, KID, keyframe[:10])
    with pytest.raises(FramingError):
        t.unprotect(rx, b"")


def test_vp8_full_encryption_hides_everything() -> None:
    tx, _ = contexts()
    frame = bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A]) + b"P" * 100
    wire = Vp8Transform().protect(tx, KID, frame)
    assert b"\x9d\x01\x2a" not in wire and b"P" * 8 not in wire


# --- Opus / binding ----------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=1500))
def test_opus_round_trip_and_codec_binding(packet: bytes) -> None:
    tx, rx = contexts()
    opus = transform_for("audio/opus")
    wire = opus.protect(tx, KID, packet)
    assert opus.unprotect(rx, wire) == (KID, packet)
    # a frame cannot be replayed into another codec's stream
    _, rx2 = contexts()
    with pytest.raises(sframe.AuthenticationError):
        Vp8Transform().unprotect(rx2, wire)


def test_metadata_does_not_depend_on_rtp() -> None:
    """The AEAD input is the frame and fixed framing bytes only: the same ciphertext
    decrypts whatever RTP timestamp/SSRC it travelled with (receivers see neither)."""
    tx, rx = contexts()
    wire = OpaqueTransform(1, "opus").protect(tx, KID, b"hello")
    assert rx.decrypt(wire, bytes([1, 1])) == b"hello"


def test_transform_for_refuses_unknown_codecs() -> None:
    with pytest.raises(UnsupportedCodecError):
        transform_for("video/VP9")
    assert transform_for("video/H264").name == "H264"
    assert transform_for("audio/PCMU").name == "PCMU"


def test_h264_metadata_layout() -> None:
    """Documented binding: version, codec id, NAL count, then (header, body length) pairs."""
    tx, rx = contexts()
    nals = [b"\x67" + b"\x01\x02\x03", b"\x65" + b"\x04" * 7]
    wire_nals = H264Transform().protect_nals(tx, KID, b"".join(b"\x00\x00\x00\x01" + n for n in nals))
    ct = b"".join(h264.unescape(n[1:]) for n in wire_nals)
    md = bytes([1, 4]) + struct.pack(">H", 2) + struct.pack(">BI", 0x67, 3) + struct.pack(">BI", 0x65, 7)
    assert rx.decrypt(ct, md) == b"\x01\x02\x03" + b"\x04" * 7


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.booleans(), st.sampled_from(["video/vp8", "audio/opus"]))
def test_unprotect_arbitrary_input_raises_typed_errors(data: bytes, clear: bool, mime: str) -> None:
    _, rx = contexts()
    transform = transform_for(mime, vp8_clear_header=clear)
    with pytest.raises((FramingError, sframe.SFrameError)):
        transform.unprotect(rx, data)


def test_concurrent_protect_and_unprotect() -> None:
    """Encoder and decoder threads share one context and one stats object."""
    import threading

    from orange_fast.rtc.stats import TrackStats

    tx, rx = contexts()
    transform = Vp8Transform()
    stats = TrackStats(kind="video", direction="send")
    wires: list[bytes] = []
    lock = threading.Lock()

    def send(tag: int) -> None:
        for i in range(200):
            wire = transform.protect(tx, KID, bytes([tag, i % 256]) * 20)
            stats.count_encrypted(KID)
            with lock:
                wires.append(wire)

    threads = [threading.Thread(target=send, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stats.snapshot()["encrypted"] == 800
    counters = {sframe.decode_header(w)[1] for w in wires}
    assert len(counters) == 800  # no counter (nonce) used twice across threads
    plains = {transform.unprotect(rx, w)[1] for w in wires}
    assert len(plains) == 800
