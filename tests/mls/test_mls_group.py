"""Group API scenarios: create/add/join/update/remove, proposals by reference, PSK, external joins,
persistence, application messages, pending-commit handling."""

from __future__ import annotations

import pytest

from mls_group_helpers import Room, new_key_package
from orange_fast import mls
from orange_fast.mls import messages as M


@pytest.mark.parametrize("private_handshake", [True, False], ids=["private", "public"])
def test_basic_lifecycle(private_handshake: bool) -> None:
    room = Room(private_handshake=private_handshake)
    a, = list(room.members)
    b, c = room.add(a, 2)
    room.assert_agree()
    room.update(b)
    room.assert_agree()
    (d,) = room.add(c)
    room.assert_agree()
    room.remove(a, [b])
    room.assert_agree()
    room.remove(d, [a, c])
    room.assert_agree()
    assert len(room.members) == 1


def test_epoch_and_members_view() -> None:
    room = Room()
    a = b"m0"
    g = room.members[a]
    assert g.epoch == 0 and g.own_leaf_index == 0
    assert [m.identity for m in g.members] == [b"m0"]
    (b,) = room.add(a)
    gb = room.members[b]
    assert g.epoch == gb.epoch == 1
    assert gb.own_leaf_index == 1
    assert {m.identity for m in gb.members} == {b"m0", b"m1"}
    assert all(len(m.signature_key) == 32 for m in gb.members)
    assert g.epoch_authenticator == gb.epoch_authenticator
    assert len(g.epoch_authenticator) == 32


def test_exporter_changes_every_epoch() -> None:
    room = Room()
    seen = set()
    (b,) = room.add(b"m0")
    for _ in range(3):
        room.update(b)
        val = room.members[b].export_secret(b"SFrame 1.0 Base Key", b"", 16)
        assert val not in seen
        seen.add(val)
    room.assert_agree()


def test_pending_commit_is_not_applied_until_merged() -> None:
    room = Room()
    (b,) = room.add(b"m0")
    g = room.members[b"m0"]
    before = g.epoch_authenticator
    out = g.update()
    assert g.has_pending_commit and g.epoch == 1 and g.epoch_authenticator == before
    with pytest.raises(mls.StateError):
        g.update()
    g.clear_pending_commit()
    assert not g.has_pending_commit and g.epoch == 1
    # the other member may still process the (now abandoned) commit; we re-commit instead
    out2 = g.update()
    g.merge_pending_commit()
    room.members[b].process(out2.commit)
    room.assert_agree()
    assert out.commit != out2.commit


def test_processing_own_commit_merges_it() -> None:
    room = Room()
    (b,) = room.add(b"m0")
    g = room.members[b"m0"]
    out = g.update()
    res = g.process(out.commit)  # the delivery service echoed our own commit
    assert res.own_commit and g.epoch == 2
    room.members[b].process(out.commit)
    room.assert_agree()


def test_proposals_by_reference() -> None:
    room = Room()
    a = b"m0"
    b, c, d = room.add(a, 3)
    gb, gc, gd = (room.members[x] for x in (b, c, d))
    kp, kpp = new_key_package(room.suite, b"late")
    p_add = gb.propose_add(kp)
    p_rem = gc.propose_remove(gd.own_leaf_index)
    p_upd = gd.propose_update()
    for name, g in room.members.items():
        for sender, msg in ((b, p_add), (c, p_rem), (d, p_upd)):
            if name != sender:
                res = g.process(msg)
                assert res.kind == "proposal" and res.proposal_ref
    ga = room.members[a]
    assert len(ga.pending_proposals) == 3
    out = ga.commit()
    ga.merge_pending_commit()
    room.fanout(a, out.commit)
    assert out.welcome is not None
    room.members[b"late"] = mls.Group.join_from_welcome(out.welcome, kpp)
    room.assert_agree()
    assert not ga.pending_proposals


def test_own_update_proposal_committed_by_other() -> None:
    room = Room()
    (b,) = room.add(b"m0")
    gb = room.members[b]
    prop = gb.propose_update()
    ga = room.members[b"m0"]
    ga.process(prop)
    out = ga.commit()
    ga.merge_pending_commit()
    gb.process(out.commit)
    room.assert_agree()
    room.update(b)  # b can still decrypt paths with its new leaf key
    room.assert_agree()


def test_missing_proposal_reference_rejected() -> None:
    room = Room()
    b, c = room.add(b"m0", 2)
    gb = room.members[b]
    prop = gb.propose_remove(room.members[c].own_leaf_index)
    ga = room.members[b"m0"]
    ga.process(prop)
    out = ga.commit()
    ga.merge_pending_commit()
    gc = room.members[c]
    # c never saw the proposal: the commit references an unknown proposal
    before = gc.to_bytes()
    with pytest.raises(mls.MissingProposalError):
        gc.process(out.commit)
    assert gc.to_bytes() == before


