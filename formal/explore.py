"""Explicit-state exploration of the REAL committer state machine.

The machine under test is :class:`orange_fast.session.committer.Committer`, unchanged.
Around it this module builds a small closed world:

* an **abstract MLS** (:class:`AbstractOps`): a group is ``(group_id, epoch, hash)``
  where ``hash`` chains the whole history, so two members that applied different
  commits for the same epoch number hold different hashes (a fork is visible, unlike
  a model with integer epochs).  Processing a commit whose parent hash differs raises
  :class:`GroupOpsError`; being asked to process a commit for another epoch is
  recorded as a violation;
* an **abstract delivery service**: one ordered log with compare-and-append, server
  notices (joined / left / evicted), per-connection request queues, resumption from a
  sequence number after a reconnect;
* an **environment** that may, at any point and within budgets: let users arrive and
  leave, let a lobby visitor come and go, crash a client (its sent requests may still
  land, its state is lost; it may restart with no state), drop a connection (requests
  not yet processed and answers not yet delivered are lost), reconnect and catch up,
  deliver an entry twice, evict a silent client (and once, a live one), fire a timer.

Checked on every transition:

* no exception escapes the machine;
* the log only holds entries the public view accepts: no stale or duplicate commit,
  exactly one commit per (generation, epoch), group creation only by the designated
  creator;
* nobody is added twice (a member ref is added once, removed at most once, and a client
  never holds two live memberships);
* no member is ever asked to apply a commit for an epoch other than its own.

Checked from every reachable state (liveness under fairness): once the environment
stops, the server evicts crashed clients, everyone reconnects and the log is delivered,
all running clients end in one group, at one epoch with one hash, with nothing pending
(no dead group, no stuck joiner, no append in flight).  This is computed with a
deterministic "drain" successor whose goodness is memoised, so it costs about one
step per state.

Run ``python formal/explore.py --users 3`` for a report, or use :func:`explore`;
:func:`random_walks` samples random schedules for worlds too large to enumerate.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace

if importlib.util.find_spec("orange_fast") is None:  # pragma: no cover - a checkout without PYTHONPATH
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src"))

from orange_fast.session.committer import (  # noqa: E402
    Append,
    AppendResult,
    CaughtUp,
    CommitMsg,
    Committer,
    CommitterConfig,
    CreateMsg,
    Delivered,
    Disconnected,
    Evicted,
    GroupOpsError,
    Joined,
    Leave,
    Left,
    LogEntry,
    MemberRef,
    RequestResync,
    Tick,
    View,
)

__all__ = ["AbstractOps", "Budget", "Result", "explore", "random_walks", "main"]


def _h(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:10]


# --------------------------------------------------------------------------- abstract MLS


class AbstractOps:
    """An abstract MLS group for one client: epochs as (number, hash of history)."""

    __slots__ = ("client", "incarnation", "kp_counter", "owned", "group", "pending", "bad_apply", "props")

    def __init__(self, client: str, incarnation: int = 0) -> None:
        self.client = client
        self.incarnation = incarnation
        self.kp_counter = 0
        self.owned: frozenset[bytes] = frozenset()
        self.group: tuple[str, int, str] | None = None  # (group_id, epoch, hash)
        self.pending: tuple[bytes, tuple[str, int, str]] | None = None
        self.bad_apply: str | None = None
        self.props: frozenset[str] = frozenset()  # cached update proposals of this epoch

    def clone(self) -> AbstractOps:
        o = AbstractOps.__new__(AbstractOps)
        o.client = self.client
        o.incarnation = self.incarnation
        o.kp_counter = self.kp_counter
        o.owned = self.owned
        o.group = self.group
        o.pending = self.pending
        o.bad_apply = self.bad_apply
        o.props = self.props
        return o

    def fingerprint(self) -> tuple:
        return (self.kp_counter, self.owned, self.group, self.pending, self.bad_apply, self.props)

    # -- GroupOps ---------------------------------------------------------------------
    @property
    def epoch(self) -> int | None:
        return None if self.group is None else self.group[1]

    def new_key_package(self) -> tuple[bytes, bytes]:
        self.kp_counter += 1
        kp_id = f"{self.client}.{self.incarnation}.{self.kp_counter}".encode()
        self.owned = self.owned | {kp_id}
        return kp_id, b"KP:" + kp_id

    def create(self, kp_id: bytes) -> None:
        if kp_id not in self.owned:
            raise GroupOpsError("unknown key package")
        gid = f"g:{kp_id.decode()}"
        self.group = (gid, 0, _h(gid))
        self.pending = None
        self.props = frozenset()

    def commit(self, adds: Sequence[bytes], removes: Sequence[MemberRef]) -> tuple[bytes, bytes | None]:
        if self.group is None:
            raise GroupOpsError("no group")
        gid, epoch, h = self.group
        add_ids = tuple(kp[3:].decode() for kp in adds)
        rem = tuple(f"{r.client}/{r.kp_id.decode()}" for r in removes)
        props = ",".join(sorted(self.props))  # every cached proposal, by reference
        new = _h(h, self.client, add_ids, rem, props)
        commit = f"C|{gid}|{epoch}|{h}|{new}|{props}".encode()
        welcome = f"W|{gid}|{epoch + 1}|{new}|{','.join(add_ids)}".encode() if add_ids else None
        self.pending = (commit, (gid, epoch + 1, new))
        return commit, welcome

    def merge_pending(self) -> None:
        if self.pending is None:
            raise GroupOpsError("nothing pending")
        self.group = self.pending[1]
        self.pending = None
        self.props = frozenset()

    def propose_update(self) -> bytes:
        if self.group is None:
            raise GroupOpsError("no group")
        gid, epoch, _ = self.group
        self.kp_counter += 1
        pid = f"{self.client}.{self.incarnation}.u{self.kp_counter}"
        self.props = self.props | {pid}
        return f"P|{gid}|{epoch}|{pid}".encode()

    def process_proposal(self, proposal: bytes) -> None:
        if self.group is None:
            raise GroupOpsError("no group")
        try:
            tag, gid, epoch_s, pid = proposal.decode().split("|")
            epoch = int(epoch_s)
        except ValueError as exc:
            raise GroupOpsError("malformed proposal") from exc
        if tag != "P" or (gid, epoch) != self.group[:2]:
            raise GroupOpsError("proposal for another epoch")
        self.props = self.props | {pid}

    def clear_pending(self) -> None:
        self.pending = None

    def process(self, commit: bytes) -> None:
        if self.group is None:
            raise GroupOpsError("no group")
        try:
            tag, gid, epoch_s, parent, new, props = commit.decode().split("|")
            epoch = int(epoch_s)
        except ValueError as exc:
            raise GroupOpsError("malformed commit") from exc
        mg, me, mh = self.group
        if tag != "C" or gid != mg or epoch != me:
            self.bad_apply = f"{self.client} at {mg}/{me} asked to apply commit for {gid}/{epoch}"
            raise GroupOpsError("wrong epoch")
        if parent != mh:
            raise GroupOpsError("fork: parent hash differs")
        if props and not set(props.split(",")) <= self.props:
            raise GroupOpsError("commit references a proposal we do not have")
        self.group = (gid, epoch + 1, new)
        self.pending = None
        self.props = frozenset()

    def join(self, welcome: bytes, kp_id: bytes) -> None:
        try:
            tag, gid, epoch_s, h, ids = welcome.decode().split("|")
            epoch = int(epoch_s)
        except ValueError as exc:
            raise GroupOpsError("malformed welcome") from exc
        if tag != "W" or kp_id not in self.owned or kp_id.decode() not in ids.split(","):
            raise GroupOpsError("welcome not for us")
        self.owned = self.owned - {kp_id}
        self.group = (gid, epoch, h)
        self.pending = None
        self.props = frozenset()

    def reset(self) -> None:
        self.group = None
        self.pending = None
        self.props = frozenset()


# --------------------------------------------------------------------------- the world


@dataclass(frozen=True)
class Budget:
    """How many times each environment fault may happen in one run."""

    crashes: int = 0
    restarts: int = 0
    disconnects: int = 0
    duplicates: int = 0
    false_evictions: int = 0
    leaves: int = 1
    visitors: int = 1
    ticks: int = 0


class Slot:
    """One user's client as the world sees it (immutable by convention; copy with :func:`_mk`)."""

    __slots__ = (
        "status", "connected", "present", "delivered", "need_catchup", "outbox", "results",
        "incarnation", "conn", "machine", "h",
    )

    def __init__(self, status: str) -> None:
        self.status = status  # "absent" | "up" | "crashed" | "gone"
        self.connected = False
        self.present = False  # the DS counts it present (not yet left/evicted)
        self.delivered = 0  # transport pointer: entries handed to the machine
        self.need_catchup = False
        self.outbox: tuple[tuple[int, Append], ...] = ()  # (connection number, request)
        self.results: tuple[tuple[int, AppendResult], ...] = ()  # (deliver after seq, answer)
        self.incarnation = 0
        self.conn = 0  # connection number; answers only reach the connection that asked
        self.machine: Committer | None = None
        self.h: int | None = None  # cached fingerprint


