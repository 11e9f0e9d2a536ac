"""RFC 9420 wire structures (TLS presentation language), with byte-exact encode/decode.

Every struct is a dataclass deriving from ``codec.Struct``: ``encode(w)``, classmethod ``decode(r)``,
``to_bytes()``, ``from_bytes(data)`` (strict; only ``MLSError`` subclasses escape). Exception: ``KeyPackage``'s
``to_bytes``/``from_bytes`` use the ``MLSMessage`` framing (public API); its bare encoding is ``raw_bytes()`` /
``from_raw_bytes()``.

Public names:

* enums: ``ProtocolVersion``, ``WireFormat``, ``ContentType``, ``SenderType``, ``CredentialType``,
  ``LeafNodeSource``, ``ProposalType``, ``ProposalOrRefType``, ``ExtensionType``, ``PSKType``,
  ``ResumptionPSKUsage``, ``NodeType``
* basic: ``Extension``, ``Credential``, ``Capabilities``, ``Lifetime``, ``LeafNode``, ``ParentNode``,
  ``KeyPackage``, ``KeyPackagePrivate``, ``GroupContext``, ``ExternalPub``, ``ExternalSender``,
  ``RequiredCapabilities``, ``RatchetTreeExt`` (``optional<Node> ratchet_tree<V>``)
* proposals: ``Add``, ``Update``, ``Remove``, ``PreSharedKeyID``, ``PreSharedKey``, ``ReInit``,
  ``ExternalInit``, ``GroupContextExtensions``, ``Proposal`` (wrapper with ``.proposal_type``/``.body``),
  ``ProposalOrRef``
* commit: ``HPKECiphertext``, ``UpdatePathNode``, ``UpdatePath``, ``Commit``
* welcome: ``PathSecret``, ``GroupSecrets``, ``EncryptedGroupSecrets``, ``Welcome``, ``GroupInfo``
* framing: ``Sender``, ``FramedContent``, ``FramedContentAuthData``, ``FramedContentTBS`` (function
  ``framed_content_tbs``), ``AuthenticatedContent``, ``PublicMessage``, ``PrivateMessage``,
  ``PrivateMessageContent``, ``PrivateContentAAD``, ``SenderData``, ``SenderDataAAD``, ``MLSMessage``
* helpers: ``make_key_package_ref``, ``make_proposal_ref``, ``find_extension``, ``encode_node``,
  ``decode_node``, ``default_capabilities``, ``default_lifetime``
"""

from __future__ import annotations

import hmac
import struct as _struct
import time
from dataclasses import dataclass, field
from enum import IntEnum
from typing import List, Optional, Union

from ..codec import Reader, Struct, Writer, decode_enum, encode_varint, pack_u16_vector
from ..errors import DecodeError, InvalidPublicKeyError, InvalidSignatureError, UnsupportedError
from ..suite import CipherSuite, SignatureKeyPair, Suite, get_suite  # noqa: F401

__all__ = [
    "ProtocolVersion", "WireFormat", "ContentType", "SenderType", "CredentialType", "LeafNodeSource",
    "ProposalType", "ProposalOrRefType", "ExtensionType", "PSKType", "ResumptionPSKUsage", "NodeType",
    "Extension", "Credential", "Capabilities", "Lifetime", "LeafNode", "ParentNode", "KeyPackage",
    "KeyPackagePrivate", "GroupContext", "ExternalPub", "ExternalSender", "RequiredCapabilities",
    "RatchetTreeExt", "Add", "Update", "Remove", "PreSharedKeyID", "PreSharedKey", "ReInit", "ExternalInit",
    "GroupContextExtensions", "Proposal", "ProposalOrRef", "HPKECiphertext", "UpdatePathNode", "UpdatePath",
    "Commit", "PathSecret", "GroupSecrets", "EncryptedGroupSecrets", "Welcome", "GroupInfo", "Sender",
    "FramedContent", "FramedContentAuthData", "framed_content_tbs", "AuthenticatedContent", "PublicMessage",
    "PrivateMessage", "PrivateMessageContent", "PrivateContentAAD", "SenderData", "SenderDataAAD",
    "MLSMessage", "make_key_package_ref", "make_proposal_ref", "find_extension", "encode_node",
    "decode_node", "default_capabilities", "default_lifetime",
]


