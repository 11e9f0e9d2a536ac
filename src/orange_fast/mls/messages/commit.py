"""Commits and UpdatePaths (RFC 9420 §12.4, §7.6)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from ..codec import Reader, Struct, Writer
from .nodes import LeafNode
from .proposal import ProposalOrRef

__all__ = [
    "Commit", "HPKECiphertext", "UpdatePath", "UpdatePathNode",
]


@dataclass
class HPKECiphertext(Struct):
    kem_output: bytes
    ciphertext: bytes

    def encode(self, w: Writer) -> None:
        w.opaque(self.kem_output).opaque(self.ciphertext)

    @classmethod
    def decode(cls, r: Reader) -> "HPKECiphertext":
        return cls(r.opaque(), r.opaque())


@dataclass
class UpdatePathNode(Struct):
    encryption_key: bytes
    encrypted_path_secret: List[HPKECiphertext] = field(default_factory=list)

    def encode(self, w: Writer) -> None:
        w.opaque(self.encryption_key).vector(self.encrypted_path_secret)

    @classmethod
    def decode(cls, r: Reader) -> "UpdatePathNode":
        return cls(r.opaque(), r.vector(HPKECiphertext))


@dataclass
class UpdatePath(Struct):
    leaf_node: LeafNode
    nodes: List[UpdatePathNode] = field(default_factory=list)

    def encode(self, w: Writer) -> None:
        self.leaf_node.encode(w)
        w.vector(self.nodes)

    @classmethod
    def decode(cls, r: Reader) -> "UpdatePath":
        return cls(LeafNode.decode(r), r.vector(UpdatePathNode))


@dataclass
class Commit(Struct):
    proposals: List[ProposalOrRef] = field(default_factory=list)
    path: Optional[UpdatePath] = None

    def encode(self, w: Writer) -> None:
        w.vector(self.proposals).optional(self.path)

    @classmethod
    def decode(cls, r: Reader) -> "Commit":
        return cls(r.vector(ProposalOrRef), r.optional(UpdatePath))
