"""The MLS group state machine (RFC 9420 §8, §11, §12) -- the public entry point of ``orange_fast.mls``.

``Group`` holds one member's view of a group. Every incoming message is processed on a copy of the
state (``_State.copy()``); the copy replaces the live state only when the message was fully
validated, so a malformed or hostile message raises an ``MLSError`` subclass and changes nothing.

Commits created locally (``add``/``remove``/``update``/``commit``) stay pending until
``merge_pending_commit()`` (after the delivery service accepted them) or ``clear_pending_commit()``.
"""

from __future__ import annotations

import dataclasses
import hmac
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, Union

from . import messages as M
from . import treemath as tm
from . import transcript
from . import treekem as TK
from .codec import Reader, Writer
from .epoch import EpochState, KeySchedule
from .errors import (
    DecodeError,
    DecryptionError,
    InvalidCommitError,
    InvalidGroupInfoError,
    InvalidMessageError,
    InvalidProposalError,
    InvalidSignatureError,
    InvalidTreeError,
    InvalidWelcomeError,
    MissingProposalError,
    MissingPSKError,
    MLSError,
    StateError,
    UnsupportedError,
    WrongEpochError,
    WrongGroupError,
    ConfirmationTagError,
)
from .proposals import (
    AppliedProposals,
    CachedProposal,
    ResolvedProposal,
    apply_proposals,
    credential_summary,
    validate_key_package,
    validate_leaf_node,
    validate_proposal_list,
)
from .member import CredentialValidator, Member, check_successor, member_of
from .suite import CipherSuite, SignatureKeyPair, Suite, get_suite
from .tree import RatchetTree

__all__ = ["Group", "Member", "CommitOutput", "ProcessResult", "ProposalMessage", "CredentialValidator",
           "StagedMessage"]

_STATE_VERSION = 1
_RESUMPTION_KEEP = 8


@dataclass
class CommitOutput:
    """Messages produced by a local commit (all ``MLSMessage`` bytes)."""

    commit: bytes
    welcome: Optional[bytes]
    group_info: Optional[bytes]


@dataclass
class ProcessResult:
    """What a processed message changed."""

    kind: str  # "commit", "proposal", "application"
    epoch: int
    sender: Optional[int] = None
    sender_type: Optional[str] = None
    added: List[Member] = field(default_factory=list)
    removed: List[Member] = field(default_factory=list)
    updated: List[int] = field(default_factory=list)
    application_data: Optional[bytes] = None
    proposal_ref: Optional[bytes] = None
    proposal_type: Optional[str] = None
    removed_self: bool = False
    reinit: bool = False
    own_commit: bool = False

    def __repr__(self) -> str:
        return (f"ProcessResult(kind={self.kind!r}, epoch={self.epoch}, sender={self.sender}, "
                f"added={[m.leaf_index for m in self.added]}, removed={[m.leaf_index for m in self.removed]})")


ProposalMessage = bytes


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

    def __init__(self, group: "Group", base: "_State", state: "_State", result: ProcessResult) -> None:
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




_member_of = member_of


# ---------------------------------------------------------------------------------------------------------
# state
@dataclass
class _Pending:
    commit_message: bytes
    state: "_State"
    welcome: Optional[bytes]
    group_info: Optional[bytes]
    added: List[int] = field(default_factory=list)
    removed: List[Member] = field(default_factory=list)
    updated: List[int] = field(default_factory=list)


