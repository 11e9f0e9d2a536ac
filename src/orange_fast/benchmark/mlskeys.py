"""SFrame keys for the call benchmark, from a real MLS group (RFC 9605 §5.2).

Per epoch every member computes ``base_key = MLS-Exporter("SFrame 1.0 Base Key", "", Nk)``; the sender with
leaf index ``i`` uses the KID ``(context << (S + E)) | (i << E) | (epoch mod 2**E)`` (context 0), and SFrame's
KDF binds the KID into each sender's key and salt.  The KID layout and the key installation are the session
layer's (:mod:`orange_fast.session.keys`: ``KidLayout``, ``EpochKeys``), so the benchmark installs keys
exactly as a session client does.  Should that module be missing (a partial install), the same derivation
is done here with the session layer's default layout (E = 8).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..sframe import CipherSuite, Context

__all__ = ["EXPORTER_LABEL", "MLSCall", "build_group", "kid_for", "member_keys", "participant_context"]

EXPORTER_LABEL = b"SFrame 1.0 Base Key"
EPOCH_BITS = 8  # the session layer's default KidLayout

try:  # the session layer's key schedule (preferred)
    from ..session.keys import EpochKeys, KidLayout
except ImportError:  # pragma: no cover - only without the session package
    EpochKeys = None  # type: ignore[assignment,misc]
    KidLayout = None  # type: ignore[assignment,misc]


def kid_for(epoch: int, leaf_index: int) -> int:
    """The RFC 9605 §5.2 KID of ``leaf_index`` in ``epoch`` (context 0)."""
    if epoch < 0 or leaf_index < 0:
        raise ValueError("epoch and leaf index must be >= 0")
    if KidLayout is not None:
        return int(KidLayout().kid(leaf_index, epoch))
    return (leaf_index << EPOCH_BITS) | (epoch & ((1 << EPOCH_BITS) - 1))


def member_keys(group: object, suite: CipherSuite | int) -> dict[int, tuple[int, bytes]]:
    """Every member's ``leaf_index -> (KID, base key)`` in ``group``'s current epoch."""
    cs = CipherSuite(suite)
    base = group.export_secret(EXPORTER_LABEL, b"", cs.Nk)  # type: ignore[attr-defined]
    epoch = int(group.epoch)  # type: ignore[attr-defined]
    return {m.leaf_index: (kid_for(epoch, m.leaf_index), base) for m in group.members}  # type: ignore[attr-defined]


def participant_context(group: object, suite: CipherSuite | int) -> Context:
    """A member's SFrame Context for its group's current epoch, installed the way the session layer does
    (send key for its own KID, receive keys for every other member)."""
    cs = CipherSuite(suite)
    ctx = Context(cs)
    own = int(group.own_leaf_index)  # type: ignore[attr-defined]
    indices = [m.leaf_index for m in group.members]  # type: ignore[attr-defined]
    if EpochKeys is not None:
        EpochKeys(ctx).install_from_exporter(group.export_secret, int(group.epoch), own, indices,  # type: ignore[attr-defined]
                                             0.0)
        return ctx
    for index, (kid, key) in member_keys(group, cs).items():  # pragma: no cover - fallback
        if index == own:
            ctx.add_send_key(kid, key)
        else:
            ctx.add_receive_key(kid, key)
    return ctx


@dataclass
class MLSCall:
    """An MLS group of N members (all in this process) and the SFrame keys of its current epoch."""

    mls_suite: int
    sframe_suite: CipherSuite
    groups: list  # list[mls.Group], index = participant
    base_key: bytes
    """The epoch's exported base key (the same for every member)."""
    kids: list[int]
    """Participant i's KID."""
    setup_seconds: float
    signers: list = field(default_factory=list)

    @property
    def epoch(self) -> int:
        return int(self.groups[0].epoch)

    @property
    def base_keys(self) -> list[bytes]:
        """Participant i's base key (one shared base key; the KID separates the senders' keys)."""
        return [self.base_key] * len(self.kids)

    def context(self, i: int) -> Context:
        """Participant i's SFrame Context (see :func:`participant_context`)."""
        return participant_context(self.groups[i], self.sframe_suite)


def build_group(n: int, sframe_suite: CipherSuite | int = CipherSuite.AES_128_GCM_SHA256_128,
                mls_suite: int = 1) -> MLSCall:
    """Create a real MLS group of ``n`` members: one creator adds the other ``n - 1`` in one commit, each
    joins from the Welcome; check that every member derives the same keys."""
    from .. import mls

    if n < 1:
        raise ValueError("a call needs at least one participant")
    t0 = time.perf_counter()
    suite = mls.CipherSuite(mls_suite)
    cs = CipherSuite(sframe_suite)
    signer0 = mls.SignatureKeyPair.generate(suite)
    creator = mls.Group.create(suite, identity=b"participant-0", signer=signer0)
    groups = [creator]
    signers = [signer0]
    if n > 1:
        kps = []
        for i in range(1, n):
            s = mls.SignatureKeyPair.generate(suite)
            signers.append(s)
            kps.append(mls.KeyPackage.generate(suite, identity=b"participant-%d" % i, signer=s))
        out = creator.add([kp.to_bytes() for kp, _ in kps])
        creator.merge_pending_commit()
        if out.welcome is None:  # pragma: no cover - a commit that adds members always has a Welcome
            raise RuntimeError("the commit adding the participants has no Welcome")
        for _kp, priv in kps:
            groups.append(mls.Group.join_from_welcome(out.welcome, priv))
    tables = [member_keys(g, cs) for g in groups]  # each member derives the whole table itself
    if any(t != tables[0] for t in tables):
        raise RuntimeError("MLS members disagree on the SFrame keys")
    own = [tables[0][g.own_leaf_index] for g in groups]
    kids = [k for k, _ in own]
    if len(set(kids)) != n:
        raise RuntimeError("KIDs collide")
    return MLSCall(mls_suite, cs, groups, own[0][1], kids, time.perf_counter() - t0, signers)