def _slot_key(s: Slot) -> tuple:
    m = s.machine
    return (
        s.status,
        s.connected,
        s.present,
        s.delivered,
        s.need_catchup,
        s.outbox,
        s.results,
        s.conn,
        None if m is None else m.snapshot(),
        None if m is None else m.ops.fingerprint(),  # type: ignore[attr-defined]
    )


def _mk(slot: Slot, **kw: object) -> Slot:
    s = Slot.__new__(Slot)
    s.status = slot.status
    s.connected = slot.connected
    s.present = slot.present
    s.delivered = slot.delivered
    s.need_catchup = slot.need_catchup
    s.outbox = slot.outbox
    s.results = slot.results
    s.incarnation = slot.incarnation
    s.conn = slot.conn
    s.machine = slot.machine
    for k, v in kw.items():
        setattr(s, k, v)
    s.h = None
    return s


def _sh(s: Slot) -> int:
    if s.h is None:
        s.h = hash(_slot_key(s))
    return s.h


class World:
    __slots__ = ("log", "slots", "budget", "visitor", "ref_view", "added", "removed", "lh")

    def __init__(self, log, slots, budget, visitor, ref_view, added, removed) -> None:  # noqa: ANN001
        self.log: tuple[LogEntry, ...] = log
        self.slots: tuple[Slot, ...] = slots
        self.budget: Budget = budget
        self.visitor: int = visitor  # 0 none, 1 inside, 2 gone
        self.ref_view: View = ref_view  # the log folded (for invariants)
        self.added: frozenset[MemberRef] = added
        self.removed: frozenset[MemberRef] = removed
        self.lh = hash(log)  # fingerprint of the log, extended entry by entry

    def key(self) -> tuple:
        return (self.lh, len(self.log), tuple(_sh(s) for s in self.slots), self.budget, self.visitor)