class _State:
    """Everything a member stores for its group (copied before processing a message)."""

    def __init__(self) -> None:
        self.suite: Suite = None  # type: ignore[assignment]
        self.context: M.GroupContext = None  # type: ignore[assignment]
        self.tree: RatchetTree = None  # type: ignore[assignment]
        self.own_leaf: int = 0
        self.signer: SignatureKeyPair = None  # type: ignore[assignment]
        self.privs: TK.PrivateKeys = {}
        self.update_keys: Dict[bytes, bytes] = {}  # public -> private key of our pending Update proposals
        self.sent_proposals: Dict[bytes, bytes] = {}  # Hash(message) -> ProposalRef of proposals we sent
        self.epoch: EpochState = None  # type: ignore[assignment]
        self.interim_transcript_hash: bytes = b""
        self.confirmation_tag: bytes = b""
        self.proposals: Dict[bytes, CachedProposal] = {}
        self.psks: Dict[bytes, bytes] = {}
        self.resumption: Dict[int, bytes] = {}
        self.private_handshake: bool = True
        self.active: bool = True
        self.pending: Optional[_Pending] = None

    def copy(self) -> "_State":
        s = _State.__new__(_State)
        s.suite = self.suite
        s.context = self.context
        s.tree = self.tree.copy()
        s.own_leaf = self.own_leaf
        s.signer = self.signer
        s.privs = dict(self.privs)
        s.update_keys = dict(self.update_keys)
        s.sent_proposals = dict(self.sent_proposals)
        s.epoch = self.epoch.copy()
        s.interim_transcript_hash = self.interim_transcript_hash
        s.confirmation_tag = self.confirmation_tag
        s.proposals = dict(self.proposals)
        s.psks = dict(self.psks)
        s.resumption = dict(self.resumption)
        s.private_handshake = self.private_handshake
        s.active = self.active
        s.pending = self.pending
        return s

    # -- persistence --------------------------------------------------------------------------------
    def encode(self, w: Writer, with_pending: bool = True) -> None:
        w.u8(_STATE_VERSION)
        w.u16(int(self.suite.cipher_suite))
        w.opaque(self.context.to_bytes())
        w.opaque(self.tree.to_bytes())
        w.u32(self.own_leaf)
        w.opaque(self.signer.to_bytes())
        items = sorted(self.privs.items())
        w.vector(items, lambda ww, it: ww.u32(it[0]).opaque(it[1][0]).opaque(it[1][1]))
        w.vector(sorted(self.update_keys.items()), lambda ww, it: ww.opaque(it[0]).opaque(it[1]))
        w.vector(sorted(self.sent_proposals.items()), lambda ww, it: ww.opaque(it[0]).opaque(it[1]))
        w.opaque(self.epoch.to_bytes())
        w.opaque(self.interim_transcript_hash)
        w.opaque(self.confirmation_tag)
        cached = sorted(self.proposals.values(), key=lambda c: c.ref)
        w.vector(cached, lambda ww, c: (ww.opaque(c.ref), c.sender.encode(ww), c.proposal.encode(ww)))
        w.vector(sorted(self.psks.items()), lambda ww, it: ww.opaque(it[0]).opaque(it[1]))
        w.vector(sorted(self.resumption.items()), lambda ww, it: ww.u64(it[0]).opaque(it[1]))
        w.u8(1 if self.private_handshake else 0)
        w.u8(1 if self.active else 0)
        if with_pending and self.pending is not None:
            w.u8(1)
            w.opaque(self.pending.commit_message)
            sub = Writer()
            self.pending.state.encode(sub, with_pending=False)
            w.opaque(sub.getvalue())
            w.optional(self.pending.welcome, Writer.opaque)
            w.optional(self.pending.group_info, Writer.opaque)
            w.vector(self.pending.added, Writer.u32)
            w.vector(self.pending.removed, lambda ww, m: ww.u32(m.leaf_index).opaque(m.identity)
                     .opaque(m.signature_key).opaque(m.encryption_key))
            w.vector(self.pending.updated, Writer.u32)
        else:
            w.u8(0)

    @classmethod
    def decode(cls, r: Reader) -> "_State":
        s = cls()
        if r.u8() != _STATE_VERSION:
            raise DecodeError("unknown group state version")
        s.suite = get_suite(r.u16())
        s.context = M.GroupContext.from_bytes(r.opaque())
        s.tree = RatchetTree.from_bytes(s.suite, r.opaque())
        s.own_leaf = r.u32()
        s.signer = SignatureKeyPair.from_bytes(r.opaque())
        s.privs = {}
        for node, priv, pub in r.vector(lambda rr: (rr.u32(), rr.opaque(), rr.opaque())):
            s.privs[node] = (priv, pub)
        s.update_keys = dict(r.vector(lambda rr: (rr.opaque(), rr.opaque())))
        s.sent_proposals = dict(r.vector(lambda rr: (rr.opaque(), rr.opaque())))
        s.epoch = EpochState.from_bytes(s.suite, r.opaque())
        s.interim_transcript_hash = r.opaque()
        s.confirmation_tag = r.opaque()
        for ref, sender, prop in r.vector(lambda rr: (rr.opaque(), M.Sender.decode(rr), M.Proposal.decode(rr))):
            s.proposals[ref] = CachedProposal(prop, sender, ref)
        s.psks = dict(r.vector(lambda rr: (rr.opaque(), rr.opaque())))
        s.resumption = dict(r.vector(lambda rr: (rr.u64(), rr.opaque())))
        s.private_handshake = bool(r.u8())
        s.active = bool(r.u8())
        if r.u8():
            msg = r.opaque()
            sub = Reader(r.opaque())
            st = cls.decode(sub)
            sub.finish()
            welcome = r.optional(Reader.opaque)
            gi = r.optional(Reader.opaque)
            added = r.vector(Reader.u32)
            removed = r.vector(lambda rr: Member(rr.u32(), rr.opaque(), rr.opaque(), rr.opaque()))
            updated = r.vector(Reader.u32)
            s.pending = _Pending(msg, st, welcome, gi, added, removed, updated)
        return s

    # -- helpers ------------------------------------------------------------------------------------
    @property
    def group_id(self) -> bytes:
        return self.context.group_id

    def context_bytes(self) -> bytes:
        return self.context.to_bytes()

    def psk_lookup(self, pid: M.PreSharedKeyID) -> Optional[bytes]:
        if pid.psktype == M.PSKType.external:
            return self.psks.get(bytes(pid.psk_id))
        if pid.usage != M.ResumptionPSKUsage.application or bytes(pid.psk_group_id) != self.group_id:
            return None
        if pid.psk_epoch == self.context.epoch:
            return self.epoch.resumption_psk
        return self.resumption.get(pid.psk_epoch)


