"""The ratchet tree (RFC 9420 §7): nodes, add/remove/update, resolution, tree hash, parent hash.

The tree is an array of ``Optional[LeafNode | ParentNode]`` in the in-order layout of
``treemath`` (leaf ``i`` at node ``2*i``), always with a power-of-two number of leaves.
Node objects are treated as immutable values: every change replaces the object, so
``RatchetTree.copy()`` is a cheap shallow copy that can be modified independently (the
group layer works on copies and commits state only when a message was fully validated).

Tree hashes are cached per node; a change to a node invalidates only the hashes on its
path to the root, so a commit rehashes O(log n) nodes, not the whole tree.
"""

from __future__ import annotations

import dataclasses
import struct
import hmac
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple

from . import treemath as tm
from .codec import Reader, Writer, encode_opaque
from .errors import DecodeError, InvalidLeafNodeError, InvalidTreeError

__all__ = ["RatchetTree", "NODE_TYPE_LEAF", "NODE_TYPE_PARENT"]

NODE_TYPE_LEAF = 1
NODE_TYPE_PARENT = 2
_LEAF_PREFIX = bytes((NODE_TYPE_LEAF,))
_PARENT_PREFIX = bytes((NODE_TYPE_PARENT,))
_PRESENT_LEAF = bytes((1, NODE_TYPE_LEAF))
_PRESENT_PARENT = bytes((1, NODE_TYPE_PARENT))
_U32 = struct.Struct(">I")

Node = Any  # LeafNode | ParentNode (from .messages)


def _messages() -> Any:
    from . import messages

    return messages


def _is_leaf_obj(node: Any) -> bool:
    return node is not None and hasattr(node, "signature_key")


