"""Keyframe-request rate limiting: a pure state machine, the caller passes the clock.

A receiver that cannot decrypt fails on every frame; without a limit each failure
becomes a PLI, and an SFU relays all of them to the sender (hundreds of keyframes in
seconds).  Both ends therefore limit: the receiver sends at most one request per
interval, the sender honours at most one per interval and coalesces the rest into one
deferred keyframe.
"""

from __future__ import annotations

import threading

__all__ = ["KeyframeLimiter"]


class KeyframeLimiter:
    """At most one keyframe (request) per ``min_interval`` seconds of the caller's clock."""

    def __init__(self, min_interval: float) -> None:
        if not min_interval >= 0:
            raise ValueError("min_interval must be >= 0")
        self._interval = float(min_interval)
        self._last: float | None = None
        self._pending = False
        self._lock = threading.Lock()

    @property
    def min_interval(self) -> float:
        return self._interval

    @property
    def pending(self) -> bool:
        """A request was deferred and not yet granted."""
        with self._lock:
            return self._pending

    def try_acquire(self, now: float) -> bool:
        """Grant now (and start a new interval) or refuse; a refusal is not remembered."""
        with self._lock:
            return self._grant(now)

    def request(self, now: float) -> bool:
        """Like :meth:`try_acquire`, but a refused request stays pending for :meth:`poll`."""
        with self._lock:
            if self._grant(now):
                return True
            self._pending = True
            return False

    def poll(self, now: float) -> bool:
        """Grant a pending request once its interval has passed."""
        with self._lock:
            if self._pending and self._grant(now):
                return True
            return False

    def force(self, now: float) -> None:
        """Record a keyframe made for another reason (key change): it satisfies pending requests."""
        with self._lock:
            self._last = now
            self._pending = False

    def _grant(self, now: float) -> bool:
        if self._last is None or now - self._last >= self._interval or now < self._last:
            self._last = now
            self._pending = False
            return True
        return False
