"""Token buckets for per-connection rate limits: pure, the caller passes the time."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["TokenBucket", "RateLimits"]


class TokenBucket:
    """A token bucket: ``rate`` tokens per second, holding at most ``burst`` tokens.

    ``rate=math.inf`` disables the limit.  The bucket starts full.  Time is whatever monotonic
    clock the caller uses (seconds); it is never read here.
    """

    __slots__ = ("rate", "burst", "_tokens", "_last")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if not rate > 0 or not burst > 0:
            raise ValueError("rate and burst must be positive")
        self.rate = float(rate)
        self.burst = float(burst)
        self._tokens = self.burst
        self._last = now

    def try_consume(self, amount: float, now: float) -> bool:
        """Take ``amount`` tokens if available (True), else take nothing (False)."""
        if math.isinf(self.rate):
            return True
        if now > self._last:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
        if amount <= self._tokens:
            self._tokens -= amount
            return True
        return False

    @property
    def tokens(self) -> float:
        """Tokens left at the last update."""
        return self._tokens


@dataclass(frozen=True)
class RateLimits:
    """Per-connection limits of the delivery server.

    Attributes:
        messages_per_second / message_burst: inbound frames (every frame counts).
        bytes_per_second / byte_burst: inbound frame bytes.  The byte burst should be at least
            the largest allowed frame, or such frames could never pass.
        violations_per_second / violation_burst: how many rejected frames (rate-limited,
            oversize) a connection may produce before it is disconnected with ABUSE.
    """

    messages_per_second: float = 200.0
    message_burst: float = 400.0
    bytes_per_second: float = 4 * 1024 * 1024
    byte_burst: float = 8 * 1024 * 1024
    violations_per_second: float = 1.0
    violation_burst: float = 20.0

    def __post_init__(self) -> None:
        for name in (
            "messages_per_second",
            "message_burst",
            "bytes_per_second",
            "byte_burst",
            "violations_per_second",
            "violation_burst",
        ):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"{name} must be a positive number")

    @classmethod
    def unlimited(cls) -> RateLimits:
        inf = math.inf
        return cls(inf, inf, inf, inf, inf, inf)
