"""Array-based tree math for MLS left-balanced binary trees (RFC 9420 §4.1, Appendix C).

Nodes are numbered in-order: leaves take the even indices (leaf ``i`` is node ``2*i``) and
parent nodes the odd ones.  A tree with ``n`` leaves is padded to the next power of two
for the purpose of the math (the ratchet tree is always "full" after extension), so the
functions here take the leaf count and work on that complete tree.
"""

from __future__ import annotations

from typing import List, Optional

__all__ = [
    "log2",
    "level",
    "node_width",
    "root",
    "left",
    "right",
    "parent",
    "sibling",
    "direct_path",
    "copath",
    "common_ancestor",
    "is_leaf",
    "leaf_to_node",
    "node_to_leaf",
    "is_in_subtree",
    "subtree_leaves",
]


def log2(x: int) -> int:
    """floor(log2(x)) for x > 0, and 0 for x == 0."""
    if x <= 0:
        return 0
    return x.bit_length() - 1


def level(x: int) -> int:
    """Level of node ``x``: number of trailing one bits (leaves are at level 0)."""
    if x & 1 == 0:
        return 0
    k = 0
    while (x >> k) & 1 == 1:
        k += 1
    return k


def node_width(n_leaves: int) -> int:
    """Number of nodes needed to represent a tree with ``n_leaves`` leaves."""
    if n_leaves == 0:
        return 0
    return 2 * (n_leaves - 1) + 1


def root(n_leaves: int) -> int:
    """Root node index of the (power-of-two padded) tree with ``n_leaves`` leaves."""
    w = node_width(n_leaves)
    return (1 << log2(w)) - 1


def is_leaf(x: int) -> bool:
    return x & 1 == 0


def leaf_to_node(leaf: int) -> int:
    return 2 * leaf


def node_to_leaf(x: int) -> int:
    if x & 1:
        raise ValueError("not a leaf node")
    return x >> 1


def left(x: int) -> int:
    """Left child of intermediate node ``x``."""
    k = level(x)
    if k == 0:
        raise ValueError("leaf node has no children")
    return x ^ (0x01 << (k - 1))


def right(x: int) -> int:
    """Right child of intermediate node ``x``."""
    k = level(x)
    if k == 0:
        raise ValueError("leaf node has no children")
    return x ^ (0x03 << (k - 1))


def parent(x: int, n_leaves: int) -> int:
    """Parent of node ``x`` (``x`` must not be the root)."""
    if x == root(n_leaves):
        raise ValueError("root node has no parent")
    k = level(x)
    b = (x >> (k + 1)) & 0x01
    return (x | (1 << k)) ^ (b << (k + 1))


def sibling(x: int, n_leaves: int) -> int:
    """The other child of ``parent(x)``."""
    p = parent(x, n_leaves)
    if x < p:
        return right(p)
    return left(p)


def direct_path(x: int, n_leaves: int) -> List[int]:
    """Parents of ``x`` from its parent up to and including the root."""
    r = root(n_leaves)
    out: List[int] = []
    if x == r:
        return out
    while x != r:
        x = parent(x, n_leaves)
        out.append(x)
    return out


def copath(x: int, n_leaves: int) -> List[int]:
    """Siblings of ``x`` and of each node of its direct path except the root."""
    if x == root(n_leaves):
        return []
    d = direct_path(x, n_leaves)
    d.insert(0, x)
    d.pop()
    return [sibling(y, n_leaves) for y in d]


def common_ancestor(x: int, y: int) -> int:
    """Lowest common ancestor of nodes ``x`` and ``y``."""
    lx, ly = level(x) + 1, level(y) + 1
    if lx <= ly and x >> ly == y >> ly:
        return y
    if ly <= lx and x >> lx == y >> lx:
        return x
    xn, yn = x, y
    k = 0
    while xn != yn:
        xn >>= 1
        yn >>= 1
        k += 1
    return (xn << k) + (1 << (k - 1)) - 1


def is_in_subtree(x: int, y: int) -> bool:
    """True when node ``y`` is in the subtree rooted at ``x`` (``x`` included)."""
    span = (1 << level(x)) - 1
    return x - span <= y <= x + span


def subtree_leaves(x: int) -> range:
    """Leaf indices covered by the subtree rooted at node ``x``."""
    k = level(x)
    first_node = x - ((1 << k) - 1)
    return range(first_node >> 1, (first_node >> 1) + (1 << k))


def optional_parent(x: int, n_leaves: int) -> Optional[int]:
    """Parent of ``x`` or None for the root (used by the tree-math vectors)."""
    if x == root(n_leaves):
        return None
    return parent(x, n_leaves)