def test_external_psk() -> None:
    room = Room()
    (b,) = room.add(b"m0")
    for g in room.members.values():
        g.add_external_psk(b"psk-id", b"\x11" * 32)
    ga = room.members[b"m0"]
    out = ga.commit(psk_ids=[b"psk-id"])
    ga.merge_pending_commit()
    room.fanout(b"m0", out.commit)
    room.assert_agree()
    # a member without the PSK cannot follow
    kp, kpp = new_key_package(room.suite, b"x")
    out = ga.commit(psk_ids=[b"psk-id"], proposals=[M.Proposal(M.Add(M.KeyPackage.from_bytes(kp)))])
    ga.merge_pending_commit()
    room.members[b].process(out.commit)
    with pytest.raises(mls.MissingPSKError):
        mls.Group.join_from_welcome(out.welcome, kpp)
    joined = mls.Group.join_from_welcome(out.welcome, kpp, psks={b"psk-id": b"\x11" * 32})
    room.members[b"x"] = joined
    room.assert_agree()


def test_group_context_extensions() -> None:
    room = Room()
    (b,) = room.add(b"m0")
    ga = room.members[b"m0"]
    ext = [M.Extension(M.ExtensionType.required_capabilities, M.RequiredCapabilities([], [], [1]).to_bytes())]
    out = ga.commit(extensions=ext)
    ga.merge_pending_commit()
    room.fanout(b"m0", out.commit)
    room.assert_agree()
    assert room.members[b].group_context.extensions == ext


def test_external_join_and_resync() -> None:
    room = Room()
    b, c = room.add(b"m0", 2)
    e = room.external_join(b)
    room.assert_agree()
    # resync: e rejoins externally and removes its old leaf
    ge = room.members[e]
    old_leaf = ge.own_leaf_index
    signer = mls.SignatureKeyPair.generate(room.suite)
    new, commit = mls.Group.join_external(room.members[b].group_info(), identity=e, signer=signer,
                                          remove_leaf=old_leaf)
    del room.members[e]
    room.fanout(b"-", commit)
    room.members[e] = new
    room.assert_agree()
    assert [m.identity for m in new.members].count(e) == 1


def test_persistence_roundtrip_and_resume() -> None:
    room = Room()
    b, c = room.add(b"m0", 2)
    for name in list(room.members):
        blob = room.members[name].to_bytes()
        room.members[name] = mls.Group.from_bytes(blob)
        assert room.members[name].to_bytes() == blob
    room.update(c)
    room.assert_agree()
    # a pending commit survives persistence too
    g = room.members[b]
    out = g.update()
    g2 = mls.Group.from_bytes(g.to_bytes())
    assert g2.has_pending_commit
    g2.merge_pending_commit()
    room.members[b] = g2
    room.fanout(b, out.commit)
    room.assert_agree()


def test_application_messages() -> None:
    room = Room()
    b, c = room.add(b"m0", 2)
    ct = room.members[b].encrypt_application(b"hello", authenticated_data=b"ad")
    for name in (b"m0", c):
        res = room.members[name].process(ct)
        assert res.kind == "application" and res.application_data == b"hello"
        assert res.sender == room.members[b].own_leaf_index
    # a replay is refused
    with pytest.raises(mls.MLSError):
        room.members[c].process(ct)


def test_group_info_and_welcome_with_out_of_band_tree() -> None:
    suite = mls.CipherSuite(1)
    signer = mls.SignatureKeyPair.generate(suite)
    g = mls.Group.create(suite, identity=b"a", signer=signer, group_id=b"room-1")
    assert g.group_id == b"room-1"
    kp, kpp = new_key_package(suite, b"b")
    out = g.add([kp])
    g.merge_pending_commit()
    gb = mls.Group.join_from_welcome(out.welcome, kpp, ratchet_tree=g.ratchet_tree_bytes())
    assert gb.epoch_authenticator == g.epoch_authenticator
    assert out.group_info is not None
    msg = M.MLSMessage.from_bytes(out.group_info)
    assert msg.wire_format == M.WireFormat.group_info


def test_key_package_api() -> None:
    suite = mls.CipherSuite(1)
    signer = mls.SignatureKeyPair.generate(suite)
    kp, kpp = mls.KeyPackage.generate(suite, identity=b"alice", signer=signer)
    raw = kp.to_bytes()
    assert raw[:4] == b"\x00\x01\x00\x05"  # mls10, key_package wire format
    assert mls.KeyPackage.from_bytes(raw).to_bytes() == raw
    g = mls.Group.create(suite, identity=b"x", signer=mls.SignatureKeyPair.generate(suite))
    with pytest.raises(mls.MLSError):
        g.add([raw[:-3]])
    assert not g.has_pending_commit


@pytest.mark.parametrize("suite", [2, 3, 7])
def test_other_suites(suite: int) -> None:
    room = Room(suite=suite)
    (b,) = room.add(b"m0")
    room.update(b)
    room.assert_agree()


def test_pending_update_proposal_survives_persistence() -> None:
    room = Room()
    (b,) = room.add(b"m0")
    gb = room.members[b]
    prop = gb.propose_update()
    gb = mls.Group.from_bytes(gb.to_bytes())
    room.members[b] = gb
    ga = room.members[b"m0"]
    ga.process(prop)
    out = ga.commit()
    ga.merge_pending_commit()
    gb.process(out.commit)
    room.assert_agree()
    room.update(b"m0")
    room.assert_agree()


