"""The committer's :class:`~.committer.GroupOps` over the real ``orange_fast.mls.Group``.

Members are identified by their MLS *leaf index*.  A :class:`~.committer.MemberRef` (client
and KeyPackage) is bound to a leaf when the commit that adds it is applied (the new leaf
carries the KeyPackage's signature key, unique in the room: :class:`~.wire.WireDecoder`
refuses a reused key), or, for a joiner, once from the Welcome's tree; from then on the
binding follows the leaf, not a key, and ends when the leaf is removed.  A member that is
not bound to a leaf (it is not in this tree) has nothing to remove: a commit skips it and
every member expects exactly that, so a stale member can never make a committer fail.

Credentials never change.  Each KeyPackage gets a fresh signature key pair and the
session never rotates it (a client that needs a new key rejoins with a new KeyPackage),
so the groups here have no credential validator: MLS refuses an Update proposal or a
commit path that changes the identity or the signature key of a leaf (RFC 9420 §5.3.1),
and a member cannot rename itself, swap its key or take another member's name.

Every MLS failure caused by received data surfaces as :class:`MLSOpsError` (a
:class:`~.committer.GroupOpsError`); the group object is only replaced after an
operation succeeded, so a failure never leaves a half-changed state.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from ..mls import (
    CipherSuite,
    Group,
    KeyPackage,
    KeyPackagePrivate,
    MLSError,
    SignatureKeyPair,
)
from .committer import MemberRef
from .errors import GroupOpsError
from .wire import WireDecoder

__all__ = ["MLSOpsError", "MLSGroupOps"]


class MLSOpsError(GroupOpsError):
    """An MLS operation of the session failed (bad Welcome or commit, fork, a credential change)."""


class MLSGroupOps:
    """One client's MLS state in one room, driven by the committer.

    Args:
        suite: MLS cipher suite of the room.
        identity: the credential identity (the client id, ASCII bytes).
        decoder: the room's wire decoder (KeyPackage refs -> signature keys).
    """

    def __init__(self, suite: int | CipherSuite, identity: bytes, decoder: WireDecoder) -> None:
        self.suite = CipherSuite(int(suite))
        self.identity = bytes(identity)
        self.decoder = decoder
        self.group: Group | None = None
        self._kps: dict[bytes, KeyPackagePrivate] = {}
        self._expect: tuple[bytes, tuple[bytes, ...], tuple[int, ...]] | None = None
        self._leaves: dict[bytes, int] = {}  # kp_id of an admitted member -> its leaf index
        self.key_packages_made = 0

    def __repr__(self) -> str:
        return f"MLSGroupOps(identity={self.identity!r}, epoch={self.epoch})"

    # ------------------------------------------------------------------ GroupOps

    @property
    def epoch(self) -> int | None:
        return None if self.group is None else self.group.epoch

    def new_key_package(self) -> tuple[bytes, bytes]:
        signer = SignatureKeyPair.generate(self.suite)
        kp, private = KeyPackage.generate(self.suite, identity=self.identity, signer=signer)
        ref = kp.ref()
        self._kps[ref] = private
        self.key_packages_made += 1
        return ref, kp.to_bytes()

    def create(self, kp_id: bytes) -> None:
        private = self._kps.get(kp_id)
        if private is None:
            raise MLSOpsError("unknown KeyPackage")
        try:
            group = Group.create(self.suite, identity=self.identity, signer=private.signer)
        except MLSError as exc:
            raise MLSOpsError(f"create failed: {type(exc).__name__}") from None
        self.group = group  # the KeyPackage stays usable: a lost Create race retries with it
        self._leaves = {bytes(kp_id): group.own_leaf_index}

    def leaf_of(self, ref: MemberRef) -> int | None:
        """The leaf index of member ``ref`` in our group, or None if it has no leaf in it."""
        if self.decoder.signature_key(ref) is None:  # unknown KeyPackage, or not the client's
            return None
        return self._leaves.get(ref.kp_id)

    def _leaves_of(self, refs: Sequence[MemberRef]) -> tuple[int, ...]:
        """The leaves of ``refs`` that are in our group (sorted, each once)."""
        return tuple(sorted({leaf for leaf in map(self.leaf_of, refs) if leaf is not None}))

    def _bind_leaves(self, added: Sequence[int], removed: Sequence[int]) -> None:
        """Follow a commit: unbind removed leaves, bind each new leaf to its KeyPackage."""
        group = self._require()
        gone = set(removed)
        self._leaves = {k: leaf for k, leaf in self._leaves.items() if leaf not in gone}
        members = {m.leaf_index: m for m in group.members}
        for leaf in added:
            m = members.get(leaf)
            kp_id = None if m is None else self.decoder.key_package_of(m.signature_key)
            if kp_id is not None:
                self._leaves[kp_id] = leaf

    def commit(self, adds: Sequence[bytes], removes: Sequence[MemberRef]) -> tuple[bytes, bytes | None]:
        group = self._require()
        try:
            # a stale member without a leaf in our tree has nothing to remove (see expect())
            leaves = list(self._leaves_of(removes))
            # every cached Update proposal of the epoch (members' periodic self-updates) is
            # committed by reference; a commit with nothing else refreshes our own path
            out = group.commit(add=list(adds), remove=leaves, include_cached=True,
                               force_path=not adds and not leaves)
        except MLSError as exc:
            group.clear_pending_commit()
            raise MLSOpsError(f"commit failed: {type(exc).__name__}") from None
        return out.commit, out.welcome

    def merge_pending(self) -> None:
        group = self._require()
        try:
            result = group.merge_pending_commit()
        except MLSError as exc:
            raise MLSOpsError(f"merge failed: {type(exc).__name__}") from None
        self._bind_leaves([m.leaf_index for m in result.added], [m.leaf_index for m in result.removed])

    def clear_pending(self) -> None:
        if self.group is not None:
            self.group.clear_pending_commit()

    def expect(self, commit: bytes, adds: Sequence[MemberRef], removes: Sequence[MemberRef]) -> None:
        """Announce what the next commit claims to do (from its log entry); :meth:`process` checks it.

        Adds are expected by the signature keys of their KeyPackages, removes by leaf: the
        leaves of the named members that are in our group (a member without a leaf is
        removed from the log's view only).
        """
        added = tuple(sorted(self.decoder.signature_key(r) or b"" for r in adds))
        self._expect = (bytes(commit), added, self._leaves_of(removes))

    def process(self, commit: bytes) -> None:
        group = self._require()
        expect, self._expect = self._expect, None
        # the commit is staged, checked against its log entry, and only then merged
        try:
            staged = group.stage(commit)
        except MLSError as exc:
            raise MLSOpsError(f"commit rejected: {type(exc).__name__}") from None
        mismatch = not staged.is_commit
        added_leaves = [m.leaf_index for m in staged.added]
        removed_leaves = [m.leaf_index for m in staged.removed]
        if not mismatch and expect is not None and hmac.compare_digest(expect[0], bytes(commit)):
            added = tuple(sorted(m.signature_key for m in staged.added))
            mismatch = added != expect[1] or tuple(sorted(set(removed_leaves))) != expect[2]
        if mismatch:
            staged.discard()
            raise MLSOpsError("message does not do what its log entry states")
        group.merge_staged(staged)
        self._bind_leaves(added_leaves, removed_leaves)

    def propose_update(self) -> bytes:
        """An MLS Update proposal for our own leaf (post-compromise security), for the log."""
        group = self._require()
        try:
            return group.propose_update()
        except MLSError as exc:
            raise MLSOpsError(f"update proposal failed: {type(exc).__name__}") from None

    def process_proposal(self, proposal: bytes) -> None:
        """Validate and cache another member's Update proposal (committed by the committer).

        MLS refuses an Update that changes the sender's identity or signature key (the
        group has no credential validator that would allow it).
        """
        group = self._require()
        try:
            staged = group.stage(proposal)
        except MLSError as exc:
            raise MLSOpsError(f"proposal rejected: {type(exc).__name__}") from None
        if staged.kind != "proposal" or staged.proposal_type != "update":
            staged.discard()
            raise MLSOpsError("log entry is not an Update proposal")
        group.merge_staged(staged)

    def join(self, welcome: bytes, kp_id: bytes) -> None:
        private = self._kps.pop(kp_id, None)
        if private is None:
            raise MLSOpsError("unknown KeyPackage")
        try:
            group = Group.join_from_welcome(welcome, private)
        except MLSError as exc:
            raise MLSOpsError(f"Welcome rejected: {type(exc).__name__}") from None
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            raise MLSOpsError(f"Welcome rejected: {type(exc).__name__}") from None
        self.group = group
        # Bind every leaf to the KeyPackage that published its (never changing) key.
        self._leaves = {}
        self._bind_leaves([m.leaf_index for m in group.members], [])

    def reset(self) -> None:
        self.group = None
        self._leaves = {}

    # ------------------------------------------------------------------ helpers

    def _require(self) -> Group:
        if self.group is None:
            raise MLSOpsError("no group")
        return self.group

