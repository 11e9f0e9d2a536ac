"""Deterministic simulation: the real committer, the real MLS group and real SFrame keys.

Random schedules (seeded) of arrivals, leaves, false evictions, lost connections, timer
ticks and interleaved deliveries over an in-memory ordered log with compare-and-append.
After each schedule the world is drained (connections back, log delivered) and checked:
every running client is in the group at one epoch with one epoch authenticator, all show
the same safety number, every member decrypts every other member's frames, and clients
that left cannot decrypt frames of the new epoch.
"""

from __future__ import annotations

import random

import pytest

pytest.importorskip("orange_fast.mls.group", reason="MLS group layer not available")
sframe = pytest.importorskip("orange_fast.sframe", reason="compiled SFrame core not built")

from collections.abc import Sequence  # noqa: E402

from orange_fast import mls  # noqa: E402
from orange_fast.mls.errors import MLSError  # noqa: E402
from orange_fast.session.committer import (  # noqa: E402  # noqa: E402
    AppendResult,
    CaughtUp,
    CommitMsg,
    Committer,
    CommitterConfig,
    DecodedEntry,
    Delivered,
    Disconnected,
    EpochChanged,
    Evicted,
    GroupLost,
    GroupOpsError,
    Leave,
    Left,
    MemberRef,
    RequestAppend,
    Tick,
)
from orange_fast.session.keys import EpochKeys  # noqa: E402
from orange_fast.session.safety import safety_number  # noqa: E402


# A minimal GroupOps over the real MLS group for this simulation (the production adapter,
# session/mlsops.py, also checks commits against the wire layer's KeyPackage records).
# kp_id = the KeyPackage's own, fresh signature public key: a MemberRef names one leaf.
class MlsGroupOps:
    """GroupOps for one client over :class:`orange_fast.mls.Group`.

    Args:
        suite: the MLS cipher suite (default 1).
        identity: the credential identity (bytes) of this client.
    """

    def __init__(self, identity: bytes, suite: int = 1) -> None:
        if not isinstance(identity, bytes) or not identity:
            raise TypeError("identity must be non-empty bytes")
        self.identity = identity
        self.suite = mls.CipherSuite(suite)
        self.group: mls.Group | None = None
        self._kps: dict[bytes, object] = {}  # kp_id -> KeyPackagePrivate

    def __repr__(self) -> str:
        ep = None if self.group is None else self.group.epoch
        return f"MlsGroupOps(identity={self.identity!r}, epoch={ep}, key_packages={len(self._kps)})"

    # ------------------------------------------------------------------ GroupOps

    @property
    def epoch(self) -> int | None:
        return None if self.group is None else self.group.epoch

    def new_key_package(self) -> tuple[bytes, bytes]:
        signer = mls.SignatureKeyPair.generate(self.suite)
        kp, kp_private = mls.KeyPackage.generate(self.suite, identity=self.identity, signer=signer)
        kp_id = bytes(signer.public_key)
        self._kps[kp_id] = kp_private
        return kp_id, kp.to_bytes()

    def create(self, kp_id: bytes) -> None:
        priv = self._kps.get(kp_id)
        if priv is None:
            raise GroupOpsError("unknown key package")
        try:
            self.group = mls.Group.create(self.suite, identity=self.identity, signer=priv.signer)  # type: ignore[attr-defined]
        except MLSError as exc:
            raise GroupOpsError(f"create failed: {type(exc).__name__}") from exc

    def _leaf_of(self, ref: MemberRef) -> int:
        assert self.group is not None
        for m in self.group.members:
            if m.signature_key == ref.kp_id and m.identity == ref.client.encode():
                return m.leaf_index
        raise GroupOpsError("member not in the tree")

    def commit(self, adds: Sequence[bytes], removes: Sequence[MemberRef]) -> tuple[bytes, bytes | None]:
        g = self.group
        if g is None:
            raise GroupOpsError("no group")
        try:
            leaves = [self._leaf_of(r) for r in removes]
            # every cached (valid) update proposal of the epoch goes in by reference
            out = g.commit(add=list(adds), remove=leaves, include_cached=True, force_path=True)
        except MLSError as exc:
            raise GroupOpsError(f"commit failed: {type(exc).__name__}") from exc
        return out.commit, out.welcome

    def merge_pending(self) -> None:
        if self.group is None:
            raise GroupOpsError("no group")
        try:
            self.group.merge_pending_commit()
        except MLSError as exc:
            raise GroupOpsError(f"merge failed: {type(exc).__name__}") from exc

    def clear_pending(self) -> None:
        if self.group is not None:
            self.group.clear_pending_commit()

    def process(self, commit: bytes) -> None:
        if self.group is None:
            raise GroupOpsError("no group")
        try:
            res = self.group.process(commit)
        except MLSError as exc:
            raise GroupOpsError(f"process failed: {type(exc).__name__}") from exc
        if res.kind != "commit":
            raise GroupOpsError("not a commit")

    def join(self, welcome: bytes, kp_id: bytes) -> None:
        priv = self._kps.pop(kp_id, None)
        if priv is None:
            raise GroupOpsError("welcome for an unknown key package")
        try:
            self.group = mls.Group.join_from_welcome(welcome, priv)  # type: ignore[arg-type]
        except MLSError as exc:
            raise GroupOpsError(f"join failed: {type(exc).__name__}") from exc

    def propose_update(self) -> bytes:
        if self.group is None:
            raise GroupOpsError("no group")
        try:
            return self.group.propose_update()
        except MLSError as exc:
            raise GroupOpsError(f"propose failed: {type(exc).__name__}") from exc

    def process_proposal(self, proposal: bytes) -> None:
        if self.group is None:
            raise GroupOpsError("no group")
        try:
            res = self.group.process(proposal)
        except MLSError as exc:
            raise GroupOpsError(f"proposal rejected: {type(exc).__name__}") from exc
        if res.kind != "proposal":
            raise GroupOpsError("not a proposal")

    def reset(self) -> None:
        self.group = None