def _w(w: World, **kw: object) -> World:
    n = World.__new__(World)
    n.log = w.log
    n.slots = w.slots
    n.budget = w.budget
    n.visitor = w.visitor
    n.ref_view = w.ref_view
    n.added = w.added
    n.removed = w.removed
    n.lh = w.lh
    for k, v in kw.items():
        setattr(n, k, v)
    return n


class Violation(Exception):
    pass


def _names(n: int) -> list[str]:
    return [chr(ord("a") + i) for i in range(n)]


def _append_entry(w: World, body: object, sender: str | None) -> World:
    entry = LogEntry(len(w.log) + 1, body, sender)  # type: ignore[arg-type]
    view, outcome = w.ref_view.apply(entry)
    added, removed = w.added, w.removed
    if isinstance(body, (CommitMsg, CreateMsg)):
        if outcome != "applied":
            raise Violation(f"log holds a {type(body).__name__} the view rejects ({outcome}) at seq {entry.seq}")
    if isinstance(body, CommitMsg) and outcome == "applied":
        for a in body.adds:
            if a.ref in added:
                raise Violation(f"{a.ref} added twice")
            added = added | {a.ref}
        for r in body.removes:
            if r in removed:
                raise Violation(f"{r} removed twice")
            removed = removed | {r}
    if isinstance(body, CreateMsg) and outcome == "applied":
        ref = view.members[0]
        if ref in added:
            raise Violation(f"{ref} added twice")
        added = added | {ref}
    live: dict[str, int] = {}
    for m in view.live_members():
        live[m.client] = live.get(m.client, 0) + 1
        if live[m.client] > 1:
            raise Violation(f"client {m.client} holds two live memberships")
    return _w(w, log=w.log + (entry,), ref_view=view, added=added, removed=removed, lh=hash((w.lh, entry)))


