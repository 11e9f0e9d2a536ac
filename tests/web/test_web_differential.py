"""The TypeScript codecs against the Python ones on random cases (hypothesis), both directions.

Each case is generated here, computed by the Python implementation and by the Node one (one
long-lived Node process, see ``web_support.Oracle``), and the results compared byte for byte;
where one side refuses an input the other must refuse it with the same error class.
Runs in about 20 s.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orange_fast import sframe
from orange_fast.delivery import protocol as P
from orange_fast.delivery.errors import MalformedFrameError
from orange_fast.rtc import framing, h264
from orange_fast.rtc.errors import FramingError
from orange_fast.session.safety import safety_number

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])



u64 = st.one_of(st.integers(0, 7), st.integers(0, 2**16), st.integers(0, 2**64 - 1))
suites = st.sampled_from([1, 2, 3, 4, 5, 6, 7, 8])
base_keys = st.binary(min_size=1, max_size=64)


def py_encrypt(suite: int, kid: int, ctr: int, base_key: bytes, pt: bytes, meta: bytes) -> bytes:
    ctx = sframe.Context(suite)
    ctx.add_send_key(kid, base_key, start_counter=ctr)
    return ctx.encrypt(kid, pt, meta)


def py_decrypt(suite: int, kid: int, base_key: bytes, ct: bytes, meta: bytes) -> dict[str, str]:
    ctx = sframe.Context(suite)
    ctx.add_receive_key(kid, base_key)
    try:
        return {"pt": ctx.decrypt(ct, meta).hex()}
    except sframe.SFrameError as exc:
        return {"error": type(exc).__name__}


# ----------------------------------------------------------------------------- SFrame


@SETTINGS
@given(suite=suites, kid=u64, ctr=u64, base_key=base_keys, pt=st.binary(max_size=2048), meta=st.binary(max_size=64))
def test_sframe_python_encrypts_node_decrypts_and_back(oracle, suite, kid, ctr, base_key, pt, meta):
    case = {"suite": suite, "kid": str(kid), "base_key": base_key.hex(), "meta": meta.hex()}
    py_ct = py_encrypt(suite, kid, ctr, base_key, pt, meta)
    node_ct = oracle.ask("sframe_encrypt", ctr=str(ctr), pt=pt.hex(), **case)
    assert bytes.fromhex(node_ct["ct"]) == py_ct  # deterministic: same bytes both sides
    got = oracle.ask("sframe_decrypt", ct=py_ct.hex(), **case)
    assert (got["kid"], got["ctr"], got["pt"]) == (str(kid), str(ctr), pt.hex())
    assert py_decrypt(suite, kid, base_key, bytes.fromhex(node_ct["ct"]), meta) == {"pt": pt.hex()}


@pytest.mark.parametrize("size", [0, 1, 1023, 65536, 1 << 20])
@pytest.mark.parametrize("suite", [1, 4, 5, 6])
def test_sframe_large_frames_both_directions(oracle, suite, size):
    pt = bytes((i * 7 + size) & 0xFF for i in range(size))
    kid, ctr, base_key, meta = 2**40 + size, 2**33 + 5, b"k" * 16, b"\x01\x02"
    case = {"suite": suite, "kid": str(kid), "base_key": base_key.hex(), "meta": meta.hex()}
    py_ct = py_encrypt(suite, kid, ctr, base_key, pt, meta)
    assert bytes.fromhex(oracle.ask("sframe_encrypt", ctr=str(ctr), pt=pt.hex(), **case)["ct"]) == py_ct
    assert oracle.ask("sframe_decrypt", ct=py_ct.hex(), **case)["pt"] == pt.hex()


@SETTINGS
@given(suite=suites, kid=u64, base_key=base_keys, data=st.data())
def test_sframe_mutated_ciphertexts_refused_alike(oracle, suite, kid, base_key, data):
    """Truncations, bit flips, wrong metadata and foreign KIDs: both refuse with the same error class."""
    meta = data.draw(st.binary(max_size=8))
    ct = bytearray(py_encrypt(suite, kid, data.draw(u64), base_key, data.draw(st.binary(max_size=64)), meta))
    how = data.draw(st.sampled_from(["truncate", "flip", "meta", "kid", "garbage"]))
    if how == "truncate":
        ct = ct[: data.draw(st.integers(0, len(ct) - 1))]
    elif how == "flip":
        i = data.draw(st.integers(0, len(ct) - 1))
        ct[i] ^= 1 << data.draw(st.integers(0, 7))
    elif how == "meta":
        meta = meta + b"x"
    elif how == "kid":
        kid = (kid + 1) % 2**64
    else:
        ct = bytearray(data.draw(st.binary(max_size=40)))
    expected = py_decrypt(suite, kid, base_key, bytes(ct), meta)
    got = oracle.ask("sframe_decrypt", suite=suite, kid=str(kid), base_key=base_key.hex(), ct=ct.hex(), meta=meta.hex())
    if "error" in expected:
        assert got.get("error") == expected["error"]
    else:  # a flip that still decrypts can only be in a header that decodes to the same values
        assert got.get("pt") == expected["pt"]


# ----------------------------------------------------------------------------- framing

MIMES = [("audio/opus", False), ("video/VP8", False), ("video/VP8", True), ("video/H264", False), ("audio/PCMU", False)]


def annexb_units() -> st.SearchStrategy[bytes]:
    nal = st.tuples(st.integers(1, 23), st.integers(0, 3), st.binary(max_size=300)).map(
        lambda t: bytes([(t[1] << 5) | t[0]]) + t[2]
    )
    sc = st.sampled_from([b"\x00\x00\x01", b"\x00\x00\x00\x01"])
    return st.lists(st.tuples(sc, nal), min_size=1, max_size=6).map(lambda xs: b"".join(a + b for a, b in xs))


@SETTINGS
@given(codec=st.sampled_from(MIMES), suite=suites, kid=u64, ctr=u64, data=st.data())
def test_framing_protect_identical_and_unprotect_both_ways(oracle, codec, suite, kid, ctr, data):
    mime, clear = codec
    frame = data.draw(annexb_units() if mime == "video/H264" else st.binary(max_size=500))
    key = b"framing-key-0123"
    ctx = sframe.Context(suite)
    ctx.add_send_key(kid, key, start_counter=ctr)
    t = framing.transform_for(mime, vp8_clear_header=clear)
    case = {"mime": mime, "clear": clear, "suite": suite, "kid": str(kid), "base_key": key.hex()}
    try:
        py_wire = t.protect(ctx, kid, frame)
    except (FramingError, sframe.SFrameError) as exc:
        assert oracle.ask("protect", ctr=str(ctr), frame=frame.hex(), **case).get("error") == type(exc).__name__
        return
    node = oracle.ask("protect", ctr=str(ctr), frame=frame.hex(), **case)
    assert bytes.fromhex(node["wire"]) == py_wire
    back = oracle.ask("unprotect", wire=py_wire.hex(), **case)
    rx = sframe.Context(suite)
    rx.add_receive_key(kid, key)
    assert back["kid"] == str(kid)
    assert bytes.fromhex(back["frame"]) == t.unprotect(rx, py_wire)[1]


@SETTINGS
@given(data=st.binary(max_size=64).map(lambda b: bytes(x & 3 if x & 0x80 else x for x in b)))
def test_h264_escaping_and_splitting_agree(oracle, data):
    """escape/unescape/split_annexb/parse_wire on zero-heavy random bytes: same output or same refusal."""
    for op, fn in (
        ("h264_escape", h264.escape),
        ("h264_unescape", h264.unescape),
        ("h264_split", h264.split_annexb),
        ("h264_parse_wire", h264.parse_wire),
    ):
        got = oracle.ask(op, data=data.hex())
        try:
            out = fn(data)
        except FramingError:
            assert got.get("error") == "FramingError", op
            continue
        assert got["out"] == (out.hex() if isinstance(out, bytes) else [x.hex() for x in out]), op


# ----------------------------------------------------------------------------- delivery codec

ids = st.text("abcXYZ019._~:@+-", min_size=1, max_size=64)
kinds = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64)
seqs = st.integers(0, 2**63 - 1)
frames = st.one_of(
    st.builds(P.Hello, ids, st.binary(min_size=1, max_size=255), ids, seqs, st.binary(max_size=100)),
    st.builds(P.Append, st.integers(0, 2**32 - 1), kinds, st.binary(max_size=100), seqs),
    st.just(P.Bye()),
    st.builds(P.Ping, st.integers(0, 2**64 - 1)),
    st.builds(P.Pong, st.integers(0, 2**64 - 1)),
    st.builds(P.AppendOk, st.integers(0, 2**32 - 1), st.integers(1, 2**63 - 1)),
    st.builds(
        P.Error,
        st.sampled_from(list(P.ErrorCode)),
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=50),
        st.integers(0, 2**32 - 1),
        st.booleans(),
        seqs,
    ),
    seqs.flatmap(
        lambda head: st.builds(
            P.Ready, st.just(head), st.integers(0, head), st.integers(0, 2**64 - 1),
            st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
        )
    ),
    st.builds(P.LogEntry, st.integers(1, 2**63 - 1), seqs, st.just(0), st.just(0), ids, kinds, st.binary(max_size=50)),
    st.builds(
        P.LogEntry,
        st.integers(1, 2**63 - 1), seqs, st.just(1), st.integers(0, 1), ids, st.just(""), st.binary(max_size=50),
    ),
    st.builds(
        P.LogEntry, st.integers(1, 2**63 - 1), seqs, st.sampled_from([2, 3]), st.just(0), ids, st.just(""), st.just(b"")
    ),
)


# ERROR codes the TypeScript client knows (delivery.ts); the Python side may not know the newest yet.
TS_ERROR_CODES = set(range(1, 17))


def ts_knows_newer_error_code(data: bytes) -> bool:
    """An ERROR frame whose code TypeScript knows but this Python's ErrorCode does not."""
    ts_only = TS_ERROR_CODES - {int(c) for c in P.ErrorCode}
    return len(data) >= 3 and data[0] == 0x84 and int.from_bytes(data[1:3], "big") in ts_only


