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
* an **environment** that may, at any point and within per-client budgets: let users
  arrive and leave, let a lobby visitor come and go, crash a client (its sent requests
  may still land, its state is lost; it may restart with no state), drop a connection
  (requests not yet processed and answers not yet delivered are lost), reconnect and
  catch up, deliver an entry twice, evict a silent client (or a live one), fire a timer;
  and it may stop for good at any point (each client "settles").

Checked on every transition:

* no exception escapes the machine;
* the log only holds entries the public view accepts: no stale or duplicate commit,
  exactly one commit per (generation, epoch), group creation only by the designated
  creator;
* nobody is added twice (a member ref is added once, removed at most once, and a client
  never holds two live memberships);
* no member is ever asked to apply a commit for an epoch other than its own.

Checked on every terminal state (liveness): once the environment has stopped, the
server has evicted the crashed, connections are back, every request is processed and
the log delivered, in whatever order these happened, all running clients are in one
group, at one epoch with one hash, with nothing pending (no dead group, no stuck joiner,
no append in flight).  Every reachable state reaches terminal states only (the graph is
finite and acyclic), so this is "from every reachable state, everything converges".

Deliveries are single steps (an answer, the CaughtUp marker, or one log entry), so a
crash or a lost connection can fall between any two of them.  A persistent-set
partial-order reduction (:meth:`Model.reduced`) explores the steps of one client at a
time where they commute with everything else; it keeps every terminal state and every
violation, which the tests check against the unreduced graph.

Run ``python formal/explore.py --users 4 --crashes 1 --restarts 1 --leaves 0 --visitors 0
--faulty 0`` for a report, or use :func:`explore`; :func:`random_walks` samples random
schedules for worlds too large to enumerate.
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
    AppendResult,
    CaughtUp,
    CommitMsg,
    Committer,
    CommitterConfig,
    CreateMsg,
    DecodedEntry,
    Delivered,
    Disconnected,
    Evicted,
    Joined,
    Leave,
    Left,
    MemberRef,
    RequestAppend,
    RequestResync,
    Tick,
    View,
)
from orange_fast.session.errors import GroupOpsError  # noqa: E402

__all__ = ["AbstractOps", "Budget", "Result", "explore", "explore_many", "random_walks", "main"]


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
    """How many times each environment fault may happen in one run.

    ``visitors`` counts for the whole room; every other field is **per client** (each
    faulty client may crash, lose its connection, ... that many times)."""

    crashes: int = 0
    restarts: int = 0
    disconnects: int = 0
    duplicates: int = 0
    false_evictions: int = 0
    leaves: int = 1
    visitors: int = 1
    ticks: int = 0

    def per_client(self) -> Budget:
        return replace(self, visitors=0)


NO_FAULTS = Budget(leaves=0, visitors=0)


class Slot:
    """One user's client as the world sees it (immutable by convention; copy with :func:`_mk`)."""

    __slots__ = (
        "status", "connected", "present", "delivered", "catchup", "outbox", "results",
        "incarnation", "conn", "b", "machine", "h",
    )

    def __init__(self, status: str, b: Budget = NO_FAULTS) -> None:
        self.status = status  # "absent" | "never" (will not arrive) | "up" | "crashed" | "gone"
        self.connected = False
        self.present = False  # the DS counts it present (not yet left/evicted)
        self.delivered = 0  # transport pointer: entries handed to the machine
        # the log head when this connection opened: CaughtUp(head) follows entry `head`
        self.catchup: int | None = None
        self.outbox: tuple[tuple[int, RequestAppend], ...] = ()  # (connection number, request)
        self.results: tuple[tuple[int, AppendResult], ...] = ()  # (deliver after seq, answer)
        self.incarnation = 0
        self.conn = 0  # connection number; answers only reach the connection that asked
        self.b = b  # this client's remaining fault budget
        self.machine: Committer | None = None
        self.h: int | None = None  # cached fingerprint


def _slot_key(s: Slot) -> tuple:
    m = s.machine
    return (
        s.status,
        s.connected,
        s.present,
        s.delivered,
        s.catchup,
        s.outbox,
        s.results,
        s.conn,
        s.b,
        None if m is None else m.snapshot(),
        None if m is None else m.ops.fingerprint(),  # type: ignore[attr-defined]
    )


