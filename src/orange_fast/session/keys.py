"""SFrame keys from MLS epochs (RFC 9605 §5.2), with a grace period across epoch changes.

Per epoch every member derives the same ``base_key``::

    base_key = MLS-Exporter("SFrame 1.0 Base Key", "", suite.Nk)

and every sender ``i`` (its MLS leaf index) gets its own KID::

    KID = (context << (S + E)) | (sender_index << E) | (epoch mod 2**E)

SFrame's KDF mixes the KID into the key and salt, so each sender has its own key and
nonce space although the base key is shared.  A member installs a *send* key for its
own KID and a *receive* key for every other member's KID.

Choices (identical on all members, so all derive the same KIDs):

* ``E`` (``epoch_bits``, default 8) and ``S`` (``sender_bits``, default 16, i.e. groups of
  up to 65 536 leaves) are fixed per :class:`~orange_fast.sframe.kid.KidLayout` (the one
  definition of the layout, shared with the aiortc hooks), not derived from the tree size.
  With the default ``context = 0``, ``S`` does not change any KID at all (it only places
  the context field), so a fixed ``S`` costs nothing; a leaf index that does not fit in
  ``S`` bits is refused.  KIDs stay small: a 40-member group at epoch 5 uses KIDs below
  ``40 << 8``, a 2-3 byte SFrame header.
* The previous epochs' receive keys stay installed for ``grace_period`` (time units of
  the caller: the ``now`` values passed in; the module never reads a clock), so frames
  sent just before an epoch change still decrypt: no media dropout.  They are dropped
  when the period ends, or at once when a new epoch with the same low ``E`` bits
  arrives (RFC 9605 §5.2: the KIDs would collide).  Keys of removed members live only in
  old epochs, so they are gone for good after the grace period.
* Our own previous send key is kept for the same grace period (a worker thread that read
  the old KID a moment before the switch can still encrypt its frame), then removed.
  SFrame counters are per KID and never reused, so no nonce repeats.

The bookkeeping is a pure object (:class:`KeyRing`) that returns the list of operations
to perform; :class:`EpochKeys` applies them to an :class:`orange_fast.sframe.Context`
and exposes the current send KID thread-safely.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..sframe.kid import KidLayout, KidLayoutError

__all__ = [
    "EXPORTER_LABEL",
    "KidLayout",
    "KidLayoutError",
    "KeyOp",
    "KeyRing",
    "EpochKeys",
    "KeyScheduleError",
]

EXPORTER_LABEL = b"SFrame 1.0 Base Key"


class KeyScheduleError(ValueError):
    """Bad input to the key schedule (wrong sizes, indices, epochs); no state was changed."""


def _int(v: object, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise TypeError(f"{what} must be an int")
    return v


@dataclass(frozen=True)
class KeyOp:
    """One operation on an SFrame context: ``("send"|"recv", kid)`` to add, ``("remove", kid)``."""

    op: str
    kid: int


@dataclass(frozen=True)
class _Epoch:
    epoch: int
    base_key: bytes
    send_kid: int
    recv_kids: frozenset[int]
    expires: float | None  # None: current epoch

    def kids(self) -> frozenset[int]:
        return self.recv_kids | {self.send_kid}

    def __repr__(self) -> str:  # never show the key
        return (
            f"_Epoch(epoch={self.epoch}, send_kid={self.send_kid}, recv={sorted(self.recv_kids)}, "
            f"expires={self.expires})"
        )


class KeyRing:
    """Pure bookkeeping of which KIDs are installed, per epoch, and when they expire."""

    def __init__(self, layout: KidLayout, key_size: int, grace_period: float) -> None:
        if not isinstance(layout, KidLayout):
            raise TypeError("layout must be a KidLayout")
        if _int(key_size, "key_size") <= 0:
            raise KeyScheduleError("key_size must be positive")
        if not isinstance(grace_period, (int, float)) or isinstance(grace_period, bool) or grace_period < 0:
            raise KeyScheduleError("grace_period must be a number >= 0")
        self.layout = layout
        self.key_size = key_size
        self.grace_period = float(grace_period)
        self.current: _Epoch | None = None
        self.previous: tuple[_Epoch, ...] = ()

    def __repr__(self) -> str:
        cur = None if self.current is None else self.current.epoch
        return f"KeyRing(current_epoch={cur}, previous={[p.epoch for p in self.previous]})"

    @property
    def send_kid(self) -> int | None:
        return None if self.current is None else self.current.send_kid

    def installed(self) -> dict[int, str]:
        """KID -> "send"/"recv" for everything installed now."""
        out: dict[int, str] = {}
        for ep in (*self.previous, *([self.current] if self.current else [])):
            out[ep.send_kid] = "send"
            for k in ep.recv_kids:
                out[k] = "recv"
        return out

    def install(
        self, epoch: int, base_key: bytes, own_index: int, member_indices: Iterable[int], now: float
    ) -> list[tuple[KeyOp, bytes | None]]:
        """Make ``epoch`` current; return the operations ``(op, base_key or None)`` in order.

        ``member_indices`` are the leaf indices of every member (ours included or not).
        Raises :class:`KeyScheduleError`/``TypeError`` without changing anything.
        """
        ep = _int(epoch, "epoch")
        own = _int(own_index, "own_index")
        if not isinstance(base_key, (bytes, bytearray, memoryview)):
            raise TypeError("base_key must be bytes-like")
        key = bytes(base_key)
        if len(key) != self.key_size:
            raise KeyScheduleError(f"base_key must be {self.key_size} bytes")
        if not isinstance(now, (int, float)) or isinstance(now, bool):
            raise TypeError("now must be a number")
        idxs = set()
        for i in member_indices:
            idxs.add(_int(i, "member index"))
        idxs.discard(own)
        if ep < 0:
            raise KeyScheduleError("epoch must be >= 0")
        if self.current is not None:
            if ep == self.current.epoch:
                raise KeyScheduleError(f"epoch {ep} is already installed")
        try:
            send_kid = self.layout.kid(own, ep)
            recv = frozenset(self.layout.kid(i, ep) for i in idxs)  # validates every index
        except KidLayoutError as exc:
            raise KeyScheduleError(str(exc)) from None
        ops: list[tuple[KeyOp, bytes | None]] = []
        keep: list[_Epoch] = []
        olds = list(self.previous) + ([self.current] if self.current is not None else [])
        low = self.layout.low_bits(ep)
        new_kids = recv | {send_kid}
        for old in olds:
            if self.layout.low_bits(old.epoch) == low or old.kids() & new_kids:
                ops.extend((KeyOp("remove", k), None) for k in sorted(old.kids()))
            elif old.expires is None:
                keep.append(_Epoch(old.epoch, old.base_key, old.send_kid, old.recv_kids, now + self.grace_period))
            else:
                keep.append(old)
        ops.append((KeyOp("send", send_kid), key))
        ops.extend((KeyOp("recv", k), key) for k in sorted(recv))
        self.previous = tuple(keep)
        self.current = _Epoch(ep, key, send_kid, recv, None)
        return ops

    def expire(self, now: float) -> list[KeyOp]:
        """Drop previous epochs whose grace period ended at or before ``now``."""
        if not isinstance(now, (int, float)) or isinstance(now, bool):
            raise TypeError("now must be a number")
        ops: list[KeyOp] = []
        keep = []
        for old in self.previous:
            if old.expires is not None and old.expires <= now:
                ops.extend(KeyOp("remove", k) for k in sorted(old.kids()))
            else:
                keep.append(old)
        self.previous = tuple(keep)
        return ops

    def retire(self, now: float) -> list[KeyOp]:
        """The group was lost: the current epoch starts its grace period (no new epoch)."""
        if self.current is not None:
            c = self.current
            retired = _Epoch(c.epoch, c.base_key, c.send_kid, c.recv_kids, now + self.grace_period)
            self.previous = self.previous + (retired,)
            self.current = None
        return self.expire(now)

    def clear(self) -> list[KeyOp]:
        """Drop every key now."""
        ops = [KeyOp("remove", k) for k in sorted(self.installed())]
        self.current = None
        self.previous = ()
        return ops


class EpochKeys:
    """Keeps an SFrame :class:`~orange_fast.sframe.Context` in step with the MLS epochs.

    Thread-safe: the session thread calls :meth:`install_epoch` / :meth:`expire`; media
    worker threads read :attr:`send_kid` or call :meth:`encrypt` / :meth:`decrypt`.
    """

    def __init__(
        self,
        context: object,
        *,
        layout: KidLayout | None = None,
        grace_period: float = 2.0,
    ) -> None:
        suite = getattr(context, "suite", None)
        if suite is None or not hasattr(suite, "Nk"):
            raise TypeError("context must be an orange_fast.sframe.Context")
        self.context = context
        self.suite = suite
        self._ring = KeyRing(layout or KidLayout(), int(suite.Nk), grace_period)
        self._lock = threading.Lock()
        self._generation = 0

    def __repr__(self) -> str:
        return f"EpochKeys({self._ring!r})"

    @property
    def layout(self) -> KidLayout:
        return self._ring.layout

    @property
    def send_kid(self) -> int | None:
        """The KID our frames are encrypted under now (None before the first epoch)."""
        with self._lock:
            return self._ring.send_kid

    @property
    def generation(self) -> int:
        """Counts key changes (install, retire, clear): media hooks compare it to notice a switch."""
        with self._lock:
            return self._generation

    @property
    def epoch(self) -> int | None:
        with self._lock:
            return None if self._ring.current is None else self._ring.current.epoch

    def installed(self) -> dict[int, str]:
        with self._lock:
            return self._ring.installed()

    def install_from_exporter(
        self,
        export_secret: Callable[[bytes, bytes, int], bytes],
        epoch: int,
        own_index: int,
        member_indices: Iterable[int],
        now: float,
    ) -> int:
        """Derive ``base_key = export_secret("SFrame 1.0 Base Key", b"", Nk)`` and install it."""
        base_key = export_secret(EXPORTER_LABEL, b"", int(self.suite.Nk))
        return self.install_epoch(epoch, base_key, own_index, member_indices, now)

    def install_epoch(
        self, epoch: int, base_key: bytes, own_index: int, member_indices: Iterable[int], now: float
    ) -> int:
        """Install an epoch's keys (send key for us, receive keys for the others); return our KID."""
        members = list(member_indices)
        with self._lock:
            ring = self._ring
            saved = (ring.current, ring.previous)
            ops = ring.install(epoch, base_key, own_index, members, now)
            try:
                self._apply(ops)
            except Exception:
                ring.current, ring.previous = saved
                raise
            self._generation += 1
            return ring.current.send_kid  # type: ignore[union-attr]

    def expire(self, now: float) -> None:
        """Drop previous epochs whose grace period has ended."""
        with self._lock:
            self._apply([(op, None) for op in self._ring.expire(now)])

    def retire(self, now: float) -> None:
        """The group was lost: keep the current keys for the grace period only."""
        with self._lock:
            self._apply([(op, None) for op in self._ring.retire(now)])
            self._generation += 1

    def clear(self) -> None:
        """Remove every key now."""
        with self._lock:
            self._apply([(op, None) for op in self._ring.clear()])
            self._generation += 1

    def encrypt(self, frame: bytes, metadata: bytes = b"") -> bytes:
        """Encrypt a frame under the current send KID (raises LookupError before any epoch)."""
        kid = self.send_kid
        if kid is None:
            raise LookupError("no epoch installed yet")
        return self.context.encrypt(kid, frame, metadata)  # type: ignore[attr-defined]

    def decrypt(self, ciphertext: bytes, metadata: bytes = b"") -> bytes:
        return self.context.decrypt(ciphertext, metadata)  # type: ignore[attr-defined]

    def _apply(self, ops: list[tuple[KeyOp, bytes | None]]) -> None:
        ctx = self.context
        for op, key in ops:
            if op.op == "remove":
                if ctx.has_key(op.kid):  # type: ignore[attr-defined]
                    ctx.remove_key(op.kid)  # type: ignore[attr-defined]
            elif op.op == "send":
                if ctx.has_key(op.kid):  # type: ignore[attr-defined]
                    ctx.remove_key(op.kid)  # type: ignore[attr-defined]
                ctx.add_send_key(op.kid, key)  # type: ignore[attr-defined]
            else:
                ctx.add_receive_key(op.kid, key)  # type: ignore[attr-defined]
