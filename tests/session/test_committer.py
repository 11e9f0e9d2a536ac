"""The designated-committer state machine: one test per requirement.

The clients here run the real :class:`Committer` over the abstract MLS of
``formal/explore.py`` (epochs as (number, hash of history), so forks are visible) and a
small in-memory ordered log with compare-and-append.
"""

from __future__ import annotations

import pytest

from explore import AbstractOps  # noqa: E402

from orange_fast.session.committer import (  # noqa: E402
    AppendResult,
    CaughtUp,
    CommitMsg,
    Committer,
    CommitterConfig,
    CommitterError,
    CreateMsg,
    DecodedEntry,
    Delivered,
    Disconnected,
    EpochChanged,
    Evicted,
    GroupLost,
    GroupOpsError,
    Joined,
    KeyPackageMsg,
    Leave,
    Left,
    MemberRef,
    Rejected,
    RequestAppend,
    RequestResync,
    Tick,
    UpdateProposalMsg,
    View,
    Waiting,
)


class Room:
    """An ordered log with compare-and-append, and the clients reading it (all in memory)."""

    def __init__(self, update_interval: int = 0, ops_cls: type = AbstractOps) -> None:
        self.ops_cls = ops_cls
        self.log: list[DecodedEntry] = []
        self.clients: dict[str, Committer] = {}
        self.connected: dict[str, bool] = {}
        self.cursor: dict[str, int] = {}
        self.outbox: list[tuple[str, RequestAppend]] = []
        self.actions: dict[str, list] = {}
        self.hold = False  # when True, appends wait in the outbox
        self.config = CommitterConfig(update_interval=update_interval)

    def notice(self, body: object) -> None:
        self.log.append(DecodedEntry(len(self.log) + 1, body, None))  # type: ignore[arg-type]

    def arrive(self, name: str) -> Committer:
        self.notice(Joined(name))
        m = Committer(name, self.ops_cls(name), self.config)
        self.clients[name] = m
        self.connected[name] = True
        self.cursor[name] = 0
        self.actions[name] = []
        self._feed(name, self._catch_up(name))
        return m

    def _catch_up(self, name: str) -> list:
        evs = [Delivered(e) for e in self.log[self.cursor[name] :]]
        self.cursor[name] = len(self.log)
        return evs + [CaughtUp(len(self.log))]

    def _feed(self, name: str, events: list) -> None:
        m = self.clients[name]
        for ev in events:
            acts = m.handle(ev)
            self.actions[name].extend(acts)
            for a in acts:
                if isinstance(a, RequestAppend) and self.connected[name]:
                    self.outbox.append((name, a))

    def ds_step(self) -> bool:
        if not self.outbox or self.hold:
            return False
        name, a = self.outbox.pop(0)
        nxt = len(self.log) + 1
        if a.expected_seq is None or a.expected_seq == nxt:
            self.log.append(DecodedEntry(nxt, a.body, name))
            res = AppendResult(a.request_id, True, nxt)
        else:
            res = AppendResult(a.request_id, False, len(self.log))
        if self.connected.get(name):
            self._feed(name, [res])
        return True

    def deliver_all(self) -> bool:
        moved = False
        for name in list(self.clients):
            if self.connected[name] and self.cursor[name] < len(self.log):
                evs = [Delivered(e) for e in self.log[self.cursor[name] :]]
                self.cursor[name] = len(self.log)
                self._feed(name, evs)
                moved = True
        return moved

    def settle(self, limit: int = 200) -> None:
        for _ in range(limit):
            if not (self.ds_step() | self.deliver_all()):
                return
        raise AssertionError("room does not settle")

    def leave(self, name: str) -> None:
        self._feed(name, [Leave()])
        self.connected[name] = False
        self.notice(Left(name))

    def disconnect(self, name: str) -> None:
        self.connected[name] = False
        self.outbox = [(n, a) for n, a in self.outbox if n != name]
        self._feed(name, [Disconnected()])

    def reconnect(self, name: str) -> None:
        self.connected[name] = True
        self.cursor[name] = self.clients[name].last_seq
        self._feed(name, self._catch_up(name))

    def bodies(self, kind: type) -> list:
        return [e for e in self.log if isinstance(e.body, kind)]

    def group(self, name: str) -> tuple | None:
        return self.clients[name].ops.group  # type: ignore[attr-defined]