def test_pending_commit_kept_across_application_and_dropped_by_other_commit() -> None:
    room = Room()
    b, c = room.add(b"m0", 2)
    gb, gc = room.members[b], room.members[c]
    gb.update()
    ct = gc.encrypt_application(b"x")
    assert gb.process(ct).application_data == b"x"
    assert gb.has_pending_commit  # an application message does not void our commit
    out = gc.update()
    gc.merge_pending_commit()
    gb.process(out.commit)  # c's commit won the race
    assert not gb.has_pending_commit
    room.members[b"m0"].process(out.commit)
    room.assert_agree()


@pytest.mark.parametrize("private_handshake", [True, False], ids=["private", "public"])
def test_own_proposal_echo_is_harmless(private_handshake: bool) -> None:
    room = Room(private_handshake=private_handshake)
    (b,) = room.add(b"m0")
    gb = room.members[b]
    kp, kpp = new_key_package(room.suite, b"n")
    prop = gb.propose_add(kp)
    res = gb.process(prop)  # echoed back by the delivery service
    assert res.kind == "proposal" and len(gb.pending_proposals) == 1
    ga = room.members[b"m0"]
    ga.process(prop)
    out = gb.commit()
    gb.merge_pending_commit()
    ga.process(out.commit)
    room.members[b"n"] = mls.Group.join_from_welcome(out.welcome, kpp)
    room.assert_agree()


def test_external_sender_proposals() -> None:
    from orange_fast.mls import external

    room = Room()
    b, c = room.add(b"m0", 2)
    server = mls.SignatureKeyPair.generate(room.suite)
    ga = room.members[b"m0"]
    out = ga.commit(extensions=[external.external_senders_extension([(server.public_key, b"sfu")])])
    ga.merge_pending_commit()
    room.fanout(b"m0", out.commit)
    room.assert_agree()
    gid, epoch = ga.group_id, ga.epoch
    kp, kpp = new_key_package(room.suite, b"via-server")
    p_add = external.add_proposal(server, 0, gid, epoch, kp)
    p_rem = external.remove_proposal(server, 0, gid, epoch, room.members[c].own_leaf_index)
    for g in room.members.values():
        assert g.process(p_add).sender_type == "external"
        g.process(p_rem)
    # a forged external proposal (wrong key) is rejected without state change
    rogue = mls.SignatureKeyPair.generate(room.suite)
    forged = external.remove_proposal(rogue, 0, gid, epoch, room.members[b].own_leaf_index)
    before = ga.to_bytes()
    with pytest.raises(mls.InvalidSignatureError):
        ga.process(forged)
    assert ga.to_bytes() == before
    out = room.members[b].commit()
    room.members[b].merge_pending_commit()
    room.fanout(b, out.commit)
    room.members[b"via-server"] = mls.Group.join_from_welcome(out.welcome, kpp)
    room.assert_agree()
    assert c not in room.members


@pytest.mark.parametrize("force_path", [False, True], ids=["partial", "full"])
def test_add_commit_with_and_without_path(force_path: bool) -> None:
    room = Room()
    b, c = room.add(b"m0", 2)
    room.update(c)
    gb = room.members[b]
    kp, kpp = new_key_package(room.suite, b"n")
    out = gb.add([kp], force_path=force_path)
    gb.merge_pending_commit()
    commit = M.MLSMessage.from_bytes(out.commit)
    room.fanout(b, out.commit)
    room.members[b"n"] = mls.Group.join_from_welcome(out.welcome, kpp)
    room.assert_agree()
    room.update(b"n")
    room.assert_agree()
    assert commit.wire_format == M.WireFormat.private_message


def test_merge_result_describes_the_commit() -> None:
    room = Room()
    b, c = room.add(b"m0", 2)
    ga = room.members[b"m0"]
    kp, kpp = new_key_package(room.suite, b"n")
    c_leaf = room.members[c].own_leaf_index
    out = ga.commit(proposals=[M.Proposal(M.Remove(c_leaf)), M.Proposal(M.Add(M.KeyPackage.from_bytes(kp)))])
    ga = mls.Group.from_bytes(ga.to_bytes())  # the pending commit's description survives persistence
    res = ga.merge_pending_commit()
    assert [m.identity for m in res.removed] == [c] and [m.identity for m in res.added] == [b"n"]
    other = room.members[b].process(out.commit)
    assert [m.leaf_index for m in other.removed] == [c_leaf]
    assert [m.identity for m in other.added] == [b"n"]


def test_commit_with_adds_and_removes() -> None:
    room = Room()
    b, c = room.add(b"m0", 2)
    ga = room.members[b"m0"]
    kp, kpp = new_key_package(room.suite, b"n")
    victim = ga.find_member(c)
    assert victim is not None and ga.find_member(b"nobody") is None
    out = ga.commit(add=[kp], remove=[victim.leaf_index])
    ga.merge_pending_commit()
    room.fanout(b"m0", out.commit)
    room.members[b"n"] = mls.Group.join_from_welcome(out.welcome, kpp)
    room.assert_agree()
    assert c not in room.members