# ---------------------------------------------------------------------------------------------------------
class Group:
    """One member's state of an MLS group."""

    def __init__(self, state: _State, credential_validator: Optional[CredentialValidator] = None) -> None:
        self._s = state
        self._validator = credential_validator

    def set_credential_validator(self, validator: Optional[CredentialValidator]) -> None:
        """Install the application's credential-succession rule (None: the strict default).

        A member's replacement leaf (in its Update proposal or its commit's UpdatePath) must keep
        the credential identity and the signature key, unless ``validator(old, new)`` returns
        True for that change (RFC 9420 §5.3.1). The validator is not part of :meth:`to_bytes`;
        pass it again to :meth:`from_bytes`."""
        self._validator = validator

    @property
    def credential_validator(self) -> Optional[CredentialValidator]:
        """The credential-succession rule in force (None: same identity and signature key)."""
        return self._validator

    # -- creation -------------------------------------------------------------------------------------
    @classmethod
    def create(cls, suite: "int | CipherSuite", identity: bytes, signer: SignatureKeyPair,
               group_id: Optional[bytes] = None, *, extensions: Optional[List[M.Extension]] = None,
               private_handshake: bool = True,
               capabilities: Optional[M.Capabilities] = None,
               credential_validator: Optional[CredentialValidator] = None) -> "Group":
        """A new one-member group at epoch 0 (RFC 9420 §11)."""
        s = get_suite(suite)
        if signer.suite != s.cipher_suite:
            raise UnsupportedError("signer belongs to another cipher suite")
        if group_id is None:
            group_id = os.urandom(16)
        enc_priv, enc_pub = s.generate_hpke_key_pair()
        leaf = M.LeafNode(
            encryption_key=enc_pub,
            signature_key=signer.public_key,
            credential=M.Credential.basic(bytes(identity)),
            capabilities=capabilities or M.default_capabilities(s.cipher_suite),
            leaf_node_source=M.LeafNodeSource.key_package,
            lifetime=M.default_lifetime(),
        )
        leaf.sign(s, signer.private_key)
        st = _State()
        st.suite = s
        st.tree = RatchetTree(s, [leaf])
        st.own_leaf = 0
        st.signer = signer
        st.privs = {0: (enc_priv, enc_pub)}
        st.context = M.GroupContext(M.ProtocolVersion.mls10, int(s.cipher_suite), bytes(group_id), 0,
                                    st.tree.root_tree_hash(), b"", list(extensions or []))
        init_secret = os.urandom(s.nh)
        ks = KeySchedule(s)
        st.epoch, _joiner, _welcome = ks.advance(init_secret, bytes(s.nh), bytes(s.nh), st.context_bytes(),
                                                 st.tree.n_leaves)
        st.confirmation_tag = s.mac(st.epoch.confirmation_key, b"")
        st.interim_transcript_hash = _interim(s, b"", st.confirmation_tag)
        st.private_handshake = private_handshake
        return cls(st, credential_validator)

    # -- read-only properties ---------------------------------------------------------------------
    @property
    def cipher_suite(self) -> CipherSuite:
        return self._s.suite.cipher_suite

    @property
    def group_id(self) -> bytes:
        return self._s.group_id

    @property
    def epoch(self) -> int:
        return self._s.context.epoch

    @property
    def epoch_authenticator(self) -> bytes:
        return self._s.epoch.epoch_authenticator

    @property
    def own_leaf_index(self) -> int:
        return self._s.own_leaf

    @property
    def is_active(self) -> bool:
        """False once this member was removed from the group."""
        return self._s.active

    @property
    def members(self) -> List[Member]:
        return [_member_of(i, leaf) for i, leaf in self._s.tree.leaves()]

    def find_member(self, identity: bytes) -> Optional[Member]:
        """The member whose basic credential identity is ``identity`` (None if absent)."""
        for i, leaf in self._s.tree.leaves():
            if bytes(leaf.credential.identity) == bytes(identity):
                return _member_of(i, leaf)
        return None

    @property
    def group_context(self) -> M.GroupContext:
        return self._s.context

    @property
    def tree_hash(self) -> bytes:
        return self._s.context.tree_hash

    @property
    def has_pending_commit(self) -> bool:
        return self._s.pending is not None

    @property
    def pending_proposals(self) -> List[bytes]:
        """References of the proposals cached in this epoch."""
        return list(self._s.proposals)

    def ratchet_tree_bytes(self) -> bytes:
        """``optional<Node> ratchet_tree<V>`` of the current tree (for out-of-band distribution)."""
        return self._s.tree.to_bytes()

    def export_secret(self, label: bytes, context: bytes, length: int) -> bytes:
        """MLS-Exporter(label, context, length) of the current epoch."""
        if not 0 < length <= 0xFFFF:
            raise ValueError("length must be in 1..65535")
        return self._s.epoch.export(label, context, length)

    def add_external_psk(self, psk_id: bytes, psk: bytes) -> None:
        """Register an external PSK that commits/welcomes of this group may reference."""
        st = self._s.copy()
        st.psks[bytes(psk_id)] = bytes(psk)
        self._s = st

    def set_private_handshake(self, enabled: bool) -> None:
        """Send handshake messages as PrivateMessage (default) or PublicMessage."""
        st = self._s.copy()
        st.private_handshake = bool(enabled)
        self._s = st

    # -- persistence --------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        w = Writer()
        self._s.encode(w)
        return w.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, *, credential_validator: Optional[CredentialValidator] = None) -> "Group":
        r = Reader(bytes(data))
        try:
            st = _State.decode(r)
            r.finish()
            if not hmac.compare_digest(st.tree.root_tree_hash(), bytes(st.context.tree_hash)):
                raise DecodeError("group state: ratchet tree does not match the group context")
        except MLSError:
            raise
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise DecodeError(f"malformed group state: {type(exc).__name__}") from None
        return cls(st, credential_validator)

    def __repr__(self) -> str:
        return (f"Group(suite={self.cipher_suite.name}, epoch={self.epoch}, members={len(self.members)}, "
                f"own_leaf={self.own_leaf_index})")

    # -- framing helpers ----------------------------------------------------------------------------
    def _frame(self, st: _State, content_type: M.ContentType, content: Any, wire_format: M.WireFormat,
               authenticated_data: bytes = b"") -> M.AuthenticatedContent:
        fc = M.FramedContent(st.group_id, st.context.epoch, M.Sender.member(st.own_leaf), authenticated_data,
                             content_type, content)
        tbs = M.framed_content_tbs(wire_format, fc, st.context_bytes())
        sig = st.signer.sign_with_label("FramedContentTBS", tbs)
        return M.AuthenticatedContent(wire_format, fc, M.FramedContentAuthData(sig, None))

    def _wire_format(self, st: _State) -> M.WireFormat:
        return M.WireFormat.private_message if st.private_handshake else M.WireFormat.public_message

    def _protect(self, st: _State, ac: M.AuthenticatedContent) -> bytes:
        return st.epoch.protect(ac, st.context_bytes(), st.own_leaf).to_bytes()

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
        old = st.tree.leaf(st.own_leaf)
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

    def _require_active(self) -> None:
        if not self._s.active:
            raise StateError("this member is no longer in the group")

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
            old_leaf = tree.leaf(me)
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
                              [_member_of(i, leaf) for i, leaf in applied.removed], list(applied.updated))
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
        added = [_member_of(i, new.tree.leaf(i)) for i in p.added if new.tree.leaf(i) is not None]
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

    # -- joining ------------------------------------------------------------------------------------
    @classmethod
    def join_from_welcome(cls, welcome: bytes, key_package_private: M.KeyPackagePrivate,
                          ratchet_tree: Optional[bytes] = None, *,
                          psks: Optional[Dict[bytes, bytes]] = None, private_handshake: bool = True,
                          check_lifetimes: bool = False,
                          credential_validator: Optional[CredentialValidator] = None) -> "Group":
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
    def join_external(cls, group_info: bytes, identity: bytes, signer: SignatureKeyPair, *,
                      ratchet_tree: Optional[bytes] = None, remove_leaf: Optional[int] = None,
                      private_handshake: bool = True, psks: Optional[Dict[bytes, bytes]] = None,
                      credential_validator: Optional[CredentialValidator] = None
                      ) -> Tuple["Group", bytes]:
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
        applied = apply_proposals(work, resolved)
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
        gid = body.content.group_id if msg.wire_format == M.WireFormat.public_message else body.group_id
        ep = body.content.epoch if msg.wire_format == M.WireFormat.public_message else body.epoch
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
                own_update = next((rp for rp in resolved if isinstance(rp.proposal.body, M.Update)
                                   and rp.sender.sender_type == M.SenderType.member
                                   and rp.sender.index == st.own_leaf), None)
                if own_update is not None:
                    pub = bytes(own_update.proposal.body.leaf_node.encryption_key)
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
        removed_members = [_member_of(i, leaf) for i, leaf in applied.removed]
        added_members = [_member_of(i, tree.leaf(i)) for i, _ in applied.added if tree.leaf(i) is not None]
        if external and committer is not None:
            added_members.append(_member_of(committer, tree.leaf(committer)))
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
        own_update = next((rp for rp in resolved if isinstance(rp.proposal.body, M.Update)
                           and rp.sender.sender_type == M.SenderType.member and rp.sender.index == st.own_leaf),
                          None)
        if own_update is not None:
            pub = bytes(own_update.proposal.body.leaf_node.encryption_key)
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