# ---------------------------------------------------------------------------------------------------
# enums
class ProtocolVersion(IntEnum):
    mls10 = 1


class WireFormat(IntEnum):
    public_message = 1
    private_message = 2
    welcome = 3
    group_info = 4
    key_package = 5


class ContentType(IntEnum):
    application = 1
    proposal = 2
    commit = 3


class SenderType(IntEnum):
    member = 1
    external = 2
    new_member_proposal = 3
    new_member_commit = 4


class CredentialType(IntEnum):
    basic = 1
    x509 = 2


class LeafNodeSource(IntEnum):
    key_package = 1
    update = 2
    commit = 3


class ProposalType(IntEnum):
    add = 1
    update = 2
    remove = 3
    psk = 4
    reinit = 5
    external_init = 6
    group_context_extensions = 7


class ProposalOrRefType(IntEnum):
    proposal = 1
    reference = 2


class ExtensionType(IntEnum):
    application_id = 1
    ratchet_tree = 2
    required_capabilities = 3
    external_pub = 4
    external_senders = 5


class PSKType(IntEnum):
    external = 1
    resumption = 2


class ResumptionPSKUsage(IntEnum):
    application = 1
    reinit = 2
    branch = 3


class NodeType(IntEnum):
    leaf = 1
    parent = 2


def _opaque_bytes(data: bytes) -> bytes:
    """``opaque<V>`` as bytes."""
    return encode_varint(len(data)) + bytes(data)


_U16_BASIC = b"\x00\x01"  # CredentialType.basic as uint16
_EMPTY_VECTOR = b"\x00"


def _u16_list(w: Writer, items: List[int]) -> None:
    w.u16_vector(items)


def _u32_list(w: Writer, items: List[int]) -> None:
    w.u32_vector(items)


# ---------------------------------------------------------------------------------------------------
# extensions, credentials, capabilities
@dataclass
class Extension(Struct):
    extension_type: int
    extension_data: bytes

    def encode(self, w: Writer) -> None:
        w.u16(self.extension_type).opaque(self.extension_data)

    @classmethod
    def decode(cls, r: Reader) -> "Extension":
        return cls(r.u16(), r.opaque())


def find_extension(extensions: List[Extension], ext_type: int) -> Optional[bytes]:
    """The data of the first extension of ``ext_type``, or None."""
    for e in extensions:
        if e.extension_type == ext_type:
            return e.extension_data
    return None


def _encode_extensions(w: Writer, exts: List[Extension]) -> None:
    w.vector(exts)


@dataclass
class Credential(Struct):
    """Basic (identity) or X.509 (certificate chain, kept opaque) credential."""

    credential_type: int
    identity: bytes = b""
    certificates: List[bytes] = field(default_factory=list)

    @classmethod
    def basic(cls, identity: bytes) -> "Credential":
        return cls(CredentialType.basic, bytes(identity))

    def encode(self, w: Writer) -> None:
        w.u16(self.credential_type)
        if self.credential_type == CredentialType.basic:
            w.opaque(self.identity)
        elif self.credential_type == CredentialType.x509:
            w.vector(self.certificates, Writer.opaque)
        else:
            raise ValueError("cannot encode an unknown credential type")

    def encoded(self) -> bytes:
        """The encoding as bytes (basic credentials without a Writer: hot path of leaf-node encoding)."""
        if self.credential_type == CredentialType.basic:
            ident = self.identity
            return _U16_BASIC + _opaque_bytes(ident)
        return self.to_bytes()

    @classmethod
    def decode(cls, r: Reader) -> "Credential":
        ct = r.u16()
        if ct == CredentialType.basic:
            return cls(CredentialType.basic, r.opaque())
        if ct == CredentialType.x509:
            return cls(CredentialType.x509, b"", r.vector(Reader.opaque))
        raise DecodeError(f"unsupported credential type {ct}")


