"""Sending proposals and creating commits (RFC 9420 §12.1, §12.4), Welcome messages (§12.4.3.1)
and GroupInfo (§12.4.3)."""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Optional, Sequence, Set, Tuple

from .. import messages as M
from .. import treekem as TK
from .. import treemath as tm
from ..epoch import KeySchedule
from ..errors import (
    InvalidProposalError,
    MissingPSKError,
    StateError,
)
from ..member import member_of
from ..proposals import (
    AppliedProposals,
    CachedProposal,
    ResolvedProposal,
    apply_proposals,
    validate_key_package,
    validate_proposal_list,
)
from .base import GroupBase
from .state import CommitOutput, ProcessResult, _confirmed, _next_epoch_state, _parse_key_package, _Pending, _State

__all__ = ["GroupCommits"]


class GroupCommits(GroupBase):
    """Proposals (RFC 9420 §12.1) and commits (§12.4) made by this member, with their Welcome
    (§12.4.3.1) and GroupInfo (§12.4.3)."""

    # -- proposals ------------------------------------------------------------------------------------
    def _send_proposal(self, proposal: M.Proposal) -> bytes:
        self._require_active()
        st = self._s.copy()
        wf = self._wire_format(st)
        ac = self._frame(st, M.ContentType.proposal, proposal, wf)
        msg = self._protect(st, ac)
        ref = M.make_proposal_ref(st.suite, ac.to_bytes())
        st.proposals[ref] = CachedProposal(proposal, M.Sender.member(st.own_leaf), ref)
        st.sent_proposals[st.suite.hash(msg)] = ref
        self._s = st
        return msg

    def propose_add(self, key_package: bytes) -> bytes:
        """An Add proposal message (cached locally too)."""
        kp = _parse_key_package(key_package)
        validate_key_package(self._s.suite, kp, self._s.tree, self._s.context)
        return self._send_proposal(M.Proposal(M.Add(kp)))

    def propose_remove(self, leaf_index: int) -> bytes:
        if self._s.tree.leaf(leaf_index) is None:
            raise InvalidProposalError("no member at that leaf index")
        return self._send_proposal(M.Proposal(M.Remove(int(leaf_index))))

    def propose_update(self) -> bytes:
        """An Update proposal with a fresh encryption key; the private key is kept until the commit."""
        st = self._s
        s = st.suite
        priv, pub = s.generate_hpke_key_pair()
        old = st.tree.member_leaf(st.own_leaf)
        leaf = dataclasses.replace(old, encryption_key=pub, leaf_node_source=M.LeafNodeSource.update,
                                   lifetime=None, parent_hash=None, signature=b"")
        leaf.sign(s, st.signer.private_key, st.group_id, st.own_leaf)
        msg = self._send_proposal(M.Proposal(M.Update(leaf)))
        self._s.update_keys[pub] = priv  # used if another member commits our Update
        return msg

    def propose_psk(self, psk_id: bytes) -> bytes:
        if bytes(psk_id) not in self._s.psks:
            raise MissingPSKError("unknown external PSK")
        pid = M.PreSharedKeyID.external(bytes(psk_id), os.urandom(self._s.suite.nh))
        return self._send_proposal(M.Proposal(M.PreSharedKey(pid)))

    def propose_group_context_extensions(self, extensions: List[M.Extension]) -> bytes:
        return self._send_proposal(M.Proposal(M.GroupContextExtensions(list(extensions))))

    # -- commits --------------------------------------------------------------------------------------
    def add(self, key_packages: Sequence[bytes], *, force_path: bool = False) -> CommitOutput:
        props = [M.Proposal(M.Add(_parse_key_package(b))) for b in key_packages]
        if not props:
            raise ValueError("nothing to add")
        return self._commit(props, include_cached=False, force_path=force_path)

    def remove(self, leaf_indices: Sequence[int]) -> CommitOutput:
        props = [M.Proposal(M.Remove(int(i))) for i in leaf_indices]
        if not props:
            raise ValueError("nothing to remove")
        return self._commit(props, include_cached=False)

    def update(self) -> CommitOutput:
        """An empty commit with a path: fresh keys for our leaf and direct path (PCS)."""
        return self._commit([], include_cached=False, force_path=True)

    def commit(self, proposals: Sequence[M.Proposal] = (), include_cached: bool = True,
               psk_ids: Sequence[bytes] = (), extensions: Optional[List[M.Extension]] = None,
               force_path: bool = False, *, add: Sequence[bytes] = (), remove: Sequence[int] = ()
               ) -> CommitOutput:
        """Commit cached proposals (by reference) plus new ones by value: ``add`` (KeyPackage
        MLSMessages), ``remove`` (leaf indices), ``psk_ids`` (registered external PSKs), ``extensions``
        (GroupContextExtensions) and raw ``proposals``.  ``force_path``: include an UpdatePath even
        when no proposal requires one.  An empty commit is a self-update."""
        props = [M.Proposal(M.Remove(int(i))) for i in remove]
        props += [M.Proposal(M.Add(_parse_key_package(b))) for b in add]
        props += list(proposals)
        for pid in psk_ids:
            if bytes(pid) not in self._s.psks:
                raise MissingPSKError("unknown external PSK")
            props.append(M.Proposal(M.PreSharedKey(M.PreSharedKeyID.external(bytes(pid),
                                                                             os.urandom(self._s.suite.nh)))))
        if extensions is not None:
            props.append(M.Proposal(M.GroupContextExtensions(list(extensions))))
        return self._commit(props, include_cached=include_cached, force_path=force_path)

    def _commit(self, by_value: List[M.Proposal], include_cached: bool, force_path: bool = False) -> CommitOutput:
        self._require_active()
        if self._s.pending is not None:
            raise StateError("a commit is already pending; merge or clear it first")
        old = self._s
        st = old.copy()
        s = st.suite
        me = st.own_leaf
        resolved: List[ResolvedProposal] = []
        por: List[M.ProposalOrRef] = []
        if include_cached:
            for ref, c in self._select_cached(st, by_value):
                resolved.append(ResolvedProposal(c.proposal, c.sender, True))
                por.append(M.ProposalOrRef(reference=ref))
        for p in by_value:
            resolved.append(ResolvedProposal(p, M.Sender.member(me), False))
            por.append(M.ProposalOrRef(proposal=p))
        validate_proposal_list(s, resolved, st.tree, st.context, me, external=False, known_psk=st.psk_lookup,
                               check_lifetime=True, credential_validator=self._validator)
        tree = st.tree.copy()
        applied = apply_proposals(tree, resolved)
        new_ext = applied.extensions if applied.extensions is not None else list(st.context.extensions)
        new_members = {idx for idx, _ in applied.added}
        # a path is sent when required (update/remove/GCE/empty commit) or asked for; add/PSK-only
        # commits may omit it (RFC 9420 §12.4), which saves one HPKE encryption per copath node
        with_path = force_path or applied.path_required or not resolved
        path_secrets: Optional[TK.PathSecrets] = None
        update_path = None
        if with_path:
            path_secrets = TK.prepare_path(tree, me)
            old_leaf = tree.member_leaf(me)
            leaf = dataclasses.replace(old_leaf, encryption_key=path_secrets.leaf_pub,
                                       leaf_node_source=M.LeafNodeSource.commit, lifetime=None,
                                       parent_hash=path_secrets.leaf_parent_hash, signature=b"")
            leaf.sign(s, st.signer.private_key, st.group_id, me)
            tree.set_leaf(me, leaf)
        provisional = dataclasses.replace(st.context, epoch=st.context.epoch + 1, tree_hash=tree.root_tree_hash(),
                                          extensions=new_ext)
        if path_secrets is not None:
            update_path = TK.encrypt_path(tree, me, path_secrets, tree.leaf(me), provisional.to_bytes(),
                                          new_members)
        commit_secret = path_secrets.commit_secret if path_secrets is not None else bytes(s.nh)
        commit = M.Commit(por, update_path)
        wf = self._wire_format(st)
        ac = self._frame(st, M.ContentType.commit, commit, wf)
        psk_ids = applied.psks
        psk_secret = st.epoch.psk_secret([(pid, st.psk_lookup(pid)) for pid in psk_ids])
        confirmed = _confirmed(s, st.interim_transcript_hash, ac)
        new_ctx = dataclasses.replace(provisional, confirmed_transcript_hash=confirmed)
        new_epoch, joiner_secret, welcome_secret = KeySchedule(s).advance(
            st.epoch.init_secret, commit_secret, psk_secret, new_ctx.to_bytes(), tree.n_leaves)
        tag = s.mac(new_epoch.confirmation_key, confirmed)
        ac.auth.confirmation_tag = tag
        commit_msg = self._protect(st, ac)  # with the old epoch's keys

        new = _next_epoch_state(st, tree, new_ctx, new_epoch, tag, confirmed)
        privs = TK.prune_private_keys(tree, dict(st.privs))
        if path_secrets is not None:
            privs.update(path_secrets.privs)
        new.privs = privs
        new.pending = None

        group_info = self._make_group_info(new)
        welcome = None
        if applied.added:
            welcome = self._make_welcome(new, group_info, applied, path_secrets, joiner_secret, welcome_secret,
                                         psk_ids)
        gi_bytes = M.MLSMessage(M.WireFormat.group_info, group_info).to_bytes()
        # the old state keeps the (advanced) secret tree of the sending epoch
        st.pending = _Pending(commit_msg, new, welcome, gi_bytes, [i for i, _ in applied.added],
                              [member_of(i, leaf) for i, leaf in applied.removed], list(applied.updated))
        self._s = st
        return CommitOutput(commit_msg, welcome, gi_bytes)

    @staticmethod
    def _select_cached(st: _State, by_value: List[M.Proposal]) -> List[Tuple[bytes, CachedProposal]]:
        """The cached proposals that form a valid list together (RFC 9420 §12.2 preferences):
        Removes win over Updates, the most recent Update per leaf wins, duplicate Adds/PSKs are dropped,
        proposals that would be invalid now (e.g. a Remove of a blank leaf, our own Update) are skipped."""
        me = st.own_leaf
        items = list(st.proposals.items())
        removed: Set[int] = {p.body.removed for p in by_value if isinstance(p.body, M.Remove)}
        for _, c in items:
            b = c.proposal.body
            if isinstance(b, M.Remove) and b.removed != me and st.tree.leaf(b.removed) is not None:
                removed.add(b.removed)
        chosen: List[Tuple[bytes, CachedProposal]] = []
        seen_remove: Set[int] = {p.body.removed for p in by_value if isinstance(p.body, M.Remove)}
        last_update: Dict[int, bytes] = {}
        for ref, c in items:
            b = c.proposal.body
            if isinstance(b, M.Update) and c.sender.sender_type == M.SenderType.member:
                last_update[c.sender.index] = ref
        sig_keys: Set[bytes] = set()
        psk_ids: Set[bytes] = set()
        has_gce = any(isinstance(p.body, M.GroupContextExtensions) for p in by_value)
        for p in by_value:
            if isinstance(p.body, M.Add):
                sig_keys.add(bytes(p.body.key_package.leaf_node.signature_key))
            if isinstance(p.body, M.PreSharedKey):
                psk_ids.add(p.body.psk.to_bytes())
        for ref, c in items:
            b = c.proposal.body
            if isinstance(b, M.Remove):
                if b.removed == me or b.removed in seen_remove or st.tree.leaf(b.removed) is None:
                    continue
                seen_remove.add(b.removed)
            elif isinstance(b, M.Update):
                idx = c.sender.index
                if idx == me or idx in removed or last_update.get(idx) != ref:
                    continue
            elif isinstance(b, M.Add):
                sk = bytes(b.key_package.leaf_node.signature_key)
                if sk in sig_keys:
                    continue
                sig_keys.add(sk)
            elif isinstance(b, M.PreSharedKey):
                k = b.psk.to_bytes()
                if k in psk_ids or st.psk_lookup(b.psk) is None:
                    continue
                psk_ids.add(k)
            elif isinstance(b, M.GroupContextExtensions):
                if has_gce:
                    continue
                has_gce = True
            elif isinstance(b, (M.ReInit, M.ExternalInit)):
                continue
            chosen.append((ref, c))
        return chosen

    def merge_pending_commit(self) -> ProcessResult:
        """Apply our pending commit (after the delivery service accepted it)."""
        p = self._s.pending
        if p is None:
            raise StateError("no pending commit")
        new, result = self._pending_outcome(p)
        self._s = new
        return result

    @staticmethod
    def _pending_outcome(p: _Pending) -> Tuple[_State, ProcessResult]:
        new = p.state
        added = [member_of(i, new.tree.member_leaf(i)) for i in p.added if new.tree.leaf(i) is not None]
        return new, ProcessResult("commit", new.context.epoch, sender=new.own_leaf, sender_type="member",
                                  added=added, removed=list(p.removed), updated=list(p.updated), own_commit=True)

    def clear_pending_commit(self) -> None:
        """Drop the pending commit (the delivery service rejected it)."""
        if self._s.pending is not None:
            st = self._s.copy()  # a new state object: messages staged before are void
            st.pending = None
            self._s = st

    def _make_group_info(self, st: _State, external_pub: bool = True) -> M.GroupInfo:
        exts = [M.Extension(M.ExtensionType.ratchet_tree, st.tree.to_bytes())]
        if external_pub:
            _, pub = st.suite.derive_key_pair(st.epoch.external_secret)
            exts.append(M.Extension(M.ExtensionType.external_pub, M.ExternalPub(pub).to_bytes()))
        gi = M.GroupInfo(st.context, exts, st.confirmation_tag, st.own_leaf, b"")
        gi.sign(st.signer.private_key)
        return gi

    def group_info(self, *, with_ratchet_tree: bool = True, external_pub: bool = True) -> bytes:
        """A signed GroupInfo of the current epoch (MLSMessage), e.g. for external joins."""
        gi = self._make_group_info(self._s, external_pub)
        if not with_ratchet_tree:
            gi.extensions = [e for e in gi.extensions if e.extension_type != M.ExtensionType.ratchet_tree]
            gi.sign(self._s.signer.private_key)
        return M.MLSMessage(M.WireFormat.group_info, gi).to_bytes()

    def _make_welcome(self, new: _State, gi: M.GroupInfo, applied: AppliedProposals,
                      path: Optional[TK.PathSecrets],
                      joiner_secret: bytes, welcome_secret: bytes, psk_ids: List[M.PreSharedKeyID]) -> bytes:
        s = new.suite
        key = s.expand_with_label(welcome_secret, "key", b"", s.nk)
        nonce = s.expand_with_label(welcome_secret, "nonce", b"", s.nn)
        enc_gi = s.aead_encrypt(key, nonce, b"", gi.to_bytes())
        secrets = []
        me_node = 2 * new.own_leaf
        for idx, kp in applied.added:
            lca = tm.common_ancestor(me_node, 2 * idx)
            ps = None
            if path is not None and lca in path.nodes:
                ps = M.PathSecret(path.secrets[path.nodes.index(lca)])
            gs = M.GroupSecrets(joiner_secret, ps, list(psk_ids))
            kem_out, ct = s.encrypt_with_label(kp.init_key, "Welcome", enc_gi, gs.to_bytes())
            secrets.append(M.EncryptedGroupSecrets(kp.ref(s), M.HPKECiphertext(kem_out, ct)))
        w = M.Welcome(int(s.cipher_suite), secrets, enc_gi)
        return M.MLSMessage(M.WireFormat.welcome, w).to_bytes()
