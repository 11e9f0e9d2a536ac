"""message-protection.json for every suite: unprotect the given messages, and protect + unprotect round trips."""

from __future__ import annotations

import pytest
from vectorfiles import read_vectors, skip_if_missing

from orange_fast.mls.errors import (
    DecryptionError,
    InvalidMessageError,
    InvalidSignatureError,
    MembershipTagError,
    MLSError,
    ReplayedMessageError,
    WrongEpochError,
    WrongGroupError,
)
from orange_fast.mls.framing import (
    protect_private,
    protect_public,
    sign_framed_content,
    unprotect,
    unprotect_private,
    unprotect_public,
)
from orange_fast.mls.messages import (
    Commit,
    ContentType,
    FramedContent,
    GroupContext,
    MLSMessage,
    Proposal,
    Sender,
    WireFormat,
)
from orange_fast.mls.secret_tree import SecretTree

REL = "mls/message-protection.json"
VECTORS = read_vectors(REL) or []
h = bytes.fromhex
IDS = [f"suite{v['cipher_suite']}" for v in VECTORS]


def _ctx(v: dict) -> GroupContext:
    return GroupContext(1, v["cipher_suite"], h(v["group_id"]), v["epoch"], h(v["tree_hash"]),
                        h(v["confirmed_transcript_hash"]), [])


def _tree(v: dict) -> SecretTree:
    return SecretTree(v["cipher_suite"], h(v["encryption_secret"]), 2)


def _keys(v: dict):  # type: ignore[no-untyped-def]
    pub = h(v["signature_pub"])
    return lambda leaf: pub if leaf == 1 else None


def _raw(kind: str, v: dict):  # type: ignore[no-untyped-def]
    if kind == "proposal":
        return ContentType.proposal, Proposal.from_bytes(h(v["proposal"]))
    if kind == "commit":
        return ContentType.commit, Commit.from_bytes(h(v["commit"]))
    return ContentType.application, h(v["application"])


@skip_if_missing(REL)
def test_suites() -> None:
    assert {v["cipher_suite"] for v in VECTORS} == {1, 2, 3, 4, 5, 6, 7}


@skip_if_missing(REL)
@pytest.mark.parametrize("v", VECTORS, ids=IDS)
@pytest.mark.parametrize("kind", ["proposal", "commit"])
def test_public_vectors(v: dict, kind: str) -> None:
    cs = v["cipher_suite"]
    gc = _ctx(v)
    ct, raw = _raw(kind, v)
    data = h(v[f"{kind}_pub"])
    ac = unprotect_public(cs, MLSMessage.from_bytes(data), gc, h(v["membership_key"]), _keys(v))
    assert ac.content.content_type == ct and ac.content.content == raw
    assert ac.content.sender == Sender.member(1)
    # protect ourselves and check it verifies
    fc = FramedContent(gc.group_id, gc.epoch, Sender.member(1), b"", ct, raw)
    tag = bytes(get_nh(cs)) if ct == ContentType.commit else None
    ac2 = sign_framed_content(cs, WireFormat.public_message, fc, h(v["signature_priv"]), gc, tag)
    msg = protect_public(cs, ac2, gc, h(v["membership_key"]))
    out = unprotect(cs, msg.to_bytes(), gc, membership_key=h(v["membership_key"]), secret_tree=None,
                    sender_data_secret=None, signature_key_for=_keys(v))
    assert out.content == fc
    # wrong membership key, wrong epoch, wrong group, bit flip in the signature
    with pytest.raises(MembershipTagError):
        unprotect_public(cs, msg, gc, bytes(len(h(v["membership_key"]))), _keys(v))
    gc_e = _ctx(v)
    gc_e.epoch += 1
    with pytest.raises(WrongEpochError):
        unprotect_public(cs, msg, gc_e, h(v["membership_key"]), _keys(v))
    gc_g = _ctx(v)
    gc_g.group_id = b"other"
    with pytest.raises(WrongGroupError):
        unprotect_public(cs, msg, gc_g, h(v["membership_key"]), _keys(v))
    with pytest.raises(InvalidMessageError):
        unprotect_public(cs, msg, gc, h(v["membership_key"]), lambda leaf: None)


