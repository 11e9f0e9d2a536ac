"""The committer's :class:`~.committer.GroupOps` over the real ``orange_fast.mls.Group``.

Each KeyPackage gets a fresh signature key pair (an MLS tree requires unique signature
keys, and a rejoining client's old leaf is still in the tree when its new one is added),
so a :class:`~.committer.MemberRef` maps to exactly one leaf: the one whose signature key
is that of the KeyPackage the ref names (looked up in the :class:`~.wire.WireDecoder`).

Every MLS failure caused by received data surfaces as :class:`MLSOpsError` (a
:class:`~.committer.GroupOpsError`); the group object is only replaced after an
operation succeeded, so a failure never leaves a half-changed state.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from ..mls import CipherSuite, Group, KeyPackage, KeyPackagePrivate, MLSError, SignatureKeyPair
from .committer import GroupOpsError, MemberRef
from .wire import WireDecoder

__all__ = ["MLSOpsError", "MLSGroupOps"]


class MLSOpsError(GroupOpsError):
    """An MLS operation of the session failed (bad Welcome or commit, fork, unknown member)."""


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
        self._expect: tuple[bytes, tuple[bytes, ...], tuple[bytes, ...]] | None = None
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

    def _leaf_of(self, ref: MemberRef) -> int:
        assert self.group is not None
        sig = self.decoder.signature_key(ref)
        if sig is None:
            raise MLSOpsError("unknown member")
        for m in self.group.members:
            if hmac.compare_digest(m.signature_key, sig):
                return m.leaf_index
        raise MLSOpsError("member not in the group")

    def commit(self, adds: Sequence[bytes], removes: Sequence[MemberRef]) -> tuple[bytes, bytes | None]:
        group = self._require()
        try:
            leaves = [self._leaf_of(r) for r in removes]
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
            group.merge_pending_commit()
        except MLSError as exc:
            raise MLSOpsError(f"merge failed: {type(exc).__name__}") from None

    def clear_pending(self) -> None:
        if self.group is not None:
            self.group.clear_pending_commit()

    def expect(self, commit: bytes, adds: Sequence[MemberRef], removes: Sequence[MemberRef]) -> None:
        """Announce what the next commit claims to do (from its log entry); :meth:`process` checks it."""
        def keys(refs: Sequence[MemberRef]) -> tuple[bytes, ...]:
            return tuple(sorted(self.decoder.signature_key(r) or b"" for r in refs))

        self._expect = (bytes(commit), keys(adds), keys(removes))

    def process(self, commit: bytes) -> None:
        group = self._require()
        expect, self._expect = self._expect, None
        # the commit is staged, checked against its log entry, and only then merged
        try:
            staged = group.stage(commit)
        except MLSError as exc:
            raise MLSOpsError(f"commit rejected: {type(exc).__name__}") from None
        mismatch = not staged.is_commit
        if not mismatch and expect is not None and hmac.compare_digest(expect[0], bytes(commit)):
            added = tuple(sorted(m.signature_key for m in staged.added))
            removed = tuple(sorted(m.signature_key for m in staged.removed if m.signature_key not in added))
            mismatch = added != expect[1] or removed != expect[2]
        if mismatch:
            staged.discard()
            raise MLSOpsError("message does not do what its log entry states")
        group.merge_staged(staged)

    def propose_update(self) -> bytes:
        """An MLS Update proposal for our own leaf (post-compromise security), for the log."""
        group = self._require()
        try:
            return group.propose_update()
        except MLSError as exc:
            raise MLSOpsError(f"update proposal failed: {type(exc).__name__}") from None

    def process_proposal(self, proposal: bytes) -> None:
        """Validate and cache another member's Update proposal (committed by the committer)."""
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
            self.group = Group.join_from_welcome(welcome, private)
        except MLSError as exc:
            raise MLSOpsError(f"Welcome rejected: {type(exc).__name__}") from None
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            raise MLSOpsError(f"Welcome rejected: {type(exc).__name__}") from None

    def reset(self) -> None:
        self.group = None

    # ------------------------------------------------------------------ helpers

    def _require(self) -> Group:
        if self.group is None:
            raise MLSOpsError("no group")
        return self.group
