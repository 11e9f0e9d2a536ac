"""Every bad input gets the right typed exception, no crash, and changes no state.

The expected exception type of a damaged ciphertext comes from the reference
implementation (an independent oracle), never from the core itself; each test then
checks that the untouched valid frame still decrypts (so the failure consumed no
replay-window slot) and that an output buffer holds no plaintext.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sframe_support import ALL_SUITES, U64, examples, kids, suites

from orange_fast import sframe
from orange_fast.sframe import reference as ref

BASE = bytes(range(16))
OTHER = bytes(range(1, 17))
META = b"IETF SFrame WG"


def sender(suite, kid=0x123, start=0, base=BASE):
    ctx = sframe.Context(suite)
    ctx.add_send_key(kid, base, start_counter=start)
    return ctx


def receivers(suite, kid=0x123, base=BASE, window=128):
    core, oracle = sframe.Context(suite, replay_window=window), ref.Context(suite, replay_window=window)
    core.add_receive_key(kid, base)
    oracle.add_receive_key(kid, base)
    return core, oracle


def expected_error(oracle: ref.Context, data: bytes, meta: bytes) -> type[Exception] | None:
    try:
        oracle.decrypt(data, meta)
    except sframe.SFrameError as exc:
        return type(exc)
    return None


def assert_still_decrypts(core, ct, meta, pt) -> None:
    """No state change: the original frame is still accepted exactly once."""
    assert core.decrypt(ct, meta) == pt
    with pytest.raises(sframe.ReplayError):
        core.decrypt(ct, meta)


def check_failure(core, data, meta, exc_type) -> None:
    """``data`` fails in core.decrypt, decrypt_into and decrypt_with_kid with ``exc_type``."""
    with pytest.raises(exc_type):
        core.decrypt(data, meta)
    with pytest.raises(exc_type):
        core.decrypt_with_kid(bytearray(data), meta)
    out = bytearray(len(data) + 16)
    with pytest.raises(exc_type):
        core.decrypt_into(data, out, meta)
    assert out == bytearray(len(out)), "decrypt_into left bytes in the output after a failure"


# ----------------------------------------------------------------------------- damaged ciphertexts


@pytest.mark.parametrize("suite", ALL_SUITES, ids=lambda s: s.name)
@pytest.mark.parametrize("kid,ctr", [(0, 0), (5, 7), (0x123, 0x4567), (U64, U64 - 5)])
def test_every_truncation(suite, kid, ctr) -> None:
    pt = b"draft-ietf-sframe-enc"
    ct = sender(suite, kid, ctr).encrypt(kid, pt, META)
    core, oracle = receivers(suite, kid)
    hlen = sframe.decode_header(ct)[2]
    for cut in range(len(ct)):
        want = expected_error(oracle, ct[:cut], META)
        if cut < hlen or cut - hlen < suite.Nt:
            assert want is sframe.MalformedHeaderError
        else:
            assert want is sframe.AuthenticationError
        check_failure(core, ct[:cut], META, want)
        if cut - hlen < suite.Nt:
            with pytest.raises(sframe.MalformedHeaderError):
                core.plaintext_size(ct[:cut])
        else:
            assert core.plaintext_size(ct[:cut]) == cut - hlen - suite.Nt
    assert_still_decrypts(core, ct, META, pt)


@pytest.mark.parametrize("suite", ALL_SUITES, ids=lambda s: s.name)
@pytest.mark.parametrize("kid,ctr,size", [(0, 0, 0), (3, 9, 1), (0x123, 0x4567, 21), (2**60, 2**40, 3)])
def test_every_bit_flip_small_frame(suite, kid, ctr, size) -> None:
    pt = bytes(range(size))
    ct = sender(suite, kid, ctr).encrypt(kid, pt, META)
    core, oracle = receivers(suite, kid)
    seen = set()
    for pos in range(len(ct)):
        for bit in range(8):
            bad = bytearray(ct)
            bad[pos] ^= 1 << bit
            want = expected_error(oracle, bytes(bad), META)
            assert want is not None, f"flip {pos}.{bit} accepted by the reference"
            seen.add(want)
            with pytest.raises(want):
                core.decrypt(bytes(bad), META)
    out = np.zeros(len(ct), dtype=np.uint8)
    bad = bytearray(ct)
    bad[-1] ^= 0x80
    with pytest.raises(sframe.AuthenticationError):
        core.decrypt_into(bytes(bad), out, META)
    assert not out.any()
    assert sframe.AuthenticationError in seen
    assert_still_decrypts(core, ct, META, pt)


@examples(25)
@given(suite=suites, size=st.integers(22, 5000), data=st.data())
def test_bit_flip_at_each_byte_larger_frame(suite, size, data) -> None:
    pt = bytes(i * 7 & 0xFF for i in range(size))
    ct = sender(suite, 0x123, 0x4567).encrypt(0x123, pt, META)
    core, oracle = receivers(suite)
    positions = (
        range(len(ct)) if len(ct) <= 600 else sorted(set(range(0, len(ct), max(1, len(ct) // 300))) | {len(ct) - 1})
    )
    for pos in positions:
        bad = bytearray(ct)
        bad[pos] ^= 1 << data.draw(st.integers(0, 7), label="bit")
        want = expected_error(oracle, bytes(bad), META)
        assert want is not None
        with pytest.raises(want):
            core.decrypt(bad, META)
    assert_still_decrypts(core, ct, META, pt)


@pytest.mark.parametrize("suite", ALL_SUITES, ids=lambda s: s.name)
def test_wrong_key_wrong_metadata_unknown_kid(suite) -> None:
    pt = b"frame"
    ct = sender(suite).encrypt(0x123, pt, META)
    core, _ = receivers(suite, base=OTHER)
    check_failure(core, ct, META, sframe.AuthenticationError)
    right, _ = receivers(suite)
    for meta in (b"", META[:-1], META + b"\0", b"IETF SFrame WH"):
        check_failure(right, ct, meta, sframe.AuthenticationError)
    assert_still_decrypts(right, ct, META, pt)
    wrong_kid, _ = receivers(suite, kid=0x124)
    check_failure(wrong_kid, ct, META, sframe.UnknownKeyError)
    # same base key, other KID: keys are bound to the KID, so a re-labelled frame fails
    relabelled = sframe.encode_header(0x124, 0x0) + ct[len(sframe.encode_header(0x123, 0)) :]
    check_failure(wrong_kid, relabelled, META, sframe.AuthenticationError)
    # the key can reappear: the frame then decrypts
    wrong_kid.add_receive_key(0x123, BASE)
    assert wrong_kid.decrypt(ct, META) == pt


def test_direction_is_enforced() -> None:
    ctx = sframe.Context(4)
    ctx.add_send_key(1, BASE)
    ctx.add_receive_key(2, BASE)
    ct_for_1 = sender(4, kid=1).encrypt(1, b"x")
    with pytest.raises(sframe.UnknownKeyError):
        ctx.encrypt(2, b"x")  # receive key used to encrypt
    with pytest.raises(sframe.UnknownKeyError):
        ctx.encrypt_into(2, b"x", bytearray(64))
    with pytest.raises(sframe.UnknownKeyError):
        ctx.encrypt_batch(2, [b"x"])
    with pytest.raises(sframe.UnknownKeyError):
        ctx.encrypt_packed(2, np.zeros(1, np.uint8), np.array([0, 1], np.int64))
    with pytest.raises(sframe.UnknownKeyError):
        ctx.decrypt(ct_for_1)  # send key used to decrypt
    with pytest.raises(ValueError):
        ctx.add_receive_key(1, BASE)  # would make KID 1 both directions
    with pytest.raises(ValueError):
        ctx.add_send_key(2, BASE)
    with pytest.raises(ValueError):
        ctx.add_send_key(1, OTHER)  # already has a key
    assert ctx.next_counter(1) == 0 and ctx.send_kids() == [1] and ctx.receive_kids() == [2]
    with pytest.raises(sframe.UnknownKeyError):
        ctx.remove_key(3)
    with pytest.raises(sframe.UnknownKeyError):
        ctx.encrypt(3, b"x")


# ----------------------------------------------------------------------------- headers


NON_MINIMAL = [
    "8000" + "08",  # KID extended with a leading zero byte (value 8 as 00 08 would need K=1)
    "9000" + "08",
    "0800",  # CTR extended holding 0
    "0807",  # CTR extended holding 7
    "8007",  # KID extended holding 7
    "0900ff",  # CTR 2 bytes with leading zero
    "f0" + "00" * 8,
    "f000ffffffffffffff",
    "0f00" + "ff" * 7,
]
TRUNCATED = ["88", "8801", "99012345", "ff" + "ff" * 15, "0f" + "01" * 7, "f7" + "01" * 7]


@pytest.mark.parametrize("hexed", NON_MINIMAL + TRUNCATED)
def test_non_minimal_or_truncated_headers_rejected(hexed) -> None:
    raw = bytes.fromhex(hexed)
    payload = b"" if hexed in TRUNCATED else bytes(32)
    with pytest.raises(sframe.MalformedHeaderError):
        sframe.decode_header(raw)
    with pytest.raises(sframe.MalformedHeaderError):
        ref.decode_header(raw)
    core = sframe.Context(4)
    for kid in (0, 7, 8, 0x123):
        core.add_receive_key(kid, BASE)
    with pytest.raises(sframe.MalformedHeaderError):
        core.decrypt(raw + payload)
    with pytest.raises(sframe.MalformedHeaderError):
        core.plaintext_size(raw + payload)


def test_non_minimal_re_encoding_of_valid_frame_is_rejected() -> None:
    """A valid frame whose header is re-encoded non-minimally must not be accepted."""
    ct = sender(4, kid=5, start=3).encrypt(5, b"abc")
    core, _ = receivers(4, kid=5)
    for hdr in (bytes([0x88, 5, 3]), bytes([0x88, 5]) + b"", bytes([0x58, 3]), bytes([0x98, 0, 5, 3])):
        with pytest.raises(sframe.MalformedHeaderError):
            core.decrypt(hdr + ct[1:])
    assert core.decrypt(ct) == b"abc"


def test_empty_input() -> None:
    for impl in (sframe, ref):
        with pytest.raises(sframe.MalformedHeaderError):
            impl.decode_header(b"")
    core, _ = receivers(4)
    check_failure(core, b"", b"", sframe.MalformedHeaderError)


@pytest.mark.parametrize("kid,ctr", [(-1, 0), (0, -1), (2**64, 0), (0, 2**64), (2**70, 2**70)])
def test_kid_ctr_out_of_range(kid, ctr) -> None:
    for impl in (sframe, ref):
        with pytest.raises(ValueError):
            impl.encode_header(kid, ctr)
    ctx = sframe.Context(4)
    if not 0 <= kid <= U64:
        with pytest.raises(ValueError):
            ctx.add_send_key(kid, BASE)
        with pytest.raises(ValueError):
            ctx.add_receive_key(kid, BASE)
        with pytest.raises(ValueError):
            ctx.encrypt(kid, b"x")
        with pytest.raises(ValueError):
            ctx.has_key(kid)
    if not 0 <= ctr <= U64:
        with pytest.raises(ValueError):
            ctx.add_send_key(1, BASE, start_counter=ctr)
        assert not ctx.has_key(1)


@pytest.mark.parametrize("bad", ["1", 1.0, None, b"\x01", [1]])
def test_kid_wrong_type(bad) -> None:
    with pytest.raises(TypeError):
        sframe.encode_header(bad, 0)
    with pytest.raises(TypeError):
        sframe.encode_header(0, bad)
    ctx = sframe.Context(4)
    with pytest.raises(TypeError):
        ctx.add_send_key(bad, BASE)
    if bad is not None:  # start_counter=None means "continue"
        with pytest.raises(TypeError):
            ctx.add_send_key(1, BASE, start_counter=bad)
    assert not ctx.has_key(1)


@pytest.mark.parametrize("suite", [0, 9, 0xF000, -1, 2**16 + 1, "AES_128_GCM_SHA256_128", None])
def test_unknown_suite(suite) -> None:
    with pytest.raises((ValueError, TypeError)):
        sframe.Context(suite)


@pytest.mark.parametrize("window", [-1, 2**40])
def test_bad_replay_window(window) -> None:
    with pytest.raises(ValueError):
        sframe.Context(4, replay_window=window)


@pytest.mark.parametrize("suite", ALL_SUITES, ids=lambda s: s.name)
def test_empty_base_key(suite) -> None:
    ctx = sframe.Context(suite)
    for empty in (b"", bytearray(), memoryview(b""), np.zeros(0, np.uint8)):
        with pytest.raises(ValueError):
            ctx.add_send_key(1, empty)
        with pytest.raises(ValueError):
            ctx.add_receive_key(2, empty)
    assert not ctx.has_key(1) and not ctx.has_key(2)
    ctx.add_send_key(1, b"\0")  # a one-byte key is fine
    assert ctx.next_counter(1) == 0


# ----------------------------------------------------------------------------- buffer types

NON_CONTIGUOUS = np.arange(40, dtype=np.uint8)[::2]
BAD_BUFFERS = ["text", 5, None, [1, 2, 3], NON_CONTIGUOUS, 1.5, object()]


@pytest.mark.parametrize(
    "bad", BAD_BUFFERS, ids=lambda b: type(b).__name__ + ("-strided" if isinstance(b, np.ndarray) else "")
)
def test_wrong_buffer_types(bad) -> None:
    enc = sframe.Context(4)
    enc.add_send_key(1, BASE)
    ct = enc.encrypt(1, b"payload")
    assert enc.next_counter(1) == 1
    with pytest.raises(TypeError):
        enc.encrypt(1, bad)
    with pytest.raises(TypeError):
        enc.encrypt(1, b"x", bad)
    with pytest.raises(TypeError):
        enc.encrypt_into(1, bad, bytearray(100))
    with pytest.raises(TypeError):
        enc.encrypt_into(1, b"x", bad)
    with pytest.raises(TypeError):
        enc.encrypt_batch(1, [b"ok", bad])
    with pytest.raises(TypeError):
        enc.encrypt_batch(1, [b"ok"], [bad])
    with pytest.raises(TypeError):
        enc.add_send_key(2, bad)
    assert enc.next_counter(1) == 1, "a failed call used a counter"
    assert not enc.has_key(2)
    dec, _ = receivers(4, kid=1)
    with pytest.raises(TypeError):
        dec.decrypt(bad)
    with pytest.raises(TypeError):
        dec.decrypt(ct, bad)
    with pytest.raises(TypeError):
        dec.decrypt_into(bad, bytearray(100))
    with pytest.raises(TypeError):
        dec.decrypt_into(ct, bad)
    with pytest.raises(TypeError):
        dec.decrypt_batch([ct, bad])
    with pytest.raises(TypeError):
        dec.plaintext_size(bad)
    with pytest.raises(TypeError):
        dec.add_receive_key(3, bad)
    with pytest.raises(TypeError):
        sframe.decode_header(bad)
    assert dec.decrypt(ct) == b"payload"


def test_readonly_output_buffers_rejected() -> None:
    enc = sframe.Context(4)
    enc.add_send_key(1, BASE)
    ro = np.zeros(100, np.uint8)
    ro.flags.writeable = False
    for out in (bytes(100), memoryview(bytearray(100)).toreadonly(), ro):
        with pytest.raises(TypeError):
            enc.encrypt_into(1, b"x", out)
    assert enc.next_counter(1) == 0
    ct = enc.encrypt(1, b"x")
    dec, _ = receivers(4, kid=1)
    with pytest.raises(TypeError):
        dec.decrypt_into(ct, bytes(100))
    assert dec.decrypt(ct) == b"x"


def test_buffer_kinds_accepted() -> None:
    enc = sframe.Context(5)
    enc.add_send_key(9, BASE)
    frame = b"0123456789" * 10
    dec, _ = receivers(5, kid=9)
    for form in (frame, bytearray(frame), memoryview(frame), np.frombuffer(frame, np.uint8),
                 memoryview(b"xx" + frame)[2:], np.frombuffer(frame, np.uint8).reshape(10, 10)):
        ct = enc.encrypt(9, form, memoryview(META))
        assert dec.decrypt(np.frombuffer(ct, np.uint8), bytearray(META)) == frame


# ----------------------------------------------------------------------------- output buffer size/overlap


@pytest.mark.parametrize("suite", ALL_SUITES, ids=lambda s: s.name)
@pytest.mark.parametrize("size", [0, 1, 100])
def test_too_small_output_buffers(suite, size) -> None:
    enc = sframe.Context(suite)
    enc.add_send_key(0x123, BASE, start_counter=0x4567)
    frame = bytes(range(size))
    need = enc.ciphertext_size(0x123, size)
    out = bytearray(b"\xee" * (need - 1))
    with pytest.raises(sframe.BufferTooSmallError):
        enc.encrypt_into(0x123, frame, out, META)
    assert out == bytearray(b"\xee" * (need - 1)) and enc.next_counter(0x123) == 0x4567
    with pytest.raises(sframe.BufferTooSmallError):
        enc.encrypt_into(0x123, frame, bytearray(), META)
    full = bytearray(need)
    assert enc.encrypt_into(0x123, frame, full, META) == need
    ct = bytes(full)
    dec, _ = receivers(suite)
    if size:
        small = bytearray(size - 1)
        with pytest.raises(sframe.BufferTooSmallError):
            dec.decrypt_into(ct, small, META)
        assert small == bytearray(size - 1)
    exact = bytearray(size)
    assert dec.decrypt_into(ct, exact, META) == size and bytes(exact) == frame
    with pytest.raises(sframe.ReplayError):
        dec.decrypt_into(ct, bytearray(size), META)


def test_overlapping_output_buffers() -> None:
    enc = sframe.Context(4)
    enc.add_send_key(1, BASE)
    arena = bytearray(300)
    view = memoryview(arena)
    view[:50] = bytes(range(50))
    for out in (view[:100], view[10:200], view[49:120], view[0:300]):
        with pytest.raises(ValueError):
            enc.encrypt_into(1, view[:50], out)
    assert enc.next_counter(1) == 0
    assert enc.encrypt_into(1, view[:50], view[50:150]) == 1 + 50 + 16  # adjacent: no overlap
    ct = bytes(view[50:117])
    dec, _ = receivers(4, kid=1)
    arena2 = bytearray(200)
    v2 = memoryview(arena2)
    v2[:67] = ct
    for out in (v2[:67], v2[60:200], v2[0:50]):
        with pytest.raises(ValueError):
            dec.decrypt_into(v2[:67], out)
    assert dec.decrypt_into(v2[:67], v2[67:]) == 50  # adjacent is fine
    assert bytes(v2[67:117]) == bytes(range(50))


@examples(30)
@given(suite=suites, kid=kids, base=st.binary(min_size=1, max_size=64))
def test_reference_and_core_agree_on_garbage(suite, kid, base) -> None:
    """Random KIDs: a frame under an uninstalled KID is UnknownKeyError in both."""
    ct = sframe.Context(suite)
    ct.add_send_key(kid, base)
    frame = ct.encrypt(kid, b"abc")
    core, oracle = sframe.Context(suite), ref.Context(suite)
    other = (kid + 1) % 2**64
    core.add_receive_key(other, base)
    oracle.add_receive_key(other, base)
    with pytest.raises(sframe.UnknownKeyError):
        core.decrypt(frame)
    with pytest.raises(sframe.UnknownKeyError):
        oracle.decrypt(frame)


@pytest.mark.parametrize("suite", ALL_SUITES, ids=lambda s: s.name)
@pytest.mark.parametrize("size", [16, 1000, 40_000])
def test_failed_decrypt_into_leaves_no_plaintext(suite, size) -> None:
    """Only the tag is damaged, so a decrypt-before-verify would yield the real plaintext:
    after the failure ``out`` must be unchanged or wiped, never hold plaintext bytes."""
    pt = bytes(range(256)) * (size // 256) + bytes(size % 256)
    pt = bytes((b % 251) + 1 for b in pt)  # no zero bytes, no 0xEE
    ct = sender(suite).encrypt(0x123, pt, META)
    core, _ = receivers(suite)
    for damage in ("tag", "meta"):
        bad = bytearray(ct)
        meta = META
        if damage == "tag":
            bad[-1] ^= 0x10
        else:
            meta = META + b"!"
        for fill in (0x00, 0xEE):
            out = bytearray([fill]) * (size + 8)
            with pytest.raises(sframe.AuthenticationError):
                core.decrypt_into(bytes(bad), out, meta)
            head = out[:size]
            assert head in (bytearray([fill]) * size, bytearray(size)), "plaintext left in out"
            assert out[size:] == bytearray([fill]) * 8, "bytes beyond the plaintext length were written"
            arr = np.full(size, fill, np.uint8)
            with pytest.raises(sframe.AuthenticationError):
                core.decrypt_into(bytes(bad), arr, meta)
            assert (arr == fill).all() or not arr.any()
    assert_still_decrypts(core, ct, META, pt)


@pytest.mark.parametrize("suite", [1, 4, 8])
def test_output_overlapping_metadata(suite) -> None:
    """``out`` sharing memory with ``metadata``: either refused (ValueError, no counter used)
    or a ciphertext bound to the metadata the caller passed -- never a silent wrong tag."""
    enc = sframe.Context(suite)
    enc.add_send_key(0x123, BASE)
    dec, _ = receivers(suite)
    arena = bytearray(200)
    view = memoryview(arena)
    view[0:14] = META
    frame = b"hello world" * 3
    try:
        n = enc.encrypt_into(0x123, frame, view[0:100], view[0:14])
    except ValueError:
        assert enc.next_counter(0x123) == 0
    else:
        assert dec.decrypt(bytes(view[:n]), META) == frame
    # decrypt_into whose out overlaps the metadata
    ct = enc.encrypt(0x123, frame, META)
    arena2 = bytearray(200)
    v2 = memoryview(arena2)
    v2[0:14] = META
    try:
        n = dec.decrypt_into(ct, v2[0:100], v2[0:14])
    except ValueError:
        assert dec.decrypt(ct, META) == frame
    else:
        assert bytes(v2[:n]) == frame