@dataclass
class Capabilities(Struct):
    versions: List[int] = field(default_factory=lambda: [1])
    cipher_suites: List[int] = field(default_factory=list)
    extensions: List[int] = field(default_factory=list)
    proposals: List[int] = field(default_factory=list)
    credentials: List[int] = field(default_factory=lambda: [1])

    def encode(self, w: Writer) -> None:
        w.raw(self.encoded())

    def encoded(self) -> bytes:
        """The encoding as bytes (hot path of leaf-node encoding)."""
        return (pack_u16_vector(self.versions) + pack_u16_vector(self.cipher_suites)
                + pack_u16_vector(self.extensions) + pack_u16_vector(self.proposals)
                + pack_u16_vector(self.credentials))

    @classmethod
    def decode(cls, r: Reader) -> "Capabilities":
        return cls(r.u16_vector(), r.u16_vector(), r.u16_vector(), r.u16_vector(), r.u16_vector())


def default_capabilities(suite: int) -> Capabilities:
    """Capabilities advertising MLS 1.0, ``suite``, basic credentials and no non-default extension/proposal."""
    return Capabilities(versions=[ProtocolVersion.mls10], cipher_suites=[int(suite)], extensions=[],
                        proposals=[], credentials=[CredentialType.basic])


@dataclass
class Lifetime(Struct):
    not_before: int
    not_after: int

    def encode(self, w: Writer) -> None:
        w.u64(self.not_before).u64(self.not_after)

    @classmethod
    def decode(cls, r: Reader) -> "Lifetime":
        return cls(r.u64(), r.u64())


def default_lifetime(now: Optional[int] = None, days: int = 90) -> Lifetime:
    """From one hour ago to ``days`` days from now (seconds since the epoch)."""
    t = int(time.time()) if now is None else now
    return Lifetime(max(0, t - 3600), t + days * 86400)


# ---------------------------------------------------------------------------------------------------
# leaf node
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
        w.vector(self.nodes, lambda ww, n: ww.optional(n, encode_node))

    @classmethod
    def decode(cls, r: Reader) -> "RatchetTreeExt":
        return cls(r.vector(lambda rr: rr.optional(decode_node)))


# ---------------------------------------------------------------------------------------------------
# key package
def make_key_package_ref(suite: "int | Suite", key_package_raw: bytes) -> bytes:
    """KeyPackageRef = RefHash("MLS 1.0 KeyPackage Reference", KeyPackage)."""
    return get_suite(suite).ref_hash(b"MLS 1.0 KeyPackage Reference", key_package_raw)


def make_proposal_ref(suite: "int | Suite", authenticated_content_bytes: bytes) -> bytes:
    """ProposalRef = RefHash("MLS 1.0 Proposal Reference", AuthenticatedContent)."""
    return get_suite(suite).ref_hash(b"MLS 1.0 Proposal Reference", authenticated_content_bytes)


