"""Processing received messages (RFC 9420 §6, §12.1, §12.4.2): every message is staged on a copy
of the state (a :class:`StagedMessage`), inspected, then merged; nothing changes before the merge.
Application messages are encrypted here too."""

from __future__ import annotations

import dataclasses
import hmac
from typing import List, Optional, Tuple

from .. import messages as M
from .. import treekem as TK
from ..epoch import KeySchedule
from ..errors import (
    ConfirmationTagError,
    InvalidCommitError,
    InvalidMessageError,
    InvalidProposalError,
    MissingProposalError,
    MissingPSKError,
    MLSError,
    StateError,
    WrongEpochError,
    WrongGroupError,
)
from ..member import Member, check_successor, member_of
from ..proposals import (
    CachedProposal,
    ResolvedProposal,
    apply_proposals,
    validate_key_package,
    validate_leaf_node,
    validate_proposal_list,
)
from .base import GroupBase
from .commit import GroupCommits
from .state import ProcessResult, _confirmed, _next_epoch_state, _State

__all__ = ["GroupProcessing", "StagedMessage"]


class StagedMessage:
    """A processed but not yet applied message (RFC 9420 §12.4.2; OpenMLS's ``StagedCommit``).

    :meth:`Group.stage` validates a message completely and returns this object; the group is not
    changed until :meth:`Group.merge_staged` applies it. Inspect what it would do first (``kind``,
    ``epoch`` (the new epoch for a commit), ``sender``, ``added``, ``removed``, ``updated``, ...) and
    either merge it or :meth:`discard` it (dropping the object has the same effect). A staged
    message can be merged once, and only into the state it was staged from: any other change of
    the group in between makes :meth:`Group.merge_staged` raise ``StateError``.
    """

    __slots__ = ("_group", "_base", "_state", "_result", "_open")

    def __init__(self, group: "GroupBase", base: "_State", state: "_State", result: ProcessResult) -> None:
        self._group = group
        self._base = base
        self._state = state
        self._result = result
        self._open = True

    @property
    def result(self) -> ProcessResult:
        """The full description of the message (what :meth:`Group.process` returns)."""
        return self._result

    @property
    def kind(self) -> str:
        """``"commit"``, ``"proposal"`` or ``"application"``."""
        return self._result.kind

    @property
    def is_commit(self) -> bool:
        return self._result.kind == "commit"

    @property
    def epoch(self) -> int:
        """The epoch the group is in after merging (the new epoch for a commit)."""
        return self._result.epoch

    @property
    def sender(self) -> Optional[int]:
        """The sender's leaf index (None for an external sender or joiner)."""
        return self._result.sender

    @property
    def sender_type(self) -> Optional[str]:
        return self._result.sender_type

    @property
    def added(self) -> List[Member]:
        return list(self._result.added)

    @property
    def removed(self) -> List[Member]:
        return list(self._result.removed)

    @property
    def updated(self) -> List[int]:
        return list(self._result.updated)

    @property
    def removes_self(self) -> bool:
        """True if merging this commit removes us from the group."""
        return self._result.removed_self

    @property
    def proposal_type(self) -> Optional[str]:
        return self._result.proposal_type

    @property
    def is_open(self) -> bool:
        """False once merged or discarded."""
        return self._open

    def discard(self) -> None:
        """Give up this staged message; the group keeps its current state."""
        self._open = False

    def __repr__(self) -> str:
        return f"StagedMessage({self._result!r}, open={self._open})"