class RatchetTree:
    """A left-balanced ratchet tree with cached tree hashes."""

    __slots__ = ("suite", "nodes", "_hashes", "_enc")

    def __init__(self, suite: Any, nodes: Optional[List[Optional[Node]]] = None) -> None:
        self.suite = suite
        self.nodes: List[Optional[Node]] = list(nodes) if nodes else []
        self._hashes: List[Optional[bytes]] = [None] * len(self.nodes)
        # cached ``node.to_bytes()`` per position (nodes are immutable values; set_node invalidates)
        self._enc: List[Optional[bytes]] = [None] * len(self.nodes)

    # ------------------------------------------------------------------ basics
    def copy(self) -> "RatchetTree":
        """Independent copy (nodes are immutable values, so a shallow copy suffices)."""
        t = RatchetTree.__new__(RatchetTree)
        t.suite = self.suite
        t.nodes = list(self.nodes)
        t._hashes = list(self._hashes)
        t._enc = list(self._enc)
        return t

    @property
    def n_leaves(self) -> int:
        return (len(self.nodes) + 1) // 2

    @property
    def root(self) -> int:
        return tm.root(self.n_leaves)

    def leaf(self, leaf_index: int) -> Optional[Node]:
        """The LeafNode at ``leaf_index`` or None (blank or out of range)."""
        x = 2 * leaf_index
        if leaf_index < 0 or x >= len(self.nodes):
            return None
        return self.nodes[x]

    def member_leaf(self, leaf_index: int) -> Node:
        """The LeafNode at ``leaf_index``; raises ``InvalidTreeError`` if that leaf is blank."""
        leaf = self.leaf(leaf_index)
        if leaf is None:
            raise InvalidTreeError("no member at that leaf index")
        return leaf

    def require_node(self, x: int) -> Node:
        """The node at ``x``; raises ``InvalidTreeError`` if it is blank."""
        node = self.nodes[x]
        if node is None:
            raise InvalidTreeError("blank node where a key is required")
        return node

    def node(self, x: int) -> Optional[Node]:
        return self.nodes[x]

    def leaves(self) -> Iterator[Tuple[int, Node]]:
        """(leaf_index, LeafNode) for every non-blank leaf."""
        for i in range(0, len(self.nodes), 2):
            n = self.nodes[i]
            if n is not None:
                yield i // 2, n

    def member_count(self) -> int:
        return sum(1 for _ in self.leaves())

    def _invalidate(self, x: int) -> None:
        n = self.n_leaves
        self._hashes[x] = None
        r = tm.root(n)
        while x != r:
            x = tm.parent(x, n)
            self._hashes[x] = None

    def set_node(self, x: int, node: Optional[Node]) -> None:
        """Replace node ``x`` and invalidate the cached hashes on its path."""
        self.nodes[x] = node
        self._enc[x] = None
        self._invalidate(x)

    def set_leaf(self, leaf_index: int, leaf: Optional[Node]) -> None:
        self.set_node(2 * leaf_index, leaf)

    # ------------------------------------------------------------ evolution
    def _extend(self) -> None:
        if not self.nodes:
            self.nodes = [None]
            self._hashes = [None]
            self._enc = [None]
            return
        width = len(self.nodes)
        # the old tree becomes the left subtree with unchanged indices: its cached hashes stay valid
        self.nodes.extend([None] * (width + 1))
        self._hashes.extend([None] * (width + 1))
        self._enc.extend([None] * (width + 1))

    def _truncate(self) -> None:
        # drop the right half while it is entirely blank (keep at least one leaf)
        while self.n_leaves > 1:
            half = len(self.nodes) // 2  # index of the old root
            if any(n is not None for n in self.nodes[half + 1 :]):
                break
            self.nodes = self.nodes[:half]
            self._hashes = self._hashes[:half]
            self._enc = self._enc[:half]
            # the new root's cached hash is still valid (its subtree is unchanged)

    def add_leaf(self, leaf: Node) -> int:
        """Insert ``leaf`` at the leftmost blank leaf (extending if needed); return its index.

        The new leaf is added to ``unmerged_leaves`` of every non-blank parent on its path.
        """
        idx = None
        for i in range(0, len(self.nodes), 2):
            if self.nodes[i] is None:
                idx = i // 2
                break
        if idx is None:
            idx = self.n_leaves
            self._extend()
        x = 2 * idx
        self.set_node(x, leaf)
        for p in tm.direct_path(x, self.n_leaves):
            pn = self.nodes[p]
            if pn is not None:
                self.set_node(
                    p, dataclasses.replace(pn, unmerged_leaves=list(pn.unmerged_leaves) + [idx])
                )
        return idx

    def blank_path(self, leaf_index: int) -> None:
        """Blank every node on the direct path of ``leaf_index`` (not the leaf itself)."""
        x = 2 * leaf_index
        for p in tm.direct_path(x, self.n_leaves):
            if self.nodes[p] is not None:
                self.set_node(p, None)

    def remove_leaf(self, leaf_index: int) -> None:
        """Blank the leaf and its direct path, then truncate the tree (RFC 9420 §12.1.3)."""
        if self.leaf(leaf_index) is None:
            raise InvalidTreeError("removing a blank or non-existent leaf")
        self.set_leaf(leaf_index, None)
        self.blank_path(leaf_index)
        self._truncate()

    def update_leaf(self, leaf_index: int, leaf: Node) -> None:
        """Replace a member's leaf and blank its direct path (Update proposal)."""
        if self.leaf(leaf_index) is None:
            raise InvalidTreeError("updating a blank leaf")
        self.set_leaf(leaf_index, leaf)
        self.blank_path(leaf_index)

    # ------------------------------------------------------------ resolution
    def resolution(self, x: int, exclude_leaves: Optional[Set[int]] = None) -> List[int]:
        """Resolution of node ``x`` (node indices), optionally omitting some leaves."""
        out: List[int] = []
        self._resolve(x, out, exclude_leaves)
        return out

    def _resolve(self, x: int, out: List[int], exclude: Optional[Set[int]]) -> None:
        node = self.nodes[x]
        if x & 1 == 0:
            if node is not None and not (exclude and (x >> 1) in exclude):
                out.append(x)
            return
        if node is not None:
            out.append(x)
            for leaf in node.unmerged_leaves:
                if not (exclude and leaf in exclude):
                    out.append(2 * leaf)
            return
        self._resolve(tm.left(x), out, exclude)
        self._resolve(tm.right(x), out, exclude)

    def resolution_nonempty(self, x: int) -> bool:
        """True iff the resolution of ``x`` is non-empty (some node of its subtree is non-blank)."""
        nodes = self.nodes
        span = (1 << tm.level(x)) - 1
        lo, hi = x - span, x + span
        # leaves first (a non-blank parent always has a non-blank leaf below it in a valid tree)
        for i in range(lo, hi + 1, 2):
            if nodes[i] is not None:
                return True
        return any(nodes[i] is not None for i in range(lo + 1, hi, 2))

    def filtered_direct_path(self, leaf_index: int) -> List[int]:
        """Direct path of the leaf, without nodes whose copath child has an empty resolution."""
        return [p for p, _ in self.filtered_direct_path_with_copath(leaf_index)]

    def filtered_direct_path_with_copath(self, leaf_index: int) -> List[Tuple[int, int]]:
        x = 2 * leaf_index
        n = self.n_leaves
        return [(p, c) for p, c in zip(tm.direct_path(x, n), tm.copath(x, n)) if self.resolution_nonempty(c)]

    def _node_bytes(self, x: int) -> bytes:
        """Cached encoding of the (non-blank) node at ``x``."""
        b = self._enc[x]
        if b is None:
            node = self.nodes[x]
            if node is None:
                raise InvalidTreeError("encoding of a blank node")
            b = node.to_bytes()
            self._enc[x] = b
        return b

    # ------------------------------------------------------------ tree hash
    def tree_hash(self, x: Optional[int] = None) -> bytes:
        """Tree hash of the subtree rooted at ``x`` (default: root). Cached."""
        if not self.nodes:
            raise InvalidTreeError("empty tree")
        if x is None:
            x = self.root
        h = self._hashes[x]
        if h is not None:
            return h
        h = self._compute_hash(x, None)
        return h

    def root_tree_hash(self) -> bytes:
        return self.tree_hash(self.root)

    def _compute_hash(self, x: int, exclude: Optional[Set[int]]) -> bytes:
        """Tree hash with the leaves in ``exclude`` treated as blank (and dropped from unmerged)."""
        cacheable = not exclude or not any(leaf in exclude for leaf in tm.subtree_leaves(x))
        if cacheable:
            cached = self._hashes[x]
            if cached is not None:
                return cached
            exclude = None
        node = self.nodes[x]
        if x & 1 == 0:
            leaf_index = x >> 1
            # LeafNodeHashInput: node_type, leaf_index, optional<LeafNode>
            if node is None or (exclude and leaf_index in exclude):
                data = _LEAF_PREFIX + _U32.pack(leaf_index) + b"\x00"
            else:
                data = _LEAF_PREFIX + _U32.pack(leaf_index) + b"\x01" + self._node_bytes(x)
        else:
            left_h = self._compute_hash(tm.left(x), exclude)
            right_h = self._compute_hash(tm.right(x), exclude)
            # ParentNodeHashInput: node_type, optional<ParentNode>, left_hash<V>, right_hash<V>
            if node is None:
                body = b"\x00"
            elif exclude:
                node = dataclasses.replace(
                    node, unmerged_leaves=[u for u in node.unmerged_leaves if u not in exclude]
                )
                body = b"\x01" + node.to_bytes()
            else:
                body = b"\x01" + self._node_bytes(x)
            data = b"".join((_PARENT_PREFIX, body, encode_opaque(left_h), encode_opaque(right_h)))
        h = self.suite.hash(data)
        if cacheable:
            self._hashes[x] = h
        return h

    def all_tree_hashes(self) -> List[bytes]:
        return [self.tree_hash(x) for x in range(len(self.nodes))]

    # ------------------------------------------------------------ parent hash
    def parent_hash_of(self, p: int, sibling: int, parent_hash_field: Optional[bytes] = None) -> bytes:
        """Parent hash of node ``p`` with copath child ``sibling`` (RFC 9420 §7.9)."""
        pn = self.nodes[p]
        if pn is None:
            raise InvalidTreeError("parent hash of a blank node")
        excl = set(pn.unmerged_leaves)
        sib_hash = self._compute_hash(sibling, excl) if excl else self.tree_hash(sibling)
        w = Writer()
        w.opaque(pn.encryption_key)
        w.opaque(pn.parent_hash if parent_hash_field is None else parent_hash_field)
        w.opaque(sib_hash)
        return self.suite.hash(w.getvalue())

    def _ph_valid_wrt(self, d: int, p: int) -> bool:
        """Is the parent hash in node ``d`` valid with respect to parent node ``p``?"""
        c = tm.left(p) if d < p else tm.right(p)
        s = tm.right(p) if d < p else tm.left(p)
        dn = self.nodes[d]
        pn = self.nodes[p]
        if dn is None or pn is None:
            return False
        d_ph = getattr(dn, "parent_hash", None)
        if d_ph is None:  # leaf not from a commit: no parent hash
            return False
        if not hmac.compare_digest(bytes(d_ph), self.parent_hash_of(p, s)):
            return False
        res = self.resolution(c)
        if d not in res:
            return False
        under_c = {u for u in pn.unmerged_leaves if tm.is_in_subtree(c, 2 * u)}
        rest = {y >> 1 for y in res if y != d}
        # resolution of C minus D must be exactly leaves (unmerged at P) under C
        if any(y & 1 for y in res if y != d):
            return False
        return rest == under_c

    def verify_parent_hashes(self) -> None:
        """Every non-blank parent node must be parent-hash valid via exactly one child descendant."""
        for p in range(1, len(self.nodes), 2):
            if self.nodes[p] is None:
                continue
            candidates = self.resolution(tm.left(p)) + self.resolution(tm.right(p))
            count = sum(1 for d in candidates if self._ph_valid_wrt(d, p))
            if count != 1:
                raise InvalidTreeError("parent hash chain broken")

    def compute_parent_hashes(self, leaf_index: int) -> Tuple[bytes, Dict[int, bytes]]:
        """Set parent_hash fields along the filtered direct path of ``leaf_index`` (root first).

        Returns ``(leaf_parent_hash, {node: parent_hash_set})``. The nodes on the filtered
        direct path must already carry their new encryption keys and empty unmerged_leaves.
        """
        fdp = self.filtered_direct_path_with_copath(leaf_index)
        ph = b""
        set_values: Dict[int, bytes] = {}
        # walk from the root down; each node's parent_hash is ph of the node above it
        for i in range(len(fdp) - 1, -1, -1):
            p, _ = fdp[i]
            pn = self.nodes[p]
            if pn is None:
                raise InvalidTreeError("filtered direct path through a blank node")
            if pn.parent_hash != ph:
                self.set_node(p, dataclasses.replace(pn, parent_hash=ph))
            set_values[p] = ph
            # parent hash of p with copath child = the child NOT towards the leaf
            x = 2 * leaf_index
            sib = tm.right(p) if x < p else tm.left(p)
            ph = self.parent_hash_of(p, sib)
        return ph, set_values

    # ------------------------------------------------------------ validation
    def verify_leaves(
        self,
        group_id: bytes,
        verify_leaf: Callable[[Node, int], None],
    ) -> None:
        """Run ``verify_leaf(leaf, index)`` on every leaf and check key uniqueness."""
        enc_keys: Set[bytes] = set()
        sig_keys: Set[bytes] = set()
        for idx, leaf in self.leaves():
            verify_leaf(leaf, idx)
            ek = bytes(leaf.encryption_key)
            sk = bytes(leaf.signature_key)
            if ek in enc_keys:
                raise InvalidLeafNodeError("duplicate encryption key in tree")
            if sk in sig_keys:
                raise InvalidLeafNodeError("duplicate signature key in tree")
            enc_keys.add(ek)
            sig_keys.add(sk)
        for p in range(1, len(self.nodes), 2):
            pn = self.nodes[p]
            if pn is None:
                continue
            ek = bytes(pn.encryption_key)
            if ek in enc_keys:
                raise InvalidTreeError("duplicate encryption key in tree")
            enc_keys.add(ek)

    def verify_unmerged_leaves(self) -> None:
        """Unmerged leaves must be non-blank leaves below the node, and also listed by
        every non-blank intermediate node between the leaf and that node."""
        n = self.n_leaves
        for p in range(1, len(self.nodes), 2):
            pn = self.nodes[p]
            if pn is None:
                continue
            seen: Set[int] = set()
            for u in pn.unmerged_leaves:
                if u in seen:
                    raise InvalidTreeError("duplicate unmerged leaf")
                seen.add(u)
                x = 2 * u
                if x >= len(self.nodes) or not tm.is_in_subtree(p, x) or x == p:
                    raise InvalidTreeError("unmerged leaf outside subtree")
                if self.nodes[x] is None:
                    raise InvalidTreeError("unmerged leaf is blank")
                y = tm.parent(x, n)
                while y != p:
                    yn = self.nodes[y]
                    if yn is not None and u not in yn.unmerged_leaves:
                        raise InvalidTreeError("unmerged leaf missing from intermediate node")
                    y = tm.parent(y, n)

    def verify_structure(self) -> None:
        """Shape checks: odd node count of a power-of-two leaf tree, leaf/parent placement."""
        width = len(self.nodes)
        if width == 0:
            raise InvalidTreeError("empty tree")
        n = self.n_leaves
        if n & (n - 1) or tm.node_width(n) != width:
            raise InvalidTreeError("tree is not full")
        messages = _messages()
        for x, node in enumerate(self.nodes):
            if node is None:
                continue
            if x & 1 == 0 and not isinstance(node, messages.LeafNode):
                raise InvalidTreeError("parent node at a leaf position")
            if x & 1 == 1 and not isinstance(node, messages.ParentNode):
                raise InvalidTreeError("leaf node at a parent position")
        if self.member_count() == 0:
            raise InvalidTreeError("tree without members")

    # ------------------------------------------------------------ (de)serialisation
    def encode(self, w: Writer) -> None:
        """``optional<Node> ratchet_tree<V>`` with trailing blank nodes omitted."""
        last = len(self.nodes)
        while last > 0 and self.nodes[last - 1] is None:
            last -= 1

        parts = []
        nodes = self.nodes
        for x in range(last):
            if nodes[x] is None:
                parts.append(b"\x00")
            else:
                parts.append(_PRESENT_LEAF if x & 1 == 0 else _PRESENT_PARENT)
                parts.append(self._node_bytes(x))
        w.opaque(b"".join(parts))

    def to_bytes(self) -> bytes:
        w = Writer()
        self.encode(w)
        return w.getvalue()

    @classmethod
    def decode(cls, suite: Any, r: Reader) -> "RatchetTree":
        messages = _messages()

        raws: Dict[int, bytes] = {}

        def dec_node(rr: Reader) -> Node:
            t = rr.u8()
            start = rr.position
            if t == NODE_TYPE_LEAF:
                node = messages.LeafNode.decode(rr)
            elif t == NODE_TYPE_PARENT:
                node = messages.ParentNode.decode(rr)
            else:
                raise DecodeError(f"unknown node type {t}")
            # the strict decoder only accepts the canonical encoding: keep it for the encoding cache
            raws[id(node)] = rr.data[start : rr.position]
            return node

        nodes = r.vector(lambda rr: rr.optional(dec_node))
        if not nodes or nodes[-1] is None:
            raise InvalidTreeError("ratchet tree is empty or ends with a blank node")
        n_leaves = 1
        while tm.node_width(n_leaves) < len(nodes):
            n_leaves <<= 1
        nodes.extend([None] * (tm.node_width(n_leaves) - len(nodes)))
        tree = cls(suite, nodes)
        for x, node in enumerate(nodes):
            if node is not None:
                tree._enc[x] = raws[id(node)]
        tree.verify_structure()
        return tree

    @classmethod
    def from_bytes(cls, suite: Any, data: bytes) -> "RatchetTree":
        r = Reader(data)
        try:
            t = cls.decode(suite, r)
        except (DecodeError, InvalidTreeError):
            raise
        except Exception as exc:  # noqa: BLE001 - unexpected parse failures become typed
            if isinstance(exc, (DecodeError,)):
                raise
            from .errors import MLSError

            if isinstance(exc, MLSError):
                raise
            raise DecodeError(f"malformed ratchet tree: {type(exc).__name__}") from None
        r.finish()
        return t

    def __repr__(self) -> str:
        return f"RatchetTree(leaves={self.n_leaves}, members={self.member_count()})"
