"""Hostile input: every bad message raises an ``MLSError`` subclass and changes no state."""

from __future__ import annotations


import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from mls_group_helpers import Room
from orange_fast import mls
from orange_fast.mls import messages as M


def _room(private: bool) -> tuple:
    room = Room(private_handshake=private)
    b, c = room.add(b"m0", 2)
    return room, b, c


def _assert_rejected(group: mls.Group, message: bytes, exc: type = mls.MLSError) -> None:
    before = group.to_bytes()
    with pytest.raises(exc):
        group.process(message)
    assert group.to_bytes() == before


@pytest.mark.parametrize("private", [True, False], ids=["private", "public"])
def test_truncated_and_flipped_commits(private: bool) -> None:
    room, b, c = _room(private)
    gb = room.members[b]
    out = gb.update()
    target = room.members[c]
    msg = out.commit
    for cut in range(0, len(msg), max(1, len(msg) // 40)):
        _assert_rejected(target, msg[:cut])
    for pos in range(0, len(msg), max(1, len(msg) // 60)):
        flipped = bytearray(msg)
        flipped[pos] ^= 0x01
        _assert_rejected(target, bytes(flipped))
    _assert_rejected(target, msg + b"\x00")
    # the genuine message still works afterwards
    target.process(msg)
    gb.merge_pending_commit()


@pytest.mark.parametrize("private", [True, False], ids=["private", "public"])
def test_replay_and_wrong_epoch(private: bool) -> None:
    room, b, c = _room(private)
    gb = room.members[b]
    out = gb.update()
    gb.merge_pending_commit()
    room.fanout(b, out.commit)
    target = room.members[c]
    _assert_rejected(target, out.commit, mls.WrongEpochError)  # replay of an applied commit
    stale = mls.Group.from_bytes(target.to_bytes())
    room.update(b"m0")
    old = stale.update()  # made in the previous epoch
    _assert_rejected(room.members[b], old.commit, mls.WrongEpochError)


def test_wrong_group() -> None:
    room1, b1, _ = _room(True)
    room2, b2, c2 = _room(True)
    out = room1.members[b1].update()
    _assert_rejected(room2.members[c2], out.commit, mls.WrongGroupError)


def test_commit_from_removed_member() -> None:
    room, b, c = _room(False)
    stale_b = mls.Group.from_bytes(room.members[b].to_bytes())
    room.remove(b"m0", [b])
    # the removed member's stale state can only produce messages for the old epoch
    out = stale_b.update()
    _assert_rejected(room.members[c], out.commit, mls.WrongEpochError)
    # an insider forging a current-epoch commit in the name of the removed (now blank) leaf
    ga = room.members[b"m0"]
    st = ga._s  # test-only access: build a message with a blank sender leaf
    fc = M.FramedContent(st.group_id, st.context.epoch, M.Sender.member(stale_b.own_leaf_index), b"",
                         M.ContentType.proposal, M.Proposal(M.Remove(room.members[c].own_leaf_index)))
    tbs = M.framed_content_tbs(M.WireFormat.public_message, fc, st.context_bytes())
    sig = stale_b._s.signer.sign_with_label("FramedContentTBS", tbs)
    ac = M.AuthenticatedContent(M.WireFormat.public_message, fc, M.FramedContentAuthData(sig, None))
    forged = st.epoch.protect(ac, st.context_bytes(), st.own_leaf).to_bytes()
    _assert_rejected(room.members[c], forged)


def test_removed_member_cannot_act() -> None:
    room, b, c = _room(True)
    gb = room.members[b]
    out = room.members[b"m0"].remove([gb.own_leaf_index])
    room.members[b"m0"].merge_pending_commit()
    res = gb.process(out.commit)
    assert res.removed_self and not gb.is_active
    with pytest.raises(mls.StateError):
        gb.update()
    room.members[c].process(out.commit)
    del room.members[b]
    room.assert_agree()


def test_invalid_welcome_inputs() -> None:
    suite = mls.CipherSuite(1)
    g = mls.Group.create(suite, identity=b"a", signer=mls.SignatureKeyPair.generate(suite))
    kp, kpp = mls.KeyPackage.generate(suite, identity=b"b", signer=mls.SignatureKeyPair.generate(suite))
    _, other = mls.KeyPackage.generate(suite, identity=b"c", signer=mls.SignatureKeyPair.generate(suite))
    out = g.add([kp.to_bytes()])
    with pytest.raises(mls.InvalidWelcomeError):
        mls.Group.join_from_welcome(out.welcome, other)
    for cut in (0, 5, len(out.welcome) // 2, len(out.welcome) - 1):
        with pytest.raises(mls.MLSError):
            mls.Group.join_from_welcome(out.welcome[:cut], kpp)
    bad = bytearray(out.welcome)
    bad[-5] ^= 0x40
    with pytest.raises(mls.MLSError):
        mls.Group.join_from_welcome(bytes(bad), kpp)
    with pytest.raises(mls.MLSError):
        mls.Group.join_from_welcome(out.commit, kpp)


def test_invalid_proposals_rejected() -> None:
    room, b, c = _room(False)
    gb = room.members[b]
    # removing a blank leaf
    with pytest.raises(mls.InvalidProposalError):
        gb.propose_remove(7)
    # duplicate add of an existing member's KeyPackage (same signature key)
    signer = room.members[c]._s.signer
    kp, _ = mls.KeyPackage.generate(room.suite, identity=b"dup", signer=signer)
    with pytest.raises(mls.MLSError):
        gb.add([kp.to_bytes()])
    assert not gb.has_pending_commit
    with pytest.raises(mls.MLSError):
        gb.remove([gb.own_leaf_index])  # a commit may not remove the committer


def test_group_state_parser_rejects_garbage() -> None:
    room, b, _ = _room(True)
    blob = room.members[b].to_bytes()
    for cut in (0, 1, 10, len(blob) // 2, len(blob) - 1):
        with pytest.raises(mls.MLSError):
            mls.Group.from_bytes(blob[:cut])


_ROOMS: dict = {}


def _shared_room(private: bool = True) -> tuple:
    if private not in _ROOMS:
        room, b, c = _room(private)
        out = room.members[b].update()
        _ROOMS[private] = (room, c, out.commit)
    return _ROOMS[private]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(data: bytes) -> None:
    room, c, _ = _shared_room()
    _assert_rejected(room.members[c], data)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.booleans())
def test_mutated_commit_never_accepted(data: st.DataObject, private: bool) -> None:
    room, c, commit = _shared_room(private)
    msg = bytearray(commit)
    n = data.draw(st.integers(min_value=1, max_value=4))
    for _ in range(n):
        pos = data.draw(st.integers(min_value=0, max_value=len(msg) - 1))
        msg[pos] ^= data.draw(st.integers(min_value=1, max_value=255))
    assume(bytes(msg) != commit)
    _assert_rejected(room.members[c], bytes(msg))


_WELCOME: dict = {}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_welcome_never_accepted(data: st.DataObject) -> None:
    if not _WELCOME:
        suite = mls.CipherSuite(1)
        g = mls.Group.create(suite, identity=b"a", signer=mls.SignatureKeyPair.generate(suite))
        kp, kpp = mls.KeyPackage.generate(suite, identity=b"b", signer=mls.SignatureKeyPair.generate(suite))
        _WELCOME["w"] = (g.add([kp.to_bytes()]).welcome, kpp)
    welcome, kpp = _WELCOME["w"]
    msg = bytearray(welcome)
    pos = data.draw(st.integers(min_value=0, max_value=len(msg) - 1))
    msg[pos] ^= data.draw(st.integers(min_value=1, max_value=255))
    with pytest.raises(mls.MLSError):
        mls.Group.join_from_welcome(bytes(msg), kpp)
