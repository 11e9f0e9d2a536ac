"""Ratchet tree nodes (RFC 9420 §7.1-7.2): LeafNode, ParentNode and the ratchet_tree extension (§12.4.3.3)."""

from __future__ import annotations

import struct as _struct
from dataclasses import dataclass, field
from typing import List, Optional, Union

from ..codec import Reader, Struct, Writer, decode_enum
from ..errors import DecodeError, InvalidPublicKeyError
from ..suite import Suite, get_suite
from .credentials import Capabilities, Credential, Extension, Lifetime
from .encoding import _EMPTY_VECTOR, _opaque_bytes, _u32_list
from .enums import LeafNodeSource, NodeType

__all__ = [
    "LeafNode", "NodeValue", "ParentNode", "RatchetTreeExt", "decode_node", "encode_node",
]


_U64_PAIR = _struct.Struct(">QQ")
_U32 = _struct.Struct(">I")

@dataclass
class LeafNode(Struct):
    encryption_key: bytes
    signature_key: bytes
    credential: Credential
    capabilities: Capabilities
    leaf_node_source: LeafNodeSource
    lifetime: Optional[Lifetime] = None  # key_package only
    parent_hash: Optional[bytes] = None  # commit only
    extensions: List[Extension] = field(default_factory=list)
    signature: bytes = b""

    def _content_bytes(self) -> bytes:
        """The LeafNode fields before the signature (shared by the encoding and LeafNodeTBS), built as
        one bytes join (this is on the hot path of tree hashing, tree encoding and signatures)."""
        src = self.leaf_node_source
        if src == LeafNodeSource.key_package:
            if self.lifetime is None:
                raise ValueError("key_package leaf node needs a lifetime")
            tail = _U64_PAIR.pack(self.lifetime.not_before, self.lifetime.not_after)
        elif src == LeafNodeSource.commit:
            tail = _opaque_bytes(self.parent_hash or b"")
        else:
            tail = b""
        if not 0 <= src <= 0xFF:
            raise ValueError("uint8 out of range")
        exts = self.extensions
        if exts:
            w = Writer()
            w.vector(exts)
            ext_bytes = w.getvalue()
        else:
            ext_bytes = _EMPTY_VECTOR
        return b"".join((
            _opaque_bytes(self.encryption_key), _opaque_bytes(self.signature_key),
            self.credential.encoded(), self.capabilities.encoded(), bytes((src,)), tail, ext_bytes,
        ))

    def _encode_content(self, w: Writer) -> None:
        w.raw(self._content_bytes())

    def encode(self, w: Writer) -> None:
        w.raw(self._content_bytes())
        w.opaque(self.signature)

    @classmethod
    def decode(cls, r: Reader) -> "LeafNode":
        enc = r.opaque()
        sig_key = r.opaque()
        cred = Credential.decode(r)
        caps = Capabilities.decode(r)
        src = decode_enum(LeafNodeSource, r.u8(), "leaf node source")
        lifetime = None
        parent_hash = None
        if src == LeafNodeSource.key_package:
            lifetime = Lifetime.decode(r)
        elif src == LeafNodeSource.commit:
            parent_hash = r.opaque()
        exts = r.vector(Extension)
        sig = r.opaque()
        return cls(enc, sig_key, cred, caps, src, lifetime, parent_hash, exts, sig)

    def tbs(self, group_id: Optional[bytes] = None, leaf_index: Optional[int] = None) -> bytes:
        """LeafNodeTBS; ``group_id``/``leaf_index`` are required for update and commit sources."""
        content = self._content_bytes()
        if self.leaf_node_source in (LeafNodeSource.update, LeafNodeSource.commit):
            if group_id is None or leaf_index is None:
                raise ValueError("group_id and leaf_index are required for this leaf node source")
            return content + _opaque_bytes(group_id) + _U32.pack(leaf_index)
        return content

    def sign(self, suite: "int | Suite", signature_private_key: bytes,
             group_id: Optional[bytes] = None, leaf_index: Optional[int] = None) -> None:
        """Set ``signature`` = SignWithLabel(., "LeafNodeTBS", tbs)."""
        self.signature = get_suite(suite).sign_with_label(signature_private_key, "LeafNodeTBS",
                                                          self.tbs(group_id, leaf_index))

    def verify(self, suite: "int | Suite", group_id: Optional[bytes] = None,
               leaf_index: Optional[int] = None) -> bool:
        """True iff the signature verifies under ``signature_key`` (False also for a malformed key)."""
        try:
            return get_suite(suite).verify_with_label(self.signature_key, "LeafNodeTBS",
                                                      self.tbs(group_id, leaf_index), self.signature)
        except InvalidPublicKeyError:
            return False


@dataclass
class ParentNode(Struct):
    encryption_key: bytes
    parent_hash: bytes = b""
    unmerged_leaves: List[int] = field(default_factory=list)

    def encode(self, w: Writer) -> None:
        w.opaque(self.encryption_key).opaque(self.parent_hash)
        _u32_list(w, self.unmerged_leaves)

    @classmethod
    def decode(cls, r: Reader) -> "ParentNode":
        return cls(r.opaque(), r.opaque(), r.u32_vector())


NodeValue = Union[LeafNode, ParentNode]


def encode_node(w: Writer, node: NodeValue) -> None:
    """``Node`` = NodeType + LeafNode | ParentNode."""
    if isinstance(node, LeafNode):
        w.u8(NodeType.leaf)
    elif isinstance(node, ParentNode):
        w.u8(NodeType.parent)
    else:
        raise TypeError("node must be a LeafNode or a ParentNode")
    node.encode(w)


def decode_node(r: Reader) -> NodeValue:
    t = r.u8()
    if t == NodeType.leaf:
        return LeafNode.decode(r)
    if t == NodeType.parent:
        return ParentNode.decode(r)
    raise DecodeError(f"unknown node type {t}")


@dataclass
class RatchetTreeExt(Struct):
    """The ``ratchet_tree`` extension data: ``optional<Node> ratchet_tree<V>``."""

    nodes: List[Optional[NodeValue]] = field(default_factory=list)

    def encode(self, w: Writer) -> None:
        def put(ww: Writer, node: Optional[NodeValue]) -> None:
            ww.optional(node, encode_node)  # type: ignore[arg-type]  # mypy joins the Union to Struct

        w.vector(self.nodes, put)

    @classmethod
    def decode(cls, r: Reader) -> "RatchetTreeExt":
        return cls(r.vector(lambda rr: rr.optional(decode_node)))