def _mk(slot: Slot, **kw: object) -> Slot:
    s = Slot.__new__(Slot)
    s.status = slot.status
    s.connected = slot.connected
    s.present = slot.present
    s.delivered = slot.delivered
    s.catchup = slot.catchup
    s.outbox = slot.outbox
    s.results = slot.results
    s.incarnation = slot.incarnation
    s.conn = slot.conn
    s.b = slot.b
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
    __slots__ = ("log", "slots", "visitors", "visitor", "ref_view", "added", "removed", "lh")

    def __init__(self, log, slots, visitors, visitor, ref_view, added, removed) -> None:  # noqa: ANN001
        self.log: tuple[DecodedEntry, ...] = log
        self.slots: tuple[Slot, ...] = slots
        self.visitors: int = visitors  # lobby visits left
        self.visitor: int = visitor  # 0 none, 1 inside, 2 gone
        self.ref_view: View = ref_view  # the log folded (for invariants)
        self.added: frozenset[MemberRef] = added
        self.removed: frozenset[MemberRef] = removed
        self.lh = hash(log)  # fingerprint of the log, extended entry by entry

    def key(self) -> tuple:
        return (self.lh, len(self.log), tuple(_sh(s) for s in self.slots), self.visitors, self.visitor)


def _w(w: World, **kw: object) -> World:
    n = World.__new__(World)
    n.log = w.log
    n.slots = w.slots
    n.visitors = w.visitors
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
    entry = DecodedEntry(len(w.log) + 1, body, sender)  # type: ignore[arg-type]
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


def _run(w: World, i: int, slot: Slot, event: object) -> World:
    """Hand ``event`` to client ``i``'s machine (a clone) and queue its appends."""
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
        if isinstance(a, RequestAppend) and slot.connected:
            outbox = outbox + ((slot.conn, a),)
            # (sent on a dead connection: lost)
    # Only appends are visible outside the client (EpochChanged/GroupLost are local).
    return _set(w, i, _mk(slot, machine=m2, outbox=outbox))


def _next_item(w: World, s: Slot) -> str | None:
    """What the connection hands client ``s`` next: "result", "caught-up", "entry" or None."""
    if s.results and s.results[0][0] <= s.delivered:
        return "result"  # the answer travels behind the entries that preceded the append
    if s.catchup is not None and s.delivered >= s.catchup:
        return "caught-up"
    if s.delivered < len(w.log):
        return "entry"
    return None


def _deliver(w: World, i: int) -> World:
    """Deliver ONE item (an append's answer, the CaughtUp marker or a log entry) to ``i``."""
    s = w.slots[i]
    item = _next_item(w, s)
    if item == "result":
        return _run(w, i, _mk(s, results=s.results[1:]), s.results[0][1])
    if item == "caught-up":
        head = s.catchup
        return _run(w, i, _mk(s, catchup=None), CaughtUp(head))  # type: ignore[arg-type]
    assert item == "entry"
    return _run(w, i, _mk(s, delivered=s.delivered + 1), Delivered(w.log[s.delivered]))


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


def _reconnect(w: World, i: int) -> World:
    """Client ``i`` connects again and resumes after the last entry its machine applied."""
    s = w.slots[i]
    last = s.machine.last_seq  # type: ignore[union-attr]
    return _set(w, i, _mk(s, connected=True, present=True, catchup=len(w.log), conn=s.conn + 1, delivered=last))


def _evict(w: World, i: int, name: str) -> World:
    """The DS evicts a silent client: EVICTED in the log, its unprocessed requests dropped."""
    return _set(_append_entry(w, Evicted(name), None), i, _mk(w.slots[i], present=False, outbox=()))


def _ds_left(w: World, i: int, name: str) -> World:
    """The DS's LEFT notice for a client that said goodbye."""
    return _set(_append_entry(w, Left(name), None), i, _mk(w.slots[i], present=False))