@dataclass
class KeyPackage(Struct):
    version: int
    cipher_suite: int
    init_key: bytes
    leaf_node: LeafNode
    extensions: List[Extension] = field(default_factory=list)
    signature: bytes = b""

    def _encode_tbs(self, w: Writer) -> None:
        w.u16(self.version).u16(self.cipher_suite).opaque(self.init_key)
        self.leaf_node.encode(w)
        w.vector(self.extensions)

    def encode(self, w: Writer) -> None:
        self._encode_tbs(w)
        w.opaque(self.signature)

    @classmethod
    def decode(cls, r: Reader) -> "KeyPackage":
        return cls(r.u16(), r.u16(), r.opaque(), LeafNode.decode(r), r.vector(Extension), r.opaque())

    def tbs(self) -> bytes:
        w = Writer()
        self._encode_tbs(w)
        return w.getvalue()

    def raw_bytes(self) -> bytes:
        """The bare ``KeyPackage`` encoding (what KeyPackageRef hashes)."""
        w = Writer()
        self.encode(w)
        return w.getvalue()

    @classmethod
    def from_raw_bytes(cls, data: bytes) -> "KeyPackage":
        return Struct.from_bytes.__func__(cls, data)  # type: ignore[attr-defined]

    def to_bytes(self) -> bytes:
        """``MLSMessage(KeyPackage)`` serialisation (public API)."""
        return MLSMessage(WireFormat.key_package, self).to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> "KeyPackage":  # type: ignore[override]
        """Parse an ``MLSMessage`` carrying a KeyPackage."""
        msg = MLSMessage.from_bytes(data)
        if msg.wire_format != WireFormat.key_package:
            raise DecodeError("MLSMessage does not carry a KeyPackage")
        return msg.body  # type: ignore[return-value]

    def ref(self, suite: "int | Suite | None" = None) -> bytes:
        return make_key_package_ref(self.cipher_suite if suite is None else suite, self.raw_bytes())

    def sign(self, signature_private_key: bytes) -> None:
        self.signature = get_suite(self.cipher_suite).sign_with_label(signature_private_key, "KeyPackageTBS",
                                                                      self.tbs())

    def verify(self) -> bool:
        """True iff the KeyPackage signature verifies under the leaf node's signature key."""
        try:
            return get_suite(self.cipher_suite).verify_with_label(self.leaf_node.signature_key, "KeyPackageTBS",
                                                                  self.tbs(), self.signature)
        except (InvalidPublicKeyError, UnsupportedError):
            return False

    @classmethod
    def generate(cls, suite: "int | CipherSuite", identity: bytes, signer: SignatureKeyPair, *,
                 capabilities: Optional[Capabilities] = None, lifetime: Optional[Lifetime] = None,
                 extensions: Optional[List[Extension]] = None,
                 leaf_extensions: Optional[List[Extension]] = None,
                 credential: Optional[Credential] = None) -> "tuple[KeyPackage, KeyPackagePrivate]":
        """A fresh signed KeyPackage and its private part (init/encryption keys and the signer)."""
        s = get_suite(suite)
        if signer.suite != s.cipher_suite:
            raise ValueError("signer belongs to another cipher suite")
        init_priv, init_pub = s.generate_hpke_key_pair()
        enc_priv, enc_pub = s.generate_hpke_key_pair()
        leaf = LeafNode(
            encryption_key=enc_pub,
            signature_key=signer.public_key,
            credential=credential if credential is not None else Credential.basic(identity),
            capabilities=capabilities if capabilities is not None else default_capabilities(s.cipher_suite),
            leaf_node_source=LeafNodeSource.key_package,
            lifetime=lifetime if lifetime is not None else default_lifetime(),
            extensions=list(leaf_extensions or []),
        )
        leaf.sign(s, signer.private_key)
        kp = cls(ProtocolVersion.mls10, int(s.cipher_suite), init_pub, leaf, list(extensions or []))
        kp.sign(signer.private_key)
        return kp, KeyPackagePrivate(kp, init_priv, enc_priv, signer)


class KeyPackagePrivate:
    """The private half of a KeyPackage: init and encryption private keys, and the signer."""

    __slots__ = ("key_package", "init_private_key", "encryption_private_key", "signer")

    def __init__(self, key_package: KeyPackage, init_private_key: bytes, encryption_private_key: bytes,
                 signer: SignatureKeyPair) -> None:
        self.key_package = key_package
        self.init_private_key = bytes(init_private_key)
        self.encryption_private_key = bytes(encryption_private_key)
        self.signer = signer

    def __repr__(self) -> str:
        return f"KeyPackagePrivate(ref={self.key_package.ref().hex()[:16]}...)"

    def to_bytes(self) -> bytes:
        return (Writer().opaque(self.key_package.raw_bytes()).opaque(self.init_private_key)
                .opaque(self.encryption_private_key).opaque(self.signer.to_bytes()).getvalue())

    @classmethod
    def from_bytes(cls, data: bytes) -> "KeyPackagePrivate":
        r = Reader(data)
        kp_raw, init_priv, enc_priv, signer_b = r.opaque(), r.opaque(), r.opaque(), r.opaque()
        r.finish()
        kp = KeyPackage.from_raw_bytes(kp_raw)
        signer = SignatureKeyPair.from_bytes(signer_b)
        s = get_suite(kp.cipher_suite)
        try:
            ok = (hmac.compare_digest(s.hpke_public_from_private(init_priv), kp.init_key)
                  and hmac.compare_digest(s.hpke_public_from_private(enc_priv), kp.leaf_node.encryption_key)
                  and hmac.compare_digest(signer.public_key, kp.leaf_node.signature_key))
        except ValueError:
            ok = False
        if not ok:
            raise DecodeError("KeyPackagePrivate keys do not match the KeyPackage")
        return cls(kp, init_priv, enc_priv, signer)