def converged(room: Room, names: list[str]) -> None:
    groups = {room.group(n) for n in names}
    assert len(groups) == 1 and None not in groups, groups
    view = room.clients[names[0]].view
    assert view.idle()
    assert sorted(m.client for m in view.live_members()) == sorted(names)
    for n in names:
        assert room.clients[n].in_group and not room.clients[n].has_inflight
        assert room.clients[n].view == view


# --------------------------------------------------------------------------- basic flow


def test_first_client_creates_and_adds_the_next() -> None:
    room = Room()
    room.arrive("a")
    room.settle()
    assert [e.sender for e in room.bodies(CreateMsg)] == ["a"]
    room.arrive("b")
    room.settle()
    converged(room, ["a", "b"])
    commits = room.bodies(CommitMsg)
    assert len(commits) == 1 and commits[0].sender == "a"
    assert [w.ref.client for w in commits[0].body.adds] == ["b"]
    assert EpochChanged(1, 1) in room.actions["b"]


def test_welcome_and_commit_are_one_atomic_append_with_expected_seq() -> None:
    room = Room()
    room.arrive("a")
    room.settle()
    room.arrive("b")
    room.ds_step()  # b's KeyPackage reaches the log
    room.hold = True
    room.deliver_all()
    appends = [a for n, a in room.outbox if n == "a"]
    assert len(appends) == 1
    a = appends[0]
    assert isinstance(a.body, CommitMsg) and a.body.welcome is not None and a.body.commit
    assert a.expected_seq == len(room.log) + 1


def test_committer_is_earliest_admitted_live_member_not_lowest_leaf() -> None:
    room = Room()
    for n in ("a", "b", "c", "d"):
        room.arrive(n)
        room.settle()
    converged(room, ["a", "b", "c", "d"])
    assert room.clients["d"].view.committer() == "a"
    room.leave("a")
    room.settle()
    converged(room, ["b", "c", "d"])
    last = room.bodies(CommitMsg)[-1]
    assert last.sender == "b" and [r.client for r in last.body.removes] == ["a"]
    # a rejoins: it is now the most junior member although MLS may reuse a low leaf
    room.arrive("a2")
    room.settle()
    room.leave("b")
    room.settle()
    converged(room, ["c", "d", "a2"])
    assert room.bodies(CommitMsg)[-1].sender == "c"


def test_seniority_comes_from_log_order_in_view() -> None:
    v = View(gen=1, epoch=3, members=(MemberRef("z", b"1"), MemberRef("a", b"2")))
    assert v.committer() == "z"  # admitted first, whatever its name or leaf
    v2 = View(gen=1, epoch=3, members=v.members, stale=frozenset({MemberRef("z", b"1")}))
    assert v2.committer() == "a"


def test_adds_in_arrival_order_before_removes() -> None:
    room = Room()
    room.arrive("a")
    room.arrive("b")
    room.settle()
    converged(room, ["a", "b"])
    room.hold = True
    room.leave("b")
    room.arrive("d")
    room.arrive("c")
    room.hold = False
    room.settle()
    commits = [e.body for e in room.bodies(CommitMsg)][1:]
    assert [w.ref.client for w in commits[0].adds] == ["d", "c"] and commits[0].removes == ()
    assert commits[1].adds == () and [r.client for r in commits[1].removes] == ["b"]
    converged(room, ["a", "c", "d"])


# --------------------------------------------------------------------------- gap 1: no-ops