class Client:
    def __init__(self, name: str) -> None:
        self.name = name
        self.ops = MlsGroupOps(name.encode())
        self.machine = Committer(name, self.ops, CommitterConfig(update_interval=2))
        self.keys = EpochKeys(sframe.Context(sframe.CipherSuite(4)), grace_period=1.0)
        self.connected = True
        self.running = True
        self.cursor = 0


class Sim:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.log: list[DecodedEntry] = []
        self.clients: dict[str, Client] = {}
        self.outbox: list[tuple[str, RequestAppend]] = []
        self.now = 0.0
        self.count = 0

    # -- plumbing ----------------------------------------------------------------------
    def feed(self, c: Client, events: list) -> None:
        for ev in events:
            for a in c.machine.handle(ev):
                if isinstance(a, RequestAppend):
                    if c.connected:
                        self.outbox.append((c.name, a))
                elif isinstance(a, EpochChanged):
                    g = c.ops.group
                    assert g is not None and g.epoch == a.epoch
                    c.keys.install_from_exporter(
                        g.export_secret, a.epoch, g.own_leaf_index, [m.leaf_index for m in g.members], self.now
                    )
                elif isinstance(a, GroupLost):
                    c.keys.retire(self.now)

    def arrive(self) -> None:
        self.count += 1
        c = Client(f"u{self.count}")
        self.clients[c.name] = c
        self.catch_up(c)

    def catch_up(self, c: Client) -> None:
        c.connected = True
        c.cursor = c.machine.last_seq
        evs = [Delivered(e) for e in self.log[c.cursor :]] + [CaughtUp(len(self.log))]
        c.cursor = len(self.log)
        self.feed(c, evs)

    def ds_step(self) -> None:
        name, a = self.outbox.pop(0)
        nxt = len(self.log) + 1
        if a.expected_seq is None or a.expected_seq == nxt:
            self.log.append(DecodedEntry(nxt, a.body, name))
            res = AppendResult(a.request_id, True, nxt)
        else:
            res = AppendResult(a.request_id, False, len(self.log))
        c = self.clients[name]
        if c.running and c.connected and self.rng.random() < 0.5:
            self.feed(c, [res])  # answers may also be lost; the log entry resolves the append

    def deliver_one(self, c: Client) -> None:
        if c.cursor < len(self.log):
            e = self.log[c.cursor]
            c.cursor += 1
            self.feed(c, [Delivered(e)])

    def running(self) -> list[Client]:
        return [c for c in self.clients.values() if c.running]

    # -- the schedule ------------------------------------------------------------------
    def random_step(self) -> None:
        r = self.rng.random()
        run = self.running()
        self.now += 0.1
        if r < 0.08 and len(run) < 5:
            self.arrive()
        elif r < 0.11 and len(run) > 1:
            c = self.rng.choice(run)
            self.feed(c, [Leave()])
            c.running = c.connected = False
            self.outbox = [(n, a) for n, a in self.outbox if n != c.name]
            self.log.append(DecodedEntry(len(self.log) + 1, Left(c.name), None))
        elif r < 0.13 and run:
            c = self.rng.choice(run)  # the server evicts a live client and drops its connection
            self.log.append(DecodedEntry(len(self.log) + 1, Evicted(c.name), None))
            c.connected = False
            self.outbox = [(n, a) for n, a in self.outbox if n != c.name]
            self.feed(c, [Disconnected()])
        elif r < 0.16 and run:
            c = self.rng.choice(run)
            if c.connected:
                c.connected = False
                self.outbox = [(n, a) for n, a in self.outbox if n != c.name]
                self.feed(c, [Disconnected()])
            else:
                self.catch_up(c)
        elif r < 0.26 and run:
            self.feed(self.rng.choice(run), [Tick()])
        elif r < 0.60 and self.outbox:
            self.ds_step()
        else:
            live = [c for c in run if c.connected]
            if live:
                self.deliver_one(self.rng.choice(live))

    def drain(self) -> None:
        for c in self.running():
            if not c.connected:
                self.catch_up(c)
        for _ in range(10_000):
            if self.outbox:
                self.ds_step()
                continue
            lagging = [c for c in self.running() if c.cursor < len(self.log)]
            if not lagging:
                return
            for c in lagging:
                while c.cursor < len(self.log):
                    self.deliver_one(c)
        raise AssertionError("no quiescence")


