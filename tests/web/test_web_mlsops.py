"""Members are MLS leaves, on both sides (docs/protocol.md §9): a MemberRef is bound to the leaf its
Add (or the Welcome's tree) gave it; removals go by leaf; a stale member without a leaf has nothing
to remove, so the committer's commit skips it and the other side expects exactly that. Python's
``MLSGroupOps`` and the TypeScript one (driven step by step through the oracle) in one group, each
direction as committer. Runs in ~1 s."""

from __future__ import annotations

import time
from typing import Any

import pytest
from web_support import Oracle

from orange_fast.delivery import EntryType, LogEntry
from orange_fast.session.committer import KeyPackageMsg, MemberRef
from orange_fast.session.mlsops import MLSGroupOps
from orange_fast.session.wire import WireDecoder, encode_body


def entry(seq: int, sender: str, kp: bytes) -> LogEntry:
    kind, payload = encode_body(KeyPackageMsg(b"", kp))
    return LogEntry(seq, int(time.time() * 1000), EntryType.MESSAGE, 0, sender, kind, payload)


def as_json(e: LogEntry) -> dict[str, Any]:
    return {"seq": e.seq, "ts": e.timestamp_ms, "entry_type": 0, "sender": e.sender, "kind": e.kind,
            "payload": e.payload.hex()}


def ref_json(r: MemberRef) -> list[str]:
    return [r.client, r.kp_id.hex()]


class TS:
    """One TypeScript member in the oracle."""

    def __init__(self, oracle: Oracle, name: str) -> None:
        self.oracle, self.name = oracle, name
        assert oracle.ask("mls_open", name=name, identity=name) == {"ok": True}

    def do(self, op: str, **args: Any) -> dict[str, Any]:
        got = self.oracle.ask("mls_do", name=self.name, call=op, args=args)
        assert "error" not in got, (op, got)
        return got


def room_log(oracle: Oracle, py_name: str, ts_name: str, ts_first: bool) -> tuple[Any, ...]:
    """A Python and a TypeScript member; the log: the committer's KeyPackage, then two of the other's."""
    dec = WireDecoder(1)
    py = MLSGroupOps(1, py_name.encode(), dec)
    ts = TS(oracle, ts_name)
    kps: list[tuple[str, bytes]] = []
    order = [ts_name, py_name, py_name] if ts_first else [py_name, ts_name, ts_name]
    for name in order:
        if name == py_name:
            kps.append((name, py.new_key_package()[1]))
        else:
            kps.append((name, bytes.fromhex(ts.do("new_kp")["result"][1])))
    entries = [entry(i, name, kp) for i, (name, kp) in enumerate(kps, start=1)]
    refs = []
    for e in entries:
        body = dec.decode(e).body
        assert isinstance(body, KeyPackageMsg)
        refs.append(MemberRef(e.sender, body.kp_id))
    got = oracle.ask("mls_decode", name=ts_name, entries=[as_json(e) for e in entries])
    assert got["bodies"] == ["kp"] * 3
    return py, ts, refs, [kp for _n, kp in kps]


@pytest.mark.timeout(60)
def test_python_committer_removes_by_leaf_and_skips_a_member_without_one(oracle: Oracle) -> None:
    py, ts, refs, kps = room_log(oracle, "alice", "bob-ts", ts_first=False)
    alice, bob, bob_unused = refs
    py.create(alice.kp_id)
    _commit, welcome = py.commit([kps[1]], [])
    py.merge_pending()
    assert welcome is not None
    ts.do("join", welcome=welcome.hex(), kpId=bob.kp_id.hex())
    leaves = ts.do("leaf_of", refs=[ref_json(r) for r in refs])["result"]
    assert leaves == [0, 1, None] == [py.leaf_of(r) for r in refs]
    # bob's second KeyPackage never got a leaf: removing it is skipped, and expected so
    commit, _ = py.commit([], [bob_unused])
    ts.do("expect", commit=commit.hex(), adds=[], removes=[ref_json(bob_unused)])
    got = ts.do("process", commit=commit.hex())
    py.merge_pending()
    assert got["epoch"] == py.epoch == 2 and got["auth"] == py.group.epoch_authenticator.hex()


@pytest.mark.timeout(60)
def test_typescript_committer_removes_by_leaf_and_skips_a_member_without_one(oracle: Oracle) -> None:
    py, ts, refs, kps = room_log(oracle, "bob-py", "alice-ts", ts_first=True)
    alice, bob, bob_unused = refs
    ts.do("create", kpId=alice.kp_id.hex())
    welcome = ts.do("commit", adds=[kps[1].hex()], removes=[])["result"][1]
    ts.do("merge")
    assert welcome is not None
    py.join(bytes.fromhex(welcome), bob.kp_id)
    assert ts.do("leaf_of", refs=[ref_json(r) for r in refs])["result"] == [0, 1, None]
    assert [py.leaf_of(r) for r in refs] == [0, 1, None]
    commit = bytes.fromhex(ts.do("commit", adds=[], removes=[ref_json(bob_unused)])["result"][0])
    py.expect(commit, [], [bob_unused])
    py.process(commit)
    got = ts.do("merge")
    assert got["epoch"] == py.epoch == 2 and got["auth"] == py.group.epoch_authenticator.hex()
    # and a commit that removes bob goes by his leaf: Python sees itself removed
    commit = bytes.fromhex(ts.do("commit", adds=[], removes=[ref_json(bob)])["result"][0])
    got = ts.do("merge")
    assert ts.do("leaf_of", refs=[ref_json(r) for r in refs])["result"] == [0, None, None]
    assert got["epoch"] == 3
