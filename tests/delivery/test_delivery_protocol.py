"""The delivery wire protocol: hand-written byte layouts, strict parsing, hypothesis properties."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orange_fast.delivery import protocol as P
from orange_fast.delivery.entry import FLAG_CREATOR, EntryType, LogEntry, NewEntry
from orange_fast.delivery.errors import ErrorCode, FieldError, MalformedFrameError

ID_ALPHABET = "ABCXYZabcxyz0189._~:@+-"
ids = st.text(ID_ALPHABET, min_size=1, max_size=64)
kinds = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64)
u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
seqs = st.integers(0, 2**63 - 1)
payloads = st.binary(max_size=300)


@st.composite
def log_entries(draw: st.DrawFn) -> LogEntry:
    etype = draw(st.sampled_from(list(EntryType)))
    kind = draw(kinds) if etype == EntryType.MESSAGE else ""
    payload = b"" if etype in (EntryType.LEFT, EntryType.EVICTED) else draw(payloads)
    flags = draw(st.sampled_from([0, FLAG_CREATOR])) if etype == EntryType.JOINED else 0
    return LogEntry(draw(st.integers(1, 2**63 - 1)), draw(seqs), etype, flags, draw(ids), kind, payload)


client_frames = st.one_of(
    st.builds(P.Hello, ids, st.binary(min_size=1, max_size=255), ids, seqs, payloads),
    st.builds(P.Append, u32, kinds, payloads, seqs),
    st.just(P.Bye()),
    st.builds(P.Ping, u64),
    st.builds(P.Pong, u64),
)


@st.composite
def readies(draw: st.DrawFn) -> P.Ready:
    head = draw(seqs)
    join = draw(st.integers(0, head))
    return P.Ready(head, join, draw(u64), draw(u32), draw(u32), draw(u32))


details = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=100)
server_frames = st.one_of(
    readies(),
    log_entries(),
    st.builds(P.AppendOk, u32, st.integers(1, 2**63 - 1)),
    st.builds(P.Error, st.sampled_from(list(ErrorCode)), details, u32, st.booleans(), seqs),
    st.builds(P.Ping, u64),
    st.builds(P.Pong, u64),
)
all_frames = st.one_of(client_frames, server_frames)


# --------------------------------------------------------------------------- known answers


def test_hello_layout_known_answer() -> None:
    frame = P.Hello("room-1", b"\x00\xff", "alice", 7, b"KP")
    expected = (
        b"\x01"  # HELLO
        + b"\x01"  # version 1
        + b"\x06room-1"
        + b"\x02\x00\xff"
        + b"\x05alice"
        + b"\x00\x00\x00\x00\x00\x00\x00\x07"
        + b"\x00\x00\x00\x02KP"
    )
    assert P.encode(frame) == expected
    assert P.decode(expected) == frame


def test_append_layout_known_answer() -> None:
    frame = P.Append(0x01020304, "commit", b"\xaa\xbb", expected_seq=9)
    expected = b"\x02\x01\x02\x03\x04" + struct.pack(">Q", 9) + b"\x06commit" + b"\x00\x00\x00\x02\xaa\xbb"
    assert P.encode(frame) == expected
    assert P.decode(expected) == frame


def test_entry_layout_known_answer() -> None:
    entry = LogEntry(3, 1000, EntryType.JOINED, FLAG_CREATOR, "bob", "", b"x")
    expected = (
        b"\x82"
        + struct.pack(">QQ", 3, 1000)
        + b"\x01\x01"
        + b"\x03bob"
        + b"\x00"
        + b"\x00\x00\x00\x01x"
    )
    assert P.encode(entry) == expected
    assert P.decode(expected) == entry
    assert entry.is_creator


def test_error_and_small_frames_known_answer() -> None:
    err = P.Error(ErrorCode.SEQUENCE_CONFLICT, "head 5", 17, False, 5)
    raw = b"\x84\x00\x08\x00\x00\x00\x11\x00" + struct.pack(">Q", 5) + b"\x00\x06head 5"
    assert P.encode(err) == raw
    assert P.decode(raw) == err
    assert P.encode(P.Bye()) == b"\x03"
    assert P.encode(P.Ping(1)) == b"\x10" + struct.pack(">Q", 1)
    assert P.encode(P.Pong(2**64 - 1)) == b"\x11" + b"\xff" * 8
    assert P.encode(P.AppendOk(1, 2)) == b"\x83\x00\x00\x00\x01" + struct.pack(">Q", 2)
    ready = P.Ready(4, 2, 99, 5000, 15000, 1 << 20)
    assert P.encode(ready) == b"\x81\x01" + struct.pack(">QQQIII", 4, 2, 99, 5000, 15000, 1 << 20)


# --------------------------------------------------------------------------- properties


@given(all_frames)
def test_roundtrip(frame: P.Frame) -> None:
    raw = P.encode(frame)
    assert P.decode(raw) == frame


@given(client_frames)
def test_client_frames_only_from_clients(frame: P.ClientFrame) -> None:
    raw = P.encode(frame)
    assert P.decode_client_frame(raw) == frame
    if not isinstance(frame, (P.Ping, P.Pong)):
        with pytest.raises(MalformedFrameError):
            P.decode_server_frame(raw)


@given(server_frames)
def test_server_frames_only_from_servers(frame: P.ServerFrame) -> None:
    raw = P.encode(frame)
    assert P.decode_server_frame(raw) == frame
    if not isinstance(frame, (P.Ping, P.Pong)):
        with pytest.raises(MalformedFrameError):
            P.decode_client_frame(raw)


@given(all_frames, st.data())
def test_every_truncation_is_rejected(frame: P.Frame, data: st.DataObject) -> None:
    raw = P.encode(frame)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(MalformedFrameError):
        P.decode(raw[:cut])


@given(all_frames, st.binary(min_size=1, max_size=20))
def test_trailing_bytes_are_rejected(frame: P.Frame, extra: bytes) -> None:
    with pytest.raises(MalformedFrameError):
        P.decode(P.encode(frame) + extra)


@given(st.binary(max_size=200))
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_garbage_parses_canonically_or_raises_typed(raw: bytes) -> None:
    try:
        frame = P.decode(raw)
    except MalformedFrameError:
        return
    assert P.encode(frame) == raw  # canonical: only one encoding per frame


@given(all_frames, st.data())
def test_bit_flips_are_canonical_or_rejected(frame: P.Frame, data: st.DataObject) -> None:
    raw = bytearray(P.encode(frame))
    pos = data.draw(st.integers(0, len(raw) - 1))
    raw[pos] ^= 1 << data.draw(st.integers(0, 7))
    try:
        parsed = P.decode(bytes(raw))
    except MalformedFrameError:
        return
    assert P.encode(parsed) == bytes(raw)
    assert parsed != frame


@given(
    st.integers(0, 255).filter(lambda t: t not in {1, 2, 3, 0x10, 0x11, 0x81, 0x82, 0x83, 0x84}),
    st.binary(max_size=40),
)
def test_unknown_frame_types_are_rejected(ftype: int, rest: bytes) -> None:
    with pytest.raises(MalformedFrameError, match="unknown frame type"):
        P.decode(bytes([ftype]) + rest)


# --------------------------------------------------------------------------- field rules


@pytest.mark.parametrize("bad", ["", "a" * 65, "has space", "é", "a/b", "a\x00"])
def test_bad_ids_rejected_when_building_and_parsing(bad: str) -> None:
    with pytest.raises(FieldError):
        P.Hello(bad, b"t", "alice")
    with pytest.raises(FieldError):
        P.Hello("room", b"t", bad)
    # the same id smuggled into a frame's bytes
    raw = bytearray(P.encode(P.Hello("room", b"t", "alice")))
    bad_bytes = bad.encode("utf-8")
    if 0 < len(bad_bytes) <= 255:
        forged = raw[:2] + bytes([len(bad_bytes)]) + bad_bytes + raw[2 + 1 + 4 :]
        with pytest.raises(MalformedFrameError):
            P.decode(bytes(forged))


@pytest.mark.parametrize("bad", ["", " ", "a b", "x" * 65, "\x7f", "é"])
def test_bad_kinds_rejected(bad: str) -> None:
    with pytest.raises(FieldError):
        P.Append(1, bad, b"")


def test_other_field_limits() -> None:
    with pytest.raises(FieldError):
        P.Hello("r", b"", "a")  # empty token
    with pytest.raises(FieldError):
        P.Hello("r", b"x" * 256, "a")
    with pytest.raises(FieldError):
        P.Hello("r", b"x", "a", resume_from=-1)
    with pytest.raises(FieldError):
        P.Hello("r", b"x", "a", resume_from=2**63)
    with pytest.raises(FieldError):
        P.Append(2**32, "k", b"")
    with pytest.raises(FieldError):
        P.Append(1, "k", "text")  # type: ignore[arg-type]
    with pytest.raises(FieldError):
        P.Ready(1, 2, 0, 0, 0, 0)  # join after head
    with pytest.raises(FieldError):
        P.Error(ErrorCode.ABUSE, "tab\there")
    with pytest.raises(FieldError):
        P.AppendOk(1, 0)
    with pytest.raises(FieldError):
        LogEntry(0, 0, EntryType.MESSAGE, 0, "a", "k", b"")  # seq starts at 1
    with pytest.raises(FieldError):
        LogEntry(1, 0, EntryType.LEFT, 0, "a", "", b"payload")
    with pytest.raises(FieldError):
        LogEntry(1, 0, EntryType.MESSAGE, FLAG_CREATOR, "a", "k", b"")
    with pytest.raises(FieldError):
        LogEntry(1, 0, EntryType.JOINED, 0, "a", "kind-on-notice", b"")
    with pytest.raises(FieldError):
        NewEntry(7, "a", 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        P.encode("not a frame")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"", "empty"),
        (b"\x82" + struct.pack(">QQ", 1, 0) + b"\x07\x00\x01a\x00\x00\x00\x00\x00", "entry type"),
        (b"\x82" + struct.pack(">QQ", 0, 0) + b"\x00\x00\x01a\x01k\x00\x00\x00\x00", "seq"),
        (b"\x84\x00\x63\x00\x00\x00\x00\x00" + bytes(8) + b"\x00\x00", "unknown error code"),
        (b"\x84\x00\x01\x00\x00\x00\x00\x02" + bytes(8) + b"\x00\x00", "fatal flag"),
        (b"\x02\x00\x00\x00\x01" + bytes(8) + b"\x00\x00\x00\x00\x00", "kind"),
        (b"\x02\x00\x00\x00\x01" + bytes(8) + b"\x01k\xff\xff\xff\xff", "truncated"),
    ],
)
def test_specific_malformed_frames(raw: bytes, reason: str) -> None:
    with pytest.raises(MalformedFrameError):
        P.decode(raw)


def test_text_and_non_bytes_rejected() -> None:
    for value in ("\x03", None, 3, ["x"]):
        with pytest.raises(MalformedFrameError):
            P.decode(value)
    assert P.decode(bytearray(b"\x03")) == P.Bye()
    assert P.decode(memoryview(b"\x03")) == P.Bye()


def test_reprs_hide_tokens_and_payloads() -> None:
    secret = b"SECRET-TOKEN-123"
    hello = P.Hello("r", secret, "a", join_payload=b"PAYLOAD-XYZ")
    append = P.Append(1, "k", b"PAYLOAD-XYZ")
    entry = LogEntry(1, 0, EntryType.MESSAGE, 0, "a", "k", b"PAYLOAD-XYZ")
    for text in (repr(hello), repr(append), repr(entry), str(hello)):
        assert "SECRET" not in text and "PAYLOAD" not in text
        assert "SECRET-TOKEN" not in text.encode().hex()


def test_new_entry_gets_its_seq() -> None:
    new = NewEntry(EntryType.MESSAGE, "a", 5, kind="k", payload=b"p")
    assert new.with_seq(3) == LogEntry(3, 5, EntryType.MESSAGE, 0, "a", "k", b"p")
