"""Credential succession (RFC 9420 §5.3.1, §12.1.2, §12.4.2): a member's replacement leaf keeps its
identity and signature key unless the application's ``credential_validator`` consents.

The hostile messages are built the way a malicious member would: the FramedContent is signed with
the member's current (old) signature key, so framing accepts it, while the new leaf is signed with
whatever key it names. Building them needs the group's private helpers (test-only access).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from mls_group_helpers import Room
from orange_fast import mls
from orange_fast.mls import messages as M


def _room(private: bool = True, validator: Optional[mls.CredentialValidator] = None) -> Tuple[Room, bytes, bytes]:
    room = Room(private_handshake=private)
    mallory, bob = room.add(b"m0", 2)
    if validator is not None:
        for g in room.members.values():
            g.set_credential_validator(validator)
    return room, mallory, bob


def _successor(group: mls.Group, rename: bool, swap_key: bool,
               source: M.LeafNodeSource) -> Tuple[M.LeafNode, mls.SignatureKeyPair, bytes]:
    """A leaf for ``group``'s own slot (fresh encryption key), optionally renamed to b"m0" and/or
    signed by a new signature key; returns (leaf, the key that signs it, its HPKE private key)."""
    s = group._s  # test-only access
    old = s.tree.leaf(s.own_leaf)
    signer = mls.SignatureKeyPair.generate(group.cipher_suite) if swap_key else s.signer
    priv, pub = s.suite.generate_hpke_key_pair()
    cred = M.Credential.basic(b"m0") if rename else old.credential
    leaf = dataclasses.replace(old, encryption_key=pub, signature_key=signer.public_key, credential=cred,
                               leaf_node_source=source, lifetime=None, parent_hash=None, signature=b"")
    leaf.sign(s.suite, signer.private_key, s.group_id, s.own_leaf)
    return leaf, signer, priv


def _hostile_update(group: mls.Group, rename: bool, swap_key: bool) -> bytes:
    """An Update proposal whose leaf renames the sender and/or swaps its signature key."""
    leaf, _, priv = _successor(group, rename, swap_key, M.LeafNodeSource.update)
    msg = group._send_proposal(M.Proposal(M.Update(leaf)))  # framed with the sender's old key
    group._s.update_keys[bytes(leaf.encryption_key)] = priv
    return msg


def _hostile_commit(group: mls.Group, rename: bool, swap_key: bool) -> bytes:
    """A self-update commit whose UpdatePath leaf renames the committer and/or swaps its key."""
    s = group._s
    old_signer = s.signer
    new_signer = mls.SignatureKeyPair.generate(group.cipher_suite) if swap_key else old_signer
    old_leaf = s.tree.leaf(s.own_leaf)
    cred = M.Credential.basic(b"m0") if rename else old_leaf.credential
    # the commit code derives its path leaf from our current leaf and signs it with st.signer
    s.tree.set_leaf(s.own_leaf, dataclasses.replace(old_leaf, credential=cred,
                                                    signature_key=new_signer.public_key))
    s.signer = new_signer

    def frame_with_old_key(st_: object, *args: object, **kwargs: object) -> M.AuthenticatedContent:
        st_.signer = old_signer  # type: ignore[attr-defined]
        try:
            return mls.Group._frame(group, st_, *args, **kwargs)  # type: ignore[arg-type]
        finally:
            st_.signer = new_signer  # type: ignore[attr-defined]

    group._frame = frame_with_old_key  # type: ignore[method-assign]
    return group.update().commit


def _assert_refused(group: mls.Group, message: bytes) -> None:
    before = group.to_bytes()
    with pytest.raises(mls.CredentialSuccessionError):
        group.process(message)
    assert group.to_bytes() == before


CHANGES = [(True, False), (False, True), (True, True)]
IDS = ["rename", "key-swap", "rename+key-swap"]


@pytest.mark.parametrize("private", [True, False], ids=["private", "public"])
@pytest.mark.parametrize("rename,swap_key", CHANGES, ids=IDS)
def test_update_proposal_that_changes_credential_is_refused(private: bool, rename: bool, swap_key: bool) -> None:
    room, mallory, bob = _room(private)
    msg = _hostile_update(room.members[mallory], rename, swap_key)
    for name in (b"m0", bob):
        _assert_refused(room.members[name], msg)
    # the group still works: a genuine update goes through and everyone agrees
    room.update(bob)
    assert len({g.epoch_authenticator for n, g in room.members.items() if n != mallory}) == 1
    assert [m.identity for m in room.members[b"m0"].members] == [b"m0", mallory, bob]


@pytest.mark.parametrize("rename,swap_key", CHANGES, ids=IDS)
def test_commit_referencing_a_hostile_update_is_refused(rename: bool, swap_key: bool) -> None:
    """A lax committer (its validator accepts anything) caches and commits the Update by reference;
    a member that cached the Update under a lax rule too but holds the default rule when the commit
    arrives refuses the whole commit (cached Updates are re-validated at commit time)."""
    room, mallory, bob = _room(False)
    committer = room.members[b"m0"]
    msg = _hostile_update(room.members[mallory], rename, swap_key)
    for g in (committer, room.members[bob]):
        g.set_credential_validator(lambda old, new: True)
        g.process(msg)
    room.members[bob].set_credential_validator(None)
    out = committer.commit()
    before = room.members[bob].to_bytes()
    with pytest.raises(mls.CredentialSuccessionError):
        room.members[bob].process(out.commit)
    assert room.members[bob].to_bytes() == before
    # with the strict rule again the committer itself no longer commits it (the cached Update is
    # re-validated) and does not lose its group either
    committer.clear_pending_commit()
    committer.set_credential_validator(None)
    with pytest.raises(mls.CredentialSuccessionError):
        committer.commit()
    assert not committer.has_pending_commit


def test_update_by_value_from_the_committer_is_refused() -> None:
    room, mallory, _ = _room(False)
    g = room.members[mallory]
    leaf, _, _ = _successor(g, True, False, M.LeafNodeSource.update)
    before = g.to_bytes()
    with pytest.raises(mls.InvalidProposalError):
        g.commit([M.Proposal(M.Update(leaf))], include_cached=False)
    assert g.to_bytes() == before


@pytest.mark.parametrize("private", [True, False], ids=["private", "public"])
@pytest.mark.parametrize("rename,swap_key", CHANGES, ids=IDS)
def test_commit_path_that_changes_credential_is_refused(private: bool, rename: bool, swap_key: bool) -> None:
    room, mallory, bob = _room(private)
    msg = _hostile_commit(room.members[mallory], rename, swap_key)
    for name in (b"m0", bob):
        _assert_refused(room.members[name], msg)


def _rotation_only(old: mls.Member, new: mls.Member) -> bool:
    return old.identity == new.identity


def test_validator_allows_a_signature_key_rotation_by_update() -> None:
    room, mallory, bob = _room(True, _rotation_only)
    g = room.members[mallory]
    msg = _hostile_update(g, rename=False, swap_key=True)
    new_key = g._s.tree.leaf(g.own_leaf_index)  # unchanged until the commit
    room.members[bob].process(msg)
    committer = room.members[b"m0"]
    committer.process(msg)
    out = committer.commit()
    committer.merge_pending_commit()
    room.fanout(b"m0", out.commit)
    auths = {n: grp.epoch_authenticator for n, grp in room.members.items() if n != mallory}
    assert len(set(auths.values())) == 1
    rotated = room.members[bob].members[g.own_leaf_index]
    assert rotated.identity == mallory
    assert rotated.signature_key != bytes(new_key.signature_key)
    # a rename is still refused by the same validator
    _assert_refused(room.members[b"m0"], _hostile_update(room.members[bob], rename=True, swap_key=False))


def test_validator_allows_a_signature_key_rotation_by_commit() -> None:
    room, mallory, bob = _room(False, _rotation_only)
    msg = _hostile_commit(room.members[mallory], rename=False, swap_key=True)
    for name in (b"m0", bob):
        room.members[name].process(msg)
    assert room.members[b"m0"].epoch_authenticator == room.members[bob].epoch_authenticator
    assert room.members[bob].members[1].identity == mallory


def test_validator_sees_old_and_new_member_and_false_refuses() -> None:
    seen = []

    def record(old: mls.Member, new: mls.Member) -> bool:
        seen.append((old, new))
        return False

    room, mallory, bob = _room(True, record)
    msg = _hostile_update(room.members[mallory], rename=True, swap_key=False)
    _assert_refused(room.members[bob], msg)
    (old, new), = seen
    assert (old.leaf_index, old.identity, new.identity) == (1, mallory, b"m0")
    assert old.signature_key == new.signature_key


def test_validator_is_not_called_for_a_plain_key_refresh() -> None:
    calls: list = []
    room, mallory, bob = _room(True, lambda o, n: calls.append(1) is None and False)
    room.update(mallory)
    msg = room.members[bob].propose_update()
    room.members[b"m0"].process(msg)
    assert calls == []


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rename=st.booleans(), swap_key=st.booleans(), by_commit=st.booleans(), private=st.booleans(),
       allow=st.sampled_from(["strict", "rotation", "anything"]))
def test_succession_rule_property(rename: bool, swap_key: bool, by_commit: bool, private: bool,
                                  allow: str) -> None:
    """Accepted iff nothing changes, or the validator allows the change; refused without a trace."""
    validators: dict = {"strict": None, "rotation": _rotation_only, "anything": lambda o, n: True}
    room, mallory, bob = _room(private, validators[allow])
    make: Callable[[mls.Group, bool, bool], bytes] = _hostile_commit if by_commit else _hostile_update
    msg = make(room.members[mallory], rename, swap_key)
    target = room.members[bob]
    allowed = (not rename and not swap_key) or allow == "anything" or (allow == "rotation" and not rename)
    if allowed:
        res = target.process(msg)
        assert res.kind == ("commit" if by_commit else "proposal")
    else:
        _assert_refused(target, msg)
