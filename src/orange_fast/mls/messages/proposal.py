"""Proposals (RFC 9420 §12.1) and ProposalOrRef (§12.4)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Union

from ..codec import Reader, Struct, Writer, decode_enum
from ..errors import DecodeError
from .credentials import Extension
from .enums import ProposalOrRefType, ProposalType, PSKType, ResumptionPSKUsage
from .key_package import KeyPackage
from .nodes import LeafNode

__all__ = [
    "Add", "ExternalInit", "GroupContextExtensions", "PreSharedKey", "PreSharedKeyID", "Proposal",
    "ProposalBody", "ProposalOrRef", "ReInit", "Remove", "Update",
]


@dataclass
class Add(Struct):
    key_package: KeyPackage
    PROPOSAL_TYPE = ProposalType.add

    def encode(self, w: Writer) -> None:
        self.key_package.encode(w)

    @classmethod
    def decode(cls, r: Reader) -> "Add":
        return cls(KeyPackage.decode(r))


@dataclass
class Update(Struct):
    leaf_node: LeafNode
    PROPOSAL_TYPE = ProposalType.update

    def encode(self, w: Writer) -> None:
        self.leaf_node.encode(w)

    @classmethod
    def decode(cls, r: Reader) -> "Update":
        return cls(LeafNode.decode(r))


@dataclass
class Remove(Struct):
    removed: int
    PROPOSAL_TYPE = ProposalType.remove

    def encode(self, w: Writer) -> None:
        w.u32(self.removed)

    @classmethod
    def decode(cls, r: Reader) -> "Remove":
        return cls(r.u32())


@dataclass
class PreSharedKeyID(Struct):
    psktype: PSKType
    psk_id: bytes = b""  # external
    usage: int = ResumptionPSKUsage.application  # resumption
    psk_group_id: bytes = b""  # resumption
    psk_epoch: int = 0  # resumption
    psk_nonce: bytes = b""

    @classmethod
    def external(cls, psk_id: bytes, psk_nonce: bytes) -> "PreSharedKeyID":
        return cls(PSKType.external, psk_id=bytes(psk_id), psk_nonce=bytes(psk_nonce))

    @classmethod
    def resumption(cls, usage: int, psk_group_id: bytes, psk_epoch: int, psk_nonce: bytes) -> "PreSharedKeyID":
        return cls(PSKType.resumption, usage=usage, psk_group_id=bytes(psk_group_id), psk_epoch=psk_epoch,
                   psk_nonce=bytes(psk_nonce))

    def encode(self, w: Writer) -> None:
        w.u8(self.psktype)
        if self.psktype == PSKType.external:
            w.opaque(self.psk_id)
        else:
            w.u8(self.usage).opaque(self.psk_group_id).u64(self.psk_epoch)
        w.opaque(self.psk_nonce)

    @classmethod
    def decode(cls, r: Reader) -> "PreSharedKeyID":
        t = decode_enum(PSKType, r.u8(), "PSK type")
        if t == PSKType.external:
            return cls(t, psk_id=r.opaque(), psk_nonce=r.opaque())
        usage = decode_enum(ResumptionPSKUsage, r.u8(), "resumption PSK usage")
        gid = r.opaque()
        ep = r.u64()
        return cls(t, usage=usage, psk_group_id=gid, psk_epoch=ep, psk_nonce=r.opaque())


@dataclass
class PreSharedKey(Struct):
    psk: PreSharedKeyID
    PROPOSAL_TYPE = ProposalType.psk

    def encode(self, w: Writer) -> None:
        self.psk.encode(w)

    @classmethod
    def decode(cls, r: Reader) -> "PreSharedKey":
        return cls(PreSharedKeyID.decode(r))


@dataclass
class ReInit(Struct):
    group_id: bytes
    version: int
    cipher_suite: int
    extensions: List[Extension] = field(default_factory=list)
    PROPOSAL_TYPE = ProposalType.reinit

    def encode(self, w: Writer) -> None:
        w.opaque(self.group_id).u16(self.version).u16(self.cipher_suite).vector(self.extensions)

    @classmethod
    def decode(cls, r: Reader) -> "ReInit":
        return cls(r.opaque(), r.u16(), r.u16(), r.vector(Extension))


@dataclass
class ExternalInit(Struct):
    kem_output: bytes
    PROPOSAL_TYPE = ProposalType.external_init

    def encode(self, w: Writer) -> None:
        w.opaque(self.kem_output)

    @classmethod
    def decode(cls, r: Reader) -> "ExternalInit":
        return cls(r.opaque())


@dataclass
class GroupContextExtensions(Struct):
    extensions: List[Extension] = field(default_factory=list)
    PROPOSAL_TYPE = ProposalType.group_context_extensions

    def encode(self, w: Writer) -> None:
        w.vector(self.extensions)

    @classmethod
    def decode(cls, r: Reader) -> "GroupContextExtensions":
        return cls(r.vector(Extension))


ProposalBody = Union[Add, Update, Remove, PreSharedKey, ReInit, ExternalInit, GroupContextExtensions]
_PROPOSAL_CLASSES = {c.PROPOSAL_TYPE: c for c in (Add, Update, Remove, PreSharedKey, ReInit, ExternalInit,
                                                   GroupContextExtensions)}


@dataclass
class Proposal(Struct):
    """``Proposal``: the type is taken from the body's class."""

    body: ProposalBody

    @property
    def proposal_type(self) -> ProposalType:
        return self.body.PROPOSAL_TYPE

    def encode(self, w: Writer) -> None:
        w.u16(self.body.PROPOSAL_TYPE)
        self.body.encode(w)

    @classmethod
    def decode(cls, r: Reader) -> "Proposal":
        t = r.u16()
        c = _PROPOSAL_CLASSES.get(t)  # type: ignore[call-overload]
        if c is None:
            raise DecodeError(f"unsupported proposal type {t}")
        return cls(c.decode(r))


@dataclass
class ProposalOrRef(Struct):
    """Exactly one of ``proposal`` / ``reference`` is set."""

    proposal: Optional[Proposal] = None
    reference: Optional[bytes] = None

    def encode(self, w: Writer) -> None:
        if self.proposal is not None:
            w.u8(ProposalOrRefType.proposal)
            self.proposal.encode(w)
        else:
            if self.reference is None:
                raise ValueError("empty ProposalOrRef")
            w.u8(ProposalOrRefType.reference).opaque(self.reference)

    @classmethod
    def decode(cls, r: Reader) -> "ProposalOrRef":
        t = r.u8()
        if t == ProposalOrRefType.proposal:
            return cls(proposal=Proposal.decode(r))
        if t == ProposalOrRefType.reference:
            return cls(reference=r.opaque())
        raise DecodeError(f"unknown ProposalOrRef type {t}")
