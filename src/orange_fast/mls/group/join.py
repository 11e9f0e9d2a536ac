"""Joining a group from a Welcome (RFC 9420 §12.4.3.1) or by an external commit (§12.4.3.2),
with the validation of the received ratchet tree."""

from __future__ import annotations

import dataclasses
import hmac
from typing import Dict, List, Optional, Tuple, Type

from .. import messages as M
from .. import treekem as TK
from .. import treemath as tm
from ..epoch import KeySchedule
from ..errors import (
    ConfirmationTagError,
    DecryptionError,
    InvalidGroupInfoError,
    InvalidSignatureError,
    InvalidTreeError,
    InvalidWelcomeError,
    MissingPSKError,
    MLSError,
    UnsupportedError,
)
from ..member import CredentialValidator
from ..proposals import (
    ResolvedProposal,
    apply_proposals,
    credential_summary,
    validate_leaf_node,
    validate_proposal_list,
)
from ..suite import SignatureKeyPair, Suite, get_suite
from ..tree import RatchetTree
from .base import _G, GroupBase
from .state import _confirmed, _interim, _State

__all__ = ["GroupJoins"]


class GroupJoins(GroupBase):
    """Joining a group: from a Welcome (RFC 9420 §12.4.3.1) or by an external commit (§12.4.3.2)."""

    # -- joining ------------------------------------------------------------------------------------
    @classmethod
    def join_from_welcome(cls: Type[_G], welcome: bytes, key_package_private: M.KeyPackagePrivate,
                          ratchet_tree: Optional[bytes] = None, *,
                          psks: Optional[Dict[bytes, bytes]] = None, private_handshake: bool = True,
                          check_lifetimes: bool = False,
                          credential_validator: Optional[CredentialValidator] = None) -> _G:
        """Join from a Welcome (RFC 9420 §12.4.3.1) with our KeyPackage's private part."""
        try:
            msg = M.MLSMessage.from_bytes(welcome)
        except MLSError:
            raise
        if msg.wire_format != M.WireFormat.welcome:
            raise InvalidWelcomeError("message is not a Welcome")
        w: M.Welcome = msg.body  # type: ignore[assignment]
        kpp = key_package_private
        kp = kpp.key_package
        if w.cipher_suite != kp.cipher_suite:
            raise InvalidWelcomeError("Welcome cipher suite differs from the KeyPackage's")
        s = get_suite(w.cipher_suite)
        ref = kp.ref(s)
        entry = next((e for e in w.secrets if hmac.compare_digest(bytes(e.new_member), ref)), None)
        if entry is None:
            raise InvalidWelcomeError("Welcome has no secrets for this KeyPackage")
        try:
            gs_raw = s.decrypt_with_label(kpp.init_private_key, "Welcome", w.encrypted_group_info,
                                          entry.encrypted_group_secrets.kem_output,
                                          entry.encrypted_group_secrets.ciphertext)
        except DecryptionError:
            raise
        gs = M.GroupSecrets.from_bytes(gs_raw)
        psk_store = dict(psks or {})
        psk_pairs = []
        for pid in gs.psks:
            if pid.psktype != M.PSKType.external:
                raise UnsupportedError("resumption PSKs in a Welcome are not supported")
            val = psk_store.get(bytes(pid.psk_id))
            if val is None:
                raise MissingPSKError("Welcome references an unknown PSK")
            psk_pairs.append((pid, val))
        ks = KeySchedule(s)
        psk_secret = ks.psk_secret(psk_pairs)
        welcome_secret = ks.welcome_secret(gs.joiner_secret, psk_secret)
        key = s.expand_with_label(welcome_secret, "key", b"", s.nk)
        nonce = s.expand_with_label(welcome_secret, "nonce", b"", s.nn)
        gi_raw = s.aead_decrypt(key, nonce, b"", w.encrypted_group_info)
        gi = M.GroupInfo.from_bytes(gi_raw)
        ctx = gi.group_context
        if ctx.cipher_suite != kp.cipher_suite or ctx.version != M.ProtocolVersion.mls10:
            raise InvalidWelcomeError("GroupInfo cipher suite or version mismatch")
        for e in ctx.extensions:
            if e.extension_type not in (1, 2, 3, 4, 5) and \
                    e.extension_type not in kp.leaf_node.capabilities.extensions:
                raise UnsupportedError("group uses an extension our KeyPackage does not support")
        tree = _tree_from(s, gi, ratchet_tree)
        signer_leaf = tree.leaf(gi.signer)
        if signer_leaf is None:
            raise InvalidGroupInfoError("GroupInfo signer is not a member")
        if not gi.verify(signer_leaf.signature_key):
            raise InvalidSignatureError("invalid GroupInfo signature")
        _validate_tree(s, tree, ctx, check_lifetimes)
        # find our leaf
        my_leaf = None
        kp_leaf = kp.leaf_node.to_bytes()
        for idx, leaf in tree.leaves():
            if leaf.to_bytes() == kp_leaf:
                my_leaf = idx
                break
        if my_leaf is None:
            raise InvalidWelcomeError("our leaf node is not in the tree")
        privs: TK.PrivateKeys = {2 * my_leaf: (kpp.encryption_private_key, bytes(kp.leaf_node.encryption_key))}
        if gs.path_secret is not None:
            lca = tm.common_ancestor(2 * my_leaf, 2 * gi.signer)
            _, more = TK.path_secrets_from(tree, lca, gs.path_secret.path_secret, gi.signer)
            privs.update(more)
        epoch = ks.from_joiner(gs.joiner_secret, psk_secret, ctx.to_bytes(), tree.n_leaves)
        tag = s.mac(epoch.confirmation_key, ctx.confirmed_transcript_hash)
        if not hmac.compare_digest(tag, bytes(gi.confirmation_tag)):
            raise ConfirmationTagError("GroupInfo confirmation tag mismatch")
        st = _State()
        st.suite = s
        st.context = ctx
        st.tree = tree
        st.own_leaf = my_leaf
        st.signer = kpp.signer
        st.privs = privs
        st.epoch = epoch
        st.confirmation_tag = bytes(gi.confirmation_tag)
        st.interim_transcript_hash = _interim(s, ctx.confirmed_transcript_hash, st.confirmation_tag)
        st.psks = psk_store
        st.private_handshake = private_handshake
        return cls(st, credential_validator)

    @classmethod
    def join_external(cls: Type[_G], group_info: bytes, identity: bytes, signer: SignatureKeyPair, *,
                      ratchet_tree: Optional[bytes] = None, remove_leaf: Optional[int] = None,
                      private_handshake: bool = True, psks: Optional[Dict[bytes, bytes]] = None,
                      credential_validator: Optional[CredentialValidator] = None
                      ) -> Tuple[_G, bytes]:
        """External commit (RFC 9420 §12.4.3.2); ``remove_leaf`` resyncs (removes our old leaf).

        Returns ``(group, commit_message)``; the group is already in the new epoch (the commit is
        a PublicMessage, as required for new_member_commit senders).
        """
        msg = M.MLSMessage.from_bytes(group_info)
        if msg.wire_format != M.WireFormat.group_info:
            raise InvalidGroupInfoError("message is not a GroupInfo")
        gi: M.GroupInfo = msg.body  # type: ignore[assignment]
        ctx = gi.group_context
        s = get_suite(ctx.cipher_suite)
        if signer.suite != s.cipher_suite:
            raise UnsupportedError("signer belongs to another cipher suite")
        tree = _tree_from(s, gi, ratchet_tree)
        signer_leaf = tree.leaf(gi.signer)
        if signer_leaf is None or not gi.verify(signer_leaf.signature_key):
            raise InvalidSignatureError("invalid GroupInfo signature")
        _validate_tree(s, tree, ctx, False)
        ext_pub_data = M.find_extension(gi.extensions, M.ExtensionType.external_pub)
        if ext_pub_data is None:
            raise InvalidGroupInfoError("GroupInfo has no external_pub extension")
        external_pub = M.ExternalPub.from_bytes(ext_pub_data).external_pub
        kem_output, hctx = s.hpke.setup_base_s(bytes(external_pub), b"")
        init_secret = hctx.export(b"MLS 1.0 external init secret", s.nh)

        props: List[M.Proposal] = [M.Proposal(M.ExternalInit(kem_output))]
        if remove_leaf is not None:
            props.append(M.Proposal(M.Remove(int(remove_leaf))))
        resolved = [ResolvedProposal(p, M.Sender(M.SenderType.new_member_commit, 0), False) for p in props]
        validate_proposal_list(s, resolved, tree, ctx, None, external=True, known_psk=None)
        work = tree.copy()
        apply_proposals(work, resolved)
        # placeholder leaf at the leftmost blank position
        leaf = M.LeafNode(encryption_key=b"", signature_key=signer.public_key,
                          credential=M.Credential.basic(bytes(identity)),
                          capabilities=M.default_capabilities(s.cipher_suite),
                          leaf_node_source=M.LeafNodeSource.commit, parent_hash=b"")
        me = work.add_leaf(leaf)
        # a new leaf added by add_leaf is recorded as unmerged in parent nodes; the path blanks them anyway
        path_secrets = TK.prepare_path(work, me)
        leaf = dataclasses.replace(leaf, encryption_key=path_secrets.leaf_pub,
                                   parent_hash=path_secrets.leaf_parent_hash)
        leaf.sign(s, signer.private_key, ctx.group_id, me)
        work.set_leaf(me, leaf)
        provisional = dataclasses.replace(ctx, epoch=ctx.epoch + 1, tree_hash=work.root_tree_hash())
        update_path = TK.encrypt_path(work, me, path_secrets, leaf, provisional.to_bytes(), set())
        commit = M.Commit([M.ProposalOrRef(proposal=p) for p in props], update_path)
        fc = M.FramedContent(ctx.group_id, ctx.epoch, M.Sender(M.SenderType.new_member_commit, 0), b"",
                             M.ContentType.commit, commit)
        wf = M.WireFormat.public_message
        sig = signer.sign_with_label("FramedContentTBS", M.framed_content_tbs(wf, fc, ctx.to_bytes()))
        ac = M.AuthenticatedContent(wf, fc, M.FramedContentAuthData(sig, None))
        interim = _interim(s, ctx.confirmed_transcript_hash, bytes(gi.confirmation_tag))
        confirmed = _confirmed(s, interim, ac)
        new_ctx = dataclasses.replace(provisional, confirmed_transcript_hash=confirmed)
        ks = KeySchedule(s)
        psk_secret = ks.psk_secret([])
        epoch, _, _ = ks.advance(init_secret, path_secrets.commit_secret, psk_secret, new_ctx.to_bytes(),
                                 work.n_leaves)
        tag = s.mac(epoch.confirmation_key, confirmed)
        ac.auth.confirmation_tag = tag
        pm = M.PublicMessage(fc, ac.auth, None)
        commit_msg = M.MLSMessage(M.WireFormat.public_message, pm).to_bytes()
        st = _State()
        st.suite = s
        st.context = new_ctx
        st.tree = work
        st.own_leaf = me
        st.signer = signer
        st.privs = dict(path_secrets.privs)
        st.epoch = epoch
        st.confirmation_tag = tag
        st.interim_transcript_hash = _interim(s, confirmed, tag)
        st.psks = dict(psks or {})
        st.private_handshake = private_handshake
        return cls(st, credential_validator), commit_msg