# ---------------------------------------------------------------------------------------------------
# group context and extensions
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


# ---------------------------------------------------------------------------------------------------
# proposals
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


# ---------------------------------------------------------------------------------------------------
# commit
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


# ---------------------------------------------------------------------------------------------------
# welcome / group info
@dataclass
class PathSecret(Struct):
    path_secret: bytes

    def encode(self, w: Writer) -> None:
        w.opaque(self.path_secret)

    @classmethod
    def decode(cls, r: Reader) -> "PathSecret":
        return cls(r.opaque())

    def __repr__(self) -> str:
        return "PathSecret(...)"


@dataclass
class GroupSecrets(Struct):
    joiner_secret: bytes
    path_secret: Optional[PathSecret] = None
    psks: List[PreSharedKeyID] = field(default_factory=list)

    def encode(self, w: Writer) -> None:
        w.opaque(self.joiner_secret).optional(self.path_secret).vector(self.psks)

    @classmethod
    def decode(cls, r: Reader) -> "GroupSecrets":
        return cls(r.opaque(), r.optional(PathSecret), r.vector(PreSharedKeyID))

    def __repr__(self) -> str:
        return f"GroupSecrets(path_secret={'set' if self.path_secret else None}, psks={len(self.psks)})"


@dataclass
class EncryptedGroupSecrets(Struct):
    new_member: bytes
    encrypted_group_secrets: HPKECiphertext

    def encode(self, w: Writer) -> None:
        w.opaque(self.new_member)
        self.encrypted_group_secrets.encode(w)

    @classmethod
    def decode(cls, r: Reader) -> "EncryptedGroupSecrets":
        return cls(r.opaque(), HPKECiphertext.decode(r))


@dataclass
class Welcome(Struct):
    cipher_suite: int
    secrets: List[EncryptedGroupSecrets] = field(default_factory=list)
    encrypted_group_info: bytes = b""

    def encode(self, w: Writer) -> None:
        w.u16(self.cipher_suite).vector(self.secrets).opaque(self.encrypted_group_info)

    @classmethod
    def decode(cls, r: Reader) -> "Welcome":
        return cls(r.u16(), r.vector(EncryptedGroupSecrets), r.opaque())


@dataclass
class GroupInfo(Struct):
    group_context: GroupContext
    extensions: List[Extension] = field(default_factory=list)
    confirmation_tag: bytes = b""
    signer: int = 0
    signature: bytes = b""

    def _encode_tbs(self, w: Writer) -> None:
        self.group_context.encode(w)
        w.vector(self.extensions).opaque(self.confirmation_tag).u32(self.signer)

    def encode(self, w: Writer) -> None:
        self._encode_tbs(w)
        w.opaque(self.signature)

    @classmethod
    def decode(cls, r: Reader) -> "GroupInfo":
        return cls(GroupContext.decode(r), r.vector(Extension), r.opaque(), r.u32(), r.opaque())

    def tbs(self) -> bytes:
        w = Writer()
        self._encode_tbs(w)
        return w.getvalue()

    def sign(self, signature_private_key: bytes) -> None:
        self.signature = get_suite(self.group_context.cipher_suite).sign_with_label(
            signature_private_key, "GroupInfoTBS", self.tbs())

    def verify(self, signature_public_key: bytes) -> bool:
        try:
            return get_suite(self.group_context.cipher_suite).verify_with_label(
                signature_public_key, "GroupInfoTBS", self.tbs(), self.signature)
        except InvalidPublicKeyError:
            return False

    def check_signature(self, signature_public_key: bytes) -> None:
        if not self.verify(signature_public_key):
            raise InvalidSignatureError("invalid GroupInfo signature")


# ---------------------------------------------------------------------------------------------------
# framing
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

