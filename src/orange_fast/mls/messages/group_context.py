"""The GroupContext (RFC 9420 §8.1) and the group-level extensions external_pub (§12.4.3.2), external_senders
(§12.1.8.1) and required_capabilities (§11.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

from ..codec import Reader, Struct, Writer
from .credentials import Credential, Extension
from .encoding import _u16_list

__all__ = [
    "ExternalPub", "ExternalSender", "GroupContext", "RequiredCapabilities",
]


@dataclass
class GroupContext(Struct):
    version: int
    cipher_suite: int
    group_id: bytes
    epoch: int
    tree_hash: bytes
    confirmed_transcript_hash: bytes
    extensions: List[Extension] = field(default_factory=list)

    def encode(self, w: Writer) -> None:
        w.u16(self.version).u16(self.cipher_suite).opaque(self.group_id).u64(self.epoch)
        w.opaque(self.tree_hash).opaque(self.confirmed_transcript_hash).vector(self.extensions)

    @classmethod
    def decode(cls, r: Reader) -> "GroupContext":
        return cls(r.u16(), r.u16(), r.opaque(), r.u64(), r.opaque(), r.opaque(), r.vector(Extension))


@dataclass
class ExternalPub(Struct):
    external_pub: bytes

    def encode(self, w: Writer) -> None:
        w.opaque(self.external_pub)

    @classmethod
    def decode(cls, r: Reader) -> "ExternalPub":
        return cls(r.opaque())


@dataclass
class ExternalSender(Struct):
    signature_key: bytes
    credential: Credential

    def encode(self, w: Writer) -> None:
        w.opaque(self.signature_key)
        self.credential.encode(w)

    @classmethod
    def decode(cls, r: Reader) -> "ExternalSender":
        return cls(r.opaque(), Credential.decode(r))


@dataclass
class RequiredCapabilities(Struct):
    extension_types: List[int] = field(default_factory=list)
    proposal_types: List[int] = field(default_factory=list)
    credential_types: List[int] = field(default_factory=list)

    def encode(self, w: Writer) -> None:
        _u16_list(w, self.extension_types)
        _u16_list(w, self.proposal_types)
        _u16_list(w, self.credential_types)

    @classmethod
    def decode(cls, r: Reader) -> "RequiredCapabilities":
        return cls(r.u16_vector(), r.u16_vector(), r.u16_vector())
