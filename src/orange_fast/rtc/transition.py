"""Epoch transitions without loss: the receive-side hold and the keyframe policy.

Every join, leave and self-update changes the MLS epoch, and each sender switches to the
new epoch's key as soon as *it* has processed the commit.  A receiver that has not
processed it yet sees frames under a KID it does not hold.  Instead of dropping them (and
asking for a keyframe), the receiver *holds* such a frame: its decoder thread waits until
the key provider installs new keys, then decrypts it and everything queued behind it, in
order.  Frames of the previous epoch keep decrypting through the provider's grace period.

The hold is bounded so that a fork, a removed member or garbage never stalls a track:

* in time (:attr:`TransitionPolicy.hold_time`): a frame still unknown after it is dropped
  (``hold_timeout``), and further unknown frames are dropped at once until the provider's
  keys change again;
* in bytes (:attr:`TransitionPolicy.hold_bytes`): when the frames queued behind a held
  frame exceed it, the hold ends (``hold_overflow``);
* on stop: a receiver being stopped ends any hold at once.

Holding never adds a key: a removed member has no key for an epoch that excludes it, so
it decrypts nothing sent after its removal was committed, however long it holds.

:class:`TransitionPolicy` also says when a key change forces a keyframe: ``"join"`` (the
default: only when the provider's ``keyframe_generation()`` changes, i.e. a member
joined) or ``"every"`` (every send-key change; what the hooks did before the hold).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["HoldState", "TransitionPolicy"]

_KEYFRAMES = ("join", "every")


@dataclass(frozen=True)
class TransitionPolicy:
    """How the hooks behave at an epoch change.

    ``hold_time`` seconds (0 disables holding: unknown KIDs drop at once), ``hold_bytes``
    bytes queued behind a held frame at most, ``keyframes`` ``"join"`` or ``"every"``.
    """

    hold_time: float = 1.0
    hold_bytes: int = 4 << 20
    keyframes: str = "join"
    poll_interval: float = 0.001

    def __post_init__(self) -> None:
        for name in ("hold_time", "poll_interval"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 60:
                raise ValueError(f"{name} must be a number of seconds in 0..60")
        if not isinstance(self.hold_bytes, int) or isinstance(self.hold_bytes, bool) or self.hold_bytes < 0:
            raise ValueError("hold_bytes must be an int >= 0")
        if self.keyframes not in _KEYFRAMES:
            raise ValueError(f"keyframes must be one of {_KEYFRAMES}")

    @classmethod
    def legacy(cls) -> TransitionPolicy:
        """No hold and a keyframe on every key change: the hooks' behaviour before holding."""
        return cls(hold_time=0.0, keyframes="every")


class HoldState:
    """Per-receiver hold bookkeeping (decoder thread and event loop; thread-safe).

    ``queued(n)`` / ``consumed(n)`` track the bytes waiting in the decoder queue;
    :meth:`should_hold` decides whether an unknown-KID frame may wait; :meth:`wait` waits
    for a key change, the deadline, an overflow or a stop.
    Waiting polls the generation every ``poll_interval`` (no provider needs a callback).
    """

    def __init__(self, policy: TransitionPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self._lock = threading.Lock()
        self._queued = 0
        self._gave_up_at: int | None = None  # key generation at the last timeout
        self._stopped = threading.Event()

    def queued(self, nbytes: int) -> None:
        with self._lock:
            self._queued += nbytes

    def consumed(self, nbytes: int) -> None:
        with self._lock:
            self._queued = max(0, self._queued - nbytes)

    def stop(self) -> None:
        """The receiver is stopping: end any hold now and hold nothing more."""
        self._stopped.set()

    def should_hold(self, generation: int) -> bool:
        """May a frame whose KID is unknown (and never decrypted here) wait at ``generation``?"""
        if self.policy.hold_time <= 0 or self._stopped.is_set():
            return False
        with self._lock:
            return self._gave_up_at != generation

    def wait(self, generation_now: Callable[[], int], generation: int, started: float) -> str | None:
        """Wait until ``generation_now()`` (the provider's key generation) differs from ``generation``.

        Returns ``None`` when keys changed (retry the frame), else the drop reason:
        ``"hold_timeout"``, ``"hold_overflow"`` or ``"stopped"``.
        """
        deadline = started + self.policy.hold_time
        while True:
            current = generation_now()
            if current != generation:
                return None
            if self._stopped.is_set():
                return "stopped"
            with self._lock:
                overflow = self._queued > self.policy.hold_bytes
            if overflow:
                self._give_up(current)
                return "hold_overflow"
            if self._clock() >= deadline:
                self._give_up(current)
                return "hold_timeout"
            time.sleep(self.policy.poll_interval)

    def _give_up(self, generation: int) -> None:
        with self._lock:
            self._gave_up_at = generation