def test_lobby_visitor_leave_is_a_noop() -> None:
    room = Room()
    room.arrive("a")
    room.arrive("b")
    room.settle()
    view = room.clients["a"].view
    n = len(room.log)
    room.notice(Joined("visitor"))
    room.notice(Left("visitor"))
    room.notice(Evicted("never-seen"))
    room.settle()
    assert room.clients["a"].view == view
    assert len(room.log) == n + 3  # nobody committed anything
    assert any(o.startswith("noop") for _, o in room.clients["a"].notes)


def test_empty_removal_is_never_committed() -> None:
    v = View()
    e = DecodedEntry(1, CommitMsg(0, 0, (), (), b"c", None), "x")
    assert v.apply(e)[0] == v
    room = Room()
    room.arrive("a")
    room.settle()
    for _ in range(3):
        room.notice(Left("nobody"))
    room.settle()
    assert room.bodies(CommitMsg) == []


# --------------------------------------------------------------------------- gap 2: own removal


def test_member_that_sees_its_own_eviction_rejoins() -> None:
    room = Room()
    for n in ("a", "b", "c"):
        room.arrive(n)
    room.settle()
    converged(room, ["a", "b", "c"])
    room.notice(Evicted("b"))  # b is still connected: a false eviction
    room.settle()
    assert GroupLost("not-a-live-member") in room.actions["b"]
    kps = [e for e in room.bodies(KeyPackageMsg) if e.sender == "b"]
    assert len(kps) == 2  # b published a fresh KeyPackage
    converged(room, ["a", "b", "c"])
    refs = [m for m in room.clients["a"].view.members if m.client == "b"]
    assert refs == [MemberRef("b", kps[1].body.kp_id)]


def test_evicted_committer_rejoins_and_next_member_takes_over() -> None:
    room = Room()
    for n in ("a", "b"):
        room.arrive(n)
    room.settle()
    room.notice(Evicted("a"))
    room.settle()
    converged(room, ["a", "b"])
    assert room.clients["a"].view.committer() == "b"


# --------------------------------------------------------------------------- forks


def test_member_detects_fork_and_resyncs() -> None:
    room = Room()
    for n in ("a", "b", "c"):
        room.arrive(n)
    room.settle()
    converged(room, ["a", "b", "c"])
    # c's MLS state silently diverges (e.g. restored from a stale backup)
    c_ops = room.clients["c"].ops
    gid, epoch, _h = c_ops.group  # type: ignore[attr-defined]
    c_ops.group = (gid, epoch, "forked")  # type: ignore[attr-defined]
    room.leave("b")  # the next commit reveals the fork
    room.settle()
    assert GroupLost("fork") in room.actions["c"]
    converged(room, ["a", "c"])


def test_missed_epoch_is_detected_and_resynced() -> None:
    room = Room()
    for n in ("a", "b"):
        room.arrive(n)
    room.settle()
    room.clients["b"].ops.group = None  # type: ignore[attr-defined]  # lost its state...
    room.clients["b"].ops.group = ("g:a.0.1", 0, "old")  # type: ignore[attr-defined]  # ...back at epoch 0
    room.arrive("c")
    room.settle()
    assert GroupLost("missed-epoch") in room.actions["b"]
    converged(room, ["a", "b", "c"])


def test_stale_committer_commit_is_rejected_by_order() -> None:
    room = Room()
    room.arrive("a")
    room.settle()
    room.arrive("b")
    room.ds_step()  # b's KeyPackage reaches the log
    room.hold = True
    room.deliver_all()  # a prepared a commit adding b at the current head
    room.arrive("c")  # the log moves on before the DS handles a's append
    room.hold = False
    room.settle()
    commits = room.bodies(CommitMsg)
    assert len({(c.body.gen, c.body.epoch) for c in commits}) == len(commits)
    assert [w.ref.client for w in commits[0].body.adds] == ["b", "c"]
    converged(room, ["a", "b", "c"])


