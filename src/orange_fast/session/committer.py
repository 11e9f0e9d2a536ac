"""The designated-committer protocol as a pure, deterministic state machine.

One member at a time, the *designated committer*, turns membership events into MLS
commits.  The delivery service (DS) orders every handshake message of a room in one
sequence-numbered log and offers *compare-and-append* (an append that only succeeds if
the entry would get the expected sequence number).  Every client folds the same log
into the same public :class:`View`, so every decision below is a function of the
server's order, never of a client's guess or of a clock.

The machine has no clock, socket or randomness of its own.  Inputs are events
(:class:`Delivered` log entries in server order, :class:`CaughtUp`,
:class:`Disconnected`, :class:`AppendResult`, :class:`Tick`, :class:`Leave`); outputs are
actions (:class:`RequestAppend`, :class:`RequestResync`, :class:`EpochChanged`,
:class:`GroupLost`).  MLS work goes through the small :class:`GroupOps` protocol, so
the same machine runs against the real ``orange_fast.mls`` group and against the
abstract model of ``formal/explore.py``.

Rules (each closes a gap of the reference design, see ``specs/COMMITTER.md``):

* **Seniority from the log.**  ``View.members`` lists admitted members in the order the
  log admitted them (group creator first, then each commit's adds in arrival order).
  The committer is the first member that is not *stale* (left, evicted, or asking to
  rejoin).  Leaf indices are never used for seniority.
* **One group per room, decided by order.**  While no live member exists, the first
  waiting client (first KeyPackage in arrival order) is the only one allowed to create
  the group; its ``Create`` entry is compare-and-appended, and a ``Create`` entry that
  is not from that client is ignored by everybody.  When every admitted member is gone
  the same rule re-creates the group (new *generation*): no dead group (gaps 3, 4).
* **Adds in arrival order, before removes.**  The committer first commits every
  waiting KeyPackage (one commit, arrival order), and only when nobody waits commits
  the removal of the stale members (gap 1: a leave of a non-member, or a removal with
  nobody to remove, changes nothing and produces no commit).
* **A bad KeyPackage stops nobody.**  If its MLS group refuses to commit the adds, the
  committer tries each waiting KeyPackage alone, remembers the ones MLS refuses (for as
  long as they wait) and passes over them: it commits the others, or the removals, and
  does not drop its group (which would only hand the same failure to the next
  committer).  A hostile member cannot stall adds or removals this way.
* **Atomic Welcome + Commit.**  The commit and its Welcome travel as *one* log entry,
  compare-and-appended at the sequence number the committer's view was computed for; a
  stale committer's entry is refused by the DS, and a commit entry for another
  generation/epoch or from anyone but the designated committer is ignored by all
  (gap 5, forks).
* **Resynchronise instead of failing.**  A member that sees its own leave/eviction, is
  removed, fails to process a commit, or finds its MLS epoch out of step with the log
  (fork or missed epoch) drops its group state and rejoins with a fresh KeyPackage
  (gaps 2, 5).  The sequenced, resumable log removes lost messages (gap 6): a gap in
  sequence numbers triggers :class:`RequestResync`.
* **Post-compromise security.**  Every ``update_interval`` :class:`Tick` events a member
  refreshes its leaf (gap 9): the committer with an empty (path-only) commit, any other
  member with an Update proposal that the committer commits.  A proposal that lost the
  race with a commit (ignored: wrong epoch) is made again for the new epoch at once: the
  interval restarts only when the proposal is in the view.

Decisions (appends) are only taken while the machine is *caught up* with the log and
has no append in flight, so at most one compare-and-append per client is outstanding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol, Union, runtime_checkable

from .errors import CommitterError, GroupOpsError

__all__ = [
    # the machine
    "Committer",
    "CommitterConfig",
    "View",
    "GroupOps",
    # the log it reads: entries and their bodies
    "DecodedEntry",
    "MemberRef",
    "Waiting",
    "Joined",
    "Left",
    "Evicted",
    "Rejected",
    "KeyPackageMsg",
    "CreateMsg",
    "CommitMsg",
    "UpdateProposalMsg",
    # events in, actions out
    "Delivered",
    "CaughtUp",
    "Disconnected",
    "AppendResult",
    "Tick",
    "Leave",
    "RequestAppend",
    "RequestResync",
    "EpochChanged",
    "GroupLost",
]


# --------------------------------------------------------------------------- log bodies


@dataclass(frozen=True, order=True)
class MemberRef:
    """A member as admitted by the log: the client and the KeyPackage that admitted it.

    A client that rejoins gets a new ref (new KeyPackage); the old one becomes stale.
    """

    client: str
    kp_id: bytes


@dataclass(frozen=True)
class Waiting:
    """A client waiting for admission with a KeyPackage (ref plus the KeyPackage bytes)."""

    ref: MemberRef
    key_package: bytes


@dataclass(frozen=True)
class Joined:
    """Server notice: ``client`` connected to the room (presence only; a lobby visitor too)."""

    client: str


@dataclass(frozen=True)
class Left:
    """Server notice: ``client`` closed its connection."""

    client: str


@dataclass(frozen=True)
class Evicted:
    """Server notice: ``client`` was silent past the heartbeat timeout and was dropped."""

    client: str


@dataclass(frozen=True)
class KeyPackageMsg:
    """A client asks to be admitted (again) with this KeyPackage."""

    kp_id: bytes
    key_package: bytes


@dataclass(frozen=True)
class CreateMsg:
    """The designated creator created a new group (epoch 0) with itself as only member."""

    kp_id: bytes


@dataclass(frozen=True)
class CommitMsg:
    """A commit and its Welcome, as one atomic entry.

    ``gen``/``epoch`` name the group generation and the epoch the commit applies to.
    ``adds``/``removes`` state publicly what the commit does; an empty commit (no adds,
    no removes) is a self-update.
    """

    gen: int
    epoch: int
    adds: tuple[Waiting, ...]
    removes: tuple[MemberRef, ...]
    commit: bytes
    welcome: bytes | None


@dataclass(frozen=True)
class UpdateProposalMsg:
    """A member (not the committer) proposes to refresh its own leaf (MLS Update proposal).

    Valid for one (``gen``, ``epoch``); the designated committer commits every valid
    proposal of the epoch by reference in its next commit.
    """

    gen: int
    epoch: int
    proposal: bytes


@dataclass(frozen=True)
class Rejected:
    """A client message that did not decode or validate (set by :mod:`.wire`); a no-op for all.

    Every client rejects the same entries (decoding depends only on the log), so the entry
    keeps sequence numbers contiguous and changes nothing.  ``client`` is the sender the
    DS stamped, ``reason`` a short code for logs.
    """

    client: str
    reason: str


Body = Union[Joined, Left, Evicted, KeyPackageMsg, CreateMsg, CommitMsg, UpdateProposalMsg, Rejected]
_NOTICES = (Joined, Left, Evicted)
_CLIENT_BODIES = (KeyPackageMsg, CreateMsg, CommitMsg, UpdateProposalMsg, Rejected)


@dataclass(frozen=True)
class DecodedEntry:
    """One entry of the room's log, decoded: sequence number (from 1), body, DS-attested sender.

    The delivery layer's ``orange_fast.delivery.LogEntry`` is the stored form (kind and
    payload bytes); :class:`~.wire.WireDecoder` turns it into this one.

    Server notices have ``sender=None``; client messages carry the sending client's id.
    """

    seq: int
    body: Body
    sender: str | None = None


# --------------------------------------------------------------------------- events / actions


@dataclass(frozen=True)
class Delivered:
    """The transport delivered a log entry (in order; duplicates and gaps are tolerated)."""

    entry: DecodedEntry


@dataclass(frozen=True)
class CaughtUp:
    """After a (re)connection, every entry up to ``head`` has been delivered."""

    head: int


@dataclass(frozen=True)
class Disconnected:
    """The connection to the DS dropped; appends in flight have an unknown outcome."""


@dataclass(frozen=True)
class AppendResult:
    """The DS answered append request ``request_id``: accepted at ``seq``, or refused."""

    request_id: int
    accepted: bool
    seq: int = 0


@dataclass(frozen=True)
class Tick:
    """A timer fired (the caller decides the period); drives periodic self-updates."""


@dataclass(frozen=True)
class Leave:
    """The user hangs up: the machine stops acting (the DS will log ``Left``)."""


Event = Union[Delivered, CaughtUp, Disconnected, AppendResult, Tick, Leave]


@dataclass(frozen=True)
class RequestAppend:
    """Ask the DS to append ``body``; with ``expected_seq`` only if it gets exactly that seq."""

    request_id: int
    body: Body
    expected_seq: int | None


@dataclass(frozen=True)
class RequestResync:
    """A gap in sequence numbers: re-deliver the log from ``from_seq`` on."""

    from_seq: int


@dataclass(frozen=True)
class EpochChanged:
    """The local MLS group is now at (``gen``, ``epoch``): install the new media keys."""

    gen: int
    epoch: int


@dataclass(frozen=True)
class GroupLost:
    """The local group state was dropped (``reason`` is a short code); media keys must go."""

    reason: str


Action = Union[RequestAppend, RequestResync, EpochChanged, GroupLost]


# --------------------------------------------------------------------------- the public view


@dataclass(frozen=True)
class View:
    """The public state every client folds from the log (identical for all clients).

    Attributes:
        gen: group generation, 0 before the first group; +1 at each ``Create``.
        epoch: epoch of the current generation's group (0 right after ``Create``).
        members: admitted members in seniority order (log order).
        stale: members that must be removed (left, evicted, or rejoining).
        waiting: clients waiting for admission, in arrival order (one entry per client).
        updates: members with an update proposal in this epoch (committed by the next commit).
    """

    gen: int = 0
    epoch: int = 0
    members: tuple[MemberRef, ...] = ()
    stale: frozenset[MemberRef] = frozenset()
    waiting: tuple[Waiting, ...] = ()
    updates: frozenset[MemberRef] = frozenset()

    def committer(self) -> str | None:
        """The designated committer: the earliest-admitted member that is not stale."""
        for m in self.members:
            if m not in self.stale:
                return m.client
        return None

    def committer_ref(self) -> MemberRef | None:
        for m in self.members:
            if m not in self.stale:
                return m
        return None

    def creator(self) -> str | None:
        """The client that must (re)create the group: first waiting one while no live member exists."""
        if self.committer() is None and self.waiting:
            return self.waiting[0].ref.client
        return None

    def live_members(self) -> tuple[MemberRef, ...]:
        return tuple(m for m in self.members if m not in self.stale)

    def idle(self) -> bool:
        """Nothing for the committer to do."""
        return not self.waiting and not self.stale and not self.updates

    def is_waiting(self, ref: MemberRef) -> bool:
        return any(w.ref == ref for w in self.waiting)

    # -- the fold -----------------------------------------------------------------------

    def apply(self, entry: DecodedEntry) -> tuple[View, str]:
        """Fold one entry; return the new view and an outcome code.

        Outcome codes: ``"applied"``, or ``"noop:..."`` / ``"ignored:..."`` when the
        entry changes nothing (a lobby visitor's leave, a duplicate KeyPackage, a commit
        that is stale or not from the designated committer...).
        """
        body = entry.body
        if isinstance(body, _NOTICES):
            client = body.client
            if isinstance(body, Joined):
                return self, "noop:presence"
            waiting = tuple(w for w in self.waiting if w.ref.client != client)
            stale = self.stale | {m for m in self.members if m.client == client}
            if waiting == self.waiting and stale == self.stale:
                return self, "noop:not-a-member"
            return View(self.gen, self.epoch, self.members, frozenset(stale), waiting, self.updates), "applied"
        if isinstance(body, Rejected):
            return self, "ignored:rejected"
        sender = entry.sender
        if sender is None:
            return self, "ignored:no-sender"
        if isinstance(body, KeyPackageMsg):
            ref = MemberRef(sender, body.kp_id)
            if ref in self.members or self.is_waiting(ref):
                return self, "ignored:duplicate-keypackage"
            waiting = tuple(w for w in self.waiting if w.ref.client != sender) + (Waiting(ref, body.key_package),)
            stale = self.stale | {m for m in self.members if m.client == sender}
            return View(self.gen, self.epoch, self.members, frozenset(stale), waiting, self.updates), "applied"
        if isinstance(body, UpdateProposalMsg):
            if body.gen != self.gen or body.epoch != self.epoch:
                return self, "ignored:wrong-epoch"
            mine = [m for m in self.live_members() if m.client == sender]
            if not mine or mine[0] == self.committer_ref():
                return self, "ignored:proposal-not-from-member"
            if mine[0] in self.updates:
                return self, "ignored:duplicate-proposal"
            updates = self.updates | {mine[0]}
            return View(self.gen, self.epoch, self.members, self.stale, self.waiting, updates), "applied"
        if isinstance(body, CreateMsg):
            if self.committer() is not None:
                return self, "ignored:group-alive"
            if not self.waiting or self.waiting[0].ref != MemberRef(sender, body.kp_id):
                return self, "ignored:not-designated-creator"
            ref = self.waiting[0].ref
            return (
                View(gen=self.gen + 1, epoch=0, members=(ref,), stale=frozenset(), waiting=self.waiting[1:]),
                "applied",
            )
        if isinstance(body, CommitMsg):
            if body.gen != self.gen or body.epoch != self.epoch:
                return self, "ignored:wrong-epoch"
            committer = self.committer()
            if committer is None:
                return self, "ignored:no-group"
            adds = body.adds
            removes = body.removes
            if sender != committer:
                return self, "ignored:not-designated-committer"
            if adds or removes:
                add_refs = [w.ref for w in adds]
                if len(set(add_refs)) != len(add_refs) or len({r.client for r in add_refs}) != len(add_refs):
                    return self, "ignored:duplicate-add"
                if any(w not in self.waiting for w in adds):
                    return self, "ignored:add-not-waiting"
                if len(set(removes)) != len(removes) or any(
                    r not in self.stale or r not in self.members for r in removes
                ):
                    return self, "ignored:remove-not-stale"
            rem = set(removes)
            members = tuple(m for m in self.members if m not in rem) + tuple(w.ref for w in adds)
            waiting = tuple(w for w in self.waiting if w not in adds)
            return View(self.gen, self.epoch + 1, members, self.stale - rem, waiting, frozenset()), "applied"
        return self, "ignored:unknown-body"


# --------------------------------------------------------------------------- MLS interface


@runtime_checkable
class GroupOps(Protocol):
    """The MLS operations the committer needs (one client's view of one group).

    Implementations: an adapter over ``orange_fast.mls.Group`` (``session/client.py``)
    and the abstract model in ``formal/explore.py``.  Every failure caused by received
    data raises :class:`GroupOpsError`; no failure may leave a half-changed state.
    """

    @property
    def epoch(self) -> int | None:
        """The epoch of the local group, or None when there is no group."""
        ...

    def new_key_package(self) -> tuple[bytes, bytes]:
        """Generate a fresh KeyPackage (and keep its private part); return ``(kp_id, key_package)``."""
        ...

    def create(self, kp_id: bytes) -> None:
        """Create a one-member group at epoch 0, using the identity of KeyPackage ``kp_id``."""
        ...

    def commit(self, adds: Sequence[bytes], removes: Sequence[MemberRef]) -> tuple[bytes, bytes | None]:
        """Make a *pending* commit adding these KeyPackages and removing these members.

        Empty ``adds`` and ``removes`` means a self-update (path-only commit).  Returns
        ``(commit, welcome)`` (``welcome`` is None when nobody is added).
        """
        ...

    def merge_pending(self) -> None:
        """The DS accepted our pending commit: move to its epoch."""
        ...

    def clear_pending(self) -> None:
        """The DS refused our pending commit: forget it."""
        ...

    def process(self, commit: bytes) -> None:
        """Apply another member's commit for the current epoch (raises GroupOpsError on a fork)."""
        ...

    def join(self, welcome: bytes, kp_id: bytes) -> None:
        """Join from a Welcome addressed to our KeyPackage ``kp_id``."""
        ...

    def reset(self) -> None:
        """Drop the group state (pending commit included); KeyPackages already made are kept."""
        ...

    # Optional (needed only with ``update_interval`` > 0 for members that are not the
    # committer): ``propose_update() -> bytes`` makes an Update proposal for our leaf and
    # ``process_proposal(proposal: bytes) -> None`` validates and caches another member's.
    # ``commit`` must include every cached valid proposal of the epoch.


# --------------------------------------------------------------------------- the machine


@dataclass(frozen=True)
class CommitterConfig:
    """Tunables.  ``update_interval``: self-update every N ticks (0 disables)."""

    update_interval: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.update_interval, int) or isinstance(self.update_interval, bool):
            raise TypeError("update_interval must be an int")
        if self.update_interval < 0:
            raise ValueError("update_interval must be >= 0")