def get_nh(cs: int) -> int:
    from orange_fast.mls.suite import get_suite

    return get_suite(cs).nh


@skip_if_missing(REL)
@pytest.mark.parametrize("v", VECTORS, ids=IDS)
def test_application_as_public_is_refused(v: dict) -> None:
    cs = v["cipher_suite"]
    gc = _ctx(v)
    fc = FramedContent(gc.group_id, gc.epoch, Sender.member(1), b"", ContentType.application, h(v["application"]))
    ac = sign_framed_content(cs, WireFormat.public_message, fc, h(v["signature_priv"]), gc)
    with pytest.raises(InvalidMessageError):
        protect_public(cs, ac, gc, h(v["membership_key"]))


@skip_if_missing(REL)
@pytest.mark.parametrize("v", VECTORS, ids=IDS)
@pytest.mark.parametrize("kind", ["proposal", "commit", "application"])
def test_private_vectors(v: dict, kind: str) -> None:
    cs = v["cipher_suite"]
    gc = _ctx(v)
    ct, raw = _raw(kind, v)
    sds = h(v["sender_data_secret"])
    data = h(v[f"{kind}_priv"])
    tree = _tree(v)
    # a corrupted copy is rejected and does not consume the key
    bad = bytearray(data)
    bad[-1] ^= 1
    with pytest.raises(DecryptionError):
        unprotect_private(cs, MLSMessage.from_bytes(bytes(bad)), gc, tree, sds, _keys(v))
    with pytest.raises(InvalidSignatureError):
        unprotect_private(cs, MLSMessage.from_bytes(data), gc, tree, sds,
                          lambda leaf: h(v["signature_pub"])[:-1] + bytes([h(v["signature_pub"])[-1] ^ 1]))
    ac = unprotect_private(cs, MLSMessage.from_bytes(data), gc, tree, sds, _keys(v))
    assert ac.content.content_type == ct and ac.content.content == raw
    assert ac.content.sender == Sender.member(1)
    with pytest.raises(ReplayedMessageError):
        unprotect_private(cs, MLSMessage.from_bytes(data), gc, tree, sds, _keys(v))
    # protect with a fresh tree, unprotect with another fresh tree
    fc = FramedContent(gc.group_id, gc.epoch, Sender.member(1), b"ad", ct, raw)
    tag = bytes(get_nh(cs)) if ct == ContentType.commit else None
    ac2 = sign_framed_content(cs, WireFormat.private_message, fc, h(v["signature_priv"]), gc, tag)
    for padding in (0, 17):
        msg = protect_private(cs, ac2, _tree(v), sds, padding=padding)
        out = unprotect(cs, msg.to_bytes(), gc, membership_key=None, secret_tree=_tree(v), sender_data_secret=sds,
                        signature_key_for=_keys(v))
        assert out.content == fc and out.auth == ac2.auth
    # wrong sender data secret / wrong epoch
    with pytest.raises(DecryptionError):
        unprotect_private(cs, msg, gc, _tree(v), bytes(len(sds)), _keys(v))
    gc_e = _ctx(v)
    gc_e.epoch += 1
    with pytest.raises(WrongEpochError):
        unprotect_private(cs, msg, gc_e, _tree(v), sds, _keys(v))


@skip_if_missing(REL)
def test_truncated_private_messages_raise_mls_errors() -> None:
    v = VECTORS[0]
    cs = v["cipher_suite"]
    gc = _ctx(v)
    data = h(v["application_priv"])
    for n in range(len(data)):
        with pytest.raises(MLSError):
            unprotect(cs, data[:n], gc, membership_key=None, secret_tree=_tree(v),
                      sender_data_secret=h(v["sender_data_secret"]), signature_key_for=_keys(v))