def test_commit_not_from_designated_committer_is_ignored_by_all() -> None:
    room = Room()
    for n in ("a", "b"):
        room.arrive(n)
    room.settle()
    v = room.clients["a"].view
    w = Waiting(MemberRef("x", b"k"), b"KP")
    bogus = CommitMsg(v.gen, v.epoch, (), (MemberRef("a", v.members[0].kp_id),), b"C|x", None)
    room.log.append(DecodedEntry(len(room.log) + 1, bogus, "b"))
    room.settle()
    assert room.clients["a"].view == room.clients["b"].view
    assert room.clients["a"].view.epoch == v.epoch
    outcome = v.apply(DecodedEntry(99, CommitMsg(v.gen, v.epoch, (w,), (), b"", b"W"), "a"))[1]
    assert outcome == "ignored:add-not-waiting"


# --------------------------------------------------------------------------- creation


def test_only_one_group_per_room_decided_by_order() -> None:
    room = Room()
    room.hold = True
    room.arrive("a")
    room.arrive("b")  # both arrive at an empty room at once
    room.hold = False
    room.settle()
    creates = room.bodies(CreateMsg)
    assert [e.sender for e in creates] == ["a"]
    converged(room, ["a", "b"])


def test_create_from_a_client_that_is_not_first_is_ignored() -> None:
    v = View(waiting=(Waiting(MemberRef("a", b"1"), b"K1"), Waiting(MemberRef("b", b"2"), b"K2")))
    nv, outcome = v.apply(DecodedEntry(5, CreateMsg(b"2"), "b"))
    assert nv == v and outcome == "ignored:not-designated-creator"
    nv, outcome = v.apply(DecodedEntry(5, CreateMsg(b"1"), "a"))
    assert outcome == "applied" and nv.members == (MemberRef("a", b"1"),) and nv.gen == 1


def test_group_recreated_when_every_admitted_member_is_gone() -> None:
    room = Room()
    room.arrive("a")
    room.settle()
    room.hold = True
    room.arrive("b")
    room.arrive("c")
    room.hold = False
    room.ds_step()
    room.ds_step()  # b's and c's KeyPackages are logged...
    room.hold = True
    room.deliver_all()  # ...a prepares a commit adding them...
    room.leave("a")  # ...but leaves before the DS handles it
    room.outbox = [(n, x) for n, x in room.outbox if n != "a"]
    room.hold = False
    room.settle()
    creates = room.bodies(CreateMsg)
    assert [e.sender for e in creates] == ["a", "b"]
    converged(room, ["b", "c"])
    assert room.clients["b"].view.gen == 2


# --------------------------------------------------------------------------- transport faults


def test_duplicates_ignored_and_gap_requests_resync() -> None:
    room = Room()
    room.arrive("a")
    room.settle()
    m = room.clients["a"]
    snap = m.snapshot()
    assert m.handle(Delivered(room.log[0])) == []
    assert m.snapshot() == snap
    far = DecodedEntry(m.last_seq + 5, Joined("z"), None)
    assert m.handle(Delivered(far)) == [RequestResync(m.last_seq + 1)]
    assert m.snapshot() == snap


def test_reconnect_catches_up_and_lost_append_is_retried() -> None:
    room = Room()
    room.arrive("a")
    room.settle()
    room.arrive("b")
    room.ds_step()  # b's KeyPackage reaches the log
    room.hold = True
    room.deliver_all()
    room.disconnect("a")  # a's commit is lost with the connection
    room.hold = False
    room.settle()
    assert room.bodies(CommitMsg) == []
    room.reconnect("a")
    room.settle()
    converged(room, ["a", "b"])


