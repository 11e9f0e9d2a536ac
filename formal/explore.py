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

Run ``python formal/explore.py --users 3`` for a report, or use :func:`explore`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

try:
    from orange_fast.session.committer import (
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
        KeyPackageMsg,
        Leave,
        Left,
        LogEntry,
        MemberRef,
        Tick,
        View,
    )
except ImportError:  # pragma: no cover - running from a checkout without PYTHONPATH
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
        KeyPackageMsg,
        Leave,
        Left,
        LogEntry,
        MemberRef,
        Tick,
        View,
    )

__all__ = ["AbstractOps", "Budget", "Result", "explore", "main"]


def _h(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:10]


# --------------------------------------------------------------------------- abstract MLS


class AbstractOps:
    """An abstract MLS group for one client: epochs as (number, hash of history)."""

    __slots__ = ("client", "incarnation", "kp_counter", "owned", "group", "pending", "bad_apply")

    def __init__(self, client: str, incarnation: int = 0) -> None:
        self.client = client
        self.incarnation = incarnation
        self.kp_counter = 0
        self.owned: frozenset[bytes] = frozenset()
        self.group: tuple[str, int, str] | None = None  # (group_id, epoch, hash)
        self.pending: tuple[bytes, tuple[str, int, str]] | None = None
        self.bad_apply: str | None = None

    def clone(self) -> AbstractOps:
        o = AbstractOps.__new__(AbstractOps)
        o.client = self.client
        o.incarnation = self.incarnation
        o.kp_counter = self.kp_counter
        o.owned = self.owned
        o.group = self.group
        o.pending = self.pending
        o.bad_apply = self.bad_apply
        return o

    def fingerprint(self) -> tuple:
        return (self.kp_counter, self.owned, self.group, self.pending, self.bad_apply)

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

    def commit(self, adds: Sequence[bytes], removes: Sequence[MemberRef]) -> tuple[bytes, bytes | None]:
        if self.group is None:
            raise GroupOpsError("no group")
        gid, epoch, h = self.group
        add_ids = tuple(kp[3:].decode() for kp in adds)
        rem = tuple(f"{r.client}/{r.kp_id.decode()}" for r in removes)
        new = _h(h, self.client, add_ids, rem)
        commit = f"C|{gid}|{epoch}|{h}|{new}".encode()
        welcome = f"W|{gid}|{epoch + 1}|{new}|{','.join(add_ids)}".encode() if add_ids else None
        self.pending = (commit, (gid, epoch + 1, new))
        return commit, welcome

    def merge_pending(self) -> None:
        if self.pending is None:
            raise GroupOpsError("nothing pending")
        self.group = self.pending[1]
        self.pending = None

    def clear_pending(self) -> None:
        self.pending = None

    def process(self, commit: bytes) -> None:
        if self.group is None:
            raise GroupOpsError("no group")
        try:
            tag, gid, epoch_s, parent, new = commit.decode().split("|")
            epoch = int(epoch_s)
        except ValueError as exc:
            raise GroupOpsError("malformed commit") from exc
        mg, me, mh = self.group
        if tag != "C" or gid != mg or epoch != me:
            self.bad_apply = f"{self.client} at {mg}/{me} asked to apply commit for {gid}/{epoch}"
            raise GroupOpsError("wrong epoch")
        if parent != mh:
            raise GroupOpsError("fork: parent hash differs")
        self.group = (gid, epoch + 1, new)
        self.pending = None

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

    def reset(self) -> None:
        self.group = None
        self.pending = None


# --------------------------------------------------------------------------- the world


@dataclass(frozen=True)
class Budget:
    """How many times each environment fault may happen in one run."""

    crashes: int = 1
    restarts: int = 1
    disconnects: int = 1
    duplicates: int = 1
    false_evictions: int = 0
    leaves: int = 1
    visitors: int = 1
    ticks: int = 0