class Model:
    """The world's transitions.

    :meth:`successors` lists every transition; :meth:`reduced` picks, where it can, a
    *persistent set* (Godefroid): the transitions of one client that touch nothing but
    that client's own slot, so every other transition commutes with them.  Exploring
    only those keeps every terminal state and every violation of the full graph (the
    graph is finite and acyclic: every step delivers, consumes a request, spends a
    budget or changes a status for good), and cuts the interleavings of independent
    clients' deliveries that made 4 users out of reach.
    """

    def __init__(
        self,
        users: int,
        budget: Budget,
        update_interval: int = 1,
        staggered: bool = True,
        machine_cls: type[Committer] = Committer,
        faulty: Sequence[int] | None = None,
    ) -> None:
        self.machine_cls = machine_cls
        self.users = users
        self.names = _names(users)
        self.budget0 = budget
        chosen = range(users) if faulty is None else faulty
        if any(not 0 <= i < users for i in chosen):
            raise ValueError("faulty clients must be in range(users)")
        self.budgets = tuple(budget.per_client() if i in chosen else NO_FAULTS for i in range(users))
        self.config = CommitterConfig(update_interval=update_interval if budget.ticks else 0)
        self.staggered = staggered
        # Symmetry: clients with the same budget are interchangeable (their names only
        # identify them), so they arrive in name order and the ones that never arrive
        # are the last of them.
        self.peers_before = tuple(
            tuple(j for j in range(i) if self.budgets[j] == self.budgets[i]) for i in range(users)
        )
        self.peers_after = tuple(
            tuple(j for j in range(i + 1, users) if self.budgets[j] == self.budgets[i]) for i in range(users)
        )

    def initial(self) -> World:
        slots = tuple(_mk(Slot("absent", b)) for b in self.budgets)
        return World((), slots, self.budget0.visitors, 0, View(), frozenset(), frozenset())

    def _fresh(self, i: int, incarnation: int) -> Committer:
        name = self.names[i]
        return self.machine_cls(name, AbstractOps(name, incarnation), self.config)

    # -- transitions --------------------------------------------------------------------

    @staticmethod
    def _local_kinds(w: World, s: Slot) -> list[str]:
        """The local steps client ``s`` (up and connected) can take now."""
        b = s.b
        kinds = ["deliver"] if _next_item(w, s) is not None else []
        if b.duplicates and s.delivered > 0:
            kinds.append("duplicate")
        kinds += [k for k, n in (("disconnect", b.disconnects), ("tick", b.ticks), ("leave", b.leaves),
                                 ("crash", b.crashes)) if n]
        if b != NO_FAULTS:
            kinds.append("settle")
        return kinds

    def _local(self, w: World, i: int) -> list[tuple[str, World]]:
        """Transitions of up-and-connected client ``i`` that touch only its own slot."""
        out: list[tuple[str, World]] = []
        s, b, name = w.slots[i], w.slots[i].b, self.names[i]
        for kind in self._local_kinds(w, s):
            if kind == "deliver":
                out.append((f"deliver to {name}", _deliver(w, i)))
            elif kind == "duplicate":
                e = w.log[s.delivered - 1]
                ns = _mk(s, b=replace(b, duplicates=b.duplicates - 1))
                out.append((f"duplicate {e.seq} to {name}", _run(w, i, ns, Delivered(e))))
            elif kind == "disconnect":
                nb = replace(b, disconnects=b.disconnects - 1)
                ns = _mk(s, b=nb, connected=False, outbox=(), results=(), catchup=None)
                out.append((f"disconnect {name}", _run(w, i, ns, Disconnected())))
            elif kind == "tick":
                out.append((f"tick {name}", _run(w, i, _mk(s, b=replace(b, ticks=b.ticks - 1)), Tick())))
            elif kind == "leave":
                # the client says goodbye and closes; the DS's LEFT notice follows (ds-left)
                nw = _run(w, i, _mk(s, b=replace(b, leaves=b.leaves - 1)), Leave())
                ns = _mk(nw.slots[i], status="gone", connected=False, outbox=(), results=(), catchup=None)
                out.append((f"leave {name}", _set(nw, i, ns)))
            elif kind == "crash":
                nb = replace(b, crashes=b.crashes - 1)
                ns = _mk(s, b=nb, status="crashed", connected=False, results=(), catchup=None)
                out.append((f"crash {name}", _set(w, i, ns)))
            else:
                out.append((f"settle {name}", _set(w, i, _mk(s, b=NO_FAULTS))))
        return out

    def _eligible(self, w: World, i: int) -> bool:
        """Client ``i``'s local transitions form a persistent set.

        Every transition outside them must commute with them, from now until one of them
        runs.  Other clients' transitions never touch ``i``'s slot, and appends to the log
        never change an entry ``i`` has yet to read.  What remains is ``i``'s own:

        * a false eviction (the DS, not the client, cuts it off): no budget for it;
        * the DS processing ``i``'s requests in flight (it pops the oldest, appends to the
          log and queues the answer *behind* the entries that preceded it).  That commutes
          with the local steps, except with losing the connection or leaving (they drop
          the requests) and with delivering the CaughtUp marker (the answer may overtake
          it): with requests in flight, no budget for those and the next item is not
          the marker;
        * ``i`` has an item to deliver, so nothing outside can enable a local step that
          is not in the set.
        """
        s = w.slots[i]
        if s.status != "up" or not s.connected or s.b.false_evictions:
            return False
        item = _next_item(w, s)
        if item is None:
            return False
        return not s.outbox or (item != "caught-up" and not s.b.disconnects and not s.b.leaves)

    def reduced(self, w: World) -> list[tuple[str, World]]:
        """A persistent subset of :meth:`successors` (all of them when none exists):
        the local transitions of the eligible client that has the fewest."""
        best, fewest = -1, 99
        for i in range(self.users):
            if self._eligible(w, i):
                n = len(self._local_kinds(w, w.slots[i]))
                if n < fewest:
                    best, fewest = i, n
                    if n == 1:
                        break
        return self._local(w, best) if best >= 0 else self.successors(w)

    def successors(self, w: World) -> list[tuple[str, World]]:
        out: list[tuple[str, World]] = []
        for i, s in enumerate(w.slots):
            name = self.names[i]
            b = s.b
            if s.status == "absent":
                earlier = all(w.slots[j].status not in ("absent", "never") for j in self.peers_before[i])
                if not self.staggered or earlier:
                    # (The DS's JOINED notice for a user is a no-op for the committer, like the
                    # lobby visitor's, which is modelled; leaving it out keeps the space small.)
                    ns = _mk(
                        s, status="up", connected=True, present=True, catchup=len(w.log), conn=s.conn + 1,
                        machine=self._fresh(i, 0),
                    )
                    out.append((f"arrive {name}", _set(w, i, ns)))
                if not self.staggered or all(w.slots[j].status == "never" for j in self.peers_after[i]):
                    out.append((f"{name} never arrives", _set(w, i, _mk(s, status="never"))))
                continue
            if s.status == "up" and s.connected:
                out.extend(self._local(w, i))
                if b.false_evictions:
                    # The DS evicts a live client (missed heartbeats) and closes its connection.
                    nw = _append_entry(w, Evicted(name), None)
                    ns = _mk(
                        s, b=replace(b, false_evictions=b.false_evictions - 1), present=False, connected=False,
                        outbox=(), results=(), catchup=None,
                    )
                    out.append((f"false-evict {name}", _run(nw, i, ns, Disconnected())))
            elif b != NO_FAULTS:
                out.append((f"settle {name}", _set(w, i, _mk(s, b=NO_FAULTS))))
            if s.outbox and s.status in ("up", "crashed"):
                out.append((f"ds-process {name}#{s.outbox[0][1].request_id}", _ds_process(w, i, name)))
            if s.status == "up" and not s.connected:
                out.append((f"reconnect {name}", _reconnect(w, i)))
            if s.status == "crashed" and b.restarts:
                inc = s.incarnation + 1
                ns = _mk(
                    s, b=replace(b, restarts=b.restarts - 1), status="up", connected=True, present=True,
                    catchup=len(w.log), delivered=0, results=(), conn=s.conn + 1, incarnation=inc,
                    machine=self._fresh(i, inc),
                )
                out.append((f"restart {name}", _set(w, i, ns)))
            if s.present and (s.status == "crashed" or (s.status == "up" and not s.connected)):
                out.append((f"evict {name}", _evict(w, i, name)))
            if s.present and s.status == "gone":
                out.append((f"ds-left {name}", _ds_left(w, i, name)))
        if w.visitors:
            # A lobby visitor comes and goes (its JOINED and LEFT notices; the LEFT of a
            # non-member is the reference design's crash, gap 1).  One step: the JOINED
            # alone is a presence no-op like any other.
            nw = _append_entry(_append_entry(w, Joined("lobby"), None), Left("lobby"), None)
            out.append(("visitor comes and goes", _w(nw, visitors=w.visitors - 1)))
            out.append(("no more visitors", _w(w, visitors=0)))
        return out

    def drain_step(self, w: World) -> tuple[str, World] | None:
        """A deterministic fair successor without new faults (random walks' liveness check)."""
        for i, s in enumerate(w.slots):
            if s.status == "up" and not s.connected:
                return f"reconnect {self.names[i]}", _reconnect(w, i)
        for i, s in enumerate(w.slots):
            if s.outbox and s.status in ("up", "crashed"):
                return "ds-process", _ds_process(w, i, self.names[i])
        for i, s in enumerate(w.slots):
            name = self.names[i]
            if s.present and s.status == "crashed":
                return f"evict {name}", _evict(w, i, name)
            if s.present and s.status == "gone":
                return f"ds-left {name}", _ds_left(w, i, name)
        for i, s in enumerate(w.slots):
            if s.status == "up" and s.connected and _next_item(w, s) is not None:
                return "deliver", _deliver(w, i)
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
    terminal: int = 0  # terminal states reached (each checked for convergence)
    terminal_keys: frozenset[int] = frozenset()  # their fingerprints (with ``keep_terminals``)