def py_decode(data: bytes) -> bytes | None:
    try:
        return P.encode(P.decode(data))
    except MalformedFrameError:
        return None


@SETTINGS
@given(frame=frames, data=st.data())
def test_delivery_codec_agrees_on_valid_and_mutated_frames(oracle, frame, data):
    """Node decodes and re-encodes Python's frames canonically; on mutations both accept or both refuse."""
    wire = P.encode(frame)
    got = oracle.ask("delivery_decode", data=wire.hex())
    assert bytes.fromhex(got["encoded"]) == wire
    mutated = bytearray(wire)
    how = data.draw(st.sampled_from(["truncate", "extend", "flip", "byte"]))
    if how == "truncate":
        mutated = mutated[: data.draw(st.integers(0, len(mutated) - 1))]
    elif how == "extend":
        mutated += data.draw(st.binary(min_size=1, max_size=3))
    else:
        i = data.draw(st.integers(0, len(mutated) - 1))
        if how == "byte":
            mutated[i] = data.draw(st.integers(0, 255))
        else:
            mutated[i] ^= 1 << data.draw(st.integers(0, 7))
    expected = py_decode(bytes(mutated))
    got = oracle.ask("delivery_decode", data=mutated.hex())
    if expected is None and ts_knows_newer_error_code(bytes(mutated)):
        return
    if expected is None:
        assert got.get("error") == "MalformedFrameError", got
    else:
        assert bytes.fromhex(got["encoded"]) == expected


