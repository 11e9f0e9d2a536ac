"""Property tests for the codec / message fast paths (performance work) against independent reference
encoders written here from RFC 9420 §2.1.2 (varints), RFC 8446 §3 (vectors) and RFC 9420 §7.2 (LeafNode).

The fast paths (one-byte varint table, precompiled struct packers, bytes-join LeafNode encoding, inline
``Reader.opaque`` / empty ``Reader.vector``, ``decode_enum`` table lookup) must give byte-identical output
and the same errors as the straightforward encoding.
"""

from __future__ import annotations

import os
from enum import IntEnum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orange_fast.mls import messages as M
from orange_fast.mls.codec import Reader, Writer, decode_enum, pack_u16_vector, pack_u32_vector
from orange_fast.mls.errors import DecodeError

EXAMPLES = int(os.environ.get("ORANGE_FAST_HYPOTHESIS_EXAMPLES", "200"))


# -- independent reference encoders -------------------------------------------------------------------
def ref_varint(n: int) -> bytes:
    if n < 64:
        return n.to_bytes(1, "big")
    if n < 16384:
        return (n | 0x4000).to_bytes(2, "big")
    return (n | 0x80000000).to_bytes(4, "big")


def ref_opaque(b: bytes) -> bytes:
    return ref_varint(len(b)) + b


def ref_uint_vector(items: list, width: int) -> bytes:
    body = b"".join(int(x).to_bytes(width, "big") for x in items)
    return ref_varint(len(body)) + body


def ref_leaf_content(leaf: M.LeafNode) -> bytes:
    out = ref_opaque(leaf.encryption_key) + ref_opaque(leaf.signature_key)
    cred = leaf.credential
    out += int(cred.credential_type).to_bytes(2, "big")
    if cred.credential_type == M.CredentialType.basic:
        out += ref_opaque(cred.identity)
    else:
        certs = b"".join(ref_opaque(c) for c in cred.certificates)
        out += ref_varint(len(certs)) + certs
    caps = leaf.capabilities
    for lst in (caps.versions, caps.cipher_suites, caps.extensions, caps.proposals, caps.credentials):
        out += ref_uint_vector(lst, 2)
    out += int(leaf.leaf_node_source).to_bytes(1, "big")
    if leaf.leaf_node_source == M.LeafNodeSource.key_package:
        out += leaf.lifetime.not_before.to_bytes(8, "big") + leaf.lifetime.not_after.to_bytes(8, "big")
    elif leaf.leaf_node_source == M.LeafNodeSource.commit:
        out += ref_opaque(leaf.parent_hash or b"")
    exts = b"".join(int(e.extension_type).to_bytes(2, "big") + ref_opaque(e.extension_data)
                    for e in leaf.extensions)
    return out + ref_varint(len(exts)) + exts


# -- varint / opaque / integer vectors ----------------------------------------------------------------
u16s = st.lists(st.integers(min_value=0, max_value=0xFFFF), max_size=40)
u32s = st.lists(st.integers(min_value=0, max_value=0xFFFFFFFF), max_size=40)


@settings(max_examples=EXAMPLES, deadline=None)
@given(u16s, u32s)
def test_integer_vectors_match_reference(a: list, b: list) -> None:
    assert pack_u16_vector(a) == ref_uint_vector(a, 2)
    assert pack_u32_vector(b) == ref_uint_vector(b, 4)
    w = Writer()
    w.u16_vector(a).u32_vector(b)
    data = w.getvalue()
    assert data == ref_uint_vector(a, 2) + ref_uint_vector(b, 4)
    r = Reader(data)
    assert r.u16_vector() == a
    assert r.u32_vector() == b
    r.finish()


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=80))
def test_opaque_matches_reference_and_round_trips(a: bytes, b: bytes) -> None:
    w = Writer()
    w.opaque(a).opaque(bytearray(b)).opaque(memoryview(a))
    data = w.getvalue()
    assert data == ref_opaque(a) + ref_opaque(b) + ref_opaque(a)
    r = Reader(data)
    assert r.opaque() == a and r.opaque() == b and r.opaque() == a
    r.finish()


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.binary(max_size=200), st.data())
def test_truncated_opaque_rejected(a: bytes, data: st.DataObject) -> None:
    enc = ref_opaque(a)
    cut = data.draw(st.integers(min_value=0, max_value=len(enc) - 1))
    with pytest.raises(DecodeError):
        Reader(enc[:cut]).opaque()


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(st.binary(max_size=70), max_size=6))
def test_vectors_of_opaque_including_empty(items: list) -> None:
    w = Writer()
    w.vector(items, Writer.opaque)
    body = b"".join(ref_opaque(x) for x in items)
    assert w.getvalue() == ref_varint(len(body)) + body
    r = Reader(w.getvalue() + b"\x00")
    assert r.vector(Reader.opaque) == items
    assert r.vector(Reader.opaque) == []  # the empty-vector fast path
    r.finish()


