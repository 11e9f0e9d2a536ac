"""Framing for non-member senders (new_member_proposal, new_member_commit, external) and sender rules."""

from __future__ import annotations

import pytest

from orange_fast.mls.errors import InvalidCommitError, InvalidMessageError, InvalidSignatureError, MembershipTagError
from orange_fast.mls.framing import protect_public, sign_framed_content, unprotect, unprotect_public
from orange_fast.mls.messages import (
    Add,
    Commit,
    ContentType,
    FramedContent,
    GroupContext,
    KeyPackage,
    Proposal,
    PublicMessage,
    Remove,
    Sender,
    SenderType,
    UpdatePath,
    WireFormat,
)
from orange_fast.mls.suite import SignatureKeyPair

GC = GroupContext(1, 1, b"group", 7, b"\x01" * 32, b"\x02" * 32, [])
MK = b"\x03" * 32


def _nobody(_: int) -> None:
    return None


def test_new_member_proposal() -> None:
    signer = SignatureKeyPair.generate(1)
    kp, _ = KeyPackage.generate(1, identity=b"joiner", signer=signer)
    fc = FramedContent(GC.group_id, GC.epoch, Sender(SenderType.new_member_proposal), b"", ContentType.proposal,
                       Proposal(Add(kp)))
    ac = sign_framed_content(1, WireFormat.public_message, fc, signer.private_key, None)
    msg = protect_public(1, ac, GC)
    assert msg.body.membership_tag is None
    out = unprotect(1, msg.to_bytes(), GC, membership_key=MK, secret_tree=None, sender_data_secret=None,
                    signature_key_for=_nobody)
    assert out.content == fc
    # signed by someone else -> invalid signature
    other = SignatureKeyPair.generate(1)
    bad = sign_framed_content(1, WireFormat.public_message, fc, other.private_key, None)
    with pytest.raises(InvalidSignatureError):
        unprotect_public(1, protect_public(1, bad, GC), GC, MK, _nobody)
    # a new_member_proposal that is not an Add is refused
    fc2 = FramedContent(GC.group_id, GC.epoch, Sender(SenderType.new_member_proposal), b"", ContentType.proposal,
                        Proposal(Remove(0)))
    ac2 = sign_framed_content(1, WireFormat.public_message, fc2, signer.private_key, None)
    with pytest.raises(InvalidMessageError):
        unprotect_public(1, protect_public(1, ac2, GC), GC, MK, _nobody)


def test_external_sender() -> None:
    ext = SignatureKeyPair.generate(1)
    fc = FramedContent(GC.group_id, GC.epoch, Sender(SenderType.external, 0), b"", ContentType.proposal,
                       Proposal(Remove(3)))
    ac = sign_framed_content(1, WireFormat.public_message, fc, ext.private_key, None)
    msg = protect_public(1, ac, GC)
    out = unprotect_public(1, msg, GC, MK, _nobody, lambda i: ext.public_key if i == 0 else None)
    assert out.content.content == Proposal(Remove(3))
    with pytest.raises(InvalidMessageError):
        unprotect_public(1, msg, GC, MK, _nobody, None)
    with pytest.raises(InvalidMessageError):
        unprotect_public(1, msg, GC, MK, _nobody, lambda i: None)


def test_new_member_commit() -> None:
    signer = SignatureKeyPair.generate(1)
    kp, _ = KeyPackage.generate(1, identity=b"ext", signer=signer)
    commit = Commit([], UpdatePath(kp.leaf_node, []))
    fc = FramedContent(GC.group_id, GC.epoch, Sender(SenderType.new_member_commit), b"", ContentType.commit, commit)
    ac = sign_framed_content(1, WireFormat.public_message, fc, signer.private_key, GC, b"\x00" * 32)
    msg = protect_public(1, ac, GC)
    assert unprotect_public(1, msg, GC, MK, _nobody).content == fc
    no_path = FramedContent(GC.group_id, GC.epoch, Sender(SenderType.new_member_commit), b"", ContentType.commit,
                            Commit([], None))
    ac2 = sign_framed_content(1, WireFormat.public_message, no_path, signer.private_key, GC, b"\x00" * 32)
    with pytest.raises(InvalidCommitError):
        unprotect_public(1, protect_public(1, ac2, GC), GC, MK, _nobody)


def test_member_without_membership_tag_refused() -> None:
    signer = SignatureKeyPair.generate(1)
    fc = FramedContent(GC.group_id, GC.epoch, Sender.member(0), b"", ContentType.proposal, Proposal(Remove(1)))
    ac = sign_framed_content(1, WireFormat.public_message, fc, signer.private_key, GC)
    pm = PublicMessage(fc, ac.auth, None)
    with pytest.raises(MembershipTagError):
        unprotect_public(1, pm, GC, MK, lambda i: signer.public_key)
    good = protect_public(1, ac, GC, MK)
    assert unprotect_public(1, good, GC, MK, lambda i: signer.public_key).content == fc
    # the signature covers the group context: another context fails (membership tag first)
    other = GroupContext(1, 1, b"group", 7, b"\x09" * 32, b"\x02" * 32, [])
    with pytest.raises(MembershipTagError):
        unprotect_public(1, good, other, MK, lambda i: signer.public_key)
