"""The handshake wire layer of both implementations on the same random logs.

A pool of real KeyPackages (made by the Python MLS and by ts-mls, for three identities) and
hypothesis-chosen entries built from them — published by their owner or by someone else, twice,
with a flipped byte, truncated, or garbage; creates and commits naming known or unknown refs;
update proposals; presence notices — are decoded by Python's ``WireDecoder`` and by the
TypeScript one from seq 1: every entry must become the same body (KeyPackage refs included) or
be rejected by both. And bodies encode to the same ``(kind, payload)``. Runs in ~5 s.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web_json import body_json, decoded_json
from web_support import Oracle

from orange_fast.delivery import EntryType, LogEntry
from orange_fast.mls import CipherSuite, KeyPackage, SignatureKeyPair
from orange_fast.session.committer import (
    CommitMsg,
    CreateMsg,
    MemberRef,
    UpdateProposalMsg,
    Waiting,
)
from orange_fast.session.wire import WireDecoder, encode_body

IDS = ["alice", "bob", "carol"]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])



@pytest.fixture(scope="module")
def pool(oracle: Oracle) -> list[tuple[str, bytes]]:
    """(identity, KeyPackage MLSMessage): two from Python and two from ts-mls per identity."""
    kps = []
    for ident in IDS:
        for _ in range(2):
            signer = SignatureKeyPair.generate(CipherSuite(1))
            kp, _private = KeyPackage.generate(CipherSuite(1), ident.encode(), signer)
            kps.append((ident, kp.to_bytes()))
            kps.append((ident, bytes.fromhex(oracle.ask("new_kp", identity=ident)["kp"])))
    return kps


def kp_payload(kp: bytes) -> bytes:
    return b"\x01" + len(kp).to_bytes(4, "big") + kp


def build_log(pool: list[tuple[str, bytes]], plan: list[tuple[Any, ...]]) -> list[LogEntry]:
    """Turn hypothesis' plan into delivery entries (payloads from the pool, mutated as planned)."""
    now_ms = int(time.time() * 1000)
    refs = [KeyPackage.from_bytes(kp).ref() for _, kp in pool]
    entries: list[LogEntry] = []
    for step in plan:
        what, sender, i, j, n = step
        _owner, kp = pool[i % len(pool)]
        seq = len(entries) + 1
        if what == "notice":
            entries.append(LogEntry(seq, now_ms, EntryType(1 + n % 3), 0, sender, "", b""))
            continue
        if what == "kp":
            kind, payload = "of.kp", kp_payload(kp)
        elif what == "kp-flip":
            raw = bytearray(kp)
            raw[j % len(raw)] ^= 1 << (n % 8)
            kind, payload = "of.kp", kp_payload(bytes(raw))
        elif what == "kp-cut":
            kind, payload = "of.kp", kp_payload(kp[: j % len(kp)])
        elif what == "create":
            kind, payload = encode_body(CreateMsg(refs[i % len(refs)]))
        elif what == "commit":
            adds = tuple(Waiting(MemberRef(pool[k % len(pool)][0] if n % 2 else sender, refs[k % len(refs)]), b"")
                         for k in range(i, i + n % 3))
            removes = (MemberRef(sender, refs[j % len(refs)]),) if n % 4 == 1 else ()
            welcome = b"W" * (n % 5) or None
            kind, payload = encode_body(CommitMsg(n % 3, j, adds, removes, b"C" * (1 + n % 7), welcome))
        elif what == "update":
            kind, payload = encode_body(UpdateProposalMsg(n, j, b"P" * (1 + n % 3)))
        else:  # garbage of a handshake kind
            kind = ["of.kp", "of.create", "of.commit", "of.update", "of.what"][n % 5]
            payload = bytes([j % 3]) + bytes(range(n % 40))
        entries.append(LogEntry(seq, now_ms, EntryType.MESSAGE, 0, sender, kind, payload))
    return entries


plans = st.lists(
    st.tuples(
        st.sampled_from(
            ["kp", "kp", "kp", "kp-flip", "kp-cut", "create", "commit", "commit", "update", "garbage", "notice"]
        ),
        st.sampled_from(IDS),
        st.integers(0, 11),
        st.integers(0, 2000),
        st.integers(0, 255),
    ),
    min_size=1,
    max_size=25,
)


@SETTINGS
@given(plan=plans)
def test_wire_decoders_agree(oracle, pool, plan):
    entries = build_log(pool, plan)
    decoder = WireDecoder(1)
    expected = []
    for e in entries:
        expected.append(decoded_json(decoder.decode(e)))
    got = oracle.ask(
        "wire_decode",
        entries=[
            {"seq": e.seq, "ts": e.timestamp_ms, "entry_type": int(e.entry_type), "sender": e.sender, "kind": e.kind,
             "payload": e.payload.hex()}
            for e in entries
        ],
    )
    assert "error" not in got, got
    assert got["bodies"] == expected


