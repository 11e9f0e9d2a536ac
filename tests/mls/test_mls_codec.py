"""Property tests for the TLS/MLS codec: varints, vectors, optionals, strictness."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orange_fast.mls.codec import MAX_VARINT, Reader, Writer, decode_varint, encode_varint
from orange_fast.mls.errors import DecodeError

EXAMPLES = int(os.environ.get("ORANGE_FAST_HYPOTHESIS_EXAMPLES", "200"))


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.integers(min_value=0, max_value=MAX_VARINT))
def test_varint_round_trip(n: int) -> None:
    enc = encode_varint(n)
    expected_len = 1 if n < 0x40 else 2 if n < 0x4000 else 4
    assert len(enc) == expected_len
    assert decode_varint(enc) == (n, expected_len)
    r = Reader(enc)
    assert r.varint() == n
    r.finish()


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.integers(min_value=0, max_value=0x3FFF))
def test_non_minimal_varint_rejected(n: int) -> None:
    four = (0x80000000 | n).to_bytes(4, "big")
    with pytest.raises(DecodeError):
        Reader(four).varint()
    if n < 0x40:
        two = (0x4000 | n).to_bytes(2, "big")
        with pytest.raises(DecodeError):
            Reader(two).varint()


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.binary(min_size=1, max_size=8))
def test_varint_prefix_11_and_truncation(data: bytes) -> None:
    b = bytes([data[0] | 0xC0]) + data[1:]
    with pytest.raises(DecodeError):
        Reader(b).varint()
    first = data[0] & 0x3F | 0x40  # a 2-byte varint header alone is truncated
    with pytest.raises(DecodeError):
        Reader(bytes([first])).varint()


def test_varint_range() -> None:
    with pytest.raises(ValueError):
        encode_varint(MAX_VARINT + 1)
    with pytest.raises(ValueError):
        encode_varint(-1)
    assert encode_varint(MAX_VARINT) == b"\xbf\xff\xff\xff"
    with pytest.raises(DecodeError):
        Reader(b"").varint()


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(st.binary(max_size=70), max_size=10), st.one_of(st.none(), st.integers(0, 2**32 - 1)),
       st.integers(0, 2**64 - 1), st.integers(0, 255))
def test_structured_round_trip(items: list[bytes], opt: int | None, u64: int, u8: int) -> None:
    w = Writer().vector(items, Writer.opaque).optional(opt, Writer.u32).u64(u64).u8(u8).u16(u8 * 3)
    data = w.getvalue()
    r = Reader(data)
    assert r.vector(Reader.opaque) == items
    assert r.optional(Reader.u32) == opt
    assert r.u64() == u64 and r.u8() == u8 and r.u16() == u8 * 3
    r.finish()
    # every strict prefix fails with DecodeError, never another exception
    for n in range(len(data)):
        rr = Reader(data[:n])
        with pytest.raises(DecodeError):
            rr.vector(Reader.opaque)
            rr.optional(Reader.u32)
            rr.u64()
            rr.u8()
            rr.u16()
            rr.finish()
    with pytest.raises(DecodeError):
        Reader(data + b"\x00").finish()


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.integers(2, 255))
def test_bad_optional_flag(flag: int) -> None:
    with pytest.raises(DecodeError):
        Reader(bytes([flag, 0, 0, 0, 0])).optional(Reader.u32)


def test_vector_items_must_fill_length() -> None:
    # length 3 announced, items are uint16: the last item is cut by the vector boundary
    with pytest.raises(DecodeError):
        Reader(b"\x03\x00\x01\x00\x02").vector(Reader.u16)
    with pytest.raises(ValueError):
        Writer().u8(256)
