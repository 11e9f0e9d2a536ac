"""Interoperability with AWS mls-rs through the ``agentvault-mls-rs-uniffi`` wheel (test-only peer).

Both directions: mls-rs creates the group and adds orange_fast members from their KeyPackages (Welcome
processed here), and orange_fast creates the group and adds an mls-rs member. After every commit, made
by either side (adds, removes, updates), all members agree on ``MLS-Exporter("SFrame 1.0 Base Key", "", 16)``,
another exporter value and the ratchet tree.  The binding does not expose the epoch authenticator, so the
orange_fast members compare it among themselves.
"""

from __future__ import annotations

from typing import Dict, List

import pytest

R = pytest.importorskip("mls_rs_uniffi", reason="agentvault-mls-rs-uniffi wheel not installed "
                                                "(pip install agentvault-mls-rs-uniffi)")

from orange_fast import mls  # noqa: E402

LABEL = b"SFrame 1.0 Base Key"
SUITE = mls.CipherSuite(1)


def _rs_client(name: bytes) -> "R.Client":
    kp = R.generate_signature_keypair(R.CipherSuite.CURVE25519_AES128)
    return R.Client(name, kp, R.client_config_default())


def _our_kp(name: bytes):
    signer = mls.SignatureKeyPair.generate(SUITE)
    return mls.KeyPackage.generate(SUITE, identity=name, signer=signer)


def _rs_apply(group: "R.Group", out: "R.CommitOutput") -> None:
    """mls-rs applies its own pending commit when it processes its own commit message."""
    res = group.process_incoming_message(out.commit_message)
    assert res.is_commit()


def _agree(rs_groups: List["R.Group"], ours: Dict[bytes, mls.Group]) -> None:
    values = set()
    other = set()
    trees = set()
    for g in rs_groups:
        values.add(g.export_secret(LABEL, b"", 16))
        other.add(g.export_secret(b"orange interop", b"ctx", 32))
        trees.add(g.export_tree().bytes)
    for g in ours.values():
        values.add(g.export_secret(LABEL, b"", 16))
        other.add(g.export_secret(b"orange interop", b"ctx", 32))
        trees.add(g.ratchet_tree_bytes())
    assert len(values) == 1 and len(other) == 1 and len(trees) == 1
    assert len({g.epoch_authenticator for g in ours.values()}) == 1
    assert len({g.epoch for g in ours.values()}) <= 1


def test_mls_rs_creates_group_and_adds_us() -> None:
    alice = _rs_client(b"alice")
    ag = alice.create_group(None)
    ours: Dict[bytes, mls.Group] = {}
    identities: Dict[bytes, "R.SigningIdentity"] = {}

    kp_b, kpp_b = _our_kp(b"bob")
    out = ag.add_members([R.Message.from_bytes(kp_b.to_bytes())])
    _rs_apply(ag, out)
    tree = out.ratchet_tree.bytes if out.ratchet_tree is not None else None
    ours[b"bob"] = mls.Group.join_from_welcome(out.welcome_message.to_bytes(), kpp_b, tree)
    _agree([ag], ours)

    # orange_fast commits an update (PrivateMessage); mls-rs follows
    bob = ours[b"bob"]
    o = bob.update()
    bob.merge_pending_commit()
    res = ag.process_incoming_message(R.Message.from_bytes(o.commit))
    identities[b"bob"] = res.committer
    _agree([ag], ours)

    # orange_fast adds another orange_fast member; mls-rs and the new member follow
    kp_c, kpp_c = _our_kp(b"carol")
    o = bob.add([kp_c.to_bytes()])
    bob.merge_pending_commit()
    ag.process_incoming_message(R.Message.from_bytes(o.commit))
    ours[b"carol"] = mls.Group.join_from_welcome(o.welcome, kpp_c)
    _agree([ag], ours)

    # mls-rs adds a third orange_fast member
    kp_d, kpp_d = _our_kp(b"dave")
    out = ag.add_members([R.Message.from_bytes(kp_d.to_bytes())])
    _rs_apply(ag, out)
    for g in ours.values():
        g.process(out.commit_message.to_bytes())
    tree = out.ratchet_tree.bytes if out.ratchet_tree is not None else None
    ours[b"dave"] = mls.Group.join_from_welcome(out.welcome_message.to_bytes(), kpp_d, tree)
    _agree([ag], ours)

    # mls-rs empty commit (update)
    out = ag.commit()
    _rs_apply(ag, out)
    for g in ours.values():
        g.process(out.commit_message.to_bytes())
    _agree([ag], ours)

    # orange_fast removes one of its own; mls-rs follows
    carol = ours[b"carol"]
    o = ours[b"dave"].remove([carol.own_leaf_index])
    ours[b"dave"].merge_pending_commit()
    ag.process_incoming_message(R.Message.from_bytes(o.commit))
    for name in (b"bob", b"carol"):
        ours[name].process(o.commit)
    assert not carol.is_active
    del ours[b"carol"]
    _agree([ag], ours)

    # mls-rs removes bob (identity learned from bob's commit)
    out = ag.remove_members([identities[b"bob"]])
    _rs_apply(ag, out)
    res = ours[b"bob"].process(out.commit_message.to_bytes())
    assert res.removed_self
    del ours[b"bob"]
    ours[b"dave"].process(out.commit_message.to_bytes())
    _agree([ag], ours)

    # application data both ways
    ct = ag.encrypt_application_message(b"from mls-rs")
    assert ours[b"dave"].process(ct.to_bytes()).application_data == b"from mls-rs"
    ct = ours[b"dave"].encrypt_application(b"from orange_fast")
    got = ag.process_incoming_message(R.Message.from_bytes(ct))
    assert got.is_application_message() and got.data == b"from orange_fast"