def test_honest_key_packages_of_both_sides_are_accepted_by_both(oracle, pool):
    """Sanity for the test above: every pooled KeyPackage published by its owner is accepted."""
    plan = [("kp", owner, i, 0, 0) for i, (owner, _) in enumerate(pool)]
    got = oracle.ask(
        "wire_decode",
        entries=[
            {
                "seq": e.seq, "ts": e.timestamp_ms, "entry_type": 0, "sender": e.sender, "kind": e.kind,
                "payload": e.payload.hex(),
            }
            for e in build_log(pool, plan)
        ],
    )
    assert [b["type"] for b in got["bodies"]] == ["kp"] * len(pool)


@SETTINGS
@given(gen=st.integers(0, 2**32 - 1), epoch=st.integers(0, 2**53 - 1), n=st.integers(0, 3), data=st.data())
def test_bodies_encode_alike(oracle, gen, epoch, n, data):
    refs = [MemberRef(data.draw(st.sampled_from(IDS)), data.draw(st.binary(min_size=1, max_size=32))) for _ in range(n)]
    welcome = data.draw(st.one_of(st.none(), st.binary(min_size=1, max_size=64)))
    bodies = [
        CommitMsg(
            gen,
            epoch,
            tuple(Waiting(r, b"KP") for r in refs),
            tuple(refs[:1]),
            data.draw(st.binary(min_size=1)),
            welcome,
        ),
        CreateMsg(data.draw(st.binary(min_size=1, max_size=64))),
        UpdateProposalMsg(gen, epoch, data.draw(st.binary(min_size=1))),
    ]
    for body in bodies:
        kind, payload = encode_body(body)
        assert oracle.ask("wire_encode", body=body_json(body)) == {"kind": kind, "payload": payload.hex()}


def test_commits_name_published_key_packages_only(oracle, pool):
    """Sanity: a commit adding a published KeyPackage of its publisher is accepted by both; one
    naming it under another client, or naming one never published, is rejected by both."""
    plan = [
        ("kp", pool[0][0], 0, 0, 0), ("commit", "bob", 0, 0, 1), ("commit", "bob", 0, 0, 2), ("commit", "bob", 3, 0, 1)
    ]
    entries = build_log(pool, plan)
    decoder = WireDecoder(1)
    expected = [decoded_json(decoder.decode(e))["type"] for e in entries]
    assert expected == ["kp", "commit", "rejected", "rejected"]
    got = oracle.ask(
        "wire_decode",
        entries=[
            {
                "seq": e.seq, "ts": e.timestamp_ms, "entry_type": 0, "sender": e.sender, "kind": e.kind,
                "payload": e.payload.hex(),
            }
            for e in entries
        ],
    )
    assert [b["type"] for b in got["bodies"]] == ["kp", "commit", "rejected", "rejected"]


def test_key_package_lifetime_judged_by_the_entry_timestamp_on_both_sides(oracle, pool):
    """Each pooled KeyPackage (both implementations) published at entry timestamps just inside and
    just outside its lifetime window (``not_before <= ts - 300 s`` and ``ts + 86400 s <= not_after``,
    whole seconds of the server's ``timestamp_ms``): both decoders accept exactly the inside ones.
    The window is computed here from the KeyPackage's own lifetime field."""
    from orange_fast.session.wire import LIFETIME_AFTER, LIFETIME_BEFORE

    for owner, kp in pool:
        life = KeyPackage.from_bytes(kp).leaf_node.lifetime
        assert life is not None
        first, last = life.not_before + LIFETIME_BEFORE, life.not_after - LIFETIME_AFTER  # seconds
        cases = [
            (first * 1000 - 1, False),  # one ms early: whole seconds round down
            (first * 1000, True),
            (last * 1000 + 999, True),  # still second `last`
            (last * 1000 + 1000, False),
        ]
        for ts_ms, inside in cases:
            entry = LogEntry(1, ts_ms, EntryType.MESSAGE, 0, owner, "of.kp", kp_payload(kp))
            py = decoded_json(WireDecoder(1).decode(entry))
            got = oracle.ask(
                "wire_decode",
                entries=[{"seq": 1, "ts": ts_ms, "entry_type": 0, "sender": owner, "kind": "of.kp",
                          "payload": kp_payload(kp).hex()}],
            )
            assert got["bodies"] == [py], (owner, ts_ms)
            assert (py["type"] == "kp") is inside, (owner, ts_ms, py)
