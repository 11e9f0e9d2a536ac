"""The session client: one participant of one room, from the delivery log to SFrame keys.

:class:`SessionClient` connects a :class:`~orange_fast.delivery.DeliveryClient` to a
room, decodes the ordered log (:mod:`.wire`), feeds it to the pure designated-committer
machine (:class:`~.committer.Committer`) whose MLS work runs on the real
``orange_fast.mls.Group`` (:mod:`.mlsops`), performs the machine's actions (appends,
resyncs), and keeps an SFrame :class:`~orange_fast.sframe.Context` current with the MLS
epoch (:mod:`.framekeys`, previous epochs' receive keys kept for a grace period).

It implements the ``FrameKeys`` protocol of the aiortc hooks (:attr:`context`,
:meth:`send_kid`, :meth:`key_generation`) and exposes the roster *from MLS state*
(identities and signature keys of the leaves), the epoch authenticator and the safety
number, plus events (:class:`SessionEvent`, kinds in :data:`EVENT_KINDS`).

Members are told apart by (identity, signature key), not by name: a client that rejoins
shows as ``left`` (old key) and ``joined`` (new key), and two leaves with one identity
(a rejoin in progress, or a hostile member) are flagged (:attr:`RosterEntry.duplicate`,
event ``duplicate``).

I/O stays at the edges: one asyncio task reads the log, one drives the timers (Tick
events for periodic self-updates, connection watch), and appends run as tasks whose
results come back as events.  The committer is only ever called from the event loop,
one event at a time.

Hostile input: a handshake message that does not decode or validate is ignored by every
client alike (it becomes a no-op entry, logged as ``rejected``); an entry the committer
ignores (replayed, wrong epoch, not from the designated committer) is logged; an MLS
failure makes only the affected member resynchronise (rejoin).  Nothing in the log can
raise out of the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..delivery import DeliveryClient
from ..delivery.errors import (
    ClientClosedError,
    ConnectionLostError,
    DeliveryError,
    ServerError,
    ServerSequenceConflictError,
    SupersededError,
)
from ..mls import CipherSuite as MLSCipherSuite
from ..sframe import CipherSuite as SFrameCipherSuite
from ..sframe import Context
from .committer import (
    Action,
    AppendResult,
    CaughtUp,
    CommitMsg,
    Committer,
    CommitterConfig,
    Delivered,
    Disconnected,
    EpochChanged,
    GroupLost,
    Leave,
    Rejected,
    RequestAppend,
    RequestResync,
    Tick,
)
from .framekeys import SessionFrameKeys
from .mlsops import MLSGroupOps
from .safety import SafetyNumber, safety_number
from .wire import WireDecoder, WireError, encode_body

__all__ = ["SessionConfig", "SessionEvent", "EVENT_KINDS", "RosterEntry", "SessionClient"]

logger = logging.getLogger("orange_fast.session.client")


@dataclass(frozen=True)
class SessionConfig:
    """Tunables of a :class:`SessionClient`.

    Attributes:
        mls_suite: MLS cipher suite of the room (all clients must agree).
        sframe_suite: SFrame cipher suite of the media.
        tick_interval: seconds between timer ticks (and connection checks).
        update_interval: self-update (post-compromise security) every N ticks; 0 = never.
            The default, 600 ticks of 0.5 s, refreshes each member's leaf every 5 minutes
            (cost per update in ``docs/session-security.md``).
        grace_period: seconds the previous epoch's receive keys stay usable.
        append_timeout: seconds an append may wait for its answer before the connection is
            considered broken (then it is dropped and resumed).
    """

    mls_suite: int = 1
    sframe_suite: int = int(SFrameCipherSuite.AES_128_GCM_SHA256_128)
    tick_interval: float = 0.5
    update_interval: int = 600
    grace_period: float = 2.0
    append_timeout: float = 10.0

    def __post_init__(self) -> None:
        MLSCipherSuite(self.mls_suite)
        SFrameCipherSuite(self.sframe_suite)
        for name in ("tick_interval", "grace_period", "append_timeout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < 86400:
                raise ValueError(f"{name} must be a positive number of seconds")
        CommitterConfig(self.update_interval)


@dataclass(frozen=True)
class RosterEntry:
    """A member as MLS says: identity from its credential, its signature key, its leaf.

    ``duplicate`` flags an identity held by more than one leaf: normal for one epoch while
    a client rejoins (its old leaf is removed right after its new one is added), a sign
    of trouble if it lasts.
    """

    identity: str
    signature_key: bytes
    leaf_index: int
    duplicate: bool = False

    def __repr__(self) -> str:
        flag = ", duplicate" if self.duplicate else ""
        return f"RosterEntry({self.identity!r}, leaf={self.leaf_index}, key={self.signature_key[:4].hex()}...{flag})"


EVENT_KINDS = frozenset(
    {"epoch", "roster", "joined", "left", "duplicate", "safety", "lost", "rejected", "superseded", "failed"}
)
"""Every :attr:`SessionEvent.kind`."""


@dataclass(frozen=True)
class SessionEvent:
    """Something the application may show: kind plus details.

    Kinds:

    * ``epoch``: new keys installed (``gen``, ``epoch``);
    * ``roster``: the roster changed (``detail`` = the identities, comma-separated, leaf
      order); followed by one ``joined``/``left`` per member that came or went;
    * ``joined``/``left``: a member, by ``identity`` and ``leaf``; members are told apart
      by (identity, signature key), so a rejoin is a ``left`` plus a ``joined``;
    * ``duplicate``: ``identity`` is held by more than one leaf (see :class:`RosterEntry`);
    * ``safety``: ``detail`` = the new safety number (compare it again);
    * ``lost``: ``detail`` = why the group state was dropped (the client rejoins by itself);
    * ``rejected``: ``detail`` = why a log entry was ignored;
    * ``superseded``: another connection with this client id took over; the session is
      over (keys dropped) and no ``failed`` follows;
    * ``failed``: the delivery connection ended for good (``detail`` = the error's name).
    """

    kind: str
    gen: int = 0
    epoch: int = 0
    identity: str | None = None
    detail: str = ""
    leaf: int | None = None


# --------------------------------------------------------------------------- the client


@dataclass
class _Stats:
    appends: int = 0
    append_bytes: int = 0
    entries: int = 0
    entry_bytes: int = 0
    rejected: int = 0
    ignored: int = 0
    resyncs: int = 0
    group_losses: int = 0
    internal_errors: int = 0
    lost_reasons: list[str] = field(default_factory=list)


class SessionClient:
    """One participant in one room (see the module docstring).

    Args:
        url, room, token, client_id: where to connect; ``client_id`` is also the MLS
            credential identity (ASCII, the delivery service's id rules).
        config: :class:`SessionConfig`.
        on_event: optional callback for every :class:`SessionEvent` (also queued in
            :attr:`events`).
        delivery_options: extra keyword arguments for :class:`DeliveryClient`.
    """

    def __init__(
        self,
        url: str,
        room: str,
        token: bytes,
        client_id: str,
        *,
        config: SessionConfig | None = None,
        on_event: Callable[[SessionEvent], None] | None = None,
        delivery_options: dict[str, Any] | None = None,
    ) -> None:
        self.config = config if config is not None else SessionConfig()
        self.client_id = client_id
        self.room = room
        self._delivery = DeliveryClient(url, room, token, client_id, **(delivery_options or {}))
        self._decoder = WireDecoder(self.config.mls_suite)
        self.ops = MLSGroupOps(self.config.mls_suite, client_id.encode("ascii"), self._decoder)
        self.committer = Committer(client_id, self.ops, CommitterConfig(self.config.update_interval))
        self.frame_keys = SessionFrameKeys(self.config.sframe_suite, grace_period=self.config.grace_period)
        self.events: asyncio.Queue[SessionEvent] = asyncio.Queue(maxsize=10000)
        self._on_event = on_event
        self.stats = _Stats()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reader: asyncio.Task[None] | None = None
        self._timer: asyncio.Task[None] | None = None
        self._seen_connections = 0
        self._disconnected_fed = False
        self._catchup_target: int | None = None
        self._roster: tuple[RosterEntry, ...] = ()
        self._gen = 0
        self._epoch: int | None = None
        self._authenticator: bytes | None = None
        self._safety: SafetyNumber | None = None
        self._changed = asyncio.Event()
        self._closed = False
        self._notes_seen = 0
        self._grace_handles: list[asyncio.TimerHandle] = []

    def __repr__(self) -> str:
        return f"SessionClient(client_id={self.client_id!r}, room={self.room!r}, epoch={self._epoch})"

    # ------------------------------------------------------------------ FrameKeys

    @property
    def context(self) -> Context:
        """The SFrame context (send key of this member, receive keys of the others)."""
        return self.frame_keys.context

    def send_kid(self) -> int | None:
        return self.frame_keys.send_kid()

    def key_generation(self) -> int:
        return self.frame_keys.key_generation()

    def keyframe_generation(self) -> int:
        return self.frame_keys.keyframe_generation()

    def sender_of(self, kid: int) -> int:
        return self.frame_keys.sender_of(kid)

    def epochs_ahead(self, kid: int) -> int | None:
        return self.frame_keys.epochs_ahead(kid)

    # ------------------------------------------------------------------ state

    @property
    def delivery(self) -> DeliveryClient:
        return self._delivery

    @property
    def in_group(self) -> bool:
        return self._epoch is not None

    @property
    def gen(self) -> int:
        return self._gen

    @property
    def epoch(self) -> int | None:
        """The MLS epoch whose keys are current, or None outside a group."""
        return self._epoch

    @property
    def epoch_authenticator(self) -> bytes | None:
        return self._authenticator

    @property
    def roster(self) -> tuple[RosterEntry, ...]:
        """Members of the group from MLS state (leaf order)."""
        return self._roster

    @property
    def safety(self) -> SafetyNumber | None:
        """The current :class:`~.safety.SafetyNumber`, or None outside a group.

        ``.text`` to compare on screen, ``.short`` to read aloud, ``.digest`` for machines,
        ``.matches(other)`` to compare in constant time.
        """
        return self._safety

    @property
    def last_seq(self) -> int:
        return self.committer.last_seq

    def status(self) -> dict[str, Any]:
        """A JSON-friendly summary (no secrets)."""
        return {
            "client": self.client_id,
            "gen": self._gen,
            "epoch": self._epoch,
            "auth": None if self._authenticator is None else self._authenticator.hex(),
            "safety": None if self._safety is None else self._safety.text,
            "safety_short": None if self._safety is None else self._safety.short,
            "roster": [r.identity for r in self._roster],
            "duplicates": sorted({r.identity for r in self._roster if r.duplicate}),
            "seq": self.last_seq,
            "committer": self.committer.view.committer(),
            "idle": self.committer.view.idle(),
            "kid": self.send_kid(),
        }

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect and start reading the room's log (raises the delivery client's errors)."""
        await self._delivery.connect()
        loop = asyncio.get_running_loop()
        self._reader = loop.create_task(self._read_loop())
        self._timer = loop.create_task(self._timer_loop())

    async def leave(self, timeout: float = 5.0) -> None:
        """Hang up: stop acting, drop the keys, say BYE (the server logs LEFT)."""
        if self._closed:
            return
        self._feed(Leave())
        await self._shutdown(leave=True, timeout=timeout)

    async def _shutdown(self, *, leave: bool, timeout: float) -> None:
        self._closed = True
        for task in (self._reader, self._timer, *self._tasks):
            if task is not None:
                task.cancel()
        pending = (t for t in (self._reader, self._timer, *self._tasks) if t is not None)
        await asyncio.gather(*pending, return_exceptions=True)
        for handle in self._grace_handles:
            handle.cancel()
        with contextlib.suppress(DeliveryError, OSError, asyncio.TimeoutError):
            await self._delivery.close(leave=leave, timeout=timeout)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Wait until ``predicate()`` holds (checked after every state change); TimeoutError after ``timeout``."""
        async def waiter() -> None:
            while not predicate():
                event = self._changed
                await event.wait()

        await asyncio.wait_for(waiter(), timeout)

    # ------------------------------------------------------------------ loops

    async def _read_loop(self) -> None:
        dc = self._delivery
        # ``self._closed`` is checked on every turn: on Python < 3.12 ``asyncio.wait_for`` may
        # swallow a cancellation that races with the result, so cancel() alone is not enough.
        while not self._closed:
            self._check_connection()
            try:
                entry = await dc.next_entry(timeout=0.1)
            except asyncio.TimeoutError:
                continue
            except ClientClosedError:
                return
            except SupersededError:
                # Another connection with our client id took over (the same user elsewhere,
                # or someone holding our credential): this session is over.
                logger.warning("superseded: client=%s room=%s", self.client_id, self.room)
                self._feed(Leave())
                self._emit(SessionEvent("superseded", detail="SupersededError"))
                return
            except DeliveryError as exc:
                # A final refusal (superseded by another connection with our id, abuse, bad
                # resume...): the session is over; drop the keys like a hang-up.
                logger.warning("delivery ended for %s: %s", self.client_id, type(exc).__name__)
                self._feed(Leave())
                self._emit(SessionEvent("failed", detail=type(exc).__name__))
                return
            if self._closed:
                return
            self._on_delivery_entry(entry)

    async def _timer_loop(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.config.tick_interval)
            if self._closed:
                return
            self._check_connection()
            self._expire_keys()
            self._feed(Tick())

    def _check_connection(self) -> None:
        dc = self._delivery
        if dc.connections > self._seen_connections:
            if self._seen_connections > 0 and not self._disconnected_fed:
                self._feed(Disconnected())
            self._seen_connections = dc.connections
            self._disconnected_fed = False
            ready = dc.ready
            self._catchup_target = ready.head_seq if ready is not None else dc.last_seq
            self._maybe_caught_up()
        elif not dc.connected and self._seen_connections > 0 and not self._disconnected_fed:
            self._disconnected_fed = True
            self._catchup_target = None
            self._feed(Disconnected())

    def _maybe_caught_up(self) -> None:
        target = self._catchup_target
        if target is not None and self.committer.last_seq >= target:
            self._catchup_target = None
            self._feed(CaughtUp(target))

    # ------------------------------------------------------------------ log entries

    def _on_delivery_entry(self, entry: Any) -> None:
        self.stats.entries += 1
        self.stats.entry_bytes += len(entry.payload)
        try:
            decoded = self._decoder.decode(entry)
        except Exception:  # pragma: no cover - the decoder maps every failure to a rejection
            self.stats.internal_errors += 1
            logger.exception("decoder failed at seq %d", entry.seq)
            return
        body = decoded.body
        if isinstance(body, Rejected):
            self.stats.rejected += 1
            logger.warning(
                "rejected handshake message: room=%s seq=%d sender=%s kind=%s reason=%s",
                self.room, entry.seq, entry.sender, entry.kind, body.reason,
            )
            self._emit(SessionEvent("rejected", detail=body.reason))
        if isinstance(body, CommitMsg):
            self.ops.expect(body.commit, [w.ref for w in body.adds], body.removes)
        self._feed(Delivered(decoded))
        notes = self.committer.notes
        if len(notes) > self._notes_seen:
            for seq, outcome in notes[self._notes_seen :]:
                if outcome.startswith(("ignored", "welcome")):
                    self.stats.ignored += 1
                    logger.info("log entry without effect: room=%s seq=%d outcome=%s", self.room, seq, outcome)
                elif outcome.startswith(("refused", "proposal-invalid")):
                    logger.warning(
                        "hostile or invalid input refused: room=%s seq=%d outcome=%s", self.room, seq, outcome
                    )
            self._notes_seen = len(notes)
        if len(notes) >= 256:
            notes.clear()
            self._notes_seen = 0
        self._maybe_caught_up()

    # ------------------------------------------------------------------ the committer

    def _feed(self, event: Any) -> None:
        try:
            actions = self.committer.handle(event)
        except Exception:
            self.stats.internal_errors += 1
            logger.exception("committer failed on %s", type(event).__name__)
            return
        self._perform(actions)
        self._changed.set()
        self._changed = asyncio.Event()

    def _perform(self, actions: list[Action]) -> None:
        for action in actions:
            try:
                if isinstance(action, RequestAppend):
                    self._spawn(self._append(action))
                elif isinstance(action, EpochChanged):
                    self._epoch_changed(action)
                elif isinstance(action, GroupLost):
                    self._group_lost(action.reason)
                elif isinstance(action, RequestResync):
                    self.stats.resyncs += 1
                    logger.warning("gap in the log at seq %d: reconnecting", action.from_seq)
                    self._delivery.abort_connection()
            except Exception:
                self.stats.internal_errors += 1
                logger.exception("action %s failed", type(action).__name__)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _append(self, action: RequestAppend) -> None:
        try:
            kind, payload = encode_body(action.body)
        except WireError as exc:
            logger.warning("cannot encode a %s: %s", type(action.body).__name__, exc)
            self._feed(AppendResult(action.request_id, False, 0))
            return
        self.stats.appends += 1
        self.stats.append_bytes += len(payload)
        try:
            seq = await self._delivery.append(kind, payload, action.expected_seq, timeout=self.config.append_timeout)
        except ServerSequenceConflictError as exc:
            self._feed(AppendResult(action.request_id, False, int(exc.seq or 0)))
        except (ConnectionLostError, ClientClosedError):
            return  # unknown outcome: resolved when the connection is back and caught up
        except asyncio.TimeoutError:
            logger.warning("append timed out: dropping the connection to resume")
            self._delivery.abort_connection()
        except ServerError as exc:
            logger.warning("append refused: %s", exc.code.name)
            self._feed(AppendResult(action.request_id, False, 0))
        else:
            self._feed(AppendResult(action.request_id, True, seq))

    def _epoch_changed(self, action: EpochChanged) -> None:
        group = self.ops.group
        if group is None:  # pragma: no cover - the committer only reports epochs of a live group
            raise RuntimeError("epoch changed without a group")
        members = group.members
        loop = asyncio.get_running_loop()
        self.frame_keys.install(
            group.export_secret, action.epoch, group.own_leaf_index, [m.leaf_index for m in members], loop.time()
        )
        # Expire the previous epochs after the grace period (the tick loop also expires, in case
        # the timer fires a hair early).
        self._grace_handles = [h for h in self._grace_handles if not h.cancelled()][-16:]
        self._grace_handles.append(loop.call_later(self.config.grace_period + 0.005, self._expire_keys))
        old_roster = self._roster
        names = [m.identity.decode("ascii", "replace") for m in members]
        roster = tuple(
            RosterEntry(name, m.signature_key, m.leaf_index, names.count(name) > 1) for name, m in zip(names, members)
        )
        self._roster = roster
        self._gen = action.gen
        self._epoch = action.epoch
        self._authenticator = group.epoch_authenticator
        safety = safety_number(self._authenticator, [(m.identity, m.signature_key) for m in members])
        changed = self._safety is None or not self._safety.matches(safety)
        self._safety = safety
        self._emit(SessionEvent("epoch", action.gen, action.epoch))
        self._emit_roster_changes(old_roster, roster, action.gen, action.epoch)
        if changed:
            self._emit(SessionEvent("safety", action.gen, action.epoch, detail=safety.text))

    def _expire_keys(self) -> None:
        try:
            self.frame_keys.expire(asyncio.get_running_loop().time())
        except Exception:  # pragma: no cover - defensive: a key bug must not stop the timers
            self.stats.internal_errors += 1
            logger.exception("expiring old epoch keys failed")

    def _group_lost(self, reason: str) -> None:
        self.stats.group_losses += 1
        if len(self.stats.lost_reasons) < 64:
            self.stats.lost_reasons.append(reason)
        logger.info("group state dropped: client=%s reason=%s", self.client_id, reason)
        self.frame_keys.clear()
        self._emit_roster_changes(self._roster, (), self._gen, self._epoch or 0)
        self._roster = ()
        self._epoch = None
        self._authenticator = None
        self._safety = None
        self._emit(SessionEvent("lost", self._gen, 0, detail=reason))

    def _emit_roster_changes(
        self, old: tuple[RosterEntry, ...], new: tuple[RosterEntry, ...], gen: int, epoch: int
    ) -> None:
        """``roster``, then ``joined``/``left`` by (identity, key), then new ``duplicate`` flags."""
        def key(r: RosterEntry) -> tuple[str, bytes]:
            return (r.identity, r.signature_key)

        before = {key(r): r for r in old}
        after = {key(r): r for r in new}
        if before.keys() == after.keys():
            return
        if new:
            self._emit(SessionEvent("roster", gen, epoch, detail=",".join(r.identity for r in new)))
        for k in sorted(after.keys() - before.keys()):
            self._emit(SessionEvent("joined", gen, epoch, identity=k[0], leaf=after[k].leaf_index))
        for k in sorted(before.keys() - after.keys()):
            if new or k[0] != self.client_id:
                self._emit(SessionEvent("left", gen, epoch, identity=k[0], leaf=before[k].leaf_index))
        flagged = {r.identity for r in old if r.duplicate}
        for identity in sorted({r.identity for r in new if r.duplicate} - flagged):
            logger.warning("duplicate identity in the roster: room=%s identity=%s", self.room, identity)
            self._emit(SessionEvent("duplicate", gen, epoch, identity=identity))

    def _emit(self, event: SessionEvent) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.events.put_nowait(event)
        if self._on_event is not None:
            try:
                self._on_event(event)
            except Exception:
                logger.exception("on_event callback failed")