def explore(
    users: int = 3,
    budget: Budget | None = None,
    *,
    faulty: Sequence[int] | None = None,
    update_interval: int = 1,
    max_states: int = 2_000_000,
    reduce: bool = True,
    stop_at_first: bool = True,
    keep_terminals: bool = False,
    check_acyclic: bool = False,
    machine_cls: type[Committer] = Committer,
) -> Result:
    """Breadth-first exploration of every interleaving; returns counts and violations.

    ``budget`` is given to every client in ``faulty`` (default: all of them).  Safety is
    checked on every transition.  Liveness is checked on every *terminal* state: the
    environment may at any point stop for good (each client "settles": no more faults,
    absent clients never arrive, no more visitors), after which the server evicts the
    crashed, connections come back, requests are processed and the log is delivered in
    every possible order; every state where nothing is left to do must be converged.
    ``reduce`` applies the persistent-set reduction (:meth:`Model.reduced`).
    ``check_acyclic`` keeps every edge and, once the exploration is complete, reports a
    cycle as a liveness violation (a livelock would reach no terminal state; acyclicity
    is also what the reduction's soundness rests on).
    ``machine_cls`` lets tests run deliberately broken variants of the committer to show
    that the exploration finds their bugs.
    """
    model = Model(users, budget or Budget(), update_interval, machine_cls=machine_cls, faulty=faulty)
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
    terminal = 0
    terminals: set[int] = set()
    edges: dict[int, list[int]] = {}
    step = model.reduced if reduce else model.successors

    def trace(k: int) -> list[str]:
        path = []
        while seen.get(k) is not None:
            k, label = seen[k]  # type: ignore[misc]
            path.append(label)
        return list(reversed(path))

    while queue:
        w = queue.popleft()
        k = hash(w.key())
        max_log = max(max_log, len(w.log))
        try:
            succ = step(w)
        except Violation as exc:
            violations.append(f"safety: {exc}; trace: {trace(k)}")
            if stop_at_first:
                break
            continue
        if not succ:
            terminal += 1
            if keep_terminals:
                terminals.add(k)
            reason = model.converged(w)
            if reason is not None:
                violations.append(f"liveness: {reason}; trace: {trace(k)}")
                if stop_at_first:
                    break
            continue
        if check_acyclic:
            edges[k] = [hash(nw.key()) for _, nw in succ]
        for label, nw in succ:
            transitions += 1
            nk = hash(nw.key())
            if nk not in seen:
                seen[nk] = (k, label)
                queue.append(nw)
        if len(seen) >= max_states:
            violations.append(f"state limit {max_states} reached (exploration incomplete)")
            break
    if check_acyclic and not queue and not violations:
        cyclic = _states_on_cycles(edges)
        if cyclic:
            violations.append(
                f"liveness: {len(cyclic)} states on or after a cycle (livelock); trace: {trace(cyclic[0])}"
            )
    complete = not queue and not violations
    return Result(
        len(seen), transitions, violations, time.perf_counter() - t0, max_log, complete, terminal, frozenset(terminals)
    )


