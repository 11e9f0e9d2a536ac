"""RFC 9420 §7.3 on the processing side, across the languages: a hostile designated committer
(the Node side, committing straight through ts-mls without the committer's own key check) adds a
well-signed KeyPackage whose encryption key is already a member's leaf key. The Python member
(``validate_proposal_list``) and the Node member (``uniqueAddKeys`` in ``web/src/mlsops.ts``) both
refuse the commit, keep their epoch and still agree; a genuine commit made the same way is
applied by both. Runs in ~1 s."""

from __future__ import annotations

from typing import Any

import pytest
from mls.hostile_leaf import key_package_reusing
from web_support import Oracle

from orange_fast.session.mlsops import MLSGroupOps, MLSOpsError
from orange_fast.session.wire import WireDecoder


class TS:
    """One TypeScript member in the oracle."""

    def __init__(self, oracle: Oracle, name: str) -> None:
        self.oracle, self.name = oracle, name
        assert oracle.ask("mls_open", name=name, identity=name) == {"ok": True}

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        return self.oracle.ask("mls_do", name=self.name, call=op, args=args)

    def do(self, op: str, **args: Any) -> dict[str, Any]:
        got = self.call(op, **args)
        assert "error" not in got, (op, got)
        return got


def group(oracle: Oracle, tag: str) -> tuple[TS, MLSGroupOps, TS]:
    """alice (Node, committer), bob (Python) and carol (Node) in one group at epoch 1."""
    alice, carol = TS(oracle, f"alice-{tag}"), TS(oracle, f"carol-{tag}")
    bob = MLSGroupOps(1, f"bob-{tag}".encode(), WireDecoder(1))
    a_kp = alice.do("new_kp")["result"][0]
    b_id, b_kp = bob.new_key_package()
    c_id, c_kp = carol.do("new_kp")["result"]
    alice.do("create", kpId=a_kp)
    welcome = alice.do("commit", adds=[b_kp.hex(), c_kp], removes=[])["result"][1]
    alice.do("merge")
    bob.join(bytes.fromhex(welcome), b_id)
    carol.do("join", welcome=welcome, kpId=c_id)
    return alice, bob, carol


@pytest.mark.timeout(60)
@pytest.mark.parametrize("victim", ["bob", "carol"])
def test_both_sides_refuse_a_commit_adding_a_leaf_with_a_key_in_use(oracle: Oracle, victim: str) -> None:
    alice, bob, carol = group(oracle, f"h{victim}")
    before = carol.do("leaf_of", refs=[])
    assert before["epoch"] == bob.epoch == 1 and before["auth"] == bob.group.epoch_authenticator.hex()
    key = next(m.encryption_key for m in bob.group.members if m.identity.startswith(victim.encode()))
    kp = key_package_reusing(b"mallory", bytes(key))
    commit = alice.do("commit_unchecked", adds=[kp.to_bytes().hex()])["result"][0]
    with pytest.raises(MLSOpsError):
        bob.process(bytes.fromhex(commit))
    got = carol.call("process", commit=commit)
    assert "error" in got and "in use" in got["error"], got
    after = carol.do("leaf_of", refs=[])
    assert after["epoch"] == bob.epoch == 1 and after["auth"] == bob.group.epoch_authenticator.hex()


@pytest.mark.timeout(60)
def test_both_sides_apply_a_genuine_commit_made_the_same_way(oracle: Oracle) -> None:
    alice, bob, carol = group(oracle, "genuine")
    dave = MLSGroupOps(1, b"dave", WireDecoder(1))
    _d_id, d_kp = dave.new_key_package()
    commit = alice.do("commit_unchecked", adds=[d_kp.hex()])["result"][0]
    bob.process(bytes.fromhex(commit))
    got = carol.do("process", commit=commit)
    assert got["epoch"] == bob.epoch == 2 and got["auth"] == bob.group.epoch_authenticator.hex()
