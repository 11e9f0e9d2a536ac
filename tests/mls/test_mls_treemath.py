"""Tree math against the official ``tree-math.json`` vectors and structural properties."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from orange_fast.mls import treemath as tm
from vectorfiles import read_vectors, skip_if_missing

VEC = "mls/tree-math.json"
CASES = read_vectors(VEC) or []


@skip_if_missing(VEC)
@pytest.mark.parametrize("case", CASES, ids=[f"n{c['n_leaves']}" for c in CASES])
def test_tree_math_vectors(case: dict) -> None:
    n = case["n_leaves"]
    assert tm.node_width(n) == case["n_nodes"]
    assert tm.root(n) == case["root"]
    for i in range(case["n_nodes"]):
        assert (None if tm.is_leaf(i) else tm.left(i)) == case["left"][i]
        assert (None if tm.is_leaf(i) else tm.right(i)) == case["right"][i]
        assert tm.optional_parent(i, n) == case["parent"][i]
        sib = None if case["parent"][i] is None else tm.sibling(i, n)
        assert sib == case["sibling"][i]


def test_all_vector_entries_present() -> None:
    if not CASES:
        pytest.skip("tree-math vectors missing")
    assert len(CASES) == 10


@given(st.integers(min_value=0, max_value=10), st.data())
def test_paths_and_ancestors(exp: int, data: st.DataObject) -> None:
    n = 1 << exp
    width = tm.node_width(n)
    x = data.draw(st.integers(min_value=0, max_value=width - 1))
    y = data.draw(st.integers(min_value=0, max_value=width - 1))
    dp = tm.direct_path(x, n)
    cp = tm.copath(x, n)
    assert len(dp) == len(cp)
    if dp:
        assert dp[-1] == tm.root(n)
    for d, c in zip(dp, cp):
        assert tm.parent(c, n) == d
    a = tm.common_ancestor(x, y)
    assert tm.is_in_subtree(a, x) and tm.is_in_subtree(a, y)
    # the ancestor is the lowest: neither child contains both nodes
    if not tm.is_leaf(a):
        for child in (tm.left(a), tm.right(a)):
            assert not (tm.is_in_subtree(child, x) and tm.is_in_subtree(child, y))


def test_errors() -> None:
    with pytest.raises(ValueError):
        tm.left(0)
    with pytest.raises(ValueError):
        tm.parent(tm.root(4), 4)
    assert list(tm.subtree_leaves(3)) == [0, 1, 2, 3]