def test_refused_append_waits_for_the_winning_entry() -> None:
    room = Room()
    room.arrive("a")
    room.settle()
    room.arrive("b")
    room.ds_step()  # b's KeyPackage reaches the log
    room.hold = True
    room.deliver_all()
    (name, app), = room.outbox
    room.outbox.clear()
    m = room.clients["a"]
    assert m.handle(AppendResult(app.request_id, False, len(room.log) + 1)) == []  # not caught up with the winner
    assert not m.has_inflight
    room.notice(Joined("late"))
    room.hold = False
    room.settle()
    converged(room, ["a", "b"])


# --------------------------------------------------------------------------- PCS


def test_periodic_update_member_proposes_committer_commits() -> None:
    room = Room(update_interval=2)
    for n in ("a", "b"):
        room.arrive(n)
    room.settle()
    epoch = room.clients["a"].view.epoch
    room._feed("b", [Tick()])
    room.settle()
    assert room.clients["a"].view.epoch == epoch
    room._feed("b", [Tick()])
    room.settle()
    props = room.bodies(UpdateProposalMsg)
    assert [e.sender for e in props] == ["b"]
    last = room.bodies(CommitMsg)[-1]
    assert last.seq > props[0].seq
    assert last.sender == "a" and last.body.adds == () and last.body.removes == ()
    assert props[0].body.proposal.split(b"|")[-1] in last.body.commit  # committed by reference
    assert room.clients["a"].view.epoch == epoch + 1
    converged(room, ["a", "b"])


def test_proposal_that_loses_the_race_with_a_commit_is_made_again_at_once() -> None:
    """The committer's own refresh and a member's proposal fall due together and the commit
    wins the slot: the proposal is ignored (wrong epoch), and the member proposes again for
    the new epoch without waiting another interval (members in phase with the committer
    would otherwise never refresh)."""
    room = Room(update_interval=2)
    for n in ("a", "b"):
        room.arrive(n)
    room.settle()
    epoch = room.clients["a"].view.epoch
    room.hold = True
    for _ in range(2):
        room._feed("a", [Tick()])  # the committer's refresh first in the DS's queue...
        room._feed("b", [Tick()])  # ...then b's proposal, made for the same epoch
    room.hold = False
    room.settle()
    props = room.bodies(UpdateProposalMsg)
    assert [(e.sender, e.body.epoch) for e in props] == [("b", epoch), ("b", epoch + 1)]
    assert (props[0].seq, "ignored:wrong-epoch") in room.clients["b"].notes
    assert room.clients["a"].view.epoch == epoch + 2  # the committer's refresh, then b's
    converged(room, ["a", "b"])


def test_committer_updates_its_own_leaf() -> None:
    room = Room(update_interval=1)
    room.arrive("a")
    room.arrive("b")
    room.settle()
    n = len(room.bodies(CommitMsg))
    room._feed("a", [Tick()])
    room.settle()
    last = room.bodies(CommitMsg)[-1]
    assert len(room.bodies(CommitMsg)) == n + 1 and last.sender == "a" and last.body.adds == ()
    converged(room, ["a", "b"])


def test_empty_commit_from_non_committer_is_ignored() -> None:
    room = Room()
    for n in ("a", "b"):
        room.arrive(n)
    room.settle()
    v = room.clients["a"].view
    e = DecodedEntry(len(room.log) + 1, CommitMsg(v.gen, v.epoch, (), (), b"garbage", None), "b")
    assert v.apply(e) == (v, "ignored:not-designated-committer")
    room.log.append(e)
    room.settle()
    converged(room, ["a", "b"])  # nobody was forced to resync


def test_rejected_entry_is_a_noop_and_resolves_the_slot() -> None:
    room = Room()
    room.arrive("a")
    room.settle()
    room.arrive("b")
    room.ds_step()
    room.hold = True
    room.deliver_all()  # a's commit waits at the DS for the next slot...
    room.notice(Rejected("mallory", "malformed"))  # ...which a rejected message takes
    room.hold = False
    room.settle()
    assert ("ignored:rejected" in [o for _, o in room.clients["a"].notes])
    converged(room, ["a", "b"])


