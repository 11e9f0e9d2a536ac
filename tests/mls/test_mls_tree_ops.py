"""Property tests of the ratchet tree: add/remove/update keep the tree full and minimal, and the cached
tree hashes always equal a from-scratch computation."""

from __future__ import annotations

import os

from hypothesis import given, settings, strategies as st

from orange_fast.mls import messages as M
from orange_fast.mls import treemath as tm
from orange_fast.mls.suite import get_suite
from orange_fast.mls.tree import RatchetTree

SUITE = get_suite(1)


def _leaf(tag: int) -> M.LeafNode:
    return M.LeafNode(encryption_key=os.urandom(32), signature_key=os.urandom(32),
                      credential=M.Credential.basic(b"m%d" % tag), capabilities=M.default_capabilities(1),
                      leaf_node_source=M.LeafNodeSource.update, signature=b"sig")


OPS = st.lists(st.tuples(st.sampled_from(["add", "remove", "update", "path"]), st.integers(0, 1 << 16)),
               min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(OPS)
def test_tree_operations_keep_invariants(ops: list) -> None:
    tree = RatchetTree(SUITE, [_leaf(0)])
    tag = 1
    for op, r in ops:
        members = [i for i, _ in tree.leaves()]
        if op == "add":
            idx = tree.add_leaf(_leaf(tag))
            tag += 1
            blanks_before = [i for i in range(tree.n_leaves) if tree.leaf(i) is None and i < idx]
            assert not blanks_before  # leftmost blank leaf was used
        elif op == "remove" and len(members) > 1:
            victim = members[r % len(members)]
            tree.remove_leaf(victim)
            assert tree.leaf(victim) is None
            # truncation is minimal: the right half of the tree holds a member
            if tree.n_leaves > 1:
                assert any(tree.leaf(i) is not None for i in range(tree.n_leaves // 2, tree.n_leaves))
        elif op == "update":
            who = members[r % len(members)]
            tree.update_leaf(who, _leaf(tag))
            tag += 1
        elif op == "path":
            who = members[r % len(members)]
            tree.blank_path(who)
            for p in tree.filtered_direct_path(who):
                tree.set_node(p, M.ParentNode(os.urandom(32), b"", []))
            tree.compute_parent_hashes(who)
        n = tree.n_leaves
        assert n & (n - 1) == 0 and len(tree.nodes) == tm.node_width(n)
        fresh = RatchetTree.from_bytes(SUITE, tree.to_bytes())
        assert fresh.root_tree_hash() == tree.root_tree_hash()
        assert fresh.to_bytes() == tree.to_bytes()
        tree.verify_unmerged_leaves()


def test_copy_is_independent() -> None:
    tree = RatchetTree(SUITE, [_leaf(0)])
    tree.add_leaf(_leaf(1))
    h = tree.root_tree_hash()
    other = tree.copy()
    other.add_leaf(_leaf(2))
    assert tree.root_tree_hash() == h and tree.n_leaves == 2
    assert other.n_leaves == 4 and other.root_tree_hash() != h