def _tree_from(s: Suite, gi: M.GroupInfo, ratchet_tree: Optional[bytes]) -> RatchetTree:
    data = M.find_extension(gi.extensions, M.ExtensionType.ratchet_tree)
    if ratchet_tree is not None:
        raw = bytes(ratchet_tree)
    elif data is not None:
        raw = bytes(data)
    else:
        raise InvalidWelcomeError("no ratchet tree in the GroupInfo and none given")
    tree = RatchetTree.from_bytes(s, raw)
    if not hmac.compare_digest(tree.root_tree_hash(), bytes(gi.group_context.tree_hash)):
        raise InvalidTreeError("ratchet tree does not match the GroupInfo tree hash")
    return tree


def _validate_tree(s: Suite, tree: RatchetTree, ctx: M.GroupContext, check_lifetimes: bool) -> None:
    """RFC 9420 §12.4.3.1: parent hashes, leaves, unmerged leaves, key uniqueness."""
    tree.verify_parent_hashes()
    tree.verify_unmerged_leaves()
    summary = credential_summary(tree)

    def check(leaf: M.LeafNode, idx: int) -> None:
        validate_leaf_node(s, leaf, tree, ctx, source=None, leaf_index=idx, replacing=idx,
                           check_lifetime=check_lifetimes, check_uniqueness=False,
                           credential_summary=summary)

    tree.verify_leaves(ctx.group_id, check)