def _run(w: World, i: int, slot: Slot, event: object) -> tuple[World, bool]:
    """Hand ``event`` to client ``i``'s machine (a clone), queue its appends.

    Returns the new world and whether the machine produced any action.
    """
    m = slot.machine
    assert m is not None
    m2 = m.clone(m.ops.clone())  # type: ignore[attr-defined]
    try:
        actions = m2.handle(event)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - the invariant is "no exception"
        raise Violation(f"client {m.client} raised {type(exc).__name__}: {exc} on {event!r}") from exc
    if m2.ops.bad_apply:  # type: ignore[attr-defined]
        raise Violation(m2.ops.bad_apply)  # type: ignore[attr-defined]
    outbox = slot.outbox
    for a in actions:
        if isinstance(a, RequestResync):
            raise Violation(f"client {m.client} saw a sequence gap")
        if isinstance(a, Append) and slot.connected:
            outbox = outbox + ((slot.conn, a),)
            # (sent on a dead connection: lost)
    new_slot = _mk(slot, machine=m2, outbox=outbox)
    # Only appends are visible outside the client (EpochChanged/GroupLost are local).
    return _w(w, slots=w.slots[:i] + (new_slot,) + w.slots[i + 1 :]), any(isinstance(a, Append) for a in actions)


def _deliver(w: World, i: int) -> World | None:
    """Deliver log entries (and the CaughtUp marker) to client ``i`` until it acts.

    Deliveries that produce no action commute with every other event (their only effect
    is local state that a crash discards and a resume reproduces), so they are merged
    into one step: a partial-order reduction.
    """
    s = w.slots[i]
    if s.delivered >= len(w.log) and not s.need_catchup and not s.results:
        return None
    while True:
        s = w.slots[i]
        if s.results and s.results[0][0] <= s.delivered:
            w, acted = _run(_set(w, i, _mk(s, results=s.results[1:])), i, _mk(s, results=s.results[1:]), s.results[0][1])
            if acted:
                return w
            continue
        if s.delivered < len(w.log):
            ev: object = Delivered(w.log[s.delivered])
            d, nc = s.delivered + 1, s.need_catchup
        elif s.need_catchup:
            ev, d, nc = CaughtUp(len(w.log)), s.delivered, False
        else:
            return w
        w, acted = _run(w, i, s, ev)
        w = _set(w, i, _mk(w.slots[i], delivered=d, need_catchup=nc))
        if acted:
            return w


def _ds_process(w: World, i: int, name: str) -> World:
    s = w.slots[i]
    conn, a = s.outbox[0]
    nxt = len(w.log) + 1
    if a.expected_seq is None or a.expected_seq == nxt:
        nw = _append_entry(w, a.body, name)
        res = AppendResult(a.request_id, True, nxt)
    else:
        nw = w
        res = AppendResult(a.request_id, False, len(w.log))
    alive = s.status == "up" and s.connected and conn == s.conn
    # The answer travels on the same ordered connection as the log broadcast: it
    # reaches the client after the entries that precede the appended one.
    results = s.results + ((len(w.log), res),) if alive else s.results
    return _set(nw, i, _mk(s, outbox=s.outbox[1:], results=results))


def _set(w: World, i: int, slot: Slot) -> World:
    return _w(w, slots=w.slots[:i] + (slot,) + w.slots[i + 1 :])


