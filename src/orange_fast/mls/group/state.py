"""The group state a member stores (RFC 9420 §8, §11) and its serialisation, the results of
processing, and the helpers that move a state to the next epoch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union

from .. import messages as M
from .. import transcript
from .. import treekem as TK
from ..codec import Reader, Writer
from ..epoch import EpochState
from ..errors import (
    DecodeError,
)
from ..member import Member
from ..proposals import (
    CachedProposal,
)
from ..suite import SignatureKeyPair, Suite, get_suite
from ..tree import RatchetTree

__all__ = ["CommitOutput", "ProcessResult", "ProposalMessage"]


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
        def put_cached(ww: Writer, c: CachedProposal) -> None:
            ww.opaque(c.ref)
            c.sender.encode(ww)
            c.proposal.encode(ww)

        w.vector(cached, put_cached)
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