def test_empty_vector_fast_path_keeps_strictness() -> None:
    assert Reader(b"\x00").vector(Reader.u8) == []
    with pytest.raises(DecodeError):
        Reader(b"").vector(Reader.u8)
    with pytest.raises(DecodeError):
        Reader(b"\x02\x01").vector(Reader.u8)  # announces 2 bytes, has 1
    with pytest.raises(DecodeError):
        Reader(b"\x03\x00\x01\x02").vector(Reader.u16)  # items overrun the vector


class _Colour(IntEnum):
    red = 1
    green = 2


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.integers(min_value=-5, max_value=300))
def test_decode_enum_table(value: int) -> None:
    if value in (1, 2):
        got = decode_enum(_Colour, value, "colour")
        assert got is (_Colour.red if value == 1 else _Colour.green)
    else:
        with pytest.raises(DecodeError):
            decode_enum(_Colour, value, "colour")


# -- LeafNode -----------------------------------------------------------------------------------------
@st.composite
def leaf_nodes(draw: st.DrawFn) -> M.LeafNode:
    source = draw(st.sampled_from(list(M.LeafNodeSource)))
    if draw(st.booleans()):
        cred = M.Credential.basic(draw(st.binary(max_size=80)))
    else:
        cred = M.Credential(M.CredentialType.x509, b"", draw(st.lists(st.binary(max_size=40), max_size=3)))
    caps = M.Capabilities(*(draw(st.lists(st.integers(min_value=0, max_value=0xFFFF), max_size=20))
                            for _ in range(5)))
    lifetime = None
    parent_hash = None
    if source == M.LeafNodeSource.key_package:
        lifetime = M.Lifetime(draw(st.integers(min_value=0, max_value=2**64 - 1)),
                              draw(st.integers(min_value=0, max_value=2**64 - 1)))
    elif source == M.LeafNodeSource.commit:
        parent_hash = draw(st.binary(max_size=64))
    exts = [M.Extension(draw(st.integers(min_value=0, max_value=0xFFFF)), draw(st.binary(max_size=70)))
            for _ in range(draw(st.integers(min_value=0, max_value=3)))]
    return M.LeafNode(draw(st.binary(min_size=1, max_size=133)), draw(st.binary(min_size=1, max_size=133)),
                      cred, caps, source, lifetime, parent_hash, exts, draw(st.binary(max_size=132)))


@settings(max_examples=EXAMPLES, deadline=None)
@given(leaf_nodes(), st.binary(max_size=40), st.integers(min_value=0, max_value=2**32 - 1))
def test_leaf_node_encoding_matches_reference(leaf: M.LeafNode, group_id: bytes, index: int) -> None:
    content = ref_leaf_content(leaf)
    raw = leaf.to_bytes()
    assert raw == content + ref_opaque(leaf.signature)
    w = Writer()
    M.encode_node(w, leaf)
    assert w.getvalue() == b"\x01" + raw
    if leaf.leaf_node_source == M.LeafNodeSource.key_package:
        assert leaf.tbs() == content
    else:
        assert leaf.tbs(group_id, index) == content + ref_opaque(group_id) + index.to_bytes(4, "big")
        with pytest.raises(ValueError):
            leaf.tbs()
    back = M.LeafNode.from_bytes(raw)
    assert back == leaf
    assert back.to_bytes() == raw


@settings(max_examples=EXAMPLES, deadline=None)
@given(leaf_nodes(), st.data())
def test_truncated_leaf_node_rejected(leaf: M.LeafNode, data: st.DataObject) -> None:
    raw = leaf.to_bytes()
    cut = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    with pytest.raises(DecodeError):
        M.LeafNode.from_bytes(raw[:cut])


def test_leaf_node_encoding_errors_unchanged() -> None:
    caps = M.default_capabilities(1)
    no_lifetime = M.LeafNode(b"e", b"s", M.Credential.basic(b"x"), caps, M.LeafNodeSource.key_package)
    with pytest.raises(ValueError):
        no_lifetime.to_bytes()
    unknown_cred = M.LeafNode(b"e", b"s", M.Credential(7, b"x"), caps, M.LeafNodeSource.update)
    with pytest.raises(ValueError):
        unknown_cred.to_bytes()


def test_mutating_a_leaf_changes_its_encoding() -> None:
    """No stale cache: the encoding always reflects the current field values."""
    leaf = M.LeafNode(b"e" * 32, b"s" * 32, M.Credential.basic(b"alice"), M.default_capabilities(1),
                      M.LeafNodeSource.update, signature=b"sig")
    before = leaf.tbs(b"g", 3)
    leaf.credential.identity = b"mallory"
    leaf.capabilities.extensions.append(0x0A0A)
    after = leaf.tbs(b"g", 3)
    assert after != before
    assert after == ref_leaf_content(leaf) + ref_opaque(b"g") + (3).to_bytes(4, "big")
