"""Safety number: derivation, rendering, injectivity, what changes it."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orange_fast.session.safety import SafetyNumber, render_digits, safety_number

AUTH = bytes(range(32))


def test_hand_worked_digest() -> None:
    # The input written out byte by byte from the docstring's definition.
    manual = (
        b"orange_fast safety number v1"
        + b"\x00\x00\x00\x20" + bytes(range(32))
        + b"\x00\x00\x00\x02"
        + b"\x00\x00\x00\x05alice" + b"\x00\x00\x00\x03" + b"\x01\x02\x03"
        + b"\x00\x00\x00\x03bob" + b"\x00\x00\x00\x02" + b"\xaa\xbb"
    )
    expected = hashlib.sha256(manual).hexdigest()
    # members given in the "wrong" order: they are sorted
    sn = safety_number(AUTH, [(b"bob", b"\xaa\xbb"), (b"alice", b"\x01\x02\x03")])
    assert sn.hex == expected
    assert len(sn.hex) == 64


def test_hand_worked_rendering() -> None:
    digest = bytes.fromhex(
        "0000" "0001" "ffff" "3039" "8000" "000a" "2710" "d431" "0100" "7fff" "00ff" "1234"
    ) + b"\x99" * 8
    assert render_digits(digest) == "00000 00001 65535 12345 32768 00010 10000 54321 00256 32767 00255 04660"


def test_text_shape_and_bits_shown() -> None:
    sn = safety_number(AUTH, [(b"a", b"k")])
    groups = sn.text.split(" ")
    assert len(groups) == 12 and all(len(g) == 5 and g.isdigit() for g in groups)
    # 12 groups x 16 bits = 192 bits >= 60
    assert str(sn) == sn.text and sn.text in repr(sn)


def test_reference_design_collision_is_gone() -> None:
    # [111, 11] and [11, 111] rendered the same in the reference design ("11111").
    a = render_digits(bytes([111, 11]) + bytes(22))
    b = render_digits(bytes([11, 111]) + bytes(22))
    assert a != b


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=24, max_size=24), st.binary(min_size=24, max_size=24))
def test_rendering_is_injective(x: bytes, y: bytes) -> None:
    if x != y:
        assert render_digits(x) != render_digits(y)
    else:
        assert render_digits(x) == render_digits(y)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=24, max_size=64))
def test_rendering_decodes_back(x: bytes) -> None:
    text = render_digits(x)
    back = b"".join(int(g).to_bytes(2, "big") for g in text.split(" "))
    assert back == x[:24]


def test_ghost_member_changes_number() -> None:
    roster = [(b"alice", b"ka"), (b"bob", b"kb")]
    base = safety_number(AUTH, roster)
    ghost = safety_number(AUTH, roster + [(b"ghost", b"kg")])
    assert not base.matches(ghost)


def test_substituted_signature_key_changes_number() -> None:
    base = safety_number(AUTH, [(b"alice", b"ka"), (b"bob", b"kb")])
    mitm = safety_number(AUTH, [(b"alice", b"ka"), (b"bob", b"evil")])
    assert base.text != mitm.text


def test_epoch_authenticator_changes_number() -> None:
    roster = [(b"alice", b"ka")]
    assert safety_number(AUTH, roster) != safety_number(bytes(32), roster)


def test_field_boundaries_are_unambiguous() -> None:
    # ("ab", "c") vs ("a", "bc"): length prefixes keep them apart
    assert safety_number(AUTH, [(b"ab", b"c")]) != safety_number(AUTH, [(b"a", b"bc")])


def test_order_independent_and_matches() -> None:
    r = [(b"c", b"3"), (b"a", b"1"), (b"b", b"2")]
    x = safety_number(AUTH, r)
    y = safety_number(AUTH, list(reversed(r)))
    assert x.matches(y) and x == y


@pytest.mark.parametrize(
    "auth, members, exc",
    [
        (b"short", [(b"a", b"k")], ValueError),
        ("text", [(b"a", b"k")], TypeError),
        (AUTH, [], ValueError),
        (AUTH, [(b"a",)], TypeError),
        (AUTH, [("a", b"k")], TypeError),
        (AUTH, [(b"a", b"k" * 70000)], ValueError),
    ],
)
def test_bad_inputs(auth: object, members: object, exc: type) -> None:
    with pytest.raises(exc):
        safety_number(auth, members)  # type: ignore[arg-type]


def test_render_bad_inputs() -> None:
    with pytest.raises(ValueError):
        render_digits(b"\x00" * 10)
    with pytest.raises(TypeError):
        render_digits("00")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        SafetyNumber(b"\x00" * 32).matches("x")  # type: ignore[arg-type]


def test_short_number_is_the_first_five_groups() -> None:
    digest = bytes.fromhex("0000" "0001" "ffff" "3039" "8000" "000a") + b"\x99" * 20
    sn = SafetyNumber(digest)
    assert sn.short == "00000 00001 65535 12345 32768"  # 5 x 16 = 80 bits, worked by hand
    assert sn.text.startswith(sn.short + " ")


@settings(max_examples=200, deadline=None)
@given(a=st.binary(min_size=32, max_size=32), b=st.binary(min_size=32, max_size=32))
def test_short_number_is_injective_on_its_80_bits(a: bytes, b: bytes) -> None:
    assert (SafetyNumber(a).short == SafetyNumber(b).short) == (a[:10] == b[:10])
