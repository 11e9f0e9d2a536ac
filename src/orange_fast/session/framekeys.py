"""SFrame keys of a session as the ``FrameKeys`` provider the aiortc hooks read.

A thin adapter over :class:`orange_fast.session.keys.EpochKeys` (RFC 9605 §5.2 keys and
KIDs per MLS epoch, previous epochs kept for a grace period): it owns the SFrame
:class:`~orange_fast.sframe.Context`, and adds the ``key_generation()`` counter the hooks
use to force a keyframe whenever the send key changes.  The caller (the session client)
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
        self._epochs: list[tuple[int, int]] = []

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
        with self._lock:
            kid = self._keys.install_from_exporter(export_secret, epoch, own_index, list(indices), now)
            self._generation += 1
            return kid

    def expire(self, now: float) -> None:
        """Drop the previous epochs whose grace period has ended at ``now``."""
        self._keys.expire(now)

    def clear(self) -> None:
        """Drop every key (the group state is gone)."""
        with self._lock:
            had_key = self._keys.send_kid is not None or bool(self._keys.installed())
            self._keys.clear()
            if had_key:
                self._generation += 1

    def installed(self) -> dict[int, str]:
        """KID -> "send"/"recv" of every installed key."""
        return self._keys.installed()