def test_create_failure_publishes_a_fresh_key_package() -> None:
    class FailingCreate(AbstractOps):
        fails = 1

        def create(self, kp_id: bytes) -> None:
            if self.fails:
                self.fails -= 1
                raise GroupOpsError("cannot create")
            super().create(kp_id)

    m = Committer("a", FailingCreate("a"))
    acts = m.handle(CaughtUp(0))
    (kp,) = [a for a in acts if isinstance(a, RequestAppend)]
    m.handle(AppendResult(kp.request_id, True, 1))
    acts = m.handle(Delivered(DecodedEntry(1, kp.body, "a")))
    (kp2,) = [a for a in acts if isinstance(a, RequestAppend)]
    assert isinstance(kp2.body, KeyPackageMsg) and kp2.body.kp_id != kp.body.kp_id


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        CommitterConfig(update_interval=-1)
    with pytest.raises(TypeError):
        CommitterConfig(update_interval=1.5)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "event",
    [
        "not an event",
        Delivered("entry"),  # type: ignore[arg-type]
        Delivered(DecodedEntry(0, Joined("x"), None)),
        Delivered(DecodedEntry(1, "body", None)),  # type: ignore[arg-type]
        Delivered(DecodedEntry(1, Joined("x"), 5)),  # type: ignore[arg-type]
        CaughtUp(-1),
        AppendResult("1", True, 1),  # type: ignore[arg-type]
    ],
)
def test_bad_events_raise_typed_error_and_change_nothing(event: object) -> None:
    m = Committer("a", AbstractOps("a"))
    m.handle(CaughtUp(0))
    snap = m.snapshot()
    with pytest.raises(CommitterError):
        m.handle(event)  # type: ignore[arg-type]
    assert m.snapshot() == snap


def test_bad_client_name() -> None:
    with pytest.raises(CommitterError):
        Committer("", AbstractOps("a"))


def test_left_member_stops_acting() -> None:
    room = Room()
    room.arrive("a")
    room.settle()
    room.leave("a")
    m = room.clients["a"]
    assert m.stopped and not m.in_group
    assert m.handle(Tick()) == []


class _RefusingOps(AbstractOps):
    """An MLS group that refuses to add one particular KeyPackage (as real MLS refuses a
    KeyPackage whose key collides with the tree's)."""

    __slots__ = ()
    BAD = b"KP:bad"

    def commit(self, adds, removes):  # noqa: ANN001, ANN201
        if self.BAD in adds:
            from orange_fast.session.errors import GroupOpsError

            raise GroupOpsError("KeyPackage refused")
        return super().commit(adds, removes)


def test_a_keypackage_mls_refuses_is_passed_over_and_nobody_drops_the_group() -> None:
    room = Room(ops_cls=_RefusingOps)
    for n in ("a", "b", "m"):
        room.arrive(n)
    room.settle()
    room.disconnect("m")  # m goes quiet after publishing a KeyPackage that MLS refuses
    room.log.append(DecodedEntry(len(room.log) + 1, KeyPackageMsg(b"bad", _RefusingOps.BAD), "m"))
    room.arrive("c")  # a later joiner is still added, and m's old leaf (now stale) removed
    room.settle()
    for name in ("a", "b"):
        assert not [x for x in room.actions[name] if isinstance(x, GroupLost)]
    assert [o for _s, o in room.clients["a"].notes if o.startswith("refused")] == ["refused:keypackage:m"]
    view = room.clients["a"].view
    assert [m.client for m in view.live_members()] == ["a", "b", "c"] and view.stale == frozenset()
    assert [w.ref.client for w in view.waiting] == ["m"]  # still waiting, passed over
    room.notice(Left("m"))  # m's departure clears it
    room.settle()
    converged(room, ["a", "b", "c"])