@dataclass(frozen=True)
class Slot:
    """One user's client as the world sees it."""

    status: str  # "absent" | "up" | "crashed" | "gone"
    connected: bool = False
    present: bool = False  # the DS counts it present (not yet left/evicted)
    delivered: int = 0  # transport pointer: entries handed to the machine
    need_catchup: bool = False
    outbox: tuple[Append, ...] = ()
    results: tuple[AppendResult, ...] = ()
    incarnation: int = 0
    machine: Committer | None = field(default=None, compare=False, hash=False)
    key: tuple = field(default=(), compare=False, hash=False)


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
        None if m is None else m.snapshot(),
        None if m is None else m.ops.fingerprint(),  # type: ignore[attr-defined]
    )


def _mk(slot: Slot, **kw: object) -> Slot:
    s = replace(slot, **kw)
    object.__setattr__(s, "key", _slot_key(s))
    return s


@dataclass(frozen=True)
class World:
    log: tuple[LogEntry, ...]
    slots: tuple[Slot, ...]
    budget: Budget
    visitor: int  # 0 none, 1 inside, 2 gone
    ref_view: View  # the log folded (for invariants)
    added: frozenset[MemberRef]
    removed: frozenset[MemberRef]

    def key(self) -> tuple:
        return (self.log, tuple(s.key for s in self.slots), self.budget, self.visitor)


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
    return replace(w, log=w.log + (entry,), ref_view=view, added=added, removed=removed)


def _run(w: World, i: int, slot: Slot, event: object) -> World:
    """Hand ``event`` to client ``i``'s machine (a clone), queue its appends."""
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
        if isinstance(a, Append):
            if slot.connected:
                outbox = outbox + (a,)
            # else: sent on a dead connection: lost
    delivered = slot.delivered
    for a in actions:
        # RequestResync never happens in this world (no gaps); a resync would rewind.
        if type(a).__name__ == "RequestResync":
            raise Violation(f"client {m.client} saw a sequence gap")
    new_slot = _mk(slot, machine=m2, outbox=outbox, delivered=delivered)
    return replace(w, slots=w.slots[:i] + (new_slot,) + w.slots[i + 1 :])


def _set(w: World, i: int, slot: Slot) -> World:
    return replace(w, slots=w.slots[:i] + (slot,) + w.slots[i + 1 :])