def test_delivery_codec_refuses_what_python_refuses(oracle):
    cases = [b"", b"\x00", b"\x03\x00", b"\x10" + b"\x00" * 7, b"\x84" + struct.pack(">HIBQH", 99, 0, 0, 0, 0)]
    cases.append(b"\x84" + struct.pack(">HIBQH", 1, 0, 2, 0, 0))  # fatal flag 2
    cases.append(b"\x81\x01" + struct.pack(">QQQIII", 1, 2, 0, 0, 0, 0))  # join_seq > head_seq
    # LEFT with a payload
    cases.append(b"\x82" + struct.pack(">QQBB", 1, 0, 2, 0) + b"\x01a\x00" + struct.pack(">I", 1) + b"x")
    for case in cases:
        assert py_decode(case) is None
        assert oracle.ask("delivery_decode", data=case.hex()).get("error") == "MalformedFrameError", case.hex()


# ----------------------------------------------------------------------------- safety number


@SETTINGS
@given(
    auth=st.binary(min_size=16, max_size=64),
    members=st.lists(st.tuples(st.binary(max_size=40), st.binary(max_size=40)), min_size=1, max_size=12),
)
def test_safety_number_same_digits(oracle, auth, members):
    expected = safety_number(auth, members)
    got = oracle.ask("safety", auth=auth.hex(), members=[[a.hex(), b.hex()] for a, b in members])
    assert got == {"hex": expected.hex, "text": expected.text, "short": expected.short}


# ----------------------------------------------------------------------------- media keys

keyring_steps = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {
                "op": st.just("install"),
                "epoch": st.integers(0, 600),
                "key": st.binary(min_size=16, max_size=16).map(bytes.hex),
                "own": st.integers(0, 9),
                "members": st.lists(st.integers(0, 9), max_size=6),
                "now": st.integers(0, 50),
            }
        ),
        st.fixed_dictionaries({"op": st.just("expire"), "now": st.integers(0, 60)}),
        st.just({"op": "clear"}),
    ),
    max_size=12,
)


@SETTINGS
@given(steps=keyring_steps, epoch_bits=st.sampled_from([2, 8]), grace=st.integers(0, 10))
def test_key_ring_same_kids_and_grace_period(oracle, steps, epoch_bits, grace):
    """Random epochs (with low-bit collisions), expiries and clears: the same key operations, KIDs
    included, in the same order; the same refusals (an epoch installed twice)."""
    from orange_fast.session.keys import KeyRing, KeyScheduleError, KidLayout

    ring = KeyRing(KidLayout(epoch_bits, 16), 16, grace)
    expected: list[object] = []
    for s in steps:
        try:
            if s["op"] == "install":
                out = ring.install(s["epoch"], bytes.fromhex(s["key"]), s["own"], s["members"], s["now"])
                expected.append([[op.op, str(op.kid)] for op, _key in out])
            elif s["op"] == "expire":
                expected.append([[op.op, str(op.kid)] for op in ring.expire(s["now"])])
            else:
                expected.append([[op.op, str(op.kid)] for op in ring.clear()])
        except KeyScheduleError:
            expected.append({"error": "KeyScheduleError"})
    got = oracle.ask("keyring", epoch_bits=epoch_bits, sender_bits=16, key_size=16, grace=grace, steps=steps)
    assert got["steps"] == expected