@pytest.mark.parametrize("private_handshake", [True, False], ids=["private", "public"])
def test_we_create_group_and_add_mls_rs(private_handshake: bool) -> None:
    signer = mls.SignatureKeyPair.generate(SUITE)
    alice = mls.Group.create(SUITE, identity=b"alice", signer=signer, private_handshake=private_handshake)
    ours = {b"alice": alice}
    bob = _rs_client(b"bob")
    kp_msg = bob.generate_key_package_message()
    out = alice.add([kp_msg.to_bytes()])
    alice.merge_pending_commit()
    info = bob.join_group(None, R.Message.from_bytes(out.welcome))
    bg = info.group
    _agree([bg], ours)

    # mls-rs commits an update; we follow
    o = bg.commit()
    _rs_apply(bg, o)
    alice.process(o.commit_message.to_bytes())
    _agree([bg], ours)

    # we add an orange_fast member and another mls-rs member in one commit
    kp_c, kpp_c = _our_kp(b"carol")
    dave = _rs_client(b"dave")
    out = alice.add([kp_c.to_bytes(), dave.generate_key_package_message().to_bytes()])
    alice.merge_pending_commit()
    bg.process_incoming_message(R.Message.from_bytes(out.commit))
    ours[b"carol"] = mls.Group.join_from_welcome(out.welcome, kpp_c)
    dg = dave.join_group(None, R.Message.from_bytes(out.welcome)).group
    _agree([bg, dg], ours)

    # updates from our side
    for name in (b"alice", b"carol"):
        g = ours[name]
        o2 = g.update()
        g.merge_pending_commit()
        for other, og in ours.items():
            if other != name:
                og.process(o2.commit)
        bg.process_incoming_message(R.Message.from_bytes(o2.commit))
        dg.process_incoming_message(R.Message.from_bytes(o2.commit))
        _agree([bg, dg], ours)

    # mls-rs adds an orange_fast member
    kp_e, kpp_e = _our_kp(b"erin")
    o = dg.add_members([R.Message.from_bytes(kp_e.to_bytes())])
    _rs_apply(dg, o)
    bg.process_incoming_message(o.commit_message)
    for g in ours.values():
        g.process(o.commit_message.to_bytes())
    tree = o.ratchet_tree.bytes if o.ratchet_tree is not None else None
    ours[b"erin"] = mls.Group.join_from_welcome(o.welcome_message.to_bytes(), kpp_e, tree)
    _agree([bg, dg], ours)

    # we remove the mls-rs member dave
    dave_leaf = next(m.leaf_index for m in alice.members if m.identity == b"dave")
    out = alice.remove([dave_leaf])
    alice.merge_pending_commit()
    for name in (b"carol", b"erin"):
        ours[name].process(out.commit)
    bg.process_incoming_message(R.Message.from_bytes(out.commit))
    res = dg.process_incoming_message(R.Message.from_bytes(out.commit))
    assert res.is_commit() and res.effect.is_removed()
    _agree([bg], ours)

    # mls-rs removes carol (identity from carol's earlier commit, seen by bob)
    g = ours[b"carol"]
    o2 = g.update()
    g.merge_pending_commit()
    for other, og in ours.items():
        if other != b"carol":
            og.process(o2.commit)
    carol_id = bg.process_incoming_message(R.Message.from_bytes(o2.commit)).committer
    o = bg.remove_members([carol_id])
    _rs_apply(bg, o)
    for name in list(ours):
        res = ours[name].process(o.commit_message.to_bytes())
        if res.removed_self:
            del ours[name]
    assert b"carol" not in ours
    _agree([bg], ours)