@dataclass(frozen=True)
class _Inflight:
    """The one append in flight: its kind and what resolves it."""

    request_id: int
    kind: str  # "kp" | "create" | "commit" | "proposal" | "orphan"
    expected_seq: int | None  # compare-and-append target (create/commit)
    kp_id: bytes | None = None  # kind "kp"
    accepted_seq: int | None = None
    commit: bytes | None = None  # kind "commit"/"proposal": the bytes sent (recognise our own entry)


@dataclass
class _Local:
    """Per-client state that is not public."""

    caught_up: bool = False
    stopped: bool = False
    last_seq: int = 0
    in_group: bool = False
    my_gen: int = 0
    my_ref: MemberRef | None = None
    my_kps: frozenset[bytes] = frozenset()  # KeyPackages of this incarnation not consumed
    current_kp: bytes | None = None  # the KeyPackage we last published
    inflight: _Inflight | None = None
    next_request: int = 1
    ticks: int = 0
    wait_seq: int = 0  # after a refused append: act again only once last_seq >= wait_seq
    refused: frozenset[MemberRef] = frozenset()  # waiting KeyPackages our MLS group cannot add


class Committer:
    """The designated-committer state machine of one client in one room.

    Feed every event to :meth:`handle`; perform the returned actions in order.
    ``ops`` is used synchronously for MLS work; the machine itself is deterministic.
    """

    def __init__(self, client: str, ops: GroupOps, config: CommitterConfig | None = None) -> None:
        if not isinstance(client, str) or not client:
            raise CommitterError("client must be a non-empty str")
        self.client = client
        self.ops = ops
        self.config = config if config is not None else CommitterConfig()
        self.view = View()
        self._l = _Local()
        self.notes: list[tuple[int, str]] = []  # (seq, outcome) of no-op/ignored entries, bounded

    # ------------------------------------------------------------------ introspection

    @property
    def last_seq(self) -> int:
        return self._l.last_seq

    @property
    def caught_up(self) -> bool:
        return self._l.caught_up

    @property
    def in_group(self) -> bool:
        return self._l.in_group

    @property
    def stopped(self) -> bool:
        return self._l.stopped

    @property
    def my_ref(self) -> MemberRef | None:
        return self._l.my_ref if self._l.in_group else None

    @property
    def has_inflight(self) -> bool:
        return self._l.inflight is not None

    def snapshot(self) -> tuple:
        """A hashable summary of the machine's state (without the ops object)."""
        lo = self._l
        return (
            self.view,
            lo.caught_up,
            lo.stopped,
            lo.last_seq,
            lo.in_group,
            lo.my_gen,
            lo.my_ref,
            lo.my_kps,
            lo.current_kp,
            lo.inflight,
            lo.next_request,
            lo.ticks,
            lo.wait_seq,
            lo.refused,
        )

    def clone(self, ops: GroupOps) -> Committer:
        """A copy of this machine bound to ``ops`` (a copy of the ops, for exploration)."""
        c = type(self).__new__(type(self))
        c.client = self.client
        c.ops = ops
        c.config = self.config
        c.view = self.view
        lo = _Local.__new__(_Local)
        lo.__dict__.update(self._l.__dict__)
        c._l = lo
        c.notes = []
        return c

    # ------------------------------------------------------------------ entry point

    def handle(self, event: Event) -> list[Action]:
        """Process one event; return the actions to perform, in order."""
        if not isinstance(event, (Delivered, CaughtUp, Disconnected, AppendResult, Tick, Leave)):
            raise CommitterError(f"unknown event type {type(event).__name__}")
        if isinstance(event, Delivered):
            _check_entry(event.entry)
        elif isinstance(event, CaughtUp):
            if not isinstance(event.head, int) or isinstance(event.head, bool) or event.head < 0:
                raise CommitterError("CaughtUp.head must be an int >= 0")
        elif isinstance(event, AppendResult):
            if not isinstance(event.request_id, int) or not isinstance(event.seq, int):
                raise CommitterError("AppendResult fields must be ints")
        out: list[Action] = []
        if self._l.stopped:
            return out
        if isinstance(event, Delivered):
            self._on_entry(event.entry, out)
        elif isinstance(event, CaughtUp):
            self._on_caught_up(event.head, out)
        elif isinstance(event, Disconnected):
            self._l.caught_up = False
        elif isinstance(event, AppendResult):
            self._on_result(event, out)
        elif isinstance(event, Tick):
            self._l.ticks += 1
            self._l.wait_seq = 0
        elif isinstance(event, Leave):
            self._l.stopped = True
            if self._l.in_group:
                self._drop_group("left", out)
            return out
        self._decide(out)
        return out

    # ------------------------------------------------------------------ event handlers

    def _note(self, seq: int, outcome: str) -> None:
        if len(self.notes) < 256:
            self.notes.append((seq, outcome))

    def _on_entry(self, entry: DecodedEntry, out: list[Action]) -> None:
        lo = self._l
        if entry.seq <= lo.last_seq:
            return  # duplicate delivery
        if entry.seq != lo.last_seq + 1:
            out.append(RequestResync(lo.last_seq + 1))
            return
        old = self.view
        new, outcome = old.apply(entry)
        if outcome != "applied":
            self._note(entry.seq, outcome)
        lo.last_seq = entry.seq
        body = entry.body
        mine = entry.sender == self.client
        inf = lo.inflight

        # Resolve our append in flight.
        own_create = own_commit = False
        if inf is not None:
            if inf.kind == "kp":
                ours = mine and isinstance(body, KeyPackageMsg) and body.kp_id == inf.kp_id
                if ours or entry.seq == inf.accepted_seq:
                    lo.inflight = None
            elif inf.kind == "proposal":
                ours = mine and isinstance(body, UpdateProposalMsg) and body.proposal == inf.commit
                if ours or entry.seq == inf.accepted_seq:
                    lo.inflight = None
            elif entry.seq == inf.expected_seq:
                lo.inflight = None
                if mine and outcome == "applied" and inf.kind == "create" and isinstance(body, CreateMsg):
                    own_create = True
                elif (
                    mine
                    and outcome == "applied"
                    and inf.kind == "commit"
                    and isinstance(body, CommitMsg)
                    and body.commit == inf.commit
                ):
                    own_commit = True
                else:  # someone else won the slot: our compare-and-append failed
                    self._abandon(inf)

        self.view = new
        if outcome != "applied":
            return

        if isinstance(body, UpdateProposalMsg):
            if mine and lo.in_group:
                lo.ticks = 0  # our refresh is in the view: the next one is due an interval later
            if lo.in_group and not mine and lo.my_gen == new.gen:
                process_proposal = getattr(self.ops, "process_proposal", None)
                if process_proposal is not None:
                    try:
                        process_proposal(body.proposal)
                    except GroupOpsError:
                        self._note(entry.seq, "proposal-invalid")
        elif isinstance(body, CreateMsg):
            if own_create:
                lo.in_group = True
                lo.my_gen = new.gen
                lo.my_ref = new.members[0]
                lo.my_kps = lo.my_kps - {body.kp_id}
                lo.ticks = 0
                out.append(EpochChanged(new.gen, 0))
            elif lo.in_group:
                self._drop_group("group-recreated", out)
        elif isinstance(body, CommitMsg):
            if own_commit:
                self_update = not body.adds and not body.removes
                self._guard(lambda: self.ops.merge_pending(), new, out, "merge-failed", self_update=self_update)
            elif lo.in_group:
                if lo.my_gen != old.gen or self.ops.epoch != old.epoch:
                    self._drop_group("missed-epoch", out)
                elif lo.my_ref in body.removes:
                    self._drop_group("removed", out)
                else:
                    self._guard(lambda: self.ops.process(body.commit), new, out, "fork")
            else:
                mine_add = [w for w in body.adds if w.ref.client == self.client and w.ref.kp_id in lo.my_kps]
                if mine_add:
                    ref = mine_add[0].ref
                    lo.my_kps = lo.my_kps - {ref.kp_id}
                    welcome = body.welcome
                    if welcome is None:
                        self._note(entry.seq, "welcome-missing")
                    else:
                        try:
                            self.ops.join(welcome, ref.kp_id)
                        except GroupOpsError:
                            self._note(entry.seq, "welcome-failed")
                            self._safe_reset()
                        else:
                            if self.ops.epoch == new.epoch:
                                lo.in_group = True
                                lo.my_gen = new.gen
                                lo.my_ref = ref
                                lo.ticks = 0
                                out.append(EpochChanged(new.gen, new.epoch))
                            else:
                                self._note(entry.seq, "welcome-wrong-epoch")
                                self._safe_reset()
        # Standing check: are we still a live member of the view's group?
        if lo.in_group and (lo.my_gen != new.gen or lo.my_ref not in new.members or lo.my_ref in new.stale):
            self._drop_group("not-a-live-member", out)

    def _guard(self, fn, new: View, out: list[Action], reason: str, self_update: bool = False) -> None:
        lo = self._l
        try:
            fn()
        except GroupOpsError:
            self._drop_group(reason, out)
            return
        if self.ops.epoch != new.epoch:
            self._drop_group("epoch-mismatch", out)
            return
        if self_update and lo.my_ref == new.committer_ref():
            lo.ticks = 0
        out.append(EpochChanged(new.gen, new.epoch))

    def _abandon(self, inf: _Inflight) -> None:
        """Our compare-and-append lost (or was lost): undo its local effect."""
        if inf.kind == "commit":
            try:
                self.ops.clear_pending()
            except GroupOpsError:
                pass
        elif inf.kind == "create":
            self._safe_reset()

    def _safe_reset(self) -> None:
        try:
            self.ops.reset()
        except GroupOpsError:
            pass

    def _drop_group(self, reason: str, out: list[Action]) -> None:
        lo = self._l
        if lo.inflight is not None and lo.inflight.kind == "commit":
            # A commit of ours still in flight can no longer be merged: forget about it.
            # If the DS accepts it anyway, it is an ordinary entry that we will ignore.
            lo.inflight = replace(lo.inflight, kind="orphan")
        self._safe_reset()
        lo.in_group = False
        lo.my_ref = None
        out.append(GroupLost(reason))

    def _on_caught_up(self, head: int, out: list[Action]) -> None:
        lo = self._l
        if head > lo.last_seq:
            out.append(RequestResync(lo.last_seq + 1))
            return
        lo.caught_up = True
        inf = lo.inflight
        if inf is not None:
            # Everything up to head is delivered and our entry is not among them: the
            # append was lost with the connection (or resolved without our noticing).
            if inf.accepted_seq is not None:
                if inf.accepted_seq <= head:
                    lo.inflight = None
            elif inf.kind in ("kp", "proposal") or (inf.expected_seq is not None and inf.expected_seq > head):
                lo.inflight = None
                self._abandon(inf)

    def _on_result(self, res: AppendResult, out: list[Action]) -> None:
        lo = self._l
        inf = lo.inflight
        if inf is None or res.request_id != inf.request_id:
            return
        if res.accepted:
            if res.seq > lo.last_seq:
                lo.inflight = replace(inf, accepted_seq=res.seq)
            # else: the entry was already delivered and resolved the append
        else:
            # Refused: a compare-and-append lost the slot (the log head moved to
            # ``res.seq`` or further), or the DS refused the message (limits).  Act again
            # only after catching up with the entry that won, or after a Tick.
            lo.inflight = None
            self._abandon(inf)
            lo.wait_seq = max(res.seq, inf.expected_seq or 0, lo.last_seq + 1)

    # ------------------------------------------------------------------ decisions

    def _append(
        self, kind: str, body: Body, expected: int | None, out: list[Action], kp_id: bytes | None = None
    ) -> None:
        lo = self._l
        rid = lo.next_request
        lo.next_request += 1
        commit = body.commit if isinstance(body, CommitMsg) else None
        lo.inflight = _Inflight(rid, kind, expected, kp_id, None, commit)
        out.append(RequestAppend(rid, body, expected))

    def _decide(self, out: list[Action]) -> None:
        lo = self._l
        if not lo.caught_up or lo.stopped or lo.inflight is not None or lo.last_seq < lo.wait_seq:
            return
        v = self.view
        nxt = lo.last_seq + 1
        if not lo.in_group:
            cur = lo.current_kp
            ref = MemberRef(self.client, cur) if cur is not None else None
            if ref is not None and cur in lo.my_kps and v.is_waiting(ref):
                if not (v.creator() == self.client and v.waiting[0].ref == ref):
                    return  # wait for the committer to add us
                try:
                    self.ops.create(cur)
                except GroupOpsError:
                    # This KeyPackage cannot found a group: drop it and publish a fresh one.
                    self._safe_reset()
                    lo.my_kps = lo.my_kps - {cur}
                    lo.current_kp = None
                else:
                    self._append("create", CreateMsg(cur), nxt, out)
                    return
            # Not waiting with a usable KeyPackage: publish a fresh one.
            kp_id, kp = self.ops.new_key_package()
            lo.my_kps = lo.my_kps | {kp_id}
            lo.current_kp = kp_id
            self._append("kp", KeyPackageMsg(kp_id, kp), None, out, kp_id=kp_id)
            return
        # Member of the current group.
        due = bool(self.config.update_interval) and lo.ticks >= self.config.update_interval
        if v.committer_ref() == lo.my_ref:
            # Adds (arrival order) first, then removals, then the members' update
            # proposals or our own periodic self-update (an empty commit with a path).
            # A KeyPackage our group refused to add is passed over while it waits.
            lo.refused = frozenset(r for r in lo.refused if v.is_waiting(r))
            waiting = tuple(w for w in v.waiting if w.ref not in lo.refused)
            if waiting:
                adds = waiting
                removes: tuple[MemberRef, ...] = ()
            else:
                adds = ()
                removes = tuple(m for m in v.members if m in v.stale)
            if adds or removes or v.updates or due:
                self._commit(adds, removes, nxt, out)
            return
        propose = getattr(self.ops, "propose_update", None)
        if due and propose is not None and lo.my_ref not in v.updates:
            try:
                proposal = propose()
            except GroupOpsError:
                self._drop_group("propose-failed", out)
                return
            # ``ticks`` is reset when the proposal lands in the view: one that lost the race
            # with a commit (ignored: wrong epoch) or was lost is made again for the new epoch
            rid = lo.next_request
            lo.next_request += 1
            lo.inflight = _Inflight(rid, "proposal", None, None, None, proposal)
            out.append(RequestAppend(rid, UpdateProposalMsg(v.gen, v.epoch, proposal), None))

    def _commit(self, adds: tuple[Waiting, ...], removes: tuple[MemberRef, ...], nxt: int, out: list[Action]) -> bool:
        v = self.view
        try:
            commit, welcome = self.ops.commit([w.key_package for w in adds], list(removes))
        except GroupOpsError:
            refused = self._refused_adds(adds)
            if refused:
                # A waiting KeyPackage that MLS will not add (a hostile or stale one): pass
                # it over and act again at the next event, instead of dropping the group
                # (every committer in turn would fail on it the same way).
                self._l.refused |= refused
                for ref in sorted(refused):
                    self._note(self._l.last_seq, f"refused:keypackage:{ref.client}")
                return False
            # Our own state cannot commit: resynchronise.
            self._drop_group("commit-failed", out)
            return False
        self._append("commit", CommitMsg(v.gen, v.epoch, adds, removes, commit, welcome), nxt, out)
        return True

    def _refused_adds(self, adds: tuple[Waiting, ...]) -> frozenset[MemberRef]:
        """The adds our group refuses one by one (each tried in a commit that is discarded)."""
        refused = set()
        for w in adds:
            try:
                self.ops.commit([w.key_package], [])
            except GroupOpsError:
                refused.add(w.ref)
            else:
                self.ops.clear_pending()
        return frozenset(refused)


def _check_entry(entry: object) -> None:
    if not isinstance(entry, DecodedEntry):
        raise CommitterError("Delivered.entry must be a DecodedEntry")
    if not isinstance(entry.seq, int) or isinstance(entry.seq, bool) or entry.seq < 1:
        raise CommitterError("DecodedEntry.seq must be an int >= 1")
    if not isinstance(entry.body, (*_NOTICES, *_CLIENT_BODIES)):
        raise CommitterError("DecodedEntry.body has an unknown type")
    if entry.sender is not None and not isinstance(entry.sender, str):
        raise CommitterError("DecodedEntry.sender must be a str or None")
