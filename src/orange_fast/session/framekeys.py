"""SFrame keys of a session as the ``FrameKeys`` provider the aiortc hooks read.

A thin adapter over :class:`orange_fast.session.keys.EpochKeys` (RFC 9605 §5.2 keys and
KIDs per MLS epoch, previous epochs kept for a grace period): it owns the SFrame
:class:`~orange_fast.sframe.Context`, and adds the counters the hooks read:
``key_generation()`` (every send-key change) and ``keyframe_generation()`` (only an epoch
that adds a member: receivers hold frames of an epoch they have not reached, so a leave or
a self-update loses nothing and needs no keyframe; a joiner has no earlier picture), and
``sender_of(kid)`` (the leaf index a KID names, to bind a receiver to its sender).  The caller (the session client)
passes the time (``now``, the event loop's clock) and calls :meth:`expire` after the
grace period; this module reads no clock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from ..sframe import CipherSuite, Context
from .keys import EXPORTER_LABEL, EpochKeys, KidLayout

__all__ = ["EXPORTER_LABEL", "SessionFrameKeys"]


class SessionFrameKeys:
    """Thread-safe SFrame key holder fed by the session client (implements ``FrameKeys``)."""

    def __init__(
        self,
        suite: int | CipherSuite = CipherSuite.AES_128_GCM_SHA256_128,
        *,
        grace_period: float = 2.0,
        layout: KidLayout | None = None,
        replay_window: int = 128,
    ) -> None:
        self.suite = CipherSuite(int(suite))
        self._context = Context(self.suite, replay_window=replay_window)
        self._keys = EpochKeys(self._context, layout=layout, grace_period=grace_period)
        self._lock = threading.Lock()
        self._generation = 0
        self._keyframe_generation = 0
        self._members: frozenset[int] | None = None

    def __repr__(self) -> str:
        return f"SessionFrameKeys({self._keys!r}, generation={self._generation})"

    # -- FrameKeys ---------------------------------------------------------------------
    @property
    def context(self) -> Context:
        return self._context

    def send_kid(self) -> int | None:
        return self._keys.send_kid

    def key_generation(self) -> int:
        with self._lock:
            return self._generation

    def keyframe_generation(self) -> int:
        """Changes when an epoch adds a member (a joiner needs a keyframe; nothing else does)."""
        with self._lock:
            return self._keyframe_generation

    def sender_of(self, kid: int) -> int:
        """The MLS leaf index of the sender a KID names (RFC 9605 §5.2 layout)."""
        return self._keys.layout.sender_of(kid)

    def epochs_ahead(self, kid: int) -> int | None:
        """How many epochs after the current one ``kid``'s epoch lies (mod 2**E), or ``None``."""
        return self._keys.layout.epochs_ahead(kid, self._keys.epoch)

    # -- management --------------------------------------------------------------------
    def install(
        self,
        export_secret: Callable[[bytes, bytes, int], bytes],
        epoch: int,
        own_index: int,
        indices: Iterable[int],
        now: float,
    ) -> int:
        """Install the keys of a new epoch from the MLS exporter; return the new send KID."""
        members = frozenset(indices)
        with self._lock:
            kid = self._keys.install_from_exporter(export_secret, epoch, own_index, members, now)
            self._generation += 1
            if self._members is None or members - self._members:  # first epoch, a rejoin or a join
                self._keyframe_generation += 1
            self._members = members
            return kid

    def expire(self, now: float) -> None:
        """Drop the previous epochs whose grace period has ended at ``now``."""
        self._keys.expire(now)

    def clear(self) -> None:
        """Drop every key (the group state is gone)."""
        with self._lock:
            had_key = self._keys.send_kid is not None or bool(self._keys.installed())
            self._keys.clear()
            self._members = None
            if had_key:
                self._generation += 1

    def installed(self) -> dict[int, str]:
        """KID -> "send"/"recv" of every installed key."""
        return self._keys.installed()
