"""RFC 9420 wire structures (TLS presentation language), with byte-exact encode/decode.

One module per part of the RFC: ``enums``, ``credentials`` (extensions, credentials, capabilities,
lifetimes), ``nodes`` (leaf and parent nodes), ``key_package``, ``group_context``, ``proposal``,
``commit``, ``welcome`` (and GroupInfo) and ``framing``; this package re-exports all of them.

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

from ..suite import CipherSuite, SignatureKeyPair, Suite, get_suite  # noqa: F401 - re-exported as before
from .commit import (
    Commit,
    HPKECiphertext,
    UpdatePath,
    UpdatePathNode,
)
from .credentials import (
    Capabilities,
    Credential,
    Extension,
    Lifetime,
    default_capabilities,
    default_lifetime,
    find_extension,
)
from .enums import (
    ContentType,
    CredentialType,
    ExtensionType,
    LeafNodeSource,
    NodeType,
    ProposalOrRefType,
    ProposalType,
    ProtocolVersion,
    PSKType,
    ResumptionPSKUsage,
    SenderType,
    WireFormat,
)
from .framing import (
    AuthenticatedContent,
    ContentBody,
    FramedContent,
    FramedContentAuthData,
    MLSBody,
    MLSMessage,
    PrivateContentAAD,
    PrivateMessage,
    PrivateMessageContent,
    PublicMessage,
    Sender,
    SenderData,
    SenderDataAAD,
    framed_content_tbs,
)
from .group_context import (
    ExternalPub,
    ExternalSender,
    GroupContext,
    RequiredCapabilities,
)
from .key_package import (
    KeyPackage,
    KeyPackagePrivate,
    make_key_package_ref,
    make_proposal_ref,
)
from .nodes import (
    LeafNode,
    NodeValue,
    ParentNode,
    RatchetTreeExt,
    decode_node,
    encode_node,
)
from .proposal import (
    Add,
    ExternalInit,
    GroupContextExtensions,
    PreSharedKey,
    PreSharedKeyID,
    Proposal,
    ProposalBody,
    ProposalOrRef,
    ReInit,
    Remove,
    Update,
)
from .welcome import (
    EncryptedGroupSecrets,
    GroupInfo,
    GroupSecrets,
    PathSecret,
    Welcome,
)

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
    "decode_node", "default_capabilities", "default_lifetime", "NodeValue", "ProposalBody", "ContentBody", "MLSBody",
]