def check(sim: Sim) -> None:
    run = sim.running()
    assert run
    auths = set()
    numbers = set()
    for c in run:
        m = c.machine
        assert m.in_group and not m.has_inflight, (c.name, m.snapshot())
        g = c.ops.group
        assert g is not None and g.epoch == m.view.epoch
        auths.add(g.epoch_authenticator)
        numbers.add(safety_number(g.epoch_authenticator, [(x.identity, x.signature_key) for x in g.members]).hex)
        assert sorted(x.identity.decode() for x in g.members) == sorted(x.name for x in run)
    assert len(auths) == 1 and len(numbers) == 1
    sim.now += 10.0  # past every grace period
    for c in sim.clients.values():
        c.keys.expire(sim.now)
    for s in run:
        ct = s.keys.encrypt(b"frame of " + s.name.encode())
        for r in run:
            if r is not s:
                assert r.keys.decrypt(ct) == b"frame of " + s.name.encode()
        for gone in sim.clients.values():
            if not gone.running:
                with pytest.raises(sframe.SFrameError):
                    gone.keys.decrypt(ct)


@pytest.mark.parametrize("seed", range(6))
def test_random_schedule_converges_with_real_mls_and_sframe(seed: int) -> None:
    sim = Sim(seed)
    sim.arrive()
    for _ in range(60):
        sim.random_step()
    sim.drain()
    check(sim)
    commits = [e.body for e in sim.log if isinstance(e.body, CommitMsg)]
    assert len({(b.gen, b.epoch) for b in commits}) == len(commits)  # one commit per epoch
