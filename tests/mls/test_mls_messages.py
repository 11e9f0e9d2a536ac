"""messages.json and deserialization.json: decode and re-encode byte-identical for every field."""

from __future__ import annotations

import pytest
from vectorfiles import read_vectors, skip_if_missing

from orange_fast.mls.codec import Reader, encode_varint
from orange_fast.mls.errors import DecodeError
from orange_fast.mls.messages import (
    Add,
    Commit,
    ExternalInit,
    GroupContextExtensions,
    GroupSecrets,
    MLSMessage,
    PreSharedKey,
    RatchetTreeExt,
    ReInit,
    Remove,
    Update,
    WireFormat,
)

REL = "mls/messages.json"
VECTORS = read_vectors(REL) or []
DREL = "mls/deserialization.json"
DVECTORS = read_vectors(DREL) or []

FIELDS: dict[str, tuple[type, WireFormat | None]] = {
    "mls_welcome": (MLSMessage, WireFormat.welcome),
    "mls_group_info": (MLSMessage, WireFormat.group_info),
    "mls_key_package": (MLSMessage, WireFormat.key_package),
    "ratchet_tree": (RatchetTreeExt, None),
    "group_secrets": (GroupSecrets, None),
    "add_proposal": (Add, None),
    "update_proposal": (Update, None),
    "remove_proposal": (Remove, None),
    "pre_shared_key_proposal": (PreSharedKey, None),
    "re_init_proposal": (ReInit, None),
    "external_init_proposal": (ExternalInit, None),
    "group_context_extensions_proposal": (GroupContextExtensions, None),
    "commit": (Commit, None),
    "public_message_application": (MLSMessage, WireFormat.public_message),
    "public_message_proposal": (MLSMessage, WireFormat.public_message),
    "public_message_commit": (MLSMessage, WireFormat.public_message),
    "private_message": (MLSMessage, WireFormat.private_message),
}


@skip_if_missing(REL)
def test_fields_known() -> None:
    assert len(VECTORS) == 300
    for v in VECTORS:
        assert set(v) == set(FIELDS)


@skip_if_missing(REL)
@pytest.mark.parametrize("field", sorted(FIELDS))
def test_messages_roundtrip(field: str) -> None:
    cls, wf = FIELDS[field]
    for v in VECTORS:
        data = bytes.fromhex(v[field])
        obj = cls.from_bytes(data)
        if wf is not None:
            assert obj.wire_format == wf
        assert obj.to_bytes() == data
        # strictness: trailing byte and truncation are rejected
        with pytest.raises(DecodeError):
            cls.from_bytes(data + b"\x00")
        if data:
            with pytest.raises(DecodeError):
                cls.from_bytes(data[:-1])


@skip_if_missing(DREL)
@pytest.mark.parametrize("v", DVECTORS, ids=[str(v["length"]) for v in DVECTORS])
def test_deserialization(v: dict) -> None:
    header = bytes.fromhex(v["vlbytes_header"])
    r = Reader(header)
    assert r.varint() == v["length"]
    r.finish()
    assert encode_varint(v["length"]) == header
    if v["length"] <= 1 << 16:
        # an opaque<V> with this header and payload decodes to the payload; one byte short is truncated
        payload = bytes((i & 0xFF for i in range(v["length"])))
        rr = Reader(header + payload)
        assert rr.opaque() == payload
        rr.finish()
        if payload:
            with pytest.raises(DecodeError):
                Reader(header + payload[:-1]).opaque()
    else:
        with pytest.raises(DecodeError):
            Reader(header + b"abc").opaque()