class Model:
    def __init__(self, users: int, budget: Budget, update_interval: int = 1, staggered: bool = True) -> None:
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
        return Committer(name, AbstractOps(name, incarnation), self.config)

    # -- transitions --------------------------------------------------------------------

    def successors(self, w: World) -> list[tuple[str, World]]:
        out: list[tuple[str, World]] = []
        b = w.budget
        for i, s in enumerate(w.slots):
            name = self.names[i]
            if s.status == "absent":
                if self.staggered and i > 0 and w.slots[i - 1].status == "absent":
                    continue  # symmetry: users arrive in name order
                nw = _append_entry(w, Joined(name), None)
                out.append((f"arrive {name}", _set(nw, i, _mk(s, status="up", connected=True, present=True, need_catchup=True, machine=self._fresh(i, 0)))))
                continue
            if s.status == "up" and s.connected:
                if s.delivered < len(w.log):
                    e = w.log[s.delivered]
                    nw = _run(w, i, s, Delivered(e))
                    ns = nw.slots[i]
                    out.append((f"deliver {e.seq} to {name}", _set(nw, i, _mk(ns, delivered=s.delivered + 1))))
                elif s.need_catchup:
                    nw = _run(w, i, s, CaughtUp(len(w.log)))
                    out.append((f"caughtup {name}", _set(nw, i, _mk(nw.slots[i], need_catchup=False))))
                if s.results:
                    r = s.results[0]
                    nw = _set(w, i, _mk(s, results=s.results[1:]))
                    nw = _run(nw, i, nw.slots[i], r)
                    out.append((f"result {r.request_id} to {name}", nw))
                if b.duplicates and s.delivered > 0:
                    e = w.log[s.delivered - 1]
                    nw = replace(w, budget=replace(b, duplicates=b.duplicates - 1))
                    out.append((f"duplicate {e.seq} to {name}", _run(nw, i, s, Delivered(e))))
                if b.disconnects:
                    nw = replace(w, budget=replace(b, disconnects=b.disconnects - 1))
                    nw = _set(nw, i, _mk(s, connected=False, outbox=(), results=(), need_catchup=False))
                    out.append((f"disconnect {name}", _run(nw, i, nw.slots[i], Disconnected())))
                if b.ticks:
                    nw = replace(w, budget=replace(b, ticks=b.ticks - 1))
                    out.append((f"tick {name}", _run(nw, i, s, Tick())))
                if b.leaves:
                    nw = replace(w, budget=replace(b, leaves=b.leaves - 1))
                    nw = _run(nw, i, s, Leave())
                    nw = _set(nw, i, _mk(nw.slots[i], status="gone", connected=False, outbox=(), results=(), present=False))
                    out.append((f"leave {name}", _append_entry(nw, Left(name), None)))
            if s.outbox and s.status in ("up", "crashed"):
                a = s.outbox[0]
                nxt = len(w.log) + 1
                if a.expected_seq is None or a.expected_seq == nxt:
                    nw = _append_entry(w, a.body, name)
                    res = AppendResult(a.request_id, True, nxt)
                else:
                    nw = w
                    res = AppendResult(a.request_id, False, 0)
                results = s.results + (res,) if (s.status == "up" and s.connected) else s.results
                out.append((f"ds-process {name}#{a.request_id}", _set(nw, i, _mk(s, outbox=s.outbox[1:], results=results))))
            if s.status == "up" and not s.connected:
                out.append((f"reconnect {name}", _set(w, i, _mk(s, connected=True, present=True, need_catchup=True, delivered=s.machine.last_seq))))  # type: ignore[union-attr]
            if s.status == "up" and b.crashes:
                nw = replace(w, budget=replace(b, crashes=b.crashes - 1))
                out.append((f"crash {name}", _set(nw, i, _mk(s, status="crashed", connected=False, results=(), need_catchup=False))))
            if s.status == "crashed" and b.restarts:
                nw = replace(w, budget=replace(b, restarts=b.restarts - 1))
                inc = s.incarnation + 1
                ns = _mk(s, status="up", connected=True, present=True, need_catchup=True, delivered=0, outbox=s.outbox, results=(), incarnation=inc, machine=self._fresh(i, inc))
                out.append((f"restart {name}", _set(nw, i, ns)))
            if s.present and (s.status == "crashed" or (s.status == "up" and not s.connected)):
                nw = _append_entry(w, Evicted(name), None)
                out.append((f"evict {name}", _set(nw, i, _mk(s, present=False))))
            elif s.present and s.status == "up" and s.connected and b.false_evictions:
                nw = replace(w, budget=replace(b, false_evictions=b.false_evictions - 1))
                nw = _append_entry(nw, Evicted(name), None)
                out.append((f"false-evict {name}", _set(nw, i, _mk(s, present=False))))
        if b.visitors and w.visitor == 0:
            nw = replace(_append_entry(w, Joined("lobby"), None), visitor=1)
            out.append(("visitor joins", nw))
        if w.visitor == 1:
            nw = replace(_append_entry(w, Left("lobby"), None), visitor=2, budget=replace(b, visitors=b.visitors - 1))
            out.append(("visitor leaves", nw))
        return out

    def drain_step(self, w: World) -> tuple[str, World] | None:
        """The deterministic fair successor used for the liveness check (no new faults)."""
        for i, s in enumerate(w.slots):
            name = self.names[i]
            if s.present and (s.status == "crashed" or (s.status == "up" and not s.connected)) and s.status == "crashed":
                return f"evict {name}", _set(_append_entry(w, Evicted(name), None), i, _mk(s, present=False))
        for i, s in enumerate(w.slots):
            if s.status == "up" and not s.connected:
                return f"reconnect {self.names[i]}", _set(w, i, _mk(s, connected=True, present=True, need_catchup=True, delivered=s.machine.last_seq))  # type: ignore[union-attr]
        if w.visitor == 1:
            return "visitor leaves", replace(_append_entry(w, Left("lobby"), None), visitor=2)
        for i, s in enumerate(w.slots):
            if s.outbox and s.status in ("up", "crashed"):
                a = s.outbox[0]
                nxt = len(w.log) + 1
                if a.expected_seq is None or a.expected_seq == nxt:
                    nw = _append_entry(w, a.body, self.names[i])
                    res = AppendResult(a.request_id, True, nxt)
                else:
                    nw, res = w, AppendResult(a.request_id, False, 0)
                results = s.results + (res,) if (s.status == "up" and s.connected) else s.results
                return "ds-process", _set(nw, i, _mk(s, outbox=s.outbox[1:], results=results))
        for i, s in enumerate(w.slots):
            if s.status == "up" and s.connected:
                if s.results:
                    nw = _set(w, i, _mk(s, results=s.results[1:]))
                    return "result", _run(nw, i, nw.slots[i], s.results[0])
                if s.delivered < len(w.log):
                    nw = _run(w, i, s, Delivered(w.log[s.delivered]))
                    return "deliver", _set(nw, i, _mk(nw.slots[i], delivered=s.delivered + 1))
                if s.need_catchup:
                    nw = _run(w, i, s, CaughtUp(len(w.log)))
                    return "caughtup", _set(nw, i, _mk(nw.slots[i], need_catchup=False))
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
) -> Result:
    """Breadth-first exploration of every interleaving; returns counts and violations."""
    model = Model(users, budget or Budget(), update_interval)
    t0 = time.perf_counter()
    init = model.initial()
    seen: dict[tuple, tuple | None] = {init.key(): None}
    labels: dict[tuple, str] = {}
    worlds: dict[tuple, World] = {}
    queue: deque[World] = deque([init])
    violations: list[str] = []
    transitions = 0
    max_log = 0
    good: dict[tuple, bool] = {}

    def trace(k: tuple) -> list[str]:
        path = []
        while k in labels:
            path.append(labels[k])
            k = seen[k]  # type: ignore[assignment]
        return list(reversed(path))

    def live_ok(w: World) -> str | None:
        path: list[tuple] = []
        cur = w
        steps = 0
        reason: str | None = None
        while True:
            k = cur.key()
            if k in good:
                ok = good[k]
                reason = None if ok else "leads to a bad state"
                break
            path.append(k)
            try:
                nxt = model.drain_step(cur)
            except Violation as exc:
                reason = f"during drain: {exc}"
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
        k = w.key()
        max_log = max(max_log, len(w.log))
        if check_liveness:
            r = live_ok(w)
            if r is not None:
                violations.append(f"liveness: {r}; trace: {trace(k)}")
                if stop_at_first:
                    break
        try:
            succ = model.successors(w)
        except Violation as exc:
            violations.append(f"safety: {exc}; trace: {trace(k)}")
            if stop_at_first:
                break
            continue
        for label, nw in succ:
            transitions += 1
            nk = nw.key()
            if nk not in seen:
                seen[nk] = k
                labels[nk] = label
                queue.append(nw)
                if len(seen) >= max_states:
                    break
        if len(seen) >= max_states:
            violations.append(f"state limit {max_states} reached (exploration incomplete)")
            break
    del worlds
    return Result(len(seen), transitions, violations, time.perf_counter() - t0, max_log, not queue and not violations)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=3)
    p.add_argument("--crashes", type=int, default=1)
    p.add_argument("--restarts", type=int, default=1)
    p.add_argument("--disconnects", type=int, default=1)
    p.add_argument("--duplicates", type=int, default=1)
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