class Model:
    def __init__(
        self,
        users: int,
        budget: Budget,
        update_interval: int = 1,
        staggered: bool = True,
        machine_cls: type[Committer] = Committer,
    ) -> None:
        self.machine_cls = machine_cls
        self.users = users
        self.names = _names(users)
        self.budget0 = budget
        self.config = CommitterConfig(update_interval=update_interval if budget.ticks else 0)
        self.staggered = staggered

    def initial(self) -> World:
        slots = tuple(_mk(Slot("absent")) for _ in range(self.users))
        return World((), slots, self.budget0, 0, View(), frozenset(), frozenset())

    def _fresh(self, i: int, incarnation: int) -> Committer:
        name = self.names[i]
        return self.machine_cls(name, AbstractOps(name, incarnation), self.config)

    # -- transitions --------------------------------------------------------------------

    def successors(self, w: World) -> list[tuple[str, World]]:
        out: list[tuple[str, World]] = []
        b = w.budget
        for i, s in enumerate(w.slots):
            name = self.names[i]
            if s.status == "absent":
                if self.staggered and i > 0 and w.slots[i - 1].status == "absent":
                    continue  # symmetry: users are interchangeable, so they arrive in name order
                # (The DS's JOINED notice for a user is a no-op for the committer, like the
                # lobby visitor's, which is modelled; leaving it out keeps the space small.)
                nw = w
                ns = _mk(s, status="up", connected=True, present=True, need_catchup=True, conn=s.conn + 1, machine=self._fresh(i, 0))
                out.append((f"arrive {name}", _set(nw, i, ns)))
                continue
            if s.status == "up" and s.connected:
                nw = _deliver(w, i)
                if nw is not None:
                    out.append((f"deliver to {name}", nw))
                if b.duplicates and s.delivered > 0:
                    e = w.log[s.delivered - 1]
                    nw = _w(w, budget=replace(b, duplicates=b.duplicates - 1))
                    out.append((f"duplicate {e.seq} to {name}", _run(nw, i, s, Delivered(e))[0]))
                if b.disconnects:
                    nw = _w(w, budget=replace(b, disconnects=b.disconnects - 1))
                    nw = _set(nw, i, _mk(s, connected=False, outbox=(), results=(), need_catchup=False))
                    out.append((f"disconnect {name}", _run(nw, i, nw.slots[i], Disconnected())[0]))
                if b.ticks:
                    nw = _w(w, budget=replace(b, ticks=b.ticks - 1))
                    out.append((f"tick {name}", _run(nw, i, s, Tick())[0]))
                if b.leaves:
                    nw = _w(w, budget=replace(b, leaves=b.leaves - 1))
                    nw = _run(nw, i, s, Leave())[0]
                    nw = _set(nw, i, _mk(nw.slots[i], status="gone", connected=False, outbox=(), results=(), present=False))
                    out.append((f"leave {name}", _append_entry(nw, Left(name), None)))
            if s.outbox and s.status in ("up", "crashed"):
                out.append((f"ds-process {name}#{s.outbox[0][1].request_id}", _ds_process(w, i, name)))
            if s.status == "up" and not s.connected:
                ns = _mk(s, connected=True, present=True, need_catchup=True, conn=s.conn + 1, delivered=s.machine.last_seq)  # type: ignore[union-attr]
                out.append((f"reconnect {name}", _set(w, i, ns)))
            if s.status == "up" and b.crashes:
                nw = _w(w, budget=replace(b, crashes=b.crashes - 1))
                out.append((f"crash {name}", _set(nw, i, _mk(s, status="crashed", connected=False, results=(), need_catchup=False))))
            if s.status == "crashed" and b.restarts:
                nw = _w(w, budget=replace(b, restarts=b.restarts - 1))
                inc = s.incarnation + 1
                ns = _mk(s, status="up", connected=True, present=True, need_catchup=True, delivered=0, results=(), conn=s.conn + 1, incarnation=inc, machine=self._fresh(i, inc))
                out.append((f"restart {name}", _set(nw, i, ns)))
            if s.present and (s.status == "crashed" or (s.status == "up" and not s.connected)):
                nw = _append_entry(w, Evicted(name), None)
                out.append((f"evict {name}", _set(nw, i, _mk(s, present=False, outbox=()))))
            elif s.present and s.status == "up" and s.connected and b.false_evictions:
                nw = _w(w, budget=replace(b, false_evictions=b.false_evictions - 1))
                # The DS evicts a live client (missed heartbeats) and closes its connection.
                nw = _append_entry(nw, Evicted(name), None)
                nw = _set(nw, i, _mk(s, present=False, connected=False, outbox=(), results=(), need_catchup=False))
                out.append((f"false-evict {name}", _run(nw, i, nw.slots[i], Disconnected())[0]))
        if b.visitors:
            # A lobby visitor comes and goes (its JOINED and LEFT notices; the LEFT of a
            # non-member is the reference design's crash, gap 1).  One step: the JOINED
            # alone is a presence no-op like any other.
            nw = _append_entry(_append_entry(w, Joined("lobby"), None), Left("lobby"), None)
            out.append(("visitor comes and goes", _w(nw, budget=replace(b, visitors=b.visitors - 1))))
        return out

    def drain_step(self, w: World) -> tuple[str, World] | None:
        """The deterministic fair successor used for the liveness check (no new faults)."""
        for i, s in enumerate(w.slots):
            if s.status == "up" and not s.connected:
                ns = _mk(s, connected=True, present=True, need_catchup=True, conn=s.conn + 1, delivered=s.machine.last_seq)  # type: ignore[union-attr]
                return f"reconnect {self.names[i]}", _set(w, i, ns)
        for i, s in enumerate(w.slots):
            if s.outbox and s.status in ("up", "crashed"):
                return "ds-process", _ds_process(w, i, self.names[i])
        for i, s in enumerate(w.slots):
            if s.present and s.status == "crashed":
                name = self.names[i]
                return f"evict {name}", _set(_append_entry(w, Evicted(name), None), i, _mk(s, present=False, outbox=()))
        for i, s in enumerate(w.slots):
            if s.status == "up" and s.connected:
                nw = _deliver(w, i)
                if nw is not None:
                    return "deliver", nw
        return None

    def converged(self, w: World) -> str | None:
        """None if the quiescent world ``w`` is in the good final state, else a reason."""
        ups = [(self.names[i], s) for i, s in enumerate(w.slots) if s.status == "up"]
        if not ups:
            return None
        view = w.ref_view
        if not view.idle():
            return f"work left undone: waiting={[x.ref for x in view.waiting]} stale={sorted(view.stale)}"
        groups = set()
        for name, s in ups:
            m = s.machine
            assert m is not None
            if not m.in_group:
                return f"{name} is not in the group (stuck joiner)"
            if m.has_inflight:
                return f"{name} has an append in flight"
            if m.view != view:
                return f"{name}'s view differs from the log's"
            if m.my_ref not in view.live_members():
                return f"{name} is not a live member in the view"
            if m.ops.pending is not None:  # type: ignore[attr-defined]
                return f"{name} holds a pending commit"
            groups.add(m.ops.group)  # type: ignore[attr-defined]
        if len(groups) != 1:
            return f"members disagree on the group: {groups}"
        g = groups.pop()
        if g is None or g[1] != view.epoch:
            return f"group epoch {g} differs from the log's epoch {view.epoch}"
        if len(view.live_members()) != len(ups):
            return f"roster has {len(view.live_members())} live members for {len(ups)} running clients"
        return None