# ---------------------------------------------------------------------------------------------------------
def _parse_key_package(data: Union[bytes, M.KeyPackage]) -> M.KeyPackage:
    if isinstance(data, M.KeyPackage):
        return data
    return M.KeyPackage.from_bytes(bytes(data))


def _interim(s: Suite, confirmed: bytes, tag: bytes) -> bytes:
    return transcript.interim_transcript_hash(s, confirmed, tag)


def _confirmed(s: Suite, interim: bytes, ac: M.AuthenticatedContent) -> bytes:
    return transcript.confirmed_transcript_hash(s, interim, ac)


def _next_epoch_state(st: _State, tree: Any, new_ctx: Any, new_epoch: Any, tag: bytes, confirmed: bytes) -> _State:
    """A copy of ``st`` moved to the next epoch (shared by creating and processing a commit):
    new tree, context, secrets and transcript; the old epoch's resumption PSK kept; the
    proposal caches of the old epoch emptied."""
    new = st.copy()
    new.tree = tree
    new.context = new_ctx
    new.resumption[st.context.epoch] = st.epoch.resumption_psk
    _trim_resumption(new)
    new.epoch = new_epoch
    new.confirmation_tag = tag
    new.interim_transcript_hash = _interim(st.suite, confirmed, tag)
    new.proposals = {}
    new.update_keys = {}
    new.sent_proposals = {}
    return new


def _trim_resumption(st: _State) -> None:
    if len(st.resumption) > _RESUMPTION_KEEP:
        for k in sorted(st.resumption)[:-_RESUMPTION_KEEP]:
            del st.resumption[k]


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
