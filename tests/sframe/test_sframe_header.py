"""Property tests of the header codec (core and reference)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sframe_support import counters, examples, kids

from orange_fast import sframe
from orange_fast.sframe import reference as ref


def expected_len(v: int) -> int:
    return 0 if v < 8 else (v.bit_length() + 7) // 8


@examples(400)
@given(kid=kids, ctr=counters, tail=st.binary(max_size=8))
def test_round_trip(kid, ctr, tail) -> None:
    hdr = sframe.encode_header(kid, ctr)
    assert hdr == ref.encode_header(kid, ctr)
    assert len(hdr) == 1 + expected_len(kid) + expected_len(ctr) <= sframe.MAX_HEADER_SIZE
    assert sframe.decode_header(hdr + tail) == (kid, ctr, len(hdr))
    assert ref.decode_header(hdr + tail) == (kid, ctr, len(hdr))


@examples(600)
@given(raw=st.binary(max_size=20))
def test_decode_accepts_exactly_the_canonical_encodings(raw) -> None:
    """Any input either fails with MalformedHeaderError or starts with the minimal
    encoding of the values it decodes to (strictness = canonical form)."""
    try:
        kid, ctr, hlen = sframe.decode_header(raw)
    except sframe.MalformedHeaderError:
        with pytest.raises(sframe.MalformedHeaderError):
            ref.decode_header(raw)
        return
    assert ref.decode_header(raw) == (kid, ctr, hlen)
    assert raw[:hlen] == sframe.encode_header(kid, ctr)


@examples(200)
@given(config=st.integers(0, 255), body=st.binary(min_size=16, max_size=16))
def test_every_config_byte(config, body) -> None:
    """Header length follows from the config byte alone; decoding never reads past it."""
    raw = bytes([config]) + body
    k, c = config >> 4, config & 0xF
    want = 1 + ((k & 7) + 1 if k & 8 else 0) + ((c & 7) + 1 if c & 8 else 0)
    try:
        _, _, hlen = sframe.decode_header(raw)
    except sframe.MalformedHeaderError:
        return
    assert hlen == want
    with pytest.raises(sframe.MalformedHeaderError):
        sframe.decode_header(raw[: want - 1])  # one byte short (empty when want == 1)
