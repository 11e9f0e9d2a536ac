"""The session wire format: round trips, strict parsing, property-based fuzzing of the parser and decoder."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orange_fast.delivery import EntryType
from orange_fast.delivery import LogEntry as DeliveryEntry
from orange_fast.mls import KeyPackage, SignatureKeyPair
from orange_fast.session.committer import (
    CommitMsg,
    CreateMsg,
    KeyPackageMsg,
    Left,
    MemberRef,
    Rejected,
)
from orange_fast.session.wire import (
    KIND_COMMIT,
    KIND_CREATE,
    KIND_KEY_PACKAGE,
    MAX_PAYLOAD,
    ParsedCommit,
    WireDecoder,
    WireError,
    encode_body,
    parse_payload,
)

KINDS = [KIND_KEY_PACKAGE, KIND_CREATE, KIND_COMMIT]


def _entry(seq: int, sender: str, kind: str, payload: bytes, timestamp_ms: int | None = None) -> DeliveryEntry:
    ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    return DeliveryEntry(seq, ts, EntryType.MESSAGE, 0, sender, kind, payload)


def _kp(identity: bytes) -> bytes:
    kp, _ = KeyPackage.generate(1, identity=identity, signer=SignatureKeyPair.generate(1))
    return kp.to_bytes()


def test_commit_round_trip_with_known_key_packages() -> None:
    dec = WireDecoder(1)
    data = _kp(b"bob")
    kind, payload = encode_body(KeyPackageMsg(b"ignored", data))
    got = dec.decode(_entry(1, "bob", kind, payload))
    assert isinstance(got.body, KeyPackageMsg)
    ref = got.body.kp_id
    assert ref == KeyPackage.from_bytes(data).ref()
    waiting = dec.decode(_entry(1, "bob", kind, payload))  # the same KeyPackage again: refused
    assert waiting.body == Rejected("bob", "KeyPackage reuses a key seen before in this room")
    from orange_fast.session.committer import Waiting

    carol = MemberRef("carol", b"\x01" * 32)
    body = CommitMsg(3, 7, (Waiting(MemberRef("bob", ref), data),), (carol,), b"commit", b"welcome")
    kind, payload = encode_body(body)
    assert kind == KIND_COMMIT
    back = dec.decode(_entry(2, "alice", kind, payload))
    assert back.body == body and back.sender == "alice" and back.seq == 2
    assert dec.signature_key(MemberRef("bob", ref)) == bytes(KeyPackage.from_bytes(data).leaf_node.signature_key)
    assert dec.signature_key(MemberRef("mallory", ref)) is None


def test_commit_naming_an_unknown_key_package_is_rejected() -> None:
    from orange_fast.session.committer import Waiting

    dec = WireDecoder(1)
    kind, payload = encode_body(CommitMsg(1, 0, (Waiting(MemberRef("x", b"\x02" * 32), b"kp"),), (), b"c", b"w"))
    got = dec.decode(_entry(5, "a", kind, payload))
    assert got.body == Rejected("a", "commit adds an unknown KeyPackage") and got.seq == 5


def test_notices_map_to_committer_notices() -> None:
    dec = WireDecoder(1)
    got = dec.decode(DeliveryEntry(4, 0, EntryType.LEFT, 0, "zed", "", b""))
    assert got.body == Left("zed") and got.sender is None


@pytest.mark.parametrize(
    "kind,payload,reason",
    [
        (KIND_CREATE, b"", "truncated payload"),
        (KIND_CREATE, b"\x02\x01a", "unsupported wire version"),
        (KIND_CREATE, b"\x01\x00", "empty kp_id"),
        (KIND_CREATE, b"\x01\x01ab", "trailing bytes"),
        (KIND_KEY_PACKAGE, b"\x01\x00\x00\x00\x00", "empty KeyPackage"),
        (KIND_COMMIT, b"\x01" + bytes(12) + bytes(9), "empty commit"),
        (KIND_COMMIT, b"\x01" + bytes(12) + bytes(4) + b"\x00\x00\x00\x01c\x02", "bad welcome flag"),
        ("other", b"\x01", "unknown kind"),
        (KIND_COMMIT, b"\x01" + bytes(MAX_PAYLOAD), "payload too large"),
    ],
)
def test_parser_rejects_with_a_typed_error(kind: str, payload: bytes, reason: str) -> None:
    with pytest.raises(WireError, match=reason):
        parse_payload(kind, payload)


def test_key_package_with_foreign_identity_is_rejected() -> None:
    dec = WireDecoder(1)
    kind, payload = encode_body(KeyPackageMsg(b"", _kp(b"alice")))
    got = dec.decode(_entry(1, "mallory", kind, payload))
    assert got.body == Rejected("mallory", "KeyPackage identity is not its sender's")


refs = st.tuples(st.text(alphabet="abcxyz0123", min_size=1, max_size=8), st.binary(min_size=1, max_size=40))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    gen=st.integers(0, 2**32 - 1),
    epoch=st.integers(0, 2**64 - 1),
    adds=st.lists(refs, max_size=4),
    removes=st.lists(refs, max_size=4),
    commit=st.binary(min_size=1, max_size=200),
    welcome=st.none() | st.binary(max_size=200),
)
def test_commit_payload_round_trips(gen, epoch, adds, removes, commit, welcome) -> None:
    from orange_fast.session.committer import Waiting

    body = CommitMsg(gen, epoch, tuple(Waiting(MemberRef(c, k), b"") for c, k in adds),
                     tuple(MemberRef(c, k) for c, k in removes), commit, welcome)
    kind, payload = encode_body(body)
    parsed = parse_payload(kind, payload)
    assert parsed == ParsedCommit(gen, epoch, tuple(adds), tuple(removes), commit, welcome)
    for cut in range(len(payload)):  # every strict prefix is refused
        with pytest.raises(WireError):
            parse_payload(kind, payload[:cut])


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(KINDS + ["x"]), payload=st.binary(max_size=300))
def test_parser_never_raises_anything_but_wire_error(kind: str, payload: bytes) -> None:
    try:
        result = parse_payload(kind, payload)
    except WireError:
        return
    assert isinstance(result, (bytes, ParsedCommit))


_DECODER = WireDecoder(1)


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(KINDS), payload=st.binary(max_size=400), seq=st.integers(1, 2**40))
def test_decoder_turns_any_payload_into_an_entry(kind: str, payload: bytes, seq: int) -> None:
    got = _DECODER.decode(_entry(seq, "fuzz", kind, b"\x01" + payload))
    assert got.seq == seq and got.sender == "fuzz"
    if isinstance(got.body, Rejected):
        assert got.body.client == "fuzz" and got.body.reason
    else:
        assert isinstance(got.body, (CreateMsg, CommitMsg, KeyPackageMsg))


def test_members_are_bound_to_leaves_and_a_member_without_a_leaf_is_skipped() -> None:
    """``MLSGroupOps`` removes members by leaf; a stale member that has no leaf in the group
    (nothing to remove) never makes a commit fail, and every member expects that commit."""
    from orange_fast.session.mlsops import MLSGroupOps

    dec_a, dec_b = WireDecoder(1), WireDecoder(1)
    a, b = MLSGroupOps(1, b"alice", dec_a), MLSGroupOps(1, b"bob", dec_b)
    entries, kps = [], []
    for seq, (ops, name) in enumerate(((a, "alice"), (b, "bob"), (b, "bob")), start=1):
        _ref, kp = ops.new_key_package()
        kps.append(kp)
        entries.append(_entry(seq, name, *encode_body(KeyPackageMsg(b"", kp))))
    refs = []
    for e in entries:
        body = dec_a.decode(e).body
        assert dec_b.decode(e).body == body
        assert isinstance(body, KeyPackageMsg)
        refs.append(MemberRef(e.sender, body.kp_id))
    alice, bob, bob_unused = refs
    a.create(alice.kp_id)
    commit, welcome = a.commit([kps[1]], [])
    a.merge_pending()
    assert welcome is not None
    b.join(welcome, bob.kp_id)
    assert [a.leaf_of(r) for r in refs] == [0, 1, None] == [b.leaf_of(r) for r in refs]
    assert a.leaf_of(MemberRef("mallory", bob.kp_id)) is None  # a ref must name the KeyPackage's client
    # bob's second KeyPackage never got a leaf: removing it is a no-op, not a failure
    commit, welcome = a.commit([], [bob_unused])
    b.expect(commit, [], [bob_unused])
    b.process(commit)
    a.merge_pending()
    assert a.epoch == b.epoch == 2 and a.group.epoch_authenticator == b.group.epoch_authenticator
    # removing bob goes by his leaf
    commit, _ = a.commit([], [bob])
    a.merge_pending()
    assert [m.identity for m in a.group.members] == [b"alice"] and a.leaf_of(bob) is None


def test_key_package_lifetime_is_checked_against_the_entry_timestamp() -> None:
    """Deterministic: the server's timestamp decides, not the reader's clock."""
    from orange_fast.mls.messages import Lifetime

    t = 1_800_000_000
    kp, _ = KeyPackage.generate(1, identity=b"bob", signer=SignatureKeyPair.generate(1),
                                lifetime=Lifetime(t - 300, t + 86400))
    kind, payload = encode_body(KeyPackageMsg(b"", kp.to_bytes()))
    for ts, ok in ((t, True), (t - 1, False), (t + 1, False)):  # exactly the margins, or one second off
        got = WireDecoder(1).decode(_entry(1, "bob", kind, payload, timestamp_ms=ts * 1000 + 999))
        assert isinstance(got.body, KeyPackageMsg) is ok, ts
        if not ok:
            assert got.body == Rejected("bob", "KeyPackage lifetime does not cover its publication")
