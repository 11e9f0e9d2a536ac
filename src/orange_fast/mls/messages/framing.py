"""Message framing (RFC 9420 §6): senders, FramedContent, AuthenticatedContent, Public/PrivateMessage, sender
data and MLSMessage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

from ..codec import Reader, Struct, Writer, decode_enum
from ..errors import DecodeError
from .commit import Commit
from .enums import ContentType, ProtocolVersion, SenderType, WireFormat
from .group_context import GroupContext
from .key_package import KeyPackage
from .proposal import Proposal
from .welcome import GroupInfo, Welcome

__all__ = [
    "AuthenticatedContent", "ContentBody", "FramedContent", "FramedContentAuthData", "MLSBody", "MLSMessage",
    "PrivateContentAAD", "PrivateMessage", "PrivateMessageContent", "PublicMessage", "Sender", "SenderData",
    "SenderDataAAD", "framed_content_tbs",
]


@dataclass
class Sender(Struct):
    sender_type: SenderType
    index: int = 0  # leaf_index (member) or sender_index (external)

    @classmethod
    def member(cls, leaf_index: int) -> "Sender":
        return cls(SenderType.member, leaf_index)

    def encode(self, w: Writer) -> None:
        w.u8(self.sender_type)
        if self.sender_type in (SenderType.member, SenderType.external):
            w.u32(self.index)

    @classmethod
    def decode(cls, r: Reader) -> "Sender":
        t = decode_enum(SenderType, r.u8(), "sender type")
        if t in (SenderType.member, SenderType.external):
            return cls(t, r.u32())
        return cls(t, 0)


ContentBody = Union[bytes, Proposal, Commit]


def _encode_content_body(w: Writer, content_type: ContentType, content: ContentBody) -> None:
    if content_type == ContentType.application:
        if not isinstance(content, (bytes, bytearray)):
            raise TypeError("application content must be bytes")
        w.opaque(content)
    elif content_type == ContentType.proposal:
        if not isinstance(content, Proposal):
            raise TypeError("proposal content must be a Proposal")
        content.encode(w)
    else:
        if not isinstance(content, Commit):
            raise TypeError("commit content must be a Commit")
        content.encode(w)


def _decode_content_body(r: Reader, content_type: ContentType) -> ContentBody:
    if content_type == ContentType.application:
        return r.opaque()
    if content_type == ContentType.proposal:
        return Proposal.decode(r)
    return Commit.decode(r)


@dataclass
class FramedContent(Struct):
    group_id: bytes
    epoch: int
    sender: Sender
    authenticated_data: bytes
    content_type: ContentType
    content: ContentBody

    def encode(self, w: Writer) -> None:
        w.opaque(self.group_id).u64(self.epoch)
        self.sender.encode(w)
        w.opaque(self.authenticated_data).u8(self.content_type)
        _encode_content_body(w, self.content_type, self.content)

    @classmethod
    def decode(cls, r: Reader) -> "FramedContent":
        gid = r.opaque()
        epoch = r.u64()
        sender = Sender.decode(r)
        ad = r.opaque()
        ct = decode_enum(ContentType, r.u8(), "content type")
        return cls(gid, epoch, sender, ad, ct, _decode_content_body(r, ct))


@dataclass
class FramedContentAuthData:
    """``FramedContentAuthData``; decoding needs the content type (``decode_for``)."""

    signature: bytes
    confirmation_tag: Optional[bytes] = None  # commits only

    def encode(self, w: Writer, content_type: ContentType) -> None:
        w.opaque(self.signature)
        if content_type == ContentType.commit:
            if self.confirmation_tag is None:
                raise ValueError("commit auth data needs a confirmation tag")
            w.opaque(self.confirmation_tag)

    @classmethod
    def decode_for(cls, r: Reader, content_type: ContentType) -> "FramedContentAuthData":
        sig = r.opaque()
        tag = r.opaque() if content_type == ContentType.commit else None
        return cls(sig, tag)


def framed_content_tbs(wire_format: WireFormat, content: FramedContent,
                       context: Optional[GroupContext | bytes]) -> bytes:
    """FramedContentTBS bytes; ``context`` (GroupContext or its encoding) for member/new_member_commit."""
    w = Writer().u16(ProtocolVersion.mls10).u16(wire_format)
    content.encode(w)
    if content.sender.sender_type in (SenderType.member, SenderType.new_member_commit):
        if context is None:
            raise ValueError("a GroupContext is required for this sender type")
        w.raw(context if isinstance(context, (bytes, bytearray)) else context.to_bytes())
    return w.getvalue()


@dataclass
class AuthenticatedContent(Struct):
    wire_format: WireFormat
    content: FramedContent
    auth: FramedContentAuthData

    def encode(self, w: Writer) -> None:
        w.u16(self.wire_format)
        self.content.encode(w)
        self.auth.encode(w, self.content.content_type)

    @classmethod
    def decode(cls, r: Reader) -> "AuthenticatedContent":
        wf = decode_enum(WireFormat, r.u16(), "wire format")
        content = FramedContent.decode(r)
        return cls(wf, content, FramedContentAuthData.decode_for(r, content.content_type))

    def tbs(self, context: Optional[GroupContext | bytes]) -> bytes:
        return framed_content_tbs(self.wire_format, self.content, context)

    def confirmed_transcript_hash_input(self) -> bytes:
        """ConfirmedTranscriptHashInput = wire_format || content || signature."""
        w = Writer().u16(self.wire_format)
        self.content.encode(w)
        w.opaque(self.auth.signature)
        return w.getvalue()


@dataclass
class PublicMessage(Struct):
    content: FramedContent
    auth: FramedContentAuthData
    membership_tag: Optional[bytes] = None  # member senders only

    def encode(self, w: Writer) -> None:
        self.content.encode(w)
        self.auth.encode(w, self.content.content_type)
        if self.content.sender.sender_type == SenderType.member:
            if self.membership_tag is None:
                raise ValueError("member PublicMessage needs a membership tag")
            w.opaque(self.membership_tag)

    @classmethod
    def decode(cls, r: Reader) -> "PublicMessage":
        content = FramedContent.decode(r)
        auth = FramedContentAuthData.decode_for(r, content.content_type)
        tag = r.opaque() if content.sender.sender_type == SenderType.member else None
        return cls(content, auth, tag)


@dataclass
class PrivateMessage(Struct):
    group_id: bytes
    epoch: int
    content_type: ContentType
    authenticated_data: bytes
    encrypted_sender_data: bytes
    ciphertext: bytes

    def encode(self, w: Writer) -> None:
        w.opaque(self.group_id).u64(self.epoch).u8(self.content_type).opaque(self.authenticated_data)
        w.opaque(self.encrypted_sender_data).opaque(self.ciphertext)

    @classmethod
    def decode(cls, r: Reader) -> "PrivateMessage":
        gid = r.opaque()
        epoch = r.u64()
        ct = decode_enum(ContentType, r.u8(), "content type")
        return cls(gid, epoch, ct, r.opaque(), r.opaque(), r.opaque())


@dataclass
class PrivateMessageContent:
    """Plaintext of a PrivateMessage; ``padding`` is a count of zero bytes."""

    content: ContentBody
    auth: FramedContentAuthData
    padding: int = 0

    def encode(self, w: Writer, content_type: ContentType) -> None:
        _encode_content_body(w, content_type, self.content)
        self.auth.encode(w, content_type)
        w.raw(bytes(self.padding))

    def to_bytes(self, content_type: ContentType) -> bytes:
        w = Writer()
        self.encode(w, content_type)
        return w.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, content_type: ContentType) -> "PrivateMessageContent":
        """Strict parse: the padding after the auth data must be all zero."""
        r = Reader(data)
        try:
            content = _decode_content_body(r, content_type)
            auth = FramedContentAuthData.decode_for(r, content_type)
        except DecodeError:
            raise
        except (ValueError, IndexError, TypeError) as exc:
            raise DecodeError(f"malformed PrivateMessageContent: {type(exc).__name__}") from None
        pad = r.raw(r.remaining)
        if any(pad):
            raise DecodeError("non-zero padding in PrivateMessageContent")
        return cls(content, auth, len(pad))


@dataclass
class PrivateContentAAD(Struct):
    group_id: bytes
    epoch: int
    content_type: ContentType
    authenticated_data: bytes

    def encode(self, w: Writer) -> None:
        w.opaque(self.group_id).u64(self.epoch).u8(self.content_type).opaque(self.authenticated_data)

    @classmethod
    def decode(cls, r: Reader) -> "PrivateContentAAD":
        gid = r.opaque()
        ep = r.u64()
        return cls(gid, ep, decode_enum(ContentType, r.u8(), "content type"), r.opaque())


@dataclass
class SenderData(Struct):
    leaf_index: int
    generation: int
    reuse_guard: bytes

    def encode(self, w: Writer) -> None:
        if len(self.reuse_guard) != 4:
            raise ValueError("reuse_guard must be 4 bytes")
        w.u32(self.leaf_index).u32(self.generation).raw(self.reuse_guard)

    @classmethod
    def decode(cls, r: Reader) -> "SenderData":
        return cls(r.u32(), r.u32(), r.raw(4))


@dataclass
class SenderDataAAD(Struct):
    group_id: bytes
    epoch: int
    content_type: ContentType

    def encode(self, w: Writer) -> None:
        w.opaque(self.group_id).u64(self.epoch).u8(self.content_type)

    @classmethod
    def decode(cls, r: Reader) -> "SenderDataAAD":
        gid = r.opaque()
        ep = r.u64()
        return cls(gid, ep, decode_enum(ContentType, r.u8(), "content type"))


MLSBody = Union[PublicMessage, PrivateMessage, Welcome, GroupInfo, KeyPackage]
_WIRE_CLASSES: dict = {
    WireFormat.public_message: PublicMessage,
    WireFormat.private_message: PrivateMessage,
    WireFormat.welcome: Welcome,
    WireFormat.group_info: GroupInfo,
    WireFormat.key_package: KeyPackage,
}


@dataclass
class MLSMessage(Struct):
    wire_format: WireFormat
    body: MLSBody
    version: int = ProtocolVersion.mls10

    def encode(self, w: Writer) -> None:
        w.u16(self.version).u16(self.wire_format)
        if not isinstance(self.body, _WIRE_CLASSES[self.wire_format]):
            raise TypeError("MLSMessage body does not match its wire format")
        # KeyPackage.encode is the bare encoding (its to_bytes adds this framing)
        self.body.encode(w)

    @classmethod
    def decode(cls, r: Reader) -> "MLSMessage":
        version = r.u16()
        if version != ProtocolVersion.mls10:
            raise DecodeError(f"unsupported protocol version {version}")
        wf = decode_enum(WireFormat, r.u16(), "wire format")
        body = _WIRE_CLASSES[wf].decode(r)
        return cls(wf, body, version)

    @classmethod
    def from_bytes(cls, data: bytes) -> "MLSMessage":  # type: ignore[override]
        return Struct.from_bytes.__func__(cls, data)  # type: ignore[attr-defined]

    def to_bytes(self) -> bytes:
        w = Writer()
        self.encode(w)
        return w.getvalue()