@dataclass
class Result:
    states: int
    transitions: int
    violations: list[str]
    seconds: float
    max_log: int
    complete: bool


def explore(
    users: int = 3,
    budget: Budget | None = None,
    *,
    update_interval: int = 1,
    max_states: int = 2_000_000,
    check_liveness: bool = True,
    stop_at_first: bool = True,
    machine_cls: type[Committer] = Committer,
) -> Result:
    """Breadth-first exploration of every interleaving; returns counts and violations.

    ``machine_cls`` lets tests run deliberately broken variants of the committer to show
    that the exploration finds their bugs.
    """
    model = Model(users, budget or Budget(), update_interval, machine_cls=machine_cls)
    t0 = time.perf_counter()
    init = model.initial()
    # States are stored by 64-bit fingerprint (Python's tuple hash of the full state),
    # as TLC does; a collision could only hide states, with odds ~ n^2 / 2^65.
    k0 = hash(init.key())
    seen: dict[int, tuple[int, str] | None] = {k0: None}
    queue: deque[World] = deque([init])
    violations: list[str] = []
    transitions = 0
    max_log = 0
    good: dict[int, bool] = {}

    def trace(k: int) -> list[str]:
        path = []
        while seen.get(k) is not None:
            k, label = seen[k]  # type: ignore[misc]
            path.append(label)
        return list(reversed(path))

    def live_ok(w: World) -> str | None:
        path: list[int] = []
        cur = w
        steps = 0
        reason: str | None = None
        while True:
            k = hash(cur.key())
            if k in good:
                reason = None if good[k] else "leads to a bad state"
                break
            path.append(k)
            try:
                nxt = model.drain_step(cur)
            except Violation as exc:
                reason = f"SAFETY {exc} (found while draining)"
                break
            if nxt is None:
                reason = model.converged(cur)
                break
            cur = nxt[1]
            steps += 1
            if steps > 2000:
                reason = "drain does not terminate (livelock)"
                break
        for k in path:
            good[k] = reason is None
        return reason

    while queue:
        w = queue.popleft()
        k = hash(w.key())
        max_log = max(max_log, len(w.log))
        if check_liveness:
            r = live_ok(w)
            if r is not None:
                kind = "safety" if r.startswith("SAFETY ") else "liveness"
                violations.append(f"{kind}: {r.removeprefix('SAFETY ')}; trace: {trace(k)}")
                if stop_at_first:
                    break
        try:
            succ = model.successors(w)
        except Violation as exc:
            violations.append(f"safety: {exc}; trace: {trace(k)}")
            if stop_at_first:
                break
            continue
        base = w.key()[:3] + w.key()[4:]
        for label, nw in succ:
            transitions += 1
            nkey = nw.key()
            if nkey[:3] + nkey[4:] == base:
                # Only a fault budget was spent and nothing changed (e.g. a duplicate
                # delivery that the machine ignored): the successor's futures are a
                # subset of this state's, so it needs no exploring of its own.
                continue
            nk = hash(nkey)
            if nk not in seen:
                seen[nk] = (k, label)
                queue.append(nw)
                if len(seen) >= max_states:
                    break
        if len(seen) >= max_states:
            violations.append(f"state limit {max_states} reached (exploration incomplete)")
            break
    return Result(len(seen), transitions, violations, time.perf_counter() - t0, max_log, not queue and not violations)