def _states_on_cycles(edges: dict[int, list[int]]) -> list[int]:
    """The states Kahn's algorithm cannot order: on a cycle or after one (none: acyclic)."""
    indegree: dict[int, int] = dict.fromkeys(edges, 0)
    for targets in edges.values():
        for t in targets:
            indegree[t] = indegree.get(t, 0) + 1
    ready = [k for k, d in indegree.items() if d == 0]
    while ready:
        k = ready.pop()
        for t in edges.get(k, ()):
            indegree[t] -= 1
            if indegree[t] == 0:
                ready.append(t)
        del indegree[k]
    return list(indegree)


def _explore_kwargs(kwargs: dict) -> Result:
    return explore(**kwargs)


def explore_many(configs: Sequence[dict], workers: int | None = None) -> list[Result]:
    """Run several :func:`explore` calls (keyword dicts) at once, one process each.

    At most ``workers`` processes (default: the CPU count); the results come back in the
    order of ``configs``.  Give the longest configuration first.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    workers = min(workers or os.cpu_count() or 1, len(configs))
    if workers <= 1:
        return [explore(**kw) for kw in configs]
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(_explore_kwargs, configs))


# first words of the labels of environment events (random walks pick them only now and then)
_FAULTS = frozenset(
    {"crash", "restart", "disconnect", "duplicate", "false-evict", "leave", "tick", "visitor", "arrive"}
)


def _stops(label: str) -> bool:
    return label.startswith("settle ") or label.endswith(" never arrives") or label == "no more visitors"


def random_walks(
    users: int,
    budget: Budget,
    *,
    walks: int = 200,
    depth: int = 150,
    seed: int = 0,
    fault_rate: float = 0.2,
    update_interval: int = 1,
    machine_cls: type[Committer] = Committer,
) -> Result:
    """Random schedules through the same world, for configurations too large to enumerate.

    Each walk takes up to ``depth`` random transitions (every safety invariant is checked on
    each; an environment event with probability ``fault_rate`` when one is possible, else
    a step of the protocol: delivery, request, eviction, reconnection), then checks
    liveness from its last state and from one random earlier state by draining.  Not
    exhaustive: a complement to :func:`explore` for the fault combinations it cannot reach.
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
                # (the environment "stops" by itself at the end: the drain below)
                succ = [(label, nw) for label, nw in model.successors(w) if not _stops(label)]
                if not succ:
                    break
                # faults are many (every client has several) and progress needs many
                # single-step deliveries: pick a fault only now and then
                faults = [x for x in succ if x[0].split()[0] in _FAULTS]
                calm = [x for x in succ if x[0].split()[0] not in _FAULTS]
                label, w = rng.choice(faults if faults and (not calm or rng.random() < fault_rate) else calm)
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
    p.add_argument("--faulty", type=int, nargs="*", help="clients given the budget (default: all)")
    p.add_argument("--no-reduce", action="store_true", help="explore every interleaving (no partial-order reduction)")
    p.add_argument("--max-states", type=int, default=5_000_000)
    a = p.parse_args(argv)
    b = Budget(a.crashes, a.restarts, a.disconnects, a.duplicates, a.false_evictions, a.leaves, a.visitors, a.ticks)
    r = explore(a.users, b, faulty=a.faulty, reduce=not a.no_reduce, max_states=a.max_states)
    print(f"users={a.users} budget={b} faulty={'all' if a.faulty is None else a.faulty}")
    print(
        f"states explored: {r.states}  transitions: {r.transitions}  terminal states: {r.terminal}  "
        f"longest log: {r.max_log}  time: {r.seconds:.1f}s"
    )
    if r.violations:
        for v in r.violations:
            print("VIOLATION:", v)
        return 1
    print("no violation")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
