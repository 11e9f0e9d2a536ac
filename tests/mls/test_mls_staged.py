"""Staged messages (process = stage + merge) and stand-alone KeyPackage validation."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from mls_group_helpers import Room, new_key_package
from orange_fast import mls


def _room() -> Room:
    room = Room(private_handshake=True)
    room.add(b"m0", 2)
    return room


def test_staged_commit_is_inspectable_and_changes_nothing_until_merged() -> None:
    room = _room()
    a, b = room.members[b"m0"], room.members[b"m1"]
    kp, _ = new_key_package(room.suite, b"newcomer")
    out = a.commit(add=[kp], remove=[room.members[b"m2"].own_leaf_index])
    before = b.to_bytes()
    staged = b.stage(out.commit)
    assert b.to_bytes() == before and b.epoch == 1
    assert staged.is_commit and staged.kind == "commit" and staged.epoch == 2
    assert (staged.sender, staged.sender_type) == (0, "member")
    assert [m.identity for m in staged.added] == [b"newcomer"]
    assert [m.identity for m in staged.removed] == [b"m2"]
    assert staged.updated == [] and not staged.removes_self and staged.is_open
    result = b.merge_staged(staged)
    a.merge_pending_commit()
    assert result.epoch == 2 == b.epoch
    assert b.epoch_authenticator == a.epoch_authenticator
    assert not staged.is_open
    with pytest.raises(mls.StateError):
        b.merge_staged(staged)  # only once


def test_discarded_commit_leaves_the_group_as_it_was() -> None:
    room = _room()
    a, b = room.members[b"m0"], room.members[b"m1"]
    out = a.update()
    before = b.to_bytes()
    staged = b.stage(out.commit)
    staged.discard()
    assert b.to_bytes() == before
    with pytest.raises(mls.StateError):
        b.merge_staged(staged)
    b.process(out.commit)  # the genuine commit still applies afterwards
    a.merge_pending_commit()
    assert a.epoch_authenticator == b.epoch_authenticator


def test_stale_or_foreign_staged_message_is_refused() -> None:
    room = _room()
    a, b, c = room.members[b"m0"], room.members[b"m1"], room.members[b"m2"]
    out = a.update()
    staged = b.stage(out.commit)
    with pytest.raises(mls.StateError):
        c.merge_staged(staged)  # another group object
    b.add_external_psk(b"id", b"\x01" * 32)  # any change of b's state voids what was staged
    before = b.to_bytes()
    with pytest.raises(mls.StateError):
        b.merge_staged(staged)
    assert b.to_bytes() == before


def test_staged_own_commit_and_proposals() -> None:
    room = _room()
    a, b = room.members[b"m0"], room.members[b"m1"]
    prop = b.propose_update()
    staged = a.stage(prop)
    assert (staged.kind, staged.proposal_type, staged.sender) == ("proposal", "update", 1)
    assert a.pending_proposals == []
    a.merge_staged(staged)
    assert len(a.pending_proposals) == 1
    out = a.commit()
    own = a.stage(out.commit)  # our own commit echoed by the delivery service
    assert own.result.own_commit and own.updated == [1] and a.has_pending_commit
    a.merge_staged(own)
    b.process(out.commit)
    assert a.epoch_authenticator == b.epoch_authenticator


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(st.sampled_from(["update", "add", "remove"]), min_size=1, max_size=3),
       merge=st.lists(st.booleans(), min_size=3, max_size=3))
def test_stage_then_discard_or_merge_equals_process(ops: list, merge: list) -> None:
    """Discarding never changes the state; merging gives the same state as ``process``."""
    room = _room()
    a, b = room.members[b"m0"], room.members[b"m1"]
    for i, op in enumerate(ops):
        if op == "add":
            kp, _ = new_key_package(room.suite, b"n%d" % i)
            out = a.add([kp])
        elif op == "remove" and len(a.members) > 2:
            out = a.remove([max(m.leaf_index for m in a.members if m.leaf_index not in (0, 1))])
        else:
            out = a.update()
        twin = mls.Group.from_bytes(b.to_bytes())
        before = b.to_bytes()
        staged = b.stage(out.commit)
        if not merge[i]:
            staged.discard()
            assert b.to_bytes() == before
            staged = b.stage(out.commit)
        b.merge_staged(staged)
        twin.process(out.commit)
        a.merge_pending_commit()
        assert b.epoch_authenticator == twin.epoch_authenticator == a.epoch_authenticator
        assert b.members == twin.members


# ------------------------------------------------------------------------------ KeyPackages
def test_validate_key_package_without_a_group() -> None:
    suite = mls.CipherSuite(1)
    kp_bytes, _ = new_key_package(suite, b"alice")
    kp = mls.validate_key_package(kp_bytes)
    assert kp.to_bytes() == kp_bytes and kp.leaf_node.credential.identity == b"alice"
    assert mls.validate_key_package(kp, suite, check_lifetime=False) is kp


def test_validate_key_package_refuses_bad_ones() -> None:
    suite = mls.CipherSuite(1)
    kp_bytes, _ = new_key_package(suite, b"alice")
    kp = mls.KeyPackage.from_bytes(kp_bytes)
    with pytest.raises(mls.MLSError):
        mls.validate_key_package(kp_bytes, 3)  # another suite than the expected one
    with pytest.raises(mls.InvalidKeyPackageError):
        mls.validate_key_package(dataclasses.replace(kp, init_key=bytes(kp.leaf_node.encryption_key)))
    tampered = bytearray(kp_bytes)
    tampered[-1] ^= 1  # the KeyPackage signature
    with pytest.raises(mls.InvalidKeyPackageError):
        mls.validate_key_package(bytes(tampered))
    with pytest.raises(mls.DecodeError):
        mls.validate_key_package(kp_bytes[:-3])


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_validate_key_package_never_crashes(data: st.DataObject) -> None:
    """Any single-byte corruption is either still valid or raises an MLSError, nothing else."""
    suite = mls.CipherSuite(1)
    kp_bytes, _ = _KP
    pos = data.draw(st.integers(0, len(kp_bytes) - 1))
    flip = data.draw(st.integers(1, 255))
    bad = bytearray(kp_bytes)
    bad[pos] ^= flip
    try:
        mls.validate_key_package(bytes(bad), suite)
    except mls.MLSError:
        pass


_KP = new_key_package(mls.CipherSuite(1), b"fuzz")
