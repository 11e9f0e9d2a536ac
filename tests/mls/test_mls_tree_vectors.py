"""Ratchet tree against ``tree-validation.json`` and ``tree-operations.json`` (all suites)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from orange_fast.mls import messages as M
from orange_fast.mls.errors import InvalidTreeError, MLSError
from orange_fast.mls.suite import get_suite
from orange_fast.mls.tree import RatchetTree
from vectorfiles import read_vectors, skip_if_missing

TV = "mls/tree-validation.json"
TO = "mls/tree-operations.json"
TV_CASES = read_vectors(TV) or []
TO_CASES = read_vectors(TO) or []


@skip_if_missing(TV)
@pytest.mark.parametrize("case", TV_CASES, ids=[f"s{c['cipher_suite']}-{i}" for i, c in enumerate(TV_CASES)])
def test_tree_validation(case: dict) -> None:
    suite = get_suite(case["cipher_suite"])
    raw = bytes.fromhex(case["tree"])
    tree = RatchetTree.from_bytes(suite, raw)
    group_id = bytes.fromhex(case["group_id"])
    assert len(tree.nodes) == len(case["tree_hashes"])
    for i in range(len(tree.nodes)):
        assert tree.resolution(i) == case["resolutions"][i]
        assert tree.tree_hash(i).hex() == case["tree_hashes"][i]
    tree.verify_parent_hashes()
    tree.verify_unmerged_leaves()
    for idx, leaf in tree.leaves():
        assert leaf.verify(suite, group_id, idx)
    assert tree.to_bytes() == raw


@skip_if_missing(TO)
@pytest.mark.parametrize("case", TO_CASES, ids=[f"op{i}" for i in range(len(TO_CASES))])
def test_tree_operations(case: dict) -> None:
    suite = get_suite(case["cipher_suite"])
    tree = RatchetTree.from_bytes(suite, bytes.fromhex(case["tree_before"]))
    assert tree.root_tree_hash().hex() == case["tree_hash_before"]
    body = M.Proposal.from_bytes(bytes.fromhex(case["proposal"])).body
    if isinstance(body, M.Add):
        tree.add_leaf(body.key_package.leaf_node)
    elif isinstance(body, M.Remove):
        tree.remove_leaf(body.removed)
    elif isinstance(body, M.Update):
        tree.update_leaf(case["proposal_sender"], body.leaf_node)
    else:  # pragma: no cover - the vectors only have these three
        pytest.fail(f"unexpected proposal {type(body).__name__}")
    assert tree.to_bytes().hex() == case["tree_after"]
    assert tree.root_tree_hash().hex() == case["tree_hash_after"]
    # a fresh parse of the result gives the same hash (the cache was invalidated correctly)
    again = RatchetTree.from_bytes(suite, tree.to_bytes())
    assert again.root_tree_hash().hex() == case["tree_hash_after"]


def test_vector_counts() -> None:
    if not TV_CASES or not TO_CASES:
        pytest.skip("tree vectors missing")
    assert len(TV_CASES) == 98 and len(TO_CASES) == 5


@skip_if_missing(TV)
def test_tampered_parent_hash_rejected() -> None:
    case = next(c for c in TV_CASES if c["cipher_suite"] == 1 and len(c["tree_hashes"]) >= 7)
    suite = get_suite(1)
    tree = RatchetTree.from_bytes(suite, bytes.fromhex(case["tree"]))
    p = next(x for x in range(1, len(tree.nodes), 2) if tree.nodes[x] is not None)
    node = tree.nodes[p]
    import dataclasses

    tree.set_node(p, dataclasses.replace(node, parent_hash=bytes(len(node.parent_hash) or 32)))
    with pytest.raises(InvalidTreeError):
        tree.verify_parent_hashes()


@skip_if_missing(TV)
def test_trailing_blank_rejected() -> None:
    suite = get_suite(1)
    case = next(c for c in TV_CASES if c["cipher_suite"] == 1)
    raw = bytes.fromhex(case["tree"])
    tree = RatchetTree.from_bytes(suite, raw)
    # re-encode with one extra blank node at the end
    from orange_fast.mls.codec import Reader, Writer

    body = Reader(raw).opaque() + b"\x00"
    with pytest.raises(MLSError):
        RatchetTree.from_bytes(suite, Writer().opaque(body).getvalue())
    assert tree.member_count() > 0


@skip_if_missing(TV)
@settings(max_examples=60, deadline=None)
@given(st.data())
def test_tree_parser_never_crashes(data: st.DataObject) -> None:
    suite = get_suite(1)
    case = TV_CASES[0]
    raw = bytearray(bytes.fromhex(case["tree"]))
    mode = data.draw(st.sampled_from(["truncate", "flip"]))
    if mode == "truncate":
        cut = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
        mutated = bytes(raw[:cut])
    else:
        pos = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
        bit = data.draw(st.integers(min_value=0, max_value=7))
        raw[pos] ^= 1 << bit
        mutated = bytes(raw)
    try:
        t = RatchetTree.from_bytes(suite, mutated)
    except MLSError:
        return
    # parsed: then hashing and validation must either work or raise typed errors
    try:
        t.root_tree_hash()
        t.verify_parent_hashes()
    except MLSError:
        pass
