"""PublicMessage and PrivateMessage protection (RFC 9420 §6).

Public names:

* ``sign_framed_content(suite, wire_format, content, signature_private_key, group_context,
  confirmation_tag=None) -> AuthenticatedContent`` -- SignWithLabel("FramedContentTBS").
* ``verify_authenticated_content(suite, ac, group_context, signature_public_key)`` -- raises
  ``InvalidSignatureError``.
* ``protect_public(suite, ac, group_context, membership_key=None) -> MLSMessage`` -- adds the membership tag for
  member senders; application data as PublicMessage is refused (``InvalidMessageError``).
* ``unprotect_public(suite, msg, group_context, membership_key, signature_key_for,
  external_sender_key_for=None) -> AuthenticatedContent``.
* ``protect_private(suite, ac, secret_tree, sender_data_secret, padding=0, reuse_guard=None) -> MLSMessage``
  -- encrypts with the sender's next handshake/application generation.
* ``unprotect_private(suite, msg, group_context, secret_tree, sender_data_secret, signature_key_for)
  -> AuthenticatedContent`` -- the secret-tree key is consumed only after the content decrypted *and* the
  signature verified, so a rejected message changes no state.
* ``unprotect(suite, mls_message, group_context, ..., )`` -- dispatch on the wire format.

``signature_key_for(leaf_index) -> bytes | None`` returns the signature key of a member leaf (None if the leaf
is blank or outside the tree); ``external_sender_key_for(sender_index) -> bytes | None`` for external senders.
``msg`` arguments accept ``MLSMessage``, ``PublicMessage``/``PrivateMessage`` or the MLSMessage bytes.

Checks (§6): group id (``WrongGroupError``), epoch (``WrongEpochError``), membership tag
(``MembershipTagError``), signature (``InvalidSignatureError``), sender data and content AEAD
(``DecryptionError``), padding all zero and well-formed content (``DecodeError``), sender type allowed for the
wire format and content type (``InvalidMessageError``).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional, Union

from .codec import Writer
from .errors import (
    DecodeError,
    DecryptionError,
    InvalidCommitError,
    InvalidMessageError,
    InvalidProposalError,
    MembershipTagError,
    WrongEpochError,
    WrongGroupError,
)
from .messages import (
    Add,
    AuthenticatedContent,
    Commit,
    ContentType,
    FramedContent,
    FramedContentAuthData,
    GroupContext,
    MLSMessage,
    PrivateContentAAD,
    PrivateMessage,
    PrivateMessageContent,
    Proposal,
    PublicMessage,
    Sender,
    SenderData,
    SenderDataAAD,
    SenderType,
    WireFormat,
    framed_content_tbs,
)
from .secret_tree import SecretTree, apply_reuse_guard, sender_data_key_nonce
from .suite import Suite, get_suite
from .transcript import membership_tag, verify_membership_tag

__all__ = [
    "sign_framed_content",
    "verify_authenticated_content",
    "protect_public",
    "unprotect_public",
    "protect_private",
    "unprotect_private",
    "unprotect",
]

KeyLookup = Callable[[int], Optional[bytes]]


def _gc_bytes(group_context: Union[GroupContext, bytes]) -> bytes:
    return group_context if isinstance(group_context, (bytes, bytearray)) else group_context.to_bytes()


def sign_framed_content(suite: "int | Suite", wire_format: WireFormat, content: FramedContent,
                        signature_private_key: bytes, group_context: Optional[Union[GroupContext, bytes]],
                        confirmation_tag: Optional[bytes] = None) -> AuthenticatedContent:
    """Sign ``content`` for ``wire_format``; commits get ``confirmation_tag`` (may be set later)."""
    s = get_suite(suite)
    gc = None if group_context is None else _gc_bytes(group_context)
    tbs = framed_content_tbs(wire_format, content, gc)
    sig = s.sign_with_label(signature_private_key, "FramedContentTBS", tbs)
    return AuthenticatedContent(wire_format, content, FramedContentAuthData(sig, confirmation_tag))


def verify_authenticated_content(suite: "int | Suite", ac: AuthenticatedContent,
                                 group_context: Optional[Union[GroupContext, bytes]],
                                 signature_public_key: bytes) -> None:
    """Raise ``InvalidSignatureError`` unless the FramedContentTBS signature verifies."""
    s = get_suite(suite)
    gc = None if group_context is None else _gc_bytes(group_context)
    s.check_signature(signature_public_key, "FramedContentTBS", ac.tbs(gc), ac.auth.signature, "FramedContent")


def _auth_bytes(auth: FramedContentAuthData, content_type: ContentType) -> bytes:
    w = Writer()
    auth.encode(w, content_type)
    return w.getvalue()


def _check_group_epoch(group_id: bytes, epoch: int, group_context: GroupContext) -> None:
    if group_id != group_context.group_id:
        raise WrongGroupError("message for another group")
    if epoch != group_context.epoch:
        raise WrongEpochError(f"message for epoch {epoch}, group is at epoch {group_context.epoch}")


def protect_public(suite: "int | Suite", ac: AuthenticatedContent, group_context: Union[GroupContext, bytes],
                   membership_key: Optional[bytes] = None) -> MLSMessage:
    """Wrap signed content as ``MLSMessage(PublicMessage)``."""
    s = get_suite(suite)
    content = ac.content
    if ac.wire_format != WireFormat.public_message:
        raise ValueError("content was signed for another wire format")
    if content.content_type == ContentType.application:
        raise InvalidMessageError("application data cannot be sent as a PublicMessage")
    if content.content_type == ContentType.commit and ac.auth.confirmation_tag is None:
        raise ValueError("a commit needs its confirmation tag")
    tag = None
    if content.sender.sender_type == SenderType.member:
        if membership_key is None:
            raise ValueError("member PublicMessages need the membership key")
        tbs = framed_content_tbs(WireFormat.public_message, content, _gc_bytes(group_context))
        tag = membership_tag(s, membership_key, tbs, _auth_bytes(ac.auth, content.content_type))
    return MLSMessage(WireFormat.public_message, PublicMessage(content, ac.auth, tag))


def _as_body(msg: Any, cls: type) -> Any:
    if isinstance(msg, (bytes, bytearray, memoryview)):
        msg = MLSMessage.from_bytes(bytes(msg))
    if isinstance(msg, MLSMessage):
        msg = msg.body
    if not isinstance(msg, cls):
        raise InvalidMessageError(f"expected a {cls.__name__}")
    return msg


def _sender_key(content: FramedContent, signature_key_for: KeyLookup,
                external_sender_key_for: Optional[KeyLookup]) -> bytes:
    st = content.sender.sender_type
    key: Optional[bytes] = None
    if st == SenderType.member:
        key = signature_key_for(content.sender.index)
    elif st == SenderType.external:
        key = external_sender_key_for(content.sender.index) if external_sender_key_for else None
    elif st == SenderType.new_member_commit:
        if content.content_type != ContentType.commit or not isinstance(content.content, Commit):
            raise InvalidMessageError("new_member_commit sender must send a commit")
        if content.content.path is None:
            raise InvalidCommitError("external commit without an UpdatePath")
        key = content.content.path.leaf_node.signature_key
    elif st == SenderType.new_member_proposal:
        if content.content_type != ContentType.proposal or not isinstance(content.content, Proposal):
            raise InvalidMessageError("new_member_proposal sender must send a proposal")
        if not isinstance(content.content.body, Add):
            raise InvalidProposalError("new_member_proposal must be an Add")
        key = content.content.body.key_package.leaf_node.signature_key
    if key is None:
        raise InvalidMessageError("unknown sender")
    return key


def unprotect_public(suite: "int | Suite", msg: Any, group_context: GroupContext, membership_key: Optional[bytes],
                     signature_key_for: KeyLookup,
                     external_sender_key_for: Optional[KeyLookup] = None) -> AuthenticatedContent:
    """Verify a PublicMessage and return its ``AuthenticatedContent``."""
    s = get_suite(suite)
    pm: PublicMessage = _as_body(msg, PublicMessage)
    content = pm.content
    _check_group_epoch(content.group_id, content.epoch, group_context)
    if content.content_type == ContentType.application:
        raise InvalidMessageError("application data in a PublicMessage")
    st = content.sender.sender_type
    if st in (SenderType.external, SenderType.new_member_proposal) and content.content_type != ContentType.proposal:
        raise InvalidMessageError("this sender type may only send proposals")
    if st == SenderType.new_member_commit and content.content_type != ContentType.commit:
        raise InvalidMessageError("new_member_commit sender must send a commit")
    gc = _gc_bytes(group_context)
    tbs = framed_content_tbs(WireFormat.public_message, content, gc)
    if st == SenderType.member:
        if membership_key is None or pm.membership_tag is None:
            raise MembershipTagError("missing membership tag")
        if not verify_membership_tag(s, membership_key, tbs, _auth_bytes(pm.auth, content.content_type),
                                     pm.membership_tag):
            raise MembershipTagError("invalid membership tag")
    key = _sender_key(content, signature_key_for, external_sender_key_for)
    s.check_signature(key, "FramedContentTBS", tbs, pm.auth.signature, "FramedContent")
    return AuthenticatedContent(WireFormat.public_message, content, pm.auth)


def protect_private(suite: "int | Suite", ac: AuthenticatedContent, secret_tree: SecretTree,
                    sender_data_secret: bytes, padding: int = 0,
                    reuse_guard: Optional[bytes] = None) -> MLSMessage:
    """Encrypt signed content as ``MLSMessage(PrivateMessage)`` (the sender's ratchet advances)."""
    s = get_suite(suite)
    content = ac.content
    if ac.wire_format != WireFormat.private_message:
        raise ValueError("content was signed for another wire format")
    if content.sender.sender_type != SenderType.member:
        raise ValueError("only members can send PrivateMessages")
    if content.content_type == ContentType.commit and ac.auth.confirmation_tag is None:
        raise ValueError("a commit needs its confirmation tag")
    if padding < 0:
        raise ValueError("padding must be non-negative")
    leaf = content.sender.index
    handshake = content.content_type != ContentType.application
    generation, key, nonce = secret_tree.next_send(leaf, handshake)
    guard = os.urandom(4) if reuse_guard is None else bytes(reuse_guard)
    pt = PrivateMessageContent(content.content, ac.auth, padding).to_bytes(content.content_type)
    aad = PrivateContentAAD(content.group_id, content.epoch, content.content_type,
                            content.authenticated_data).to_bytes()
    ciphertext = s.aead_encrypt(key, apply_reuse_guard(nonce, guard), aad, pt)
    sd_key, sd_nonce = sender_data_key_nonce(s, sender_data_secret, ciphertext)
    sd_aad = SenderDataAAD(content.group_id, content.epoch, content.content_type).to_bytes()
    enc_sd = s.aead_encrypt(sd_key, sd_nonce, sd_aad, SenderData(leaf, generation, guard).to_bytes())
    return MLSMessage(WireFormat.private_message,
                      PrivateMessage(content.group_id, content.epoch, content.content_type,
                                     content.authenticated_data, enc_sd, ciphertext))


def unprotect_private(suite: "int | Suite", msg: Any, group_context: GroupContext, secret_tree: SecretTree,
                      sender_data_secret: bytes, signature_key_for: KeyLookup) -> AuthenticatedContent:
    """Decrypt and verify a PrivateMessage; consumes the ratchet key only on success."""
    s = get_suite(suite)
    pm: PrivateMessage = _as_body(msg, PrivateMessage)
    _check_group_epoch(pm.group_id, pm.epoch, group_context)
    sd_key, sd_nonce = sender_data_key_nonce(s, sender_data_secret, pm.ciphertext)
    sd_aad = SenderDataAAD(pm.group_id, pm.epoch, pm.content_type).to_bytes()
    try:
        sd_plain = s.aead_decrypt(sd_key, sd_nonce, sd_aad, pm.encrypted_sender_data)
    except DecryptionError:
        raise DecryptionError("sender data decryption failed") from None
    try:
        sd = SenderData.from_bytes(sd_plain)
    except DecodeError:
        raise DecryptionError("malformed sender data") from None
    if not 0 <= sd.leaf_index < secret_tree.n_leaves:
        raise InvalidMessageError("sender leaf index outside the tree")
    sig_key = signature_key_for(sd.leaf_index)
    if sig_key is None:
        raise InvalidMessageError("unknown sender")
    handshake = pm.content_type != ContentType.application
    key, nonce = secret_tree.key_nonce(sd.leaf_index, handshake, sd.generation)
    aad = PrivateContentAAD(pm.group_id, pm.epoch, pm.content_type, pm.authenticated_data).to_bytes()
    pt = s.aead_decrypt(key, apply_reuse_guard(nonce, sd.reuse_guard), aad, pm.ciphertext)
    pmc = PrivateMessageContent.from_bytes(pt, pm.content_type)
    content = FramedContent(pm.group_id, pm.epoch, Sender(SenderType.member, sd.leaf_index),
                            pm.authenticated_data, pm.content_type, pmc.content)
    ac = AuthenticatedContent(WireFormat.private_message, content, pmc.auth)
    tbs = framed_content_tbs(WireFormat.private_message, content, _gc_bytes(group_context))
    s.check_signature(sig_key, "FramedContentTBS", tbs, pmc.auth.signature, "FramedContent")
    secret_tree.consume(sd.leaf_index, handshake, sd.generation)
    return ac


def unprotect(suite: "int | Suite", msg: Any, group_context: GroupContext, *, membership_key: Optional[bytes],
              secret_tree: Optional[SecretTree], sender_data_secret: Optional[bytes],
              signature_key_for: KeyLookup,
              external_sender_key_for: Optional[KeyLookup] = None) -> AuthenticatedContent:
    """Unprotect a Public or Private message (``MLSMessage`` or its bytes)."""
    if isinstance(msg, (bytes, bytearray, memoryview)):
        msg = MLSMessage.from_bytes(bytes(msg))
    body = msg.body if isinstance(msg, MLSMessage) else msg
    if isinstance(body, PublicMessage):
        return unprotect_public(suite, body, group_context, membership_key, signature_key_for,
                                external_sender_key_for)
    if isinstance(body, PrivateMessage):
        if secret_tree is None or sender_data_secret is None:
            raise InvalidMessageError("PrivateMessage needs the secret tree")
        return unprotect_private(suite, body, group_context, secret_tree, sender_data_secret, signature_key_for)
    raise InvalidMessageError("not a Public or Private message")