class GroupProcessing(GroupCommits):
    """Processing received messages (RFC 9420 §6, §12.1, §12.4.2): stage, inspect, merge."""

    # -- processing -----------------------------------------------------------------------------------
    def process(self, message: bytes) -> ProcessResult:
        """Process a handshake or application message and apply it; returns what changed.

        Same as ``merge_staged(stage(message))``. Raises an ``MLSError`` subclass for anything
        invalid and then leaves the state untouched.
        """
        return self.merge_staged(self.stage(message))

    def merge_staged(self, staged: StagedMessage) -> ProcessResult:
        """Apply a message staged by :meth:`stage` (raises ``StateError`` if it is not this group's,
        was already merged or discarded, or the group changed since it was staged)."""
        if not isinstance(staged, StagedMessage) or staged._group is not self:
            raise StateError("this staged message belongs to another group object")
        if not staged._open:
            raise StateError("this staged message was already merged or discarded")
        if staged._base is not self._s:
            raise StateError("the group changed since this message was staged")
        staged._open = False
        self._s = staged._state
        return staged._result

    def stage(self, message: bytes) -> StagedMessage:
        """Validate a handshake or application message without applying it.

        Returns a :class:`StagedMessage` to inspect and then :meth:`merge_staged` or discard;
        the group state is unchanged until the merge. Raises an ``MLSError`` subclass for
        anything invalid.
        """
        base = self._s
        new, result = self._stage(message)
        return StagedMessage(self, base, new, result)

    def _stage(self, message: bytes) -> Tuple[_State, ProcessResult]:
        try:
            msg = M.MLSMessage.from_bytes(bytes(message))
        except MLSError:
            raise
        if msg.wire_format not in (M.WireFormat.public_message, M.WireFormat.private_message):
            raise InvalidMessageError("not a Public/PrivateMessage")
        pending = self._s.pending
        if pending is not None and hmac.compare_digest(bytes(message), pending.commit_message):
            return self._pending_outcome(pending)
        own_ref = self._s.sent_proposals.get(self._s.suite.hash(bytes(message)))
        if own_ref is not None and own_ref in self._s.proposals:
            # our own proposal echoed by the delivery service: already cached when sent
            c = self._s.proposals[own_ref]
            return self._s, ProcessResult("proposal", self.epoch, sender=self._s.own_leaf, sender_type="member",
                                          proposal_ref=own_ref, proposal_type=c.proposal.proposal_type.name)
        st = self._s.copy()
        body = msg.body
        if isinstance(body, M.PublicMessage):
            gid, ep = body.content.group_id, body.content.epoch
        elif isinstance(body, M.PrivateMessage):
            gid, ep = body.group_id, body.epoch
        else:  # pragma: no cover - the wire format was checked above
            raise InvalidMessageError("not a Public/PrivateMessage")
        if not hmac.compare_digest(bytes(gid), st.group_id):
            raise WrongGroupError("message for another group")
        if ep != st.context.epoch:
            raise WrongEpochError(f"message for epoch {ep}, group is at {st.context.epoch}")
        if not st.active:
            raise StateError("this member is no longer in the group")
        ac = st.epoch.unprotect(msg, st.context_bytes(), st.tree, st.context)
        fc = ac.content
        sender = fc.sender
        if sender.sender_type == M.SenderType.member and sender.index == st.own_leaf \
                and msg.wire_format == M.WireFormat.private_message:
            # our own private messages are never decryptable twice; treat as replay
            pass
        result: ProcessResult
        if fc.content_type == M.ContentType.application:
            if msg.wire_format != M.WireFormat.private_message:
                raise InvalidMessageError("application data must be a PrivateMessage")
            if not isinstance(fc.content, bytes):  # pragma: no cover - decoded by content type
                raise InvalidMessageError("application content is not bytes")
            result = ProcessResult("application", st.context.epoch, sender=sender.index, sender_type="member",
                                   application_data=bytes(fc.content))
            return st, result
        if fc.content_type == M.ContentType.proposal:
            result = self._process_proposal(st, ac)
            return st, result
        new, result = self._process_commit(st, ac)
        new.pending = None  # another member's commit won: our pending commit is void
        return new, result

    def _process_proposal(self, st: _State, ac: M.AuthenticatedContent) -> ProcessResult:
        prop: M.Proposal = ac.content.content  # type: ignore[assignment]
        sender = ac.content.sender
        body = prop.body
        s = st.suite
        if sender.sender_type == M.SenderType.member:
            if isinstance(body, M.ExternalInit):
                raise InvalidProposalError("ExternalInit outside an external commit")
            if isinstance(body, M.Update):
                old = st.tree.leaf(sender.index)
                validate_leaf_node(s, body.leaf_node, st.tree, st.context, source=M.LeafNodeSource.update,
                                   leaf_index=sender.index, replacing=sender.index)
                if old is not None:
                    check_successor(sender.index, old, body.leaf_node, self._validator)
                if old is None or bytes(body.leaf_node.encryption_key) == bytes(old.encryption_key):
                    raise InvalidProposalError("Update does not change the encryption key")
            elif isinstance(body, M.Add):
                validate_key_package(s, body.key_package, st.tree, st.context, check_lifetime=False)
            elif isinstance(body, M.Remove):
                if st.tree.leaf(body.removed) is None:
                    raise InvalidProposalError("Remove of a blank leaf")
            elif isinstance(body, M.PreSharedKey):
                if len(body.psk.psk_nonce) != s.nh:
                    raise InvalidProposalError("psk_nonce has the wrong length")
        elif sender.sender_type == M.SenderType.new_member_proposal:
            if not isinstance(body, M.Add):
                raise InvalidProposalError("new_member_proposal must be an Add")
            validate_key_package(s, body.key_package, st.tree, st.context, check_lifetime=False)
        elif sender.sender_type == M.SenderType.external:
            if isinstance(body, (M.Update, M.ExternalInit)):
                raise InvalidProposalError("proposal type not allowed from an external sender")
            if isinstance(body, M.Add):
                validate_key_package(s, body.key_package, st.tree, st.context, check_lifetime=False)
            if isinstance(body, M.Remove) and st.tree.leaf(body.removed) is None:
                raise InvalidProposalError("Remove of a blank leaf")
        else:
            raise InvalidProposalError("invalid proposal sender")
        ref = M.make_proposal_ref(s, ac.to_bytes())
        st.proposals[ref] = CachedProposal(prop, sender, ref)
        return ProcessResult("proposal", st.context.epoch, sender=sender.index,
                             sender_type=sender.sender_type.name, proposal_ref=ref,
                             proposal_type=prop.proposal_type.name)

    def _process_commit(self, st: _State, ac: M.AuthenticatedContent) -> Tuple[_State, ProcessResult]:
        s = st.suite
        fc = ac.content
        commit: M.Commit = fc.content  # type: ignore[assignment]
        sender = fc.sender
        external = sender.sender_type == M.SenderType.new_member_commit
        if sender.sender_type == M.SenderType.member:
            committer: Optional[int] = sender.index
            if committer == st.own_leaf:
                raise InvalidCommitError("cannot process our own commit; merge the pending commit instead")
        elif external:
            committer = None
        else:
            raise InvalidCommitError("commit from a non-member sender")
        resolved: List[ResolvedProposal] = []
        for por in commit.proposals:
            if por.proposal is not None:
                resolved.append(ResolvedProposal(por.proposal, M.Sender.member(committer) if committer is not None
                                                 else sender, False))
            else:
                c = st.proposals.get(bytes(por.reference or b""))
                if c is None:
                    raise MissingProposalError("commit references an unknown proposal")
                resolved.append(ResolvedProposal(c.proposal, c.sender, True))
        if committer is not None:
            for rp in resolved:
                if not rp.by_reference and isinstance(rp.proposal.body, M.ExternalInit):
                    raise InvalidProposalError("ExternalInit in a regular commit")
        validate_proposal_list(s, resolved, st.tree, st.context, committer, external=external,
                               known_psk=st.psk_lookup, credential_validator=self._validator)
        old_tree = st.tree
        tree = old_tree.copy()
        applied = apply_proposals(tree, resolved)
        if (applied.path_required or not resolved) and commit.path is None:
            raise InvalidCommitError("commit without the required path")
        new_ext = applied.extensions if applied.extensions is not None else list(st.context.extensions)
        new_ctx_base = dataclasses.replace(st.context, extensions=new_ext)
        new_members = {idx for idx, _ in applied.added}
        removed_self = any(idx == st.own_leaf for idx, _ in applied.removed)
        commit_secret = bytes(s.nh)
        new_privs: TK.PrivateKeys = {}
        if external:
            # the joiner takes the leftmost blank leaf of the tree after the proposals
            assert commit.path is not None
            if applied.removed:
                # resync: the new leaf must match the identity of the removed one
                old_leaf = applied.removed[0][1]
                if bytes(old_leaf.credential.identity) != bytes(commit.path.leaf_node.credential.identity):
                    raise InvalidCommitError("resync commit changes the member's identity")
            # (the FramedContent signature was verified against this leaf's key by framing)
            committer = tree.add_leaf(commit.path.leaf_node)
        if commit.path is not None:
            path = commit.path
            assert committer is not None
            replacing = committer
            validate_leaf_node(s, path.leaf_node, tree, new_ctx_base, source=M.LeafNodeSource.commit,
                               leaf_index=committer, replacing=replacing)
            cur = old_tree.leaf(committer) if not external else None
            if cur is not None:
                check_successor(committer, cur, path.leaf_node, self._validator)
            if cur is not None and bytes(cur.encryption_key) == bytes(path.leaf_node.encryption_key):
                raise InvalidCommitError("commit leaf keeps the old encryption key")
            # none of the new public keys may already appear in the tree
            existing = {bytes(n.encryption_key) for x, n in enumerate(tree.nodes)
                        if n is not None and x != 2 * committer}
            for upn in path.nodes:
                if bytes(upn.encryption_key) in existing:
                    raise InvalidCommitError("UpdatePath reuses a public key of the tree")
            TK.merge_path(tree, committer, path)
            provisional = dataclasses.replace(new_ctx_base, epoch=st.context.epoch + 1,
                                              tree_hash=tree.root_tree_hash())
            if not removed_self:
                old_privs = dict(st.privs)
                # own pending Update proposals: their private keys
                pub = _own_update_key(resolved, st.own_leaf)
                if pub is not None:
                    upd_priv = st.update_keys.get(pub)
                    if upd_priv is None:
                        raise InvalidCommitError("commit contains an Update of ours we cannot use")
                    old_privs[2 * st.own_leaf] = (upd_priv, pub)
                commit_secret, new_privs, _ = TK.decrypt_path(tree, committer, st.own_leaf, path, old_privs,
                                                              provisional.to_bytes(), new_members)
        else:
            provisional = dataclasses.replace(new_ctx_base, epoch=st.context.epoch + 1,
                                              tree_hash=tree.root_tree_hash())
        psk_pairs = []
        for pid in applied.psks:
            val = st.psk_lookup(pid)
            if val is None:
                raise MissingPSKError("commit references an unknown PSK")
            psk_pairs.append((pid, val))
        psk_secret = st.epoch.psk_secret(psk_pairs)
        confirmed = _confirmed(s, st.interim_transcript_hash, ac)
        new_ctx = dataclasses.replace(provisional, confirmed_transcript_hash=confirmed)
        if applied.external_init is not None:
            ext_priv, _ = s.derive_key_pair(st.epoch.external_secret)
            try:
                hctx = s.hpke.setup_base_r(bytes(applied.external_init.kem_output), ext_priv, b"")
            except MLSError:
                raise
            except Exception:  # noqa: BLE001
                raise InvalidCommitError("invalid ExternalInit kem_output") from None
            init_secret = hctx.export(b"MLS 1.0 external init secret", s.nh)
        else:
            init_secret = st.epoch.init_secret
        removed_members = [member_of(i, leaf) for i, leaf in applied.removed]
        added_members = [member_of(i, tree.member_leaf(i)) for i, _ in applied.added if tree.leaf(i) is not None]
        if external and committer is not None:
            added_members.append(member_of(committer, tree.member_leaf(committer)))
        if removed_self:
            # we cannot derive the new epoch; verify nothing more and become inactive
            new = st.copy()
            new.active = False
            new.proposals = {}
            new.update_keys = {}
            new.sent_proposals = {}
            return new, ProcessResult("commit", st.context.epoch + 1, sender=committer,
                                      sender_type=sender.sender_type.name, added=added_members,
                                      removed=removed_members, updated=list(applied.updated),
                                      removed_self=True)
        new_epoch, _, _ = KeySchedule(s).advance(init_secret, commit_secret, psk_secret, new_ctx.to_bytes(),
                                                 tree.n_leaves)
        tag = s.mac(new_epoch.confirmation_key, confirmed)
        if ac.auth.confirmation_tag is None or not hmac.compare_digest(tag, bytes(ac.auth.confirmation_tag)):
            raise ConfirmationTagError("confirmation tag mismatch")
        new = _next_epoch_state(st, tree, new_ctx, new_epoch, tag, confirmed)
        privs = dict(st.privs)
        pub = _own_update_key(resolved, st.own_leaf)
        if pub is not None:
            upd_priv = st.update_keys.get(pub)
            if upd_priv is not None:
                privs[2 * st.own_leaf] = (upd_priv, pub)
        privs = TK.prune_private_keys(tree, privs)
        privs.update(new_privs)
        new.privs = privs
        return new, ProcessResult("commit", new_ctx.epoch, sender=committer, sender_type=sender.sender_type.name,
                                  added=added_members, removed=removed_members, updated=list(applied.updated),
                                  reinit=applied.reinit is not None)

    # -- application messages -----------------------------------------------------------------------
    def encrypt_application(self, data: bytes, authenticated_data: bytes = b"") -> bytes:
        """An application message (PrivateMessage) in the current epoch."""
        self._require_active()
        if self._s.proposals:
            raise StateError("proposals are pending: commit before sending application data")
        st = self._s.copy()
        ac = self._frame(st, M.ContentType.application, bytes(data), M.WireFormat.private_message,
                         authenticated_data)
        msg = self._protect(st, ac)
        self._s = st
        return msg


def _own_update_key(resolved: List[ResolvedProposal], own_leaf: int) -> Optional[bytes]:
    """The new encryption key of our own Update proposal among ``resolved`` (None if there is none)."""
    for rp in resolved:
        body = rp.proposal.body
        if isinstance(body, M.Update) and rp.sender.sender_type == M.SenderType.member \
                and rp.sender.index == own_leaf:
            return bytes(body.leaf_node.encryption_key)
    return None