def random_walks(
    users: int,
    budget: Budget,
    *,
    walks: int = 200,
    depth: int = 80,
    seed: int = 0,
    update_interval: int = 1,
    machine_cls: type[Committer] = Committer,
) -> Result:
    """Random schedules through the same world, for configurations too large to enumerate.

    Each walk takes up to ``depth`` random transitions (every safety invariant is checked on
    each), then checks liveness from its last state and from one random earlier state by
    draining.  Not exhaustive: a complement to :func:`explore` for 4-5 users with faults.
    """
    import random

    model = Model(users, budget, update_interval, staggered=False, machine_cls=machine_cls)
    rng = random.Random(seed)
    t0 = time.perf_counter()
    violations: list[str] = []
    steps = 0
    max_log = 0

    def drain(w: World) -> str | None:
        for _ in range(5000):
            nxt = model.drain_step(w)
            if nxt is None:
                return model.converged(w)
            w = nxt[1]
        return "drain does not terminate (livelock)"

    for n in range(walks):
        w = model.initial()
        path: list[str] = []
        probe: World | None = None
        probe_at = rng.randrange(depth)
        try:
            for d in range(depth):
                succ = model.successors(w)
                if not succ:
                    break
                label, w = rng.choice(succ)
                path.append(label)
                steps += 1
                if d == probe_at:
                    probe = w
            max_log = max(max_log, len(w.log))
            for candidate in (w, probe):
                if candidate is not None:
                    r = drain(candidate)
                    if r is not None:
                        violations.append(f"liveness: {r}; walk {n}: {path}")
                        break
        except Violation as exc:
            violations.append(f"safety: {exc}; walk {n}: {path}")
        if violations:
            break
    return Result(steps, steps, violations, time.perf_counter() - t0, max_log, not violations)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=2)
    p.add_argument("--crashes", type=int, default=0)
    p.add_argument("--restarts", type=int, default=0)
    p.add_argument("--disconnects", type=int, default=0)
    p.add_argument("--duplicates", type=int, default=0)
    p.add_argument("--false-evictions", type=int, default=0)
    p.add_argument("--leaves", type=int, default=1)
    p.add_argument("--visitors", type=int, default=1)
    p.add_argument("--ticks", type=int, default=0)
    p.add_argument("--max-states", type=int, default=5_000_000)
    a = p.parse_args(argv)
    b = Budget(a.crashes, a.restarts, a.disconnects, a.duplicates, a.false_evictions, a.leaves, a.visitors, a.ticks)
    r = explore(a.users, b, max_states=a.max_states)
    print(f"users={a.users} budget={b}")
    print(f"states explored: {r.states}  transitions: {r.transitions}  longest log: {r.max_log}  time: {r.seconds:.1f}s")
    if r.violations:
        for v in r.violations:
            print("VIOLATION:", v)
        return 1
    print("no violation")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
